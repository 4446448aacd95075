#!/usr/bin/env python3
"""rasplab vs tracr, side by side, in one run: what ``make bench`` runs.

For every library program (``rasplab.programs.list_programs()``), in this order, one
thing at a time so that both sides see the same machine state:

1. rasplab, in this process (``rasplab_side.measure_program``): size from
   ``CompiledProgram.stats()``, warm compile time (median), jitted batch-256 forward
   throughput, and exactness against ``rasp.evaluate``;
2. rasplab cold: ``rasplab compile NAME --json`` in a fresh process, median wall time,
   plus one run under ``-X importtime`` to confirm that compiling never imports JAX;
3. the scaling sweep (``scaling.py``): max_seq_len 8..64, vocab 5..50, reverse 5..40;
4. tracr, in its own venv (``.tracr-venv``, made by ``benchmarks/setup_tracr.sh``):
   ``tracr_side.py`` measures every program in a fresh process (size, first and warm
   compile, jitted forward throughput with the same batch and timing loop, mismatches
   against tracr's own interpreter) and reverse at 5/10/20/40. Without the venv this
   step is skipped with a note.

Then ``benchmarks/RESULTS.md`` is rewritten (a summary, a row per program, a table per
program, the scaling summary, the machine and the date) and the raw records go to
``results/bench.json`` (git-ignored). A run of a subset (``--programs``, ``--quick``)
writes ``results/RESULTS-partial.md`` instead, unless ``--out`` says otherwise.

    .venv/bin/python benchmarks/run.py                       # everything (~15 min, 2 cores)
    .venv/bin/python benchmarks/run.py --quick               # 7 programs, fewer repeats
    .venv/bin/python benchmarks/run.py --programs reverse,hist --no-scaling
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import rasplab_side  # noqa: E402
import scaling  # noqa: E402

RESULTS_DIR = REPO / "results"
RESULTS_MD = HERE / "RESULTS.md"
TRACR_PYTHON = REPO / ".tracr-venv" / "bin" / "python"
QUICK_PROGRAMS = ["length", "reverse", "hist", "sort_unique", "sort", "sort_freq", "frac_prevs"]


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Running the two sides
# ---------------------------------------------------------------------------------------


def tracr_status(python: Path) -> tuple[bool, str]:
    """Whether the tracr venv can run tracr_side.py; a note saying why not."""
    if not python.exists():
        return False, (
            f"{python.relative_to(REPO) if python.is_relative_to(REPO) else python} does "
            "not exist: run `bash benchmarks/setup_tracr.sh` to create the tracr venv"
        )
    if not (HERE / "tracr_side.py").exists():
        return False, "benchmarks/tracr_side.py is missing"
    try:
        p = subprocess.run(
            [str(python), "-c", "import tracr.compiler.compiling, haiku, jax"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"the tracr venv does not start: {exc}"
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["?"])[-1]
        return False, f"tracr is not importable in the tracr venv ({last}); rerun setup_tracr.sh"
    return True, ""


def run_tracr(
    python: Path,
    names: list[str],
    repeats: int,
    with_scaling: bool,
    timeout: float,
    log_file: Path | None = None,
) -> dict[str, Any]:
    """``tracr_side.py`` for ``names`` (and/or its scaling suite) in the tracr venv.

    Its progress lines (stderr) go to ``log_file``; returns its JSON, or ``{"error": ...}``.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / "tracr-part.json"
    if out.exists():
        out.unlink()
    cmd = [
        str(python),
        str(HERE / "tracr_side.py"),
        "--repeats",
        str(repeats),
        "--timeout",
        str(timeout),
        "--out",
        str(out),
    ]
    if names:
        cmd += ["--programs", ",".join(names)]
    if with_scaling:
        cmd.append("--scaling")
    t0 = time.perf_counter()
    err = subprocess.DEVNULL if log_file is None else log_file.open("a")
    try:
        # a generous outer limit: tracr_side.py kills its own workers after `timeout`
        n_jobs = len(names) + (6 if with_scaling else 0)
        p = subprocess.run(
            cmd,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=err,
            timeout=n_jobs * (timeout + 30) + 60,
        )
        rc: Any = p.returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    finally:
        if log_file is not None:
            err.close()
    wall = time.perf_counter() - t0
    if rc != 0 or not out.exists():
        return {
            "error": f"tracr_side.py exited with {rc} (log: {log_file})",
            "records": [],
            "wall_s": wall,
        }
    data = json.loads(out.read_text())
    out.unlink()
    data["wall_s"] = wall
    return data


