"""The scoreboard across the realism ladder: how each method's scores and rank move by rung.

Works on scored runs that carry a rung (``analysis.scoreboard.ScoreRecord``: ``cell.rung``,
``method``, ``ablation``, ``scores``), each scored against the truth found and verified on
*its own* model (the compressed or retrained model's effective circuit, not the compiled
one's). :func:`ladder_markdown` gives the tables (mean edge / node AUC per method and rung
with the rank, the same per ablation, the full summary per rung) and the ranking sentences;
:func:`plot_ladder` draws mean edge AUC per method against the rung.

InterpBench (Gupta et al. 2024) ran circuit discovery on its SIIT-trained models and
found ACDC best, EAP with integrated gradients competitive, and subnetwork probing and
plain EAP behind; :func:`interpbench_comparison` states where this ladder agrees.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: The rungs in ladder order (others follow in the order they appear).
LADDER = ("compiled", "rotated", "compressed", "retrained")
#: InterpBench's finding, best first; "patching" (exhaustive) is not one of its methods.
INTERPBENCH_ORDER = ("acdc", "eap_ig", "sp", "eap")
#: The ladder ranks by edge AUC over *every* edge of the complete graph: on a dense model
#: (compressed, retrained) any pair can carry signal and its truth may use pairs the
#: compiled layout has no weights for, so the compiled "structural" edge set is no
#: longer the right denominator; the same key is used on every rung.
KEY = "edge_auc_complete"


def _rung(r) -> str:
    return r.cell.rung if hasattr(r, "cell") else getattr(r, "rung", "compiled")


def _scored(r) -> bool:
    return getattr(r, "scores", None) is not None and getattr(r, "error", None) is None


def rungs_of(runs: Sequence) -> list[str]:
    seen = list(dict.fromkeys(_rung(r) for r in runs))
    return [r for r in LADDER if r in seen] + [r for r in seen if r not in LADDER]


def _value(r, key: str):
    if key == "faithfulness":
        f = r.scores.get("faithfulness")
        return f.get("fraction_unchanged") if f else None
    return r.scores.get(key)


def means(runs: Sequence, key: str = KEY, *, ablation: str | None = None
          ) -> dict[tuple[str, str], float]:
    """``(method, rung) -> mean of key`` over programs (and ablations unless one is
    given), defined values only (NaN where none is)."""
    groups: dict[tuple[str, str], list[float]] = {}
    for r in runs:
        if not _scored(r) or (ablation is not None and r.ablation != ablation):
            continue
        v = _value(r, key)
        cell = groups.setdefault((r.method, _rung(r)), [])
        if v is not None and np.isfinite(v):
            cell.append(float(v))
    return {k: float(np.mean(v)) if v else float("nan") for k, v in groups.items()}


def ranks(values: dict[tuple[str, str], float], rung: str) -> dict[str, int]:
    """Competition ranks (1 = best; equal means share a rank) of the methods on ``rung``;
    a method without a defined value is left out."""
    row = {m: v for (m, r), v in values.items() if r == rung and np.isfinite(v)}
    return {m: 1 + sum(1 for w in row.values() if w > v + 1e-9) for m, v in row.items()}


def _fmt(v: float) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.3f}"


def rank_table(runs: Sequence, key: str = KEY, *, ablation: str | None = None) -> str:
    """Rows: methods; columns: rungs; cells: mean ``key`` (rank on that rung)."""
    rungs = rungs_of(runs)
    values = means(runs, key, ablation=ablation)
    methods = list(dict.fromkeys(m for m, _ in values))
    rk = {r: ranks(values, r) for r in rungs}
    lines = [f"| method | {' | '.join(rungs)} |", "|" + "---|" * (len(rungs) + 1)]
    for m in methods:
        cells = []
        for r in rungs:
            v = values.get((m, r), float("nan"))
            cells.append(_fmt(v) + (f" ({rk[r][m]})" if m in rk[r] else ""))
        lines.append(f"| {m} | {' | '.join(cells)} |")
    return "\n".join(lines)


def rank_moves(runs: Sequence, key: str = KEY) -> list[str]:
    """One line per method: its mean ``key`` and rank on each rung, down the ladder."""
    rungs = rungs_of(runs)
    values = means(runs, key)
    rk = {r: ranks(values, r) for r in rungs}
    out = []
    for m in dict.fromkeys(m for m, _ in values):
        steps = [f"{rk[r].get(m, '-')} ({_fmt(values.get((m, r), float('nan')))})"
                 for r in rungs]
        first, last = rk[rungs[0]].get(m), rk[rungs[-1]].get(m)
        drop = values.get((m, rungs[0]), np.nan) - values.get((m, rungs[-1]), np.nan)
        trend = ("" if first is None or last is None else
                 ", holds its rank" if first == last else
                 f", {'falls' if last > first else 'rises'} {abs(last - first)} place"
                 f"{'s' if abs(last - first) > 1 else ''}")
        change = ("" if not np.isfinite(drop) else
                  f"; mean {key} {0.0 if abs(drop) < 5e-4 else -drop:+.3f} over the ladder")
        out.append(f"- **{m}**: rank {' -> '.join(steps)}{trend}{change}")
    return out


def interpbench_comparison(runs: Sequence, rung: str | None = None, key: str = KEY,
                           *, tolerance: float = 0.05) -> list[str]:
    """How the methods' order on ``rung`` (default: the last rung present) compares with
    InterpBench's: ACDC best, EAP-IG within ``tolerance`` of it, SP and EAP behind both."""
    rung = rung or rungs_of(runs)[-1]
    values = {m: v for (m, r), v in means(runs, key).items() if r == rung and np.isfinite(v)}
    if not values:
        return [f"- no scored runs on {rung}"]
    order = sorted(values, key=lambda m: -values[m])
    text = " > ".join(f"{m} {values[m]:.3f}" for m in order)
    lines = [f"- order by mean {key} on **{rung}**: {text}"]
    have = [m for m in INTERPBENCH_ORDER if m in values]
    if {"acdc", "eap_ig"} <= set(have):
        best = max(values[m] for m in have)
        checks = {
            "ACDC best of InterpBench's four": values["acdc"] >= best - 1e-9,
            f"EAP-IG within {tolerance} of the best": values["eap_ig"] >= best - tolerance,
        }
        behind = [m for m in ("sp", "eap") if m in values]
        if behind:
            checks["SP and EAP behind ACDC and EAP-IG"] = all(
                values[m] < min(values["acdc"], values["eap_ig"]) - 1e-9 for m in behind)
        for claim, ok in checks.items():
            lines.append(f"- {claim}: {'yes' if ok else 'no'}")
    return lines


