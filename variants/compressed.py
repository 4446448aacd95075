"""Rung 2 of the realism ladder: a compiled model squeezed into a d-dimensional residual.

The compiled weights stay frozen; one learned matrix ``W`` (D x d) both writes every
component's output into the smaller stream and reads every input back (the tracr paper,
section 5). With ``x_d = x_D W`` the compressed model's weights, in the flat schema of
``compiler/assemble.py`` with ``d_model = d``, are::

    embed.* @ W    W.T @ attn.q|k|v    attn.o @ W    W.T @ mlp.in    mlp.out @ W    W.T @ unembed

so every component reads ``x_d W.T``, an approximation of the compiled residual. ``W`` is
trained with optax (AdamW, gradient clipping) on

* an output loss over non-BOS real positions: cross-entropy of the read-out (softmax over
  the unembedded values, divided by ``temperature``; an extra constant 0.5 logit stands for
  ``None`` when the output can be None) to the compiled model's categorical output, or the
  squared error to its numerical output in units of the decoding margin (half the smallest
  gap between output values, so an error of 1 is where nearest-value decoding flips);
* plus ``recon_weight`` times the reconstruction loss: the squared error between
  ``x_d W.T`` and the compiled residual at every residual site (after the embedding and
  after each attention and MLP sublayer), summed over dimensions, averaged over non-PAD
  positions and sites.

Compiled attention is very sharp (scores scaled by ~150 so a mean or a lookup is exact),
so from a random orthogonal ``W`` the loss is a maze of saturated softmaxes and Adam
settles far from an exact solution (frac_prevs at d = 10 of 13: 60-87% of inputs right
after 1000-3000 steps whatever the learning rate, though a ``W`` within 1e-3 of an exact
one trains back to 100%). So by default the attention sharpness is annealed: every
attention score is multiplied by ``alpha``, rising geometrically from ``anneal_start`` to 1
over the first ``anneal`` fraction of the steps, and the teacher (reconstruction targets
and output targets) is the compiled model at the same ``alpha``. This continuation is our
addition (the tracr paper's training code was never released); ``anneal=0`` turns it off.

Training inputs come from the program's sampler (``ProgramSpec.sample_clean``) or, for a
bare ``CompiledProgram``, from uniform inputs of every length (those outside the domain,
where the compiled read-out is not clean, are dropped). The held-out set is drawn with
an independent seed and scored against ``rasp.evaluate`` (a spec given) or against the
exact compiled model (otherwise; equal to the interpreter on the domain by the compiler's
guarantee). Compressed models are approximate, so they are decoded by the nearest value
(:func:`decode_nearest`), never by the compiled model's exact one-hot thresholds.

Runs are deterministic on CPU (same seed, same ``W`` to the bit), jitted over chunks of
``eval_every`` steps (``lax.scan``), show a tqdm bar, and resume from a checkpoint
(safetensors + JSON) written every ``checkpoint_every`` steps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from rasplab.compiler import rasp
from rasplab.compiler.assemble import CompiledProgram
from rasplab.compiler.model import Model, attention, attention_mask, embed, layer_params, mlp
from rasplab.compiler.values import same_value

if TYPE_CHECKING:
    from rasplab.programs import ProgramSpec

HIGHEST = jax.lax.Precision.HIGHEST
NO_TARGET = -2  # a target index no prediction can equal
CHECKPOINT_FORMAT = "rasplab-compress-checkpoint"


# ---------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class CompressConfig:
    """Everything that decides a training run (saved with the result and the checkpoint)."""

    d: int
    seed: int = 0
    steps: int = 2000
    lr: float = 1e-2
    schedule: str = "cosine"  # or "constant"
    b1: float = 0.9
    b2: float = 0.95
    weight_decay: float = 1e-4
    clip: float = 1.0
    batch: int = 256
    recon_weight: float = 0.1
    temperature: float = 0.1
    n_train: int = 4096
    n_heldout: int = 1024
    init: str = "orthogonal"  # or "identity" (d = D only)
    eval_every: int = 50
    checkpoint_every: int = 500
    stop_at: float | None = None  # stop when held-out input accuracy reaches it
    anneal: float = 0.5  # fraction of the steps over which attention sharpness ramps to 1
    anneal_start: float = 0.05  # the starting sharpness (a factor on every attention score)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Accuracy:
    """Decoded output vs the reference: per real (non-BOS, non-PAD) position and per input."""

    positions: float
    inputs: float
    n_inputs: int
    n_positions: int


@dataclass(frozen=True)
class Compressed:
    """A trained compression of one compiled model."""

    compiled: CompiledProgram = field(repr=False)
    params: dict[str, np.ndarray] = field(repr=False)  # flat schema, d_model = d
    W: np.ndarray = field(repr=False)  # [D, d]
    config: CompressConfig
    seed: int
    losses: tuple[float, ...] = field(repr=False)  # total loss per step
    output_losses: tuple[float, ...] = field(repr=False)
    recon_losses: tuple[float, ...] = field(repr=False)
    heldout: Accuracy
    reference: str  # "interpreter" or "compiled"
    bases: dict[str, np.ndarray] = field(repr=False)  # variable -> W.T @ B  [d, k]
    superposition: float  # mean |cos| between distinct variable-value directions
    steps_done: int
    seconds: float
    history: tuple[tuple[int, float], ...] = ()  # (step, held-out input accuracy)

    @property
    def d(self) -> int:
        return int(self.W.shape[1])

    @property
    def D(self) -> int:
        return int(self.W.shape[0])

    @property
    def steps_per_s(self) -> float:
        return self.steps_done / self.seconds if self.seconds > 0 else math.nan

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers (no arrays)."""
        return {
            "d": self.d, "D": self.D, "seed": self.seed, "config": self.config.to_dict(),
            "heldout": dataclasses.asdict(self.heldout), "reference": self.reference,
            "superposition": self.superposition, "steps_done": self.steps_done,
            "seconds": self.seconds, "steps_per_s": self.steps_per_s,
            "final_loss": self.losses[-1] if self.losses else None,
            "history": [list(h) for h in self.history],
        }


