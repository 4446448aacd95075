"""Distributed alignment search (DAS): learn where a variable lives by interchange training,
and the dormant-direction test of what interchange accuracy cannot see.

**DAS** (Geiger et al. 2023). For a variable ``v`` and a residual site, learn an orthogonal
rotation ``R = R0 expm(A - A^T)`` of the stream (``R0`` a seeded random rotation, ``A``
trained from zero) and patch the span of its first ``k`` columns ``Q`` from a source run
into a base run (``x + (x_src - x) Q Q^T`` at every real position, the same patch
``analysis/sites.py``'s ``SubspacePatch`` applies). The loss is the squared error between
the patched model's read-out and the read-out of the interpreter's counterfactual
(``compiler.interchange.interchange``: the output on the base with ``v`` forced to its
values on the source): the one-hot column of the value (zeros for ``None``) for a
categorical output, the number (in units of half the smallest gap of the value grid) for
a numerical one. Optax Adam, one jitted ``lax.scan``, seeded: the same seed gives the same
subspace on CPU.

``k``: given, or the smallest ``k`` in ``1..k_max`` whose fit reaches ``iia_target`` on
the training pairs, by bisection (``k_max``: the variable's number of classes, ``None``
included, from the high-level model). The smallest matters: dimensions beyond what the
downstream components need get no gradient and can point anywhere harmless (directions
constant on the data, or variables nobody reads any more), which IIA cannot see. Every
``k`` trains the same ``d x k_max`` parameterisation with the columns past ``k`` masked,
so a search costs one XLA compilation.

Initialisation: ``R0``'s first columns are the top principal directions of
``x_src - x_base`` over the patched positions (``init="differences"``, data only), the
rest random. From a fully random rotation (``init="random"``) DAS does not train on
compiled models: the patch spills source-minus-base differences into other variables'
directions, the sharp downstream lookups and attention turn that into garbage outputs,
and the loss is flat (measured: reverse's ``tokens``, loss stays ~1.0 for 300 steps at any
learning rate, IIA 0).

Scores: IIA of the learned subspace on held-out pairs (``analysis.interchange.
interchange_accuracy`` with ``subspaces=``), the **overlap** ``||P_learned P_true||_F^2 / k``
with the variable's planted basis (1.0 when the learned span lies inside the true one) and,
from the data alone, the **dormant fraction**: the share of the learned span along which
the site's activations are constant on the pairs (such directions change nothing when
patched, so IIA cannot see them), and from the weights alone the **unread fraction**:
the share no later component's input weights read (a stale copy of the variable, e.g. the
token one-hot a ``Map`` of the tokens was computed from, carries the same values; a
direction mixing it with the variable's patches the variable fully at lower overlap).
``read_overlap`` is the overlap of the learned span with its unread part projected out.
A fit with high IIA and low overlap is flagged (``illusion``). A variable that takes the
same values on every (base, source) pair (e.g. ``indices`` or ``length`` under same-length
pairs) cannot be located by interchange at all:
it is reported as not identifiable, not as a failure.

**Dormant-direction test** (Makelov et al. 2023, "interpretability illusion"):
``dormant_test`` builds, from the truth, the variable's *variation* subspace ``V`` at the
site (the part of its span that varies on the data) and ``D``: directions outside its span
along which the site is constant on the data (``one``, ``bos``, not-yet-written variables;
the least-read first). Then (a) ``V + D`` (the true span padded with dormant directions):
IIA stays at the planted value while the overlap falls to ``m / (m + j)``; (b) the tilted
``V cos t + D sin t``: overlap ``cos^2 t``, and IIA as far as the model's sharp
downstream components tolerate a partial patch plus the spill into ``D``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from rasplab.compiler import rasp
from rasplab.compiler.assemble import CompiledProgram
from rasplab.compiler.interchange import interchange, variable_ids
from rasplab.compiler.model import forward

from .matching import orthonormal_basis, subspace_overlap

HIGHEST = jax.lax.Precision.HIGHEST
#: IIA at or above this with overlap below ``ILLUSION_OVERLAP`` is flagged as an illusion.
ILLUSION_IIA = 0.99
ILLUSION_OVERLAP = 0.9


@dataclass(frozen=True)
class DASConfig:
    """DAS settings (``k=None``: search ``1..k_max``)."""

    k: int | None = None
    k_max: int | None = None
    steps: int = 300
    batch: int = 64
    lr: float = 4e-3
    train_pairs: int = 256
    eval_pairs: int = 256
    iia_target: float = 0.99
    init: str = "differences"  # "differences" | "random": how R0 starts
    anneal: float = 0.0  # fraction of the steps over which attention sharpness rises to 1
    anneal_start: float = 0.02  # the attention sharpness the annealing starts from
    space: str = "read"  # "read": the subspace lies in what later weights read | "full"
    restarts: int = 1  # extra seeds tried when a fit misses ``iia_target`` (best kept)

    def __post_init__(self) -> None:
        if self.space not in ("read", "full"):
            raise ValueError(f"space is 'read' or 'full', got {self.space!r}")
        if self.restarts < 1:
            raise ValueError("restarts must be >= 1")
        if self.init not in ("differences", "random"):
            raise ValueError(f"init is 'differences' or 'random', got {self.init!r}")
        if not 0 <= self.anneal <= 1 or not 0 < self.anneal_start <= 1:
            raise ValueError("need 0 <= anneal <= 1 and 0 < anneal_start <= 1")
        if self.k is not None and self.k < 1:
            raise ValueError(f"a DAS subspace needs k >= 1, got k={self.k}")
        if self.steps < 1 or self.batch < 1 or self.lr <= 0:
            raise ValueError("steps, batch and lr must be positive")
        if self.train_pairs < 1 or self.eval_pairs < 1:
            raise ValueError("need at least one training and one held-out pair")


# ---------------------------------------------------------------------------------------
# Counterfactual training data


@dataclass(frozen=True, eq=False)
class Pairs:
    """(base, source) pairs with the interpreter's counterfactual read-outs for one variable."""

    variable: str
    bases: tuple[tuple, ...]
    sources: tuple[tuple, ...]
    ids: np.ndarray  # [P, T]
    src_ids: np.ndarray  # [P, T]
    real: np.ndarray  # [P, T] bool: where the patch applies
    target: np.ndarray  # [P, T, n_out] float32: the counterfactual's read-out
    weight: np.ndarray  # [P, T] float32: 1 at real positions of pairs with a counterfactual
    changed: int  # pairs whose counterfactual differs from the base's own output
    differs: int  # pairs where the variable itself differs between base and source


