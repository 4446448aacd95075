"""Wall time a user feels: `rasplab run` and `rasplab recover` against the floor of starting
Python, importing JAX and running one array operation, measured side by side in one run.

Each command runs in a fresh process, first with an empty JAX compilation cache (what the
first call of the day costs) and then again with the cache it filled (what every repeated
call costs; rasplab turns JAX's persistent cache on, `compiler/jax_cache.py`). Reported as
median seconds and as ratios to the floor; appends its section to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/cli_speed.py [--repeats 3] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_md import replace_section

ROOT = Path(__file__).resolve().parent.parent
FLOOR = [sys.executable, "-c",
         "import jax.numpy as jnp; jnp.ones(3).sum().block_until_ready()"]
COMMANDS = {
    "run reverse 1 2 3": ["run", "reverse", "1", "2", "3"],
    "recover reverse acdc zero": ["recover", "reverse", "--method", "acdc", "--ablation",
                                  "zero"],
    "recover frac_prevs eap resample": ["recover", "frac_prevs", "--method", "eap"],
}
TARGETS = {"run reverse 1 2 3": 1.5, "recover reverse acdc zero": 3.0,
           "recover frac_prevs eap resample": 3.0}
START, END = "<!-- cli-speed:start -->", "<!-- cli-speed:end -->"
SECTION = "## CLI wall time (benchmarks/cli_speed.py)"


def _time(cmd: list[str], cache: str) -> float:
    env = {**os.environ, "RASPLAB_JAX_CACHE": cache}
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    floor = statistics.median(_time(FLOOR, "off") for _ in range(args.repeats))
    rows = []
    for name, argv in COMMANDS.items():
        cmd = [sys.executable, "-m", "rasplab", *argv]
        cold, warm = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as cache:
                cold.append(_time(cmd, cache))
                warm.append(_time(cmd, cache))
        c, w = statistics.median(cold), statistics.median(warm)
        rows.append((name, c, w, w / floor, TARGETS[name]))
        print(f"{name}: cold {c:.2f} s, warm {w:.2f} s, {w / floor:.2f}x the floor",
              flush=True)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [SECTION, "",
             f"Floor (python + import jax + one op): {floor:.2f} s; median of {args.repeats} "
             f"fresh processes per cell, measured {when}.",
             "", "| command | empty cache s | warm cache s | warm / floor | target |",
             "|---|---|---|---|---|"]
    lines += [f"| `rasplab {n}` | {c:.2f} | {w:.2f} | {r:.2f}x | {t:.1f}x |"
              for n, c, w, r, t in rows]
    text = "\n".join([START, *lines, END]) + "\n"
    print(text)
    if not args.no_write:
        replace_section(ROOT / "benchmarks" / "RESULTS.md", text, START, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
