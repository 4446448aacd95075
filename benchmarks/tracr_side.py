#!/usr/bin/env python3
"""The tracr side of the side-by-side benchmark (rasplab vs DeepMind's tracr).

Runs INSIDE the tracr virtual environment (see ``benchmarks/setup_tracr.sh``); it never
imports rasplab's compiler. The programs come from rasplab's program library
(``programs/``), whose modules only do ``from rasplab.compiler import rasp``: before they
are imported this script installs an alias so that ``rasplab.compiler.rasp`` *is*
``tracr.rasp.rasp``, and ``rasplab.programs`` is the repository's ``programs/`` folder.
Both compilers therefore see the very same program definitions. Four inline programs
(length, reverse, frac_prevs, hist, written here with tracr's rasp) are a fallback for
names the library does not have (or with ``--source inline``).

Every program is measured in its own fresh Python process (so that "first compile" means
the first compile in a process, and so that a crash, hang or memory blow-up in one program
cannot stop the run); the worker writes its record to a file after every stage, so a
timed-out program still reports what it got to.

Per program (``compile_rasp_to_model(program, vocab, max_seq_len, compiler_bos="BOS",
compiler_pad="PAD")``, default ``mlp_exactness=100``):

* shape: layers, heads per layer, MLP hidden size, key size, d_model, total and non-zero
  parameter counts over the Haiku params tree;
* compile time: the first compile in the process (includes JAX's warm-up and the first
  time every shape is seen), the median of warm recompiles, and a split of one warm
  compile into tracr's "IR" stages (validate, graph, value sets, craft blocks) and its
  "assembly" stage (Haiku init + weight filling);
* forward throughput: ``jax.jit`` of the Haiku forward returning the unembedded output,
  batch 256 at full length (BOS + max_seq_len positions), median of ``--repeats`` timed
  runs after warm-up, ``block_until_ready``; tokens/s counts every position, BOS included;
* correctness: up to ``--max-inputs`` inputs (every valid input of length min_len..max_seq_len
  when there are no more, else the library's ``sample_clean(0, n)``, i.e. its own samplers
  with seed 0), the compiled model's decoded output against tracr's own ``rasp.evaluate``.
  Inputs are batched per length, without padding (tracr does not mask padding), so this
  measures tracr at its best.

Output: JSON (stdout, or ``--out FILE``) ``{"meta": {...}, "records": [...]}``; progress
goes to stderr. ``--scaling`` adds tracr's ``reverse`` at max_seq_len 5/10/20/40 and
``length`` at 16/32 (records with ``"suite": "scaling"``).

A record (fields after a failed stage are absent; times in seconds unless named ``_ms``)::

    schema, name, suite ("programs"|"scaling"), source ("library"|"inline"), vocab,
    max_seq_len, ok (bool), error (str|null), error_stage ("build"|"compile"|"forward"|
    "correctness"|"timeout"|"crash"|"lookup"|null), completed (stages done), traceback,
    import_s, output_encoding ("categorical"|"numerical"),
    layers, heads_per_layer, mlp_hidden, key_size, d_model, residual_labels,
    params, nonzero_params,
    compile_first_s, compile_warm_s (median), compile_warm_runs [..],
    compile_split {ir_s, assemble_s},
    forward_jit_s, forward_batch (256), forward_positions (max_seq_len+1), forward_ms (median
    per batch), forward_ms_runs [..], forward_calls_per_run, tokens_per_s,
    check_inputs, check_inputs_how ("exhaustive"|"library_sampler"|"uniform_random"),
    mismatches (inputs with any wrong position; a reference None counts as wrong, since a
    tracr model cannot output None), mismatches_non_none (inputs wrong at some position whose
    reference is not None: the miscompilations proper), mismatch_rate,
    mismatches_by_length {"L": {wrong, wrong_non_none, total}}, reference_none_rows (inputs
    whose reference output holds None), reference_errors (inputs on which rasp.evaluate
    raised; skipped), mismatch_examples [{input, expected, got}] (at most 5, wrong where the
    reference is not None), none_mismatch_examples (at most 2, wrong only at None positions),
    numerical_atol (1e-3), numerical_max_abs_err (numerical outputs only),
    check_apply_agreement [agree, probed] (batched jitted path vs tracr's own apply),
    check_eval_s, check_model_s, full_length_example {input, expected, got},
    worker_wall_s, process_wall_s

Usage::

    .tracr-venv/bin/python benchmarks/tracr_side.py [--programs a,b,c] [--repeats N]
        [--out FILE] [--scaling] [--timeout S] [--max-inputs N] [--source auto|library|inline]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import itertools
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SCHEMA_VERSION = 1
FORWARD_BATCH = 256
CHECK_CHUNK = 256
SCALING = [("reverse", [5, 10, 20, 40]), ("length", [16, 32])]


def log(msg: str) -> None:
    print(f"[tracr_side] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# The alias: rasplab.compiler.rasp -> tracr.rasp.rasp, rasplab.programs -> ./programs
# --------------------------------------------------------------------------------------


def install_alias() -> Any:
    """Make ``from rasplab.compiler import rasp`` give tracr's rasp; return that module."""
    try:
        from tracr.rasp import rasp as tracr_rasp
    except ImportError as exc:  # pragma: no cover - environment problem
        raise SystemExit(
            f"tracr is not importable from {sys.executable} ({exc}); run this script with "
            "the tracr venv: bash benchmarks/setup_tracr.sh && "
            ".tracr-venv/bin/python benchmarks/tracr_side.py"
        ) from exc
    existing = sys.modules.get("rasplab.compiler.rasp")
    if existing is tracr_rasp:
        return tracr_rasp
    pkg = types.ModuleType("rasplab")
    pkg.__path__ = []  # a package; its submodules all live in sys.modules
    pkg.__file__ = None
    comp = types.ModuleType("rasplab.compiler")
    comp.__path__ = []
    comp.rasp = tracr_rasp
    pkg.compiler = comp
    sys.modules["rasplab"] = pkg
    sys.modules["rasplab.compiler"] = comp
    sys.modules["rasplab.compiler.rasp"] = tracr_rasp
    return tracr_rasp


