"""Scoring a recovery method's output against the planted circuit.

Targets
-------
* **matched**: the effective circuit for the same ablation on the same inputs
  (``analysis.ground_truth.effective_circuit`` on the method's own experiment): what that
  ablation can see at all. Edge ROC is computed over the *structural* edges only: a pair of
  components with no shared residual direction has no effect under any ablation, so a
  method scoring it 0 is trivially right and would only inflate the AUC
  (``edge_auc_complete`` includes those pairs, for comparison with papers that score the
  complete graph).
* **structural**: every edge the compiler planted (non-zero weights between the two
  components), scored over the complete graph (negatives: the pairs with no shared
  direction). This is the analogue of the tracr "canonical circuit" the ACDC paper scores
  against. On a graph that only holds structural edges it has no negatives, and its AUC is
  undefined (NaN).

Nodes are the senders (``embed``, ``pos``, heads, MLPs; ``output`` is in every circuit and
left out). A target's node set is every component that sends or receives one of its edges.
Where a target has no positives or no negatives among the scored items, the AUC is NaN.
Our compiler emits no idle components, so with every component in the target (the
structural circuit, and often zero ablation's) the component-level node AUC is undefined.

*I/O nodes* (``io_node_auc``) are the nodes of the graphs ACDC and auto-circuit build:
each component's output (a sender) and each input (a head's ``q``, ``k``, ``v``, an MLP's
input) separately; ``output`` left out. A sender is in a circuit if it sends one of its
edges, an input if it receives one; a method's score for an I/O node is its largest edge
score there. A head whose query is not needed is then a negative even when its value is.

Numbers
-------
* ROC AUC: the Mann-Whitney statistic, ties counted one half (average ranks), so a
  method that gives many edges the same score gets the area under the straight segment
  through them, never credit for an arbitrary order.
* precision / recall of the method's own circuit (its threshold), over the graph's edges.
* faithfulness of the method's own circuit: every edge outside it patched at once; the
  fraction of real positions whose decoded output is unchanged (the same test as the
  ground truth's), and the metric (``distance``) of that run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .ground_truth import GroundTruth
from .interventions import Experiment
from .methods.common import MethodResult, circuit_nodes, metric, structural

# ---------------------------------------------------------------------------------------
# ROC


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    ranks = np.empty(len(x), np.float64)
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _clean_scores(scores) -> np.ndarray:
    s = np.asarray(scores, np.float64).copy()
    s[np.isnan(s)] = -np.inf  # a NaN score ranks lowest
    return s


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (NaN if one class is
    empty). Ties count one half."""
    s = _clean_scores(scores)
    y = np.asarray(labels, bool)
    if s.shape != y.shape:
        raise ValueError(f"{s.shape[0]} scores for {y.shape[0]} labels")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(s)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``: one point per distinct score, from the highest down,
    starting at ``(0, 0)``. Tied items enter together, so the trapezoidal area equals
    ``roc_auc``."""
    s = _clean_scores(scores)
    y = np.asarray(labels, bool)
    n_pos, n_neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    distinct = np.unique(s)[::-1]
    fpr, tpr = [0.0], [0.0]
    for v in distinct:
        at_least = s >= v
        tpr.append(float((at_least & y).sum()) / n_pos)
        fpr.append(float((at_least & ~y).sum()) / n_neg)
    return np.array(fpr), np.array(tpr), np.concatenate([[np.inf], distinct])


def precision_recall(predicted, labels) -> tuple[float, float]:
    """Precision and recall of a predicted set (NaN precision for an empty prediction)."""
    p = np.asarray(predicted, bool)
    y = np.asarray(labels, bool)
    tp = int((p & y).sum())
    precision = tp / int(p.sum()) if p.any() else float("nan")
    recall = tp / int(y.sum()) if y.any() else float("nan")
    return float(precision), float(recall)


# ---------------------------------------------------------------------------------------
# Faithfulness


def faithfulness(exp: Experiment, edge_mask) -> dict:
    """Patch every edge outside the circuit: how many real positions keep their output."""
    mask = np.asarray(edge_mask, np.float32)
    change = exp.effects(mask[None])
    n_real = int(np.asarray(exp.real).sum())
    changed = int(np.asarray(change.n_changed)[0])
    return {
        "fraction_unchanged": 1.0 - changed / n_real if n_real else float("nan"),
        "changed_positions": changed,
        "real_positions": n_real,
        "metric": metric(exp, mask),
        "max_change": float(np.asarray(change.max_change)[0]),
        "edges": int((mask > 0.5).sum()),
    }


# ---------------------------------------------------------------------------------------
# I/O nodes


def io_nodes(graph) -> list[str]:
    """Names of the I/O nodes: every sender, then every receiver but ``output``
    (``"L3.H0.q"``, ``"L1.MLP.in"``)."""
    inputs = [f"{c}.{i}" if i else f"{c}.in" for c, i in graph.receivers if c != "output"]
    return list(graph.senders) + inputs


def _io_index(graph) -> tuple[np.ndarray, np.ndarray]:
    """Per edge: the I/O node index of its sender and of its receiver (-1 for output)."""
    n_s = graph.n_senders
    recv_index, k = [], 0
    for c, _ in graph.receivers:
        if c == "output":
            recv_index.append(-1)
        else:
            recv_index.append(n_s + k)
            k += 1
    send = np.array([s for s, _ in graph.edges], int)
    recv = np.array([recv_index[r] for _, r in graph.edges], int)
    return send, recv


def io_node_scores(graph, edge_scores) -> np.ndarray:
    """An I/O node's score: the largest score of an edge leaving (sender) or entering
    (input) it; 0 where it has no edge."""
    scores = np.asarray(edge_scores, np.float64)
    send, recv = _io_index(graph)
    out = np.full(len(io_nodes(graph)), -np.inf)
    for e in range(graph.n_edges):
        out[send[e]] = max(out[send[e]], scores[e])
        if recv[e] >= 0:
            out[recv[e]] = max(out[recv[e]], scores[e])
    out[np.isneginf(out)] = 0.0
    return out


def io_node_labels(graph, edge_mask) -> np.ndarray:
    """bool over ``io_nodes``: the I/O nodes the circuit's edges leave or enter."""
    return io_node_scores(graph, (np.asarray(edge_mask) > 0.5).astype(float)) > 0.5