def run_paired(
    specs: list[Any],
    repeats: int,
    check_samples: int,
    tracr_python: Path | None,
    tracr_timeout: float,
) -> tuple[list[dict], dict[str, Any]]:
    """Each program on the rasplab side, then at once on the tracr side (when
    ``tracr_python``), so both are timed within seconds of each other on this shared
    machine. Returns (rasplab records, tracr data with its records merged)."""
    from tqdm import tqdm

    ours: list[dict] = []
    tracr: dict[str, Any] = {"records": [], "meta": None, "wall_s": 0.0, "errors": []}
    log_file = RESULTS_DIR / "tracr-log.txt"
    if tracr_python is not None:
        log_file.write_text("")
    # warm-up: the first compile and the first jit in a process pay for imports
    rasplab_side.measure_program(specs[0], repeats=1, check=False)
    bar = tqdm(specs, desc="programs (rasplab, then tracr)", file=sys.stderr)
    for spec in bar:
        bar.set_postfix_str(f"{spec.name}: rasplab")
        rec = rasplab_side.measure_program(spec, repeats=repeats, check_samples=check_samples)
        if not rec["ok"]:
            tqdm.write(f"[bench] rasplab {spec.name}: {rec['error'][:200]}", file=sys.stderr)
        elif rec.get("mismatches"):
            tqdm.write(
                f"[bench] rasplab {spec.name}: {rec['mismatches']} MISMATCHES", file=sys.stderr
            )
        ours.append(rec)
        if tracr_python is None:
            continue
        bar.set_postfix_str(f"{spec.name}: tracr")
        data = run_tracr(tracr_python, [spec.name], repeats, False, tracr_timeout, log_file)
        tracr["wall_s"] += data.get("wall_s", 0.0)
        if data.get("error"):
            tracr["errors"].append(f"{spec.name}: {data['error']}")
            tqdm.write(f"[bench] tracr {spec.name}: {data['error']}", file=sys.stderr)
            continue
        tracr["meta"] = tracr["meta"] or data.get("meta")
        for t in data.get("records", []):
            tracr["records"].append(t)
            if not t.get("ok") and "layers" not in t:
                tqdm.write(
                    f"[bench] tracr {spec.name}: {t.get('error_stage')}: "
                    f"{str(t.get('error'))[:150]}",
                    file=sys.stderr,
                )
    return ours, tracr


def run_cold(specs: list[Any], runs: int) -> dict[str, Any]:
    from tqdm import tqdm

    cmd0 = rasplab_side.cold_command(specs[0].name)
    via = "cli" if "-m" in cmd0 else "snippet"
    probe = next((s.name for s in specs if s.name == "reverse"), specs[0].name)
    jax_imported, rc = rasplab_side.imports_jax(
        rasplab_side.cold_command(probe, use_cli=via == "cli")
    )
    out: dict[str, Any] = {
        "via": via,
        "command": "python -m rasplab compile NAME --json"
        if via == "cli"
        else "python -c '<compile_program(get(NAME))>' NAME",
        "imports_jax": jax_imported,
        "imports_jax_probe": probe,
        "probe_rc": rc,
        "runs": runs,
        "records": {},
    }
    bar = tqdm(specs, desc="cold compile", file=sys.stderr)
    for spec in bar:
        bar.set_postfix_str(spec.name)
        cmd = rasplab_side.cold_command(spec.name, use_cli=via == "cli")
        out["records"][spec.name] = rasplab_side.cold_compile(spec.name, runs, cmd)
    return out


# ---------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------


