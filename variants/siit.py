"""Strict interchange intervention training (SIIT, InterpBench; Gupta et al. 2024).

A fresh transformer (``variants/retrained.py`` chooses its shape and which of its
components are aligned with which program variable) is trained with three losses, each
stepped in turn with its own optimizer update on a shared Adam state:

* **interchange** (weight ``w_interchange``): run the model on a *source* input, then on a
  *base* input with the components aligned with one program variable given the source
  run's outputs; the read-out must be the interpreter's counterfactual
  (``compiler/interchange.py``: the program on base with that variable forced to its
  values on source);
* **strict** (``w_strict``): the same patch for one component *outside* the circuit (a
  resample ablation); the read-out must stay the base input's own output;
* **behaviour** (``w_behaviour``): the plain read-out must be the program's output.

A component's output is patched where it is smallest: a head's ``z`` (``hook_z``, the
attention-weighted values; its output is ``z @ attn.o[h]``, the same weights in both runs)
or an MLP's hidden units (per unit: a variable aligned with units ``[lo, hi)`` of an MLP
takes the source's post-ReLU activations there, so several variables can share one MLP). The
source run is not differentiated (``stop_gradient``), as in interchange intervention
training.

Output losses: categorical: cross-entropy over ``[read-out, 0.5] / temperature`` (the
constant 0.5 column stands for ``None``), so the argmax of those logits is exactly the
``nearest`` readout's decoding (``compiler/readout.py``: the argmax, ``None`` below 0.5);
numerical: squared error in units of half the smallest gap of the output's value grid (an
error under 1 decodes right).

All targets come from the interpreter and are precomputed in numpy: a pool of
(base, source) pairs of equal length (the source is the program's corrupted sampler's, a
different valid input of the same length), each with the base's output, one randomly
chosen variable and the counterfactual for it. Held-out metrics, on independently seeded
pairs: **accuracy** (inputs whose every position decodes to the interpreter's output),
**IIA** (pairs x every aligned variable whose patched output is the counterfactual at
every position) and **strict accuracy** (pairs x outside components, about 2048 rows
covering every component, whose ablated output is the base's). Training stops when all
three reach ``stop_at``.

Whole chunks of ``eval_every`` steps run as one jitted ``lax.scan``; runs are
deterministic on CPU (same seed, same weights to the bit), show a tqdm bar, and resume
from a checkpoint (safetensors + JSON) written every ``checkpoint_every`` steps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from rasplab.compiler import rasp
from rasplab.compiler.interchange import interchange
from rasplab.compiler.model import MASKED, attention_mask, embed
from rasplab.compiler.readout import NONE_BELOW, Readout, ReadoutKind
from rasplab.compiler.values import same_value

HIGHEST = jax.lax.Precision.HIGHEST
NO_TARGET = -2  # no target at this position (BOS, PAD, or outside the value set)
NONE_CODE = -1  # the readout's code for a categorical None
CHECKPOINT_FORMAT = "rasplab-siit-checkpoint"
EVAL_CHUNK = 1024
STRICT_ROWS = 2048  # held-out strict rows: about this many, spread over the components


# ---------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class SIITConfig:
    """Everything that decides a training run (saved with the model and the checkpoint).

    Defaults are InterpBench's: Adam with betas (0.9, 0.9), lr 1e-3, batch 256, gradient
    clipping at global norm 0.1, loss weights interchange 1, strict 0.4, behaviour 1.
    """

    seed: int = 0
    steps: int = 4000  # most steps (each is three optimizer updates)
    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.9
    clip: float = 0.1
    weight_decay: float = 0.0  # 0: InterpBench's plain Adam; > 0: AdamW (decoupled decay)
    batch: int = 256
    w_interchange: float = 1.0
    w_strict: float = 0.4
    w_behaviour: float = 1.0
    temperature: float = 0.1
    # initial scales (retrained.init_params): what heads and MLPs write, the unembedding.
    # Small starts matter: at unit scale the read-outs begin at ~20 (logits ~200 at
    # temperature 0.1) and the strict loss drives hist's accuracy to 6% in 300 steps; at
    # these scales it reaches 89%, with IIA 76% and strict 75% (measured, seed 0).
    write_scale: float = 0.2
    unembed_scale: float = 0.05
    n_train: int = 8192  # (base, source) pairs in the training pool
    n_heldout: int = 512  # held-out pairs
    eval_every: int = 50
    checkpoint_every: int = 500
    stop_at: float | None = 0.995  # stop when accuracy, IIA and strict all reach it

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Geometry:
    """What the forward pass needs beyond the weights (hashable: static under jit)."""

    num_layers: int
    n_heads: int
    d_mlp: int
    pad_id: int
    causal: bool


@dataclass(frozen=True)
class Options:
    """Interventions as masks: row ``i`` patches heads ``heads[i]`` ``[L, H]`` and MLP units
    ``units[i]`` ``[L, M]``. Row 0 patches nothing; rows ``1 .. n_variables`` are the
    aligned variables (in ``variables`` order); the rest are the components outside the
    circuit (``outside``), one each."""

    heads: np.ndarray
    units: np.ndarray
    variables: tuple[str, ...]
    outside: tuple[str, ...]

    @property
    def first_outside(self) -> int:
        return 1 + len(self.variables)


@dataclass(frozen=True)
class Metrics:
    """Held-out scores (per input: every real position right)."""

    accuracy: float
    iia: float
    strict: float
    accuracy_positions: float
    iia_positions: float
    strict_positions: float
    iia_per_variable: Mapping[str, float] = field(default_factory=dict)
    strict_per_component: Mapping[str, float] = field(default_factory=dict)
    n_inputs: int = 0
    n_interchange: int = 0
    n_strict: int = 0

    def reached(self, target: float) -> bool:
        return min(self.accuracy, self.iia, self.strict) >= target

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["iia_per_variable"] = dict(self.iia_per_variable)
        d["strict_per_component"] = dict(self.strict_per_component)
        return d


@dataclass(frozen=True)
class Trained:
    """The result of a run."""

    params: dict[str, np.ndarray] = field(repr=False)
    config: SIITConfig
    metrics: Metrics
    losses: np.ndarray = field(repr=False)  # [steps, 3]: interchange, strict, behaviour
    history: tuple[tuple[int, float, float, float], ...]  # (step, accuracy, iia, strict)
    steps_done: int  # steps run in this call (not counting a resumed checkpoint's)
    step: int  # the step the weights are at
    seconds: float  # training time in this call (no data preparation, no compile of eval)
    prepare_seconds: float  # building the interpreter targets
    reached_at: int | None  # first evaluated step where all three reached stop_at

    @property
    def steps_per_s(self) -> float:
        return self.steps_done / self.seconds if self.seconds > 0 else math.nan


# ---------------------------------------------------------------------------------------
# The forward pass, with patches


def _mm(spec: str, *xs):
    return jnp.einsum(spec, *xs, precision=HIGHEST)


def forward(params: dict, ids, geom: Geometry, patch=None):
    """Read-out ``[B, T, n_out]``, per-layer head values ``z`` ``[B, H, T, d_head]`` (a
    head's output is ``z[:, h] @ attn.o[h]``) and MLP hidden activations ``[B, T, M]``.
    ``patch = (heads [B, L, H], units [B, L, M], source)`` replaces the masked heads' ``z``
    (so their outputs) and hidden units by ``source``'s (a ``forward`` result on the
    source inputs)."""
    x = embed(params, ids)
    mask = attention_mask(ids, geom.pad_id, geom.causal)
    zs, hidden_out = [], []
    for layer in range(geom.num_layers):
        pre = f"layers.{layer}.attn."
        q = _mm("btd,hdk->bhtk", x, params[pre + "q"])
        k = _mm("btd,hdk->bhtk", x, params[pre + "k"])
        v = _mm("btd,hdv->bhtv", x, params[pre + "v"])
        scores = jnp.where(mask, _mm("bhqk,bhsk->bhqs", q, k), MASKED)
        z = _mm("bhqs,bhsv->bhqv", jax.nn.softmax(scores, axis=-1), v)
        if patch is not None:
            m = patch[0][:, layer, :, None, None]
            z = z + m * (patch[2][1][layer] - z)
        zs.append(z)
        x = x + _mm("bhqv,hvd->bqd", z, params[pre + "o"])
        pre = f"layers.{layer}.mlp."
        h = jax.nn.relu(_mm("btd,dh->bth", x, params[pre + "in"]))
        if patch is not None:
            m = patch[1][:, layer, None, :]
            h = h + m * (patch[2][2][layer] - h)
        hidden_out.append(h)
        x = x + _mm("bth,hd->btd", h, params[pre + "out"])
    return _mm("btd,dn->btn", x, params["unembed"]), zs, hidden_out


def patched_readout(params, base, source, opt, options, geom: Geometry):
    """The read-out on ``base`` with option ``opt[b]`` (an index into ``options``' masks)
    patched from the run on ``source``."""
    src = jax.lax.stop_gradient(forward(params, source, geom))
    heads, units = options
    return forward(params, base, geom, patch=(heads[opt], units[opt], src))[0]


# ---------------------------------------------------------------------------------------
# Output loss and decoding


@dataclass(frozen=True)
class OutputInfo:
    """What the output loss and the decoder need of the output variable (hashable)."""

    numerical: bool
    n_values: int
    grid: tuple[float, ...]
    half_gap: float

    @classmethod
    def of(cls, readout: Readout) -> OutputInfo:
        numerical = readout.encoding == "numerical"
        grid = readout.grid if numerical else ()
        g = np.unique(np.asarray(grid, float))
        half = float(np.diff(g).min() / 2) if len(g) > 1 else 0.5
        return cls(numerical, len(readout.values), tuple(grid), half)

    @property
    def readout(self) -> Readout:
        values = self.grid if self.numerical else tuple(range(self.n_values))
        return Readout("numerical" if self.numerical else "categorical", values,
                       ReadoutKind.NEAREST)


def output_loss(readout, targets, info: OutputInfo, temperature: float):
    """Mean loss over positions with a target (see the module docstring)."""
    w = (targets != NO_TARGET).astype(jnp.float32)
    if info.numerical:
        grid = jnp.asarray(info.grid or (0.0,), jnp.float32)
        value = grid[jnp.clip(targets, 0, len(grid) - 1)]
        per = ((readout[..., 0] - value) / info.half_gap) ** 2
    else:
        none = jnp.full(readout.shape[:-1] + (1,), NONE_BELOW, readout.dtype)
        logits = jnp.concatenate([readout, none], -1) / temperature
        labels = jnp.where(targets == NONE_CODE, info.n_values, jnp.maximum(targets, 0))
        per = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return (per * w).sum() / jnp.maximum(w.sum(), 1.0)


def codes(readout, info: OutputInfo):
    """The nearest readout's codes (value index; -1 for None) of read-outs (jnp)."""
    return info.readout.codes(readout, xp=jnp)[0]


def target_codes(values: Sequence, readout: Readout) -> list[int]:
    """Interpreter values as readout codes (``NO_TARGET`` for a value the output cannot
    hold, which does not happen on the program's domain)."""
    out = []
    for v in values:
        if v is None:
            out.append(NONE_CODE if readout.encoding == "categorical" else NO_TARGET)
            continue
        for i, w in enumerate(readout.values):
            if same_value(v, w):
                out.append(i)
                break
        else:
            out.append(NO_TARGET)
    return out


# ---------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class Pairs:
    """(base, source) pairs of equal length with the interpreter's targets."""

    base: np.ndarray  # [n, T] int32 ids
    source: np.ndarray  # [n, T]
    base_targets: np.ndarray  # [n, T] codes (NO_TARGET at BOS/PAD)
    variable: np.ndarray  # [n] option index of the pair's variable (1-based)
    cf_targets: np.ndarray  # [n, T] the counterfactual's codes for that variable
    base_inputs: tuple = field(repr=False, default=())
    source_inputs: tuple = field(repr=False, default=())

    def __len__(self) -> int:
        return len(self.base)


def _encode(token_ids: Mapping, bos, pad, inputs: Sequence[Sequence], width: int) -> np.ndarray:
    out = np.full((len(inputs), width), token_ids[pad], np.int32)
    out[:, 0] = token_ids[bos]
    for b, xs in enumerate(inputs):
        out[b, 1 : 1 + len(xs)] = [token_ids[t] for t in xs]
    return out


def _row(codes_: list[int], width: int) -> np.ndarray:
    row = np.full(width, NO_TARGET, np.int32)
    row[1 : 1 + len(codes_)] = codes_
    return row


def make_pairs(program: rasp.SOp, bases: Sequence, sources: Sequence, variables: Sequence[str],
               readout: Readout, token_ids: Mapping, bos, pad, width: int, rng: np.random.Generator,
               *, causal: bool = False, all_variables: bool = False) -> Pairs:
    """Interpreter targets for paired inputs. Each pair gets one variable drawn by ``rng``
    (or, with ``all_variables``, one row per variable). Pairs outside the domain (base,
    source or counterfactual) are dropped."""
    evaluate = rasp.causal_evaluate if causal else rasp.evaluate
    rows = {k: [] for k in ("base", "source", "bt", "var", "cf")}
    kept_b, kept_s = [], []
    for xs, ys in zip(bases, sources, strict=True):
        try:
            out = evaluate(program, list(xs))
        except rasp.EvaluationError:
            continue
        bt = target_codes(out, readout)
        if NO_TARGET in bt:
            continue
        choices = (range(len(variables)) if all_variables
                   else [int(rng.integers(0, len(variables)))] if variables else [None])
        for vi in choices:
            if vi is None:
                cf = bt
            else:
                try:
                    cf = target_codes(interchange(program, xs, ys, [variables[vi]],
                                                  causal=causal), readout)
                except rasp.EvaluationError:
                    continue
                if NO_TARGET in cf:
                    continue
            rows["base"].append(list(xs))
            rows["source"].append(list(ys))
            rows["bt"].append(_row(bt, width))
            rows["var"].append(0 if vi is None else vi + 1)
            rows["cf"].append(_row(cf, width))
            kept_b.append(tuple(xs))
            kept_s.append(tuple(ys))
    if not rows["base"]:
        raise ValueError("no (base, source) pair of the sample lies in the program's domain")
    return Pairs(
        base=_encode(token_ids, bos, pad, rows["base"], width),
        source=_encode(token_ids, bos, pad, rows["source"], width),
        base_targets=np.stack(rows["bt"]), variable=np.asarray(rows["var"], np.int32),
        cf_targets=np.stack(rows["cf"]), base_inputs=tuple(kept_b),
        source_inputs=tuple(kept_s),
    )


# ---------------------------------------------------------------------------------------
# Training step and evaluation


def optimizer(cfg: SIITConfig) -> optax.GradientTransformation:
    adam = (optax.adamw(cfg.lr, b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay)
            if cfg.weight_decay else optax.adam(cfg.lr, b1=cfg.b1, b2=cfg.b2))
    return optax.chain(optax.clip_by_global_norm(cfg.clip), adam)


def _static(cfg: SIITConfig) -> SIITConfig:
    """The part of the configuration the compiled step depends on."""
    return dataclasses.replace(cfg, seed=0, steps=0, n_train=0, n_heldout=0, eval_every=0,
                               checkpoint_every=0, stop_at=None)


@lru_cache(maxsize=16)
def _chunk_fn(cfg: SIITConfig, geom: Geometry, info: OutputInfo, n_outside: int,
              first_outside: int):
    opt = optimizer(cfg)
    T = cfg.temperature

    def loss_interchange(params, base, src, var, cf, options):
        return output_loss(patched_readout(params, base, src, var, options, geom), cf, info, T)

    def loss_behaviour(params, base, targets):
        return output_loss(forward(params, base, geom)[0], targets, info, T)

    g_int = jax.value_and_grad(loss_interchange)
    g_beh = jax.value_and_grad(loss_behaviour)

    def update(params, opt_state, grads, weight):
        grads = jax.tree_util.tree_map(lambda g: g * weight, grads)
        upd, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, upd), opt_state

    @partial(jax.jit, static_argnums=3)
    def chunk(params, opt_state, key, n, start, pool, options):
        n_pool = pool["base"].shape[0]

        def step(carry, step_no):
            params, opt_state = carry
            k = jax.random.fold_in(key, step_no)
            k1, k2, k3, k4 = jax.random.split(k, 4)
            # interchange: patch the pair's variable from its source
            i = jax.random.randint(k1, (cfg.batch,), 0, n_pool)
            li, g = g_int(params, pool["base"][i], pool["source"][i], pool["var"][i],
                          pool["cf"][i], options)
            params, opt_state = update(params, opt_state, g, cfg.w_interchange)
            # strict: resample-ablate one outside component; the output must not change
            if n_outside:
                i = jax.random.randint(k2, (cfg.batch,), 0, n_pool)
                o = first_outside + jax.random.randint(k3, (cfg.batch,), 0, n_outside)
                ls, g = g_int(params, pool["base"][i], pool["source"][i], o,
                              pool["bt"][i], options)
                params, opt_state = update(params, opt_state, g, cfg.w_strict)
            else:
                ls = jnp.zeros(())
            # behaviour
            i = jax.random.randint(k4, (cfg.batch,), 0, n_pool)
            lb, g = g_beh(params, pool["base"][i], pool["bt"][i])
            params, opt_state = update(params, opt_state, g, cfg.w_behaviour)
            return (params, opt_state), jnp.stack([li, ls, lb])

        (params, opt_state), losses = jax.lax.scan(
            step, (params, opt_state), start + jnp.arange(n, dtype=jnp.int32))
        return params, opt_state, losses

    return chunk


