"""Rung 3 of the realism ladder: a fresh transformer trained to implement the program with
its circuit enforced (InterpBench's strict interchange intervention training,
``variants/siit.py``).

**Architecture** (:func:`architecture`), InterpBench's rule on the compiled model's shape:
``n_layers = max(2, L)``, ``n_heads = max(4, most heads in a compiled layer)`` in every
layer, head width ``max(2, ceil(key_size / 2))`` (about half the compiled one), ``d_model``
about half the compiled one too (rounded up to a multiple of 8, at least 16, at most 32: a
dense model needs no private direction per value, as the compressed rung shows, and the
MLPs, ``4 x d_model`` wide in every layer, dominate the cost of a CPU step, so this keeps
a tracr-library program's training within minutes on two cores); no layer norm, no biases, ReLU
MLPs, unscaled softmax attention (the :class:`~rasplab.compiler.network.Network` key
schema). Embeddings, positions and the unembedding ``[d, n_out]`` are learned; the
read-out is decoded by the ``nearest`` readout (argmax, ``None`` below 0.5, or the nearest
grid value), which the categorical loss is built to match.

**Alignment** (:func:`align`), from the compiled layout: the component that computes a
variable in the compiled model (head ``L{l}.H{h}``, MLP ``L{l}.MLP``) is aligned with the
component of the same name in the new model (it has at least as many layers and heads).
Where a compiled MLP holds slices for several variables, the new MLP's hidden units are
split into that many equal contiguous ranges, one per variable. Input variables
(``tokens``, ``indices``, constants) stay with ``embed``/``pos`` and are not intervened on.
Every other head and MLP is **outside** the circuit; the strict loss resample-ablates them.

**Planted circuit** of the trained model: components with the variables they are aligned
with (and MLP unit slices), edges for every earlier-sender/later-receiver pair (the weights
are dense, so every pair is structurally connected; an edge whose compiled counterpart
exists carries that edge's variables, the others carry nothing), and variables whose
``basis`` is **estimated** (``BasisKind.ESTIMATED``): categorical value ``j``'s column is
the mean output of the variable's aligned components at positions where the variable is
``j``, minus their mean output (uncentred for a one-valued variable); a numerical
variable's column is the least-squares slope of that output on the value. ``tokens`` and
``indices`` are read off ``embed``/``pos`` the same way. Nothing downstream may treat these
as exact subspaces. After training the per-ablation ground truths are recomputed on the
trained model by intervention (``analysis/ground_truth.py``), stored as verified truths and
compared, edge by edge, with the compiled model's (``meta["variant"]["truths"]``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rasplab.compiler import rasp
from rasplab.compiler.assemble import CompiledProgram, Component, ModelConfig
from rasplab.compiler.circuit import (
    BasisKind,
    ComponentRecord,
    EdgeRecord,
    MLPSlice,
    PlantedCircuit,
    Truth,
    Variable,
)
from rasplab.compiler.names import Edge, Node
from rasplab.compiler.readout import Readout, ReadoutKind

from . import siit

if TYPE_CHECKING:
    from rasplab.programs import ProgramSpec

INPUT_KINDS = ("TokensType", "IndicesType", "Full", "ConstantSOp")
DEFAULT_TRUTHS = ("resample",)


# ---------------------------------------------------------------------------------------
# Architecture and alignment


@dataclass(frozen=True)
class Architecture:
    num_layers: int
    n_heads: int
    d_head: int
    d_model: int
    d_mlp: int

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def architecture(compiled: CompiledProgram) -> Architecture:
    """The new model's shape (see the module docstring)."""
    c = compiled.config
    d = min(32, max(16, 8 * math.ceil(c.d_model / 16)))
    return Architecture(num_layers=max(2, c.num_layers), n_heads=max(4, c.num_heads),
                        d_head=max(2, math.ceil(c.key_size / 2)), d_model=d, d_mlp=4 * d)


@dataclass(frozen=True)
class Site:
    """A low-level component aligned with a variable: a head, or MLP units ``[lo, hi)``."""

    component: str
    units: tuple[int, int] | None = None


@dataclass(frozen=True)
class Alignment:
    """Program variable -> the new model's components implementing it; ``ops`` the
    compiled op of each; ``outside``: heads and MLPs outside the circuit."""

    variables: Mapping[str, tuple[Site, ...]]
    ops: Mapping[str, str]
    outside: tuple[str, ...]

    @property
    def circuit(self) -> tuple[str, ...]:
        names = []
        for sites in self.variables.values():
            for s in sites:
                if s.component not in names:
                    names.append(s.component)
        return tuple(names)

    def to_dict(self) -> dict[str, Any]:
        return {"variables": {v: [{"component": s.component,
                                   "units": list(s.units) if s.units else None}
                                  for s in sites] for v, sites in self.variables.items()},
                "outside": list(self.outside)}


