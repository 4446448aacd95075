"""Activation sites (TransformerLens hook names) and interventions on them, in pure JAX.

A site is where the forward pass produces an activation: ``hook_embed``,
``hook_pos_embed``, ``blocks.{l}.hook_resid_pre|hook_resid_mid|hook_resid_post``,
``blocks.{l}.attn.hook_q|hook_k|hook_v|hook_pattern|hook_z|hook_result``,
``blocks.{l}.hook_attn_out``, ``blocks.{l}.mlp.hook_pre|hook_post``,
``blocks.{l}.hook_mlp_out`` (shapes: ``compiler.model.site_names``). ``sites(config)`` lists
them in forward order; ``capture`` returns every one.

Interventions are typed records, applied by ``intervene(params, ids, config,
interventions)`` in one jitted forward pass over a batch (row ``b`` of a source or
reference batch pairs with row ``b`` of ``ids``):

* ``Replace(site, values)``: the activation becomes ``values`` (broadcast to its shape);
* ``Add(site, values)``: ``values`` is added;
* ``Zero(site)``: zeros;
* ``Mean(site, reference_ids)``: the activation's mean over a reference batch, per position;
* ``Resample(site, source_ids)``: the activation of a run on other inputs;
* ``SubspacePatch(site, basis, source_ids)``: inside span(B) the activation becomes the
  source run's, outside it stays: ``x' = x + (x_src - x) Q Q^T`` with ``Q`` an orthonormal
  basis of span(B) (QR of the ``d x k`` matrix ``B``; its columns must be independent).
  The basis acts on the site's last axis (``d_model`` at residual sites).

Every record takes ``positions``: ``None`` (every position), a list of positions, or a
bool mask ``[T]`` / ``[batch, T]``; only those positions are changed (the query axis for
``hook_pattern``). Several interventions on one site apply in the order given. Source and
reference runs are unpatched runs of the same network on their own inputs (their own
padding). Arrays reach the jitted function as arguments, never as closed-over constants
(see the JAX note in ``analysis/methods``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from rasplab.compiler.assemble import CompiledProgram
from rasplab.compiler.model import forward, site_names

HIGHEST = jax.lax.Precision.HIGHEST


# ---------------------------------------------------------------------------------------
# The network's shape and its sites


@dataclass(frozen=True)
class SiteConfig:
    """What the forward pass needs beyond the weights (hashable: static under ``jit``)."""

    num_layers: int
    has_attn: tuple[bool, ...]
    has_mlp: tuple[bool, ...]
    pad_id: int
    causal: bool = False

    @classmethod
    def of(cls, compiled: CompiledProgram) -> SiteConfig:
        """The forward-pass config of a model, read off its ``network``."""
        c = compiled.network.config
        return cls(
            num_layers=c.num_layers,
            has_attn=tuple(c.has_attn(layer) for layer in range(c.num_layers)),
            has_mlp=tuple(c.has_mlp(layer) for layer in range(c.num_layers)),
            pad_id=c.pad_id, causal=c.causal,
        )


def sites(config: SiteConfig) -> list[str]:
    """Every activation site of the network, in forward order."""
    return site_names(config.has_attn, config.has_mlp)


def _check_site(config: SiteConfig, site: str) -> None:
    if site not in sites(config):
        raise ValueError(f"no activation site {site!r} in this network; its sites are "
                         f"{sites(config)}")


def _forward(config: SiteConfig, params: dict, ids, *, capture: bool, hooks=None):
    return forward(params, ids, num_layers=config.num_layers, pad_id=config.pad_id,
                   causal=config.causal, capture=capture, hooks=hooks)


@cache
def _jitted_capture(config: SiteConfig):
    return jax.jit(lambda params, ids: _forward(config, params, ids, capture=True))


def capture(params: dict, ids, config: SiteConfig) -> dict[str, jnp.ndarray]:
    """Every site's activation on ``ids``, in forward order (jitted)."""
    _, cache_ = _jitted_capture(config)(params, np.asarray(ids))
    return {name: cache_[name] for name in sites(config)}


