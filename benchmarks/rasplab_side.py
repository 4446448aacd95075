"""The rasplab side of the side-by-side benchmark (measured in-process, rasplab's venv).

What is measured for one program (a library ``ProgramSpec`` or any object with ``name``,
``build()``, ``vocab``, ``max_seq_len``), with field names matching ``tracr_side.py``'s
records where the quantity is the same:

* shape, from ``CompiledProgram.stats()``: layers, heads (most in one layer and in all),
  d_model, MLP hidden (widest layer and all layers), total and non-zero parameters;
* compile time: ``compile_program(program, vocab, max_seq_len)`` on an already built
  program, first call in this process and the median of ``repeats`` more (numpy only);
* forward throughput: ``Model(compiled).forward(ids)`` (jitted; it returns the final
  residual stream, which is what ``decode`` reads), batch 256 at full length (BOS +
  max_seq_len positions), uniform random tokens, ``block_until_ready``; each timed run
  repeats the call until it lasts about 0.1 s, the median over ``repeats`` runs after a
  warm-up is reported; tokens/s counts every position, BOS included -- exactly how
  ``tracr_side.py`` times tracr's jitted forward;
* correctness: the decoded output against ``rasp.evaluate`` with ``check_program``'s rules
  (every input when there are at most 10,000, else ``check_samples`` sampled from the spec
  and uniformly), batched in the forward measurement's own shape (no extra XLA compile);
* cold compile: a fresh ``python`` process that compiles the program and exits
  (``rasplab compile NAME --json`` when the CLI exists, else an equivalent ``-c`` snippet),
  wall time from start to exit, median of ``cold_runs``; one extra run under
  ``-X importtime`` confirms that compiling never imports JAX.

Everything returns plain JSON-ready dicts; nothing here raises for one bad program: a
``CompileError`` is recorded as a refusal (``error_stage == "compile"``).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rasplab.compiler.jsonvalues import plain_value

REPO = Path(__file__).resolve().parent.parent
FORWARD_BATCH = 256
EXHAUSTIVE_LIMIT = 10_000
MIN_RUN_S = 0.1  # one timed forward run repeats the call until it lasts this long


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def time_forward(
    fn: Callable[[], Any], repeats: int, min_run_s: float = MIN_RUN_S
) -> dict[str, Any]:
    """Median seconds per call of a jitted ``fn`` (returns a JAX array), after warm-up.

    The first call (tracing + XLA compile) is reported as ``jit_s``; then 3 warm-up calls;
    then ``repeats`` timed runs of ``inner`` back-to-back calls each, ending with
    ``block_until_ready`` (calls are dispatched asynchronously, so this measures throughput).
    """
    jit_s, _ = _timed(lambda: fn().block_until_ready())
    for _ in range(3):
        fn().block_until_ready()
    one, _ = _timed(lambda: fn().block_until_ready())
    inner = max(1, min(1000, int(min_run_s / max(one, 1e-6))))
    per_call: list[float] = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        for _ in range(inner):
            y = fn()
        y.block_until_ready()
        per_call.append((time.perf_counter() - t0) / inner)
    return {
        "jit_s": jit_s,
        "median_s": statistics.median(per_call),
        "runs_s": per_call,
        "calls_per_run": inner,
    }


def measure_program(
    spec: Any,
    *,
    repeats: int = 5,
    check_samples: int = 2000,
    forward: bool = True,
    check: bool = True,
    vocab: Any = None,
    max_seq_len: int | None = None,
) -> dict[str, Any]:
    """One record for ``spec`` (see the module docstring). ``vocab``/``max_seq_len``
    override the spec's (then the check samples uniformly, the spec's samplers describe
    its own domain only)."""
    from rasplab.compiler import CompileError, compile_program
    from rasplab.compiler.graph import trace
    from rasplab.compiler.layout import chain_lower_bound

    vocab = list(spec.vocab if vocab is None else vocab)
    max_len = int(spec.max_seq_len if max_seq_len is None else max_seq_len)
    rec: dict[str, Any] = {
        "name": spec.name,
        "vocab": [v if isinstance(v, (int, str)) else repr(v) for v in vocab],
        "max_seq_len": max_len,
        "ok": False,
        "error": None,
        "error_stage": None,
    }
    stage = "build"
    t_start = time.perf_counter()
    try:
        program = spec.build()
        stage = "compile"
        first, compiled = _timed(lambda: compile_program(program, vocab, max_len))
        rec["compile_first_s"] = first
        warm = []
        for _ in range(max(1, repeats)):
            dt, compiled = _timed(lambda: compile_program(program, vocab, max_len))
            warm.append(dt)
        rec["compile_warm_s"] = statistics.median(warm)
        rec["compile_warm_runs"] = warm
        st = compiled.stats()
        cfg = compiled.config
        rec.update(
            layers=int(st["layers"]),
            layers_lower_bound=chain_lower_bound(trace(program)),
            heads_per_layer=int(st["heads"]),
            heads_total=int(st["heads_total"]),
            d_model=int(st["d_model"]),
            mlp_hidden=int(st["mlp_hidden"]),
            mlp_hidden_total=int(st["mlp_hidden_total"]),
            params=int(st["params"]),
            nonzero_params=int(st["nonzero_params"]),
            key_size=int(cfg.key_size),
            output_encoding=compiled.output_variable.encoding,
        )
        model = None
        if forward or check:
            stage = "model"
            from rasplab.compiler.model import Model

            model = Model(compiled)
        if forward:
            stage = "forward"
            import jax.numpy as jnp

            rng = np.random.default_rng(1)
            batch = [
                [vocab[int(i)] for i in rng.integers(0, len(vocab), size=max_len)]
                for _ in range(FORWARD_BATCH)
            ]
            ids = jnp.asarray(model.encode(batch, width=max_len + 1))
            t = time_forward(lambda: model.forward(ids), repeats)
            rec["forward_jit_s"] = t["jit_s"]
            rec["forward_batch"] = FORWARD_BATCH
            rec["forward_positions"] = max_len + 1
            rec["forward_ms"] = t["median_s"] * 1e3
            rec["forward_ms_runs"] = [x * 1e3 for x in t["runs_s"]]
            rec["forward_calls_per_run"] = t["calls_per_run"]
            rec["tokens_per_s"] = FORWARD_BATCH * (max_len + 1) / t["median_s"]
        if check:
            stage = "check"
            same_domain = vocab == list(spec.vocab) and max_len == spec.max_seq_len
            rec.update(
                check_against_interpreter(
                    program,
                    compiled,
                    model,
                    spec=spec if same_domain else None,
                    vocab=vocab,
                    max_seq_len=max_len,
                    samples=check_samples,
                )
            )
        rec["ok"] = True
    except Exception as exc:  # record, never raise: one program must not stop the run
        refused = type(exc).__name__ == "CompileError" or isinstance(exc, CompileError)
        rec["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        rec["error_stage"] = "compile" if refused and stage == "compile" else stage
        if not refused:
            rec["traceback"] = traceback.format_exc()[-3000:]
    rec["wall_s"] = time.perf_counter() - t_start
    return rec


def check_against_interpreter(
    program: Any,
    compiled: Any,
    model: Any,
    *,
    spec: Any = None,
    vocab: list,
    max_seq_len: int,
    samples: int = 2000,
    inputs: list[list] | None = None,
    seed: int = 0,
    exhaustive_limit: int = EXHAUSTIVE_LIMIT,
) -> dict[str, Any]:
    """The compiled model against ``rasp.evaluate``: ``rasplab.compiler.check.check_program`` (the
    library's checker), its result as this benchmark's record fields."""
    from rasplab.compiler.check import check_program

    res = check_program(spec if spec is not None else program, vocab, max_seq_len,
                        compiled=compiled, model=model, samples=samples, seed=seed,
                        exhaustive_limit=exhaustive_limit, inputs=inputs, max_examples=3)
    return {
        "check_inputs": res.checked,
        "check_exhaustive": res.exhaustive,
        "mismatches": res.mismatches,
        "outside_domain": res.outside_domain,
        "unclean": res.unclean,
        "check_s": res.seconds,
        "mismatch_examples": [{"input": _plain(m.input), "expected": _plain(m.expected),
                               "got": _plain(m.got)} for m in res.examples],
    }


_plain = plain_value


# ---------------------------------------------------------------------------------------
# Cold compile: a fresh process per run
# ---------------------------------------------------------------------------------------

_SNIPPET = (
    "import sys, json\n"
    "from rasplab.compiler import compile_program\n"
    "from rasplab.programs import get\n"
    "s = get(sys.argv[1])\n"
    "c = compile_program(s.build(), s.vocab, s.max_seq_len)\n"
    "print(json.dumps(c.stats()))\n"
    "sys.exit(3 if 'jax' in sys.modules else 0)\n"
)


def _cli_available(python: str) -> bool:
    """Whether ``python -m rasplab compile length --json`` works in this checkout."""
    if not (REPO / "rasplab" / "__main__.py").exists():
        return False
    try:
        p = subprocess.run(
            [python, "-m", "rasplab", "compile", "length", "--json"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0


def cold_command(name: str, python: str | None = None, use_cli: bool | None = None) -> list[str]:
    python = python or sys.executable
    if use_cli is None:
        use_cli = _cli_available(python)
    if use_cli:
        return [python, "-m", "rasplab", "compile", name, "--json"]
    return [python, "-c", _SNIPPET, name]


def cold_compile(name: str, runs: int, cmd: list[str]) -> dict[str, Any]:
    """Wall time of ``cmd`` from spawn to exit, ``runs`` times; median and all runs."""
    env = dict(os.environ)
    times, rcs = [], []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t0)
        rcs.append(p.returncode)
    return {
        "name": name,
        "cold_s": statistics.median(times),
        "cold_runs": times,
        "returncodes": sorted(set(rcs)),
        "ok": all(rc == 0 for rc in rcs),
    }


def imports_jax(cmd: list[str]) -> tuple[bool, int]:
    """Run ``cmd`` once under ``-X importtime``; (whether any jax module was imported, rc)."""
    full = [cmd[0], "-X", "importtime", *cmd[1:]]
    p = subprocess.run(full, cwd=REPO, capture_output=True, text=True)
    mods = [line.rsplit("|", 1)[-1].strip() for line in p.stderr.splitlines() if "|" in line]
    return any(m == "jax" or m.startswith("jax.") or m == "jaxlib" for m in mods), p.returncode


def versions() -> dict[str, str]:
    import platform
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("rasplab", "jax", "jaxlib", "flax", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out