def align(compiled: CompiledProgram, arch: Architecture) -> Alignment:
    """Map the compiled layout onto the new model (see the module docstring)."""
    per_mlp: dict[str, list[str]] = {}
    variables: dict[str, list[Site]] = {}
    ops: dict[str, str] = {}
    for comp in compiled.components:
        ops.setdefault(comp.node, comp.op)
        if comp.kind == "attn":
            variables.setdefault(comp.node, []).append(Site(comp.name))
        else:
            users = per_mlp.setdefault(comp.name, [])
            if comp.node not in users:
                users.append(comp.node)
    for name, users in per_mlp.items():
        for i, v in enumerate(users):
            lo, hi = i * arch.d_mlp // len(users), (i + 1) * arch.d_mlp // len(users)
            variables.setdefault(v, []).append(Site(name, (lo, hi)))
    used = {s.component for sites in variables.values() for s in sites}
    every = [f"L{layer}.H{h}" for layer in range(arch.num_layers) for h in range(arch.n_heads)]
    every += [f"L{layer}.MLP" for layer in range(arch.num_layers)]
    outside = tuple(sorted((c for c in every if c not in used), key=_forward_order))
    ordered = {v: tuple(sorted(s, key=lambda x: _forward_order(x.component)))
               for v, s in variables.items()}
    return Alignment(ordered, ops, outside)


def _forward_order(name: str) -> tuple[int, int, int]:
    n = Node.parse(name)
    return (n.layer, 1 if n.head is None else 0, n.head or 0)


def options(align_: Alignment, arch: Architecture) -> siit.Options:
    """The alignment as intervention masks (``siit.Options``)."""
    names = tuple(align_.variables)
    n = 1 + len(names) + len(align_.outside)
    heads = np.zeros((n, arch.num_layers, arch.n_heads), np.float32)
    units = np.zeros((n, arch.num_layers, arch.d_mlp), np.float32)

    def mark(row: int, comp: str, span: tuple[int, int] | None) -> None:
        node = Node.parse(comp)
        if node.head is not None:
            heads[row, node.layer, node.head] = 1.0
        else:
            lo, hi = span or (0, arch.d_mlp)
            units[row, node.layer, lo:hi] = 1.0

    for i, v in enumerate(names, start=1):
        for s in align_.variables[v]:
            mark(i, s.component, s.units)
    for j, comp in enumerate(align_.outside, start=1 + len(names)):
        mark(j, comp, None)
    return siit.Options(heads, units, names, align_.outside)


def init_params(compiled: CompiledProgram, arch: Architecture, seed: int,
                write_scale: float = 1.0, unembed_scale: float = 1.0) -> dict[str, np.ndarray]:
    """Seeded Gaussian weights in the Network schema (numpy: deterministic, no compile).
    Reads keep unit scale; what heads and MLPs write is multiplied by ``write_scale`` and
    the unembedding by ``unembed_scale``."""
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
    d, H, k, M = arch.d_model, arch.n_heads, arch.d_head, arch.d_mlp
    n_tok = len(compiled.token_ids)
    n_out = compiled.params["unembed"].shape[1]
    g = lambda shape, scale: (rng.standard_normal(shape) * scale).astype(np.float32)
    n_pos = compiled.config.max_seq_len + 1
    p = {"embed.token": g((n_tok, d), 1.0), "embed.pos": g((n_pos, d), 1.0)}
    for layer in range(arch.num_layers):
        pre = f"layers.{layer}."
        p[pre + "attn.q"] = g((H, d, k), 1 / math.sqrt(d))
        p[pre + "attn.k"] = g((H, d, k), 1 / math.sqrt(d))
        p[pre + "attn.v"] = g((H, d, k), 1 / math.sqrt(d))
        p[pre + "attn.o"] = g((H, k, d), write_scale / math.sqrt(H * k))
        p[pre + "mlp.in"] = g((d, M), math.sqrt(2 / d))
        p[pre + "mlp.out"] = g((M, d), write_scale / math.sqrt(M))
    p["unembed"] = g((d, n_out), unembed_scale / math.sqrt(d))
    return p