# ---------------------------------------------------------------------------------------
# Intervention records

Positions = Sequence[int] | np.ndarray | None


@dataclass(frozen=True, eq=False)
class Replace:
    """Set the activation at ``site`` to ``values`` (broadcast to its shape)."""

    site: str
    values: Any
    positions: Positions = None


@dataclass(frozen=True, eq=False)
class Add:
    """Add ``values`` (broadcast to the activation's shape) at ``site``."""

    site: str
    values: Any
    positions: Positions = None


@dataclass(frozen=True, eq=False)
class Zero:
    """Set the activation at ``site`` to zero."""

    site: str
    positions: Positions = None


@dataclass(frozen=True, eq=False)
class Mean:
    """Set the activation at ``site`` to its mean over ``reference_ids`` (any batch size,
    the same width), per position."""

    site: str
    reference_ids: Any
    positions: Positions = None


@dataclass(frozen=True, eq=False)
class Resample:
    """Set the activation at ``site`` to a run's on ``source_ids`` (paired row by row)."""

    site: str
    source_ids: Any
    positions: Positions = None


@dataclass(frozen=True, eq=False)
class SubspacePatch:
    """Inside span(``basis``) take the source run's activation at ``site``; keep the
    orthogonal complement: ``x + (x_src - x) Q Q^T``. ``basis`` is one ``d x k`` matrix,
    or one per batch row (a sequence of ``B`` matrices; their ``k`` may differ, ``k = 0``
    leaves the row alone)."""

    site: str
    basis: Any
    source_ids: Any
    positions: Positions = None


Intervention = Replace | Add | Zero | Mean | Resample | SubspacePatch


def orthonormal(basis) -> np.ndarray:
    """``Q`` (float32, ``d x k``): an orthonormal basis of span(``basis``), ``basis`` a
    ``d x k`` matrix with independent columns (QR; ``k = 0`` is allowed)."""
    b = np.asarray(basis, np.float64)
    if b.ndim != 2:
        raise ValueError(f"a basis is a d x k matrix, got shape {b.shape}")
    if b.shape[1] == 0:
        return np.zeros(b.shape, np.float32)
    if b.shape[1] > b.shape[0]:
        raise ValueError(f"a basis of {b.shape[1]} columns in {b.shape[0]} dimensions "
                         "cannot be independent")
    q, r = np.linalg.qr(b)
    diag = np.abs(np.diag(r))
    if diag.min() <= 1e-8 * max(diag.max(), 1e-300):
        raise ValueError("the basis columns are linearly dependent (or zero); pass a basis "
                         "of independent columns")
    return q.astype(np.float32)


def _orthonormal_rows(basis, batch: int) -> np.ndarray:
    """``Q`` ``[d, k]`` for one basis; ``[B, d, k_max]`` for one basis per row (padded with
    zero columns, which leave ``Q Q^T`` unchanged)."""
    if isinstance(basis, list | tuple):
        per_row = bool(basis) and np.ndim(basis[0]) == 2
    else:
        per_row = np.ndim(basis) == 3
    if not per_row:
        return orthonormal(basis)
    rows = list(basis)
    if len(rows) != batch:
        raise ValueError(f"{len(rows)} per-row bases for a batch of {batch}")
    memo: dict[int, np.ndarray] = {}  # rows often repeat one matrix object
    qs = []
    for r in rows:
        if id(r) not in memo:
            memo[id(r)] = orthonormal(r)
        qs.append(memo[id(r)])
    if len({q.shape[0] for q in qs}) > 1:
        raise ValueError("per-row bases must all have d rows (the site's last axis)")
    k = max((q.shape[1] for q in qs), default=0)
    out = np.zeros((len(qs), qs[0].shape[0] if qs else 0, k), np.float32)
    for i, q in enumerate(qs):
        out[i, :, : q.shape[1]] = q
    return out


# ---------------------------------------------------------------------------------------
# Applying them