@lru_cache(maxsize=16)
def _correct_fn(geom: Geometry, info: OutputInfo):
    @jax.jit
    def correct(params, base, src, opt, targets, options):
        readout = patched_readout(params, base, src, opt, options, geom)
        has = targets != NO_TARGET
        ok = (codes(readout, info) == targets) | ~has
        return ok.all(axis=1), (ok & has).sum(), has.sum()

    return correct


@dataclass(frozen=True)
class EvalSet:
    """Rows (base, source, option, targets) with what they measure."""

    base: np.ndarray
    source: np.ndarray
    option: np.ndarray
    targets: np.ndarray
    kind: np.ndarray  # 0 accuracy, 1 interchange, 2 strict
    variable: tuple[str, ...]  # per row: the variable (interchange), the outside
    # component (strict) or "" (accuracy)


def eval_set(pairs: Pairs, options: Options) -> EvalSet:
    """Accuracy rows (one per distinct base), interchange rows (each pair's variable, see
    ``make_pairs(all_variables=True)``) and strict rows (every outside component, each on
    about ``STRICT_ROWS / n_outside`` pairs, different pairs for different components)."""
    first = {}
    for i, b in enumerate(pairs.base_inputs):
        first.setdefault(b, i)
    acc = np.asarray(sorted(first.values()), np.int64)
    n_out = len(options.outside)
    per = min(len(pairs), math.ceil(STRICT_ROWS / max(n_out, 1)))  # pairs per component
    strict_idx = np.concatenate([(np.arange(per) + j * per) % len(pairs) for j in range(n_out)]
                                ).astype(np.int64) if n_out else np.zeros(0, np.int64)
    strict_opt = np.repeat(np.arange(n_out) + options.first_outside, per)
    inter = np.flatnonzero(pairs.variable > 0)
    base = np.concatenate([pairs.base[acc], pairs.base[inter], pairs.base[strict_idx]])
    source = np.concatenate([pairs.source[acc], pairs.source[inter], pairs.source[strict_idx]])
    option = np.concatenate([np.zeros(len(acc), np.int32), pairs.variable[inter],
                             strict_opt.astype(np.int32)])
    targets = np.concatenate([pairs.base_targets[acc], pairs.cf_targets[inter],
                              pairs.base_targets[strict_idx]])
    kind = np.concatenate([np.zeros(len(acc), np.int8), np.ones(len(inter), np.int8),
                           np.full(len(strict_idx), 2, np.int8)])
    variable = ("",) * len(acc) + tuple(options.variables[v - 1] for v in
                                        pairs.variable[inter]) + tuple(
        options.outside[o - options.first_outside] for o in strict_opt)
    return EvalSet(base, source, option, targets, kind, variable)