# ---------------------------------------------------------------------------------------
# Data


def _sample(compiled: CompiledProgram, spec: ProgramSpec | None, seed: int, n: int
            ) -> tuple[list, list]:
    """``n`` base inputs and a same-length source for each (the program's samplers, or
    uniform tokens for a program without a library record)."""
    rng = np.random.default_rng(seed)
    if spec is not None:
        bases = spec.sample_clean(rng, n)
        return bases, spec.sample_corrupted(rng, bases)
    vocab = list(compiled.vocab)
    lengths = rng.integers(1, compiled.config.max_seq_len + 1, size=n)
    bases = [[vocab[int(i)] for i in rng.integers(0, len(vocab), int(k))] for k in lengths]
    sources = [[vocab[int(i)] for i in rng.integers(0, len(vocab), len(b))] for b in bases]
    return bases, sources


def library_spec(compiled: CompiledProgram) -> ProgramSpec | None:
    """The library record of the program ``compiled`` was built from (``meta["source"]``,
    same vocabulary and length), or None."""
    from rasplab.compiler.jsonvalues import decode_value

    src = compiled.meta.get("source") or {}
    if not src.get("library"):
        return None
    from rasplab import programs

    try:
        spec = programs.get(src["library"])
    except (KeyError, ValueError):
        return None
    same = (list(spec.vocab) == list(compiled.vocab)
            and [decode_value(v) for v in src.get("vocab", [])] == list(compiled.vocab)
            and src.get("max_seq_len") == spec.max_seq_len == compiled.config.max_seq_len)
    return spec if same else None


def _seeds(seed: int) -> tuple[int, int, int]:
    """Independent seeds: training pairs, held-out pairs, variable choice."""
    return tuple(int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(5)[2:])


# ---------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class Retrained:
    """A trained model with its alignment and training record."""

    compiled: CompiledProgram
    arch: Architecture
    alignment: Alignment
    trained: siit.Trained
    program: rasp.SOp

    @property
    def params(self) -> dict[str, np.ndarray]:
        return self.trained.params


def retrain(compiled: CompiledProgram, *, program: rasp.SOp | None = None,
            spec: ProgramSpec | None = None, checkpoint: str | Path | None = None,
            progress: bool = True, stop_after: int | None = None,
            arch: Architecture | None = None, **config: Any) -> Retrained:
    """Train a fresh model on ``compiled``'s program with SIIT (``config``: the fields of
    :class:`~rasplab.variants.siit.SIITConfig`). The interpreter gives every target, so the
    program is needed: ``program`` or ``spec`` (its library record, whose samplers draw the
    inputs)."""
    if "variant" in compiled.meta:
        raise ValueError(f"the model is already a {compiled.meta['variant']['rung']} variant; "
                         "retrain from the compiled model")
    if program is None:
        spec = spec or library_spec(compiled)
        if spec is None:
            raise ValueError("retraining needs the program (the interpreter gives the "
                             "targets): pass program= or spec=")
        program = spec.build()
    cfg = siit.SIITConfig(**config)
    for name in ("steps", "batch", "n_train", "n_heldout", "eval_every", "checkpoint_every"):
        value, lo = getattr(cfg, name), 0 if name == "steps" else 1
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
            raise ValueError(f"{name} must be a whole number >= {lo}, got {value!r}")
    from rasplab.compiler.interchange import as_compiled

    t0 = time.perf_counter()
    program = as_compiled(program, compiled.vocab, compiled.config.max_seq_len)
    arch = arch or architecture(compiled)
    al = align(compiled, arch)
    opts = options(al, arch)
    readout = Readout(compiled.readout.encoding, compiled.readout.values, ReadoutKind.NEAREST)
    info = siit.OutputInfo.of(readout)
    width = compiled.config.max_seq_len + 1
    s_train, s_held, s_var = _seeds(cfg.seed)
    common = dict(readout=readout, token_ids=compiled.token_ids, bos=compiled.bos,
                  pad=compiled.pad, width=width, causal=compiled.config.causal)
    bases, sources = _sample(compiled, spec, s_train, cfg.n_train)
    pool = siit.make_pairs(program, bases, sources, opts.variables,
                           rng=np.random.default_rng(s_var), **common)
    hb, hs = _sample(compiled, spec, s_held, cfg.n_heldout)
    held = siit.make_pairs(program, hb, hs, opts.variables, rng=np.random.default_rng(0),
                           all_variables=True, **common)
    heldout = siit.eval_set(held, opts)
    prepare_s = time.perf_counter() - t0
    geom = siit.Geometry(arch.num_layers, arch.n_heads, arch.d_mlp,
                         compiled.token_ids[compiled.pad], bool(compiled.config.causal))
    fp = siit.fingerprint(arch.to_dict(), al.to_dict(), *[compiled.params[k] for k in
                                                           sorted(compiled.params)])
    params0 = init_params(compiled, arch, cfg.seed, cfg.write_scale, cfg.unembed_scale)
    trained = siit.train(params0, geom, info, opts, pool,
                         heldout, cfg, checkpoint=checkpoint, progress=progress,
                         stop_after=stop_after, fingerprint_=fp, prepare_seconds=prepare_s,
                         desc=f"retrain {compiled.meta.get('name', compiled.output)}")
    return Retrained(compiled, arch, al, trained, program)


