"""Feature-level methods scored against the planted variables (no JAX on import).

``truth`` (where each variable is present and used, its basis, per-position labels),
``result`` (one report type for every method), and one module per method: ``probes``
(linear probes with a control task), ``dla`` (logit lens and direct logit attribution),
``sae`` (sparse autoencoders), ``das`` (distributed alignment search). Every method module
exposes ``run(model, truth, *, site=None, variable=None, seed=0) -> FeatureReport``::

    from rasplab.analysis import features
    truth = features.feature_truth(model, inputs, program=spec.build())
    report = features.run("probe", model, truth)
    print(report.table())
"""

from __future__ import annotations

import importlib

_FRONT = {
    "FeatureTruth": "truth", "VariableTruth": "truth", "SiteTruth": "truth",
    "feature_truth": "truth", "activations": "truth", "all_activations": "truth",
    "residual_sites": "truth",
    "Method": "result", "VariableScore": "result", "ComponentScore": "result",
    "FeatureReport": "result", "MAIN_SCORE": "result",
}

#: method name -> module.
METHOD_MODULES = {"probe": "probes", "dla": "dla", "sae": "sae", "das": "das"}


def method_module(method: str):
    """The module implementing ``method`` (``ValueError`` if unknown)."""
    if method not in METHOD_MODULES:
        raise ValueError(f"unknown feature method {method!r}; use one of "
                         f"{', '.join(METHOD_MODULES)}")
    return importlib.import_module(f"{__name__}.{METHOD_MODULES[method]}")


def run(method: str, model, truth, *, site: str | None = None, variable: str | None = None,
        seed: int = 0):
    """Run the feature method ``method`` on ``model`` against ``truth``."""
    return method_module(method).run(model, truth, site=site, variable=variable, seed=seed)


def __getattr__(name: str):
    if name in _FRONT:
        return getattr(importlib.import_module(f"{__name__}.{_FRONT[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [*_FRONT, "METHOD_MODULES", "method_module", "run"]
