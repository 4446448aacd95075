#!/usr/bin/env python3
"""Rung 2 speed: training steps per second and time to 99.5% held-out accuracy.

For each program (default: the tracr paper's case studies and two small tracr-library
programs) at d = ceil(fraction * D):

* **time to 99.5%**: wall time of a fresh ``compress(..., stop_at=0.995)`` in this process,
  start to result (sampling and interpreting the inputs, the XLA compile, training, the
  held-out checks every 50 steps), and the steps it took;
* **steps/s**: a second run of 300 steps with the compiled training step already cached
  (batch 256, ``lax.scan`` chunks of 50 steps plus the held-out check after each chunk).

Writes the section between the ``compression`` markers of ``benchmarks/RESULTS.md``
(appended if missing; the rest of the file is kept) and the raw numbers to
``results/bench_compression.json``.

    .venv/bin/python benchmarks/compression_speed.py [--programs frac_prevs,sort_unique]
        [--fraction 0.75] [--steps 2000]
"""

from __future__ import annotations

# (Not named compression.py: jax imports a module called `compression`, which a script of
# that name in its own folder, first on sys.path, would shadow.)
import argparse
import datetime as dt
import json
import math
import os
import platform
import time
from pathlib import Path

import jax
from rasplab.compiler import compile_program
from rasplab.programs import get
from rasplab.variants import compressed as C
from results_md import replace_section

HERE = Path(__file__).resolve().parent
START, END = "<!-- compression:start -->", "<!-- compression:end -->"
TARGET = 0.995


def measure(name: str, fraction: float, steps: int) -> dict:
    spec = get(name)
    compiled = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    D = compiled.config.d_model
    d = max(1, min(D, math.ceil(fraction * D)))
    t0 = time.perf_counter()
    c = C.compress(compiled, d, spec=spec, steps=steps, stop_at=TARGET, progress=False)
    wall = time.perf_counter() - t0
    warm = C.compress(compiled, d, spec=spec, steps=steps, stop_after=300, progress=False,
                      seed=1)
    return {
        "program": name, "D": D, "d": d, "reached": c.heldout.inputs >= TARGET,
        "heldout": c.heldout.inputs, "steps_to_target": c.steps_done,
        "wall_to_target_s": wall, "steps_per_s": warm.steps_per_s,
    }


def section(records: list[dict], *, fraction: float, load: tuple) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        START,
        "## Compression (rung 2): training speed",
        "",
        f"Written by `benchmarks/compression_speed.py` on {now}; {os.cpu_count()} CPUs, "
        f"{platform.platform()}, jax {jax.__version__}; load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the start (a shared machine). "
        f"d = ceil({fraction} x D). Time to 99.5%: a fresh `compress(stop_at=0.995)` in a "
        "warm process (sampling and interpreting the inputs, the XLA compile, training, a "
        "held-out check every 50 steps). Steps/s: 300 more steps with the training step "
        "already compiled (batch 256). Aim: a tracr-library program compressed in under "
        "1 minute.",
        "",
        "| program | D | d | steps to 99.5% | time to 99.5% (s) | held-out | steps/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        steps = str(r["steps_to_target"])
        if not r["reached"]:
            steps = f"not reached ({steps})"
        lines.append(
            f"| {r['program']} | {r['D']} | {r['d']} | {steps} | {r['wall_to_target_s']:.1f} | "
            f"{r['heldout']:.4f} | {r['steps_per_s']:.1f} |"
        )
    lines.append(END)
    return "\n".join(lines)




def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--programs", default="frac_prevs,sort_unique,length,hist")
    ap.add_argument("--fraction", type=float, default=0.75)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = ap.parse_args(argv)
    load = os.getloadavg()
    records = []
    for name in [n.strip() for n in args.programs.split(",") if n.strip()]:
        records.append(measure(name, args.fraction, args.steps))
        print(json.dumps(records[-1]))
    replace_section(Path(args.out), section(records, fraction=args.fraction, load=load), START, END)
    raw = HERE.parent / "results" / "bench_compression.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
