"""Circuit-recovery methods, one module each, all with one signature:

``method(experiment, **options) -> MethodResult``

where ``experiment`` is an ``analysis.interventions.Experiment`` (a graph, the weights, the
clean inputs and the ablated values) and the result holds edge scores over
``experiment.graph.edges``, node scores over ``experiment.graph.senders``, and, where the
method has a threshold, the circuit it would report itself (``common.MethodResult``).

``METHODS`` maps names to functions; adding a method is one module plus one line here.
Names are accepted with ``-`` or ``_`` (``eap-ig`` and ``eap_ig``).

Shared machinery (``common``): the metrics (``distance``: squared L2 distance of the
read-out from the clean read-out, averaged over real positions; ``projection``: the
read-out projected on clean minus fully-ablated, for first-order methods), batched and
differentiated evaluation over edge masks, node scores from edge scores.

Closing over the experiment's arrays inside a jitted ``vmap`` is fine: an old note here
said that form returned NaN at random positions; it does not reproduce on jax 0.10.2 with
this engine (every ablation, four programs), and ``tests/test_interventions.py`` keeps
checking that the closure form equals the form that passes the arrays as arguments.
"""

from __future__ import annotations

from ..registry import METHOD_NAMES
from .acdc import DEFAULT_THRESHOLDS, acdc
from .common import MethodFn, MethodResult
from .eap import eap
from .eap_ig import eap_ig
from .patching import patching
from .sp import sp

METHODS: dict[str, MethodFn] = {
    "patching": patching,
    "acdc": acdc,
    "eap": eap,
    "eap_ig": eap_ig,
    "sp": sp,
}
assert tuple(METHODS) == METHOD_NAMES, "analysis/registry.py lists the methods for the CLI"


def canonical(name: str) -> str:
    """``"eap-ig"`` -> ``"eap_ig"``; raises ``ValueError`` for an unknown method."""
    key = name.strip().lower().replace("-", "_")
    if key not in METHODS:
        known = ", ".join(n.replace("_", "-") for n in METHODS)
        raise ValueError(f"unknown method {name!r}; use one of {known}")
    return key


def get(name: str) -> MethodFn:
    return METHODS[canonical(name)]


def run(name: str, experiment, **options) -> MethodResult:
    """Run the method called ``name`` on ``experiment``."""
    return get(name)(experiment, **options)


__all__ = ["METHODS", "MethodResult", "DEFAULT_THRESHOLDS", "canonical", "get", "run",
           "acdc", "eap", "eap_ig", "patching", "sp"]