def _gmean(xs: list[float]) -> float:
    xs = [x for x in xs if x and x > 0 and math.isfinite(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def _i(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else "–"


def _ms(x: Any) -> str:
    if not isinstance(x, (int, float)):
        return "–"
    ms = x * 1e3
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 1000 else f"{ms:,.0f}"


def _rate(x: Any) -> str:
    if not isinstance(x, (int, float)):
        return "–"
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k"


def _x(a: Any, b: Any) -> str:
    """a / b as a factor."""
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not b:
        return "–"
    r = a / b
    return f"{r:.1f}×" if r >= 10 else f"{r:.2f}×"


def _vocab_text(vocab: list) -> str:
    text = ",".join(str(v) for v in vocab)
    return "{" + (text if len(text) <= 14 else text[:12] + "…") + "}"


def _tracr_check(t: dict | None) -> str:
    if t is None:
        return "not run"
    if not t.get("ok") and "layers" not in t:
        return (
            "refused"
            if t.get("error_stage") in ("compile", "build")
            else (f"failed ({t.get('error_stage')})")
        )
    if "mismatches" not in t:
        return f"failed ({t.get('error_stage')})" if t.get("error") else "–"
    how = "all" if t.get("check_inputs_how") == "exhaustive" else "sampled"
    s = f"{t['mismatches']} / {t['check_inputs']} ({how})"
    if not t["mismatches"]:
        return s
    real = _wrong_values(t)
    if real is not None and real < t["mismatches"]:
        return f"**{s}**, {real} wrong beyond None"
    return f"**{s}**"


def _wrong_values(t: dict) -> int | None:
    """Inputs tracr gets wrong where its interpreter's output holds no None (tracr cannot
    output None, so a None position is always 'wrong'); None when not recorded."""
    v = t.get("mismatches_non_none")
    return int(v) if isinstance(v, int) else None


def _our_check(r: dict) -> str:
    if not r.get("ok"):
        return "refused" if r.get("error_stage") == "compile" else f"failed ({r['error_stage']})"
    if "mismatches" not in r:
        return "–"
    how = "all" if r.get("check_exhaustive") else "sampled"
    s = f"{r['mismatches']} / {r['check_inputs']} ({how})"
    return f"**{s}**" if r["mismatches"] else s


def _short_error(e: str | None, n: int = 220) -> str:
    e = (e or "").replace("\n", " ").replace("|", "\\|")
    return e if len(e) <= n else e[: n - 1] + "…"


def tracr_cold(t: dict | None) -> float | None:
    if t and isinstance(t.get("compile_first_s"), (int, float)):
        return float(t.get("import_s") or 0.0) + float(t["compile_first_s"])
    return None


def comparisons(ours: list[dict], tracr: dict[str, dict], cold: dict | None) -> dict[str, Any]:
    """The ratios over programs both sides compiled."""
    both = [
        (r, tracr[r["name"]])
        for r in ours
        if r.get("ok") and r["name"] in tracr and "layers" in tracr[r["name"]]
    ]
    c: dict[str, Any] = {"both": [r["name"] for r, _ in both]}
    c["more_layers"] = [
        (r["name"], r["layers"], t["layers"]) for r, t in both if r["layers"] > t["layers"]
    ]
    c["fewer_layers"] = [r["name"] for r, t in both if r["layers"] < t["layers"]]
    c["same_layers"] = [r["name"] for r, t in both if r["layers"] == t["layers"]]

    def ratios(key_o: str, key_t: str, ours_over: bool = False) -> list[float]:
        out = []
        for r, t in both:
            a, b = r.get(key_o), t.get(key_t)
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a and b:
                out.append(a / b if ours_over else b / a)
        return out

    for label, ko, kt, over in (
        ("params", "params", "params", False),
        ("nonzero", "nonzero_params", "nonzero_params", False),
        ("d_model", "d_model", "d_model", False),
        ("compile", "compile_warm_s", "compile_warm_s", False),
        ("throughput", "tokens_per_s", "tokens_per_s", True),
    ):
        xs = ratios(ko, kt, over)
        c[label] = {
            "n": len(xs),
            "gmean": _gmean(xs),
            "median": statistics.median(xs) if xs else float("nan"),
            "min": min(xs) if xs else float("nan"),
            "max": max(xs) if xs else float("nan"),
        }
    best = []
    for r, t in both:
        a, b = r.get("forward_ms_runs"), t.get("forward_ms_runs")
        if a and b:
            best.append(min(b) / min(a))
    c["throughput_best"] = {
        "n": len(best),
        "gmean": _gmean(best),
        "median": statistics.median(best) if best else float("nan"),
        "min": min(best) if best else float("nan"),
        "max": max(best) if best else float("nan"),
    }
    c["wider"] = [
        (r["name"], k, r[k], t[k])
        for r, t in both
        for k in ("d_model", "mlp_hidden", "params")
        if isinstance(r.get(k), int) and isinstance(t.get(k), int) and r[k] > t[k]
    ]
    c["nonzero_more"] = [
        (r["name"], r["nonzero_params"], t["nonzero_params"])
        for r, t in both
        if r.get("nonzero_params", 0) > t.get("nonzero_params", 1 << 62)
    ]
    c["slower"] = [
        (r["name"], r["tokens_per_s"], t["tokens_per_s"])
        for r, t in both
        if r.get("tokens_per_s") and t.get("tokens_per_s") and r["tokens_per_s"] < t["tokens_per_s"]
    ]
    if cold:
        ours_cold = [
            cold["records"][r["name"]]["cold_s"] for r, _ in both if r["name"] in cold["records"]
        ]
        theirs = [tracr_cold(t) for _, t in both if tracr_cold(t)]
        c["cold"] = {
            "ours_median": statistics.median(ours_cold) if ours_cold else None,
            "tracr_median": statistics.median(theirs) if theirs else None,
        }
    return c


def _stat(d: dict, fmt: str = "{:.1f}×") -> str:
    if not d["n"]:
        return "–"
    return (
        f"geometric mean {fmt.format(d['gmean'])}, median {fmt.format(d['median'])}, "
        f"range {fmt.format(d['min'])}–{fmt.format(d['max'])} ({d['n']} programs)"
    )


def machine_info() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def render(data: dict[str, Any]) -> str:
    ours: list[dict] = data["rasplab"]
    tr: dict = data.get("tracr") or {}
    tmap = {r["name"]: r for r in tr.get("records", []) if r.get("suite") == "programs"}
    tscal = [r for r in tr.get("records", []) if r.get("suite") == "scaling"]
    t_reverse = {r["max_seq_len"]: r for r in tscal if r.get("name") == "reverse"}
    t_length = [r for r in tscal if r.get("name") == "length"]
    cold = data.get("cold")
    cmp_ = comparisons(ours, tmap, cold)
    m = data["machine"]
    v = data["versions"]
    tv = (tr.get("meta") or {}).get("versions") or {}
    tracr_ran = bool(tmap)
    L: list[str] = []
    add = L.append

    add("# Benchmarks: rasplab vs tracr, side by side")
    add("")
    stages = data.get("stages_s") or {}
    add(
        f"Written by `make bench` (`benchmarks/run.py`) on {data['date']}; the whole run took "
        f"{data['wall_s'] / 60:.1f} min"
        + (
            " (" + ", ".join(f"{k} {v / 60:.1f} min" for k, v in stages.items()) + ")"
            if stages
            else ""
        )
        + ". Do not edit by hand: rerun the benchmark."
    )
    add("")
    add(
        f"Machine: {m['cpus']} CPUs ({m['cpu']}), {m['platform']}; load average "
        f"{data['load_start']} at the start, {data['load_end']} at the end (a shared machine: "
        "absolute times drift, ratios from the same run are what to read). "
        f"rasplab venv: Python {v.get('python')}, jax {v.get('jax')}, flax {v.get('flax')}, "
        f"numpy {v.get('numpy')}. "
        + (
            f"tracr venv: Python {tv.get('python')}, tracr-pypi {tv.get('tracr-pypi')}, "
            f"jax {tv.get('jax')}, dm-haiku {tv.get('dm-haiku')}, numpy {tv.get('numpy')}."
            if tv
            else "tracr: not run."
        )
    )
    add("")
    if not tracr_ran:
        add(
            f"**tracr was not measured in this run**: {data.get('tracr_note') or tr.get('error')}. "
            "Only the rasplab columns are filled; the reverse comparison below uses "
            "shared/ANCHORS.md's reference numbers."
        )
        add("")

    # ---- headline
    n_ok = sum(1 for r in ours if r.get("ok"))
    refused = [r for r in ours if not r.get("ok")]
    add("## Headline")
    add("")
    add(
        f"- **Programs**: {len(ours)} in the library; rasplab compiled {n_ok}"
        + (
            f" and refused {len(refused)} ({', '.join(r['name'] for r in refused)})"
            if refused
            else ""
        )
        + "."
    )
    bounded = [r for r in ours if r.get("ok") and "layers_lower_bound" in r]
    if bounded:
        above = [r for r in bounded if r["layers"] > r["layers_lower_bound"]]
        add(
            "- **Layers vs the lower bound** (the longest attention/MLP dependency chain of "
            "the program, read off the program alone by `compiler.layout.chain_lower_bound`): "
            f"rasplab reaches it on {len(bounded) - len(above)} of {len(bounded)}"
            + (
                "; above it on "
                + ", ".join(
                    f"{r['name']} ({r['layers']} vs {r['layers_lower_bound']})" for r in above
                )
                + " (a selector that ORs or negates comparisons of different variables "
                "needs an MLP that combines them first, `compiler/rewrite.py`; tracr refuses "
                "such selectors)"
                if above
                else ""
            )
            + "."
        )
    if tracr_ran:
        t_ok = [n for n, t in tmap.items() if "layers" in t]
        t_ref = [n for n, t in tmap.items() if "layers" not in t]
        add(
            f"- tracr compiled {len(t_ok)} and refused or failed on {len(t_ref)}"
            + (f" ({', '.join(t_ref)})" if t_ref else "")
            + f"; both compiled {len(cmp_['both'])}."
        )
        ml = cmp_["more_layers"]
        add(
            f"- **Layers**: rasplab has fewer layers than tracr on {len(cmp_['fewer_layers'])}, "
            f"as many on {len(cmp_['same_layers'])}, **more on {len(ml)}**"
            + (": " + ", ".join(f"{n} ({a} vs {b})" for n, a, b in ml) if ml else "")
            + "."
        )
        add(
            f"- **Parameters** (tracr ÷ rasplab): {_stat(cmp_['params'])}. Non-zero "
            f"parameters: {_stat(cmp_['nonzero'])}. d_model: {_stat(cmp_['d_model'], '{:.2f}×')}."
        )
        if cmp_["wider"]:
            label = {"d_model": "d_model", "mlp_hidden": "MLP width", "params": "parameters"}

            def wrong(name: str) -> str:  # tracr's smaller model may simply miss values
                t = tmap.get(name, {})
                bad = t.get("mismatches_non_none")
                return (
                    f", where tracr is wrong on {bad} of {t.get('check_inputs')} inputs"
                    if bad else ""
                )

            add(
                "  **rasplab is larger than tracr** in "
                + ", ".join(
                    f"{n} ({label[k]} {a:,} vs {b:,}{wrong(n)})" for n, k, a, b in cmp_["wider"]
                )
                + "."
            )
        if cmp_["nonzero_more"]:
            add(
                "  rasplab has more non-zero parameters than tracr on "
                + ", ".join(f"{n} ({a:,} vs {b:,})" for n, a, b in cmp_["nonzero_more"])
                + "."
            )
        add(
            f"- **Warm compile** (tracr ÷ rasplab, medians of repeated compiles): "
            f"{_stat(cmp_['compile'])}."
        )
        cc = cmp_.get("cold") or {}
        if cc.get("ours_median") and cc.get("tracr_median"):
            add(
                f"- **Cold compile**: `{cold['command']}` takes {cc['ours_median']:.2f} s "
                f"(median over programs of the median of {cold['runs']} fresh processes, "
                f"start to exit); tracr's import + first compile in a fresh process takes "
                f"{cc['tracr_median']:.2f} s (median; Python start-up not included), "
                f"{cc['tracr_median'] / cc['ours_median']:.1f}× longer."
            )
        add(
            f"- **Forward throughput** (rasplab ÷ tracr, tokens/s, jitted, batch 256 at full "
            f"length): {_stat(cmp_['throughput'], '{:.2f}×')}"
            + (
                f"; rasplab is slower on {len(cmp_['slower'])}: "
                + ", ".join(f"{n} ({a / b:.2f}×)" for n, a, b in cmp_["slower"])
                if cmp_["slower"]
                else ""
            )
            + ". Ratio of the best timed runs instead of the medians (less sensitive to "
            f"other load on the machine): {_stat(cmp_['throughput_best'], '{:.2f}×')}."
        )
    mism_ours = sum(r.get("mismatches", 0) for r in ours if r.get("ok"))
    checked_ours = sum(r.get("check_inputs", 0) for r in ours if r.get("ok"))
    add(
        f"- **Exactness**: rasplab {mism_ours} mismatching inputs out of {checked_ours:,} "
        "checked against `rasp.evaluate` (every input of the domain where there are at most "
        "10,000, else 2,000 sampled)."
    )
    if tracr_ran:
        wrong = [(n, t) for n, t in tmap.items() if t.get("mismatches")]
        real = [(n, t) for n, t in wrong if (_wrong_values(t) is None or _wrong_values(t) > 0)]
        only_none = [n for n, t in wrong if _wrong_values(t) == 0]
        add(
            "- **tracr against its own interpreter**: "
            + (
                "wrong values on "
                + "; ".join(
                    f"{n} ({_wrong_values(t) if _wrong_values(t) is not None else t['mismatches']}"
                    f" of {t['check_inputs']} inputs)"
                    for n, t in real
                )
                if real
                else "no wrong values"
            )
            + (
                "; wrong only where the interpreter says None, which tracr's models cannot "
                f"output, on {', '.join(only_none)}"
                if only_none
                else ""
            )
            + (
                "; at max_seq_len 16/32, `length` wrong on "
                + ", ".join(
                    f"{r.get('mismatches', '?')}/{r.get('check_inputs', '?')}"
                    f" (N={r['max_seq_len']})"
                    for r in t_length
                )
                if t_length
                else ""
            )
            + "."
        )
    if cold:
        probe_cmd = cold["command"].replace("NAME", cold["imports_jax_probe"])
        add(
            f"- **Compiling never imports JAX**: `{probe_cmd}` "
            f"under `python -X importtime`: "
            + (
                "no jax module imported."
                if not cold["imports_jax"]
                else "**JAX WAS IMPORTED** (a regression)."
            )
            + " (rasplab's numpy compiler; tracr builds its weights with JAX/Haiku.)"
        )
    rev = [r for r in (data.get("scaling") or {}).get("reverse", []) if r["max_seq_len"] == 40]
    if rev and rev[0].get("ok"):
        r40 = rev[0]
        t40 = t_reverse.get(40) if t_reverse.get(40, {}).get("params") else None
        ref = t40 or scaling.TRACR_REVERSE_REFERENCE[40]
        add(
            f"- **reverse at max_seq_len 40**: rasplab {r40['params']:,} parameters, MLP width "
            f"{r40['mlp_hidden']}, {r40.get('mismatches', '?')} mismatches on "
            f"{r40.get('check_inputs', '?')} inputs; tracr {ref['params']:,} parameters, MLP "
            f"width {ref['mlp_hidden']} ({'measured in this run' if t40 else 'ANCHORS.md'}): "
            f"{r40['params'] / ref['params']:.1%} of tracr's parameters."
        )
    add("")

    # ---- one row per program
    add("## Every program")
    add("")
    add(
        "rasplab / tracr in each cell; × = how many times better rasplab is (tracr ÷ rasplab "
        "for sizes and times, rasplab ÷ tracr for throughput). MLP width is the widest layer "
        "(tracr pads every layer to it; rasplab sizes each layer). Exact = mismatching inputs / "
        "inputs checked against each compiler's own `rasp.evaluate`."
    )
    add("")
    add(
        "| program | vocab, N | layers | d_model | MLP width | params | × | non-zero | × "
        "| warm compile ms | × | tokens/s | × | rasplab exact | tracr exact |"
    )
    add("|---|---|---|---|---|---|---:|---|---:|---|---:|---|---:|---|---|")
    for r in ours:
        t = tmap.get(r["name"])
        tt = t if t and "layers" in t else {}
        name = r["name"]
        dom = f"{_vocab_text(r['vocab'])}, {r['max_seq_len']}"
        if not r.get("ok"):
            add(
                f"| {name} | {dom} | refused | | | | | | | | | | | {_our_check(r)} "
                f"| {_tracr_check(t) if tracr_ran else 'not run'} |"
            )
            continue
        lay = f"{r['layers']} / {_i(tt.get('layers'))}"
        if tt.get("layers") is not None and r["layers"] > tt["layers"]:
            lay = f"**{lay}**"
        add(
            f"| {name} | {dom} | {lay} | {r['d_model']} / {_i(tt.get('d_model'))} "
            f"| {r['mlp_hidden']} / {_i(tt.get('mlp_hidden'))} "
            f"| {_i(r['params'])} / {_i(tt.get('params'))} | {_x(tt.get('params'), r['params'])} "
            f"| {_i(r['nonzero_params'])} / {_i(tt.get('nonzero_params'))} "
            f"| {_x(tt.get('nonzero_params'), r['nonzero_params'])} "
            f"| {_ms(r.get('compile_warm_s'))} / {_ms(tt.get('compile_warm_s'))} "
            f"| {_x(tt.get('compile_warm_s'), r.get('compile_warm_s'))} "
            f"| {_rate(r.get('tokens_per_s'))} / {_rate(tt.get('tokens_per_s'))} "
            f"| {_x(r.get('tokens_per_s'), tt.get('tokens_per_s'))} "
            f"| {_our_check(r)} | {_tracr_check(t) if tracr_ran else 'not run'} |"
        )
    add("")
    notes = [r for r in ours if not r.get("ok")]
    t_notes = [(n, t) for n, t in tmap.items() if "layers" not in t]
    if notes or t_notes:
        add("Refusals and failures:")
        add("")
        for r in notes:
            add(f"- rasplab, {r['name']} ({r['error_stage']}): {_short_error(r['error'], 400)}")
        for n, t in t_notes:
            add(f"- tracr, {n} ({t.get('error_stage')}): {_short_error(t.get('error'), 300)}")
        add("")

    # ---- scaling
    if data.get("scaling"):
        add(scaling.summary_markdown(data["scaling"], t_reverse or None))
        add("")
    else:
        add(scaling.MARK_START)
        add("## Scaling (rasplab)")
        add("")
        add("Not run this time (`--no-scaling`); `benchmarks/scaling.py` fills this section.")
        add(scaling.MARK_END)
        add("")

    # ---- per program
    add("## Per program")
    add("")
    add(
        "Times are medians. Warm compile: the same program object compiled again and again in "
        "one process (rasplab: numpy only; tracr: IR + JAX/Haiku weight assembly). First "
        "compile: rasplab's first `compile_program` of that program in the benchmark process "
        "(imports already done); tracr's first `compile_rasp_to_model` in a fresh process "
        "(JAX warm-up included). Cold: rasplab's whole fresh process; tracr's import + first "
        "compile. Forward: one jitted call on a batch of 256 × (1 + max_seq_len) positions; "
        "rasplab's returns the residual stream (what `decode` reads), tracr's the unembedded "
        "output."
    )
    add("")
    for r in ours:
        t = tmap.get(r["name"])
        tt = t if t and "layers" in t else {}
        c = (cold or {}).get("records", {}).get(r["name"], {})
        add(f"### {r['name']}")
        add("")
        add(
            f"vocab {_vocab_text(r['vocab'])}, max_seq_len {r['max_seq_len']}"
            + (f"; tracr output encoding {tt.get('output_encoding')}" if tt else "")
        )
        add("")
        if not r.get("ok"):
            add(f"rasplab refuses: {_short_error(r['error'], 600)}")
            add("")
        if t and not tt:
            add(f"tracr: {t.get('error_stage')}: {_short_error(t.get('error'), 400)}")
            add("")
        if not r.get("ok") and not tt:
            continue
        rows = [
            ("layers", r.get("layers"), tt.get("layers"), None),
            ("heads (most in a layer)", r.get("heads_per_layer"), tt.get("heads_per_layer"), None),
            (
                "heads (all layers)",
                r.get("heads_total"),
                (tt["layers"] * tt["heads_per_layer"]) if tt else None,
                "lo",
            ),
            ("d_model", r.get("d_model"), tt.get("d_model"), "lo"),
            ("MLP width (widest layer)", r.get("mlp_hidden"), tt.get("mlp_hidden"), "lo"),
            (
                "MLP hidden units (all layers)",
                r.get("mlp_hidden_total"),
                (tt["layers"] * tt["mlp_hidden"]) if tt else None,
                "lo",
            ),
            ("parameters", r.get("params"), tt.get("params"), "lo"),
            ("non-zero parameters", r.get("nonzero_params"), tt.get("nonzero_params"), "lo"),
        ]
        add("| | rasplab | tracr | rasplab advantage |")
        add("|---|---:|---:|---:|")
        for label, a, b, kind in rows:
            adv = (
                _x(b, a)
                if kind == "lo"
                else (f"{b - a:+d}" if isinstance(a, int) and isinstance(b, int) else "–")
            )
            add(f"| {label} | {_i(a)} | {_i(b)} | {adv} |")
        times = [
            ("warm compile (ms)", r.get("compile_warm_s"), tt.get("compile_warm_s")),
            ("first compile (ms)", r.get("compile_first_s"), tt.get("compile_first_s")),
            ("cold process (ms)", c.get("cold_s"), tracr_cold(tt)),
            (
                "forward, batch 256 (ms)",
                r["forward_ms"] / 1e3 if r.get("forward_ms") else None,
                tt["forward_ms"] / 1e3 if tt.get("forward_ms") else None,
            ),
        ]
        for label, a, b in times:
            # the two first compiles happen under different conditions: no ratio
            adv = "–" if label.startswith("first") else _x(b, a)
            add(f"| {label} | {_ms(a)} | {_ms(b)} | {adv} |")
        add(
            f"| tokens/s | {_rate(r.get('tokens_per_s'))} | {_rate(tt.get('tokens_per_s'))} "
            f"| {_x(r.get('tokens_per_s'), tt.get('tokens_per_s'))} |"
        )
        add(
            f"| mismatches vs own interpreter | {_our_check(r)} "
            f"| {_tracr_check(t) if tracr_ran else 'not run'} | |"
        )
        add("")
        ex = (t or {}).get("mismatch_examples") or []
        if ex:
            e = ex[0]
            add(
                f"tracr example: input {e.get('input')} → expected {e.get('expected')}, "
                f"got {e.get('got')}."
            )
            add("")
        ex = r.get("mismatch_examples") or []
        if ex:
            e = ex[0]
            add(
                f"**rasplab example**: input {e.get('input')} → expected {e.get('expected')}, "
                f"got {e.get('got')}."
            )
            add("")

    add("## How this was measured")
    add("")
    add(
        "- `make bench` = `.venv/bin/python benchmarks/run.py` (`--quick`, `--programs a,b`, "
        "`--no-tracr`, `--no-scaling` for subsets; see `--help`). tracr runs in "
        "`.tracr-venv` (`bash benchmarks/setup_tracr.sh`) via `benchmarks/tracr_side.py`, "
        "each program right after its rasplab measurement (so both are timed under the same "
        "machine load), and its reverse/length series right after scaling.py. Raw records: "
        "`results/bench.json`, "
        "`results/tracr.json`, `results/scaling.json`."
    )
    add(
        f"- Repeats: {data['settings']['repeats']} warm compiles and {data['settings']['repeats']} "
        "timed forward runs per program (each run repeats the call for at least 0.1 s) after "
        f"warm-up, both sides; cold compile: {data['settings']['cold_runs']} fresh processes."
    )
    add(
        "- Parameters count every weight array: for rasplab embeddings, attention, MLPs and the "
        "unembedding matrix; for tracr its Haiku params tree (embeddings, attention and MLP "
        "weights and their biases, which are all zero; tracr's unembedding is not a "
        "parameter). tracr pads every layer to the same head count and MLP width; rasplab "
        "sizes each layer.\n"
        "- Re-render this file from the raw records without measuring again: "
        "`.venv/bin/python benchmarks/run.py --from-json results/bench.json`."
    )
    add("")
    return "\n".join(L)


# ---------------------------------------------------------------------------------------


KEPT = (
    ("<!-- sweep:start (written by benchmarks/sweep_scaling.py) -->", "<!-- sweep:end -->"),
    ("<!-- recovery.py -->", "<!-- /recovery.py -->"),
    ("<!-- compression:start -->", "<!-- compression:end -->"),
    ("<!-- cli-speed:start -->", "<!-- cli-speed:end -->"),
    ("<!-- feature-speed:start -->", "<!-- feature-speed:end -->"),
)


def keep_other_sections(path: Path, text: str) -> str:
    """``text`` plus the sections other scripts keep in ``path`` between their markers
    (``KEPT``: sweep_scaling.py, recovery.py, compression_speed.py, cli_speed.py,
    feature_speed.py)."""
    old = path.read_text() if path.exists() else ""
    for start_mark, end_mark in KEPT:
        start, end = old.find(start_mark), old.find(end_mark)
        if start < 0 or end < start or start_mark in text:
            continue
        text = text.rstrip("\n") + "\n\n" + old[start : end + len(end_mark)] + "\n"
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", help="comma-separated library names (default: all)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"{len(QUICK_PROGRAMS)} programs, 3 repeats, quick scaling",
    )
    ap.add_argument("--repeats", type=int, help="warm compiles / timed forward runs (default 5)")
    ap.add_argument("--cold-runs", type=int, help="fresh processes per program (default 5)")
    ap.add_argument(
        "--check-samples",
        type=int,
        default=2000,
        help="sampled inputs when a domain has more than 10,000 (default 2000)",
    )
    ap.add_argument("--no-tracr", action="store_true", help="skip the tracr side")
    ap.add_argument("--no-scaling", action="store_true", help="skip scaling.py")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold-process timing")
    ap.add_argument(
        "--tracr-python",
        default=str(TRACR_PYTHON),
        help="the tracr venv's python (default .tracr-venv/bin/python)",
    )
    ap.add_argument(
        "--tracr-timeout",
        type=float,
        default=300.0,
        help="seconds per tracr program process (default 300)",
    )
    ap.add_argument(
        "--out",
        help="the markdown report (default benchmarks/RESULTS.md for a "
        "full run, results/RESULTS-partial.md otherwise)",
    )
    ap.add_argument(
        "--from-json",
        help="only re-render the report from a bench.json written by an earlier run",
    )
    args = ap.parse_args(argv)

    if args.from_json:
        data = json.loads(Path(args.from_json).read_text())
        out = (
            Path(args.out)
            if args.out
            else (
                RESULTS_DIR / "RESULTS-partial.md"
                if data["settings"].get("partial")
                else RESULTS_MD
            )
        )
        out.write_text(keep_other_sections(out, render(data)))
        log(f"wrote {out} from {args.from_json}")
        return 0

    from rasplab.programs import get, list_programs

    t_start = time.perf_counter()
    load_start = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    if args.programs:
        specs = [get(n.strip()) for n in args.programs.split(",") if n.strip()]
    elif args.quick:
        specs = [get(n) for n in QUICK_PROGRAMS]
    else:
        specs = list_programs()
    partial = bool(args.programs or args.quick)
    repeats = args.repeats or (3 if args.quick else 5)
    cold_runs = args.cold_runs or (3 if args.quick else 5)
    out = (
        Path(args.out)
        if args.out
        else (RESULTS_DIR / "RESULTS-partial.md" if partial else RESULTS_MD)
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)

    tracr_ok, tracr_note = (
        (False, "skipped (--no-tracr)") if args.no_tracr else tracr_status(Path(args.tracr_python))
    )
    if not tracr_ok:
        log(f"tracr side will be skipped: {tracr_note}")

    log(
        f"{len(specs)} programs, {repeats} repeats; tracr side "
        + ("right after each program" if tracr_ok else "skipped")
    )
    stages: dict[str, float] = {}
    t_stage = time.perf_counter()
    ours, tracr = run_paired(
        specs,
        repeats,
        args.check_samples,
        Path(args.tracr_python) if tracr_ok else None,
        args.tracr_timeout,
    )
    if tracr_ok and not tracr["records"]:
        tracr_note = "; ".join(tracr["errors"]) or "tracr_side.py gave no records"
    stages["programs (both sides)"] = time.perf_counter() - t_stage
    cold = None
    if not args.no_cold:
        t_stage = time.perf_counter()
        cold = run_cold(specs, cold_runs)
        stages["cold compile"] = time.perf_counter() - t_stage
        log(f"cold compile via {cold['via']}; imports JAX: {cold['imports_jax']}")
    scal = None
    if not args.no_scaling:
        t_stage = time.perf_counter()
        scal = scaling.run_scaling(quick=args.quick)
        stages["scaling (rasplab)"] = time.perf_counter() - t_stage
        if tracr_ok:
            log("tracr side: reverse at 5/10/20/40, length at 16/32")
            data = run_tracr(
                Path(args.tracr_python),
                [],
                repeats,
                True,
                args.tracr_timeout,
                RESULTS_DIR / "tracr-log.txt",
            )
            tracr["wall_s"] += data.get("wall_s", 0.0)
            stages["scaling (tracr)"] = data.get("wall_s", 0.0)
            tracr["records"] += data.get("records", [])
            if data.get("error"):
                tracr["errors"].append(f"scaling: {data['error']}")
                log(f"tracr scaling failed: {data['error']}")
    if tracr_ok:
        (RESULTS_DIR / ("tracr-partial.json" if partial else "tracr.json")).write_text(
            json.dumps(tracr, indent=1, default=str) + "\n"
        )

    data = {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine_info(),
        "versions": rasplab_side.versions(),
        "settings": {
            "repeats": repeats,
            "cold_runs": cold_runs,
            "quick": args.quick,
            "programs": [s.name for s in specs],
            "partial": partial,
            "check_samples": args.check_samples,
        },
        "load_start": load_start,
        "load_end": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
        "stages_s": stages,
        "rasplab": ours,
        "cold": cold,
        "scaling": scal,
        "tracr": tracr,
        "tracr_note": tracr_note,
    }
    data["wall_s"] = time.perf_counter() - t_start
    if scal:
        t_rev = {
            r["max_seq_len"]: r
            for r in tracr.get("records", [])
            if r.get("suite") == "scaling" and r.get("name") == "reverse"
        }
        scaling.write_outputs(scal, tracr_reverse=t_rev or None)
    (RESULTS_DIR / ("bench-partial.json" if partial else "bench.json")).write_text(
        json.dumps(data, indent=1, default=str) + "\n"
    )
    text = keep_other_sections(out, render(data))
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    log(f"wrote {out} in {data['wall_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