def _encode(compiled: CompiledProgram, inputs: Sequence[Sequence]) -> np.ndarray:
    ids_of = compiled.token_ids
    out = np.full((len(inputs), compiled.config.max_seq_len + 1), ids_of[compiled.pad],
                  np.int32)
    out[:, 0] = ids_of[compiled.bos]
    for b, xs in enumerate(inputs):
        out[b, 1: 1 + len(xs)] = [ids_of[t] for t in xs]
    return out


def _readout_target(compiled: CompiledProgram, values: Sequence) -> np.ndarray:
    """``[len(values), n_out]``: the exact read-out of each output value."""
    from rasplab.compiler.values import same_value

    info = compiled.output_variable
    n_out = compiled.params["unembed"].shape[1]
    out = np.zeros((len(values), n_out), np.float32)
    for t, value in enumerate(values):
        if info.encoding == "numerical":
            out[t, 0] = float(value) if value is not None else 0.0
        elif value is not None:
            for j, v in enumerate(info.values):
                if same_value(v, value):
                    out[t, j] = 1.0
                    break
    return out


def _scale(compiled: CompiledProgram) -> float:
    info = compiled.output_variable
    if info.encoding != "numerical" or len(info.values) < 2:
        return 1.0
    grid = np.unique(np.asarray([float(v) for v in info.values]))
    return float(np.diff(grid).min() / 2)


def counterfactual_pairs(compiled: CompiledProgram, program: rasp.SOp, bases: Sequence,
                         sources: Sequence, variable: str) -> Pairs:
    """The interpreter's counterfactual for ``variable`` on each pair (``program`` as
    compiled: ``compiler.interchange.as_compiled``)."""
    causal = bool(compiled.config.causal)
    evaluate = rasp.causal_evaluate if causal else rasp.evaluate
    sops = variable_ids(program)
    if variable not in sops:
        raise ValueError(f"the program has no variable {variable!r}; its variables are "
                         f"{sorted(sops)}")
    bases, sources = [list(b) for b in bases], [list(s) for s in sources]
    ids, src = _encode(compiled, bases), _encode(compiled, sources)
    n_out = compiled.params["unembed"].shape[1]
    target = np.zeros(ids.shape + (n_out,), np.float32)
    weight = np.zeros(ids.shape, np.float32)
    real = np.zeros(ids.shape, bool)
    changed = differs = 0
    for b, (base, source) in enumerate(zip(bases, sources, strict=True)):
        real[b, 1: 1 + len(base)] = True
        try:
            want = interchange(program, base, source, [sops[variable]], causal=causal)
        except rasp.EvaluationError:
            continue
        from rasplab.compiler.values import outputs_match

        own = list(evaluate(program, base))
        changed += not outputs_match(own, want)
        differs += evaluate(sops[variable], base) != evaluate(sops[variable], source)
        target[b, 1: 1 + len(base)] = _readout_target(compiled, want)
        weight[b, 1: 1 + len(base)] = 1.0
    return Pairs(variable, tuple(map(tuple, bases)), tuple(map(tuple, sources)), ids, src,
                 real, target, weight, changed, differs)


