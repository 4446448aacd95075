"""Edge attribution patching (Syed, Rager and Conmy, 2023).

A first-order Taylor estimate of every edge's patching effect at once. With the engine's
edge mask ``m`` (1 = clean), the receiver of edge ``s -> r`` reads
``... + m_e * out_s + (1 - m_e) * ablated_s``, so

``d metric / d m_e = (out_s - ablated_s) . d metric / d input_r``

and patching ``e`` alone changes the metric by about ``-d metric / d m_e``. One clean
forward (with the ablated values from the experiment: the corrupted forward for resample),
one backward, and every edge is scored: ``score = |d metric / d m_e|`` at ``m = 1``.

The metric is ``projection`` (``common``): ``distance``, the metric ACDC and patching use,
is a squared distance at its minimum at ``m = 1``, so its gradient there is zero.
``projection`` is linear in the read-out and, for one-hot outputs under resample, is the
logit difference between the clean and the corrupted answer. Where the model saturates
(sharp softmax attention, a ReLU past its kink) the gradient is zero even though patching
changes the output: compiled models are built from such saturated pieces, so EAP misses
edges into queries and keys whose effect goes through the attention pattern.

The method's own circuit: edges whose score exceeds ``threshold`` (both metrics share the
``distance`` scale to first order).
"""

from __future__ import annotations

import numpy as np

from ..interventions import Experiment
from .common import (
    DEFAULT_CIRCUIT_THRESHOLD,
    MethodResult,
    Timer,
    metric_grad,
    node_scores_from_edges,
)


def eap(exp: Experiment, *, metric: str = "projection",
        threshold: float = DEFAULT_CIRCUIT_THRESHOLD) -> MethodResult:
    """|gradient of the metric w.r.t. each edge mask| at the clean point."""
    with Timer() as t:
        grad = metric_grad(exp, None, kind=metric)
        scores = np.abs(grad)
    return MethodResult(
        method="eap", edge_scores=scores,
        node_scores=node_scores_from_edges(exp.graph, scores),
        circuit=scores > threshold, seconds=t.seconds,
        info={"metric": metric, "threshold": threshold, "gradient": grad,
              "forward_passes": 1, "backward_passes": 1},
    )