def load_library() -> tuple[Any | None, str | None]:
    """Import the repo's ``programs/`` as ``rasplab.programs``; (module or None, error)."""
    install_alias()
    init = REPO / "programs" / "__init__.py"
    if not init.exists():
        return None, f"{init} does not exist"
    if "rasplab.programs" in sys.modules:
        return sys.modules["rasplab.programs"], None
    spec = importlib.util.spec_from_file_location(
        "rasplab.programs", init, submodule_search_locations=[str(init.parent)]
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["rasplab.programs"] = mod
    sys.modules["rasplab"].programs = mod
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:
        del sys.modules["rasplab.programs"]
        return None, f"importing programs/: {type(exc).__name__}: {exc}"
    return mod, None


# --------------------------------------------------------------------------------------
# Program specs: the library's, adapted, and the inline fallback
# --------------------------------------------------------------------------------------


@dataclass
class Spec:
    name: str
    build: Callable[[], Any]
    vocab: list[Any]
    max_seq_len: int
    source: str  # "library" or "inline"
    min_len: int = 1
    lib: Any = None  # the library's ProgramSpec (its domain and samplers), if from there


def _inline_specs() -> dict[str, Spec]:
    rasp = install_alias()

    def length() -> Any:
        everything = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE)
        return rasp.SelectorWidth(everything).named("length")

    def reverse() -> Any:
        n = length()
        back = (n - rasp.indices).named("opp_idx")  # SequenceMap of length and position
        back = (back - 1).named("opp_idx-1")  # then a Map
        mirror = rasp.Select(rasp.indices, back, rasp.Comparison.EQ).named("reverse_select")
        return rasp.Aggregate(mirror, rasp.tokens).named("reverse")

    def frac_prevs() -> Any:
        is_x = rasp.numerical(rasp.tokens == "x").named("is_x")
        upto = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ).named("upto")
        return rasp.numerical(rasp.Aggregate(upto, is_x, default=0)).named("frac_prevs")

    def hist() -> Any:
        same = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ).named("same_tok")
        return rasp.SelectorWidth(same).named("hist")

    return {
        "length": Spec("length", length, [1, 2, 3], 5, "inline"),
        "reverse": Spec("reverse", reverse, [1, 2, 3], 5, "inline"),
        "frac_prevs": Spec("frac_prevs", frac_prevs, ["w", "x", "y", "z"], 5, "inline"),
        "hist": Spec("hist", hist, ["a", "b", "c", "d"], 5, "inline"),
    }


