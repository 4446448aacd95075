"""Sparse autoencoders and transcoders on a model's activations, scored against the planted
(variable, value) directions.

A dictionary has ``m`` atoms. Its encoder maps an input ``x`` to codes
``z = act((x - b_pre) W_enc + b_enc)``; its decoder writes ``x_hat = z W_dec + b_dec``
with every decoder row (an *atom*) kept at unit norm (the decoder is parameterised as
``V / ||V||`` row-wise, so the sparsity penalty cannot be dodged by shrinking codes and
growing atoms). Two kinds (:class:`SAEKind`):

* ``topk``: ``act`` keeps the ``k`` largest pre-activations of each row (ReLU'd) and zeroes
  the rest; the loss is the reconstruction error alone;
* ``relu``: ``act`` is ReLU and the loss adds ``l1`` times the mean L1 norm of the codes.

An **SAE** reconstructs its input (``b_pre`` is tied to ``b_dec``); a **transcoder**
predicts another activation from it: an MLP's output (``blocks.{l}.hook_mlp_out``) from
its input (``blocks.{l}.hook_resid_mid``), with its own input offset ``b_pre``. The
reconstruction error is normalised by the target's variance (NMSE: 1.0 is what predicting
the mean scores), so one learning rate fits every model and rung.

Training is optax Adam over minibatches drawn by a seeded JAX key, the whole run one jitted
``lax.scan``: the same seed gives the same dictionary on CPU, bit for bit.

Scoring (``score``) matches atoms to the true directions at the site (the truth's basis
columns, one per (variable, value)): MCC over a Hungarian matching of ``|cos|``, mean max
cosine, per-feature F1 of the matched atom's activity against "the variable takes that
value here", dead atoms (never active on the data) and the NMSE. ``run`` is what
``rasplab features --method sae`` calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .matching import abs_cosines, f1, match, mcc, mean_max_cos

HIGHEST = jax.lax.Precision.HIGHEST


class SAEKind(StrEnum):
    TOPK = "topk"
    RELU = "relu"  # ReLU codes with an L1 penalty


@dataclass(frozen=True)
class SAEConfig:
    """Training settings. ``width`` (atoms) and ``k`` (TopK's active atoms) default, in
    ``run``, to the number of true (variable, value) directions at the site and to their
    mean number active per position (the true L0), as SynthSAEBench sets them."""

    kind: SAEKind = SAEKind.RELU
    width: int | None = None
    k: int | None = None
    l1: float = 3e-2
    steps: int = 3000
    batch: int = 256
    lr: float = 3e-3

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", SAEKind(self.kind))
        if self.width is not None and self.width < 1:
            raise ValueError(f"a dictionary needs at least one atom, got width={self.width}")
        if self.k is not None and self.k < 1:
            raise ValueError(f"TopK needs k >= 1, got k={self.k}")
        if self.steps < 1 or self.batch < 1 or self.lr <= 0 or self.l1 < 0:
            raise ValueError("steps, batch and lr must be positive and l1 non-negative")


@dataclass(frozen=True, eq=False)
class Dictionary:
    """A trained SAE or transcoder (numpy arrays, float32)."""

    kind: SAEKind
    k: int | None  # TopK's k (None for relu)
    W_enc: np.ndarray  # [d_in, m]
    b_enc: np.ndarray  # [m]
    W_dec: np.ndarray  # [m, d_out], unit rows
    b_dec: np.ndarray  # [d_out]
    b_pre: np.ndarray  # [d_in]
    transcoder: bool = False
    losses: tuple[float, ...] = field(default=(), repr=False)  # NMSE every 100 steps

    @property
    def width(self) -> int:
        return int(self.W_enc.shape[1])

    @property
    def atoms(self) -> np.ndarray:
        """The decoder directions as columns, ``[d_out, m]``."""
        return self.W_dec.T

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Codes ``[N, m]`` of inputs ``[N, d_in]``."""
        return np.asarray(_encode(self.kind, self.k, _params(self), jnp.asarray(x, jnp.float32)))

    def decode(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, np.float32) @ self.W_dec + self.b_dec

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(x))