def evaluate(params: dict, ev: EvalSet, options, geom: Geometry, info: OutputInfo) -> Metrics:
    """Held-out accuracy, IIA and strict accuracy (fixed-size chunks: one compile)."""
    fn = _correct_fn(geom, info)
    n = len(ev.base)
    whole = np.zeros(n, bool)
    pos_ok = np.zeros(3)
    pos_all = np.zeros(3)
    pad = -n % EVAL_CHUNK
    arrays = [np.concatenate([a, np.repeat(a[:1], pad, axis=0)]) for a in
              (ev.base, ev.source, ev.option, ev.targets)]
    kinds = np.concatenate([ev.kind, np.full(pad, -1, np.int8)])
    for s in range(0, n + pad, EVAL_CHUNK):
        sl = slice(s, s + EVAL_CHUNK)
        k = kinds[sl]
        for kind in range(3):
            sel = k == kind
            if not sel.any():
                continue
            targets = np.where(sel[:, None], arrays[3][sl], NO_TARGET)
            ok, good, total = fn(params, arrays[0][sl], arrays[1][sl], arrays[2][sl],
                                 targets, options)
            ok = np.asarray(ok)
            idx = np.flatnonzero(sel) + s
            whole[idx] = ok[sel]
            pos_ok[kind] += int(good)
            pos_all[kind] += int(total)

    def frac(kind):
        sel = ev.kind == kind
        return float(whole[sel].mean()) if sel.any() else 1.0

    names = np.asarray(ev.variable, dtype=object)
    per: list[dict[str, float]] = [{}, {}]
    for kind in (1, 2):
        for v in sorted(set(names[ev.kind == kind])):
            sel = (ev.kind == kind) & (names == v)
            per[kind - 1][str(v)] = float(whole[sel].mean())
    pos = [float(pos_ok[k] / pos_all[k]) if pos_all[k] else 1.0 for k in range(3)]
    return Metrics(frac(0), frac(1), frac(2), pos[0], pos[1], pos[2], per[0], per[1],
                   int((ev.kind == 0).sum()), int((ev.kind == 1).sum()),
                   int((ev.kind == 2).sum()))