# ---------------------------------------------------------------------------------------
# The trained model as a CompiledProgram


def _components(compiled: CompiledProgram, al: Alignment) -> list[Component]:
    out = []
    for v, sites in al.variables.items():
        for s in sites:
            node = Node.parse(s.component)
            if node.head is not None:
                out.append(Component(s.component, node.layer, "attn", v, al.ops[v], node.head, 1))
            else:
                lo, hi = s.units
                out.append(Component(s.component, node.layer, "mlp", v, al.ops[v], lo, hi - lo))
    return sorted(out, key=lambda c: (_forward_order(c.name), c.index))


def _circuit(compiled: CompiledProgram, arch: Architecture, al: Alignment,
             bases: Mapping[str, np.ndarray]) -> PlantedCircuit:
    src = compiled.planted
    computes: dict[str, list[str]] = {}
    slices: dict[str, list[MLPSlice]] = {}
    ops: dict[str, list[str]] = {}
    for v, sites in al.variables.items():
        for s in sites:
            computes.setdefault(s.component, []).append(v)
            ops.setdefault(s.component, [])
            if al.ops[v] not in ops[s.component]:
                ops[s.component].append(al.ops[v])
            if s.units is not None:
                slices.setdefault(s.component, []).append(MLPSlice(v, al.ops[v], s.units))
    for name in ("embed", "pos"):
        computes[name] = list(src.component(name).computes)
    names = ["embed", "pos"]
    for layer in range(arch.num_layers):
        names += [f"L{layer}.H{h}" for h in range(arch.n_heads)] + [f"L{layer}.MLP"]
    names.append("output")
    slot = lambda n: (-1 if n in ("embed", "pos") else 2 * arch.num_layers if n == "output"
                      else 2 * Node.parse(n).layer + (Node.parse(n).head is None))
    components = tuple(ComponentRecord(
        node=Node.parse(n), slot=slot(n), computes=tuple(computes.get(n, ())),
        ops=tuple(ops.get(n, ())), slices=tuple(slices.get(n, ()))) for n in names)
    known = {(e.sender, e.receiver, e.input): e for e in src.edges}
    edges = []
    receivers = [(n, inp) for n in names if n not in ("embed", "pos")
                 for inp in (("q", "k", "v") if Node.parse(n).head is not None else (None,))]
    for rname, inp in receivers:
        for sname in names:
            if slot(sname) >= slot(rname) or sname == "output":
                continue
            e = known.get((sname, rname, inp))
            edges.append(EdgeRecord(Edge(Node.parse(sname), Node.parse(rname), inp),
                                    e.carries if e else (), e.directions if e else (),
                                    e.constant if e else False))
    variables = {}
    for name, v in src.variables.items():
        sites = al.variables.get(name, ())
        by = tuple(dict.fromkeys(s.component for s in sites)) or v.computed_by
        variables[name] = dataclasses.replace(v, computed_by=by, basis=bases[name],
                                              basis_kind=BasisKind.ESTIMATED)
    return PlantedCircuit(output=src.output, d_model=arch.d_model, components=components,
                          edges=tuple(edges), variables=variables, selectors=src.selectors,
                          dag=src.dag)


