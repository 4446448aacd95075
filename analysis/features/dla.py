"""Logit lens and direct logit attribution (DLA), scored against the planted circuit.

**Logit lens**: every residual site is read out through the model's own unembedding and
readout (nearest value: the argmax column, ``None`` below 0.5 when the output can be None;
the nearest grid value for a number), as if the model ended there. ``lens_accuracy`` is
the fraction of real positions whose lens read-out equals the interpreter's output, one
``VariableScore`` per site for the output variable (present from its write site on).

**DLA**: the residual stream is the sum of the components' outputs (token and position
embeddings, each head's ``hook_result``, each ``hook_mlp_out``), so the read-out is the sum
of their direct contributions ``out_c @ unembed``. A component's ``dla`` is the root mean
square over real positions of the norm of its contribution (``dla_share``: its fraction
of the total). Ranking components by ``dla`` is scored against the components the
planted circuit says write the output (a non-constant structural edge to ``output``):
``auc`` (ties count one half) and ``precision_at_k`` (``k`` = the number of writers).
Two variants discount what does not track the input: ``dla_centered`` (the rms norm of the
contribution minus its mean over positions; ``auc_centered``) and ``dla_target`` (the
true value's column minus the mean column, averaged; for a number the covariance of the
contribution with the true value over its standard deviation; ``auc_target``).
``completeness`` checks the decomposition: the largest difference between the summed
contributions and the final read-out.
"""

from __future__ import annotations

import time

import numpy as np

from .result import ComponentScore, FeatureReport, Method, VariableScore
from .truth import FeatureTruth, residual_sites