# ---------------------------------------------------------------------------------------
# Checkpoints (safetensors + JSON)


def _ckpt_paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def save_checkpoint(path, *, params, opt_state, key, step, cfg: SIITConfig, fingerprint: str,
                    losses, history, reached_at) -> None:
    """Weights, optimizer state, key and step (written to temporary files, then renamed)."""
    from safetensors.numpy import save_file

    weights, sidecar = _ckpt_paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    leaves = jax.tree_util.tree_leaves(opt_state)
    tensors = {f"param.{k}": np.asarray(v) for k, v in params.items()}
    tensors["key"] = np.asarray(jax.random.key_data(key))
    tensors.update({f"opt.{i}": np.asarray(x) for i, x in enumerate(leaves)})
    tmp_w, tmp_s = weights.with_suffix(".tmp.safetensors"), sidecar.with_suffix(".tmp.json")
    save_file(tensors, str(tmp_w), metadata={"format": CHECKPOINT_FORMAT})
    tmp_s.write_text(json.dumps({
        "format": CHECKPOINT_FORMAT, "step": int(step), "config": cfg.to_dict(),
        "fingerprint": fingerprint, "n_opt_leaves": len(leaves),
        "losses": np.asarray(losses, np.float64).tolist(),
        "history": [list(h) for h in history], "reached_at": reached_at,
    }, sort_keys=True))
    tmp_w.replace(weights)
    tmp_s.replace(sidecar)