# ---------------------------------------------------------------------------------------
# The rotation and its training


def rotation(r0, a):
    """``R0 expm(A - A^T)``: an orthogonal matrix for any square ``A``."""
    return jnp.dot(r0, jax.scipy.linalg.expm(a - a.T), precision=HIGHEST)


def _patch_hook(q, src_act, real):
    def hook(x):
        coords = jnp.einsum("btd,dk->btk", src_act - x, q, precision=HIGHEST)
        delta = jnp.einsum("btk,dk->btd", coords, q, precision=HIGHEST)
        return x + jnp.where(real[..., None], delta, 0.0)
    return hook


def _sharpness(t, steps: int, anneal: float, start: float):
    """Attention sharpness at step ``t``: geometric from ``start`` to 1 over the first
    ``anneal`` fraction of the steps, then 1."""
    span = max(anneal * steps, 1.0)
    frac = jnp.clip(t / span, 0.0, 1.0) if anneal > 0 else 1.0
    return start ** (1.0 - frac)


@partial(jax.jit, static_argnames=("geometry", "site", "steps", "batch", "lr", "k_max",
                                   "anneal", "anneal_start"))
def _fit(params, space, r0, mask, ids, src_act, real, target, weight, key, *, geometry, site,
         steps, batch, lr, k_max, scale, anneal, anneal_start):
    num_layers, pad_id, causal = geometry
    opt = optax.adam(lr)
    n = ids.shape[0]

    def loss(a, idx, t):
        q = jnp.dot(space, rotation(r0, a)[:, :k_max], precision=HIGHEST) * mask[None, :]
        hook = _patch_hook(q, src_act[idx], real[idx])
        alpha = _sharpness(t, steps, anneal, anneal_start)
        p = {name: (w * alpha if name.endswith(".attn.q") else w)
             for name, w in params.items()}
        resid, _ = forward(p, ids[idx], num_layers=num_layers, pad_id=pad_id,
                           causal=causal, hooks={site: hook})
        out = jnp.einsum("btd,dn->btn", resid, params["unembed"], precision=HIGHEST)
        err = jnp.sum((out - target[idx]) ** 2, axis=-1) / scale ** 2
        w = weight[idx]
        return jnp.sum(err * w) / jnp.maximum(jnp.sum(w), 1.0)

    def step(carry, xs):
        a, state, best, best_loss = carry
        key_t, t = xs
        idx = jax.random.randint(key_t, (batch,), 0, n)
        value, g = jax.value_and_grad(loss)(a, idx, t)
        # keep the best parameters seen at full sharpness (Adam's normalised steps can
        # walk away from an exact optimum, where the gradient is only rounding noise)
        better = (value < best_loss) & (_sharpness(t, steps, anneal, anneal_start) >= 1.0)
        best = jnp.where(better, a, best)
        best_loss = jnp.where(better, value, best_loss)
        updates, state = opt.update(g, state, a)
        return (optax.apply_updates(a, updates), state, best, best_loss), value

    a0 = jnp.zeros_like(r0)
    carry = (a0, opt.init(a0), a0, jnp.asarray(jnp.inf, jnp.float32))
    (_, _, best, _), hist = jax.lax.scan(
        step, carry, (jax.random.split(key, steps), jnp.arange(steps, dtype=jnp.float32)))
    return jnp.dot(space, rotation(r0, best), precision=HIGHEST), hist


def read_space(compiled: CompiledProgram, site: str, tol: float = 1e-6) -> np.ndarray:
    """``d x r``: an orthonormal basis of the column space of every later component's input
    weights (:func:`later_readers`): the only directions at ``site`` whose patch can change
    anything downstream. Weights only; rotates with the model."""
    readers = np.asarray(later_readers(compiled, site), np.float64)
    d = compiled.config.d_model
    if readers.size == 0:
        return np.zeros((d, 0))
    u, s, _ = np.linalg.svd(readers, full_matrices=False)
    return u[:, s > tol * max(float(s.max()), 1e-300)]


def _space(compiled: CompiledProgram, site: str, config: DASConfig) -> np.ndarray:
    d = compiled.config.d_model
    return read_space(compiled, site) if config.space == "read" else np.eye(d)


