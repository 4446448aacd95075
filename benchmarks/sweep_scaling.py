#!/usr/bin/env python3
"""How a scoreboard sweep scales with local workers (1 vs 2 processes).

Runs the same small scoreboard (``--programs`` x ``--methods`` x ``--ablations``, seed 0,
``--samples`` inputs) through ``rasplab.sweep.run_sweep`` once per worker count, each into a
fresh cell store, in this order, and reports wall time, cells per minute and the speed-up
over one worker, plus the machine's load average before and after each run (other work on
the machine slows both sides). One worker runs the cells in this process; N > 1 spawns N
processes, each paying its own JAX start-up and JIT (included in the times). The results
of every run are checked to be identical (the scores, not the timings).

Writes ``results/sweep_scaling.json`` and replaces the sweep section of
``benchmarks/RESULTS.md`` (between its ``sweep`` markers, appended if absent).

    .venv/bin/python benchmarks/sweep_scaling.py [--workers 1,2] [--programs a,b]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS_MD = HERE / "RESULTS.md"
MARK_START = "<!-- sweep:start (written by benchmarks/sweep_scaling.py) -->"
MARK_END = "<!-- sweep:end -->"


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def measure(cells, workers: int) -> dict:
    from rasplab.analysis.scoreboard import group_key, load_records, run_cell

    from rasplab.sweep import Store, run_sweep

    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as d:
        store = Store(d)
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        report = run_sweep(run_cell, cells, store, workers=workers, group_by=group_key,
                           progress=False)
        wall = time.perf_counter() - t0
        load_after = os.getloadavg()[0]
        scores = {f"{r.label}/{r.ablation}/{r.method}":
                  {k: v for k, v in (r.scores or {"error": r.error}).items() if k != "seconds"}
                  for r in load_records(store, cells)}
    return {"workers": workers, "cells": report.ran, "wall_s": round(wall, 2),
            "cells_per_min": round(60 * report.ran / wall, 2),
            "load_before": round(load_before, 2), "load_after": round(load_after, 2),
            "scores": scores}


def summary(result: dict) -> str:
    runs = result["runs"]
    base = runs[0]["wall_s"]
    lines = [
        MARK_START,
        "## Sweep scaling (local workers)",
        "",
        f"`benchmarks/sweep_scaling.py` on {result['date']}: the scoreboard's cells "
        f"({len(result['programs'])} programs x {len(result['methods'])} methods x "
        f"{len(result['ablations'])} ablations = {result['cells']} cells, {result['samples']} "
        f"samples, seed 0) through `rasplab.sweep.run_sweep`, one cell group per program, "
        f"on {result['cpus']} CPUs. Each worker process pays its own JAX start-up and JIT. "
        f"Results identical across worker counts: {'yes' if result['identical'] else 'NO'}.",
        "",
        "| workers | wall s | cells/min | speed-up vs 1 | load avg before / after |",
        "|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(f"| {r['workers']} | {r['wall_s']:.1f} | {r['cells_per_min']:.1f} | "
                     f"{base / r['wall_s']:.2f}x | {r['load_before']:.1f} / "
                     f"{r['load_after']:.1f} |")
    lines += ["", f"Programs: {', '.join(result['programs'])}; methods: "
              f"{', '.join(result['methods'])}; ablations: {', '.join(result['ablations'])}. "
              "A load average above the CPU count means other work shared the machine.",
              MARK_END]
    return "\n".join(lines)


def update_results_md(text: str, path: Path = RESULTS_MD) -> None:
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    if MARK_START in old and MARK_END in old:
        head, rest = old.split(MARK_START, 1)
        _, tail = rest.split(MARK_END, 1)
        new = head + text + tail
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(new)
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", default="reverse,hist,frac_prevs,length")
    ap.add_argument("--methods", default="eap,patching")
    ap.add_argument("--ablations", default="resample,zero")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--no-results-md", action="store_true")
    args = ap.parse_args(argv)

    from rasplab.analysis.scoreboard import make_cells

    programs, methods, ablations = _csv(args.programs), _csv(args.methods), _csv(args.ablations)
    cells = make_cells(programs, ["compiled"], methods, ablations, [0], args.samples)
    runs = []
    for w in [int(x) for x in _csv(args.workers)]:
        print(f"workers={w}: {len(cells)} cells ...", file=sys.stderr, flush=True)
        runs.append(measure(cells, w))
        print(f"  {runs[-1]['wall_s']} s", file=sys.stderr, flush=True)
    identical = all(r["scores"] == runs[0]["scores"] for r in runs)
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "cpus": os.cpu_count(), "python": platform.python_version(),
              "programs": programs, "methods": methods, "ablations": ablations,
              "samples": args.samples, "cells": len(cells), "identical": identical,
              "runs": [{k: v for k, v in r.items() if k != "scores"} for r in runs]}
    out = REPO / "results" / "sweep_scaling.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    text = summary(result)
    if not args.no_results_md:
        update_results_md(text)
    print(text)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