def output_writers(model) -> list[str]:
    """Components whose structural edge into ``output`` carries a variable (the planted
    writers of the output); where no edge records what it carries, every component with a
    non-constant edge into ``output``. A retrained model's graph is complete (every
    component reaches ``output``), but only the component aligned with the output
    variable's last step carries it."""
    edges = [e for e in model.planted.edges if e.receiver == "output" and not e.constant]
    carrying = [e for e in edges if e.carries]
    return list(dict.fromkeys(e.sender for e in carrying or edges))


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    s, y = np.asarray(scores, np.float64), np.asarray(labels, bool)
    pos, neg = s[y], s[~y]
    if not len(pos) or not len(neg):
        return float("nan")
    wins = (pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()
    return float(wins / (len(pos) * len(neg)))


def component_outputs(model, truth: FeatureTruth, cache: dict | None = None
                      ) -> dict[str, np.ndarray]:
    """Each component's output into the residual stream, ``[N, d_model]`` at the truth's
    positions, in forward order (``embed``, ``pos``, ``L{l}.H{h}``, ``L{l}.MLP``)."""
    from rasplab.analysis.sites import SiteConfig, capture

    if cache is None:
        cache = capture(model.params, truth.ids, SiteConfig.of(model))
    r, t = truth.positions[:, 0], truth.positions[:, 1]
    out = {"embed": np.asarray(cache["hook_embed"])[r, t],
           "pos": np.asarray(cache["hook_pos_embed"])[r, t]}
    cfg = model.network.config
    for layer in range(model.config.num_layers):
        b = f"blocks.{layer}."
        if cfg.has_attn(layer):
            res = np.asarray(cache[b + "attn.hook_result"])[r, t]  # [N, H, d]
            for h in range(res.shape[1]):
                out[f"L{layer}.H{h}"] = res[:, h]
        if cfg.has_mlp(layer):
            out[f"L{layer}.MLP"] = np.asarray(cache[b + "hook_mlp_out"])[r, t]
    return out


def _lens_codes(model, readout: np.ndarray) -> np.ndarray:
    """The nearest output value's index (-1 for None): the argmax column, or None where
    the largest is under 0.5 and the output can be None; for a number the nearest grid
    value (the rule a compressed model's held-out accuracy uses)."""
    out = model.output_variable
    if out.encoding == "numerical":
        grid = np.asarray([float(v) for v in out.values] or [0.0])
        return np.abs(readout[:, :1] - grid[None]).argmin(1)
    if readout.shape[1] == 0:
        return np.full(len(readout), -1)
    best = readout.argmax(1)
    if out.can_be_none:
        best = np.where(readout.max(1) < 0.5, -1, best)
    return best


def _true_codes(model, truth: FeatureTruth) -> tuple[np.ndarray, np.ndarray]:
    vt = truth.variables[truth.output]
    if vt.categorical:
        none = len(vt.values)
        return np.where(vt.targets == none, -1, vt.targets), vt.valid
    grid = np.asarray([float(v) for v in model.output_variable.values] or [0.0])
    codes = np.abs(np.nan_to_num(vt.targets)[:, None] - grid[None]).argmin(1)
    return codes, vt.valid


def run(model, truth: FeatureTruth, *, site: str | None = None, variable: str | None = None,
        seed: int = 0) -> FeatureReport:
    """Logit lens at every residual site (or ``site``) and DLA of every component."""
    from rasplab.analysis.sites import SiteConfig, capture

    start = time.perf_counter()
    if variable is not None and variable != truth.output:
        raise ValueError(f"dla reads the output variable {truth.output!r}, not "
                         f"{variable!r}; leave out --variable or pass {truth.output}")
    sites = residual_sites(model)
    if site is not None and site not in sites:
        raise ValueError(f"no residual site {site!r}; the sites are {sites}")
    unembed = np.asarray(model.params["unembed"], np.float64)
    cache = capture(model.params, truth.ids, SiteConfig.of(model))
    r, t = truth.positions[:, 0], truth.positions[:, 1]
    want, valid = _true_codes(model, truth)
    vt = truth.variables[truth.output]
    scores = []
    for s in ([site] if site else sites):
        lens = np.asarray(cache[s], np.float64)[r, t] @ unembed
        got = _lens_codes(model, lens)
        st = vt.at(s)
        acc = float((got[valid] == want[valid]).mean()) if valid.any() else float("nan")
        scores.append(VariableScore(truth.output, s, Method.DLA, st.present, st.used,
                                    {"lens_accuracy": acc}))
    outs = component_outputs(model, truth, cache)
    contrib = {c: o.astype(np.float64) @ unembed for c, o in outs.items()}  # [N, n_out]
    final = np.asarray(cache[sites[-1]] if sites else cache["hook_embed"],
                       np.float64)[r, t] @ unembed
    completeness = float(np.abs(sum(contrib.values()) - final).max()) if contrib else 0.0
    writers = set(output_writers(model))
    names = list(contrib)
    dla, centered, target = [], [], []
    for c in names:
        x = contrib[c][valid]
        if not len(x):
            dla.append(0.0), centered.append(0.0), target.append(float("nan"))
            continue
        dla.append(float(np.sqrt((x ** 2).sum(1).mean())))
        centered.append(float(np.sqrt(((x - x.mean(0)) ** 2).sum(1).mean())))
        if vt.categorical:  # the true value's column against the mean column
            idx = want[valid]
            hit = idx >= 0
            diff = x[hit, idx[hit]] - x[hit].mean(1)
            target.append(float(diff.mean()) if hit.any() else float("nan"))
        else:  # how far the contribution moves with the true number
            y = np.nan_to_num(vt.targets[valid])
            sd = y.std()
            target.append(float(((x[:, 0] - x[:, 0].mean()) * (y - y.mean())).mean() / sd)
                          if sd > 0 else 0.0)
    dla, centered, target = map(np.asarray, (dla, centered, target))
    total = dla.sum()
    components = [ComponentScore(c, c in writers, {
        "dla": float(v), "dla_share": float(v / total) if total > 0 else float("nan"),
        "dla_centered": float(cv), "dla_target": float(tv)})
        for c, v, cv, tv in zip(names, dla, centered, target, strict=True)]
    labels = np.array([c in writers for c in names])
    k = int(labels.sum())
    top = np.argsort(-dla, kind="stable")[:k]
    summary = {
        "auc": _auc(dla, labels), "writers": k, "components": len(names),
        "precision_at_k": float(labels[top].mean()) if k else float("nan"),
        "auc_centered": _auc(centered, labels),
        "auc_target": _auc(np.nan_to_num(target, nan=-np.inf), labels),
        "completeness": completeness,
        "final_lens_accuracy": scores[-1].scores["lens_accuracy"] if scores else float("nan"),
    }
    return FeatureReport(
        method=Method.DLA, program=truth.name, rung=truth.rung, is_exact=truth.is_exact,
        variables=tuple(scores), seed=seed, samples=len(truth.inputs),
        model_accuracy=truth.model_accuracy, summary=summary, components=tuple(components),
        seconds=time.perf_counter() - start)


__all__ = ["output_writers", "component_outputs", "run"]