def _site_activations(compiled: CompiledProgram, params: dict, ids: np.ndarray,
                      site: str) -> np.ndarray:
    from rasplab.analysis.sites import SiteConfig, capture

    return np.asarray(capture(params, ids, SiteConfig.of(compiled))[site])


def _random_rotation(d: int, seed: int, first: np.ndarray | None = None) -> np.ndarray:
    """A seeded random rotation; with ``first`` (``d x j`` orthonormal) its first ``j``
    columns are those."""
    g = np.random.default_rng(seed).standard_normal((d, d))
    if first is not None and first.shape[1]:
        g[:, : first.shape[1]] = first
    q, r = np.linalg.qr(g)
    return (q * np.sign(np.diag(r))[None, :]).astype(np.float32)


def difference_directions(base_act: np.ndarray, src_act: np.ndarray, real: np.ndarray,
                          k: int) -> np.ndarray:
    """``d x k``: the top principal directions (uncentred) of ``x_src - x_base`` over the
    patched positions, the only directions a patch can move (data only, no truth)."""
    diff = (np.asarray(src_act, np.float64) - np.asarray(base_act, np.float64))[real]
    if not len(diff):
        return np.zeros((base_act.shape[-1], 0))
    _, s, vt = np.linalg.svd(diff, full_matrices=False)
    keep = int(min(k, (s > 1e-6 * max(s.max(), 1e-300)).sum()))
    return vt[:keep].T