# ---------------------------------------------------------------------------------------
# The compressed weights and forward pass


def _mm(spec: str, *xs):
    return jnp.einsum(spec, *xs, precision=HIGHEST)


def compress_params(params: dict, W) -> dict:
    """The compiled weights ``params`` (d_model = D) mapped through ``W`` (D x d)."""
    out = {}
    for name, w in params.items():
        w = jnp.asarray(w)
        if name.startswith("embed."):
            out[name] = _mm("tD,Dd->td", w, W)
        elif name.endswith((".attn.q", ".attn.k", ".attn.v")):
            out[name] = _mm("Dd,hDk->hdk", W, w)
        elif name.endswith(".attn.o"):
            out[name] = _mm("hvD,Dd->hvd", w, W)
        elif name.endswith(".mlp.in") or name == "unembed":
            out[name] = _mm("Dd,Dh->dh", W, w)
        elif name.endswith(".mlp.out"):
            out[name] = _mm("hD,Dd->hd", w, W)
        else:
            raise ValueError(f"unknown weight {name!r}: not in the flat schema of assemble.py")
    return out


def residual_sites(
    params: dict, ids, *, num_layers: int, pad_id: int, causal: bool,
    patch: tuple[int, Any, Any] | None = None,
) -> list:
    """The residual ``[B, T, d]`` after the embedding and after each attention and MLP
    sublayer (``1 + 2 * num_layers`` sites; a missing sublayer repeats the previous one).

    ``patch = (site, P, source)`` replaces the component of the residual in the subspace of
    the projector ``P`` (d x d) at that site with ``source``'s (``x + (source - x) @ P``).
    """
    x = embed(params, ids)
    mask = attention_mask(ids, pad_id, causal)
    sites = []

    def record(x):
        if patch is not None and patch[0] == len(sites):
            x = x + _mm("btd,de->bte", patch[2] - x, patch[1])
        sites.append(x)
        return x

    x = record(x)
    for layer in range(num_layers):
        att = layer_params(params, layer, "attn")
        if att is not None:
            x = x + attention(att, x, x, x, mask, per_head=False)[0]
        x = record(x)
        ff = layer_params(params, layer, "mlp")
        if ff is not None:
            x = x + mlp(ff, x)[0]
        x = record(x)
    return sites


def _geometry(compiled: CompiledProgram) -> tuple:
    """``residual_sites``' keyword arguments for this model, as hashable pairs."""
    return (("causal", bool(compiled.config.causal)),
            ("num_layers", compiled.config.num_layers),
            ("pad_id", compiled.token_ids[compiled.pad]))


# ---------------------------------------------------------------------------------------
# Decoding approximate read-outs


def _value_grid(compiled: CompiledProgram) -> np.ndarray:
    values = compiled.output_values
    return np.array([float(v) for v in values], dtype=np.float32) if values else np.zeros(1)


def _half_gap(compiled: CompiledProgram) -> float:
    """Half the smallest gap between numerical output values: the decoding margin."""
    grid = np.unique(_value_grid(compiled))
    return float(np.diff(grid).min() / 2) if len(grid) > 1 else 0.5


@dataclass(frozen=True)
class _Readout:
    """What nearest-value decoding needs of the output variable (hashable, for jit)."""

    numerical: bool
    n_values: int
    can_be_none: bool
    grid: tuple[float, ...]
    half_gap: float


def _readout(compiled: CompiledProgram | _Readout) -> _Readout:
    if isinstance(compiled, _Readout):
        return compiled
    info = compiled.output_variable
    numerical = info.encoding == "numerical"
    return _Readout(
        numerical=numerical, n_values=len(info.values),
        can_be_none=bool(info.can_be_none),
        grid=tuple(float(x) for x in _value_grid(compiled)) if numerical else (),
        half_gap=_half_gap(compiled) if numerical else 0.5,
    )