class PatchedRun(NamedTuple):
    """A patched run: the final residual ``[B, T, d_model]`` and, if asked, every site's
    (patched) activation in forward order."""

    resid: jnp.ndarray
    cache: dict | None = None


@dataclass(frozen=True)
class _Spec:
    """The static part of one intervention (its arrays travel as arguments)."""

    kind: str
    site: str
    aux: int  # index of its source / reference batch, -1 if none


def _position_mask(positions: Positions, shape: tuple[int, int]) -> np.ndarray:
    b, t = shape
    if positions is None:
        return np.ones((b, t), bool)
    arr = np.asarray(positions)
    if arr.dtype == bool:
        if arr.shape not in ((t,), (b, t)):
            raise ValueError(f"a position mask has shape [{t}] or [{b}, {t}], got {arr.shape}")
        return np.broadcast_to(arr, (b, t)).copy()
    mask = np.zeros(t, bool)
    idx = arr.astype(int).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= t):
        raise ValueError(f"positions {idx.tolist()} are outside 0..{t - 1}")
    mask[idx] = True
    return np.broadcast_to(mask, (b, t)).copy()


def _expand(mask, site: str, ndim: int):
    """A ``[B, T]`` mask broadcastable to the site's activation."""
    if site.endswith("hook_pattern"):  # [batch, head, query, key]
        return mask[:, None, :, None]
    return mask.reshape(mask.shape + (1,) * (ndim - 2))


def _apply(spec: _Spec, arrays: dict, x, other):
    """The intervention on the base rows ``x``; ``other``: the source rows (resample,
    subspace) or the reference rows (mean) at the same site."""
    m = _expand(arrays["mask"], spec.site, x.ndim)
    if spec.kind == "zero":
        return jnp.where(m, jnp.zeros_like(x), x)
    if spec.kind in ("replace", "add"):
        values = arrays["values"]
        try:
            values = jnp.broadcast_to(values, x.shape).astype(x.dtype)
        except ValueError:
            raise ValueError(f"values of shape {values.shape} do not broadcast to the "
                             f"activation at {spec.site!r}, {x.shape}") from None
        if spec.kind == "replace":
            return jnp.where(m, values, x)
        return x + jnp.where(m, values, 0)
    if spec.kind == "mean":
        return jnp.where(m, jnp.broadcast_to(other.mean(0, keepdims=True), x.shape), x)
    if spec.kind == "resample":
        return jnp.where(m, other, x)
    q = arrays["q"]  # subspace: [d, k] or [B, d, k]
    if q.shape[-2] != x.shape[-1]:
        raise ValueError(f"the basis has {q.shape[-2]} rows but the activation at "
                         f"{spec.site!r} has {x.shape[-1]} on its last axis")
    if q.ndim == 3:
        coords = jnp.einsum("b...d,bdk->b...k", other - x, q, precision=HIGHEST)
        delta = jnp.einsum("b...k,bdk->b...d", coords, q, precision=HIGHEST)
    else:
        coords = jnp.einsum("...d,dk->...k", other - x, q, precision=HIGHEST)
        delta = jnp.einsum("...k,dk->...d", coords, q, precision=HIGHEST)
    return x + jnp.where(m, delta, 0)


def _hook(spec: _Spec, arrays: dict, batch: int, rows: tuple[tuple[int, int], ...]):
    """A hook on the stacked batch ``[base; aux_0; aux_1; ...]`` that changes only the base
    rows (so the source and reference rows run unpatched)."""

    def fn(x):
        other = None
        if spec.aux >= 0:
            lo, hi = rows[spec.aux]
            other = x[lo:hi]
        return jnp.concatenate([_apply(spec, arrays, x[:batch], other), x[batch:]], axis=0)

    return fn


def _compose(first, second):
    return lambda x: second(first(x))


