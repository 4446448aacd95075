"""Every feature method x program x rung, scored against the planted variables.

For each program (default: the tracr-library programs, tag ``tracr-lib``) and rung
(``compiled``; ``rotated`` with ``variants.make("rotated", seed=1)``; ``compressed`` for a
few small programs, ``--compressed``, at the first d = round(f D), f = 0.55, 0.75, 0.9,
whose held-out accuracy reaches 99%, else the best of them; ``retrained`` for the programs
in ``--retrained``: the SIIT-trained model from ``models/demo`` when shipped, else from
``rasplab.ladder.VariantCache`` under ``--models``, trained there on first use), builds the
feature truth on ``--samples`` inputs from the program's sampler and runs every feature
method (``probe``, ``dla``, ``sae``, ``das``). Compressed models are trained once and cached
as model files under ``OUT/features/models/``.

One JSON line per finished (program, rung, method) cell in ``OUT/features/cells.jsonl``
(the report's ``to_json()``): an interrupted run keeps what it did and a rerun does only
the missing cells. Writes ``OUT/features.md`` (tables), ``OUT/features_summary.png``
(program x rung matrices of each method's headline score) and per-rung probe heat maps
for one program (``OUT/features_probe_PROGRAM_RUNG.png``).

    python experiments/features.py [--programs reverse,hist | all] [--methods probe,dla]
        [--rungs compiled,rotated,compressed,retrained]
        [--compressed frac_prevs,sort_unique,hist,length,count_a]
        [--retrained hist,frac_prevs,sort_unique] [--models DIR]
        [--samples 128] [--seed 0] [--out results]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rasplab.analysis import features
from rasplab.analysis.features.truth import model_accuracy
from rasplab.compiler.model_file import load, save
from rasplab.programs import filter_programs, get
from tqdm.auto import tqdm

from rasplab import variants
from rasplab.inputs import resolve_target

RUNGS = ("compiled", "rotated", "compressed", "retrained")
COMPRESSED = ("frac_prevs", "sort_unique", "hist", "length", "count_a")
#: the programs whose retrained models ship in models/demo (training one takes minutes)
RETRAINED = ("hist", "frac_prevs", "sort_unique")
SHIPPED = Path(__file__).resolve().parent.parent / "models" / "demo"
COMPRESS_FRACTIONS = (0.55, 0.75, 0.9)
ROTATION_SEED = 1
EXAMPLE = "sort_unique"


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _model(name: str, rung: str, out: Path, seed: int, models: Path | None = None):
    spec = get(name)
    target = resolve_target(name, None, None)
    compiled = target.describe(target.compile())  # where it came from, a reference table
    if rung == "compiled":
        return spec, compiled
    if rung == "rotated":
        return spec, variants.make("rotated", compiled, seed=ROTATION_SEED)
    if rung == "retrained":
        from rasplab.ladder import VariantCache

        cache = VariantCache(str(models or out / "features" / "models"),
                             shipped=(str(SHIPPED),))
        return spec, cache.model(spec, "retrained", seed, compiled=compiled)
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


def reused(path: Path, seed: int) -> dict[tuple, dict]:
    """The SAE and DAS cells of ``experiments/das_sae.py``'s store (``path``), as this
    experiment's cells: the same methods and seed, run there on more inputs (its
    ``samples``) and, for the rotated rung, another rotation seed; recorded as
    ``config["from"]``. Running them twice would cost the better part of an hour."""
    out: dict[tuple, dict] = {}
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        rep = json.loads(line)
        if rep.get("method") not in ("sae", "das") or rep.get("seed") != seed:
            continue
        rec = {"program": rep["program"], "rung": rep["rung"], "method": rep["method"],
               "config": {"samples": rep["samples"], "seed": seed, "from": path.name},
               "seconds": rep.get("wall_s", rep.get("seconds", float("nan"))),
               "d_model": rep.get("d_model"), "report": rep}
        out[_key(rec)] = rec
    return out


def run_cells(names, rungs, methods, compressed, *, samples: int, seed: int, out: Path,
              retrained: Sequence[str] = RETRAINED, model_dir: Path | None = None,
              reuse: Path | None = None) -> list[dict]:
    store = out / "features" / "cells.jsonl"
    store.parent.mkdir(parents=True, exist_ok=True)
    config = {"samples": samples, "seed": seed}
    done: dict[tuple, dict] = reused(reuse, seed) if reuse is not None else {}
    if store.exists():
        for line in store.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                if rec.get("config") == config:
                    done[_key(rec)] = rec
    todo = [(n, r, m) for n in names for r in rungs for m in methods
            if (r != "compressed" or n in compressed) and (r != "retrained" or n in retrained)
            and (n, r, m) not in done]
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
                spec, model = _model(name, rung, out, seed, model_dir)
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
    if rec["method"] == "das":  # IIA is 1.0 for any subspace where nothing is identifiable
        return _mean([v.get("overlap") for v in rep["variables"] if v.get("identifiable")])
    key = "accuracy" if rec["method"] == "probe" else rep["main_score"]
    return _mean([v.get(key) for v in rep["variables"] if v["present"]])


def _present_mean(rec: dict, key: str) -> float:
    """The mean of ``key`` over a cell's present (variable, site) scores."""
    return _mean([v.get(key) for v in rec["report"]["variables"] if v["present"]])