def _library_specs(lib: Any) -> dict[str, Spec]:
    """The library's ``ProgramSpec``s (``rasplab.programs.list_programs()``) as Specs."""
    specs: dict[str, Spec] = {}
    for item in lib.list_programs():
        specs[item.name] = Spec(
            name=item.name,
            build=item.build,
            vocab=list(item.vocab),
            max_seq_len=int(item.max_seq_len),
            source="library",
            min_len=int(getattr(item, "min_len", 1)),
            lib=item,
        )
    return specs


def resolve_specs(source: str) -> tuple[dict[str, Spec], str | None]:
    """Name -> Spec. ``auto``: library first, inline programs fill the gaps."""
    inline = _inline_specs()
    if source == "inline":
        return inline, None
    lib, err = load_library()
    specs: dict[str, Spec] = {}
    if lib is not None:
        try:
            specs = _library_specs(lib)
        except Exception as exc:
            err = f"reading the library: {type(exc).__name__}: {exc}"
        if not specs and err is None:
            err = "the library registry listed no usable program"
    if source == "library":
        return specs, err
    for name, spec in inline.items():
        specs.setdefault(name, spec)
    return specs, err


# --------------------------------------------------------------------------------------
# The worker: measures one (program, max_seq_len) in this process
# --------------------------------------------------------------------------------------


def _count_inputs(vocab_size: int, min_len: int, max_len: int) -> int:
    return sum(vocab_size**n for n in range(min_len, max_len + 1))


def make_inputs(spec: Spec, max_len: int, limit: int, seed: int) -> tuple[list[list[Any]], str]:
    """Inputs for the correctness check and how they were chosen.

    Library programs use their own domain (``valid``, ``min_len``) and samplers: every
    valid input when there are at most ``limit`` candidates, else ``sample_clean(seed,
    limit)`` (which draws lengths from the program's sampling lengths). At a max_seq_len
    other than the program's own (``--scaling``), its spec is widened to that length.
    Inline programs: every input of length 1..max_len, or ``limit`` uniform ones.
    """
    lo = max(1, spec.min_len)
    total = _count_inputs(len(spec.vocab), lo, max_len)
    lib = spec.lib
    if lib is not None:
        try:
            if max_len != lib.max_seq_len:
                lib = dataclasses.replace(lib, max_seq_len=max_len, lengths=None)
            if total <= limit:
                return list(lib.iter_inputs()), "exhaustive"
            if lib.valid is not None and total <= 200_000:  # a restricted domain may be small
                xs = list(itertools.islice(lib.iter_inputs(), limit + 1))
                if len(xs) <= limit:
                    return xs, "exhaustive"
            return [list(x) for x in lib.sample_clean(seed, limit)], "library_sampler"
        except Exception as exc:
            log(f"{spec.name}: library inputs failed ({type(exc).__name__}: {exc}); uniform")
    if total <= limit:
        xs = [
            list(t) for n in range(lo, max_len + 1) for t in itertools.product(spec.vocab, repeat=n)
        ]
        return xs, "exhaustive"
    rng = random.Random(seed)
    xs = [[rng.choice(spec.vocab) for _ in range(rng.randint(lo, max_len))] for _ in range(limit)]
    return xs, "uniform_random"


def _is_num(x: Any) -> bool:
    """A number for a numerical output; bools count (tracr's evaluator can return the
    selected 0/1 flag itself when one position is selected, and the model encodes it as 0/1)."""
    return isinstance(x, (int, float))


def _jsonable(x: Any) -> Any:
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else repr(x)
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return _jsonable(x.item())
    except ImportError:
        pass
    return repr(x)


