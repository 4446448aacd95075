"""The task families and the generated family of the library.

The fast check of the new programs runs every one of them through the compiled model on
sampled inputs. Jitting one model per program would cost a second or two each, so the
models are zero-padded to one common shape (layers, heads, widths, vocabulary) and run
through the compiler's own ``forward`` jitted once: the padding adds exact zeros (a zero
head attends somewhere and moves nothing, a zero MLP unit stays at 0), and
``test_padding_leaves_the_model_unchanged`` compares padded and unpadded runs. The
exhaustive check (every input, or 3000 samples where there are too many) is
``tests/test_exactness.py`` under ``-m slow``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from library_references import REFERENCE
from rasplab.compiler import compile_program, rasp
from rasplab.programs import (
    FAMILIES,
    FAMILY_DESCRIPTIONS,
    ProgramSpec,
    filter_programs,
    get,
    list_programs,
)
from rasplab.programs.families import FAMILY_ENTRIES
from rasplab.programs.generated import GENERATED, source_digest
from rasplab.programs.random_programs import random_program
from strategies import same_output

ROOT = Path(__file__).resolve().parent.parent
TASK_FAMILIES = {f.__name__ for f in FAMILY_ENTRIES}
NEW = [s for s in list_programs() if s.name in REFERENCE or s.family == "generated"]
SAMPLES = 48  # inputs per program in the fast check: half clean, half corrupted


# --- the library's shape ----------------------------------------------------------------


def test_library_size_and_families():
    specs = list_programs()
    assert len(specs) >= 150
    families = {s.family for s in specs}
    assert families == FAMILIES - {"user"}
    for family in families:
        assert len(filter_programs(family=family)) >= 10, family
    assert TASK_FAMILIES <= FAMILIES and set(FAMILY_DESCRIPTIONS) == FAMILIES


def test_every_family_program_has_a_reference():
    task = {s.name for s in list_programs() if s.family in TASK_FAMILIES}
    assert set(REFERENCE) <= task
    generated = filter_programs(family="generated")
    assert [s.name for s in generated] == [f"gen_{k:03d}" for k in range(len(GENERATED))]
    assert len(generated) >= 30


def test_family_filter():
    pointers = filter_programs(family="pointers")
    assert {"pointer_follow_1", "reach_3", "inverse_permutation"} <= {s.name for s in pointers}
    assert all(s.family == "pointers" for s in pointers)
    both = filter_programs(family=["means", "brackets"], tag="broadcast")
    assert both and {s.family for s in both} == {"means", "brackets"}
    assert all("broadcast" in s.tags for s in both)
    with pytest.raises(ValueError, match="unknown family"):
        filter_programs(family="no-such-family")


def test_spec_family_is_checked():
    build = lambda: rasp.tokens
    assert ProgramSpec("x", "d", build, ("a",), 3).family == "user"
    with pytest.raises(ValueError, match="unknown family 'nope'"):
        ProgramSpec("x", "d", build, ("a",), 3, family="nope")
    assert get("reverse").to_dict()["family"] == "strings"


# --- the generated family ---------------------------------------------------------------


def test_generated_programs_are_reproducible():
    for seed, digest, _tags in GENERATED:
        first, again = random_program(seed), random_program(seed)
        assert first.source == again.source
        assert source_digest(first.source) == digest, f"seed {seed} now draws another program"
    assert random_program(1).source != random_program(4).source


def test_generated_source_rebuilds_the_program():
    from rasplab.programs import random_programs as rp

    names = ("Lookup", "Lookup2", "Arith", "Above", "Pairs", "Shift")
    for k, (seed, _digest, _tags) in enumerate(GENERATED[:8]):
        drawn = random_program(seed)
        scope = {"rasp": rasp, **{n: getattr(rp, n) for n in names}}
        exec(drawn.source, scope)  # noqa: S102 - our own generated code
        for xs in get(f"gen_{k:03d}").sample_clean(0, 20):
            assert rasp.evaluate(scope["program"], xs) == rasp.evaluate(drawn.program, xs)


def test_generated_programs_are_not_constant():
    """Each generated program's output varies between inputs of one length."""
    for spec in filter_programs(family="generated"):
        program = spec.build()
        outs = {tuple(rasp.evaluate(program, xs)) for xs in spec.iter_inputs([spec.max_seq_len])}
        assert len(outs) > 1, spec.name


# --- every new program through its compiled model ---------------------------------------


