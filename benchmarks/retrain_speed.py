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
``results/bench_retrain.json``, after each program; rows of earlier runs (other programs
or weight decays) are kept unless ``--fresh``, so programs can be measured one at a time.

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
from results_md import replace_section

HERE = Path(__file__).resolve().parent
START, END = "<!-- retrain:start -->", "<!-- retrain:end -->"
TARGET = 0.995


def measure(name: str, steps: int, weight_decay: float | None = None) -> dict:
    spec = get(name)
    compiled = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    t0 = time.perf_counter()
    kw = {} if weight_decay is None else {"weight_decay": weight_decay}
    r = R.retrain(compiled, spec=spec, steps=steps, stop_at=TARGET, progress=False, **kw)
    wall = time.perf_counter() - t0
    t = r.trained
    warm = R.retrain(compiled, spec=spec, steps=100, stop_at=None, progress=False, seed=1,
                     **kw)
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
        "weight_decay": t.config.weight_decay,
    }


def section(records: list[dict], *, load: tuple) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        START,
        "## Retraining (rung 3): SIIT training speed",
        "",
        f"Written by `benchmarks/retrain_speed.py` on {now}; {os.cpu_count()} CPUs, "
        f"{platform.platform()}, jax {jax.__version__}; load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the start of the last run (a "
        "shared machine: with other jobs running, times are longer than on an idle one; "
        "each row's own load is in results/bench_retrain.json). "
        "InterpBench's settings (Adam betas 0.9/0.9, lr 1e-3, batch 256, clip 0.1, "
        "weights interchange 1 / strict 0.4 / behaviour 1) with our small initial writes "
        "and the weight decay in the table (0 = InterpBench's plain Adam); a step is three "
        "updates. "
        "Time to threshold: a fresh `retrain(stop_at=0.995)` (targets interpreted, XLA "
        "compile, training, a held-out check every 50 steps) until held-out accuracy, IIA "
        "and strict accuracy all reach 99.5%. Aim: under 5 minutes for a tracr-library "
        "program.",
        "",
        "| program | layers x heads, d_model, params | weight decay | steps to 99.5% | "
        "time (s) | accuracy | IIA | strict | steps/s | warm steps/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        a = r["architecture"]
        steps = str(r["steps_to_target"]) if r["reached"] else f"not reached ({r['steps']})"
        lines.append(
            f"| {r['program']} | {a['num_layers']} x {a['n_heads']}, {a['d_model']}, "
            f"{r['params']:,} | {r.get('weight_decay', 0.0):g} | {steps} | "
            f"{r['wall_s']:.0f} | {r['accuracy']:.4f} | "
            f"{r['iia']:.4f} | {r['strict']:.4f} | {r['steps_per_s']:.1f} | "
            f"{r['warm_steps_per_s']:.1f} |"
        )
    demo = HERE.parent / "models" / "demo" / "index.json"
    rows = [f for f in json.loads(demo.read_text())["files"] if f["rung"] == "retrained"] \
        if demo.exists() else []
    if rows:
        lines += ["", "The shipped demo models (`models/demo/index.json`, written by "
                  "`experiments/make_demo_variants.py` with the trainer's defaults; time "
                  "includes recomputing the resample ground truth on the trained and the "
                  "compiled model):", ""]
        for f in rows:
            steps = f"reached 99.5% at step {f['steps']}" if f["reached"] else \
                f"not reached in {f['steps']} steps"
            lines.append(f"- {f['program']}: {steps}, {f['seconds']:.0f} s; accuracy "
                         f"{f['accuracy']:.4f}, IIA {f['iia']:.4f}, strict {f['strict']:.4f}")
    lines.append(END)
    return "\n".join(lines)




def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--programs", default="hist,frac_prevs,sort_unique,reverse")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--weight-decay", type=float, default=None,
                    help="override the trainer's default (0 = InterpBench's plain Adam)")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--fresh", action="store_true",
                    help="forget the rows of earlier runs (results/bench_retrain.json)")
    args = ap.parse_args(argv)
    load = os.getloadavg()
    raw = HERE.parent / "results" / "bench_retrain.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    # earlier rows (other programs or weight decays) are kept; a rerun replaces its own
    records = json.loads(raw.read_text()) if raw.exists() and not args.fresh else []
    for name in [n.strip() for n in args.programs.split(",") if n.strip()]:
        rec = measure(name, args.steps, args.weight_decay)
        rec["load"] = list(load)
        print(json.dumps(rec), flush=True)
        records = [r for r in records if (r["program"], r.get("weight_decay", 0.0))
                   != (rec["program"], rec["weight_decay"])] + [rec]
        raw.write_text(json.dumps(records, indent=1))
        replace_section(Path(args.out), section(records, load=load), START, END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
