#!/usr/bin/env python3
"""How a scoreboard sweep scales with local workers (1 vs 2 processes), and what the whole
clean-rung scoreboard costs on a quiet machine.

Runs the same small scoreboard (``--programs`` x every method x zero/mean/resample, seed 0,
``--samples`` inputs: the real cell mix) through ``rasplab.sweep.run_sweep`` once per
worker count. Each run is a fresh Python process with its own empty JAX compilation cache
(so the second run does not reuse what the first compiled: both pay the cold start the
full scoreboard pays) and its own cell store. Reported per run: wall time, CPU time (the
process and its workers, all threads), cells per minute, speed-up over one worker, and
the machine's load average before and after (a load above the CPU count means other work
shared the machine, which slows both sides). The scores of every run are checked to be
identical.

``--store DIR`` (the full scoreboard's cell store, e.g. from ``experiments/scoreboard.py
--workers 2 --store DIR``) adds the estimate for the whole scoreboard: the summed CPU time
of its stored cells (each cell records its worker's CPU time), plus, for the programs not
in the store yet, a fit of CPU seconds per program against the size of its complete
component graph (edges) over every program measured; scaled by the measured runs' wall
time per second of cell CPU time, that is the whole scoreboard's wall time with 1 and 2
workers on a machine like the one the runs saw (quiet, if it was).

Writes ``results/sweep_scaling.json`` and replaces the sweep section of
``benchmarks/RESULTS.md`` (between its ``sweep`` markers, appended if absent). About 3-4
minutes on a quiet 2-core machine with the defaults.

    .venv/bin/python benchmarks/sweep_scaling.py [--workers 1,2] [--programs a,b]
        [--store results/scoreboard_cells]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_md import replace_section

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS_MD = HERE / "RESULTS.md"
MARK_START = "<!-- sweep:start (written by benchmarks/sweep_scaling.py) -->"
MARK_END = "<!-- sweep:end -->"
DEFAULT_PROGRAMS = "hist,frac_prevs,copy_first,sort_unique"
METHODS = "patching,acdc,eap,eap_ig,sp"
ABLATIONS = "zero,mean,resample"
FULL_CELLS_PER_PROGRAM = 15  # 5 methods x 3 ablations


#: Kept in the section whenever it is rewritten (measured once, by hand; see the issue 15
#: report): where a scoreboard cell's time goes.
PROFILE_NOTE = """### Where the scoreboard's time goes (cProfile; issue 15)

Profiled serially on a cold JAX cache (`cProfile` over `analysis.scoreboard.run_cell`,
reverse and sort_freq, 30 cells: 68 s wall, 49 s CPU, machine shared with other work):
**XLA compilation 40 s** (63 compiles, but per program five large ones, 3-6 s each under
load: the captured forward pass, the vmapped effects chunk the ground truth and ACDC use,
the vmapped metric, its gradient for EAP / EAP-IG / SP, and SP's optimiser step; everything
else compiles in < 0.1 s), the ground-truth searches 25 s (their compile included), and
waiting on results (`numpy.asarray`) 15 s. On the biggest programs (shuffle_dyck2,
unmatched_openers, ~200 edges in the complete graph) the three ground truths are about 40%
of the program's cell time and EAP's gradient compile alone ~60 s wall under load.

Already in place before this: cells of one program go to one worker, which keeps its
session (compiled model, samples, experiments, ground truths) across the 15 cells; jitted
functions are cached per graph and shared by the three ablations; the persistent
compilation cache (`~/.cache/rasplab/jax`) makes a rerun skip XLA. Added: a pool starts
the biggest programs first (no long tail on 2 workers), a worker lets the last program's
compiled code go when it moves on, and every cell records its CPU time next to its wall
time. Scores and circuits are byte-identical before and after (sort + reverse, 30 cells).
Tried and dropped: `XLA_FLAGS=--xla_backend_optimization_level=0` was 25% slower in all
and changed scores.

### The whole clean-rung scoreboard, measured