def _params(d: Dictionary) -> dict:
    return {"W_enc": jnp.asarray(d.W_enc), "b_enc": jnp.asarray(d.b_enc),
            "V": jnp.asarray(d.W_dec), "b_dec": jnp.asarray(d.b_dec),
            "b_pre": jnp.asarray(d.b_pre)}


def _unit_rows(v):
    return v / jnp.maximum(jnp.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def _encode(kind: SAEKind, k: int | None, p: dict, x):
    pre = jnp.dot(x - p["b_pre"], p["W_enc"], precision=HIGHEST) + p["b_enc"]
    if kind is SAEKind.RELU:
        return jax.nn.relu(pre)
    kth = jax.lax.top_k(pre, k)[0][..., -1:]
    return jnp.where(pre >= kth, jax.nn.relu(pre), 0.0)


def _loss(kind: SAEKind, k: int | None, l1: float, tied: bool, scale, p: dict, x, y):
    if tied:
        p = {**p, "b_pre": p["b_dec"]}
    z = _encode(kind, k, p, x)
    y_hat = jnp.dot(z, _unit_rows(p["V"]), precision=HIGHEST) + p["b_dec"]
    nmse = jnp.mean(jnp.sum((y - y_hat) ** 2, axis=-1)) / scale
    if kind is SAEKind.RELU:
        return nmse + l1 * jnp.mean(jnp.sum(z, axis=-1)) / jnp.sqrt(scale), nmse
    return nmse, nmse


@partial(jax.jit, static_argnames=("kind", "k", "l1", "tied", "steps", "batch", "lr"))
def _train(p0, x, y, key, *, kind, k, l1, tied, steps, batch, lr):
    opt = optax.adam(lr)
    scale = jnp.maximum(jnp.mean(jnp.sum((y - y.mean(0)) ** 2, axis=-1)), 1e-12)
    n = x.shape[0]

    def step(carry, key_t):
        p, state = carry
        idx = jax.random.randint(key_t, (batch,), 0, n)
        (_, nmse), g = jax.value_and_grad(
            partial(_loss, kind, k, l1, tied, scale), has_aux=True)(p, x[idx], y[idx])
        updates, state = opt.update(g, state, p)
        return (optax.apply_updates(p, updates), state), nmse

    (p, _), hist = jax.lax.scan(step, (p0, opt.init(p0)), jax.random.split(key, steps))
    return p, hist


def train(x: np.ndarray, y: np.ndarray | None = None, config: SAEConfig = SAEConfig(), *,
          seed: int = 0) -> Dictionary:
    """Train a dictionary on inputs ``x`` ``[N, d_in]``: an SAE (``y`` None: reconstruct
    ``x``) or a transcoder (predict ``y`` ``[N, d_out]``). ``config.width`` must be set
    (``run`` sets it from the truth); TopK also needs ``config.k``."""
    x = np.asarray(x, np.float32)
    transcoder = y is not None
    y = x if y is None else np.asarray(y, np.float32)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or not len(x):
        raise ValueError(f"need [N, d] inputs and targets with the same N > 0, got "
                         f"{x.shape} and {y.shape}")
    if config.width is None:
        raise ValueError("set the dictionary width (SAEConfig(width=...))")
    m = config.width
    k = None
    if config.kind is SAEKind.TOPK:
        if config.k is None:
            raise ValueError("a TopK dictionary needs k (SAEConfig(k=...))")
        k = min(config.k, m)
    init_key, train_key = jax.random.split(jax.random.PRNGKey(seed))
    v = jax.random.normal(init_key, (m, y.shape[1]), jnp.float32)
    v = _unit_rows(v)
    if transcoder:  # the encoder reads another space: a random start of its own
        w_enc = jax.random.normal(jax.random.fold_in(init_key, 1), (x.shape[1], m))
        w_enc = w_enc / jnp.sqrt(x.shape[1])
    else:
        w_enc = v.T
    p0 = {"W_enc": jnp.asarray(w_enc, jnp.float32), "b_enc": jnp.zeros(m, jnp.float32),
          "V": v, "b_dec": jnp.asarray(y.mean(0)), "b_pre": jnp.asarray(x.mean(0))}
    p, hist = _train(p0, jnp.asarray(x), jnp.asarray(y), train_key, kind=config.kind, k=k,
                     l1=float(config.l1), tied=not transcoder, steps=int(config.steps),
                     batch=int(min(config.batch, len(x))), lr=float(config.lr))
    p = {name: np.asarray(a) for name, a in p.items()}
    hist = np.asarray(hist)
    return Dictionary(
        kind=config.kind, k=k, W_enc=p["W_enc"], b_enc=p["b_enc"],
        W_dec=np.asarray(_unit_rows(jnp.asarray(p["V"]))), b_dec=p["b_dec"],
        b_pre=p["b_dec"] if not transcoder else p["b_pre"], transcoder=transcoder,
        losses=tuple(float(h) for h in hist[::100]))


# ---------------------------------------------------------------------------------------
# Scores against the true directions


@dataclass(frozen=True)
class DictionaryScores:
    """A dictionary scored against the true (variable, value) directions at one site."""

    mcc: float  # mean |cos| over the Hungarian matching (per true direction)
    mean_max_cos: float  # per true direction, the best |cos| of any atom, averaged
    f1: float  # mean over true features of the matched atom's activity F1
    per_feature: tuple[tuple[str, float, float], ...]  # (label, matched |cos|, F1)
    dead: int  # atoms never active on the data
    width: int
    nmse: float  # reconstruction (or prediction) error / target variance
    l0: float  # mean number of active atoms per position
    n_true: int

    @property
    def dead_fraction(self) -> float:
        return self.dead / self.width if self.width else float("nan")


def score(atoms: np.ndarray, codes: np.ndarray, true: np.ndarray, labels: Sequence[str],
          active: np.ndarray, *, nmse: float = float("nan")) -> DictionaryScores:
    """Score atoms (columns of ``[d, m]``) whose codes on the data are ``codes`` ``[N, m]``
    against the true directions ``true`` ``[d, n]`` (labelled ``labels``) whose features are
    on where ``active`` ``[N, n]`` (bool) says. An atom is active where its code is > 0."""
    cos = abs_cosines(atoms, true)
    matching = match(cos)
    on = np.asarray(codes) > 0
    active = np.asarray(active, bool)
    per = []
    for j, label in enumerate(labels):
        a = matching.of(j)
        c = float(cos[j, a]) if a is not None else 0.0
        score_ = f1(on[:, a], active[:, j]) if a is not None else 0.0
        per.append((str(label), c, score_))
    return DictionaryScores(
        mcc=mcc(cos), mean_max_cos=mean_max_cos(cos),
        f1=float(np.mean([p[2] for p in per])) if per else float("nan"),
        per_feature=tuple(per), dead=int((~on.any(axis=0)).sum()), width=int(on.shape[1]),
        nmse=float(nmse), l0=float(on.sum(axis=1).mean()) if len(on) else 0.0,
        n_true=int(true.shape[1]))


def nmse(y: np.ndarray, y_hat: np.ndarray) -> float:
    """``||y - y_hat||^2 / ||y - mean(y)||^2`` over the data."""
    y, y_hat = np.asarray(y, np.float64), np.asarray(y_hat, np.float64)
    var = float(np.sum((y - y.mean(0)) ** 2))
    return float(np.sum((y - y_hat) ** 2) / var) if var > 0 else float("nan")


def score_dictionary(d: Dictionary, x: np.ndarray, true: np.ndarray, labels: Sequence[str],
                     active: np.ndarray, y: np.ndarray | None = None) -> DictionaryScores:
    """Score a trained dictionary on data ``x`` (and targets ``y`` for a transcoder)."""
    codes = d.encode(x)
    target = x if y is None else y
    return score(d.atoms, codes, true, labels, active, nmse=nmse(target, d.decode(codes)))


def random_dictionary(d_out: int, width: int, *, seed: int = 0) -> np.ndarray:
    """``[d_out, width]`` random unit directions: the chance baseline for atoms."""
    g = np.random.default_rng(seed).standard_normal((d_out, width))
    return g / np.linalg.norm(g, axis=0, keepdims=True)


# ---------------------------------------------------------------------------------------
# The feature-method front door


def site_features(truth, site: str, variables: Sequence[str] | None = None, *,
                  active_only: bool = True
                  ) -> tuple[np.ndarray, list[tuple[str, str]], np.ndarray]:
    """The true directions at ``site``: every (variable, value) basis column of the
    variables present there, ``[d, n]``; their ``(variable, label)`` names; and where each
    is on, ``[N, n]`` bool (categorical: the variable takes that value; numerical: it is
    non-zero). With ``active_only`` (the default) features never on in the data are left
    out (a value the sampler never produces, e.g. ``hist = 0``): no dictionary trained on
    the data can find them (reconstruction pulls atoms into the data's span)."""
    cols, names, on = [], [], []
    for name, vt in truth.variables.items():
        if variables is not None and name not in variables:
            continue
        if not vt.at(site).present:
            continue
        for j, label in enumerate(vt.labels):
            cols.append(vt.basis[:, j])
            names.append((name, label))
            if vt.categorical:
                on.append(vt.valid & (vt.targets == j))
            else:
                on.append(vt.valid & (np.nan_to_num(vt.targets) != 0))
    d = truth.d_model
    if active_only:
        keep = [i for i, o in enumerate(on) if o.any()]
        cols, names, on = [cols[i] for i in keep], [names[i] for i in keep], [on[i] for i in keep]
    if not cols:
        return np.zeros((d, 0)), [], np.zeros((truth.n_positions, 0), bool)
    return np.stack(cols, 1), names, np.stack(on, 1)


def centred_features(truth, names: Sequence[tuple[str, str]], true: np.ndarray) -> np.ndarray:
    """The true directions with each categorical variable's mean value direction removed
    (``e_j - mean_i e_i``): what a dictionary with a decoder bias can represent a family
    of mutually exclusive values by, since their directions sum to a constant."""
    out = np.array(true, np.float64)
    for var in dict.fromkeys(v for v, _ in names):
        rows = [i for i, (v, _) in enumerate(names) if v == var]
        if truth.variables[var].categorical and len(rows) > 1:
            out[:, rows] -= out[:, rows].mean(axis=1, keepdims=True)
    return out


def _per_variable(names, sc: DictionaryScores, cos_row_max) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for (var, _), (_, c, f), mm in zip(names, sc.per_feature, cos_row_max):
        rec = out.setdefault(var, {"cos": [], "f1": [], "max": []})
        rec["cos"].append(c)
        rec["f1"].append(f)
        rec["max"].append(mm)
    return out


def random_codes(x: np.ndarray, atoms: np.ndarray) -> np.ndarray:
    """Codes of a random dictionary: ReLU of the centred data's projection on each atom."""
    return np.maximum((x - x.mean(0)) @ atoms, 0.0)


def run(model, truth, *, site: str | None = None, variable: str | None = None,
        seed: int = 0, config: SAEConfig = SAEConfig()):
    """An SAE per residual site (every site holding a variable, or ``site``), scored
    against the true (variable, value) directions there; one ``VariableScore`` per present
    variable (``mcc``: mean matched ``|cos|`` over its values, ``f1``, ``mean_max_cos``) with
    the site's dictionary numbers (``site_mcc``, ``dead``, ``nmse``, ``l0``) and a random
    dictionary's ``random_mcc`` and the residual axes' ``neuron_mcc`` (the "neurons" baseline:
    the site's standard basis as atoms, matched the same way; per site) beside them."""
    import time

    from .result import FeatureReport, Method, VariableScore
    from .truth import all_activations

    start = time.perf_counter()
    if variable is not None:
        truth.variable(variable)
    sites = [site] if site is not None else list(truth.sites)
    for s in sites:
        if s not in truth.sites:
            raise ValueError(f"no residual site {s!r}; the sites are {list(truth.sites)}")
    sites = [s for s in sites if site_features(truth, s)[0].shape[1]]
    acts = all_activations(model, truth, sites=sites)
    scores, site_mccs = [], []
    for s in sites:
        true, names, on = site_features(truth, s)
        n = true.shape[1]
        cfg = config
        if cfg.width is None:
            cfg = SAEConfig(**{**cfg.__dict__, "width": n})
        if cfg.k is None:
            cfg = SAEConfig(**{**cfg.__dict__, "k": max(1, int(round(on.sum(1).mean())))})
        x = acts[s]
        d = train(x, None, cfg, seed=seed)
        sc = score_dictionary(d, x, true, [f"{a}:{b}" for a, b in names], on)
        cos = abs_cosines(d.atoms, true)
        rnd_atoms = random_dictionary(x.shape[1], d.width, seed=seed + 1)
        rnd = score(rnd_atoms, random_codes(x, rnd_atoms), true, [b for _, b in names], on)
        neurons = mcc(abs_cosines(np.eye(x.shape[1]), true))  # the stream's own axes
        cen = abs_cosines(d.atoms, centred_features(truth, names, true))
        cen_match = match(cen)
        cen_of = {t: c for t, c in zip(cen_match.true, cen_match.cos)}
        site_mccs.append(sc.mcc)
        for var, rec in _per_variable(names, sc, cos.max(axis=1)).items():
            if variable is not None and var != variable:
                continue
            rows = [i for i, (v, _) in enumerate(names) if v == var]
            rec["centred"] = [cen_of.get(i, 0.0) for i in rows]
            st = truth.at(var, s)
            scores.append(VariableScore(var, s, Method.SAE, st.present, st.used, {
                "mcc": float(np.mean(rec["cos"])), "f1": float(np.mean(rec["f1"])),
                "mean_max_cos": float(np.mean(rec["max"])), "site_mcc": sc.mcc,
                "site_f1": sc.f1, "dead": sc.dead, "width": sc.width, "nmse": sc.nmse,
                "l0": sc.l0, "random_mcc": rnd.mcc, "neuron_mcc": neurons,
                "mcc_centred": float(np.mean(rec["centred"]))}))
    summary = {"sites": len(sites),
               "mean_site_mcc": float(np.mean(site_mccs)) if site_mccs else float("nan")}
    return FeatureReport(Method.SAE, truth.name, truth.rung, truth.is_exact, tuple(scores),
                         seed=seed, samples=len(truth.inputs),
                         model_accuracy=truth.model_accuracy, summary=summary,
                         notes=(f"{config.kind.value} SAE, width = true directions at the "
                                "site (those on somewhere in the data), k = their mean "
                                "number active",),
                         seconds=time.perf_counter() - start)


def mlp_features(truth, model, layer: int):
    """The true directions an MLP writes: the basis columns of the variables it computes
    (``L{layer}.MLP`` among their writers), with where each is on."""
    names = [n for n, vt in truth.variables.items() if f"L{layer}.MLP" in vt.computed_by]
    site = f"blocks.{layer}.hook_resid_post"
    return site_features(truth, site, names) if names else (
        np.zeros((truth.d_model, 0)), [], np.zeros((truth.n_positions, 0), bool))


def run_transcoders(model, truth, *, seed: int = 0, config: SAEConfig = SAEConfig()
                    ) -> list[tuple[int, DictionaryScores]]:
    """A transcoder per MLP (``blocks.l.hook_resid_mid`` -> ``blocks.l.hook_mlp_out``),
    scored against the directions of the variables that MLP computes."""
    from .truth import activations

    out = []
    for layer in range(model.config.num_layers):
        if f"layers.{layer}.mlp.in" not in model.params:
            continue
        true, names, on = mlp_features(truth, model, layer)
        if not true.shape[1]:
            continue
        x = activations(model, truth, f"blocks.{layer}.hook_resid_mid")
        y = activations(model, truth, f"blocks.{layer}.hook_mlp_out")
        cfg = SAEConfig(**{**config.__dict__, "width": config.width or true.shape[1],
                           "k": config.k or max(1, int(round(on.sum(1).mean())))})
        d = train(x, y, cfg, seed=seed)
        out.append((layer, score_dictionary(d, x, true, [f"{a}:{b}" for a, b in names], on,
                                            y=y)))
    return out


__all__ = ["SAEKind", "SAEConfig", "Dictionary", "train", "DictionaryScores", "score",
           "score_dictionary", "nmse", "random_dictionary", "site_features",
           "centred_features", "random_codes",
           "run", "mlp_features", "run_transcoders"]
