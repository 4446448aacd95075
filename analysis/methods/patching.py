"""Activation patching: every component alone, and every edge alone.

*Node patching*: each sender's output is replaced by its ablated value for every reader
(the engine's node mask), one component at a time; its score is the resulting
``distance`` (the metric of ``common``). *Edge (path) patching*: each edge alone is
patched (only that receiver sees the ablated value), score = ``distance``. Both sweeps are
one vmapped pass over a stack of masks (``n_edges + n_senders`` forward passes in all).

The method's own circuit: the edges whose patching alone moves the metric above
``threshold``. Patching one edge at a time misses edges that matter only together (two
redundant routes), and counts an edge whose effect a later component undoes anyway.
"""

from __future__ import annotations

import numpy as np

from ..interventions import Experiment, single_edge_masks
from .common import DEFAULT_CIRCUIT_THRESHOLD, MethodResult, Timer, metrics


def patching(exp: Experiment, *, threshold: float = DEFAULT_CIRCUIT_THRESHOLD,
             batch_size: int | None = None) -> MethodResult:
    """Edge scores from single-edge patching, node scores from single-node patching."""
    graph = exp.graph
    with Timer() as t:
        n_e, n_s = graph.n_edges, graph.n_senders
        edge_masks = np.concatenate([single_edge_masks(n_e), np.ones((n_s, n_e), np.float32)])
        node_masks = np.ones((n_e + n_s, n_s), np.float32)
        node_masks[n_e + np.arange(n_s), np.arange(n_s)] = 0.0
        values = metrics(exp, edge_masks, node_masks, batch_size=batch_size)
        edge_scores, node_scores = values[:n_e], values[n_e:]
    return MethodResult(
        method="patching", edge_scores=edge_scores, node_scores=node_scores,
        circuit=edge_scores > threshold, seconds=t.seconds,
        info={"threshold": threshold, "forward_passes": n_e + n_s, "metric": "distance"},
    )