def nearest_indices(compiled: CompiledProgram | _Readout, readout):
    """Index of the nearest output value for each read-out ``[..., n_out]`` (jnp or np).

    Categorical: the compiled read-outs are the one-hot vectors (and the zero vector for
    ``None`` when the output can be None); the nearest of them is the argmax, or ``None``
    (index ``len(values)``) when the largest entry is under 0.5. Numerical: the nearest
    value of the output's exact value set.
    """
    info = _readout(compiled)
    xp = np if isinstance(readout, np.ndarray) else jnp
    if info.numerical:
        grid = xp.asarray(info.grid, dtype=readout.dtype)
        return xp.abs(readout[..., :1] - grid).argmin(-1)
    n = info.n_values
    if n == 0:
        return xp.full(readout.shape[:-1], 0)
    best = readout.argmax(-1)
    if info.can_be_none:
        best = xp.where(readout.max(-1) < 0.5, n, best)
    return best


def decode_nearest(compiled: CompiledProgram, readout: np.ndarray) -> list[list]:
    """Decoded values ``[batch][seq]`` of an approximate read-out (``resid @ unembed``) by
    the nearest value (see :func:`nearest_indices`); ``None`` where that is nearest."""
    idx = np.asarray(nearest_indices(compiled, np.asarray(readout, dtype=np.float64)))
    values = list(compiled.output_values) + [None]
    if compiled.output_variable.encoding == "numerical" and not compiled.output_values:
        values = [0]
    return [[values[i] for i in row] for row in idx.tolist()]


def _target_index(compiled: CompiledProgram, value) -> int:
    """Index of an interpreter value among the read-out's values (``NO_TARGET`` if none)."""
    info = compiled.output_variable
    if value is None:
        return len(info.values) if info.encoding == "categorical" and info.can_be_none \
            else NO_TARGET
    for i, v in enumerate(info.values):
        if same_value(v, value):
            return i
    return NO_TARGET


# ---------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class _Data:
    ids: np.ndarray  # [n, T] int32
    targets: np.ndarray  # [n, T] int32 value index at real positions (NO_TARGET elsewhere)
    real: np.ndarray  # [n, T] bool: non-BOS, non-PAD


def _uniform_inputs(compiled: CompiledProgram, rng: np.random.Generator, n: int) -> list:
    lengths = rng.integers(1, compiled.config.max_seq_len + 1, size=n)
    vocab = compiled.vocab
    return [[vocab[int(i)] for i in rng.integers(0, len(vocab), size=int(k))] for k in lengths]


def _encode(model: Model, inputs: Sequence[Sequence]) -> tuple[np.ndarray, np.ndarray]:
    ids = model.encode(inputs, width=model.config.max_seq_len + 1)
    real = np.zeros(ids.shape, bool)
    for b, xs in enumerate(inputs):
        real[b, 1 : 1 + len(xs)] = True
    return ids, real


def _reference_data(
    model: Model, inputs: list, program: rasp.SOp | None
) -> _Data:
    """Inputs with their reference output indices: the interpreter's (``program``) or, with
    no program, the exact compiled model's; inputs outside the domain are dropped."""
    compiled = model.program
    if program is not None:
        kept, outs = [], []
        for xs in inputs:
            try:
                outs.append(rasp.evaluate(program, list(xs)))
            except rasp.EvaluationError:
                continue
            kept.append(xs)
        inputs = kept
    ids, real = _encode(model, inputs)
    targets = np.full(ids.shape, NO_TARGET, np.int32)
    if program is None:
        from rasplab.compiler.model import decode

        resid = np.asarray(model.forward(ids))
        _, clean = decode(compiled, resid)
        idx = np.asarray(nearest_indices(compiled, resid @ compiled.params["unembed"]))
        keep = np.all(clean | ~real, axis=1)
        ids, real, idx = ids[keep], real[keep], idx[keep]
        targets = np.where(real, idx, NO_TARGET).astype(np.int32)
    else:
        for b, out in enumerate(outs):
            targets[b, 1 : 1 + len(out)] = [_target_index(compiled, v) for v in out]
    if not len(ids):
        raise ValueError("no input of the sample lies in the program's domain")
    return _Data(ids.astype(np.int32), targets, real)


def _seeds(seed: int) -> tuple[int, int, int, int]:
    """Independent seeds: training inputs, held-out inputs, the JAX key, the init."""
    return tuple(int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(4))


def _sample(compiled: CompiledProgram, spec: ProgramSpec | None, seed: int, n: int) -> list:
    if spec is not None:
        return spec.sample_clean(seed, n)
    return _uniform_inputs(compiled, np.random.default_rng(seed), n)


# ---------------------------------------------------------------------------------------
# Losses and the training step