def load_checkpoint(path, *, cfg: SIITConfig, fingerprint: str, opt_state_like):
    """``(params, opt_state, key, step, losses, history, reached_at)``, or None if there is
    no checkpoint; one written for another model or configuration raises ValueError."""
    from safetensors.numpy import load_file

    weights, sidecar = _ckpt_paths(path)
    if not weights.exists() or not sidecar.exists():
        return None
    meta = json.loads(sidecar.read_text())
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{sidecar} is not a retraining checkpoint")
    if meta["fingerprint"] != fingerprint:
        raise ValueError(f"checkpoint {weights} was written for another program or "
                         "architecture; delete it or pass another path")
    mine, theirs = cfg.to_dict(), meta["config"]
    if mine != theirs:
        diff = sorted(k for k in mine if mine[k] != theirs.get(k))
        raise ValueError(f"checkpoint {weights} was written with another configuration "
                         f"(differs in {', '.join(diff)}); delete it or pass another path")
    tensors = load_file(str(weights))
    params = {k[len("param."):]: jnp.asarray(v) for k, v in tensors.items()
              if k.startswith("param.")}
    treedef = jax.tree_util.tree_structure(opt_state_like)
    like = jax.tree_util.tree_leaves(opt_state_like)
    leaves = [jnp.asarray(tensors[f"opt.{i}"]) for i in range(meta["n_opt_leaves"])]
    if len(leaves) != len(like) or any(a.shape != b.shape for a, b in zip(leaves, like)):
        raise ValueError(f"checkpoint {weights}: optimizer state does not match")
    return (params, jax.tree_util.tree_unflatten(treedef, leaves),
            jax.random.wrap_key_data(jnp.asarray(tensors["key"])), int(meta["step"]),
            np.asarray(meta["losses"], np.float64).reshape(-1, 3),
            [tuple(h) for h in meta["history"]], meta.get("reached_at"))