def _das_counts(rep: dict) -> dict:
    ident = [v for v in rep["variables"] if v.get("identifiable")]
    ok = lambda x, t: x is not None and not (isinstance(x, float) and math.isnan(x)) and x >= t
    return {"cells": len(rep["variables"]), "identifiable": len(ident),
            "iia_1": sum(ok(v["iia"], 1.0) for v in ident),
            "overlap_099": sum(ok(v.get("overlap"), 0.99) for v in ident),
            "both": sum(ok(v["iia"], 1.0) and ok(v.get("overlap"), 0.99) for v in ident),
            "read_099": sum(ok(v.get("read_overlap"), 0.99) for v in ident),
            "illusions": sum(bool(v.get("illusion")) for v in ident),
            "mean_iia": _mean([v["iia"] for v in ident]),
            "mean_overlap": _mean([v.get("overlap") for v in ident]),
            "mean_random_iia": _mean([v.get("random_iia") for v in ident])}


def _das_table(recs: list[dict]) -> list[str]:
    lines = ["| program | rung | cells | identifiable | IIA 1.0 | overlap >= 0.99 | both "
             "| read overlap >= 0.99 | illusions | mean IIA | mean overlap | mean random IIA "
             "| from | s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in recs:
        if "error" in r:
            lines.append(f"| {r['program']} | {r['rung']} | error: {r['error']} |")
            continue
        c = _das_counts(r["report"])
        lines.append(
            f"| {r['program']} | {r['rung']} | {c['cells']} | {c['identifiable']} | "
            f"{c['iia_1']} | {c['overlap_099']} | {c['both']} | {c['read_099']} | "
            f"{c['illusions']} | {_f(c['mean_iia'])} | {_f(c['mean_overlap'])} | "
            f"{_f(c['mean_random_iia'])} | {r['config'].get('from', 'here')} | "
            f"{r['seconds']:.0f} |")
    return lines


def _sae_table(recs: list[dict]) -> list[str]:
    keys = ("mcc", "mcc_centred", "f1", "random_mcc", "neuron_mcc", "nmse", "dead")
    lines = ["| program | rung | cells (present) | " + " | ".join(f"mean {k}" for k in keys)
             + " | from | s |", "|---|---|---:|" + "---:|" * len(keys) + "---|---:|"]
    for r in recs:
        if "error" in r:
            lines.append(f"| {r['program']} | {r['rung']} | error: {r['error']} |")
            continue
        present = sum(v["present"] for v in r["report"]["variables"])
        lines.append(f"| {r['program']} | {r['rung']} | {present} | " + " | ".join(
            _f(_present_mean(r, k)) for k in keys)
            + f" | {r['config'].get('from', 'here')} | {r['seconds']:.0f} |")
    return lines


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
        what = {"probe": "mean accuracy (present)", "dla": "AUC (output writers)",
                "sae": "mean MCC (present)", "das": "mean overlap (identifiable)"}
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
    ap.add_argument("--retrained", default=",".join(RETRAINED),
                    help="programs that get the retrained rung (shipped in models/demo, "
                    "else trained on first use: minutes each)")
    ap.add_argument("--reuse", type=Path, default=Path("results/das_sae_cells.jsonl"),
                    help="take SAE and DAS cells from experiments/das_sae.py's store where it "
                    "has them (default results/das_sae_cells.jsonl; a missing file reuses "
                    "nothing)")
    ap.add_argument("--models", type=Path, default=None,
                    help="where retrained models not shipped are kept (default "
                    "OUT/features/models)")
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
                         seed=args.seed, out=out, retrained=_csv(args.retrained),
                         model_dir=args.models, reuse=args.reuse)
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