def _losses(W, mask, params, ids, ref_sites, targets, real, *, geom, info, temperature,
            recon_weight):
    W = W * mask  # W is padded to D x D; columns at and beyond d stay exactly zero
    p = compress_params(params, W)
    sites = residual_sites(p, ids, **dict(geom))
    geom = dict(geom)
    tok = (ids != geom["pad_id"])[..., None].astype(jnp.float32)
    recon = 0.0
    for x_d, x_D in zip(sites, ref_sites):
        err = (_mm("btd,Dd->btD", x_d, W) - x_D) ** 2 * tok
        recon = recon + err.sum() / tok.sum()
    recon = recon / len(sites)
    readout = _mm("btd,dn->btn", sites[-1], p["unembed"])
    w = real.astype(jnp.float32)
    if info.numerical:
        grid = jnp.asarray(info.grid)
        target = grid[jnp.clip(targets, 0, len(info.grid) - 1)]
        per = ((readout[..., 0] - target) / info.half_gap) ** 2
    else:
        logits = readout
        if info.can_be_none:
            logits = jnp.concatenate([logits, jnp.full(logits.shape[:-1] + (1,), 0.5)], -1)
        per = optax.softmax_cross_entropy_with_integer_labels(
            logits / temperature, jnp.clip(targets, 0, logits.shape[-1] - 1)
        )
    out = (per * w).sum() / jnp.maximum(w.sum(), 1.0)
    return out + recon_weight * recon, (out, recon)


def _schedule(cfg: CompressConfig):
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "cosine":
        return optax.cosine_decay_schedule(cfg.lr, max(cfg.steps, 1), alpha=1e-3)
    raise ValueError(f"schedule must be 'constant' or 'cosine', got {cfg.schedule!r}")


def _optimizer(cfg: CompressConfig) -> optax.GradientTransformation:
    return optax.chain(
        optax.clip_by_global_norm(cfg.clip),
        optax.adamw(_schedule(cfg), b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay),
    )


def _sharpen(params: dict, alpha) -> dict:
    """``params`` with every attention score multiplied by ``alpha`` (queries scaled)."""
    return {k: (v * alpha if k.endswith(".attn.q") else v) for k, v in params.items()}


def _static(cfg: CompressConfig) -> CompressConfig:
    """The part of the configuration the compiled training step depends on."""
    return dataclasses.replace(cfg, d=0, seed=0, n_train=0, n_heldout=0, init="",
                               eval_every=0, checkpoint_every=0, stop_at=None)


@lru_cache(maxsize=32)
def _chunk_fn(cfg: CompressConfig, geom: tuple, info: _Readout):
    """A jitted function running ``n`` steps from ``start`` with ``lax.scan`` (cached, so
    every d of one program, and every seed, reuses one XLA compilation)."""
    loss = partial(_losses, geom=geom, info=info, temperature=cfg.temperature,
                   recon_weight=cfg.recon_weight)
    grad = jax.value_and_grad(loss, has_aux=True)
    opt = _optimizer(cfg)
    kw = dict(geom)

    @partial(jax.jit, static_argnums=3)
    def chunk(W, opt_state, key, n, start, mask, params, pool):
        n_pool = pool["ids"].shape[0]

        def step(carry, step_no):
            W, opt_state = carry
            idx = jax.random.randint(jax.random.fold_in(key, step_no), (cfg.batch,), 0, n_pool)
            ids, targets, real = pool["ids"][idx], pool["targets"][idx], pool["real"][idx]
            if cfg.anneal > 0:
                # attention sharpness ramps (geometrically) from anneal_start to 1; the
                # teacher is the compiled model at the same sharpness
                t = jnp.minimum(step_no / (cfg.anneal * max(cfg.steps, 1)), 1.0)
                alpha = cfg.anneal_start ** (1.0 - t)
                p = _sharpen(params, alpha)
                ref = residual_sites(p, ids, **kw)
                soft = nearest_indices(info, _mm("btD,Dn->btn", ref[-1], p["unembed"]))
                targets = jnp.where((t >= 1.0) | ~real, targets, soft)
            else:
                p, ref = params, [s[idx] for s in pool["sites"]]
            (total, (out, rec)), g = grad(W, mask, p, ids, ref, targets, real)
            updates, opt_state = opt.update(g, opt_state, W)
            return (optax.apply_updates(W, updates), opt_state), jnp.stack([total, out, rec])

        (W, opt_state), losses = jax.lax.scan(
            step, (W, opt_state), start + jnp.arange(n, dtype=jnp.int32)
        )
        return W, opt_state, losses

    return chunk


@lru_cache(maxsize=32)
def _accuracy_fn(geom: tuple, info: _Readout):
    kw = dict(geom)

    @jax.jit
    def correct(params, ids, targets, real):
        x = residual_sites(params, ids, **kw)[-1]
        pred = nearest_indices(info, _mm("btd,dn->btn", x, params["unembed"]))
        ok = (pred == targets) | ~real
        return ok, ok.all(axis=1)

    return correct


@lru_cache(maxsize=32)
def _heldout_fn(geom: tuple, info: _Readout):
    correct = _accuracy_fn(geom, info)

    @jax.jit
    def heldout(W, mask, params, ids, targets, real):
        return correct(compress_params(params, W * mask), ids, targets, real)[1].mean()

    return heldout


def accuracy(
    compiled: CompiledProgram, params: dict, ids: np.ndarray, targets: np.ndarray,
    real: np.ndarray, _fn: Callable | None = None,
) -> Accuracy:
    """Nearest-value decoded output of ``params`` against reference value indices."""
    fn = _fn or _accuracy_fn(_geometry(compiled), _readout(compiled))
    ok, whole = fn(params, jnp.asarray(ids), jnp.asarray(targets), jnp.asarray(real))
    ok, whole = np.asarray(ok), np.asarray(whole)
    n_pos = int(real.sum())
    return Accuracy(
        positions=float((ok & real).sum() / max(n_pos, 1)), inputs=float(whole.mean()),
        n_inputs=int(len(ids)), n_positions=n_pos,
    )