def estimate_bases(r: Retrained, inputs: Sequence[Sequence]) -> dict[str, np.ndarray]:
    """Each variable's estimated basis ``[d_model, k]`` on ``inputs`` (module docstring)."""
    import jax.numpy as jnp
    from rasplab.compiler.interchange import variable_ids

    compiled, arch, al = r.compiled, r.arch, r.alignment
    inputs = [list(x) for x in inputs]
    ids = siit._encode(compiled.token_ids, compiled.bos, compiled.pad, inputs,
                       compiled.config.max_seq_len + 1)
    geom = siit.Geometry(arch.num_layers, arch.n_heads, arch.d_mlp,
                         compiled.token_ids[compiled.pad], bool(compiled.config.causal))
    p = {k: jnp.asarray(v) for k, v in r.params.items()}
    _, zs, hidden = siit.forward(p, jnp.asarray(ids), geom)
    zs = [np.asarray(z, np.float64) for z in zs]
    hidden = [np.asarray(h, np.float64) for h in hidden]
    sops = variable_ids(r.program)
    src = compiled.planted
    T = ids.shape[1]
    pos_out = np.broadcast_to(r.params["embed.pos"][:T][None], ids.shape + (arch.d_model,))
    tok_out = r.params["embed.token"][ids]
    evaluate = rasp.causal_evaluate if compiled.config.causal else rasp.evaluate
    out: dict[str, np.ndarray] = {}
    for name, var in src.variables.items():
        sites = al.variables.get(name)
        if sites:
            x = np.zeros(ids.shape + (arch.d_model,))
            for s in sites:
                n = Node.parse(s.component)
                if n.head is not None:
                    o = np.asarray(r.params[f"layers.{n.layer}.attn.o"], np.float64)[n.head]
                    x += zs[n.layer][:, n.head] @ o
                else:
                    lo, hi = s.units
                    w = np.asarray(r.params[f"layers.{n.layer}.mlp.out"], np.float64)[lo:hi]
                    x += hidden[n.layer][..., lo:hi] @ w
        elif "pos" in var.computed_by:
            x = np.asarray(pos_out, np.float64)
        else:
            x = np.asarray(tok_out, np.float64)
        rows, vals = [], []
        for b, xs in enumerate(inputs):
            try:
                values = evaluate(sops[name], xs) if name in sops else [None] * len(xs)
            except rasp.EvaluationError:
                continue
            for i, val in enumerate(values):
                if val is not None:
                    rows.append(x[b, 1 + i])
                    vals.append(val)
        out[name] = _class_directions(var, np.asarray(rows).reshape(-1, arch.d_model), vals,
                                      arch.d_model)
    return out


def _class_directions(var: Variable, rows: np.ndarray, vals: list, d: int) -> np.ndarray:
    from rasplab.compiler.values import same_value

    k = len(var.labels)
    basis = np.zeros((d, k))
    if not len(rows):
        return basis
    mean = rows.mean(0)
    if var.encoding == "numerical":
        v = np.asarray([float(x) for x in vals])
        var_v = ((v - v.mean()) ** 2).mean()
        basis[:, 0] = ((rows - mean) * (v - v.mean())[:, None]).mean(0) / var_v if var_v > 0 \
            else mean
        return basis
    for j, value in enumerate(var.values):
        sel = np.array([same_value(x, value) for x in vals])
        if sel.any():
            basis[:, j] = rows[sel].mean(0) - (mean if k > 1 else 0.0)
    return basis


def as_model(r: Retrained, *, bases_inputs: Sequence[Sequence] | None = None,
             spec: ProgramSpec | None = None) -> CompiledProgram:
    """The trained model as an approximate ``CompiledProgram`` (readout ``nearest``)."""
    compiled, arch, t = r.compiled, r.arch, r.trained
    if bases_inputs is None:
        bases_inputs, _ = _sample(compiled, spec, 12345, 512)
    bases = estimate_bases(r, bases_inputs)
    L = arch.num_layers
    cfg = ModelConfig(num_layers=L, num_heads=arch.n_heads, key_size=arch.d_head,
                      mlp_hidden_size=arch.d_mlp, d_model=arch.d_model,
                      max_seq_len=compiled.config.max_seq_len,
                      vocab_size=compiled.config.vocab_size, causal=compiled.config.causal,
                      heads_per_layer=[arch.n_heads] * L, mlp_hidden_per_layer=[arch.d_mlp] * L)
    info = {
        "rung": "retrained", "seed": int(t.config.seed), "method": "siit",
        "config": t.config.to_dict(), "architecture": arch.to_dict(),
        "alignment": r.alignment.to_dict(), "reference": "interpreter",
        "heldout": {"inputs": t.metrics.accuracy, "positions": t.metrics.accuracy_positions,
                    "n_inputs": t.metrics.n_inputs},
        "metrics": t.metrics.to_dict(), "steps": t.step, "steps_done": t.steps_done,
        "seconds": t.seconds, "prepare_seconds": t.prepare_seconds,
        "steps_per_s": t.steps_per_s, "reached_at": t.reached_at,
        "reached": t.reached_at is not None,
        "history": [list(h) for h in t.history],
        "losses": [[float(x) for x in row] for row in t.losses[-20:]],
        "basis": "estimated: class means of the aligned components' outputs",
    }
    meta = {**compiled.meta, "readout": "nearest", "variant": info}
    return CompiledProgram(
        config=cfg, params={k: np.asarray(v, np.float32) for k, v in r.params.items()},
        residual_labels=[f"retrained:{i}" for i in range(arch.d_model)],
        vocab=list(compiled.vocab), bos=compiled.bos, pad=compiled.pad, output=compiled.output,
        variables=compiled.variables, selectors=compiled.selectors,
        components=_components(compiled, r.alignment), meta=meta,
        circuit=_circuit(compiled, arch, r.alignment, bases),
    )