def _per_rung(recs: list[dict]):
    """``(rung, cells)`` for each rung with cells, leaving out failed cells."""
    for rung in RUNGS:
        rs = [r for r in recs if r["rung"] == rung and "error" not in r]
        if rs:
            yield rung, rs


def _findings(by_method: dict) -> list[str]:
    """A few sentences computed from the cells: what holds on each rung."""
    out = ["## Findings", ""]
    for rung, rs in _per_rung(by_method.get("probe", [])):
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
    for rung, rs in _per_rung(by_method.get("dla", [])):
        s = [r["report"]["summary"] for r in rs]
        perfect = sum(x["auc"] == 1.0 for x in s)
        cen = sum((x.get("auc_centered") or 0) == 1.0 for x in s)
        miss = [r["program"] for r, x in zip(rs, s, strict=True) if x["auc"] < 1.0]
        out.append(f"- DLA, {rung}: the planted output writer ranks first (AUC 1) in "
                   f"{perfect} of {len(rs)} programs by rms contribution, {cen} of {len(rs)} "
                   f"by the centered contribution"
                   + (f"; missed: {', '.join(miss)}" if miss else "") + ".")
    for rung, cells in _per_rung(by_method.get("das", [])):
        rs = [_das_counts(r["report"]) for r in cells]
        tot = {k: sum(c[k] for c in rs) for k in ("identifiable", "iia_1", "overlap_099",
                                                  "both", "read_099", "illusions")}
        out.append(f"- DAS, {rung}: {len(rs)} programs, {tot['identifiable']} identifiable "
                   f"(variable, site) cells; IIA 1.0 on {tot['iia_1']}, overlap >= 0.99 on "
                   f"{tot['overlap_099']}, both on {tot['both']} (read overlap >= 0.99: "
                   f"{tot['read_099']}; flagged illusions: {tot['illusions']}).")
    for rung, rs in _per_rung(by_method.get("sae", [])):
        mcc, rnd, neu = ([_present_mean(r, k) for r in rs]
                         for k in ("mcc", "random_mcc", "neuron_mcc"))
        out.append(f"- SAE, {rung}: {len(rs)} programs, mean MCC per program "
                   f"{np.nanmin(mcc):.2f}-{np.nanmax(mcc):.2f} (random dictionary "
                   f"{np.nanmin(rnd):.2f}-{np.nanmax(rnd):.2f}, residual axes as neurons "
                   f"{np.nanmin(neu):.2f}-{np.nanmax(neu):.2f}).")
    return out + [""]


def write_markdown(recs, methods, names, rungs, compressed, args, wall, pngs, path: Path):
    n_cells = len(recs)
    lines = [
        "# Feature methods scored against the planted variables",
        "",
        f"Written by `experiments/features.py` ({len(names)} programs, rungs "
        f"{', '.join(rungs)} (compressed: {', '.join(c for c in compressed if c in names)}, "
        f"the first d = round(f D), f in {COMPRESS_FRACTIONS}, reaching 99% held-out "
        f"accuracy; retrained: {', '.join(c for c in _csv(args.retrained) if c in names)}, "
        f"SIIT-trained, the shipped models/demo files), methods {', '.join(methods)}; "
        f"{args.samples} "
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
            "planted output writers (the structural edges into `output` that carry a "
            "variable); *centered*: the same with "
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
    if "sae" in by_method:
        lines += [
            "## Sparse autoencoders",
            "",
            "`analysis/features/sae.py` (ReLU + L1, width = the true (variable, value) "
            "directions at the site): MCC is the mean |cos| of a one-to-one matching of atoms "
            "to true directions; *random*: a random dictionary of the same width; *neuron*: "
            "the residual stream's axes as the dictionary. Cells marked `das_sae_cells.jsonl` "
            "come from `experiments/das_sae.py` (512 inputs; its rotated rung uses rotation "
            "seed 0); results/das_sae.md reads them.",
            "",
            *_sae_table(by_method["sae"]),
            "",
        ]
    if "das" in by_method:
        lines += [
            "## Distributed alignment search",
            "",
            "`analysis/features/das.py`, per variable at its write site: held-out IIA and the "
            "overlap of the learned subspace with the planted basis; *identifiable*: the "
            "variable differs on some same-length pair and that changes some output (else "
            "IIA is 1.0 for any subspace); *read overlap*: the overlap after projecting out "
            "what no later component reads; *illusion*: IIA >= 0.99 with overlap < 0.9. "
            "Cells marked `das_sae_cells.jsonl` come from `experiments/das_sae.py`; "
            "results/das_sae.md reads them.",
            "",
            *_das_table(by_method["das"]),
            "",
        ]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