# ---------------------------------------------------------------------------------------
# Geometry of the learned directions


def variable_bases(compiled: CompiledProgram, W: np.ndarray) -> dict[str, np.ndarray]:
    """Each variable's basis mapped through ``W``: ``W.T @ B`` (d x k) for the unit basis
    ``B`` at ``compiled.variables[v].dims``."""
    return {v: np.asarray(W)[info.dims].T.copy() for v, info in compiled.variables.items()}


def superposition(compiled: CompiledProgram, W: np.ndarray) -> float:
    """Mean |cos| between distinct variable-value directions (rows of ``W`` at every
    variable's dims): 0 when they stay orthogonal, 1 when all are collinear. A direction
    shrunk to (near) zero counts as orthogonal to everything."""
    dims = sorted({d for info in compiled.variables.values() for d in info.dims})
    if len(dims) < 2:
        return 0.0
    rows = np.asarray(W, dtype=np.float64)[dims]
    norms = np.linalg.norm(rows, axis=1)
    unit = rows / np.where(norms > 1e-6, norms, np.inf)[:, None]
    cos = np.abs(unit @ unit.T)
    iu = np.triu_indices(len(dims), 1)
    return float(cos[iu].mean())


# ---------------------------------------------------------------------------------------
# Checkpoints (safetensors + JSON)


def _fingerprint(compiled: CompiledProgram) -> str:
    h = hashlib.sha256()
    for name in sorted(compiled.params):
        h.update(name.encode())
        h.update(np.ascontiguousarray(compiled.params[name]).tobytes())
    return h.hexdigest()


def _ckpt_paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def save_checkpoint(path, *, W, opt_state, key, step, cfg, fingerprint, losses, history):
    """Write ``W``, the optimizer state's leaves, the key and the step (atomic rename)."""
    from safetensors.numpy import save_file

    weights, sidecar = _ckpt_paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    leaves = jax.tree_util.tree_leaves(opt_state)
    tensors = {"W": np.asarray(W), "key": np.asarray(jax.random.key_data(key))}
    tensors.update({f"opt.{i}": np.asarray(x) for i, x in enumerate(leaves)})
    tmp_w, tmp_s = weights.with_suffix(".tmp.safetensors"), sidecar.with_suffix(".tmp.json")
    save_file(tensors, str(tmp_w), metadata={"format": CHECKPOINT_FORMAT})
    meta = {
        "format": CHECKPOINT_FORMAT, "step": int(step), "config": cfg.to_dict(),
        "fingerprint": fingerprint, "n_opt_leaves": len(leaves),
        "losses": np.asarray(losses, dtype=np.float64).tolist(),
        "history": [list(h) for h in history],
    }
    tmp_s.write_text(json.dumps(meta, sort_keys=True))
    tmp_w.replace(weights)
    tmp_s.replace(sidecar)


def load_checkpoint(path, *, cfg: CompressConfig, fingerprint: str, opt_state_like):
    """``(W, opt_state, key, step, losses, history)`` or None if there is no checkpoint.

    A checkpoint of another program or another configuration raises ValueError rather
    than resuming something else.
    """
    from safetensors.numpy import load_file

    weights, sidecar = _ckpt_paths(path)
    if not weights.exists() or not sidecar.exists():
        return None
    meta = json.loads(sidecar.read_text())
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{sidecar} is not a compression checkpoint")
    if meta["fingerprint"] != fingerprint:
        raise ValueError(f"checkpoint {weights} was written for another compiled program; "
                         "delete it or pass another path")
    mine, theirs = cfg.to_dict(), meta["config"]
    if mine != theirs:
        diff = sorted(k for k in mine if mine[k] != theirs.get(k))
        raise ValueError(f"checkpoint {weights} was written with another configuration "
                         f"(differs in {', '.join(diff)}); delete it or pass another path")
    tensors = load_file(str(weights))
    treedef = jax.tree_util.tree_structure(opt_state_like)
    like = jax.tree_util.tree_leaves(opt_state_like)
    leaves = [jnp.asarray(tensors[f"opt.{i}"]) for i in range(meta["n_opt_leaves"])]
    if len(leaves) != len(like) or any(a.shape != b.shape for a, b in zip(leaves, like)):
        raise ValueError(f"checkpoint {weights}: optimizer state does not match this optax")
    opt_state = jax.tree_util.tree_unflatten(treedef, leaves)
    key = jax.random.wrap_key_data(jnp.asarray(tensors["key"]))
    return (jnp.asarray(tensors["W"]), opt_state, key, int(meta["step"]),
            np.asarray(meta["losses"], dtype=np.float64).reshape(-1, 3),
            [tuple(h) for h in meta["history"]])


# ---------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class _Inputs:
    inputs: float


