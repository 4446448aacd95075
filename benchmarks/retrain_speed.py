#!/usr/bin/env python3
"""Rung 3 speed: SIIT training steps per second and time to the 99.5% thresholds.

For each program (default: four small tracr-library programs), a fresh
``retrain(..., stop_at=0.995)`` in this process:

* **time to threshold**: wall time from the call to the result (sampling the inputs and
  interpreting every target and counterfactual, the XLA compile, training, the held-out
  check every 50 steps), and the step at which held-out accuracy, IIA and strict accuracy
  first all reached 99.5% (or "not reached" and the best seen);
* **steps/s**: steps over training seconds of the same run (each step is three optimizer
  updates: interchange, strict, behaviour; batch 256), and of a second, 100-step run with
  the compiled step already cached (``warm``).

Writes the section between the ``retrain`` markers of ``benchmarks/RESULTS.md`` (appended
if missing; the rest of the file is kept) and the raw numbers to
``results/bench_retrain.json``.

    .venv/bin/python benchmarks/retrain_speed.py [--programs hist,frac_prevs] [--steps 3000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import jax
from rasplab.compiler import compile_program
from rasplab.programs import get
from rasplab.variants import retrained as R

HERE = Path(__file__).resolve().parent
START, END = "<!-- retrain:start -->", "<!-- retrain:end -->"
TARGET = 0.995


def measure(name: str, steps: int) -> dict:
    spec = get(name)
    compiled = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    t0 = time.perf_counter()
    r = R.retrain(compiled, spec=spec, steps=steps, stop_at=TARGET, progress=False)
    wall = time.perf_counter() - t0
    t = r.trained
    warm = R.retrain(compiled, spec=spec, steps=100, stop_at=None, progress=False, seed=1)
    best = max(t.history, key=lambda h: min(h[1:]), default=(0, 0.0, 0.0, 0.0))
    m = t.metrics
    return {
        "program": name, "architecture": r.arch.to_dict(),
        "params": int(sum(v.size for v in t.params.values())),
        "reached": t.reached_at is not None, "steps_to_target": t.reached_at,
        "steps": t.step, "wall_s": wall, "prepare_s": t.prepare_seconds,
        "train_s": t.seconds, "steps_per_s": t.steps_per_s,
        "warm_steps_per_s": warm.trained.steps_per_s,
        "accuracy": m.accuracy, "iia": m.iia, "strict": m.strict,
        "best": {"step": best[0], "accuracy": best[1], "iia": best[2], "strict": best[3]},
    }


def section(records: list[dict], *, load: tuple) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        START,
        "## Retraining (rung 3): SIIT training speed",
        "",
        f"Written by `benchmarks/retrain_speed.py` on {now}; {os.cpu_count()} CPUs, "
        f"{platform.platform()}, jax {jax.__version__}; load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the start (a shared machine: "
        "with other jobs running, times are longer than on an idle one). "
        "InterpBench's settings (Adam betas 0.9/0.9, lr 1e-3, batch 256, clip 0.1, "
        "weights interchange 1 / strict 0.4 / behaviour 1); a step is three updates. "
        "Time to threshold: a fresh `retrain(stop_at=0.995)` (targets interpreted, XLA "
        "compile, training, a held-out check every 50 steps) until held-out accuracy, IIA "
        "and strict accuracy all reach 99.5%. Aim: under 5 minutes for a tracr-library "
        "program.",
        "",
        "| program | layers x heads, d_model, params | steps to 99.5% | time (s) | "
        "accuracy | IIA | strict | steps/s | warm steps/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        a = r["architecture"]
        steps = str(r["steps_to_target"]) if r["reached"] else f"not reached ({r['steps']})"
        lines.append(
            f"| {r['program']} | {a['num_layers']} x {a['n_heads']}, {a['d_model']}, "
            f"{r['params']:,} | {steps} | {r['wall_s']:.0f} | {r['accuracy']:.4f} | "
            f"{r['iia']:.4f} | {r['strict']:.4f} | {r['steps_per_s']:.1f} | "
            f"{r['warm_steps_per_s']:.1f} |"
        )
    lines.append(END)
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    old = path.read_text() if path.exists() else ""
    if START in old and END in old:
        head, rest = old.split(START, 1)
        new = head + text + rest.split(END, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--programs", default="hist,frac_prevs,sort_unique,reverse")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = ap.parse_args(argv)
    load = os.getloadavg()
    records = []
    for name in [n.strip() for n in args.programs.split(",") if n.strip()]:
        records.append(measure(name, args.steps))
        print(json.dumps(records[-1]), flush=True)
    write_section(Path(args.out), section(records, load=load))
    raw = HERE.parent / "results" / "bench_retrain.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
