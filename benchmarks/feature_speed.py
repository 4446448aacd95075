#!/usr/bin/env python3
"""Feature-method speed: linear-probe fits per second (and DAS fits per second, once
``analysis/features/das.py`` exists), on this machine's CPUs.

For each program (compiled rung, ``--samples`` inputs from its sampler) the feature truth
is built once, then ``probes.run`` scores every (variable, residual site) cell: one
softmax or least-squares probe plus its control per cell, so ``fits = 2 x cells``. The
first run includes the XLA compile of the vmapped softmax fit (reported apart); the warm
time is the median of ``--repeats`` further runs (activations captured, probes fitted,
scored). DAS, when present, is timed the same way (``das.run``; fits = the cells it
scores).

Writes the section between the ``feature-speed`` markers of ``benchmarks/RESULTS.md``
(appended if missing; the rest is kept; ``benchmarks/run.py`` keeps it too) and the raw
numbers to ``results/bench_features.json``.

    .venv/bin/python benchmarks/feature_speed.py [--programs hist,frac_prevs,sort,reverse]
        [--samples 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax
from rasplab.analysis.features import feature_truth
from rasplab.analysis.features import probes as P
from rasplab.compiler import compile_program
from rasplab.programs import get
from results_md import replace_section

HERE = Path(__file__).resolve().parent
START, END = "<!-- feature-speed:start -->", "<!-- feature-speed:end -->"


def _timed(fn, repeats: int) -> tuple[float, float, object]:
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        warm.append(time.perf_counter() - t0)
    return first, statistics.median(warm), out


def measure(name: str, samples: int, repeats: int, das) -> dict:
    spec = get(name)
    model = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    truth = feature_truth(model, spec.sample_clean(0, samples), program=spec.build())
    first, warm, rep = _timed(lambda: P.run(model, truth), repeats)
    cells = len(rep.variables)
    ls_config = P.ProbeConfig(steps=0)  # the least-squares warm start alone
    _, ls_warm, _ = _timed(lambda: P.run(model, truth, config=ls_config), repeats)
    rec = {"program": name, "d_model": int(model.config.d_model), "positions":
           truth.n_positions, "variables": len(truth.variables), "sites": len(truth.sites),
           "cells": cells, "probe_first_s": first, "probe_warm_s": warm,
           "probe_fits_per_s": 2 * cells / warm, "ls_warm_s": ls_warm,
           "ls_fits_per_s": 2 * cells / ls_warm}
    if das is not None:
        first, warm, rep = _timed(lambda: das.run(model, truth, site=None, variable=None,
                                                  seed=0), max(1, repeats // 2))
        rec.update({"das_cells": len(rep.variables), "das_first_s": first,
                    "das_warm_s": warm, "das_fits_per_s": len(rep.variables) / warm})
    return rec


def section(records: list[dict], *, samples: int, load: tuple, das: bool) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        START,
        "## Feature methods: probe (and DAS) fits per second",
        "",
        f"Written by `benchmarks/feature_speed.py` on {now}; {os.cpu_count()} CPUs, "
        f"{platform.platform()}, jax {jax.__version__}; load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the start (a shared machine). "
        f"Compiled models, {samples} inputs from each program's sampler. A probe report "
        "fits one probe and one control per (variable, residual site) cell; fits/s = "
        "2 x cells / warm seconds (capturing the activations included). First: the first "
        "report in the process, with the XLA compile of the vmapped softmax fit. "
        f"Softmax probes: {P.ProbeConfig().steps} Adam steps from the least-squares warm "
        "start (the default); least squares: the warm start alone (`ProbeConfig(steps=0)`, "
        "the same accuracy 1.0 on these exact models).",
        "",
    ]
    head = "| program | d_model | positions | cells | probe first (s) | probe warm (s) | " \
           "probe fits/s | least-squares fits/s |"
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|"
    if das:
        head += " DAS cells | DAS first (s) | DAS warm (s) | DAS fits/s |"
        rule += "---:|---:|---:|---:|"
    lines += [head, rule]
    for r in records:
        row = (f"| {r['program']} | {r['d_model']} | {r['positions']} | {r['cells']} | "
               f"{r['probe_first_s']:.2f} | {r['probe_warm_s']:.3f} | "
               f"{r['probe_fits_per_s']:.0f} | {r['ls_fits_per_s']:.0f} |")
        if das:
            row += (f" {r['das_cells']} | {r['das_first_s']:.2f} | {r['das_warm_s']:.3f} | "
                    f"{r['das_fits_per_s']:.1f} |")
        lines.append(row)
    if not das:
        lines += ["", "DAS: not run this time (`--no-das`)."]
    lines.append(END)
    return "\n".join(lines)




def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--programs", default="hist,frac_prevs,sort,reverse")
    ap.add_argument("--samples", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-das", action="store_true", help="skip DAS")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = ap.parse_args(argv)
    das = None if args.no_das else importlib.import_module("rasplab.analysis.features.das")
    load = os.getloadavg()
    records = []
    for name in [n.strip() for n in args.programs.split(",") if n.strip()]:
        records.append(measure(name, args.samples, args.repeats, das))
        print(json.dumps(records[-1]), flush=True)
    replace_section(Path(args.out), section(records, samples=args.samples, load=load,
                                            das=das is not None), START, END)
    raw = HERE.parent / "results" / "bench_features.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
