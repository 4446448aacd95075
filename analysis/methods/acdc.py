"""ACDC: automatic circuit discovery by greedy edge pruning (Conmy et al., 2023).

For a threshold ``tau``, start from the full graph and visit receivers from ``output``
backwards (reverse topological order; within a receiver, the latest sender first). For
each incoming edge, patch it on top of everything already removed; if the metric moves by
less than ``tau`` relative to the current circuit (``distance(new) - distance(current) <
tau``; an improvement always passes) the edge stays removed, otherwise it is restored. A
receiver whose component no longer sends any kept edge is dead: its inputs cannot matter,
so its incoming edges are removed without evaluating them (the evaluation would give
exactly the current metric).

The metric is ``distance`` (``common``): the squared L2 distance of the read-out from the
clean read-out, averaged over real positions, as the ACDC authors used for tracr's
one-hot and numerical outputs (KL divergence needs logits these models do not have).

All thresholds run together (default: the 9 thresholds ``10^-10 .. 10^-2``). Each round
evaluates, for every threshold still working on the current receiver, a *speculative*
chain of masks: the next incoming edges removed cumulatively, as if each removal were
accepted. Walking the chain reproduces the one-at-a-time decisions exactly (the first
rejected edge ends the chain; the next round restarts after it). Thresholds whose
circuits are identical at that point share one chain (each walks it with its own
threshold), and one vmapped call per round serves them all, so a graph whose edges are
mostly pruned costs a handful of calls per receiver. ``speculate`` caps a chain's length
(default: fill the vmapped chunk, which costs the same whether its masks are used or are
padding). ``edges_tested`` in the result counts the per-threshold decisions made from
evaluations, ``masks_evaluated`` the forward passes.

Scores: an edge's score is the largest threshold at which it survives (0 if none), so a
ranking over the grid gives the ROC curve through the per-threshold circuits (when the
circuits are nested, exactly the curve the ACDC paper draws). The method's own circuit is
the one at ``circuit_threshold``.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..interventions import Experiment
from .common import (
    DEFAULT_CIRCUIT_THRESHOLD,
    MethodResult,
    Timer,
    chunk_size,
    metric,
    metrics,
    node_scores_from_edges,
    reverse_topological_order,
)

#: The threshold grid of the reference comparison (9 thresholds, 10^-10 .. 10^-2).
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(10.0 ** -k for k in range(10, 1, -1))


def acdc_masks(exp: Experiment, thresholds, *, speculate: int | None = None,
               batch_size: int | None = None) -> tuple[np.ndarray, dict]:
    """Run ACDC at every threshold: ``(masks [T, n_edges], stats)`` (1 = kept)."""
    graph = exp.graph
    taus = np.asarray(thresholds, np.float64)
    n_t = len(taus)
    masks = np.ones((n_t, graph.n_edges), np.float32)
    base = metric(exp, masks[0])
    current = np.full(n_t, base)
    sender_index = {name: i for i, name in enumerate(graph.senders)}
    out_edges: list[list[int]] = [[] for _ in graph.senders]
    for e, (s, _) in enumerate(graph.edges):
        out_edges[s].append(e)
    cap = chunk_size(exp, batch_size)
    stats = {"rounds": 0, "masks_evaluated": 0, "edges_tested": 0, "edges_skipped": 0}
    order = reverse_topological_order(graph)
    for r, group in itertools.groupby(order, key=lambda e: graph.edges[e][1]):
        edges = list(group)
        sender = sender_index.get(graph.receivers[r][0])  # None for ``output``
        pending: dict[int, int] = {}
        for t in range(n_t):
            if sender is not None and not masks[t, out_edges[sender]].any():
                masks[t, edges] = 0.0  # dead receiver
                stats["edges_skipped"] += len(edges)
            else:
                pending[t] = 0
        while pending:
            # thresholds in the same state (same mask, same position) share their chain
            groups: dict[tuple[bytes, int], list[int]] = {}
            for t, pos in pending.items():
                groups.setdefault((masks[t].tobytes(), pos), []).append(t)
            width = max(1, cap // len(groups))
            if speculate is not None:
                width = min(width, max(1, speculate))
            chains, plan = [], []
            for (_, pos), members in groups.items():
                chain = edges[pos : pos + width]
                m = masks[members[0]].copy()
                for e in chain:
                    m[e] = 0.0
                    chains.append(m.copy())
                plan.append((members, pos, chain))
            values = metrics(exp, np.stack(chains), batch_size=batch_size)
            stats["rounds"] += 1
            stats["masks_evaluated"] += len(chains)
            next_pending: dict[int, int] = {}
            offset = 0
            for members, pos, chain in plan:
                vals = values[offset : offset + len(chain)]
                offset += len(chain)
                for t in members:
                    done = pos + len(chain)
                    for j, e in enumerate(chain):
                        stats["edges_tested"] += 1
                        if vals[j] - current[t] < taus[t]:
                            masks[t, e] = 0.0
                            current[t] = vals[j]
                        else:
                            done = pos + j + 1
                            break
                    if done < len(edges):
                        next_pending[t] = done
            pending = next_pending
    stats["final_metric"] = {float(tau): float(v) for tau, v in zip(taus, current)}
    return masks, stats


def acdc(exp: Experiment, *, thresholds=DEFAULT_THRESHOLDS,
         circuit_threshold: float = DEFAULT_CIRCUIT_THRESHOLD, speculate: int | None = None,
         batch_size: int | None = None) -> MethodResult:
    """ACDC over a grid of thresholds; score = the largest threshold an edge survives."""
    taus = sorted({float(x) for x in thresholds} | {float(circuit_threshold)})
    with Timer() as t:
        masks, stats = acdc_masks(exp, taus, speculate=speculate, batch_size=batch_size)
    kept = masks > 0.5
    tau_col = np.asarray(taus)[:, None]
    edge_scores = np.where(kept, tau_col, 0.0).max(axis=0)
    own = kept[taus.index(float(circuit_threshold))]
    stats["edges_per_second"] = stats["edges_tested"] / t.seconds if t.seconds else None
    return MethodResult(
        method="acdc", edge_scores=edge_scores,
        node_scores=node_scores_from_edges(exp.graph, edge_scores),
        circuit=own, seconds=t.seconds,
        info={"thresholds": taus, "circuit_threshold": float(circuit_threshold),
              "masks": kept, "circuit_sizes": kept.sum(axis=1).tolist(), "metric": "distance",
              **stats},
    )
