"""Pictures of a feature report (matplotlib, Agg): a variable x site heat map of the
method's main score, with cells where the variable is present outlined; for DLA a bar
chart of the components' direct logit attribution beside the logit lens."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .result import FeatureReport, Method


def _short(site: str) -> str:
    parts = site.split(".")
    if len(parts) == 3:
        return f"{parts[1]}.{parts[2].replace('hook_resid_', '')}"
    return site


def heatmap(ax, report: FeatureReport, key: str | None = None) -> None:
    """Draw the variable x site matrix of ``key`` (default: the main score) on ``ax``."""
    key = key or report.main_score
    names, sites, m = report.matrix(key)
    lo = min(0.0, float(np.nanmin(m))) if np.isfinite(m).any() else 0.0
    im = ax.imshow(m, vmin=lo, vmax=1.0, cmap="viridis", aspect="auto")
    for v in report.variables:
        i, j = names.index(v.name), sites.index(v.site)
        if v.present:
            ax.add_patch(_rect(j, i, "white" if v.used else "orange"))
        x = v.score(key)
        if np.isfinite(x) and len(sites) * len(names) <= 240:
            ax.text(j, i, f"{x:.2f}", ha="center", va="center", fontsize=6,
                    color="black" if x > 0.6 else "white")
    ax.set_xticks(range(len(sites)), [_short(s) for s in sites], rotation=60, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.figure.colorbar(im, ax=ax, label=key)
    ax.set_title(f"{report.program} ({report.rung}): {report.method.value} {key}\n"
                 "outlined: present (white: used downstream, orange: stale)", fontsize=8)


def _rect(x, y, color):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor=color, linewidth=1.5)


def plot_report(report: FeatureReport, path: str | Path) -> Path:
    """Write the report's picture to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if report.method is Method.DLA and report.components:
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
        names = [c.name for c in report.components]
        vals = [c.scores.get("dla", np.nan) for c in report.components]
        colors = ["tab:red" if c.writes_output else "tab:gray" for c in report.components]
        a.bar(range(len(names)), vals, color=colors)
        a.set_xticks(range(len(names)), names, rotation=60, fontsize=7)
        a.set_ylabel("DLA: rms |direct read-out contribution|")
        a.set_title(f"{report.program} ({report.rung}): DLA, red = planted output writers; "
                    f"AUC {report.summary.get('auc', np.nan):.2f}", fontsize=8)
        sites = [v.site for v in report.variables]
        b.plot(range(len(sites)), [v.score("lens_accuracy") for v in report.variables], "o-")
        b.set_xticks(range(len(sites)), [_short(s) for s in sites], rotation=60, fontsize=7)
        b.set_ylim(-0.05, 1.05)
        b.set_ylabel("logit-lens accuracy")
        b.set_title("logit lens of the output per residual site", fontsize=8)
    else:
        names = {v.name for v in report.variables}
        sites = {v.site for v in report.variables}
        fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(sites) + 3),
                                        max(2.5, 0.35 * len(names) + 1.6)))
        heatmap(ax, report)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = ["heatmap", "plot_report"]
