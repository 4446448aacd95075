"""Linear probes per variable per residual site, with a control task.

For each (variable, site) a probe is fitted on part of the inputs and scored on the rest
(split by input, so no sequence is in both):

* categorical variables: softmax regression on standardised activations (optax Adam, full
  batch, a fixed number of steps), every cell of a model in one ``vmap``-ed, jitted fit;
* numerical variables: least squares (closed form); ``accuracy`` is the held-out fraction
  whose prediction rounds to the true value on the variable's value grid, ``r2`` the
  coefficient of determination.

The **control task** (after Hewitt & Liang 2019) is the same probe trained and tested on
the variable's labels permuted across positions: the same shape and marginals, no relation
to the activations. ``selectivity = accuracy - control_accuracy``; ``chance`` is the
held-out accuracy of the best input-blind guess (the majority class; for a number, the
better of the majority grid value and the training mean rounded to the grid). Probing
scores are *decodability*: a variable can decode where it is present but no later
component reads it (``stale``), or where it is not present at all but is a linear function
of what is (a ``Map`` of the tokens decodes from the token embedding). Each score carries
the truth's ``present`` and ``used`` so these cases stay apart; the summary counts them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache

import numpy as np

from .result import FeatureReport, Method, VariableScore
from .truth import FeatureTruth, all_activations

DECODABLE = 0.99  # accuracy from which a cell counts as decodable
WARM_SCALE = 8.0  # the least-squares warm start, times this, starts the softmax fit


@dataclass(frozen=True)
class ProbeConfig:
    """Probe fitting settings."""

    steps: int = 200
    learning_rate: float = 0.1
    l2: float = 1e-4
    test_fraction: float = 0.3
    chunk: int = 32  # cells per jitted fit (fixed shape: one compile per model)


# ---------------------------------------------------------------------------------------
# Fitting


@cache
def _softmax_fit(steps: int, learning_rate: float, l2: float):
    import jax
    import jax.numpy as jnp
    import optax

    opt = optax.adam(learning_rate)

    def one(x, y, w_train, classes):
        n_train = jnp.maximum(w_train.sum(), 1.0)
        mu = (x * w_train[:, None]).sum(0) / n_train
        sd = jnp.sqrt((((x - mu) ** 2) * w_train[:, None]).sum(0) / n_train)
        xs = (x - mu) / jnp.where(sd > 1e-6, sd, 1.0)
        d, c = x.shape[1], classes.shape[0]
        # warm start: least squares onto the one-hot labels (exact where the classes are
        # linearly separable by a linear read-out), sharpened; Adam refines the softmax
        onehot = jax.nn.one_hot(y, c) * classes
        xw = xs * w_train[:, None]
        gram = xw.T @ xs + 1e-3 * jnp.eye(d)
        w0 = jnp.linalg.solve(gram, xw.T @ (onehot - onehot.mean(0)))
        params = (WARM_SCALE * w0, jnp.zeros(c))

        def logits(p):
            return jnp.where(classes, xs @ p[0] + p[1], -1e9)

        def loss(p):
            lp = jax.nn.log_softmax(logits(p))
            ce = -jnp.take_along_axis(lp, y[:, None], axis=1)[:, 0]
            return (ce * w_train).sum() / n_train + l2 * (p[0] ** 2).sum()

        def step(carry, _):
            p, s = carry
            g = jax.grad(loss)(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
        return jnp.argmax(logits(p), axis=1)

    return jax.jit(jax.vmap(one))


def fit_softmax(x: np.ndarray, y: np.ndarray, train: np.ndarray, n_classes: int,
                config: ProbeConfig = ProbeConfig()) -> np.ndarray:
    """Predicted classes ``[P, N]`` of ``P`` softmax probes: ``x`` ``[P, N, d]``, labels
    ``y`` ``[P, N]`` (``0..n_classes-1``), ``train`` ``[P, N]`` bool (rows fitted on)."""
    x, y = np.asarray(x, np.float32), np.asarray(y, np.int32)
    p = x.shape[0]
    classes = np.zeros((p, n_classes), bool)
    for i in range(p):
        classes[i, np.unique(y[i][train[i]])] = True
    classes[~classes.any(1), 0] = True
    fn = _softmax_fit(config.steps, config.learning_rate, config.l2)
    out = []
    for lo in range(0, p, config.chunk):
        hi = min(lo + config.chunk, p)
        pad = config.chunk - (hi - lo)
        sl = [np.concatenate([a[lo:hi], np.repeat(a[lo:lo + 1], pad, 0)]) if pad else a[lo:hi]
              for a in (x, y, train.astype(np.float32), classes)]
        out.append(np.asarray(fn(*sl))[: hi - lo])
    return np.concatenate(out) if out else np.zeros((0, x.shape[1]), np.int64)


def fit_linear(x: np.ndarray, y: np.ndarray, train: np.ndarray, l2: float = 1e-6
               ) -> np.ndarray:
    """Least-squares predictions ``[N]`` of ``y`` from ``x`` ``[N, d]`` (with a bias),
    fitted on the ``train`` rows (a tiny ridge keeps it defined for constant features)."""
    a = np.concatenate([np.asarray(x, np.float64), np.ones((len(x), 1))], axis=1)
    at = a[train]
    w = np.linalg.solve(at.T @ at + l2 * np.eye(a.shape[1]), at.T @ y[train])
    return a @ w


def _grid_index(values: tuple, x: np.ndarray) -> np.ndarray:
    grid = np.asarray([float(v) for v in values], np.float64)
    if grid.size == 0:
        return np.zeros(len(x), np.int64)
    return np.abs(np.asarray(x, np.float64)[:, None] - grid[None]).argmin(1)


def _majority(labels: np.ndarray) -> float:
    if labels.size == 0:
        return float("nan")
    _, counts = np.unique(labels, return_counts=True)
    return float(counts.max() / labels.size)


# ---------------------------------------------------------------------------------------
# Running over a truth


def _split(truth: FeatureTruth, test_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """``[N]`` bool: the held-out positions (whole inputs held out)."""
    b = truth.ids.shape[0]
    n_test = min(max(1, round(test_fraction * b)), b - 1) if b > 1 else 0
    held = np.zeros(b, bool)
    held[rng.permutation(b)[:n_test]] = True
    test = held[truth.positions[:, 0]]
    if b == 1:  # one input: hold out alternate positions
        test = np.arange(truth.n_positions) % 3 == 0
    return test


def _cells(truth: FeatureTruth, site: str | None, variable: str | None) -> list[tuple]:
    if site is not None and site not in truth.sites:
        raise ValueError(f"no residual site {site!r}; the sites are {list(truth.sites)}")
    if variable is not None and variable not in truth.variables:
        raise ValueError(f"no variable {variable!r}; the variables are "
                         f"{list(truth.variables)}")
    return [(v, s) for v, s in truth.cells()
            if (site is None or s == site) and (variable is None or v == variable)]


def probe_scores(truth: FeatureTruth, acts: dict[str, np.ndarray], cells: list[tuple], *,
                 seed: int = 0, config: ProbeConfig = ProbeConfig()) -> list[VariableScore]:
    """Fit and score a probe and its control for every (variable, site) in ``cells`` on
    the activations ``acts`` (site -> ``[N, d]``, aligned with ``truth``)."""
    rng = np.random.default_rng(seed)
    test = _split(truth, config.test_fraction, rng)
    perms = {v: rng.permutation(truth.n_positions) for v in truth.variables}
    results: dict[tuple, dict] = {}
    cat = [(v, s) for v, s in cells if truth.variables[v].categorical]
    if cat:
        n_classes = max(truth.variables[v].n_classes for v, _ in cat)
        xs, ys, trains = [], [], []
        for v, s in cat:
            vt = truth.variables[v]
            y = np.where(vt.valid, vt.targets, 0)
            control = y[perms[v]]
            control_valid = vt.valid[perms[v]]
            for labels, valid in ((y, vt.valid), (control, vt.valid & control_valid)):
                xs.append(acts[s])
                ys.append(labels)
                trains.append(valid & ~test)
        pred = fit_softmax(np.stack(xs), np.stack(ys), np.stack(trains), n_classes, config)
        for i, (v, s) in enumerate(cat):
            vt = truth.variables[v]
            y = ys[2 * i]
            t_true = vt.valid & test
            t_ctrl = vt.valid & vt.valid[perms[v]] & test
            results[(v, s)] = {
                "accuracy": float((pred[2 * i][t_true] == y[t_true]).mean()),
                "control_accuracy": float((pred[2 * i + 1][t_ctrl]
                                           == ys[2 * i + 1][t_ctrl]).mean()),
                "chance": _majority(y[t_true]),
            }
    for v, s in cells:
        vt = truth.variables[v]
        if vt.categorical:
            continue
        y = np.where(vt.valid, vt.targets, 0.0)
        scores = {}
        for name, labels, valid in (("", y, vt.valid),
                                    ("control_", y[perms[v]], vt.valid & vt.valid[perms[v]])):
            fit = fit_linear(acts[s], labels, valid & ~test)
            t = valid & test
            ok = _grid_index(vt.values, fit[t]) == _grid_index(vt.values, labels[t])
            scores[name + "accuracy"] = float(ok.mean()) if t.any() else float("nan")
            resid = ((fit[t] - labels[t]) ** 2).sum()
            total = ((labels[t] - labels[t].mean()) ** 2).sum()
            scores[name + "r2"] = float(1 - resid / total) if total > 1e-12 else float("nan")
        t = vt.valid & test
        blind = np.full(int(t.sum()), y[vt.valid & ~test].mean() if (vt.valid & ~test).any()
                        else 0.0)  # the input-blind regressor: the training mean
        truth_idx = _grid_index(vt.values, y[t])
        scores["chance"] = (max(float((_grid_index(vt.values, blind) == truth_idx).mean()),
                                _majority(truth_idx))
                            if t.any() else float("nan"))
        results[(v, s)] = scores
    out = []
    for v, s in cells:
        sc = results[(v, s)]
        sc["selectivity"] = sc["accuracy"] - sc["control_accuracy"]
        st = truth.at(v, s)
        notes = []
        if sc["accuracy"] >= DECODABLE and st.stale:
            notes.append("decodable but stale: no component after this site reads it")
        if sc["accuracy"] >= DECODABLE and not st.present:
            notes.append("decodable but not present: a linear function of what is")
        out.append(VariableScore(v, s, Method.PROBE, st.present, st.used, sc, tuple(notes)))
    return out


def summarise(scores: list[VariableScore]) -> dict[str, float]:
    """Counts and means over a probe report's cells."""
    present = [s for s in scores if s.present]
    acc = lambda xs: float(np.mean([s.scores["accuracy"] for s in xs])) if xs else float("nan")
    return {
        "cells": len(scores),
        "present_cells": len(present),
        "present_decoded": sum(s.scores["accuracy"] >= DECODABLE for s in present),
        "present_mean_accuracy": acc(present),
        "present_mean_selectivity": (float(np.mean([s.scores["selectivity"]
                                                    for s in present]))
                                     if present else float("nan")),
        "stale_cells": sum(s.stale for s in scores),
        "stale_decodable": sum(s.stale and s.scores["accuracy"] >= DECODABLE for s in scores),
        "absent_cells": len(scores) - len(present),
        "absent_decodable": sum(not s.present and s.scores["accuracy"] >= DECODABLE
                                for s in scores),
        "mean_control_accuracy": (float(np.mean([s.scores["control_accuracy"]
                                                 for s in scores])) if scores
                                  else float("nan")),
    }


def run(model, truth: FeatureTruth, *, site: str | None = None, variable: str | None = None,
        seed: int = 0, config: ProbeConfig = ProbeConfig()) -> FeatureReport:
    """Probe every (variable, site) of ``truth`` (or only ``site`` / ``variable``)."""
    start = time.perf_counter()
    cells = _cells(truth, site, variable)
    acts = all_activations(model, truth, sites=sorted({s for _, s in cells},
                                                      key=truth.sites.index))
    scores = probe_scores(truth, acts, cells, seed=seed, config=config)
    return FeatureReport(
        method=Method.PROBE, program=truth.name, rung=truth.rung, is_exact=truth.is_exact,
        variables=tuple(scores), seed=seed, samples=len(truth.inputs),
        model_accuracy=truth.model_accuracy, summary=summarise(scores),
        seconds=time.perf_counter() - start,
        notes=() if truth.is_exact else ("approximate model: its activations hold the "
                                         "variables only approximately",))


__all__ = ["ProbeConfig", "fit_softmax", "fit_linear", "probe_scores", "summarise", "run",
           "DECODABLE"]
