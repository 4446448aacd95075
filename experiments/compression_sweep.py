"""Rung 2 sweep: compress tracr-library programs to d = f * D and measure what survives.

For each program (tag ``tracr-lib``; default frac_prevs and sort_unique, the tracr
paper's case studies) and each fraction f, trains ``variants.compressed.compress`` at
d = round(f * D) (early stop at 99.5% held-out input accuracy) and records held-out
accuracy against the interpreter, the superposition measure (mean |cos| between distinct
variable-value directions), steps and steps/s. For compressed models that reach 99%,
each variable's mapped directions are interchanged from a same-length source input just
after the variable is written (``patch_effects``): where the compiled model's output
changes but the compressed one's does not, the compressed model reaches its output by
another route (the tracr paper's caution).

Writes ``results/compression.md``, ``results/compression_accuracy.png``,
``results/compression_superposition.png`` and ``results/compression_frac_prevs_gram.png``
(the Gram matrix W Wᵀ of the learned directions, labelled by residual label). Each
program's cells are cached in ``results/compression/PROGRAM.json``: a rerun skips cells
already done with the same configuration.

    python experiments/compression_sweep.py [--programs frac_prevs,sort_unique | all]
        [--fractions 0.25,0.4,...] [--steps 2000] [--seed 0] [--out results]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from rasplab.compiler import compile_program
from rasplab.programs import filter_programs, get
from rasplab.variants import compressed as C

FRACTIONS = (0.25, 0.4, 0.55, 0.7, 0.85, 1.0)
TARGET = 0.995


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def run_program(name: str, fractions, *, steps: int, seed: int, out: Path,
                n_patch: int = 256) -> dict:
    spec = get(name)
    compiled = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    D = compiled.config.d_model
    cache_path = out / "compression" / f"{name}.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    cells = cache.get("cells", {})
    config = {"steps": steps, "seed": seed, "stop_at": TARGET}
    ds = sorted({max(1, min(D, round(f * D))) for f in fractions})
    for d in ds:
        key = str(d)
        if key in cells and cells[key]["run_config"] == config:
            continue
        c = C.compress(compiled, d, spec=spec, progress=True, **config)
        cell = {"run_config": config, **c.summary(), "W": c.W.tolist()}
        if c.heldout.inputs >= 0.99 and d < D:
            inputs = spec.sample_clean(seed + 7, n_patch)
            sources = spec.sample_corrupted(seed + 8, inputs)
            cell["patch"] = [vars(e) for e in C.patch_effects(c, inputs, sources)]
        cells[key] = cell
        print(f"{name} d={d}/{D}: held-out {c.heldout.inputs:.4f}, superposition "
              f"{c.superposition:.3f}, {c.steps_done} steps, {c.steps_per_s:.1f} steps/s",
              file=sys.stderr)
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_text(json.dumps({"program": name, "D": D, "cells": cells},
                                         sort_keys=True))
    return {"program": name, "D": D, "labels": compiled.residual_labels,
            "variables": {v: i.dims for v, i in compiled.variables.items()},
            "cells": {int(k): v for k, v in cells.items()}}


def _plot(results: list[dict], field: str, ylabel: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        ds = sorted(r["cells"])
        ys = [r["cells"][d]["heldout"]["inputs"] if field == "accuracy"
              else r["cells"][d]["superposition"] for d in ds]
        ax.plot([d / r["D"] for d in ds], ys, marker="o", label=f"{r['program']} (D={r['D']})")
    if field == "accuracy":
        ax.axhline(TARGET, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("d / D")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _gram_cell(r: dict) -> int:
    ok = [d for d, c in r["cells"].items() if c["heldout"]["inputs"] >= TARGET and d < r["D"]]
    if ok:
        return min(ok)
    below = [d for d in r["cells"] if d < r["D"]] or list(r["cells"])
    return max(below, key=lambda d: (r["cells"][d]["heldout"]["inputs"], -d))


def _plot_gram(r: dict, path: Path) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = _gram_cell(r)
    W = np.asarray(r["cells"][d]["W"])
    G = W @ W.T
    labels = r["labels"]
    fig, ax = plt.subplots(figsize=(7, 6))
    lim = float(np.abs(G).max()) or 1.0
    im = ax.imshow(G, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    acc = r["cells"][d]["heldout"]["inputs"]
    ax.set_title(f"{r['program']}: W Wᵀ at d={d} of D={r['D']} (held-out {acc:.3f})",
                 fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return d


def report(results: list[dict], *, seconds: float, steps: int, seed: int) -> str:
    lines = [
        "# Compression sweep (rung 2: frozen compiled weights, one learned D x d matrix)",
        "",
        f"Written by `experiments/compression_sweep.py` (seed {seed}, at most {steps} steps, "
        f"early stop at {TARGET:.1%} held-out input accuracy; {seconds:.0f} s this run, "
        "cached cells not rerun). Held-out: 1024 inputs from the program's sampler drawn "
        "with a seed independent of the training inputs, decoded by the nearest value and "
        "compared with `rasp.evaluate`. Superposition: mean |cos| between distinct "
        "variable-value directions (rows of W at every variable's dims; 0 = orthogonal). "
        "Steps/s include the held-out evaluation every 50 steps and the first chunk's XLA "
        "compile.",
        "",
        "![accuracy](compression_accuracy.png) ![superposition](compression_superposition.png)",
        "",
        "| program | D | d | d/D | held-out inputs | positions | superposition | steps | s "
        "| steps/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for d in sorted(r["cells"]):
            c = r["cells"][d]
            lines.append(
                f"| {r['program']} | {r['D']} | {d} | {d / r['D']:.2f} | "
                f"{c['heldout']['inputs']:.4f} | {c['heldout']['positions']:.4f} | "
                f"{c['superposition']:.3f} | {c['steps_done']} | {c['seconds']:.1f} | "
                f"{c['steps_per_s']:.1f} |"
            )
    lines += ["", "## Smallest d reaching 99.5%", ""]
    for r in results:
        ok = [d for d, c in r["cells"].items() if c["heldout"]["inputs"] >= TARGET]
        lines.append(f"- {r['program']}: " + (f"d = {min(ok)} of {r['D']} "
                     f"({min(ok) / r['D']:.2f})" if ok else "none of the d tried"))
    lines += [
        "",
        "## Does the compressed model use the compiled route? (the tracr paper's caution)",
        "",
        "For each compressed model below D that reaches 99% held-out accuracy, each "
        "variable's directions are interchanged from a same-length corrupted input "
        "(`spec.sample_corrupted`) at the site just after the variable is written: the "
        "unit basis in the compiled model, the span of Wᵀ B in the compressed one. "
        "IIA: the compressed patched output equals the compiled patched output. "
        "Routed around: of the inputs whose compiled output the patch changes, the share "
        "whose compressed output it leaves unchanged (the compressed model gets the "
        "information another way, e.g. from another variable sharing its directions).",
        "",
        "| program | d | variable | site | changed (compiled) | changed (compressed) | IIA "
        "| routed around |",
        "|---|---:|---|---|---:|---:|---:|---:|",
    ]
    flagged = []
    for r in results:
        for d in sorted(r["cells"]):
            for e in r["cells"][d].get("patch", []):
                lines.append(
                    f"| {r['program']} | {d} | {e['variable']} | `{e['site']}` | "
                    f"{e['changed_compiled']:.3f} | {e['changed_compressed']:.3f} | "
                    f"{e['iia']:.3f} | {e['routed_around']:.3f} |"
                )
                if e["routed_around"] > 0.05:
                    flagged.append(f"{r['program']} d={d}: {e['variable']} "
                                   f"({e['routed_around']:.0%} of affected inputs)")
    lines += ["", "Routed around on more than 5% of the affected inputs: "
              + ("; ".join(flagged) if flagged else "nowhere in this sweep") + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--programs", default="frac_prevs,sort_unique")
    ap.add_argument("--fractions", default=",".join(map(str, FRACTIONS)))
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results")
    args = ap.parse_args(argv)
    names = ([s.name for s in filter_programs("tracr-lib")] if args.programs == "all"
             else _csv(args.programs))
    lib = {s.name for s in filter_programs("tracr-lib")}
    bad = [n for n in names if n not in lib]
    if bad:
        print(f"error: not tracr-library programs: {', '.join(bad)}", file=sys.stderr)
        return 2
    fractions = [float(f) for f in _csv(args.fractions)]
    out = Path(args.out)
    t0 = time.perf_counter()
    results = [run_program(n, fractions, steps=args.steps, seed=args.seed, out=out)
               for n in names]
    seconds = time.perf_counter() - t0
    _plot(results, "accuracy", "held-out input accuracy", out / "compression_accuracy.png")
    _plot(results, "superposition", "mean |cos| (variable-value directions)",
          out / "compression_superposition.png")
    text = report(results, seconds=seconds, steps=args.steps, seed=args.seed)
    frac = [r for r in results if r["program"] == "frac_prevs"]
    if frac:
        d = _plot_gram(frac[0], out / "compression_frac_prevs_gram.png")
        text += (f"\n## frac_prevs: the learned directions\n\n"
                 f"![gram](compression_frac_prevs_gram.png)\n\nW Wᵀ at d = {d}: entry (i, j) "
                 "is the dot product of the compressed directions of residual labels i "
                 "and j (the identity if nothing were compressed).\n")
    (out / "compression.md").write_text(text)
    print(f"wrote {out / 'compression.md'} ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