def fit_subspace(compiled: CompiledProgram, pairs: Pairs, site: str, k: int, *,
                 k_max: int | None = None, seed: int = 0, config: DASConfig = DASConfig(),
                 params: dict | None = None, space: np.ndarray | None = None,
                 acts: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Train DAS for one ``k``: the learned orthonormal ``d x k`` subspace and the loss
    history. The subspace lies in ``space`` (``d x r`` orthonormal; default from
    ``config.space``: the read space or everything). ``k_max`` (default ``k``) fixes the
    parameterisation's width, so fits of different ``k`` up to it share one XLA
    compilation. ``acts``: the site's (base, source) activations, if already captured."""
    u = _space(compiled, site, config) if space is None else space
    d = u.shape[1]
    k_max = k if k_max is None else k_max
    if not 1 <= k <= k_max <= d:
        raise ValueError(f"need 1 <= k <= k_max <= {d} (the {config.space} space's "
                         f"dimension), got k={k}, k_max={k_max}")
    params = jax.device_put(dict(compiled.params)) if params is None else params
    if acts is None:
        acts = (_site_activations(compiled, params, pairs.ids, site),
                _site_activations(compiled, params, pairs.src_ids, site))
    base_act, src_act = acts
    first = None
    if config.init == "differences":
        first = difference_directions(base_act @ u, src_act @ u, pairs.real, k)
    c = compiled.config
    mask = (np.arange(k_max) < k).astype(np.float32)
    r, hist = _fit(params, jnp.asarray(u, jnp.float32),
                   jnp.asarray(_random_rotation(d, seed, first)), jnp.asarray(mask),
                   jnp.asarray(pairs.ids), jnp.asarray(src_act), jnp.asarray(pairs.real),
                   jnp.asarray(pairs.target), jnp.asarray(pairs.weight),
                   jax.random.PRNGKey(seed),
                   geometry=(c.num_layers, compiled.token_ids[compiled.pad], bool(c.causal)),
                   site=site, steps=int(config.steps),
                   batch=int(min(config.batch, len(pairs.ids))), lr=float(config.lr),
                   k_max=int(k_max), scale=_scale(compiled), anneal=float(config.anneal),
                   anneal_start=float(config.anneal_start))
    return np.asarray(r, np.float64)[:, :k], np.asarray(hist)


# ---------------------------------------------------------------------------------------
# Scores


def iia_of(compiled: CompiledProgram, program: rasp.SOp, bases, sources, variable: str,
           site: str, subspace: np.ndarray, *, params: dict | None = None):
    """IIA of ``subspace`` for ``variable`` patched at ``site`` (``IIAResult``)."""
    from rasplab.analysis.interchange import interchange_accuracy

    return interchange_accuracy(compiled, program, bases, sources, [variable], params=params,
                                subspaces={variable: subspace},
                                sites={variable: site})[variable]


def constant_directions(acts: np.ndarray, tol: float = 1e-4) -> np.ndarray:
    """``d x r``: an orthonormal basis of the directions along which the activations
    ``[N, d]`` are constant (the null space of their centred covariance)."""
    x = np.asarray(acts, np.float64).reshape(-1, acts.shape[-1])
    x = x - x.mean(0)
    _, s, vt = np.linalg.svd(x, full_matrices=True)
    s = np.concatenate([s, np.zeros(vt.shape[0] - len(s))])
    scale = max(float(s.max()) if s.size else 0.0, 1e-12)
    return vt[s <= tol * scale].T


def dormant_fraction(subspace: np.ndarray, constant: np.ndarray) -> float:
    """The share of span(``subspace``) along which the data is constant."""
    if constant.shape[1] == 0:
        return 0.0
    return subspace_overlap(subspace, constant)


def unread_fraction(subspace: np.ndarray, readers: np.ndarray, tol: float = 1e-6) -> float:
    """The share of span(``subspace``) that no later component reads (the null space of
    ``readers.T``, ``readers`` from :func:`later_readers`): patching it changes nothing
    downstream, so IIA cannot see it either."""
    d = subspace.shape[0]
    if readers.size == 0:
        return 1.0
    null = _unread(readers, d, tol)
    return subspace_overlap(subspace, null) if null.shape[1] else 0.0


def _unread(readers: np.ndarray, d: int, tol: float = 1e-6) -> np.ndarray:
    if readers.size == 0:
        return np.eye(d)
    u, s, _ = np.linalg.svd(np.asarray(readers, np.float64), full_matrices=True)
    s = np.concatenate([s, np.zeros(d - len(s))])
    return u[:, s <= tol * max(float(s.max()), 1e-300)]


def read_part(subspace: np.ndarray, readers: np.ndarray) -> np.ndarray:
    """span(``subspace``) with its unread part projected out (``d x r``, orthonormal)."""
    null = _unread(readers, subspace.shape[0])
    return orthonormal_basis(subspace - null @ (null.T @ subspace), tol=1e-4)


@dataclass(frozen=True, eq=False)
class DASFit:
    """DAS for one variable at one site."""

    variable: str
    site: str
    k: int  # 0 when not identifiable
    subspace: np.ndarray = field(repr=False)  # [d, k] orthonormal
    iia: float  # held-out
    train_iia: float
    overlap: float  # ||P_learned P_true||_F^2 / k (nan without a true basis)
    dormant_fraction: float  # share of the learned span constant on the data
    pairs: int  # held-out pairs scored
    changed: int  # of them, pairs whose counterfactual changes the output
    identifiable: bool  # the variable differs on some pair and that changes some output
    tried: tuple[tuple[int, float], ...] = ()  # (k, training IIA) of the search
    random_iia: float = float("nan")  # IIA of a random subspace of the same k
    random_overlap: float = float("nan")
    unread_fraction: float = float("nan")  # share of the learned span no later weight reads
    read_overlap: float = float("nan")  # overlap of the learned span's read part

    @property
    def illusion(self) -> bool:
        """High IIA with low overlap: the subspace looks causal but is not the variable's."""
        return (self.identifiable and self.iia >= ILLUSION_IIA
                and np.isfinite(self.overlap) and self.overlap < ILLUSION_OVERLAP)


def das(compiled: CompiledProgram, program: rasp.SOp, variable: str, *,
        train: tuple[Sequence, Sequence], held_out: tuple[Sequence, Sequence],
        site: str | None = None, true_basis: np.ndarray | None = None, seed: int = 0,
        config: DASConfig = DASConfig(), n_classes: int | None = None) -> DASFit:
    """Fit DAS for ``variable`` at ``site`` (default: its write site) on ``train`` pairs
    ``(bases, sources)``; score it on ``held_out``. ``true_basis`` (``d x k``): the planted
    basis the overlap is measured against (default: the planted circuit's)."""
    from rasplab.analysis.interchange import write_site

    site = site or write_site(compiled, variable)
    if true_basis is None and variable in compiled.planted.variables:
        true_basis = np.asarray(compiled.planted.variables[variable].basis, np.float64)
    params = jax.device_put(dict(compiled.params))
    pairs = counterfactual_pairs(compiled, program, *train, variable)
    d = compiled.config.d_model
    ev_bases, ev_sources = held_out
    if n_classes is None:
        info = compiled.variables.get(variable)
        n_classes = (len(info.values) + bool(info.can_be_none)
                     if info is not None and info.encoding == "categorical" else 1)
    space = _space(compiled, site, config)
    acts_pair = (_site_activations(compiled, params, pairs.ids, site),
                 _site_activations(compiled, params, pairs.src_ids, site))
    r = space.shape[1]
    k_max = min(r, config.k_max or max(n_classes, config.k or 1))
    if pairs.differs == 0 or pairs.changed == 0 or r == 0:
        held = iia_of(compiled, program, ev_bases, ev_sources, variable, site,
                      np.zeros((d, 0)), params=params)
        return DASFit(variable, site, 0, np.zeros((d, 0)), held.iia, float("nan"),
                      float("nan"), float("nan"), held.pairs, held.changed, False)
    fits: dict[int, tuple[np.ndarray, float]] = {}

    def attempt(k: int) -> float:
        best = None
        for j in range(config.restarts):  # restarts: other seeds, the best training IIA
            q, _ = fit_subspace(compiled, pairs, site, k, k_max=k_max, seed=seed + 7919 * j,
                                config=config, params=params, space=space, acts=acts_pair)
            tr = iia_of(compiled, program, pairs.bases, pairs.sources, variable, site, q,
                        params=params)
            if best is None or tr.iia > best[1]:
                best = (q, tr.iia)
            if tr.iia >= config.iia_target:
                break
        fits[k] = best
        return best[1]

    if config.k is not None:
        k_max = max(k_max, min(config.k, r))
        attempt(min(config.k, r))
    else:  # the smallest k reaching the target (bisection; a bigger span patches more)
        lo, hi = 1, k_max
        if attempt(hi) >= config.iia_target:
            while lo < hi:
                mid = (lo + hi) // 2
                if attempt(mid) >= config.iia_target:
                    hi = mid
                else:
                    lo = mid + 1
    ok = [k for k, (_, iia) in fits.items() if iia >= config.iia_target]
    pick = min(ok) if ok else max(fits, key=lambda k: (fits[k][1], -k))
    best = fits[pick]
    tried = sorted((k, iia) for k, (_, iia) in fits.items())
    q, train_iia = best
    k = q.shape[1]
    held = iia_of(compiled, program, ev_bases, ev_sources, variable, site, q, params=params)
    acts = np.concatenate([acts_pair[0][pairs.real], acts_pair[1][pairs.real]])
    overlap = subspace_overlap(q, true_basis) if true_basis is not None else float("nan")
    readers = later_readers(compiled, site)
    rnd = orthonormal_basis(np.random.default_rng(seed + 1).standard_normal((d, k)))
    rnd_held = iia_of(compiled, program, ev_bases, ev_sources, variable, site, rnd,
                      params=params)
    return DASFit(
        variable, site, k, q, held.iia, train_iia, overlap,
        dormant_fraction(q, constant_directions(acts)), held.pairs, held.changed, True,
        tuple(tried), rnd_held.iia,
        subspace_overlap(rnd, true_basis) if true_basis is not None else float("nan"),
        unread_fraction(q, readers),
        subspace_overlap(read_part(q, readers), true_basis)
        if true_basis is not None and read_part(q, readers).shape[1] else float("nan"))


# ---------------------------------------------------------------------------------------
# The dormant-direction test


def variation_subspace(acts: np.ndarray, basis: np.ndarray, tol: float = 1e-4) -> np.ndarray:
    """The part of span(``basis``) along which the activations ``[N, d]`` vary."""
    qb = orthonormal_basis(basis)
    coords = np.asarray(acts, np.float64) @ qb
    coords = coords - coords.mean(0)
    _, s, vt = np.linalg.svd(coords, full_matrices=False)
    if not s.size or s.max() <= 0:
        return np.zeros((qb.shape[0], 0))
    return qb @ vt[s > tol * s.max()].T


def dormant_directions(acts: np.ndarray, basis: np.ndarray, readers: np.ndarray | None,
                       count: int) -> np.ndarray:
    """Up to ``count`` orthonormal directions outside span(``basis``) along which the
    activations are constant, those least read by ``readers`` (``d x r``: the input
    weights of every later component, stacked) first."""
    const = constant_directions(acts)
    qb = orthonormal_basis(basis)
    outside = const - qb @ (qb.T @ const)
    n = orthonormal_basis(outside)
    if n.shape[1] == 0:
        return n
    if readers is not None and readers.size:
        m = n.T @ readers
        w, u = np.linalg.eigh(m @ m.T)
        n = n @ u[:, np.argsort(w)]
    return n[:, :count]


def later_readers(compiled: CompiledProgram, site: str) -> np.ndarray:
    """``d x r``: the input weights of every component after ``site`` (head q/k/v, MLP
    in, unembed), side by side."""
    parts = site.split(".")
    layer = int(parts[1]) if parts[0] == "blocks" else 0
    after_attn = parts[-1] == "hook_resid_pre" or parts[0] != "blocks"
    mats = []
    p = compiled.params
    for name, w in p.items():
        bits = name.split(".")
        if name == "unembed":
            mats.append(w)
            continue
        if bits[0] != "layers":
            continue
        lay, kind = int(bits[1]), bits[2]
        later = lay > layer or (lay == layer and (kind == "mlp" and parts[-1] != "hook_resid_post"
                                                  or kind == "attn" and after_attn))
        if not later:
            continue
        if kind == "attn" and bits[3] in ("q", "k", "v"):
            mats.append(np.concatenate(list(w), axis=1))
        elif kind == "mlp" and bits[3] == "in":
            mats.append(w)
    return np.concatenate(mats, axis=1) if mats else np.zeros((compiled.config.d_model, 0))


@dataclass(frozen=True)
class DormantPoint:
    """One constructed subspace: how much of it is the variable's, and its IIA."""

    construction: str  # "padded" (V + j dormant dims) | "tilted" (V cos t + D sin t)
    parameter: float  # j, or the tilt t in degrees
    k: int
    overlap: float
    iia: float


@dataclass(frozen=True)
class DormantTest:
    variable: str
    site: str
    m: int  # dimension of the variable's variation at the site
    dormant_available: int  # constant directions outside its span
    planted_iia: float
    points: tuple[DormantPoint, ...]

    @property
    def illusion(self) -> bool:
        """Some constructed subspace reaches IIA >= 0.99 with overlap below 0.9."""
        return any(p.iia >= ILLUSION_IIA and p.overlap < ILLUSION_OVERLAP for p in self.points)


def dormant_test(compiled: CompiledProgram, program: rasp.SOp, variable: str, bases,
                 sources, *, site: str | None = None, true_basis: np.ndarray | None = None,
                 tilts: Sequence[float] = (0, 15, 30, 45, 60, 75, 90),
                 pads: Sequence[int] = (1, 2, 4)) -> DormantTest:
    """Makelov et al.'s illusion on a compiled model: subspaces built from the variable's
    variation ``V`` and dormant directions ``D`` (see the module docstring), each scored
    by IIA and overlap with the planted basis."""
    from rasplab.analysis.interchange import write_site

    site = site or write_site(compiled, variable)
    if true_basis is None:
        true_basis = np.asarray(compiled.planted.variables[variable].basis, np.float64)
    params = jax.device_put(dict(compiled.params))
    ids, src = _encode(compiled, bases), _encode(compiled, sources)
    ids_of = compiled.token_ids
    real = (ids != ids_of[compiled.bos]) & (ids != ids_of[compiled.pad])
    acts = np.concatenate([_site_activations(compiled, params, ids, site)[real],
                           _site_activations(compiled, params, src, site)[real]])
    v = variation_subspace(acts, true_basis)
    m = v.shape[1]
    planted = iia_of(compiled, program, bases, sources, variable, site, true_basis,
                     params=params)
    if m == 0:
        return DormantTest(variable, site, 0, 0, planted.iia, ())
    dormant = dormant_directions(acts, true_basis, later_readers(compiled, site),
                                 max(max(pads, default=0), m))
    points = []
    for j in pads:
        if j > dormant.shape[1]:
            continue
        q = np.concatenate([v, dormant[:, :j]], axis=1)
        r = iia_of(compiled, program, bases, sources, variable, site, q, params=params)
        points.append(DormantPoint("padded", float(j), q.shape[1],
                                   subspace_overlap(q, true_basis), r.iia))
    if dormant.shape[1] >= m:
        for t in tilts:
            rad = np.deg2rad(t)
            q = v * np.cos(rad) + dormant[:, :m] * np.sin(rad)
            r = iia_of(compiled, program, bases, sources, variable, site, q, params=params)
            points.append(DormantPoint("tilted", float(t), m,
                                       subspace_overlap(q, true_basis), r.iia))
    return DormantTest(variable, site, m, int(dormant.shape[1]), planted.iia, tuple(points))


# ---------------------------------------------------------------------------------------
# The feature-method front door


def same_length_pairs(inputs: Sequence[Sequence], seed: int = 0
                      ) -> tuple[list[list], list[list]]:
    """Each input paired with another input of the same length and different tokens (drawn
    with ``seed``); inputs with no such partner are left out."""
    rng = np.random.default_rng(seed)
    by_len: dict[int, list[int]] = {}
    for i, xs in enumerate(inputs):
        by_len.setdefault(len(xs), []).append(i)
    bases, sources = [], []
    for xs in inputs:
        others = [j for j in by_len[len(xs)] if list(inputs[j]) != list(xs)]
        if others:
            bases.append(list(xs))
            sources.append(list(inputs[others[int(rng.integers(len(others)))]]))
    return bases, sources


def run(model, truth, *, site: str | None = None, variable: str | None = None,
        seed: int = 0, config: DASConfig = DASConfig(), dormant: bool = True):
    """DAS for every variable of ``truth`` (or ``variable``) at its write site (or at
    ``site``, for the variables present there), on same-length pairs of the truth's inputs
    (half to train, half held out); with ``dormant``, the padded and tilted dormant-direction
    constructions too. Returns a ``FeatureReport`` (``iia``, ``overlap`` and the rest)."""
    import time

    from rasplab.analysis.interchange import write_site

    from .result import FeatureReport, Method, VariableScore

    start = time.perf_counter()
    if truth.program is None:
        raise ValueError("DAS needs the program's interpreter for its counterfactuals: build "
                         "the truth with program=")
    names = [variable] if variable is not None else list(truth.variables)
    for name in names:
        truth.variable(name)
    if site is not None:
        if site not in truth.sites:
            raise ValueError(f"no residual site {site!r}; the sites are {list(truth.sites)}")
        names = [n for n in names if truth.at(n, site).present]
    bases, sources = same_length_pairs(truth.inputs, seed)
    if len(bases) < 4:
        raise ValueError("DAS needs at least 4 (base, source) pairs of equal length; give "
                         "more inputs")
    half = len(bases) // 2
    n_train = min(half, config.train_pairs)
    train = (bases[:n_train], sources[:n_train])
    held_out = (bases[half:half + config.eval_pairs], sources[half:half + config.eval_pairs])
    scores, illusions = [], []
    for name in names:
        vt = truth.variable(name)
        at = site or write_site(model, name)
        fit = das(model, truth.program, name, train=train, held_out=held_out, site=at,
                  true_basis=vt.basis, seed=seed, config=config, n_classes=max(vt.n_classes, 1))
        s = {"iia": fit.iia, "overlap": fit.overlap, "k": fit.k, "train_iia": fit.train_iia,
             "dormant_fraction": fit.dormant_fraction,
             "unread_fraction": fit.unread_fraction, "read_overlap": fit.read_overlap,
             "random_iia": fit.random_iia,
             "random_overlap": fit.random_overlap, "pairs": fit.pairs,
             "changed": fit.changed, "identifiable": fit.identifiable,
             "illusion": fit.illusion}
        notes = []
        if not fit.identifiable:
            notes.append("not identifiable by interchange: the variable never differs (or "
                         "never changes the output) between same-length base and source")
        if fit.illusion:
            illusions.append(name)
            notes.append(f"illusion: IIA {fit.iia:.3f} with overlap {fit.overlap:.3f}")
        if dormant and fit.identifiable:
            test = dormant_test(model, truth.program, name, *held_out, site=at,
                                true_basis=vt.basis, tilts=(45,), pads=(fit.k,))
            for p in test.points:
                key = "padded" if p.construction == "padded" else "tilted45"
                s[f"{key}_iia"], s[f"{key}_overlap"] = p.iia, p.overlap
            s["dormant_illusion"] = test.illusion
        st = truth.at(name, at) if at in truth.sites else None
        scores.append(VariableScore(name, at, Method.DAS, st.present if st else True,
                                    st.used if st else False, s, tuple(notes)))
    ident = [v for v in scores if v.scores["identifiable"]]
    summary = {
        "cells": len(scores), "identifiable": len(ident),
        "iia_1": sum(v.scores["iia"] >= 1.0 for v in ident),
        "overlap_099": sum(v.scores["overlap"] >= 0.99 for v in ident),
        "illusions": len(illusions),
        "mean_iia": float(np.mean([v.scores["iia"] for v in ident])) if ident else float("nan"),
        "mean_overlap": (float(np.mean([v.scores["overlap"] for v in ident]))
                         if ident else float("nan")),
    }
    notes = [f"DAS illusion (high IIA, low overlap) for: {', '.join(illusions)}"] \
        if illusions else []
    if not truth.is_exact:
        notes.append("approximate model: IIA is against the interpreter, which the model "
                     "matches only approximately")
    return FeatureReport(Method.DAS, truth.name, truth.rung, truth.is_exact, tuple(scores),
                         seed=seed, samples=len(truth.inputs),
                         model_accuracy=truth.model_accuracy, summary=summary,
                         notes=tuple(notes), seconds=time.perf_counter() - start)


__all__ = ["DASConfig", "Pairs", "counterfactual_pairs", "rotation", "fit_subspace",
           "iia_of", "constant_directions", "dormant_fraction", "unread_fraction",
           "read_part", "DASFit", "das",
           "variation_subspace", "dormant_directions", "later_readers", "DormantPoint",
           "DormantTest", "dormant_test", "ILLUSION_IIA", "ILLUSION_OVERLAP",
           "same_length_pairs", "run"]
