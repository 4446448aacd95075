#!/usr/bin/env python3
"""How rasplab's compile time and model size grow with max_seq_len and vocabulary size.

Programs (tracr's library versions, from ``rasplab.programs.tracr_lib``), integer tokens
``1..V``:

* ``length``, ``reverse``, ``hist``, ``frac_prevs`` (fraction of 1s so far), on uniform
  random inputs;
* ``sort_unique`` on inputs of distinct tokens (its domain), lengths up to ``min(N, V)``;
* ``sort`` (tracr's ``make_sort``: keys made unique as ``key + i / N``, so its key
  variable takes ``V * N`` values and the model grows with their square).

Grid: max_seq_len N in 8/16/32/64 at vocab 50, and vocab V in 5/10/25/50 at max_seq_len 64
(the two sweeps meet at N=64, V=50). At every point: layers, d_model, MLP width, total and
non-zero parameters, compile time (median of up to 3, numpy only). At N=64, V=50 (every
point with ``--check-all``) the compiled model is checked against ``rasp.evaluate`` on
sampled inputs, half of them at the longest length; the count of mismatching inputs is
reported (it must be 0). ``reverse`` is also compiled and checked at max_seq_len
5/10/20/40 with vocab {1,2,3}, tracr's ``reverse`` series.

Writes ``results/scaling.json``, ``results/scaling.md``, ``results/scaling.png`` and
replaces the scaling summary in ``benchmarks/RESULTS.md`` (between its ``scaling``
markers; ``--no-results-md`` leaves it alone). ``benchmarks/run.py`` imports this module
and puts the same summary in the RESULTS.md it writes.

    .venv/bin/python benchmarks/scaling.py [--quick] [--check-all] [--samples N]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from results_md import replace_section

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import rasplab_side  # noqa: E402

RESULTS_DIR = REPO / "results"
RESULTS_MD = HERE / "RESULTS.md"
MARK_START = "<!-- scaling:start (written by benchmarks/scaling.py) -->"
MARK_END = "<!-- scaling:end -->"

PROGRAMS = ["length", "reverse", "hist", "frac_prevs", "sort_unique", "sort"]
LENGTHS = [8, 16, 32, 64]
VOCABS = [5, 10, 25, 50]
FIXED_VOCAB = 50  # for the max_seq_len sweep
FIXED_LEN = 64  # for the vocab sweep
REVERSE_LENGTHS = [5, 10, 20, 40]
# tracr's reverse (vocab {1,2,3}), shared/ANCHORS.md, for when tracr was not run
TRACR_REVERSE_REFERENCE = {
    5: {"layers": 4, "mlp_hidden": 30, "d_model": 41, "params": 18755},
    10: {"layers": 4, "mlp_hidden": 110, "d_model": 71, "params": 89880},
    20: {"layers": 4, "mlp_hidden": 420, "d_model": 131, "params": 534830},
    40: {"layers": 4, "mlp_hidden": 1640, "d_model": 251, "params": 3643530},
}
FLOP_BUDGET = 2e11  # per check batch: rows are cut so one forward stays near this


def build(name: str, max_seq_len: int) -> Any:
    from rasplab.compiler import rasp
    from rasplab.programs import tracr_lib as tl

    if name == "length":
        return tl.make_length()
    if name == "reverse":
        return tl.make_reverse(rasp.tokens)
    if name == "hist":
        return tl.make_hist()
    if name == "frac_prevs":
        return tl.make_frac_prevs(rasp.tokens == 1)
    if name == "sort_unique":
        return tl.make_sort_unique(rasp.tokens, rasp.tokens)
    if name == "sort":
        return tl.make_sort(rasp.tokens, rasp.tokens, max_seq_len=max_seq_len, min_key=1)
    raise ValueError(f"unknown scaling program {name!r}")


def sample_inputs(
    name: str, vocab: list, max_len: int, n: int, rng: np.random.Generator
) -> list[list]:
    """Half at the longest length allowed, half at uniform lengths."""
    distinct = name == "sort_unique"
    top = min(max_len, len(vocab)) if distinct else max_len
    out = []
    for k in range(n):
        length = top if k % 2 == 0 else int(rng.integers(1, top + 1))
        if distinct:
            out.append([vocab[int(i)] for i in rng.permutation(len(vocab))[:length]])
        else:
            out.append([vocab[int(i)] for i in rng.integers(0, len(vocab), size=length)])
    return out


def _check_batch(params: int, max_len: int) -> int:
    rows = int(FLOP_BUDGET / max(1, 2 * params * (max_len + 1)))
    batch = 16
    while batch * 2 <= min(rows, 256):
        batch *= 2
    return batch


def measure_point(
    name: str,
    max_len: int,
    vocab_size: int,
    *,
    check: bool,
    samples: int,
    repeats: int = 3,
    budget_s: float = 15.0,
    vocab: list | None = None,
) -> dict[str, Any]:
    from rasplab.compiler import CompileError, compile_program

    vocab = list(vocab) if vocab is not None else list(range(1, vocab_size + 1))
    rec: dict[str, Any] = {
        "program": name,
        "max_seq_len": max_len,
        "vocab_size": len(vocab),
        "ok": False,
        "error": None,
    }
    try:
        program = build(name, max_len)
        times, spent = [], 0.0
        compiled = None
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            compiled = compile_program(program, vocab, max_len)
            dt = time.perf_counter() - t0
            times.append(dt)
            spent += dt
            if spent > budget_s / 3 or dt > 2.0:
                break
        st = compiled.stats()
        rec.update(
            compile_s=statistics.median(times),
            compile_runs=times,
            layers=st["layers"],
            heads=st["heads"],
            d_model=st["d_model"],
            mlp_hidden=st["mlp_hidden"],
            mlp_hidden_total=st["mlp_hidden_total"],
            params=st["params"],
            nonzero_params=st["nonzero_params"],
        )
        if check:
            from rasplab.compiler.model import Model

            model = Model(compiled)
            batch = _check_batch(st["params"], max_len)
            n = samples if batch >= 256 else min(samples, 4 * batch)
            rng = np.random.default_rng(max_len * 1000 + len(vocab))
            total = sum(len(vocab) ** k for k in range(1, max_len + 1))
            if name != "sort_unique" and total <= rasplab_side.EXHAUSTIVE_LIMIT:
                inputs = [  # every input, when there are few
                    list(t)
                    for k in range(1, max_len + 1)
                    for t in itertools.product(vocab, repeat=k)
                ]
            else:
                inputs = sample_inputs(name, vocab, max_len, n, rng)
            res = rasplab_side.check_against_interpreter(
                program,
                compiled,
                model,
                vocab=vocab,
                max_seq_len=max_len,
                inputs=inputs,
            )
            rec.update(
                check_inputs=res["check_inputs"],
                mismatches=res["mismatches"],
                outside_domain=res["outside_domain"],
                unclean=res["unclean"],
                check_s=res["check_s"],
                check_batch=batch,
                mismatch_examples=res["mismatch_examples"],
            )
        rec["ok"] = True
    except CompileError as exc:
        rec["error"] = f"CompileError: {exc}"
    except Exception as exc:  # noqa: BLE001 - recorded, the sweep goes on
        rec["error"] = f"{type(exc).__name__}: {exc}"
    return rec


def run_scaling(
    *,
    quick: bool = False,
    check_all: bool = False,
    samples: int = 512,
    reverse_samples: int = 2000,
    progress: bool = True,
) -> dict[str, Any]:
    """Every grid point and the reverse series; a JSON-ready dict."""
    from tqdm import tqdm

    programs = ["length", "reverse", "sort_unique", "frac_prevs"] if quick else PROGRAMS
    lengths = [8, 64] if quick else LENGTHS
    vocabs = [5, 50] if quick else VOCABS
    points: list[tuple[str, int, int]] = []
    for name in programs:
        for n in lengths:
            points.append((name, n, FIXED_VOCAB))
        for v in vocabs:
            if (name, FIXED_LEN, v) not in points:
                points.append((name, FIXED_LEN, v))
    jobs = [("grid", *p) for p in points]
    jobs += [("reverse", "reverse", n, 3) for n in REVERSE_LENGTHS]
    t0 = time.perf_counter()
    measure_point("length", 8, 5, check=False, samples=0)  # warm-up: imports, caches
    grid, reverse = [], []
    bar = tqdm(jobs, desc="scaling", file=sys.stderr, disable=not progress, leave=True)
    for kind, name, n, v in bar:
        bar.set_postfix_str(f"{name} N={n} V={v}")
        if kind == "grid":
            corner = n == FIXED_LEN and v == FIXED_VOCAB
            grid.append(measure_point(name, n, v, check=corner or check_all, samples=samples))
        else:
            reverse.append(
                measure_point(name, n, v, check=True, samples=reverse_samples, vocab=[1, 2, 3])
            )
    return {
        "grid": grid,
        "reverse": reverse,
        "settings": {
            "programs": programs,
            "lengths": lengths,
            "vocabs": vocabs,
            "fixed_vocab": FIXED_VOCAB,
            "fixed_len": FIXED_LEN,
            "samples": samples,
            "reverse_samples": reverse_samples,
            "check_all": check_all,
            "quick": quick,
        },
        "wall_s": time.perf_counter() - t0,
    }


# ---------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------


def _fmt_int(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) else "–"


def _fmt_s(x: Any) -> str:
    if not isinstance(x, (int, float)):
        return "–"
    return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.2f} s"


def _growth(xs: list[float], ys: list[float]) -> str:
    """The exponent of a power-law fit y ~ x^k (log-log least squares)."""
    pairs = [(x, y) for x, y in zip(xs, ys) if x > 0 and y and y > 0]
    if len(pairs) < 2:
        return "–"
    lx = np.log([p[0] for p in pairs])
    ly = np.log([p[1] for p in pairs])
    k = np.polyfit(lx, ly, 1)[0]
    return f"{k:.1f}"


def _point(grid: list[dict], name: str, n: int, v: int) -> dict | None:
    for r in grid:
        if r["program"] == name and r["max_seq_len"] == n and r["vocab_size"] == v:
            return r
    return None


def _check_cell(r: dict | None) -> str:
    if r is None or "mismatches" not in r:
        return "–"
    extra = f", {r['outside_domain']} outside" if r.get("outside_domain") else ""
    return f"{r['mismatches']} / {r['check_inputs']}{extra}"


def grid_table(result: dict) -> str:
    grid = result["grid"]
    s = result["settings"]
    lines = [
        "| program | N | V | layers | d_model | MLP width | params | non-zero | compile "
        "| mismatches / checked |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in s["programs"]:
        rows = [r for r in grid if r["program"] == name]
        rows.sort(
            key=lambda r: (r["vocab_size"] != s["fixed_vocab"], r["max_seq_len"], r["vocab_size"])
        )
        for r in rows:
            if not r["ok"]:
                lines.append(
                    f"| {name} | {r['max_seq_len']} | {r['vocab_size']} | "
                    f"refused: {r['error'][:150]} |||||||"
                )
                continue
            lines.append(
                f"| {name} | {r['max_seq_len']} | {r['vocab_size']} | {r['layers']} | "
                f"{r['d_model']:,} | {r['mlp_hidden']:,} | {r['params']:,} | "
                f"{r['nonzero_params']:,} | {_fmt_s(r['compile_s'])} | {_check_cell(r)} |"
            )
    return "\n".join(lines)


def growth_table(result: dict) -> str:
    grid = result["grid"]
    s = result["settings"]
    fv, fl = s["fixed_vocab"], s["fixed_len"]
    lines = [
        f"| program | params at N={s['lengths'][0]}→{s['lengths'][-1]} (V={fv}) | exponent "
        f"| compile | exponent | params at V={s['vocabs'][0]}→{s['vocabs'][-1]} (N={fl}) "
        "| exponent | compile | exponent | exact at N=64, V=50 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in s["programs"]:
        by_n = [_point(grid, name, n, fv) for n in s["lengths"]]
        by_v = [_point(grid, name, fl, v) for v in s["vocabs"]]

        def span(rows: list[dict | None], key: str, fmt: Callable[[Any], str]) -> str:
            a, b = rows[0], rows[-1]
            if not (a and b and a["ok"] and b["ok"]):
                return "–"
            return f"{fmt(a[key])} → {fmt(b[key])}"

        def expo(rows: list[dict | None], xs: list[int], key: str) -> str:
            ok = [(x, r[key]) for x, r in zip(xs, rows) if r and r["ok"]]
            return _growth([x for x, _ in ok], [y for _, y in ok])

        corner = _point(grid, name, fl, fv)
        lines.append(
            f"| {name} | {span(by_n, 'params', _fmt_int)} | {expo(by_n, s['lengths'], 'params')} "
            f"| {span(by_n, 'compile_s', _fmt_s)} | {expo(by_n, s['lengths'], 'compile_s')} "
            f"| {span(by_v, 'params', _fmt_int)} | {expo(by_v, s['vocabs'], 'params')} "
            f"| {span(by_v, 'compile_s', _fmt_s)} | {expo(by_v, s['vocabs'], 'compile_s')} "
            f"| {_check_cell(corner)} |"
        )
    return "\n".join(lines)


def reverse_table(result: dict, tracr: dict[int, dict] | None = None) -> str:
    """Ours vs tracr's reverse at 5/10/20/40; ``tracr`` maps N -> a tracr_side record
    (measured in this run); missing lengths fall back to the ANCHORS reference."""
    lines = [
        "| max_seq_len | layers (ours / tracr) | d_model | MLP width | params | "
        "params ours/tracr | non-zero (ours / tracr) | compile (ours / tracr) | "
        "ours: mismatches / checked | tracr source |",
        "|---:|---|---|---|---|---:|---|---|---|---|",
    ]
    for r in result["reverse"]:
        n = r["max_seq_len"]
        t = (tracr or {}).get(n)
        src = "measured, this run"
        if not t or "params" not in t:
            t = TRACR_REVERSE_REFERENCE.get(n, {})
            src = "ANCHORS.md reference" if t else "–"
        if not r["ok"]:
            lines.append(f"| {n} | ours refused: {r['error'][:150]} |||||||| {src} |")
            continue

        def pair(key: str, ours: dict = r, theirs: dict = t) -> str:
            return f"{_fmt_int(ours.get(key))} / {_fmt_int(theirs.get(key))}"

        ratio = f"{r['params'] / t['params']:.3f}" if t.get("params") else "–"
        tc = t.get("compile_warm_s")
        lines.append(
            f"| {n} | {pair('layers')} | {pair('d_model')} | {pair('mlp_hidden')} | "
            f"{pair('params')} | {ratio} | {pair('nonzero_params')} | "
            f"{_fmt_s(r['compile_s'])} / {_fmt_s(tc)} | {_check_cell(r)} | {src} |"
        )
    return "\n".join(lines)


def summary_markdown(result: dict, tracr_reverse: dict[int, dict] | None = None) -> str:
    s = result["settings"]
    grid = result["grid"]
    corner = [
        r
        for r in grid
        if r["max_seq_len"] == s["fixed_len"] and r["vocab_size"] == s["fixed_vocab"]
    ]
    checked = [r for r in corner if "mismatches" in r]
    bad = [r for r in corner if not r["ok"] or r.get("mismatches")]
    rev40 = next((r for r in result["reverse"] if r["max_seq_len"] == 40), None)
    parts = [
        MARK_START,
        "## Scaling (rasplab)",
        "",
        f"`benchmarks/scaling.py` (took {result['wall_s']:.0f} s): tracr's library programs "
        f"with integer tokens 1..V, max_seq_len N in {s['lengths']} at V={s['fixed_vocab']} "
        f"and V in {s['vocabs']} at N={s['fixed_len']}. Full table and plot: "
        "`results/scaling.md`, `results/scaling.png`.",
        "",
    ]
    if checked:
        total = sum(r["check_inputs"] for r in checked)
        mism = sum(r["mismatches"] for r in checked)
        parts.append(
            f"**At N={s['fixed_len']}, V={s['fixed_vocab']}**: {len(corner) - len(bad)} of "
            f"{len(corner)} programs compiled and exact; {mism} mismatching inputs out of "
            f"{total} sampled against `rasp.evaluate` (half of them at full length)."
            + (
                " Problems: "
                + "; ".join(
                    f"{r['program']}: {r.get('error') or str(r.get('mismatches')) + ' mismatches'}"
                    for r in bad
                )
                if bad
                else ""
            )
        )
        parts.append("")
    parts += [
        "Growth (exponent = slope of a log-log fit; params ∝ N^k):",
        "",
        growth_table(result),
        "",
        "`sort` is tracr's `make_sort`: its unique key `key + i/N` takes V·N values, so the "
        "lookup MLP and the comparison head grow with V·N and the parameters with (V·N)²; "
        "`sort_unique` compares the tokens themselves.",
        "",
        "### reverse at max_seq_len 5/10/20/40 (vocab {1,2,3}), ours vs tracr",
        "",
        reverse_table(result, tracr_reverse),
        "",
    ]
    if rev40 and rev40["ok"]:
        t40 = (tracr_reverse or {}).get(40) or TRACR_REVERSE_REFERENCE[40]
        frac = rev40["params"] / t40["params"]
        verdict = "within" if frac <= 0.25 else "NOT within"
        parts.append(
            f"At max_seq_len 40 ours has {rev40['params']:,} parameters, {frac:.1%} of "
            f"tracr's {t40['params']:,} ({verdict} the 25% target), MLP width "
            f"{rev40['mlp_hidden']} vs {t40.get('mlp_hidden')}, and "
            f"{rev40.get('mismatches', '?')} mismatches on {rev40.get('check_inputs', '?')} "
            "sampled inputs."
        )
        parts.append("")
    parts.append(MARK_END)
    return "\n".join(parts)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["settings"]
    grid = result["grid"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    sweeps = [
        ("max_seq_len", s["lengths"], lambda n: (n, s["fixed_vocab"]), f"V = {s['fixed_vocab']}"),
        ("vocab size", s["vocabs"], lambda v: (s["fixed_len"], v), f"N = {s['fixed_len']}"),
    ]
    for col, (xlabel, xs, key, fixed) in enumerate(sweeps):
        for name in s["programs"]:
            rows = [_point(grid, name, *key(x)) for x in xs]
            ok = [(x, r) for x, r in zip(xs, rows) if r and r["ok"]]
            if not ok:
                continue
            px = [x for x, _ in ok]
            axes[0, col].plot(px, [r["params"] for _, r in ok], "o-", label=name)
            axes[1, col].plot(px, [r["compile_s"] * 1e3 for _, r in ok], "o-", label=name)
        for row, ylabel in ((0, "parameters"), (1, "compile time (ms)")):
            ax = axes[row, col]
            ax.set_xscale("log", base=2)
            ax.set_xticks(xs)
            ax.set_xticklabels([str(x) for x in xs])
            ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.set_title(f"{ylabel} vs {xlabel} ({fixed})")
            ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("rasplab: model size and compile time vs max_seq_len and vocabulary")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(
    result: dict, results_dir: Path = RESULTS_DIR, tracr_reverse: dict[int, dict] | None = None
) -> dict[str, Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": results_dir / "scaling.json",
        "md": results_dir / "scaling.md",
        "png": results_dir / "scaling.png",
    }
    paths["json"].write_text(json.dumps(result, indent=1, default=str) + "\n")
    md = [
        "# rasplab scaling",
        "",
        summary_markdown(result, tracr_reverse),
        "",
        "## Every point",
        "",
        grid_table(result),
        "",
        "![scaling](scaling.png)",
        "",
    ]
    paths["md"].write_text("\n".join(md))
    plot(result, paths["png"])
    return paths


def update_results_md(summary: str, path: Path = RESULTS_MD) -> None:
    """Replace the scaling section of RESULTS.md (or append one)."""
    replace_section(path, summary, MARK_START, MARK_END)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 programs, N in 8/64, V in 5/50")
    ap.add_argument(
        "--check-all", action="store_true", help="check every grid point, not only N=64, V=50"
    )
    ap.add_argument(
        "--samples",
        type=int,
        default=512,
        help="sampled inputs per checked point (fewer for very large models)",
    )
    ap.add_argument(
        "--no-results-md", action="store_true", help="do not touch benchmarks/RESULTS.md"
    )
    args = ap.parse_args(argv)
    result = run_scaling(quick=args.quick, check_all=args.check_all, samples=args.samples)
    paths = write_outputs(result)
    if not args.no_results_md:
        update_results_md(summary_markdown(result))
        print(f"updated {RESULTS_MD}", file=sys.stderr)
    print("\n".join(f"wrote {p}" for p in paths.values()), file=sys.stderr)
    print(summary_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