`python experiments/scoreboard.py --workers 2 --name scoreboard_full` on 2026-12-02
04:19-04:40 UTC, quiet 2-core machine (nothing else running): all 172 programs x 5 methods
x 3 ablations = 2580 cells in **21 min 04 s** wall (2455 s of cell CPU time), 0 failed cells;
target under 30 min. JAX's persistent compilation cache held entries from earlier runs on
this machine for part of the programs, so a first run on a fresh machine pays more XLA
compiling; the cold-cache estimate above (a fit over four small programs, extrapolated to
172) says ~40 min, and how much of the gap is the cache and how much the fit is not
measured. Report: `results/scoreboard_full.md`."""


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _cells(programs, methods, ablations, samples):
    from rasplab.analysis.scoreboard import make_cells

    return make_cells(programs, ["compiled"], methods, ablations, [0], samples)


def child(args) -> int:
    """One measured run (in its own process): the sweep, then a JSON line on stdout."""
    from rasplab.analysis.scoreboard import group_key, load_records, run_cell

    from rasplab.sweep import Store, run_sweep

    cells = _cells(_csv(args.programs), _csv(args.methods), _csv(args.ablations), args.samples)
    store = Store(args.child_store)
    c0 = time.process_time()
    t0 = time.perf_counter()
    report = run_sweep(run_cell, cells, store, workers=args.child, group_by=group_key,
                       progress=False)
    wall = time.perf_counter() - t0
    own = time.process_time() - c0
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    records = load_records(store, cells)
    per_program: dict[str, float] = {}
    for r in records:
        per_program[r.program] = per_program.get(r.program, 0.0) + r.cpu_seconds
    scores = {f"{r.label}/{r.ablation}/{r.method}":
              {k: v for k, v in (r.scores or {"error": r.error}).items()
               if not k.endswith("seconds")} for r in records}
    print(json.dumps({"wall_s": wall, "cpu_s": own + kids.ru_utime + kids.ru_stime,
                      "cells": report.ran, "per_program_cpu": per_program,
                      "scores": scores}, default=str))
    return 0


def measure(args, workers: int) -> dict:
    """Run :func:`child` in a fresh process with an empty compilation cache."""
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as d:
        env = {**os.environ, "RASPLAB_JAX_CACHE": str(Path(d) / "jax")}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(workers),
               "--child-store", str(Path(d) / "cells"), "--programs", args.programs,
               "--methods", args.methods, "--ablations", args.ablations,
               "--samples", str(args.samples)]
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        total = time.perf_counter() - t0
        load_after = os.getloadavg()[0]
    if proc.returncode != 0:
        raise SystemExit(f"sweep_scaling: the {workers}-worker run failed:\n{proc.stderr}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"workers": workers, "cells": data["cells"], "wall_s": round(data["wall_s"], 2),
            "process_s": round(total, 2), "cpu_s": round(data["cpu_s"], 2),
            "cells_per_min": round(60 * data["cells"] / data["wall_s"], 2),
            "load_before": round(load_before, 2), "load_after": round(load_after, 2),
            "per_program_cpu": data["per_program_cpu"], "scores": data["scores"]}


def _edges() -> dict[str, int]:
    """Edges of every library program's complete component graph (numpy only, ~2 s)."""
    from rasplab.analysis.interventions import edge_graph
    from rasplab.compiler import compile_program
    from rasplab.programs import registry

    out = {}
    for name in registry.program_names():
        spec = registry.get(name)
        try:
            compiled = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
            out[name] = edge_graph(compiled, complete=True).n_edges
        except Exception:  # noqa: BLE001 - a program that fails costs ~nothing
            out[name] = 0
    return out


