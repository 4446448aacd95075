"""Every feature method x program x rung, scored against the planted variables.

For each program (default: the tracr-library programs, tag ``tracr-lib``) and rung
(``compiled``; ``rotated`` with ``variants.make("rotated", seed=1)``; ``compressed`` for a
few small programs, ``--compressed``, at the first d = round(f D), f = 0.55, 0.75, 0.9,
whose held-out accuracy reaches 99%, else the best of them), builds the feature truth on
``--samples`` inputs from the program's sampler and runs every available feature method
(``probe`` and ``dla``; ``sae`` and ``das`` when their modules exist). Compressed models are
trained once and cached as model files under ``OUT/features/models/``.

One JSON line per finished (program, rung, method) cell in ``OUT/features/cells.jsonl``
(the report's ``to_json()``): an interrupted run keeps what it did and a rerun does only
the missing cells. Writes ``OUT/features.md`` (tables), ``OUT/features_summary.png``
(program x rung matrices of each method's headline score) and per-rung probe heat maps
for one program (``OUT/features_probe_PROGRAM_RUNG.png``).

    python experiments/features.py [--programs reverse,hist | all] [--methods probe,dla]
        [--rungs compiled,rotated,compressed]
        [--compressed frac_prevs,sort_unique,hist,length,count_a]
        [--samples 128] [--seed 0] [--out results]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from rasplab.analysis import features
from rasplab.analysis.features.truth import model_accuracy
from rasplab.compiler.model_file import load, save
from rasplab.programs import filter_programs, get
from tqdm.auto import tqdm

from rasplab import variants
from rasplab.inputs import resolve_target

RUNGS = ("compiled", "rotated", "compressed")
COMPRESSED = ("frac_prevs", "sort_unique", "hist", "length", "count_a")
COMPRESS_FRACTIONS = (0.55, 0.75, 0.9)
ROTATION_SEED = 1
EXAMPLE = "sort_unique"


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _model(name: str, rung: str, out: Path, seed: int):
    spec = get(name)
    target = resolve_target(name, None, None)
    compiled = target.describe(target.compile())  # where it came from, a reference table
    if rung == "compiled":
        return spec, compiled
    if rung == "rotated":
        return spec, variants.make("rotated", compiled, seed=ROTATION_SEED)
    path = out / "features" / "models" / f"{name}-compressed.safetensors"
    if path.exists():
        return spec, load(path)
    best = None
    for fraction in COMPRESS_FRACTIONS:  # the first width reaching 99% held-out accuracy
        d = max(1, round(fraction * compiled.config.d_model))
        model = variants.make("compressed", compiled, seed=seed, d=d, spec=spec,
                              progress=False)
        acc = model_accuracy(model) or 0.0
        if best is None or acc > best[0]:
            best = (acc, model)
        if acc >= 0.99:
            break
    model = best[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    save(model, path)
    return spec, model


def _key(rec: dict) -> tuple:
    return rec["program"], rec["rung"], rec["method"]


def run_cells(names, rungs, methods, compressed, *, samples: int, seed: int, out: Path
              ) -> list[dict]:
    store = out / "features" / "cells.jsonl"
    store.parent.mkdir(parents=True, exist_ok=True)
    config = {"samples": samples, "seed": seed}
    done: dict[tuple, dict] = {}
    if store.exists():
        for line in store.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                if rec.get("config") == config:
                    done[_key(rec)] = rec
    todo = [(n, r, m) for n in names for r in rungs for m in methods
            if (r != "compressed" or n in compressed) and (n, r, m) not in done]
    models: dict = {}
    truths: dict = {}
    bar = tqdm(todo, unit="cell", dynamic_ncols=True)
    with store.open("a") as fh:
        for name, rung, method in bar:
            bar.set_postfix_str(f"{name} {rung} {method}")
            if (name, rung) not in models:
                models.clear()
                truths.clear()
                start = time.perf_counter()
                spec, model = _model(name, rung, out, seed)
                truth = features.feature_truth(model, spec.sample_clean(seed, samples),
                                               program=spec.build())
                models[(name, rung)] = (model, time.perf_counter() - start)
                truths[(name, rung)] = truth
            model, build_s = models[(name, rung)]
            start = time.perf_counter()
            try:
                report = features.run(method, model, truths[(name, rung)], seed=seed)
                rec = {"program": name, "rung": rung, "method": method, "config": config,
                       "seconds": time.perf_counter() - start, "model_seconds": build_s,
                       "d_model": int(model.config.d_model), "report": report.to_json()}
            except Exception as err:  # a method failing on one cell is a result too
                rec = {"program": name, "rung": rung, "method": method, "config": config,
                       "seconds": time.perf_counter() - start, "error": f"{type(err).__name__}: "
                       f"{' '.join(str(err).split())[:300]}"}
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            done[_key(rec)] = rec
    return [done[k] for k in done if k[0] in names and k[1] in rungs and k[2] in methods]


# ---------------------------------------------------------------------------------------
# Tables


def _f(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _mean(xs) -> float:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(xs)) if xs else float("nan")


def headline(rec: dict) -> float:
    """One number per cell: DLA's AUC, probes' mean held-out accuracy over present cells,
    otherwise the main score's mean over present cells."""
    if "error" in rec:
        return float("nan")
    rep = rec["report"]
    if rec["method"] == "dla":
        return rep["summary"].get("auc", float("nan"))
    key = "accuracy" if rec["method"] == "probe" else rep["main_score"]
    return _mean([v.get(key) for v in rep["variables"] if v["present"]])