class Recorder:
    """Holds the record; writes it to ``path`` after each stage (atomic replace)."""

    def __init__(self, path: str | None, record: dict[str, Any]):
        self.path = path
        self.record = record

    def flush(self) -> None:
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.record, f)
        os.replace(tmp, self.path)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _compile_split(program: Any, vocab: set, max_len: int) -> dict[str, float]:
    """One compile split into tracr's IR stages and its weight assembly."""
    from tracr.compiler import (
        basis_inference,
        craft_graph_to_model,
        craft_model_to_transformer,
        expr_to_craft_graph,
        rasp_to_graph,
        validating,
    )
    from tracr.craft import bases
    from tracr.rasp import rasp

    t0 = time.perf_counter()
    validating.static_validate(program)
    ext = rasp_to_graph.extract_rasp_graph(program)
    basis_inference.infer_bases(ext.graph, ext.sink, vocab, max_len)
    expr_to_craft_graph.add_craft_components_to_rasp_graph(
        ext.graph, bos_dir=bases.BasisDirection(rasp.tokens.label, "BOS"), mlp_exactness=100
    )
    craft = craft_graph_to_model.craft_graph_to_model(ext.graph, ext.sources)
    t1 = time.perf_counter()
    craft_model_to_transformer.craft_model_to_transformer(
        craft_model=craft,
        graph=ext.graph,
        sink=ext.sink,
        max_seq_len=max_len,
        causal=False,
        compiler_bos="BOS",
        compiler_pad="PAD",
    )
    t2 = time.perf_counter()
    return {"ir_s": t1 - t0, "assemble_s": t2 - t1}