def models_markdown(runs: Sequence) -> str:
    """One row per (program, rung): the model's width, read-out, held-out accuracy (the
    approximate rungs) and the size of its verified truth per ablation (edges)."""
    rows: dict[tuple[str, str], dict] = {}
    ablations: list[str] = []
    for r in runs:
        if not _scored(r):
            continue
        row = rows.setdefault((r.program, _rung(r)), {"model": getattr(r, "model", None),
                                                     "truth": {}})
        row["truth"][r.ablation] = len(r.target or [])
        if r.ablation not in ablations:
            ablations.append(r.ablation)
    lines = ["## Models", "",
             "Each rung's model and the truth verified on it (edges of its effective circuit "
             "per ablation). Held-out: the fraction of held-out inputs whose every output is "
             "right (against the interpreter); exact rungs are exact.", "",
             f"| program | rung | d_model | read-out | held-out | "
             f"{' | '.join(f'truth edges ({a})' for a in ablations)} |",
             "|" + "---|" * (5 + len(ablations))]
    order = {r: i for i, r in enumerate(rungs_of(runs))}
    for (program, rung), row in sorted(rows.items(), key=lambda kv: (kv[0][0],
                                                                      order[kv[0][1]])):
        m = row["model"] or {}
        held = m.get("heldout", {}).get("inputs") if isinstance(m.get("heldout"), dict) \
            else None
        lines.append(f"| {program} | {rung} | {m.get('d_model', '?')} | "
                     f"{m.get('readout', '?')} | {'exact' if held is None else f'{held:.4f}'} | "
                     + " | ".join(str(row["truth"].get(a, "-")) for a in ablations) + " |")
    return "\n".join(lines)


def ladder_markdown(runs: Sequence) -> str:
    """The across-rungs section of a report (see the module docstring)."""
    from .recover import summary_table

    rungs = rungs_of(runs)
    ablations = list(dict.fromkeys(r.ablation for r in runs if _scored(r)))
    lines = ["## Across rungs", "",
             "Every score is against the truth found and verified on that rung's own model. "
             "Means over programs and ablations (defined values only); the rank among the "
             "methods on that rung is in brackets (1 = best).", "",
             f"### Mean edge AUC over the complete graph (`{KEY}`, rank)", "",
             rank_table(runs, KEY), "",
             "### Mean edge AUC over the compiled layout's structural edges (`edge_auc`, "
             "rank)", "", rank_table(runs, "edge_auc"), "",
             "### Mean node AUC (rank)", "", rank_table(runs, "node_auc"), "",
             "### Precision / recall / faithfulness of the own circuit (mean)", ""]
    for key in ("precision", "recall", "faithfulness"):
        lines += [f"{key}:", "", rank_table(runs, key), ""]
    for a in ablations:
        lines += [f"### Mean `{KEY}`, {a} ablation (rank)", "",
                  rank_table(runs, KEY, ablation=a), ""]
    lines += ["### How each method's rank moves down the ladder", "",
              f"Rank (mean `{KEY}`) on {' -> '.join(rungs)}:", "", *rank_moves(runs), "",
              "### Against InterpBench's finding", "",
              "InterpBench (Gupta et al. 2024), on its SIIT-trained models: ACDC best, EAP-IG "
              "competitive, subnetwork probing and plain EAP behind.", "",
              *interpbench_comparison(runs), ""]
    for rung in rungs:
        sub = [r for r in runs if _rung(r) == rung]
        lines += [f"### Summary on {rung}", "", summary_table(sub, notes=False), ""]
    return "\n".join(lines)


def plot_ladder(runs: Sequence, path: str | Path, *, key: str = KEY) -> Path:
    """Mean ``key`` per method against the rung, one panel per ablation and one for all."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .scoring import save_figure

    rungs = rungs_of(runs)
    ablations = list(dict.fromkeys(r.ablation for r in runs if _scored(r)))
    panels = [None, *ablations]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.0), squeeze=False,
                             sharey=True)
    for ax, ablation in zip(axes[0], panels):
        values = means(runs, key, ablation=ablation)
        for m in dict.fromkeys(m for m, _ in values):
            ys = [values.get((m, r), np.nan) for r in rungs]
            ax.plot(range(len(rungs)), ys, marker="o", label=m)
        ax.set_xticks(range(len(rungs)), rungs, fontsize=7.5)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{key}, {'all ablations' if ablation is None else ablation}",
                     fontsize=8.5)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"mean {key}")
    axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)


__all__ = ["LADDER", "INTERPBENCH_ORDER", "KEY", "rungs_of", "means", "ranks", "rank_table",
           "rank_moves", "interpbench_comparison", "models_markdown", "ladder_markdown",
           "plot_ladder"]
