"""The pytest plugin ``rasplab.testing``: fixtures, the on-disk cache, the documented example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rasplab import rasp
from rasplab.testing import ModelCache, model_key, program_fingerprint

pytest_plugins = ["pytester"]

DOCS = Path(__file__).resolve().parent.parent / "docs" / "testing.md"

FIXTURE_TEST = """
from rasplab import rasp


def test_library(rasplab_model):
    m = rasplab_model("reverse")
    assert m.name == "reverse"
    assert m.compiled.vocab == [1, 2, 3]
    from rasplab.zoo import planted_json

    names = {n["name"] for n in planted_json(m.compiled)["nodes"]}
    assert m.circuit is not None
    assert {"embed", "pos", "output"} <= names
    clean = m.sample_clean(4, seed=0)
    assert all(m.spec.is_valid(xs) for xs in clean)
    assert rasplab_model("reverse").compiled is m.compiled   # once per session
    print("SOURCE", m.name, m.source, m.path)


def test_user_program(rasplab_model):
    double = rasp.numerical(rasp.Map(lambda x: 2 * x, rasp.tokens)).named("double")
    m = rasplab_model(program=double, vocab={1, 2, 3}, max_seq_len=4)
    assert m.compiled.output == "double"
    print("SOURCE", m.name, m.source, m.path)
"""


def _sources(result) -> dict[str, tuple[str, Path]]:
    out = {}
    for line in result.outlines:
        match = re.search(r"SOURCE (\S+) (\S+) (\S+\.safetensors)", line)
        if match:
            out[match.group(1)] = (match.group(2), Path(match.group(3)))
    return out


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "model-cache"
    monkeypatch.setenv("RASPLAB_CACHE_DIR", str(d))
    return d


def test_fixture_compiles_then_loads_from_disk(pytester, cache_dir):
    pytester.makepyfile(test_fixture=FIXTURE_TEST)
    first = pytester.runpytest("-s", "-p", "no:cacheprovider")
    first.assert_outcomes(passed=2)
    seen = _sources(first)
    assert {k: v[0] for k, v in seen.items()} == {"reverse": "compiled", "double": "compiled"}
    first.stdout.fnmatch_lines([f"rasplab: 2 models compiled, 0 loaded from {cache_dir}"])
    files = sorted(cache_dir.iterdir())
    assert [f.suffix for f in files] == [".json", ".safetensors"] * 2
    mtimes = {f: f.stat().st_mtime_ns for f in files}

    second = pytester.runpytest("-s", "-p", "no:cacheprovider")
    second.assert_outcomes(passed=2)
    assert {k: v[0] for k, v in _sources(second).items()} == {"reverse": "disk", "double": "disk"}
    second.stdout.fnmatch_lines([f"rasplab: 0 models compiled, 2 loaded from {cache_dir}"])
    assert {f: f.stat().st_mtime_ns for f in sorted(cache_dir.iterdir())} == mtimes
    assert not any(f.suffix == ".pkl" for f in cache_dir.iterdir())


def test_default_location_is_pytests_cache(pytester, monkeypatch):
    monkeypatch.delenv("RASPLAB_CACHE_DIR", raising=False)
    pytester.makepyfile(test_fixture=FIXTURE_TEST)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=2)
    _, path = _sources(result)["reverse"]
    assert path.parent == pytester.path / ".pytest_cache" / "d" / "rasplab" / "models"
    assert path.exists()


def _docs_example() -> str:
    text = DOCS.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    return next(b for b in blocks if "def discover" in b)


def test_documented_discovery_example_passes(pytester, cache_dir):
    pytester.makepyfile(test_example=_docs_example())
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_damaged_cache_file_is_recompiled(tmp_path):
    mc = ModelCache(tmp_path)
    first = mc.get("length")
    assert first.source == "compiled"
    first.path.write_bytes(b"not a model")
    again = ModelCache(tmp_path).get("length")
    assert again.source == "compiled"
    assert ModelCache(tmp_path).get("length").source == "disk"


def test_key_follows_program_vocab_and_length():
    def build(k):
        return rasp.Map(lambda x: x + k, rasp.tokens)

    a, b = build(1), build(1)
    assert a.label != b.label  # automatic ids differ ...
    assert program_fingerprint(a) == program_fingerprint(b)  # ... the fingerprint does not
    assert program_fingerprint(build(2)) != program_fingerprint(a)  # closure value
    other_code = rasp.Map(lambda x: x * 1, rasp.tokens)
    assert program_fingerprint(other_code) != program_fingerprint(a)
    assert program_fingerprint(build(1).named("plus")) != program_fingerprint(b)
    base = model_key(a, [1, 2], 3)
    assert model_key(b, [2, 1], 3) == base
    assert model_key(a, [1, 2, 3], 3) != base
    assert model_key(a, [1, 2], 4) != base
    assert model_key(a, [1, 2], 3, causal=True) != base


def test_bad_requests_say_what_to_do(tmp_path):
    mc = ModelCache(tmp_path)
    with pytest.raises(ValueError, match="needs vocab= and max_seq_len="):
        mc.get(program=rasp.tokens)
    with pytest.raises(ValueError, match="not both or neither"):
        mc.get()
    with pytest.raises(KeyError, match="no library program named"):
        mc.get("no_such_program")


OFFSET = 1


def test_key_follows_globals_and_arrays(monkeypatch):
    import numpy as np

    prog = lambda: rasp.Map(lambda x: x + OFFSET, rasp.tokens)
    before = program_fingerprint(prog())
    monkeypatch.setitem(globals(), "OFFSET", 2)
    assert program_fingerprint(prog()) != before
    table = np.zeros(100)
    lookup = lambda: rasp.Map(lambda x: table[x], rasp.tokens)
    first = program_fingerprint(lookup())
    table[50] = 1.0  # invisible in repr(table), visible in its bytes
    assert program_fingerprint(lookup()) != first