def _patched(config: SiteConfig, specs: tuple[_Spec, ...], capture_: bool, params, ids,
             aux_ids, arrays):
    """One forward pass over the base rows stacked with every source / reference batch:
    rows run independently, so this is the base run patched from unpatched aux runs."""
    batch = ids.shape[0]
    rows, lo = [], batch
    for a in aux_ids:
        rows.append((lo, lo + a.shape[0]))
        lo += a.shape[0]
    hooks: dict = {}
    for spec, arr in zip(specs, arrays, strict=True):
        fn = _hook(spec, arr, batch, tuple(rows))
        hooks[spec.site] = _compose(hooks[spec.site], fn) if spec.site in hooks else fn
    stacked = jnp.concatenate([ids, *aux_ids], axis=0) if aux_ids else ids
    resid, cache_ = _forward(config, params, stacked, capture=capture_, hooks=hooks)
    if not capture_:
        return resid[:batch], None
    return resid[:batch], {k: v[:batch] for k, v in cache_.items()}


@cache
def _jitted(config: SiteConfig, specs: tuple[_Spec, ...], capture_: bool):
    return jax.jit(partial(_patched, config, specs, capture_))


def _aux_index(auxes: list[np.ndarray], ids: np.ndarray) -> int:
    for i, a in enumerate(auxes):
        if a.shape == ids.shape and np.array_equal(a, ids):
            return i
    auxes.append(ids)
    return len(auxes) - 1


def intervene(
    params: dict, ids, config: SiteConfig, interventions: Sequence[Intervention], *,
    capture: bool = False,
) -> PatchedRun:
    """The network on ``ids`` ``[B, T]`` with ``interventions`` applied: one jitted forward
    pass over the base rows stacked with each distinct source / reference batch (rows run
    independently; only the base rows are patched). Compiled once per config, sequence of
    (kind, site) and array shapes.

    Source batches (``Resample``, ``SubspacePatch``) must have the shape of ``ids``;
    reference batches (``Mean``) the same width.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"ids are [batch, seq], got shape {ids.shape}")
    specs: list[_Spec] = []
    arrays: list[dict] = []
    auxes: list[np.ndarray] = []
    for iv in interventions:
        if not isinstance(iv, Intervention):
            raise ValueError(f"not an intervention record: {iv!r}")
        _check_site(config, iv.site)
        arr = {"mask": _position_mask(iv.positions, ids.shape)}
        aux = -1
        if isinstance(iv, (Replace, Add)):
            arr["values"] = np.asarray(iv.values, np.float32)
        if isinstance(iv, (Resample, SubspacePatch)):
            src = np.asarray(iv.source_ids)
            if src.shape != ids.shape:
                raise ValueError(f"source ids of shape {src.shape} for inputs of shape "
                                 f"{ids.shape}: pair one source row with each input row")
            aux = _aux_index(auxes, src)
        if isinstance(iv, Mean):
            ref = np.asarray(iv.reference_ids)
            if ref.ndim != 2 or ref.shape[1] != ids.shape[1] or ref.shape[0] == 0:
                raise ValueError(f"reference ids of shape {ref.shape} for inputs of shape "
                                 f"{ids.shape}: encode them to the same width")
            aux = _aux_index(auxes, ref)
        if isinstance(iv, SubspacePatch):
            arr["q"] = _orthonormal_rows(iv.basis, ids.shape[0])
        kind = {Replace: "replace", Add: "add", Zero: "zero", Mean: "mean",
                Resample: "resample", SubspacePatch: "subspace"}[type(iv)]
        specs.append(_Spec(kind, iv.site, aux))
        arrays.append(arr)
    fn = _jitted(config, tuple(specs), capture)
    resid, cache_ = fn(params, ids, auxes, arrays)  # numpy in: no per-shape transfer kernels
    if cache_ is not None:
        cache_ = {name: cache_[name] for name in sites(config)}
    return PatchedRun(resid, cache_)


__all__ = [
    "SiteConfig", "sites", "capture", "Replace", "Add", "Zero", "Mean", "Resample",
    "SubspacePatch", "Intervention", "orthonormal", "PatchedRun", "intervene",
]