def _check_d(compiled: CompiledProgram, d: int) -> None:
    D = compiled.config.d_model
    if isinstance(d, bool) or not isinstance(d, int | np.integer) or not 1 <= d <= D:
        raise ValueError(
            f"d must be an integer between 1 and the compiled d_model {D}, got {d!r}"
        )


def _init_W(cfg: CompressConfig, D: int, seed: int) -> jnp.ndarray:
    if cfg.init == "identity":
        if cfg.d != D:
            raise ValueError(f"init='identity' needs d = D = {D}, got d={cfg.d}")
        return jnp.eye(D, dtype=jnp.float32)
    if cfg.init != "orthogonal":
        raise ValueError(f"init must be 'orthogonal' or 'identity', got {cfg.init!r}")
    # a seeded Gaussian's QR in numpy (LAPACK): deterministic, and no XLA compile
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((D, cfg.d)))
    return jnp.asarray(q * np.sign(np.diag(r)), dtype=jnp.float32)


def compress(
    compiled: CompiledProgram,
    d: int,
    *,
    spec: ProgramSpec | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    W0: np.ndarray | None = None,
    **config: Any,
) -> Compressed:
    """Learn ``W`` (D x d) compressing ``compiled``'s residual stream to ``d`` dimensions.

    ``config`` holds the fields of :class:`CompressConfig` (``seed``, ``steps``, ``lr``,
    ``batch``, ``recon_weight``, ``stop_at``, ...). ``spec`` (the program's library record)
    gives the training sampler and the interpreter reference. ``checkpoint`` names a file
    stem: training resumes from it if it exists and writes it every ``checkpoint_every``
    steps and at the end. ``stop_after`` ends the run early after that many steps (to
    simulate an interruption; the checkpoint is written there). ``W0`` (D x d) replaces the
    initialisation (``init`` is then recorded as ``"given"``).
    """
    _check_d(compiled, d)
    if W0 is not None:
        config["init"] = "given"
    cfg = CompressConfig(d=int(d), **config)
    if cfg.steps < 0 or cfg.batch < 1 or cfg.eval_every < 1:
        raise ValueError("steps must be >= 0, batch and eval_every >= 1")
    if cfg.checkpoint_every % cfg.eval_every:
        raise ValueError(f"checkpoint_every ({cfg.checkpoint_every}) must be a multiple of "
                         f"eval_every ({cfg.eval_every})")
    t0 = time.perf_counter()
    model = Model(compiled)
    geom = _geometry(compiled)
    program = spec.build() if spec is not None else None
    s_train, s_held, s_key, s_init = _seeds(cfg.seed)
    train = _reference_data(model, _sample(compiled, spec, s_train, cfg.n_train), None)
    held = _reference_data(model, _sample(compiled, spec, s_held, cfg.n_heldout), program)

    params = {k: jnp.asarray(v) for k, v in compiled.params.items()}
    ref_sites = jax.jit(partial(residual_sites, **dict(geom)))(params, jnp.asarray(train.ids))
    pool = {"ids": jnp.asarray(train.ids), "sites": ref_sites,
            "targets": jnp.asarray(train.targets), "real": jnp.asarray(train.real)}
    info = _readout(compiled)
    opt = _optimizer(cfg)
    D = compiled.config.d_model
    key_data = jax.random.key(s_key)
    if W0 is not None:
        W = jnp.asarray(W0, dtype=jnp.float32)
        if W.shape != (compiled.config.d_model, cfg.d):
            raise ValueError(f"W0 must be {compiled.config.d_model} x {cfg.d}, got {W.shape}")
    else:
        W = _init_W(cfg, compiled.config.d_model, s_init)
    W = jnp.zeros((D, D), jnp.float32).at[:, : cfg.d].set(W)  # padded: one compile for all d
    mask = jnp.asarray(np.arange(D) < cfg.d, dtype=jnp.float32)
    opt_state = opt.init(W)
    step, losses, history = 0, np.zeros((0, 3)), []
    fp = _fingerprint(compiled)
    if checkpoint is not None:
        loaded = load_checkpoint(checkpoint, cfg=cfg, fingerprint=fp, opt_state_like=opt_state)
        if loaded is not None:
            W, opt_state, key_data, step, losses, history = loaded

    chunk = _chunk_fn(_static(cfg), geom, info)
    held_fn = _heldout_fn(geom, info)
    held_arrays = [jnp.asarray(a) for a in (held.ids, held.targets, held.real)]
    held_acc = lambda W: _Inputs(float(held_fn(W, mask, params, *held_arrays)))
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    done = cfg.stop_at is not None and bool(history) and history[-1][1] >= cfg.stop_at
    if cfg.stop_at is not None and not history and step == 0:
        history.append((0, held_acc(W).inputs))
        done = history[-1][1] >= cfg.stop_at
    from tqdm.auto import tqdm

    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, unit="step",
               desc=f"compress d={cfg.d}/{compiled.config.d_model}", dynamic_ncols=True,
               leave=False)
    t_train = time.perf_counter()
    steps_before = step
    while step < end and not done:
        n = min(cfg.eval_every, end - step)
        W, opt_state, chunk_losses = chunk(W, opt_state, key_data, n, jnp.int32(step), mask, params,
                                        pool)
        step += n
        losses = np.concatenate([losses, np.asarray(chunk_losses, dtype=np.float64)])
        acc = held_acc(W).inputs
        history.append((step, acc))
        done = cfg.stop_at is not None and acc >= cfg.stop_at
        bar.update(n)
        bar.set_postfix(loss=f"{losses[-1, 0]:.4g}", heldout=f"{acc:.3f}")
        if checkpoint is not None and (step % cfg.checkpoint_every == 0 or step == end or done):
            save_checkpoint(checkpoint, W=W, opt_state=opt_state, key=key_data, step=step,
                            cfg=cfg, fingerprint=fp, losses=losses, history=history)
    bar.close()
    train_s = time.perf_counter() - t_train
    del t0

    W_np = np.asarray(W)[:, : cfg.d]
    p_d = compress_params(params, jnp.asarray(W_np))
    result_acc = accuracy(compiled, p_d, held.ids, held.targets, held.real)
    return Compressed(
        compiled=compiled, params={k: np.asarray(v) for k, v in p_d.items()}, W=W_np,
        config=cfg, seed=cfg.seed, losses=tuple(losses[:, 0].tolist()),
        output_losses=tuple(losses[:, 1].tolist()), recon_losses=tuple(losses[:, 2].tolist()),
        heldout=result_acc, reference="interpreter" if program is not None else "compiled",
        bases=variable_bases(compiled, W_np), superposition=superposition(compiled, W_np),
        steps_done=step - steps_before, seconds=train_s,
        history=tuple((int(s), float(a)) for s, a in history),
    )


