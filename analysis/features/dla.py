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
of the total); ``dla_target`` the mean contribution to the true value's column (the value
itself, for a number). Ranking components by ``dla`` is scored against the components the
planted circuit says write the output (a non-constant structural edge to ``output``):
``auc`` (ties count one half) and ``precision_at_k`` (``k`` = the number of writers).
``completeness`` checks the decomposition: the largest difference between the summed
contributions and the final read-out.
"""

from __future__ import annotations

import time

import numpy as np

from .result import ComponentScore, FeatureReport, Method, VariableScore
from .truth import FeatureTruth, residual_sites


def output_writers(model) -> list[str]:
    """Components with a non-constant structural edge into ``output``."""
    return list(dict.fromkeys(e.sender for e in model.planted.edges
                              if e.receiver == "output" and not e.constant))


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
    from rasplab.compiler.readout import Readout, ReadoutKind

    r = model.readout
    codes, _ = Readout(r.encoding, r.values, ReadoutKind.NEAREST).codes(readout)
    return np.asarray(codes)


def _true_codes(model, truth: FeatureTruth) -> tuple[np.ndarray, np.ndarray]:
    vt = truth.variables[truth.output]
    if vt.categorical:
        none = len(vt.values)
        return np.where(vt.targets == none, -1, vt.targets), vt.valid
    grid = np.asarray([float(v) for v in model.readout.values])
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
    dla = np.array([np.sqrt((contrib[c] ** 2).sum(1)[valid].mean()) if valid.any() else 0.0
                    for c in names])
    total = dla.sum()
    components = []
    for c, v in zip(names, dla, strict=True):
        x = contrib[c][valid]
        if vt.categorical:
            idx = want[valid]
            hit = idx >= 0
            target = float(x[hit, idx[hit]].mean()) if hit.any() else float("nan")
        else:
            target = float(x[:, 0].mean()) if len(x) else float("nan")
        components.append(ComponentScore(c, c in writers, {
            "dla": float(v), "dla_share": float(v / total) if total > 0 else float("nan"),
            "dla_target": target}))
    labels = np.array([c in writers for c in names])
    k = int(labels.sum())
    top = np.argsort(-dla, kind="stable")[:k]
    summary = {
        "auc": _auc(dla, labels), "writers": k, "components": len(names),
        "precision_at_k": float(labels[top].mean()) if k else float("nan"),
        "completeness": completeness,
        "final_lens_accuracy": scores[-1].scores["lens_accuracy"] if scores else float("nan"),
    }
    return FeatureReport(
        method=Method.DLA, program=truth.name, rung=truth.rung, is_exact=truth.is_exact,
        variables=tuple(scores), seed=seed, samples=len(truth.inputs),
        model_accuracy=truth.model_accuracy, summary=summary, components=tuple(components),
        seconds=time.perf_counter() - start)


__all__ = ["output_writers", "component_outputs", "run"]
