"""Model files: safetensors weights + JSON sidecar, round trips and every way to break one."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rasplab.compiler import ModelFileError, compile_program, rasp
from rasplab.compiler import model_file as mf

import rasplab


def _reverse() -> rasp.SOp:
    length = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE))
    opp = (length.named("length") - rasp.indices - 1).named("opp_idx")
    flip = rasp.Select(rasp.indices, opp, rasp.Comparison.EQ).named("flip")
    return rasp.Aggregate(flip, rasp.tokens).named("reverse")


def _mixed() -> rasp.SOp:
    """Tuple-valued, string and numerical variables, a vocabulary mixing 1 and "1"."""
    pair = rasp.SequenceMap(lambda t, i: (t, i), rasp.tokens, rasp.indices).named("pair")
    text = rasp.Map(lambda p: f"{p[0]}@{p[1]}", pair).named("text")
    is_one = rasp.numerical(rasp.Map(lambda t: 1 if t == 1 else 0, rasp.tokens)).named("is_one")
    prev = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ).named("prev")
    frac = rasp.numerical(rasp.Aggregate(prev, is_one, default=0)).named("frac")
    above = rasp.Map(lambda f: f > 0.5, frac).named("above")
    return rasp.SequenceMap(lambda s, a: f"{s}:{a}", text, above).named("out")


@pytest.fixture(scope="module")
def compiled():
    c = compile_program(_reverse(), [1, 2, 3], 5)
    c.meta["notes"] = {"edges": [["embed", "L0.H0", "q"]], "weight": 0.25,
                                 "none": None, "ok": True}
    return c


@pytest.fixture()
def saved(compiled, tmp_path):
    weights, sidecar = mf.save(compiled, tmp_path / "reverse.safetensors")
    return weights, sidecar


def _same_program(a, b) -> None:
    assert a.config == b.config
    assert a.residual_labels == b.residual_labels
    assert a.vocab == b.vocab and [type(v) for v in a.vocab] == [type(v) for v in b.vocab]
    assert (a.bos, a.pad, a.output) == (b.bos, b.pad, b.output)
    assert list(a.variables) == list(b.variables) and a.variables == b.variables
    for name in a.variables:
        assert [type(v) for v in a.variables[name].values] == [
            type(v) for v in b.variables[name].values
        ]
    assert a.selectors == b.selectors and list(a.selectors) == list(b.selectors)
    assert a.components == b.components
    assert a.meta == b.meta
    assert list(a.params) == list(b.params)
    for k in a.params:
        assert a.params[k].dtype == np.float32
        np.testing.assert_array_equal(a.params[k], b.params[k])


# ---------------------------------------------------------------------------------------
# Round trips


def test_save_writes_both_halves_and_returns_them(compiled, tmp_path):
    weights, sidecar = mf.save(compiled, tmp_path / "m.safetensors")
    assert (weights.name, sidecar.name) == ("m.safetensors", "m.json")
    assert weights.is_file() and sidecar.is_file()
    data = json.loads(sidecar.read_text())
    assert data["format"] == "rasplab-model" and data["format_version"] == 2
    assert data["weights"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    shapes = {t["name"]: t["shape"] for t in data["weights"]["tensors"]}
    assert shapes == {k: list(v.shape) for k, v in compiled.params.items()}
    assert data["config"] == compiled.config.to_dict()
    assert data["meta"] == compiled.meta


@pytest.mark.parametrize("name", ["m.safetensors", "m.json", "m"])
def test_either_half_or_the_stem_names_the_pair(compiled, tmp_path, name):
    mf.save(compiled, tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]
    for path in ("m.safetensors", "m.json", "m"):
        _same_program(compiled, mf.load(tmp_path / path))


def test_round_trip_restores_everything_and_resaves_identical_bytes(compiled, saved, tmp_path):
    loaded = mf.load(saved[0])
    _same_program(compiled, loaded)
    again = mf.save(loaded, tmp_path / "again")
    assert again[0].read_bytes() == saved[0].read_bytes()
    assert again[1].read_bytes() == saved[1].read_bytes()


def test_round_trip_gives_identical_outputs(compiled, saved):
    from rasplab.compiler.model import Model

    inputs = [[1, 2, 3], [3, 1], [2, 2, 1, 3, 1], [1]]
    original = Model(compiled).run(inputs)
    assert original[0] == [3, 2, 1]
    assert Model(mf.load(saved[1])).run(inputs) == original


def test_value_types_survive(tmp_path):
    c = compile_program(_mixed(), [1, 2, "1"], 3)
    mf.save(c, tmp_path / "mixed")
    loaded = mf.load(tmp_path / "mixed.json")
    _same_program(c, loaded)
    assert loaded.vocab == [1, 2, "1"]
    assert [type(v) for v in loaded.vocab] == [int, int, str]
    pairs = loaded.variables["pair"].values
    assert all(isinstance(p, tuple) for p in pairs) and (1, 0) in pairs and ("1", 0) in pairs
    assert loaded.token_ids == c.token_ids


@pytest.mark.parametrize("value", [
    None, True, False, 1, 0, -7, 10**30, 1.0, 0.5, -0.0, float("inf"), float("-inf"), "1",
    "", "True", (1, "1", True, 1.0, None), [1, (2, "x")], ((),), frozenset({1, 2}),
    np.int64(3), np.float32(0.25), np.bool_(True),
])
def test_tagged_values_round_trip_with_their_types(value):
    text = json.dumps(mf.encode_value(value), allow_nan=False)
    back = mf.decode_value(json.loads(text))
    expected = value.item() if isinstance(value, np.generic) else value
    assert back == expected and type(back) is type(expected)
    if isinstance(expected, tuple):
        assert [type(x) for x in back] == [type(x) for x in expected]


def test_nan_round_trips():
    assert np.isnan(mf.decode_value(json.loads(json.dumps(mf.encode_value(float("nan"))))))


def test_unstorable_value_and_meta_are_clear_errors(compiled, tmp_path):
    with pytest.raises(ModelFileError, match="cannot store the value"):
        mf.encode_value(object())
    bad = compile_program(_reverse(), [1, 2, 3], 3)
    bad.meta["oops"] = {1, 2}
    with pytest.raises(ModelFileError, match="meta"):
        mf.save(bad, tmp_path / "bad")
    assert not list(tmp_path.iterdir()), "a failed save must leave nothing behind"


def test_bytes_are_identical_across_processes(tmp_path):
    script = (
        "import sys, hashlib\n"
        "from rasplab.compiler import rasp, compile_program\n"
        "from rasplab.compiler.model_file import save\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from test_model_file import _mixed\n"
        "w, j = save(compile_program(_mixed(), ['a', 1, 2], 3), sys.argv[1])\n"
        "print(hashlib.sha256(w.read_bytes() + j.read_bytes()).hexdigest())\n"
    )
    here = str(Path(__file__).parent)
    digests = set()
    for seed in ("0", "7"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / f"m{seed}"), here],
            env=env, capture_output=True, text=True, check=True,
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_front_door_exports(compiled, tmp_path):
    rasplab.save(compiled, tmp_path / "x.safetensors")
    _same_program(compiled, rasplab.load(tmp_path / "x.json"))


# ---------------------------------------------------------------------------------------
# Broken files


def _sidecar(saved) -> dict:
    return json.loads(saved[1].read_text())


def _write_sidecar(saved, data: dict) -> None:
    saved[1].write_text(json.dumps(data))


def test_missing_sidecar(saved):
    saved[1].unlink()
    with pytest.raises(ModelFileError, match=r"reverse\.json not found.*JSON sidecar is missing"):
        mf.load(saved[0])


def test_missing_weights(saved):
    saved[0].unlink()
    with pytest.raises(ModelFileError, match=r"reverse\.safetensors not found"):
        mf.load(saved[1])


def test_missing_both(tmp_path):
    with pytest.raises(ModelFileError, match=r"nothing\.safetensors not found"):
        mf.load(tmp_path / "nothing.safetensors")


def test_truncated_weights(saved):
    raw = saved[0].read_bytes()
    saved[0].write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelFileError, match="damaged or truncated"):
        mf.load(saved[0])


def test_flipped_byte_in_weights(saved):
    raw = bytearray(saved[0].read_bytes())
    raw[-5] ^= 0x40  # inside the float data: still parses, but the hash differs
    saved[0].write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="SHA-256 differs"):
        mf.load(saved[0])


def test_flipped_byte_in_weights_header(saved):
    raw = bytearray(saved[0].read_bytes())
    raw[9] ^= 0xFF  # inside the safetensors JSON header
    saved[0].write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="damaged|SHA-256"):
        mf.load(saved[0])


def test_newer_format_version(saved):
    data = _sidecar(saved)
    data["format_version"] = 99
    _write_sidecar(saved, data)
    with pytest.raises(ModelFileError, match=r"newer rasplab \(format 99.*upgrade"):
        mf.load(saved[0])


def test_json_that_is_not_a_model(saved):
    saved[1].write_text(json.dumps({"hello": "world", "weights": [1, 2]}))
    with pytest.raises(ModelFileError, match="not a rasplab model"):
        mf.load(saved[1])


def test_garbage_sidecar(saved):
    saved[1].write_bytes(os.urandom(64) + b"\x00\xff")
    with pytest.raises(ModelFileError, match="not a rasplab model.*not valid JSON"):
        mf.load(saved[0])


def test_garbage_weights(saved):
    saved[0].write_bytes(b"this is not a safetensors file at all")
    with pytest.raises(ModelFileError, match="damaged or truncated"):
        mf.load(saved[1])


def test_garbage_file_given_directly(tmp_path):
    path = tmp_path / "junk.json"
    path.write_text("[1, 2, 3]")
    with pytest.raises(ModelFileError, match="not a rasplab model"):
        mf.load(path)


def test_sidecar_shape_disagrees_with_weights(saved):
    data = _sidecar(saved)
    data["weights"]["tensors"][0]["shape"][0] += 1
    _write_sidecar(saved, data)
    with pytest.raises(ModelFileError, match="the sidecar says"):
        mf.load(saved[0])


def test_sidecar_tensor_names_disagree(saved):
    data = _sidecar(saved)
    data["weights"]["tensors"][0]["name"] = "renamed"
    _write_sidecar(saved, data)
    with pytest.raises(ModelFileError, match="tensor names do not match"):
        mf.load(saved[0])


def test_weights_swapped_for_another_model(compiled, saved, tmp_path):
    other = compile_program(_reverse(), [1, 2, 3, 4], 5)
    other_w, _ = mf.save(other, tmp_path / "other")
    saved[0].write_bytes(other_w.read_bytes())
    with pytest.raises(ModelFileError, match="SHA-256 differs"):
        mf.load(saved[0])


def test_malformed_sidecar_field(saved):
    data = _sidecar(saved)
    del data["variables"]
    _write_sidecar(saved, data)
    with pytest.raises(ModelFileError, match="malformed.*variables"):
        mf.load(saved[0])


def test_no_pickle_anywhere():
    source = Path(mf.__file__).read_text()
    assert "import pickle" not in source and "allow_pickle" not in source
    assert "np.load(" not in source


def test_format_1_files_still_load(compiled, tmp_path):
    """A format-1 sidecar (planted circuit, schema 1, inside meta) loads with its circuit."""
    weights, sidecar = mf.save(compiled, tmp_path / "old.safetensors")
    data = json.loads(sidecar.read_text())
    old = compiled.planted.to_json(plain=True)
    old["schema"] = 1
    del old["d_model"], old["truths"]
    data["format_version"] = 1
    data["meta"]["planted_circuit"] = old
    del data["circuit"]
    sidecar.write_text(json.dumps(data))
    back = mf.load(weights)
    assert "planted_circuit" not in back.meta
    assert back.circuit.to_json() == compiled.planted.to_json()


def test_circuit_round_trips(saved, compiled):
    back = mf.load(saved[0])
    assert back.circuit.to_json() == compiled.planted.to_json()
    assert back.planted.variables["reverse"].dims == compiled.variables["reverse"].dims