def run_compressed(c: Compressed, inputs: Sequence[Sequence]) -> list[list]:
    """Nearest-value decoded outputs (no BOS) of the compressed model on token sequences."""
    model = Model(c.compiled)
    ids, real = _encode(model, [list(x) for x in inputs])
    p = {k: jnp.asarray(v) for k, v in c.params.items()}
    x = jax.jit(partial(residual_sites, **dict(_geometry(c.compiled))))(p, jnp.asarray(ids))[-1]
    decoded = decode_nearest(c.compiled, np.asarray(x) @ c.params["unembed"])
    return [row[1 : 1 + len(xs)] for row, xs in zip(decoded, inputs)]


# ---------------------------------------------------------------------------------------
# Searching for the smallest d


@dataclass(frozen=True)
class AutoTry:
    d: int
    accuracy: float  # held-out input accuracy
    steps: int
    seconds: float


@dataclass(frozen=True)
class AutoResult:
    best: Compressed | None  # the smallest d reaching the target (None: not even D)
    target: float
    tries: tuple[AutoTry, ...]


def auto_d(
    compiled: CompiledProgram, target: float = 0.995, *, lo: int = 1, hi: int | None = None,
    progress: bool = True, **kwargs: Any,
) -> AutoResult:
    """The smallest d in ``lo..hi`` (default 1..D) whose held-out input accuracy reaches
    ``target``, by binary search (accuracy is assumed to grow with d). Each try trains with
    ``stop_at=target``; every try is reported."""
    D = compiled.config.d_model
    hi = D if hi is None else hi
    _check_d(compiled, lo)
    _check_d(compiled, hi)
    tries: list[AutoTry] = []
    found: dict[int, Compressed] = {}
    kwargs.setdefault("stop_at", target)
    a, b = lo, hi
    while a <= b:
        mid = (a + b) // 2
        c = compress(compiled, mid, progress=progress, **kwargs)
        tries.append(AutoTry(mid, c.heldout.inputs, c.steps_done, c.seconds))
        if progress:
            print(f"  d={mid}: held-out accuracy {c.heldout.inputs:.4f} "
                  f"({c.steps_done} steps, {c.seconds:.1f} s)")
        if c.heldout.inputs >= target:
            found[mid] = c
            b = mid - 1
        else:
            a = mid + 1
    best = found[min(found)] if found else None
    return AutoResult(best=best, target=target, tries=tuple(tries))


# ---------------------------------------------------------------------------------------
# Does the compressed model route around a variable?


@dataclass(frozen=True)
class PatchEffect:
    """Interchange a variable's directions from a source input, in both models.

    ``site``: where it is patched (just after it is written). ``iia``: fraction of inputs
    whose compressed patched output equals the compiled patched output (the counterfactual
    the compiled circuit gives). ``changed_compiled`` / ``changed_compressed``: fraction
    whose output the patch changes in each model. ``routed_around``: among inputs whose
    compiled output changes, the fraction whose compressed output does not.
    """

    variable: str
    site: str
    iia: float
    changed_compiled: float
    changed_compressed: float
    routed_around: float
    n: int


def _site_of(compiled: CompiledProgram, variable: str) -> tuple[int, str] | None:
    kind = compiled.variables[variable].kind
    if kind in ("TokensType", "IndicesType"):
        return 0, "hook_embed+hook_pos_embed"
    comps = [c for c in compiled.components if c.node == variable]
    if not comps:
        return None
    c = comps[0]
    if c.kind == "attn":
        return 2 * c.layer + 1, f"blocks.{c.layer}.hook_resid_mid"
    return 2 * c.layer + 2, f"blocks.{c.layer}.hook_resid_post"


