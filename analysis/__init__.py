"""Interpretability methods run against any network that carries a known circuit, scored
against that circuit. The front door (each name loads its module on first use, so
importing ``rasplab.analysis`` pulls in no JAX)::

    from rasplab import analysis
    exp = analysis.prepare(model, clean, "resample", corrupted=corrupted, complete=True)
    truth = analysis.effective_circuit(exp)          # what this ablation can see, verified
    result = analysis.run_method("acdc", exp)          # scores over exp.graph.edges
    analysis.score(exp, result, truth)["edge_auc"]
    exp.effect(exp.graph.mask(["embed->L3.H0.v"], value=0.0))   # patch one edge

``model`` is a ``CompiledProgram`` or a variant of one: the engine reads its ``network``,
its planted ``circuit`` and its ``readout`` and nothing else. Modules: ``interventions``
(the component graph, edge/node patching, ablation values), ``ground_truth`` (truth per
ablation, verified by intervention), ``methods`` (one module per circuit method),
``scoring`` (ROC AUC, precision/recall, faithfulness), ``recover`` (method x program x
ablation runs and tables), ``sites`` (interventions at any TransformerLens-named activation
site, subspace patches), ``interchange`` (interchange-intervention accuracy against the
interpreter's counterfactuals), ``registry`` (ablation and method names).
"""

from __future__ import annotations

import importlib

_FRONT = {
    "prepare": "interventions", "Experiment": "interventions", "edge_graph": "interventions",
    "ablation_values": "interventions",
    "effective_circuit": "ground_truth", "ground_truth": "ground_truth",
    "GroundTruth": "ground_truth", "verify": "ground_truth",
    "score": "scoring",
    "recover": "recover",
    "Ablation": "registry",
    "intervene": "sites", "SiteConfig": "sites", "SubspacePatch": "sites",
    "Replace": "sites", "Add": "sites", "Zero": "sites", "Mean": "sites", "Resample": "sites",
    "interchange_accuracy": "interchange",
}


def run_method(name: str, experiment, **options):
    """Run the circuit-recovery method ``name`` (``acdc``, ``eap``, ``eap-ig``, ``patching``,
    ``sp``) on ``experiment``; returns its ``MethodResult``."""
    from . import methods

    return methods.run(name, experiment, **options)


def __getattr__(name: str):
    if name in _FRONT:
        module = importlib.import_module(f"{__name__}.{_FRONT[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [*_FRONT, "run_method"]
