"""What every recovery method shares: the result record, the metric, batched evaluation.

The metric
----------
Compiled models have no logits to take a KL divergence of: a categorical output is a
one-hot read-out (``None`` is all zeros), a numerical output one number. Following the
ACDC authors' treatment of tracr models, the faithfulness metric is a distance between
read-outs, averaged over the real positions (not BOS, not PAD) of the batch:

``distance(m) = mean over real (b, t) of || readout_m[b, t] - readout_clean[b, t] ||^2``

(squared L2 over the read-out's dimensions: a flipped categorical answer costs 2, a
numerical one the squared error). It is 0 for the clean model and differentiable in the
edge mask ``m``.

Its gradient at ``m = 1`` is exactly zero (it is a squared distance at its minimum), so
the plain first-order method (EAP) needs a metric that is linear near the clean point.
``projection`` is the read-out projected on the direction from the fully ablated read-out
``r_abl`` (every edge patched) to the clean one:

``projection(m) = mean over real (b, t) of (readout_clean - r_abl)[b, t] . readout_m[b, t]``

For a one-hot output under resample ablation this is the logit difference "clean answer
minus corrupted answer" that EAP is usually run with; under zero ablation ``r_abl`` is 0
and it is the clean answer's read-out. Its change when everything is patched, to first
order, equals ``distance`` with everything patched, so both metrics share a scale.

Batched evaluation
------------------
``metrics`` evaluates a stack of masks with one jitted, vmapped function per graph,
chunked like the engine's ``effects`` (powers of two, at most ``default_batch_size``), so a
method that evaluates many masks compiles once. Every array (weights, inputs, ablated
values, the clean read-out) is passed as an argument, never closed over: closing the
ablated values into a vmapped jit makes XLA's CPU backend return NaN at random positions
(jax 0.10.2; see the report in ``analysis/methods/__init__.py``).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np

from ..interventions import EdgeGraph, Experiment, default_batch_size, mask_chunks, run_patched
from ..registry import METRICS

#: The default threshold a method uses to pick its own circuit from scores on the
#: ``distance`` scale (one flipped categorical answer among 1000 real positions costs 2e-3;
#: float32 noise from an edge that changes nothing decodable is below 1e-9).
DEFAULT_CIRCUIT_THRESHOLD = 1e-6


@dataclass
class MethodResult:
    """What a recovery method found on one experiment.

    ``edge_scores`` ``[graph.n_edges]`` and ``node_scores`` ``[graph.n_senders]``: higher
    means more important (the scale is the method's own). ``circuit``: bool ``[n_edges]``,
    the edge set the method itself would report at its threshold (``None`` if it has
    none). ``info``: method-specific details (thresholds, evaluations, losses).
    """

    method: str
    edge_scores: np.ndarray
    node_scores: np.ndarray
    circuit: np.ndarray | None = None
    seconds: float = 0.0
    info: dict = field(default_factory=dict)

    def circuit_keys(self, graph: EdgeGraph) -> list[str]:
        if self.circuit is None:
            return []
        return [graph.edge_keys[i] for i in np.flatnonzero(self.circuit)]

    def ranking(self, graph: EdgeGraph) -> list[tuple[str, float]]:
        """Edges from the highest score down (ties in graph order)."""
        order = np.argsort(-np.asarray(self.edge_scores, np.float64), kind="stable")
        return [(graph.edge_keys[i], float(self.edge_scores[i])) for i in order]


# ---------------------------------------------------------------------------------------
# Graph helpers


def node_scores_from_edges(graph: EdgeGraph, edge_scores, *, fill: float = 0.0) -> np.ndarray:
    """A component's score is the largest score of an edge it sends or receives."""
    scores = np.asarray(edge_scores, np.float64)
    receiver_component = [name for name, _ in graph.receivers]
    sender_of = {name: i for i, name in enumerate(graph.senders)}
    out = np.full(graph.n_senders, -np.inf)
    for e, (s, r) in enumerate(graph.edges):
        out[s] = max(out[s], scores[e])
        rc = sender_of.get(receiver_component[r])
        if rc is not None:
            out[rc] = max(out[rc], scores[e])
    out[np.isneginf(out)] = fill
    return out


def circuit_nodes(graph: EdgeGraph, edge_mask) -> np.ndarray:
    """bool ``[n_senders]``: components that send or receive an edge of the circuit."""
    m = np.asarray(edge_mask) > 0.5
    return node_scores_from_edges(graph, m.astype(np.float64), fill=0.0) > 0.5


def structural(graph: EdgeGraph) -> np.ndarray:
    """bool ``[n_edges]``: edges backed by weights (every edge of a non-complete graph)."""
    return np.array(graph.structural, bool).reshape(graph.n_edges)


def reverse_topological_order(graph: EdgeGraph) -> list[int]:
    """Edge indices, receivers from ``output`` backwards, within one receiver the latest
    sender first (the order ACDC and the ground-truth search visit edges in)."""
    return sorted(range(graph.n_edges), key=lambda e: (
        graph.receiver_slot[graph.edges[e][1]], graph.edges[e][1],
        graph.sender_slot[graph.edges[e][0]], graph.edges[e][0]), reverse=True)


# ---------------------------------------------------------------------------------------
# Metrics (pure, jittable)


def distance(readout, clean_readout, real) -> jnp.ndarray:
    """Mean over real positions of the squared L2 distance between read-outs."""
    d = jnp.sum(jnp.square(readout - clean_readout), axis=-1)
    n = jnp.maximum(jnp.sum(real), 1)
    return jnp.sum(jnp.where(real, d, 0.0)) / n


def projection(readout, clean_readout, ablated_readout, real) -> jnp.ndarray:
    """Mean over real positions of ``(clean - ablated) . readout`` (see the module doc)."""
    p = jnp.sum((clean_readout - ablated_readout) * readout, axis=-1)
    n = jnp.maximum(jnp.sum(real), 1)
    return jnp.sum(jnp.where(real, p, 0.0)) / n


def _coefficients(kind: str) -> np.ndarray:
    if kind == "distance":
        return np.array([1.0, 0.0], np.float32)
    if kind == "projection":
        return np.array([0.0, 1.0], np.float32)
    raise ValueError(f"unknown metric {kind!r}; use one of {', '.join(METRICS)}")


def metric_function(graph: EdgeGraph):
    """``f(*metric_args(exp, kind), edge_mask, node_mask) -> metric``, pure and jittable.

    Both metrics are computed and mixed by a coefficient argument, so one compiled
    function serves both (compiling a patched forward pass takes seconds on CPU).
    """

    def f(params, ids, ablated, clean, reference, real, coef, edge_mask, node_mask):
        readout = run_patched(graph, params, ids, ablated, edge_mask, node_mask).readout
        return (coef[0] * distance(readout, clean, real)
                + coef[1] * projection(readout, clean, reference, real))

    return f


@cache
def _vmapped_metric(graph: EdgeGraph):
    return jax.jit(jax.vmap(metric_function(graph), in_axes=(None,) * 7 + (0, 0)))


@cache
def _vmapped_grad(graph: EdgeGraph):
    g = jax.value_and_grad(metric_function(graph), argnums=7)
    return jax.jit(jax.vmap(g, in_axes=(None,) * 7 + (0, None)))


# ---------------------------------------------------------------------------------------
# Evaluating experiments


_ABLATED_READOUT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def ablated_readout(exp: Experiment) -> jnp.ndarray:
    """The read-out with every edge patched: the unembedding of the sum of every sender's
    ablated value (what ``output`` reads when all its edges are patched; senders it has
    no edge from write nothing the unembedding reads). The ``projection`` reference."""
    out = _ABLATED_READOUT.get(exp)
    if out is None:
        total = jnp.sum(exp.ablated, axis=0)
        out = jnp.einsum("btd,dn->btn", total, exp.params["unembed"],
                         precision=jax.lax.Precision.HIGHEST)
        _ABLATED_READOUT[exp] = out
    return out


def metric_args(exp: Experiment, kind: str = "distance") -> tuple:
    """The array arguments ``metric_function`` takes before the masks."""
    return (exp.params, exp.ids, exp.ablated, exp.clean.readout, ablated_readout(exp),
            exp.real, jnp.asarray(_coefficients(kind)))


def chunk_size(exp: Experiment, batch_size: int | None = None) -> int:
    """Masks per vmapped call (the engine's ``default_batch_size`` unless given)."""
    return int(batch_size or default_batch_size(exp.graph, tuple(exp.ids.shape)))


def _padded_calls(fn, args, width: int, edge_masks: np.ndarray, node_masks, out):
    """Run ``fn`` over the masks in chunks of exactly ``width`` (the last one padded with
    all-ones masks), so every call has the one compiled shape."""
    for lo, n, em, nm in mask_chunks(edge_masks, node_masks, width, lambda _: width):
        result = fn(*args, em, nm)
        if isinstance(result, tuple):  # (values, gradients)
            for o, r in zip(out, result):
                o[lo : lo + n] = np.asarray(r)[:n]
        else:
            out[lo : lo + n] = np.asarray(result)[:n]
    return out


def metrics(exp: Experiment, edge_masks, node_masks=None, *, kind: str = "distance",
            batch_size: int | None = None) -> np.ndarray:
    """The metric for each of a stack of masks ``[M, n_edges]`` (and ``[M, senders]``)."""
    graph = exp.graph
    edge_masks = np.asarray(edge_masks, np.float32).reshape(-1, graph.n_edges)
    m = edge_masks.shape[0]
    if node_masks is None:
        node_masks = np.ones((m, graph.n_senders), np.float32)
    node_masks = np.asarray(node_masks, np.float32).reshape(m, graph.n_senders)
    out = np.empty(m, np.float64)
    return _padded_calls(_vmapped_metric(graph), metric_args(exp, kind),
                         chunk_size(exp, batch_size), edge_masks, node_masks, out)


def metric(exp: Experiment, edge_mask=None, node_mask=None, *, kind: str = "distance"
           ) -> float:
    """The metric of one patched run."""
    em = np.ones(exp.graph.n_edges, np.float32) if edge_mask is None else edge_mask
    nm = None if node_mask is None else np.asarray(node_mask, np.float32)[None]
    return float(metrics(exp, np.asarray(em, np.float32)[None], nm, kind=kind)[0])


def grad_chunk_size(exp: Experiment, batch_size: int | None = None) -> int:
    """Masks per vmapped gradient call: a backward pass keeps every activation, so a
    quarter of the forward chunk, and at most 4 (the methods that take gradients need
    few: EAP one, EAP-IG ``steps``, subnetwork probing a few samples per step)."""
    return max(1, min(4, chunk_size(exp, batch_size) // 4))


def metric_values_and_grads(exp: Experiment, edge_masks, *, kind: str = "distance",
                            batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The metric ``[M]`` and d metric / d edge mask ``[M, n_edges]`` at each of a stack of
    masks (one vmapped forward and backward per chunk)."""
    graph = exp.graph
    edge_masks = np.asarray(edge_masks, np.float32).reshape(-1, graph.n_edges)
    out = (np.empty(edge_masks.shape[0], np.float64), np.empty(edge_masks.shape, np.float64))
    return _padded_calls(_vmapped_grad(graph), metric_args(exp, kind),
                         grad_chunk_size(exp, batch_size), edge_masks, None, out)


def metric_grads(exp: Experiment, edge_masks, *, kind: str = "distance",
                 batch_size: int | None = None) -> np.ndarray:
    """d metric / d edge mask at each of a stack of masks: ``[M, n_edges]``."""
    return metric_values_and_grads(exp, edge_masks, kind=kind, batch_size=batch_size)[1]


def metric_grad(exp: Experiment, edge_mask=None, *, kind: str = "projection") -> np.ndarray:
    """d metric / d edge mask at ``edge_mask`` (default all 1): ``[n_edges]``."""
    em = np.ones(exp.graph.n_edges, np.float32) if edge_mask is None else edge_mask
    return metric_grads(exp, np.asarray(em, np.float32)[None], kind=kind)[0]


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


MethodFn = Callable[..., MethodResult]

__all__ = [
    "MethodResult", "MethodFn", "METRICS", "DEFAULT_CIRCUIT_THRESHOLD", "distance",
    "projection", "metric", "metrics", "metric_grad", "metric_grads",
    "metric_values_and_grads", "metric_function", "metric_args",
    "ablated_readout", "node_scores_from_edges", "circuit_nodes", "structural",
    "reverse_topological_order", "chunk_size", "grad_chunk_size",
    "Timer",
]