def _projector(basis: np.ndarray) -> np.ndarray:
    """Orthogonal projector (d x d) onto the column span of ``basis``."""
    q, s, _ = np.linalg.svd(np.asarray(basis, dtype=np.float64), full_matrices=False)
    q = q[:, s > 1e-6 * max(s.max(initial=0.0), 1e-12)]
    return (q @ q.T).astype(np.float32)


def patch_effects(
    c: Compressed, inputs: Sequence[Sequence], sources: Sequence[Sequence],
    variables: Sequence[str] | None = None,
) -> list[PatchEffect]:
    """For each variable, patch its directions with a source input's at the site after it
    is written, in the compiled model (its unit basis) and in the compressed one (the span
    of ``W.T @ B``), and compare the nearest-value outputs. Inputs and sources are paired
    and must have equal lengths."""
    compiled = c.compiled
    model = Model(compiled)
    if any(len(a) != len(b) for a, b in zip(inputs, sources)) or len(inputs) != len(sources):
        raise ValueError("inputs and sources must pair up with equal lengths")
    ids, real = _encode(model, inputs)
    src, _ = _encode(model, sources)
    ids, src, real = jnp.asarray(ids), jnp.asarray(src), np.asarray(real)
    geom = dict(_geometry(compiled))
    full = {k: jnp.asarray(v) for k, v in compiled.params.items()}
    small = {k: jnp.asarray(v) for k, v in c.params.items()}

    @partial(jax.jit, static_argnums=0)
    def patched(site, p, P, ids, src):
        source = residual_sites(p, src, **geom)[site]
        x = residual_sites(p, ids, **geom, patch=(site, P, source))[-1]
        return nearest_indices(compiled, _mm("btd,dn->btn", x, p["unembed"]))

    @jax.jit
    def plain(p, ids):
        x = residual_sites(p, ids, **dict(geom))[-1]
        return nearest_indices(compiled, _mm("btd,dn->btn", x, p["unembed"]))

    def same(a, b):
        return np.all((np.asarray(a) == np.asarray(b)) | ~real, axis=1)

    base_full, base_small = plain(full, ids), plain(small, ids)
    D = compiled.config.d_model
    out = []
    for v in variables if variables is not None else list(compiled.variables):
        where = _site_of(compiled, v)
        dims = compiled.variables[v].dims
        if where is None or not dims:
            continue
        site, site_name = where
        P_full = np.zeros((D, D), np.float32)
        P_full[dims, dims] = 1.0
        pf = patched(site, full, jnp.asarray(P_full), ids, src)
        ps = patched(site, small, jnp.asarray(_projector(c.bases[v])), ids, src)
        changed_f, changed_s = ~same(pf, base_full), ~same(ps, base_small)
        routed = changed_f & ~changed_s
        out.append(PatchEffect(
            variable=v, site=site_name, iia=float(same(ps, pf).mean()),
            changed_compiled=float(changed_f.mean()), changed_compressed=float(changed_s.mean()),
            routed_around=float(routed.sum() / changed_f.sum()) if changed_f.any() else 0.0,
            n=int(len(inputs)),
        ))
    return out


def make_variant(compiled: CompiledProgram, *, seed: int = 0, d: int | str = "auto",
                 spec: ProgramSpec | None = None, checkpoint: str | Path | None = None,
                 progress: bool = True, **config: Any) -> CompiledProgram:
    """The compressed rung as a model (``variants.make("compressed", ...)``): trains ``W``
    (``d="auto"``: the smallest d reaching 99.5% held-out accuracy) and returns a
    ``CompiledProgram`` whose weights are the compressed ones, whose planted circuit has
    every variable's basis mapped through ``W`` (``W.T @ B``), whose readout is
    ``nearest`` (never treated as exact) and whose ``meta["variant"]`` records the training
    config, seed, losses and held-out accuracy against the interpreter."""
    if "variant" in compiled.meta:
        raise ValueError(f"the model is already a {compiled.meta['variant']['rung']} variant; "
                         "compress the compiled model")
    if d == "auto":
        result = auto_d(compiled, spec=spec, progress=progress, seed=seed, **config).best
        if result is None:
            raise ValueError("no d reached the target accuracy; give --d explicitly")
    else:
        result = compress(compiled, int(d), spec=spec, checkpoint=checkpoint,
                          progress=progress, seed=seed, **config)
    summary = result.summary()
    summary.pop("history", None)
    meta = {**compiled.meta, "readout": "nearest",
            "variant": {"rung": "compressed", "seed": int(seed), **summary,
                        "losses": [float(x) for x in result.losses[-50:]]}}
    cfg = dataclasses.replace(compiled.config, d_model=result.d)
    return dataclasses.replace(
        compiled, config=cfg, params={k: np.asarray(v, np.float32) for k, v in
                                      result.params.items()},
        circuit=compiled.planted.transformed(result.W),
        residual_labels=[f"compressed:{i}" for i in range(result.d)], meta=meta)
