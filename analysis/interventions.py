"""Interventions on compiled models: capture, node patching and edge patching, in pure JAX.

The model has no layer norm, so the residual stream read by any component is exactly the sum
of the outputs of the components before it. This module makes that sum explicit: the
*senders* are ``embed`` (token embedding), ``pos`` (position embedding), every head
``L{l}.H{h}`` and every MLP ``L{l}.MLP``; the *receivers* are each head's three inputs
(``q``, ``k``, ``v`` read separately), each MLP's input and ``output`` (the unembedding).
A receiver's input is ``sum_s W[r, s] * out_s + (1 - W[r, s]) * ablated_s`` over the senders
before it, where ``W`` is 1 except on the edges being patched. With every mask at 1 this is
the ordinary forward pass (up to float32 summation order). Only the directions that carry
something are computed: a sender's output on the dimensions it writes, a receiver's input
on the dimensions it reads (the weights elsewhere are exactly zero), so the cost does not
grow with ``d_model``. Ablated values are read on each sender's write dimensions only.

Edge masks are arrays over ``graph.edges`` (1 = keep the clean term, 0 = use the ablated
value; values in between interpolate, and gradients flow through them, for EAP / EAP-IG /
subnetwork probing). A pair (sender, receiver) that is not an edge of the graph always keeps
its clean term. Node masks are arrays over ``graph.senders``: 0 replaces the sender's output
for *every* reader. Both are traced arguments, so ``run_patched`` compiles once per graph and
shape and can be called many times. ``run_masks`` / ``effects`` evaluate a stack of masks
in one jitted computation (``lax.map`` over vmapped groups; the stack is padded to a power
of two so a few compiled shapes serve every size); ``effects`` also compares each run with
the clean outputs on the device and returns only the summaries.

Semantics of a patched edge ``A -> B``: B's input gets A's *ablated* value in place of A's
output in the current (patched) run; every other reader of A still sees A's output. This is
ACDC's edge semantics. Ablated values are per sender ``[senders, batch, seq, d_model]``:

* ``zero``: zeros;
* ``mean``: each sender's output averaged over a reference batch, per position;
* ``resample``: each sender's output on paired corrupted inputs (run with their own
  padding mask). The receiving run keeps the clean inputs' attention mask.

``graph`` is an ``EdgeGraph`` (hashable, static under ``jit``): its edges are the
planted circuit's structural edges, or every (earlier sender, later receiver) pair with
``complete=True`` (extra pairs have ``structural: False`` and, by construction, no effect).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from rasplab.compiler.assemble import CompiledProgram
from rasplab.compiler.circuit import EdgeRecord, component_nodes, edge_key
from rasplab.compiler.model import attention, attention_mask, layer_params, mlp
from rasplab.compiler.names import Edge, Node
from rasplab.compiler.readout import Readout

from .registry import ABLATIONS

HIGHEST = jax.lax.Precision.HIGHEST


# ---------------------------------------------------------------------------------------
# The graph


@dataclass(frozen=True)
class EdgeGraph:
    """Static structure of a compiled model's component graph (hashable: a static argument
    of the jitted functions, so two equal graphs share compiled code).

    ``senders``: component names in forward order; ``receivers``: ``(component, input)``
    pairs in forward order; ``edges``: ``(sender index, receiver index)`` per edge, with
    ``edge_keys`` (``"embed->L3.H0.v"``), ``edge_records`` (the planted circuit's
    ``EdgeRecord``s; a pair of the complete graph that is not a structural edge gets an
    empty record) and ``structural`` (whether each edge is one of the planted circuit's).
    The remaining fields describe the network for the forward pass (read off its config
    and weights: the dims each component's weights touch, all of them for a dense one) and
    its ``readout``.
    """

    senders: tuple[str, ...]
    sender_slot: tuple[int, ...]
    receivers: tuple[tuple[str, str | None], ...]
    receiver_slot: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]
    edge_keys: tuple[str, ...]
    edge_records: tuple[EdgeRecord, ...] = field(repr=False, compare=False)
    structural: tuple[bool, ...] = ()
    num_layers: int = 0
    heads_per_layer: tuple[int, ...] = ()
    has_mlp: tuple[bool, ...] = ()
    bos_id: int = 0
    pad_id: int = 0
    causal: bool = False
    d_model: int = 0
    readout: Readout = Readout("categorical", ())
    complete: bool = False
    sender_writes: tuple[tuple[int, ...], ...] = ()  # residual dims each sender writes
    receiver_reads: tuple[tuple[int, ...], ...] = ()  # residual dims each receiver reads

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @property
    def n_senders(self) -> int:
        return len(self.senders)

    def edge_index(self, key: str | EdgeRecord | Edge) -> int:
        """Index of an edge given its name (``"embed->L3.H0.v"``), record or ``Edge``."""
        if not isinstance(key, str):
            key = edge_key(key)
        try:
            return self.edge_keys.index(key)
        except ValueError:
            raise KeyError(f"no edge {key!r} in this graph") from None

    def sender_index(self, name: str) -> int:
        try:
            return self.senders.index(name)
        except ValueError:
            raise KeyError(f"no component {name!r}; senders are {list(self.senders)}") from None

    def mask(self, edges: Sequence[str | EdgeRecord | int] = (), *, value: float = 1.0
             ) -> np.ndarray:
        """A float32 edge mask: ``value`` on the given edges, ``1 - value`` elsewhere."""
        m = np.full(self.n_edges, 1.0 - value, dtype=np.float32)
        for e in edges:
            m[e if isinstance(e, (int, np.integer)) else self.edge_index(e)] = value
        return m

    def edges_of(self, mask: np.ndarray) -> list[EdgeRecord]:
        """The edge records where ``mask`` is (rounded) 1."""
        return [self.edge_records[i] for i in np.flatnonzero(np.asarray(mask) > 0.5)]


def edge_graph(model: CompiledProgram, *, complete: bool = False) -> EdgeGraph:
    """The graph the engine patches: the planted circuit's structural edges, or every
    earlier-sender/later-receiver pair of the network with ``complete``.

    Reads the model as its three parts: the components and the dims their weights touch
    from ``model.network``, the structural edges from ``model.planted`` (never from the
    weights, so a rotated or compressed variant keeps its source's graph) and the decoding
    from ``model.readout``.
    """
    net, pc = model.network, model.planted
    cfg = net.config
    nodes = component_nodes(net.params, cfg.num_layers)
    senders = [n for n in nodes if n["kind"] != "output"]
    receivers: list[tuple[str, str | None]] = []
    receiver_slot: list[int] = []
    for n in nodes:
        if n["kind"] == "attn":
            for inp in ("q", "k", "v"):
                receivers.append((n["name"], inp))
                receiver_slot.append(n["slot"])
        elif n["kind"] in ("mlp", "output"):
            receivers.append((n["name"], None))
            receiver_slot.append(n["slot"])
    r_index = {r: i for i, r in enumerate(receivers)}
    structural = {(e.sender, e.receiver, e.input): e for e in pc.edges}
    known = {s["name"] for s in senders}
    for e in pc.edges:
        if e.sender not in known or (e.receiver, e.input) not in r_index:
            raise ValueError(f"the planted circuit's edge {e.key} names a component the "
                             "network does not have")
    pairs: list[tuple[int, int]] = []
    records: list[EdgeRecord] = []
    flags: list[bool] = []
    for ri, (rname, inp) in enumerate(receivers):
        for si, s in enumerate(senders):
            if s["slot"] >= receiver_slot[ri]:
                continue
            rec = structural.get((s["name"], rname, inp))
            if rec is None and not complete:
                continue
            flags.append(rec is not None)
            if rec is None:
                rec = EdgeRecord(Edge(Node.parse(s["name"]), Node.parse(rname), inp), (), (),
                                 True)
            pairs.append((si, r_index[(rname, inp)]))
            records.append(rec)
    dims = {n["name"]: (n["writes"], n["reads"]) for n in nodes}
    return EdgeGraph(
        senders=tuple(s["name"] for s in senders),
        sender_slot=tuple(s["slot"] for s in senders),
        receivers=tuple(receivers),
        receiver_slot=tuple(receiver_slot),
        edges=tuple(pairs),
        edge_keys=tuple(r.key for r in records),
        edge_records=tuple(records),
        structural=tuple(flags),
        num_layers=cfg.num_layers,
        heads_per_layer=tuple(int(h) for h in cfg.heads_per_layer),
        has_mlp=tuple(cfg.has_mlp(layer) for layer in range(cfg.num_layers)),
        bos_id=cfg.bos_id,
        pad_id=cfg.pad_id,
        causal=cfg.causal,
        d_model=cfg.d_model,
        readout=model.readout,
        complete=complete,
        sender_writes=tuple(tuple(int(d) for d in dims[s["name"]][0]) for s in senders),
        receiver_reads=tuple(tuple(int(d) for d in dims[name][1][inp])
                             for name, inp in receivers),
    )


# ---------------------------------------------------------------------------------------
# Inputs


def encode(compiled: CompiledProgram, inputs: Sequence[Sequence], width: int | None = None
           ) -> np.ndarray:
    """``[batch, width]`` int32 ids: BOS, the tokens, PAD (width defaults to 1 + longest)."""
    ids_of = compiled.token_ids
    inputs = [list(s) for s in inputs]
    longest = max((len(s) for s in inputs), default=0)
    width = 1 + longest if width is None else width
    if longest + 1 > width:
        raise ValueError(f"an input has {longest} tokens, more than width {width} - 1")
    if longest > compiled.config.max_seq_len:
        raise ValueError(
            f"an input has {longest} tokens but the model takes at most "
            f"{compiled.config.max_seq_len}"
        )
    out = np.full((len(inputs), width), ids_of[compiled.pad], dtype=np.int32)
    out[:, 0] = ids_of[compiled.bos]
    for b, seq in enumerate(inputs):
        for i, tok in enumerate(seq):
            if tok not in ids_of or tok in (compiled.bos, compiled.pad):
                raise ValueError(f"input {b}: token {tok!r} at position {i} is not in the vocab")
            out[b, 1 + i] = ids_of[tok]
    return out


def params_of(compiled: CompiledProgram) -> dict:
    """The weights as a dict of jnp arrays (what every function here takes as ``params``)."""
    return {k: jnp.asarray(v) for k, v in compiled.params.items()}


def real_positions(graph: EdgeGraph, ids) -> jnp.ndarray:
    """``[batch, seq]`` bool: positions holding an input token (not BOS, not PAD)."""
    ids = jnp.asarray(ids)
    return (ids != graph.bos_id) & (ids != graph.pad_id)


# ---------------------------------------------------------------------------------------
# The forward pass


class Run(NamedTuple):
    """One (possibly patched) run. ``readout`` is the output receiver's input @ unembed.

    With ``capture``: ``resid [B, T, d]`` (the output receiver's input: the final residual),
    ``outputs [senders, B, T, d]`` (what each sender wrote, after node patching),
    ``inputs [receivers, B, T, d]`` (what each receiver read, with its patched edges
    swapped), and per layer ``patterns [B, H, T, T]`` / ``hidden [B, T, h]`` (``None``
    where the layer has none). Without ``capture`` only ``readout`` is set.
    """

    readout: jnp.ndarray
    resid: jnp.ndarray | None = None
    outputs: jnp.ndarray | None = None
    inputs: jnp.ndarray | None = None
    patterns: tuple | None = None
    hidden: tuple | None = None


def _runs(idx: Sequence[int]) -> list[tuple[int, int, int]]:
    """Contiguous runs of sorted positions: ``(start, stop, offset)`` where ``offset`` is
    where the run begins in ``idx``."""
    runs: list[tuple[int, int, int]] = []
    for off, i in enumerate(idx):
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1, runs[-1][2])
        else:
            runs.append((i, i + 1, off))
    return runs


def _take(x, idx: Sequence[int]):
    """``x[..., idx]`` for static sorted ``idx``, as slices where it is contiguous."""
    runs = _runs(idx)
    if len(runs) == 1 and runs[0][0] == 0 and runs[0][1] == x.shape[-1]:
        return x
    if len(runs) > 8:
        return x[..., np.asarray(idx)]
    if not runs:
        return x[..., :0]
    parts = [x[..., a:b] for a, b, _ in runs]
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1)


def _add_at(x, idx: Sequence[int], y):
    """``x`` with ``y`` added at static sorted positions ``idx`` of the last axis."""
    runs = _runs(idx)
    if len(runs) > 8:
        return x.at[..., np.asarray(idx)].add(y)
    for a, b, off in runs:
        x = x.at[..., a:b].add(y[..., off : off + (b - a)])
    return x


@dataclass(frozen=True)
class _Link:
    edge: int
    sender: int
    src: tuple[int, ...]  # positions in the sender's write dims (shared directions)
    dst: tuple[int, ...]  # positions in the receiver's read dims


@cache
def _links(graph: EdgeGraph) -> tuple[tuple[_Link, ...], ...]:
    """Per receiver, its edges with the directions they share (empty ones dropped)."""
    out: list[list[_Link]] = [[] for _ in graph.receivers]
    for e, (s, r) in enumerate(graph.edges):
        writes = {d: i for i, d in enumerate(graph.sender_writes[s])}
        reads = graph.receiver_reads[r]
        shared = [(writes[d], j) for j, d in enumerate(reads) if d in writes]
        if shared:
            out[r].append(_Link(e, s, tuple(a for a, _ in shared), tuple(b for _, b in shared)))
    return tuple(tuple(x) for x in out)


def _setup(graph: EdgeGraph, params: dict, ids, ablated) -> dict:
    """Everything a patched run needs that does not depend on the masks: weights restricted
    to the dimensions each component reads and writes, ablated values on each sender's
    write dimensions, the embeddings and the attention mask. Computed once per call, outside
    any loop over masks."""
    ids = jnp.asarray(ids)
    b, t = ids.shape
    abl = jnp.asarray(ablated, params["embed.token"].dtype)  # [senders, B, T, d]
    writes, reads = graph.sender_writes, graph.receiver_reads
    recv_of = {r: i for i, r in enumerate(graph.receivers)}

    def rows(w, dims):  # a [d, X] weight restricted to the rows it reads
        return _take(w.T, dims).T

    w: dict[str, jnp.ndarray] = {}
    s = 2
    for layer in range(graph.num_layers):
        att = layer_params(params, layer, "attn")
        for i in range(graph.heads_per_layer[layer]):
            for inp in "qkv":
                dims = reads[recv_of[(f"L{layer}.H{i}", inp)]]
                w[f"L{layer}.H{i}.{inp}"] = rows(att[inp][i], dims)[None]
            w[f"L{layer}.H{i}.o"] = _take(att["o"][i], writes[s])[None]
            s += 1
        if graph.has_mlp[layer]:
            ff = layer_params(params, layer, "mlp")
            w[f"L{layer}.MLP.in"] = rows(ff["in"], reads[recv_of[(f"L{layer}.MLP", None)]])
            w[f"L{layer}.MLP.out"] = _take(ff["out"], writes[s])
            s += 1
    w["unembed"] = rows(params["unembed"], reads[recv_of[("output", None)]])
    tok = _take(params["embed.token"], writes[0])[ids]
    pos = jnp.broadcast_to(_take(params["embed.pos"][:t], writes[1])[None],
                           (b, t, len(writes[1])))
    return {
        "w": w, "tok": tok, "pos": pos,
        "abl": [_take(abl[k], writes[k]) for k in range(graph.n_senders)],
        "mask": attention_mask(ids, graph.pad_id, graph.causal),
    }


def _core(graph: EdgeGraph, pre: dict, edge_mask, node_mask, capture: bool) -> Run:
    """The component-wise forward pass on ``_setup``'s output (see the module docstring).

    Everything runs in the directions that matter: each sender computes only the residual
    dimensions it writes (non-zero output columns), each receiver reads only the ones it
    reads (non-zero input rows), so the cost does not grow with ``d_model``. A receiver's
    input is the running residual at its read dimensions plus, per edge into it,
    ``(1 - mask) * (ablated_s - out_s)`` on the directions the edge carries.
    """
    tok, w, abl_w, mask = pre["tok"], pre["w"], pre["abl"], pre["mask"]
    dtype = tok.dtype
    b, t = tok.shape[:2]
    d = graph.d_model
    em = jnp.asarray(edge_mask, dtype)
    nm = None if node_mask is None else jnp.asarray(node_mask, dtype)
    recv_of = {r: i for i, r in enumerate(graph.receivers)}
    links = _links(graph)
    writes, reads = graph.sender_writes, graph.receiver_reads

    outs: list[jnp.ndarray] = []  # each sender's output on its write dims [B, T, |W|]
    state = {"resid": jnp.zeros((b, t, d), dtype), "pending": []}

    def emit(x):
        s = len(outs)
        if nm is not None:
            x = nm[s] * x + (1.0 - nm[s]) * abl_w[s]
        outs.append(x)
        state["pending"].append(s)

    def input_of(r: int):
        for s in state["pending"]:
            state["resid"] = _add_at(state["resid"], writes[s], outs[s])
        state["pending"] = []
        x = _take(state["resid"], reads[r])
        for ln in links[r]:
            diff = _take(abl_w[ln.sender], ln.src) - _take(outs[ln.sender], ln.src)
            x = _add_at(x, ln.dst, (1.0 - em[ln.edge]) * diff)
        if not capture:
            return x, None
        full = state["resid"]
        for e, (s, rr) in enumerate(graph.edges):
            if rr == r and s < len(outs):
                full = _add_at(full, writes[s], (1.0 - em[e]) * (abl_w[s] - outs[s]))
        return x, full

    emit(tok)
    emit(pre["pos"])
    received: dict[int, jnp.ndarray] = {}
    patterns, hiddens = [], []
    for layer in range(graph.num_layers):
        h = graph.heads_per_layer[layer]
        pattern = hidden = None
        if h:
            xs = {}
            for i in range(h):
                for inp in "qkv":
                    r = recv_of[(f"L{layer}.H{i}", inp)]
                    xs[i, inp], full = input_of(r)
                    if capture:
                        received[r] = full
            pats = []
            for i in range(h):
                p = {x: w[f"L{layer}.H{i}.{x}"] for x in "qkvo"}
                out, pat = attention(p, xs[i, "q"], xs[i, "k"], xs[i, "v"], mask)
                emit(out[:, 0])
                pats.append(pat[:, 0])
            pattern = jnp.stack(pats, axis=1)
        if graph.has_mlp[layer]:
            r = recv_of[(f"L{layer}.MLP", None)]
            x, full = input_of(r)
            if capture:
                received[r] = full
            p = {"in": w[f"L{layer}.MLP.in"], "out": w[f"L{layer}.MLP.out"]}
            out, hidden = mlp(p, x)
            emit(out)
        patterns.append(pattern)
        hiddens.append(hidden)
    r = recv_of[("output", None)]
    x, full = input_of(r)
    readout = jnp.einsum("btd,dn->btn", x, w["unembed"], precision=HIGHEST)
    if not capture:
        return Run(readout)
    received[r] = full
    inputs = jnp.stack([received[i] for i in range(len(graph.receivers))])
    outputs = jnp.stack([_add_at(jnp.zeros((b, t, d), dtype), writes[s], o)
                         for s, o in enumerate(outs)])
    return Run(readout, full, outputs, inputs, tuple(patterns), tuple(hiddens))


def _forward(graph: EdgeGraph, params: dict, ids, ablated, edge_mask, node_mask,
             capture: bool) -> Run:
    return _core(graph, _setup(graph, params, ids, ablated), edge_mask, node_mask, capture)


@cache
def _jitted(graph: EdgeGraph, capture: bool):
    return jax.jit(partial(_forward, graph, capture=capture))


def _full_ablated(graph: EdgeGraph, ablated, ids) -> jnp.ndarray:
    """Ablated values broadcast to ``[senders, B, T, d]`` (one shape for every ablation, so
    zero, mean and resample runs share compiled code)."""
    b, t = jnp.shape(ids)
    if ablated is None:
        return jnp.zeros((graph.n_senders, b, t, graph.d_model), jnp.float32)
    return jnp.broadcast_to(jnp.asarray(ablated, jnp.float32), (graph.n_senders, b, t,
                                                                 graph.d_model))


def run_patched(
    graph: EdgeGraph, params: dict, ids, ablated=None, edge_mask=None, node_mask=None, *,
    capture: bool = False,
) -> Run:
    """One forward pass with edges and/or nodes patched (jitted; masks are traced).

    ``ablated``: ``[senders, B, T, d]`` or broadcastable (``None`` means zeros);
    ``edge_mask`` ``[n_edges]`` (``None``: all 1), ``node_mask`` ``[senders]`` (``None``: all 1).
    """
    ids = jnp.asarray(ids)
    ablated = _full_ablated(graph, ablated, ids)
    if edge_mask is None:
        edge_mask = jnp.ones(graph.n_edges, jnp.float32)
    return _jitted(graph, capture)(params, ids, ablated, edge_mask, node_mask)


def capture(graph: EdgeGraph, params: dict, ids) -> Run:
    """The clean run with every sender's output, receiver's input, pattern and hidden layer."""
    return run_patched(graph, params, ids, None, None, None, capture=True)


MIN_BUCKET = 16


def default_batch_size(graph: EdgeGraph, ids_shape: tuple[int, ...]) -> int:
    """How many masks are vmapped together: a power of two whose working set is a few MiB on
    CPU (cache-sized vmaps, looped over with ``lax.map``, run 2-4x faster there than one wide
    vmap) and about 1 GiB on accelerators."""
    width = sum(len(w) for w in graph.sender_writes) + sum(len(r) for r in graph.receiver_reads)
    per_mask = 4 * int(np.prod(ids_shape)) * (graph.d_model + 2 * width)
    cpu = jax.default_backend() == "cpu"
    budget, cap = ((8 << 20), 64) if cpu else ((1 << 30), 1024)
    k = max(1, min(cap, budget // max(per_mask, 1)))
    return 1 << (k.bit_length() - 1)


def _max_bucket(batch_size: int) -> int:
    return max(batch_size, 256 if jax.default_backend() == "cpu" else 4096)


def _bucket(m: int, batch_size: int) -> int:
    """Masks per call, padded up to a power of two (at least ``MIN_BUCKET``), so a handful
    of compiled shapes serve every stack size."""
    size = max(MIN_BUCKET, 1 << max(0, (m - 1).bit_length()))
    return min(size, _max_bucket(batch_size))


@cache
def _jitted_chunk(graph: EdgeGraph, with_nodes: bool, effects: bool, batch_size: int):
    """One jitted pass over a stack of masks: ``lax.map`` over vmapped groups of
    ``batch_size`` masks; ``effects`` compares each run with the clean read-out inside.
    Mask-independent work (restricted weights, ablated values, the clean decoding) is done
    once, outside the loop."""

    def many(params, ids, ablated, clean_readout, em, nm):
        pre = _setup(graph, params, ids, ablated)
        if effects:
            real = real_positions(graph, ids)
            c_codes, c_clean = decode_codes(graph, clean_readout)

        def one(masks):
            e, n = masks
            readout = _core(graph, pre, e, n if with_nodes else None, capture=False).readout
            if not effects:
                return Run(readout)
            return _changes(graph, real, c_codes, c_clean, clean_readout, readout)

        if batch_size >= em.shape[0]:
            return jax.vmap(one)((em, nm))
        return jax.lax.map(one, (em, nm), batch_size=batch_size)

    return jax.jit(many)


def mask_chunks(edge_masks: np.ndarray, node_masks: np.ndarray | None, step: int,
                size=lambda n: n):
    """The one mask-stack runner's loop: ``(lo, n, em, nm)`` per chunk of at most ``step``
    masks, each chunk padded with all-ones masks to ``size(n)`` rows, so a few compiled
    shapes serve every stack size (``nm`` is None without node masks)."""
    m = edge_masks.shape[0]
    for lo in range(0, m, step):
        n = min(step, m - lo)
        rows = size(n)
        em = np.ones((rows, edge_masks.shape[1]), np.float32)
        em[:n] = edge_masks[lo : lo + n]
        nm = None
        if node_masks is not None:
            nm = np.ones((rows, node_masks.shape[1]), np.float32)
            nm[:n] = node_masks[lo : lo + n]
        yield lo, n, em, nm


def _chunked(graph, params, ids, ablated, clean_readout, edge_masks, node_masks, batch_size,
             effects: bool):
    ids = jnp.asarray(ids)
    ablated = _full_ablated(graph, ablated, ids)
    edge_masks = np.asarray(edge_masks, np.float32).reshape(-1, graph.n_edges)
    m = edge_masks.shape[0]
    if m == 0:
        raise ValueError("no masks given")
    k = batch_size or default_batch_size(graph, tuple(ids.shape))
    with_nodes = node_masks is not None
    if with_nodes:
        node_masks = np.asarray(node_masks, np.float32).reshape(m, graph.n_senders)
    fn = _jitted_chunk(graph, with_nodes, effects, int(k))
    if clean_readout is None:
        clean_readout = jnp.zeros(())
    parts = [fn(params, ids, ablated, clean_readout, em, nm) for _, _, em, nm in
             mask_chunks(edge_masks, node_masks if with_nodes else None, _max_bucket(k),
                         lambda n: _bucket(n, k))]
    if len(parts) == 1 and parts[0][0].shape[0] == m:
        return parts[0]
    # joined on the host: slicing device arrays to every new M would compile a kernel each
    return jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs])[:m], *parts)


def run_masks(
    graph: EdgeGraph, params: dict, ids, ablated, edge_masks, node_masks=None, *,
    batch_size: int | None = None,
) -> Run:
    """``run_patched`` for a stack of masks ``[M, n_edges]`` (and ``[M, senders]``).

    Returns ``Run(readout [M, B, T, n_out])``. One jitted computation per call: the stack is
    padded to a power of two (so a few compiled shapes serve any ``M``) and evaluated as
    ``lax.map`` over vmapped groups of ``batch_size`` masks (default
    ``default_batch_size``: small on CPU, large on accelerators).
    """
    return _chunked(graph, params, ids, ablated, None, edge_masks, node_masks, batch_size,
                    effects=False)


def single_edge_masks(n_edges: int, base=None) -> np.ndarray:
    """``[n_edges, n_edges]``: row ``i`` is ``base`` (default all 1) with edge ``i`` set to 0."""
    base = np.ones(n_edges, np.float32) if base is None else np.asarray(base, np.float32)
    masks = np.tile(base, (n_edges, 1))
    masks[np.arange(n_edges), np.arange(n_edges)] = 0.0
    return masks


# ---------------------------------------------------------------------------------------
# Ablation values


def ablation_values(
    graph: EdgeGraph, params: dict, ablation: str, *, ids=None, corrupted_ids=None,
    reference_ids=None,
) -> jnp.ndarray:
    """Per-sender replacement values ``[senders, B', T, d]`` (``B'`` is 1 for zero/mean).

    ``zero``: zeros (needs ``ids`` or ``reference_ids`` for the length). ``mean``: each
    sender's output on ``reference_ids`` (default ``ids``) averaged over the batch, per
    position. ``resample``: each sender's output on ``corrupted_ids`` (paired row by row
    with the clean inputs).
    """
    if ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation {ablation!r}; use one of {', '.join(ABLATIONS)}")
    if ablation == "resample":
        if corrupted_ids is None:
            raise ValueError("resample ablation needs corrupted inputs")
        return capture(graph, params, corrupted_ids).outputs
    ref = reference_ids if reference_ids is not None else ids
    if ref is None:
        raise ValueError(f"{ablation} ablation needs the inputs (ids) to size its values")
    ref = jnp.asarray(ref)
    if ablation == "zero":
        return jnp.zeros((graph.n_senders, 1, ref.shape[1], graph.d_model), jnp.float32)
    return capture(graph, params, ref).outputs.mean(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------
# Reading outputs


def decode_codes(graph: EdgeGraph, readout) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Jittable decoding through the graph's ``Readout``: value indices ``[..., T]`` (-1
    for categorical ``None``) and the clean mask, exactly as ``compiler.model.decode``."""
    return graph.readout.codes(readout, jnp)


class Change(NamedTuple):
    """How a patched run's outputs differ from the clean run's, over real positions.

    ``max_change``: largest absolute read-out difference. ``changed``: positions whose
    decoded value differs, or whose read-out was clean and no longer is (no longer within
    the decoder's tolerance of a value). Leading axes follow the read-out's (e.g. masks).
    """

    max_change: jnp.ndarray  # [...]
    n_changed: jnp.ndarray  # [...] positions changed
    changed: jnp.ndarray  # [..., B, T] bool


def _changes(graph: EdgeGraph, real, c_codes, c_clean, clean_readout, readout) -> Change:
    codes, clean = decode_codes(graph, readout)
    changed = ((codes != c_codes) | (c_clean & ~clean)) & real
    diff = jnp.abs(jnp.asarray(readout) - jnp.asarray(clean_readout)).max(-1, initial=0.0)
    diff = jnp.where(real, diff, 0.0)
    return Change(diff.max((-2, -1)), changed.sum((-2, -1)), changed)


def compare(graph: EdgeGraph, ids, clean_readout, readout) -> Change:
    """Compare read-outs ``[..., B, T, n]`` with the clean read-out ``[B, T, n]``."""
    c_codes, c_clean = decode_codes(graph, clean_readout)
    return _changes(graph, real_positions(graph, ids), c_codes, c_clean, clean_readout,
                    readout)


def effects(
    graph: EdgeGraph, params: dict, ids, ablated, clean_readout, edge_masks, node_masks=None,
    *, batch_size: int | None = None,
) -> Change:
    """``compare`` for a stack of masks, computed inside the vmapped chunks (only the
    per-mask summaries leave the device): ``Change`` with leading axis ``M``."""
    return _chunked(graph, params, ids, ablated, jnp.asarray(clean_readout), edge_masks,
                    node_masks, batch_size, effects=True)


@cache
def _jitted_effect(graph: EdgeGraph):
    def one(params, ids, ablated, clean_readout, em, nm):
        run = _forward(graph, params, ids, ablated, em, nm, capture=False)
        return compare(graph, ids, clean_readout, run.readout)

    return jax.jit(one)


# ---------------------------------------------------------------------------------------
# A prepared dataset


@dataclass(frozen=True, eq=False)
class Experiment:
    """A graph, weights, clean inputs and ablated values: everything a patching run needs.

    Build with ``prepare``. Methods are thin wrappers over the pure functions above.
    """

    compiled: CompiledProgram = field(repr=False)
    graph: EdgeGraph
    params: dict = field(repr=False)
    ids: jnp.ndarray = field(repr=False)
    ablation: str
    ablated: jnp.ndarray = field(repr=False)  # [senders, B, T, d]
    clean: Run = field(repr=False)  # captured clean run
    corrupted_ids: jnp.ndarray | None = field(default=None, repr=False)
    corruption: str | None = None  # the named distribution of the corrupted inputs

    @property
    def real(self) -> jnp.ndarray:
        """``[B, T]`` positions holding input tokens (where outputs are compared)."""
        return real_positions(self.graph, self.ids)

    def run(self, edge_mask=None, node_mask=None, *, capture: bool = False) -> Run:
        return run_patched(self.graph, self.params, self.ids, self.ablated, edge_mask,
                           node_mask, capture=capture)

    def run_masks(self, edge_masks, node_masks=None, *, batch_size: int | None = None) -> Run:
        return run_masks(self.graph, self.params, self.ids, self.ablated, edge_masks,
                         node_masks, batch_size=batch_size)

    def effect(self, edge_mask=None, node_mask=None) -> Change:
        """How one patched run's outputs differ from the clean ones (jitted)."""
        em = jnp.ones(self.graph.n_edges) if edge_mask is None else edge_mask
        em = jnp.asarray(em, jnp.float32)
        nm = None if node_mask is None else jnp.asarray(node_mask, jnp.float32)
        return _jitted_effect(self.graph)(self.params, self.ids, self.ablated,
                                          self.clean.readout, em, nm)

    def effects(self, edge_masks, node_masks=None, *, batch_size: int | None = None) -> Change:
        """One ``Change`` per mask (leading axis ``M``), from vmapped chunks of masks."""
        return effects(self.graph, self.params, self.ids, self.ablated, self.clean.readout,
                       edge_masks, node_masks, batch_size=batch_size)

    def edge_sweep(self, base=None, *, batch_size: int | None = None) -> Change:
        """Patch every edge alone (on top of ``base``, default all kept): ``[n_edges]``."""
        return self.effects(single_edge_masks(self.graph.n_edges, base), batch_size=batch_size)

    def node_sweep(self, *, batch_size: int | None = None) -> Change:
        """Patch every sender's output alone: ``[senders]``."""
        n = self.graph.n_senders
        nodes = np.ones((n, n), np.float32)
        np.fill_diagonal(nodes, 0.0)
        edges = np.ones((n, self.graph.n_edges), np.float32)
        return self.effects(edges, nodes, batch_size=batch_size)

    def decoded(self, readout=None) -> list[list]:
        """Decoded values ``[B][T]`` (None where categorical None) of a read-out."""
        readout = self.clean.readout if readout is None else readout
        codes, _ = decode_codes(self.graph, readout)
        return self.graph.readout.values_of(codes)


def prepare(
    compiled: CompiledProgram, inputs: Sequence[Sequence], ablation: str = "resample", *,
    corrupted: Sequence[Sequence] | None = None, reference: Sequence[Sequence] | None = None,
    complete: bool = False, graph: EdgeGraph | None = None, corruption: str | None = None,
) -> Experiment:
    """Encode the inputs (all to one width), run the clean model and the ablation source.

    ``corrupted`` pairs with ``inputs`` row by row (resample); ``corruption`` names the
    distribution it was drawn from (``programs/corruptions.py``; default ``"given"``), and
    every truth and score computed on the experiment carries that name. ``reference`` is
    the dataset whose per-position mean ``mean`` ablation uses (default: ``inputs``).
    """
    if ablation not in ABLATIONS:
        raise ValueError(f"unknown ablation {ablation!r}; use one of {', '.join(ABLATIONS)}")
    if ablation == "resample" and corrupted is None:
        raise ValueError("resample ablation needs corrupted inputs")
    graph = graph if graph is not None else edge_graph(compiled, complete=complete)
    seqs = [list(s) for s in inputs]
    others = [list(s) for s in (corrupted or [])] + [list(s) for s in (reference or [])]
    width = 1 + max((len(s) for s in seqs + others), default=0)
    ids = jnp.asarray(encode(compiled, seqs, width))
    corrupted_ids = None
    if corrupted is not None:
        if len(corrupted) != len(seqs):
            raise ValueError(f"{len(corrupted)} corrupted inputs for {len(seqs)} clean ones")
        corrupted_ids = jnp.asarray(encode(compiled, corrupted, width))
    ref_ids = jnp.asarray(encode(compiled, reference, width)) if reference is not None else None
    params = params_of(compiled)
    ablated = _full_ablated(graph, ablation_values(
        graph, params, ablation, ids=ids, corrupted_ids=corrupted_ids, reference_ids=ref_ids,
    ), ids)
    clean = capture(graph, params, ids)
    if ablation == "resample":
        corruption = corruption or "given"
    return Experiment(compiled, graph, params, ids, ablation, ablated, clean, corrupted_ids,
                      corruption if ablation == "resample" else None)


__all__ = [
    "ABLATIONS", "EdgeGraph", "edge_graph", "encode", "params_of", "real_positions", "Run",
    "run_patched", "capture", "run_masks", "default_batch_size", "MIN_BUCKET",
    "single_edge_masks", "ablation_values", "decode_codes", "Change", "compare", "effects",
    "Experiment", "prepare",
]