def fingerprint(*parts: Any) -> str:
    """SHA-256 of JSON-able parts and arrays (what a checkpoint must match)."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(json.dumps(p, sort_keys=True, default=repr).encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------
# The loop


def train(params0: Mapping[str, np.ndarray], geom: Geometry, info: OutputInfo,
          options: Options, pool: Pairs, heldout: EvalSet, cfg: SIITConfig, *,
          checkpoint: str | Path | None = None, progress: bool = True,
          stop_after: int | None = None, fingerprint_: str = "", prepare_seconds: float = 0.0,
          desc: str = "retrain") -> Trained:
    """Run SIIT from ``params0`` (see the module docstring). ``stop_after`` ends the run
    after that many steps (an interruption; the checkpoint is written there)."""
    if cfg.steps < 0 or cfg.batch < 1 or cfg.eval_every < 1:
        raise ValueError("steps must be >= 0, batch and eval_every >= 1")
    if cfg.checkpoint_every % cfg.eval_every:
        raise ValueError(f"checkpoint_every ({cfg.checkpoint_every}) must be a multiple of "
                         f"eval_every ({cfg.eval_every})")
    opt = optimizer(cfg)
    params = {k: jnp.asarray(v, jnp.float32) for k, v in params0.items()}
    opt_state = opt.init(params)
    key = jax.random.key(int(np.random.SeedSequence(cfg.seed).generate_state(1)[0]))
    step, losses, history, reached_at = 0, np.zeros((0, 3)), [], None
    if checkpoint is not None:
        loaded = load_checkpoint(checkpoint, cfg=cfg, fingerprint=fingerprint_,
                                 opt_state_like=opt_state)
        if loaded is not None:
            params, opt_state, key, step, losses, history, reached_at = loaded
    opts = (jnp.asarray(options.heads), jnp.asarray(options.units))
    dev = {"base": pool.base, "source": pool.source, "bt": pool.base_targets,
           "var": pool.variable, "cf": pool.cf_targets}
    dev = {k: jnp.asarray(v) for k, v in dev.items()}
    n_out = len(options.outside)
    chunk = _chunk_fn(_static(cfg), geom, info, n_out, options.first_outside)
    done = reached_at is not None and cfg.stop_at is not None
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    from tqdm.auto import tqdm

    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, unit="step", desc=desc,
               dynamic_ncols=True, leave=False)
    t0 = time.perf_counter()
    before = step
    while step < end and not done:
        n = min(cfg.eval_every, end - step)
        params, opt_state, cl = chunk(params, opt_state, key, n, jnp.int32(step), dev, opts)
        step += n
        losses = np.concatenate([losses, np.asarray(cl, np.float64)])
        m = evaluate(params, heldout, opts, geom, info)
        history.append((step, m.accuracy, m.iia, m.strict))
        if cfg.stop_at is not None and m.reached(cfg.stop_at):
            reached_at, done = step, True
        bar.update(n)
        bar.set_postfix(acc=f"{m.accuracy:.3f}", iia=f"{m.iia:.3f}", strict=f"{m.strict:.3f}")
        if checkpoint is not None and (step % cfg.checkpoint_every == 0 or step == end or done):
            save_checkpoint(checkpoint, params=params, opt_state=opt_state, key=key, step=step,
                            cfg=cfg, fingerprint=fingerprint_, losses=losses, history=history,
                            reached_at=reached_at)
    bar.close()
    seconds = time.perf_counter() - t0
    metrics = evaluate(params, heldout, opts, geom, info)
    return Trained(
        params={k: np.asarray(v, np.float32) for k, v in params.items()}, config=cfg,
        metrics=metrics, losses=losses,
        history=tuple((int(s), float(a), float(i), float(t)) for s, a, i, t in history),
        steps_done=step - before, step=step, seconds=seconds, prepare_seconds=prepare_seconds,
        reached_at=reached_at)


__all__ = ["SIITConfig", "Geometry", "Options", "Metrics", "Trained", "OutputInfo", "Pairs",
           "EvalSet", "forward", "patched_readout", "output_loss", "make_pairs", "eval_set",
           "evaluate", "train", "save_checkpoint", "load_checkpoint", "fingerprint"]