# ---------------------------------------------------------------------------------------
# Ground truth on the trained model, against the compiled one's


def truths(model: CompiledProgram, compiled: CompiledProgram, spec: ProgramSpec | None,
           clean: Sequence[Sequence], corrupted: Sequence[Sequence],
           ablations: Sequence[str] = DEFAULT_TRUTHS) -> tuple[CompiledProgram, dict]:
    """Recompute the effective circuit per ablation on the trained ``model`` and on
    ``compiled`` (same inputs), verify it by intervention, store it in the model's planted
    circuit and say where the two differ (edge names are shared: the alignment keeps the
    compiled components' names)."""
    from rasplab.analysis.ground_truth import ground_truth

    report: dict[str, Any] = {}
    records = []
    corruption = "same-length" if spec is not None else "uniform-same-length"
    for ablation in ablations:
        kw = dict(corrupted=corrupted if ablation == "resample" else None,
                  corruption=corruption if ablation == "resample" else None)
        mine = ground_truth(model, clean, ablation, **kw)
        theirs = ground_truth(compiled, clean, ablation, **kw)
        a, b = set(mine.keys), set(theirs.keys)
        v = mine.verification
        report[ablation] = {
            "retrained": sorted(a), "compiled": sorted(b),
            "only_retrained": sorted(a - b), "only_compiled": sorted(b - a),
            "same": a == b, "faithful": v.outputs_unchanged, "minimal": not v.failures,
            "verified": v.ok, "samples": mine.samples, "corruption": kw["corruption"],
        }
        records.append(Truth(ablation, kw["corruption"] or "", tuple(mine.keys), mine.samples,
                             v.outputs_unchanged, not v.failures))
    model = dataclasses.replace(model, circuit=model.planted.with_truths(*records))
    model.meta = {**model.meta, "variant": {**model.meta["variant"], "truths": report}}
    return model, report


def make_variant(compiled: CompiledProgram, *, seed: int = 0, spec: ProgramSpec | None = None,
                 program: rasp.SOp | None = None, checkpoint: str | Path | None = None,
                 progress: bool = True, truth_ablations: Sequence[str] = DEFAULT_TRUTHS,
                 truth_samples: int = 256, **config: Any) -> CompiledProgram:
    """The retrained rung as a model (``variants.make("retrained", ...)``): SIIT training,
    then the trained model as an approximate ``CompiledProgram`` whose ``meta["variant"]``
    records config, seed, losses, held-out accuracy, IIA and strict accuracy, and (for
    each of ``truth_ablations``) the verified ground truth compared with the compiled
    model's."""
    r = retrain(compiled, program=program, spec=spec, checkpoint=checkpoint,
                progress=progress, seed=seed, **config)
    model = as_model(r, spec=spec)
    if truth_ablations:
        clean, corrupted = _sample(compiled, spec, 777, truth_samples)
        keep = [i for i, x in enumerate(clean) if _in_domain(r.program, x, compiled)]
        clean = [clean[i] for i in keep]
        corrupted = [corrupted[i] for i in keep]
        model, _ = truths(model, compiled, spec, clean, corrupted, truth_ablations)
    return model


def _in_domain(program, xs, compiled) -> bool:
    evaluate = rasp.causal_evaluate if compiled.config.causal else rasp.evaluate
    try:
        evaluate(program, list(xs))
    except rasp.EvaluationError:
        return False
    return True


__all__ = ["Architecture", "Alignment", "Site", "Retrained", "architecture", "align",
           "options", "init_params", "retrain", "as_model", "estimate_bases", "truths",
           "make_variant"]