def _probe_table(recs: list[dict]) -> list[str]:
    lines = ["| program | rung | d_model | model acc. | present cells decoded (acc. 1.0) "
             "| mean acc. (present) | mean selectivity (present) | mean control acc. "
             "| stale decodable | absent decodable | s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in recs:
        if "error" in r:
            lines.append(f"| {r['program']} | {r['rung']} | error: {r['error']} |")
            continue
        rep, s = r["report"], r["report"]["summary"]
        exact = sum(v["accuracy"] == 1.0 for v in rep["variables"] if v["present"])
        lines.append(
            f"| {r['program']} | {r['rung']} | {r.get('d_model', '-')} | "
            f"{_f(rep['model_accuracy'])} | {exact}/{s['present_cells']} | "
            f"{_f(s['present_mean_accuracy'])} | "
            f"{_f(s['present_mean_selectivity'])} | {_f(s['mean_control_accuracy'])} | "
            f"{s['stale_decodable']}/{s['stale_cells']} | "
            f"{s['absent_decodable']}/{s['absent_cells']} | {r['seconds']:.1f} |")
    return lines


def _dla_table(recs: list[dict]) -> list[str]:
    lines = ["| program | rung | writers | components | AUC | precision@k | AUC centered "
             "| AUC target | top component | final lens acc. | first site where lens acc. = 1 "
             "| completeness |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|---:|"]
    for r in recs:
        if "error" in r:
            lines.append(f"| {r['program']} | {r['rung']} | error: {r['error']} |")
            continue
        rep, s = r["report"], r["report"]["summary"]
        top = max(rep.get("components", []), key=lambda c: c.get("dla") or 0.0,
                  default={"name": "-", "writes_output": False})
        first = next((v["site"] for v in rep["variables"]
                      if (v.get("lens_accuracy") or 0) >= 1.0), "-")
        lines.append(
            f"| {r['program']} | {r['rung']} | {s['writers']} | {s['components']} | "
            f"{_f(s['auc'])} | {_f(s['precision_at_k'])} | {_f(s.get('auc_centered'))} | "
            f"{_f(s.get('auc_target'))} | {top['name']}"
            f"{' (writer)' if top['writes_output'] else ''} | "
            f"{_f(s['final_lens_accuracy'])} | `{first}` | {s['completeness']:.1e} |")
    return lines


def _generic_table(recs: list[dict]) -> list[str]:
    keys: list[str] = []
    for r in recs:
        for v in r.get("report", {}).get("variables", []):
            for k, x in v.items():
                if k not in ("name", "site", "method", "present", "used", "stale", "notes") \
                        and isinstance(x, int | float) and not isinstance(x, bool) \
                        and k not in keys:
                    keys.append(k)
    keys = keys[:6]
    lines = ["| program | rung | cells (present) | " + " | ".join(
        f"mean {k} (present)" for k in keys) + " | s |",
        "|---|---|---:|" + "---:|" * len(keys) + "---:|"]
    for r in recs:
        if "error" in r:
            lines.append(f"| {r['program']} | {r['rung']} | error: {r['error']} |")
            continue
        present = [v for v in r["report"]["variables"] if v["present"]]
        lines.append(f"| {r['program']} | {r['rung']} | {len(present)} | " + " | ".join(
            _f(_mean([v.get(k) for v in present])) for k in keys) + f" | {r['seconds']:.1f} |")
    return lines


# ---------------------------------------------------------------------------------------
# Plots


def _summary_plot(recs: list[dict], methods, names, rungs, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(methods), figsize=(2.6 * len(methods) + 2.5,
                                                        0.32 * len(names) + 1.8),
                             squeeze=False, sharey=True)
    by = {_key(r): r for r in recs}
    for ax, method in zip(axes[0], methods, strict=True):
        m = np.full((len(names), len(rungs)), np.nan)
        for i, n in enumerate(names):
            for j, rung in enumerate(rungs):
                if (n, rung, method) in by:
                    m[i, j] = headline(by[(n, rung, method)])
        im = ax.imshow(m, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for i in range(len(names)):
            for j in range(len(rungs)):
                if np.isfinite(m[i, j]):
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="black" if m[i, j] > 0.6 else "white")
        ax.set_xticks(range(len(rungs)), rungs, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.tick_params(axis="y", labelleft=ax is axes[0][0])
        what = {"probe": "mean accuracy (present)", "dla": "AUC (output writers)"}
        ax.set_title(f"{method}: {what.get(method, 'mean main score (present)')}", fontsize=8)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def _report(rec: dict):
    from rasplab.analysis.features.result import FeatureReport, VariableScore

    rep = rec["report"]
    fixed = {"name", "site", "method", "present", "used", "stale", "notes"}
    return FeatureReport(
        method=rep["method"], program=rep["program"], rung=rep["rung"],
        is_exact=rep["is_exact"], seed=rep["seed"], samples=rep["samples"],
        variables=tuple(VariableScore(v["name"], v["site"], v["method"], v["present"],
                                      v["used"], {k: (float("nan") if x is None else x)
                                                  for k, x in v.items() if k not in fixed})
                        for v in rep["variables"]))


# ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", default="tracr-lib",
                    help="comma-separated names, 'all', or 'tracr-lib' (default)")
    ap.add_argument("--methods", default=None,
                    help="comma-separated (default: every available feature method)")
    ap.add_argument("--rungs", default=",".join(RUNGS))
    ap.add_argument("--compressed", default=",".join(COMPRESSED),
                    help="programs that get the compressed rung (training: ~10-60 s each)")
    ap.add_argument("--samples", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results")
    args = ap.parse_args(argv)
    if args.programs == "tracr-lib":
        names = [s.name for s in filter_programs("tracr-lib")]
    elif args.programs == "all":
        names = [s.name for s in filter_programs()]
    else:
        names = _csv(args.programs)
    methods = _csv(args.methods) if args.methods else list(features.METHOD_MODULES)
    rungs = _csv(args.rungs)
    compressed = _csv(args.compressed)
    out = Path(args.out)
    start = time.perf_counter()
    try:
        recs = run_cells(names, rungs, methods, compressed, samples=args.samples,
                         seed=args.seed, out=out)
    except KeyboardInterrupt:
        print("interrupted: finished cells are kept; rerun to continue", file=sys.stderr)
        return 130
    wall = time.perf_counter() - start
    order = {(n, r, m): i for i, (n, r, m) in enumerate(
        (n, r, m) for m in methods for n in names for r in rungs)}
    recs.sort(key=lambda r: order.get(_key(r), 1 << 30))
    _summary_plot(recs, methods, names, rungs, out / "features_summary.png")
    pngs = []
    for rec in recs:
        if rec["program"] == EXAMPLE and rec["method"] == "probe" and "error" not in rec:
            from rasplab.analysis.features.plots import plot_report

            p = out / f"features_probe_{EXAMPLE}_{rec['rung']}.png"
            plot_report(_report(rec), p)
            pngs.append(p.name)
    write_markdown(recs, methods, names, rungs, compressed, args, wall, pngs,
                   out / "features.md")
    print(f"wrote {out / 'features.md'}", file=sys.stderr)
    return 0


def _findings(by_method: dict) -> list[str]:
    """A few sentences computed from the cells: what holds on each rung."""
    out = ["## Findings", ""]
    probe = [r for r in by_method.get("probe", []) if "error" not in r]
    for rung in RUNGS:
        rs = [r for r in probe if r["rung"] == rung]
        if not rs:
            continue
        present = [v for r in rs for v in r["report"]["variables"] if v["present"]]
        ok = sum(v["accuracy"] == 1.0 for v in present)
        worst = min(rs, key=lambda r: r["report"]["summary"]["present_mean_accuracy"])
        acc = [r["report"]["model_accuracy"] for r in rs
               if r["report"]["model_accuracy"] is not None]
        extra = (f" (model held-out accuracy {min(acc):.3f}-{max(acc):.3f})" if acc else "")
        out.append(f"- probes, {rung}{extra}: {ok} of {len(present)} present cells decode at "
                   f"accuracy 1.0 over {len(rs)} programs; lowest program mean "
                   f"{worst['report']['summary']['present_mean_accuracy']:.3f} "
                   f"({worst['program']}).")
    dla = [r for r in by_method.get("dla", []) if "error" not in r]
    for rung in RUNGS:
        rs = [r for r in dla if r["rung"] == rung]
        if not rs:
            continue
        s = [r["report"]["summary"] for r in rs]
        perfect = sum(x["auc"] == 1.0 for x in s)
        cen = sum((x.get("auc_centered") or 0) == 1.0 for x in s)
        miss = [r["program"] for r, x in zip(rs, s, strict=True) if x["auc"] < 1.0]
        out.append(f"- DLA, {rung}: the planted output writer ranks first (AUC 1) in "
                   f"{perfect} of {len(rs)} programs by rms contribution, {cen} of {len(rs)} "
                   f"by the centered contribution"
                   + (f"; missed: {', '.join(miss)}" if miss else "") + ".")
    return out + [""]


def write_markdown(recs, methods, names, rungs, compressed, args, wall, pngs, path: Path):
    n_cells = len(recs)
    lines = [
        "# Feature methods scored against the planted variables",
        "",
        f"Written by `experiments/features.py` ({len(names)} programs, rungs "
        f"{', '.join(rungs)} (compressed: {', '.join(c for c in compressed if c in names)}, "
        f"the first d = round(f D), f in {COMPRESS_FRACTIONS}, reaching 99% held-out "
        f"accuracy), methods {', '.join(methods)}; {args.samples} "
        f"inputs from each program's sampler, seed {args.seed}; {n_cells} cells, "
        f"{wall:.0f} s this run, cached cells not rerun). A cell is (program, rung, method); "
        "inside it every (variable, residual site) pair is scored, and each score carries "
        "the truth: *present* (written before the site and not overwritten) and *used* "
        "(read by a component after the site, from the planted circuit's edges).",
        "",
        "![summary](features_summary.png)",
        "",
    ]
    by_method = {m: [r for r in recs if r["method"] == m] for m in methods}
    lines += _findings(by_method)
    if "probe" in by_method:
        recs_p = [r for r in by_method["probe"] if "error" not in r]
        exact = [r for r in recs_p if r["report"]["is_exact"]]
        dec = sum(sum(v["accuracy"] == 1.0 for v in r["report"]["variables"] if v["present"])
                  for r in exact)
        tot = sum(r["report"]["summary"]["present_cells"] for r in exact)
        stale = sum(r["report"]["summary"]["stale_decodable"] for r in recs_p)
        stale_t = sum(r["report"]["summary"]["stale_cells"] for r in recs_p)
        absent = sum(r["report"]["summary"]["absent_decodable"] for r in recs_p)
        absent_t = sum(r["report"]["summary"]["absent_cells"] for r in recs_p)
        lines += [
            "## Linear probes",
            "",
            "Softmax probes (categorical) and least squares (numerical; accuracy = the "
            "prediction rounds to the true value on the value grid), fitted on 70% of the "
            "inputs and scored on the other 30%. Control: the same probe on the labels "
            "permuted across positions; selectivity = accuracy - control accuracy. "
            "*Stale decodable*: present, read by nothing downstream, still decoded at "
            "accuracy >= 0.99. *Absent decodable*: not present at that site but decoded "
            "anyway (a linear function of what is present, e.g. a Map of the tokens from "
            "the token embedding).",
            "",
            f"On the exact rungs, {dec} of {tot} present (variable, site) cells decode at "
            f"held-out accuracy 1.0. Over all cells, {stale} of {stale_t} stale cells and "
            f"{absent} of {absent_t} absent cells are decodable at >= 0.99: decodability "
            "alone says neither that a variable is used nor that it is stored there.",
            "",
            *_probe_table(by_method["probe"]),
            "",
        ]
        if pngs:
            lines += [" ".join(f"![{p}]({p})" for p in pngs), ""]
    if "dla" in by_method:
        lines += [
            "## Logit lens and direct logit attribution",
            "",
            "DLA: each component's direct contribution to the read-out (its output times "
            "the unembedding), ranked by its rms norm over positions and scored against the "
            "components with a structural edge into `output`; *centered*: the same with "
            "each contribution's mean over positions removed; *target*: the true value's "
            "column minus the mean column (a number: covariance with the true value). "
            "Logit lens: each residual "
            "site decoded through the model's own unembedding by the nearest value. "
            "Completeness: the largest gap between the summed contributions and the "
            "read-out (the decomposition is exact up to float rounding).",
            "",
            *_dla_table(by_method["dla"]),
            "",
        ]
    for m in methods:
        if m in ("probe", "dla"):
            continue
        lines += [f"## {m}", "", *_generic_table(by_method[m]), ""]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