def run_worker(
    spec: Spec,
    max_len: int,
    suite: str,
    repeats: int,
    max_inputs: int,
    compile_budget: float,
    out_path: str | None,
    skip: set[str],
) -> dict[str, Any]:
    t_start = time.perf_counter()
    rec: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "name": spec.name,
        "suite": suite,
        "source": spec.source,
        "vocab": _jsonable(spec.vocab),
        "max_seq_len": max_len,
        "ok": False,
        "error": None,
        "error_stage": None,
        "completed": [],
    }
    R = Recorder(out_path, rec)
    R.flush()
    stage = "import"
    try:
        t_imp = time.perf_counter()
        import jax
        import jax.numpy as jnp
        import numpy as np
        from tracr.compiler import compiling
        from tracr.rasp import rasp

        rec["import_s"] = time.perf_counter() - t_imp

        stage = "build"
        program = spec.build()
        vocab = set(spec.vocab)
        rec["output_encoding"] = "numerical" if rasp.is_numerical(program) else "categorical"
        rec["completed"].append("build")

        def compile_once() -> Any:
            return compiling.compile_rasp_to_model(
                program, vocab, max_len, compiler_bos="BOS", compiler_pad="PAD"
            )

        # ---- compile: first (cold process), then warm repeats
        stage = "compile"
        log(f"{spec.name}@{max_len}: first compile")
        first, model = _timed(compile_once)
        rec["compile_first_s"] = first
        cfg = model.model_config
        leaves = jax.tree_util.tree_leaves(model.params)
        rec["layers"] = int(cfg.num_layers)
        rec["heads_per_layer"] = int(cfg.num_heads)
        rec["mlp_hidden"] = int(cfg.mlp_hidden_size)
        rec["key_size"] = int(cfg.key_size)
        rec["d_model"] = int(model.params["token_embed"]["embeddings"].shape[1])
        rec["params"] = int(sum(int(np.size(x)) for x in leaves))
        rec["nonzero_params"] = int(sum(int(np.count_nonzero(np.asarray(x))) for x in leaves))
        rec["residual_labels"] = len(model.residual_labels)
        rec["completed"].append("compile_first")
        R.flush()

        if "compile" not in skip:
            warm: list[float] = []
            spent = 0.0
            for _ in range(max(1, repeats)):
                dt, model = _timed(compile_once)
                warm.append(dt)
                spent += dt
                if spent > compile_budget:
                    break
            rec["compile_warm_s"] = statistics.median(warm)
            rec["compile_warm_runs"] = warm
            log(
                f"{spec.name}@{max_len}: compile first {first:.2f}s, "
                f"warm {rec['compile_warm_s']:.3f}s"
            )
            R.flush()
            try:
                rec["compile_split"] = _compile_split(program, vocab, max_len)
            except Exception as exc:  # informative only
                rec["compile_split"] = {"error": f"{type(exc).__name__}: {exc}"}
            rec["completed"].append("compile_warm")
            R.flush()

        enc_in = model.input_encoder
        enc_out = model.output_encoder
        numerical_out = rec["output_encoding"] == "numerical"

        def fwd_fn(params: Any, x: Any) -> Any:
            return model.forward(params, x).unembedded_output

        fwd = jax.jit(fwd_fn)
        params = model.params

        # ---- forward throughput: batch 256 at full length
        if "forward" not in skip:
            stage = "forward"
            rng = random.Random(1)
            batch = [
                ["BOS"] + [rng.choice(spec.vocab) for _ in range(max_len)]
                for _ in range(FORWARD_BATCH)
            ]
            x = jnp.asarray(np.array([enc_in.encode(b) for b in batch], dtype=np.int32))
            jit_s, _ = _timed(lambda: fwd(params, x).block_until_ready())
            rec["forward_jit_s"] = jit_s
            for _ in range(3):
                fwd(params, x).block_until_ready()
            # calls per timed run so that one run lasts about 0.1 s at least
            one, _ = _timed(lambda: fwd(params, x).block_until_ready())
            inner = max(1, min(1000, int(0.1 / max(one, 1e-6))))
            per_call: list[float] = []
            for _ in range(max(1, repeats)):
                t0 = time.perf_counter()
                for _ in range(inner):
                    y = fwd(params, x)
                y.block_until_ready()
                per_call.append((time.perf_counter() - t0) / inner)
            med = statistics.median(per_call)
            rec["forward_batch"] = FORWARD_BATCH
            rec["forward_positions"] = max_len + 1
            rec["forward_ms"] = med * 1e3
            rec["forward_ms_runs"] = [t * 1e3 for t in per_call]
            rec["forward_calls_per_run"] = inner
            rec["tokens_per_s"] = FORWARD_BATCH * (max_len + 1) / med
            rec["completed"].append("forward")
            log(
                f"{spec.name}@{max_len}: forward {med * 1e3:.3f} ms/batch, "
                f"{rec['tokens_per_s']:.3g} tokens/s"
            )
            R.flush()

        # ---- correctness against tracr's own evaluator
        if "correctness" not in skip:
            stage = "correctness"
            xs, how = make_inputs(spec, max_len, max_inputs, seed=0)
            rec["check_inputs"] = len(xs)
            rec["check_inputs_how"] = how
            by_len: dict[int, list[list[Any]]] = {}
            for s in xs:
                by_len.setdefault(len(s), []).append(s)
            t_eval = 0.0
            t_model = 0.0
            mism = mism_nn = none_rows = ref_errors = 0
            max_err = 0.0
            per_len: dict[str, dict[str, int]] = {}
            examples: list[dict[str, Any]] = []
            none_examples: list[dict[str, Any]] = []
            atol = 1e-3

            def reference(s: list[Any]) -> list[Any] | None:
                try:
                    return rasp.evaluate(program, s)
                except Exception:
                    return None

            for n in sorted(by_len):
                group = by_len[n]
                t0 = time.perf_counter()
                expected = [reference(s) for s in group]
                t_eval += time.perf_counter() - t0
                t0 = time.perf_counter()
                got_rows: list[list[Any]] = []
                enc = np.array([enc_in.encode(["BOS"] + s) for s in group], dtype=np.int32)
                for c in range(0, len(group), CHECK_CHUNK):
                    chunk = enc[c : c + CHECK_CHUNK]
                    k = len(chunk)
                    if k < CHECK_CHUNK:  # fixed batch shape: one jit per length
                        chunk = np.concatenate([chunk, np.repeat(chunk[:1], CHECK_CHUNK - k, 0)])
                    out = np.asarray(fwd(params, jnp.asarray(chunk)))[:k]
                    for row in out:
                        vals = row.tolist()[1:]
                        got_rows.append(vals if numerical_out else enc_out.decode(vals))
                t_model += time.perf_counter() - t0
                tally = {"wrong": 0, "wrong_non_none": 0, "total": len(group)}
                for s, exp, got in zip(group, expected, got_rows, strict=True):
                    if exp is None:  # the reference interpreter raised on this input
                        ref_errors += 1
                        continue
                    if any(e is None for e in exp):
                        none_rows += 1
                    wrong = wrong_nn = len(exp) != len(got)
                    for e, g in zip(exp, got, strict=False):
                        if e is None:
                            wrong = True  # tracr has no way to output None
                        elif numerical_out and _is_num(e):
                            err = abs(float(g) - float(e))
                            max_err = max(max_err, err)
                            if not err <= atol:
                                wrong = wrong_nn = True
                        elif e != g:
                            wrong = wrong_nn = True
                    case = {
                        "input": _jsonable(s),
                        "expected": _jsonable(exp),
                        "got": _jsonable(got),
                    }
                    if wrong_nn:
                        tally["wrong_non_none"] += 1
                        if len(examples) < 5:
                            examples.append(case)
                    elif wrong and len(none_examples) < 2:
                        none_examples.append(case)
                    tally["wrong"] += int(wrong)
                mism += tally["wrong"]
                mism_nn += tally["wrong_non_none"]
                per_len[str(n)] = tally
            # sanity: our batched jitted path equals tracr's own apply on a few inputs
            agree = 0
            probe = xs[:: max(1, len(xs) // 8)][:8]
            for s in probe:
                dec = model.apply(["BOS"] + s).decoded[1:]
                mine = np.asarray(
                    fwd(params, jnp.asarray(np.array([enc_in.encode(["BOS"] + s)], dtype=np.int32)))
                )[0].tolist()[1:]
                mine = mine if numerical_out else enc_out.decode(mine)
                same = (
                    all(abs(a - b) < 1e-5 for a, b in zip(dec, mine, strict=True))
                    if numerical_out
                    else dec == mine
                )
                agree += int(same)
            rec["mismatches"] = mism
            rec["mismatch_rate"] = mism / max(1, len(xs))
            rec["mismatches_non_none"] = mism_nn
            rec["mismatches_by_length"] = per_len
            rec["reference_none_rows"] = none_rows
            rec["reference_errors"] = ref_errors
            rec["mismatch_examples"] = examples
            rec["none_mismatch_examples"] = none_examples
            if numerical_out:
                rec["numerical_atol"] = atol
                rec["numerical_max_abs_err"] = max_err
            rec["check_apply_agreement"] = [agree, len(probe)]
            rec["check_eval_s"] = t_eval
            rec["check_model_s"] = t_model
            full = [s for s in xs if len(s) == max_len]
            if full:
                s = full[0]
                enc = np.array([enc_in.encode(["BOS"] + s)], dtype=np.int32)
                row = np.asarray(fwd(params, jnp.asarray(enc)))[0].tolist()[1:]
                rec["full_length_example"] = {
                    "input": _jsonable(s),
                    "expected": _jsonable(rasp.evaluate(program, s)),
                    "got": _jsonable(row if numerical_out else enc_out.decode(row)),
                }
            rec["completed"].append("correctness")
            log(
                f"{spec.name}@{max_len}: {mism}/{len(xs)} inputs wrong, {mism_nn} of them "
                f"where the reference is not None ({how})"
            )
        rec["ok"] = True
    except BaseException as exc:  # record, never raise: one program must not stop the run
        rec["error"] = f"{type(exc).__name__}: {exc}"[:4000]
        rec["error_stage"] = stage
        rec["traceback"] = traceback.format_exc()[-4000:]
        log(f"{spec.name}@{max_len}: FAILED at {stage}: {rec['error'][:300]}")
    rec["worker_wall_s"] = time.perf_counter() - t_start
    R.flush()
    return rec


# --------------------------------------------------------------------------------------
# The orchestrator: one subprocess per (program, max_seq_len)
# --------------------------------------------------------------------------------------


def run_one(
    name: str, max_len: int | None, suite: str, args: argparse.Namespace, skip: set[str]
) -> dict[str, Any]:
    fd, path = tempfile.mkstemp(prefix="tracr_side_", suffix=".json")
    os.close(fd)
    os.unlink(path)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--_worker",
        name,
        "--_suite",
        suite,
        "--repeats",
        str(args.repeats),
        "--max-inputs",
        str(args.max_inputs),
        "--compile-budget",
        str(args.compile_budget),
        "--source",
        args.source,
        "--_out",
        path,
    ]
    if max_len is not None:
        cmd += ["--_max-seq-len", str(max_len)]
    if skip:
        cmd += ["--_skip", ",".join(sorted(skip))]
    t0 = time.perf_counter()
    timed_out = False
    rc: int | None = None
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, 9)  # the worker's own process group only
            proc.wait()
    except OSError as exc:
        return {
            "schema": SCHEMA_VERSION,
            "name": name,
            "suite": suite,
            "ok": False,
            "error": f"could not start worker: {exc}",
            "error_stage": "spawn",
        }
    wall = time.perf_counter() - t0
    try:
        with open(path) as f:
            rec = json.load(f)
    except (OSError, ValueError):
        rec = {
            "schema": SCHEMA_VERSION,
            "name": name,
            "suite": suite,
            "max_seq_len": max_len,
            "ok": False,
            "completed": [],
        }
    finally:
        for p in (path, path + ".tmp"):
            if os.path.exists(p):
                os.unlink(p)
    rec["process_wall_s"] = wall
    if timed_out:
        rec["ok"] = False
        rec["error"] = f"timeout: killed after {args.timeout:g} s"
        rec["error_stage"] = "timeout"
    elif rc != 0 and rec.get("error") is None:
        rec["ok"] = False
        rec["error"] = f"worker exited with code {rc}"
        rec["error_stage"] = "crash"
    return rec


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("tracr-pypi", "jax", "jaxlib", "dm-haiku", "numpy", "chex"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", help="comma-separated names (default: every known program)")
    ap.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="warm compiles and timed forward runs per program (default 5)",
    )
    ap.add_argument("--out", help="write the JSON here instead of stdout")
    ap.add_argument(
        "--scaling",
        action="store_true",
        help="measure reverse at max_seq_len 5/10/20/40 and length at 16/32; "
        "alone, runs only these (add --programs to run both)",
    )
    ap.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds per program process before it is killed (default 900)",
    )
    ap.add_argument(
        "--max-inputs",
        type=int,
        default=2000,
        help="inputs for the correctness check (default 2000)",
    )
    ap.add_argument(
        "--compile-budget",
        type=float,
        default=60.0,
        help="stop warm recompiles once they took this many seconds (default 60)",
    )
    ap.add_argument(
        "--source",
        choices=["auto", "library", "inline"],
        default="auto",
        help="programs from the library (programs/), the inline ones, or the "
        "library with the inline ones filling gaps (default)",
    )
    ap.add_argument("--list", action="store_true", help="list program names and exit")
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    ap.add_argument("--_suite", default="programs", help=argparse.SUPPRESS)
    ap.add_argument("--_out", help=argparse.SUPPRESS)
    ap.add_argument("--_max-seq-len", type=int, dest="_max_seq_len", help=argparse.SUPPRESS)
    ap.add_argument("--_skip", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    specs, lib_err = resolve_specs(args.source)

    if args._worker:
        spec = specs.get(args._worker)
        if spec is None:
            rec = {
                "schema": SCHEMA_VERSION,
                "name": args._worker,
                "suite": args._suite,
                "ok": False,
                "error_stage": "lookup",
                "error": f"unknown program {args._worker!r}"
                + (f" (library: {lib_err})" if lib_err else ""),
            }
            Recorder(args._out, rec).flush()
            return 0
        max_len = args._max_seq_len or spec.max_seq_len
        skip = {s for s in args._skip.split(",") if s}
        rec = run_worker(
            spec,
            max_len,
            args._suite,
            args.repeats,
            args.max_inputs,
            args.compile_budget,
            args._out,
            skip,
        )
        if not args._out:
            print(json.dumps(rec, indent=1))
        return 0

    if lib_err:
        log(f"library not used ({lib_err})")
    if args.list:
        for name, spec in specs.items():
            print(f"{name}\t{spec.source}\tvocab={spec.vocab}\tmax_seq_len={spec.max_seq_len}")
        return 0

    jobs: list[tuple[str, int | None, str, set[str]]] = []
    if args.programs or not args.scaling:
        names = args.programs.split(",") if args.programs else list(specs)
        jobs += [(n.strip(), None, "programs", set()) for n in names if n.strip()]
    if args.scaling:
        for name, lens in SCALING:
            for n in lens:
                # reverse: shape and compile time; length: decode correctness
                skip = {"forward"} if name == "length" else {"correctness"}
                jobs.append((name, n, "scaling", skip))

    t0 = time.perf_counter()
    records = []
    for i, (name, n, suite, skip) in enumerate(jobs, 1):
        log(f"({i}/{len(jobs)}) {name}" + (f" @ max_seq_len {n}" if n else ""))
        rec = run_one(name, n, suite, args, skip)
        records.append(rec)
        status = (
            "ok"
            if rec.get("ok")
            else f"ERROR ({rec.get('error_stage')}): {str(rec.get('error'))[:200]}"
        )
        log(f"({i}/{len(jobs)}) {name}: {status} in {rec['process_wall_s']:.1f} s")

    result = {
        "meta": {
            "tool": "tracr",
            "schema": SCHEMA_VERSION,
            "versions": versions(),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "library_error": lib_err,
            "argv": sys.argv[1:],
            "total_wall_s": time.perf_counter() - t0,
        },
        "records": records,
    }
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
        log(f"wrote {args.out}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