# ---------------------------------------------------------------------------------------
# Scoring a method's result


def target_masks(exp: Experiment, truth: GroundTruth, result: MethodResult | None = None
                 ) -> dict[str, np.ndarray]:
    """``{"matched": bool [n_edges], "structural": bool [n_edges]}`` over ``exp.graph``.

    Where the truth is a set of minimal circuits (redundant routes: ``truth.alternatives``
    holds several), ``matched`` is the one ``result`` matches best (highest edge AUC over
    the structural edges): a method that finds either route is not penalised.
    """
    if truth.graph.edge_keys != exp.graph.edge_keys:
        raise ValueError("the ground truth was computed on another graph than the experiment")
    struct = structural(exp.graph)
    matched = np.asarray(truth.mask) > 0.5
    if result is not None and len(truth.alternatives) > 1:
        scores = np.asarray(result.edge_scores, np.float64)[struct]
        aucs = [roc_auc(scores, (np.asarray(m) > 0.5)[struct]) for m in truth.alternatives]
        best = int(np.nanargmax(aucs)) if not np.isnan(aucs).all() else 0
        matched = np.asarray(truth.alternatives[best]) > 0.5
    return {"matched": matched, "structural": struct}


def score(exp: Experiment, result: MethodResult, truth: GroundTruth, *,
          with_faithfulness: bool = True) -> dict:
    """Every number comparing ``result`` with the planted circuit (see the module doc).

    Keys: ``edge_auc``, ``node_auc`` (vs the ablation-matched circuit, edges over the
    structural graph), ``edge_auc_complete`` (same target, every edge of the graph),
    ``edge_auc_structural``, ``node_auc_structural`` (vs the structural circuit),
    ``io_node_auc``, ``io_node_auc_structural`` (I/O nodes, from the edge scores),
    ``precision``, ``recall`` (own circuit vs matched), ``precision_structural``,
    ``recall_structural``, ``faithfulness`` (dict), ``circuit_edges``, ``target_edges``,
    ``n_edges`` (structural edges scored), ``n_edges_complete``, ``seconds``.
    """
    graph = exp.graph
    targets = target_masks(exp, truth, result)
    struct = targets["structural"]
    edge_scores = np.asarray(result.edge_scores, np.float64)
    node_scores = np.asarray(result.node_scores, np.float64)
    matched, full = targets["matched"], targets["structural"]
    out: dict = {
        "edge_auc": roc_auc(edge_scores[struct], matched[struct]),
        "node_auc": roc_auc(node_scores, circuit_nodes(graph, matched)),
        "edge_auc_complete": roc_auc(edge_scores, matched),
        "edge_auc_structural": roc_auc(edge_scores, full),
        "node_auc_structural": roc_auc(node_scores, circuit_nodes(graph, full)),
        "io_node_auc": roc_auc(io_node_scores(graph, edge_scores), io_node_labels(graph, matched)),
        "io_node_auc_structural": roc_auc(io_node_scores(graph, edge_scores),
                                          io_node_labels(graph, full)),
        "n_edges": int(struct.sum()),
        "n_edges_complete": int(graph.n_edges),
        "target_edges": int(matched.sum()),
        "target_nodes": int(circuit_nodes(graph, matched).sum()),
        "target_alternatives": max(1, len(truth.alternatives)),
        "seconds": float(result.seconds),
    }
    if result.circuit is not None:
        circuit = np.asarray(result.circuit, bool)
        out["circuit_edges"] = int(circuit.sum())
        out["precision"], out["recall"] = precision_recall(circuit, matched)
        out["precision_structural"], out["recall_structural"] = precision_recall(circuit, full)
        if with_faithfulness:
            out["faithfulness"] = faithfulness(exp, circuit)
    else:
        out.update(circuit_edges=None, precision=None, recall=None,
                   precision_structural=None, recall_structural=None)
        if with_faithfulness:
            out["faithfulness"] = None
    return out