def estimate_full(store_dir: Path, measured: dict[str, float], runs: list[dict]) -> dict:
    """The whole clean-rung scoreboard's CPU time: stored cells' own, plus a fit (CPU
    seconds per program ~ a + b * edges) for the programs not complete in the store."""
    import numpy as np
    from rasplab.analysis.scoreboard import ScoreCell

    from rasplab.sweep import Store

    cpu: dict[str, float] = {}
    wall: dict[str, float] = {}
    count: dict[str, int] = {}
    for cell, result in Store(store_dir).results(ScoreCell):
        if cell.rung != "compiled":
            continue
        cpu[cell.program] = cpu.get(cell.program, 0.0) + result.get("cpu_seconds", 0.0)
        wall[cell.program] = wall.get(cell.program, 0.0) + result.get("wall_seconds", 0.0)
        count[cell.program] = count.get(cell.program, 0) + 1
    done = {p: c for p, c in cpu.items() if count[p] >= FULL_CELLS_PER_PROGRAM}
    edges = _edges()
    sample = {**measured, **done}  # CPU seconds per whole program
    x = np.array([edges[p] for p in sample], float)
    y = np.array([sample[p] for p in sample], float)
    fit = np.polyfit(x, y, 1) if len(sample) >= 2 else np.array([0.0, float(y.mean())])
    missing = [p for p in edges if p not in done]
    predicted = float(sum(max(0.0, np.polyval(fit, edges[p])) for p in missing))
    total = float(sum(done.values())) + predicted
    return {
        "store": str(store_dir), "programs": len(edges), "programs_done": len(done),
        "cells_done": int(sum(count[p] for p in done)),
        "cpu_done_s": round(float(sum(done.values())), 1),
        "wall_done_s": round(float(sum(wall[p] for p in done)), 1),
        "fit_cpu_per_program": {"intercept_s": round(float(fit[1]), 2),
                                "per_edge_s": round(float(fit[0]), 4),
                                "from_programs": len(sample)},
        "cpu_predicted_missing_s": round(predicted, 1), "cpu_total_s": round(total, 1),
        # each run's wall time per second of cell CPU time (the serial run's), measured on
        # the small scoreboard: start-up, set-up and parallel efficiency in one ratio
        **{f"quiet_wall_{r['workers']}_workers_s": round(total * r["wall_s"] / cell_cpu, 1)
           for r in runs if (cell_cpu := sum(measured.values())) > 0},
    }


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
        f"on {result['cpus']} CPUs. Each run is a fresh process with an empty JAX "
        "compilation cache; each worker pays its own JAX start-up and JIT. CPU: the run's "
        "process and its workers, all threads. Results identical across worker counts: "
        f"{'yes' if result['identical'] else 'NO'}.",
        "",
        "| workers | wall s | CPU s | cells/min | speed-up vs 1 | load avg before / after |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(f"| {r['workers']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                     f"{r['cells_per_min']:.1f} | {base / r['wall_s']:.2f}x | "
                     f"{r['load_before']:.1f} / {r['load_after']:.1f} |")
    lines += ["", f"Programs: {', '.join(result['programs'])}; methods: "
              f"{', '.join(result['methods'])}; ablations: {', '.join(result['ablations'])}. "
              "A load average above the CPU count means other work shared the machine."]
    est = result.get("full")
    if est:
        fit = est["fit_cpu_per_program"]
        one, two = est.get("quiet_wall_1_workers_s"), est.get("quiet_wall_2_workers_s")
        lines += [
            "", "### The whole clean-rung scoreboard (every program x 5 methods x 3 ablations)",
            "",
            f"From the cell store `{est['store']}`: {est['programs_done']} of "
            f"{est['programs']} programs complete ({est['cells_done']} cells), "
            f"{est['cpu_done_s']:.0f} s of CPU time ({est['wall_done_s']:.0f} s of cell wall "
            f"time under the load it ran in). The {est['programs'] - est['programs_done']} "
            f"others, from a fit over {fit['from_programs']} measured programs (CPU s per "
            f"program = {fit['intercept_s']:.1f} + {fit['per_edge_s']:.3f} x edges of its "
            f"complete graph): {est['cpu_predicted_missing_s']:.0f} s. In all "
            f"{est['cpu_total_s']:.0f} s of cell CPU time ({est['cpu_total_s'] / 60:.1f} min). "
            "Scaled by each run's wall time per second of cell CPU time on the small "
            "scoreboard above (start-up, set-up and parallel efficiency in one ratio): "
            + (f"{one / 60:.1f} min with 1 worker" if one else "")
            + (f", **{two / 60:.1f} min with 2 workers**" if two else "")
            + ", for a machine as loaded as it was during the runs above.",
        ]
    lines += ["", PROFILE_NOTE, MARK_END]
    return "\n".join(lines)


def update_results_md(text: str, path: Path = RESULTS_MD) -> None:
    replace_section(path, text, MARK_START, MARK_END)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", default=DEFAULT_PROGRAMS)
    ap.add_argument("--methods", default=METHODS)
    ap.add_argument("--ablations", default=ABLATIONS)
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--store", help="the full scoreboard's cell store, for the estimate")
    ap.add_argument("--no-results-md", action="store_true")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child-store", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)

    programs, methods, ablations = _csv(args.programs), _csv(args.methods), _csv(args.ablations)
    n_cells = len(_cells(programs, methods, ablations, args.samples))
    runs = []
    for w in [int(x) for x in _csv(args.workers)]:
        print(f"workers={w}: {n_cells} cells ...", file=sys.stderr, flush=True)
        runs.append(measure(args, w))
        print(f"  {runs[-1]['wall_s']} s wall, {runs[-1]['cpu_s']} s CPU", file=sys.stderr,
              flush=True)
    identical = all(r["scores"] == runs[0]["scores"] for r in runs)
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "cpus": os.cpu_count(), "python": platform.python_version(),
              "programs": programs, "methods": methods, "ablations": ablations,
              "samples": args.samples, "cells": n_cells, "identical": identical,
              "runs": [{k: v for k, v in r.items() if k != "scores"} for r in runs]}
    if args.store:
        serial = next((r for r in runs if r["workers"] == 1), runs[0])
        result["full"] = estimate_full(Path(args.store), serial["per_program_cpu"], runs)
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