class PaddedRunner:
    """Runs many compiled programs through one jitted ``forward`` of a common shape."""

    def __init__(self, compiled: dict):
        import jax
        from rasplab.compiler.model import forward

        self.layers = max(c.config.num_layers for c in compiled.values())
        self.shape: dict[str, tuple] = {}
        for c in compiled.values():
            for key, arr in c.params.items():
                if key == "unembed":
                    continue
                generic = _generic(key)
                old = self.shape.get(generic, (0,) * arr.ndim)
                self.shape[generic] = tuple(max(a, b) for a, b in zip(old, arr.shape))
        self.d_model = self.shape["embed.token"][1]
        self.pad_row = self.shape["embed.token"][0]  # one extra, all-zero row: padding
        self.width = self.shape["embed.pos"][0]
        self._fwd = jax.jit(lambda p, ids: forward(
            p, ids, num_layers=self.layers, pad_id=self.pad_row, causal=False)[0])

    def params(self, c) -> dict:
        out = {}
        for layer in range(self.layers):
            for kind, names in (("attn", "qkvo"), ("mlp", ("in", "out"))):
                for name in names:
                    key = f"layers.{layer}.{kind}.{name}"
                    shape = self.shape[_generic(key)]
                    out[key] = _pad(c.params.get(key), shape)
        rows, d = self.shape["embed.token"]
        out["embed.token"] = _pad(c.params["embed.token"], (rows + 1, d))
        out["embed.pos"] = _pad(c.params["embed.pos"], self.shape["embed.pos"])
        return out

    def run(self, c, inputs: list[list], batch: int) -> list[list]:
        from rasplab.compiler.model import decode

        ids = _encode(c, inputs, self.width)
        pad_id = c.token_ids[c.pad]
        ids = np.where(ids == pad_id, self.pad_row, ids)
        ids = np.concatenate([ids, np.repeat(ids[:1], batch - len(ids), axis=0)])
        d_model = c.params["embed.token"].shape[1]
        resid = np.asarray(self._fwd(self.params(c), ids))[: len(inputs), :, :d_model]
        decoded, _clean = decode(c, resid)
        return [row[1 : 1 + len(xs)] for row, xs in zip(decoded, inputs)]


def _generic(key: str) -> str:
    parts = key.split(".")
    return ".".join(["layers", "*", *parts[2:]]) if parts[0] == "layers" else key


def _pad(arr, shape) -> np.ndarray:
    out = np.zeros(shape, dtype=np.float32)
    if arr is not None:
        out[tuple(slice(0, n) for n in arr.shape)] = arr
    return out


def _encode(c, inputs: list[list], width: int) -> np.ndarray:
    ids = np.full((len(inputs), width), c.token_ids[c.pad], dtype=np.int32)
    ids[:, 0] = c.token_ids[c.bos]
    for b, xs in enumerate(inputs):
        ids[b, 1 : 1 + len(xs)] = [c.token_ids[x] for x in xs]
    return ids


def _inputs(spec) -> list[list]:
    rng = np.random.default_rng(0)
    clean = spec.sample_clean(rng, SAMPLES // 2)
    return clean + spec.sample_corrupted(rng, clean)


@pytest.fixture(scope="module")
def compiled():
    start = time.perf_counter()
    out = {s.name: compile_program(s.build(), s.vocab, s.max_seq_len) for s in NEW}
    elapsed = time.perf_counter() - start
    print(f"\ncompiled {len(out)} new library programs in {elapsed:.2f} s")
    return out


@pytest.fixture(scope="module")
def runner(compiled):
    return PaddedRunner(compiled)


def test_padding_leaves_the_model_unchanged(compiled, runner):
    from rasplab.compiler.model import Model

    for name in ("reach_3", "dedupe_runs", "mean_token", "gen_000"):
        c, spec = compiled[name], get(name)
        inputs = _inputs(spec)
        padded = runner.run(c, inputs, SAMPLES)
        plain = Model(c).run(inputs)
        assert all(same_output(a, b) for a, b in zip(padded, plain)), name


@pytest.mark.parametrize("spec", NEW, ids=[s.name for s in NEW])
def test_new_program_is_exact_on_samples(spec, compiled, runner):
    program = spec.build()
    inputs = _inputs(spec)
    got = runner.run(compiled[spec.name], inputs, SAMPLES)
    for xs, out in zip(inputs, got):
        expected = rasp.evaluate(program, xs)
        assert same_output(out, expected), (spec.name, xs, out, expected)


def test_the_library_compiles_quickly():
    """All programs compile (a program the compiler refuses has no place in the library);
    the time is printed, not asserted."""
    start = time.perf_counter()
    for spec in list_programs():
        compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    print(f"\ncompiled all {len(list_programs())} library programs in "
          f"{time.perf_counter() - start:.2f} s")


# --- the command line -------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rasplab", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def test_list_filters_by_family_and_tag():
    proc = _cli("list", "--family", "brackets", "--tag", "broadcast", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    want = {s.name for s in filter_programs(tag="broadcast", family="brackets")}
    assert {r["name"] for r in rows} == want and want
    assert all(r["family"] == "brackets" and "broadcast" in r["tags"] for r in rows)

    proc = _cli("list", "--family", "generated")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("gen_") for line in lines) == len(GENERATED)
    assert lines[0].split()[1] == "generated"  # the family column
    assert f"{len(GENERATED)} programs." in proc.stdout


def test_list_unknown_family():
    proc = _cli("list", "--family", "nope")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown family nope" in lines[0]


def test_list_without_flags_shows_every_program_with_its_family():
    proc = _cli("list")
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0].split()
    assert first[:2] == ["length", "counting"]
    assert f"{len(list_programs())} programs." in proc.stdout


def test_inputs_fit_the_domain_everywhere():
    """Exhaustive domains of the restricted programs are non-empty at every length."""
    for spec in NEW:
        if spec.valid is None:
            continue
        for n in spec.sample_lengths:
            assert next(iter(spec.iter_inputs([n])), None) is not None, (spec.name, n)


def test_digests_are_short_hex():
    for _seed, digest, _tags in GENERATED:
        assert len(digest) == 12 and int(digest, 16) >= 0
    assert source_digest("x") == hashlib.sha256(b"x").hexdigest()[:12]