def roc_curves(exp: Experiment, result: MethodResult, truth: GroundTruth) -> dict:
    """The curves behind ``score``'s AUCs: name -> ``(fpr, tpr, auc)``."""
    graph = exp.graph
    t = target_masks(exp, truth, result)
    struct = t["structural"]
    es, ns = np.asarray(result.edge_scores), np.asarray(result.node_scores)
    items = {
        "edges vs matched (structural graph)": (es[struct], t["matched"][struct]),
        "edges vs structural (complete graph)": (es, t["structural"]),
        "nodes vs matched": (ns, circuit_nodes(graph, t["matched"])),
    }
    out = {}
    for name, (s, y) in items.items():
        auc = roc_auc(s, y)
        if np.isnan(auc):
            continue
        fpr, tpr, _ = roc_curve(s, y)
        out[name] = (fpr, tpr, auc)
    return out


# ---------------------------------------------------------------------------------------
# Plots


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Write a matplotlib figure (creating its folder) and close it."""
    import matplotlib.pyplot as plt

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def plot_roc(curves: dict[str, tuple] | Sequence[tuple], path: str | Path, *,
             title: str = "", reference: dict[str, tuple] | None = None) -> Path:
    """Draw ROC curves (``label -> (fpr, tpr, auc)``) to a PNG (matplotlib, Agg).

    ``reference`` adds points (``label -> (fpr, tpr)``), e.g. published operating points.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = curves.items() if isinstance(curves, dict) else [(c[0], c[1:]) for c in curves]
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.plot([0, 1], [0, 1], color="#bbbbbb", lw=0.8, ls=":")
    for label, (fpr, tpr, auc) in items:
        text = "n/a: no negatives or positives" if auc is None or np.isnan(auc) else f"{auc:.3f}"
        ax.plot(fpr, tpr, lw=1.6, marker=".", ms=4, label=f"{label} (AUC {text})")
    for label, (x, y) in (reference or {}).items():
        ax.scatter([x], [y], marker="x", s=40, label=label, zorder=5)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=9, loc="left")
    ax.legend(fontsize=6.5, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path, dpi=130)


def plot_roc_panels(panels: dict[str, dict[str, tuple]], path: str | Path, *,
                    title: str = "") -> Path:
    """Several ROC plots side by side: ``panel title -> {label: (fpr, tpr, auc)}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(panels))
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.3), squeeze=False)
    for ax, (name, curves) in zip(axes[0], panels.items()):
        ax.plot([0, 1], [0, 1], color="#bbbbbb", lw=0.8, ls=":")
        for label, (fpr, tpr, auc) in curves.items():
            text = "n/a" if auc is None or np.isnan(auc) else f"{auc:.3f}"
            ax.plot(fpr, tpr, lw=1.5, marker=".", ms=4, alpha=0.85, label=f"{label} ({text})")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(name, fontsize=8.5, loc="left")
        ax.legend(fontsize=6.5, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10, x=0.01, ha="left")
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)


__all__ = [
    "roc_auc", "roc_curve", "precision_recall", "faithfulness", "target_masks", "score",
    "roc_curves", "plot_roc", "plot_roc_panels", "io_nodes", "io_node_scores",
    "io_node_labels",
]
