"""``rasplab zoo build`` / ``verify``: layout, manifest, resuming, hashes and exactness."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from rasplab.variants import register_rung, unregister_rung

from rasplab import zoo
from rasplab.cli import main

PROGRAMS = "reverse,length"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("zoo")
    assert main(["zoo", "build", str(d), "--programs", PROGRAMS]) == 0
    return d


def test_layout_and_manifest(built):
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["format"] == "rasplab-zoo"
    entries = {e["program"]: e for e in manifest["entries"]}
    assert set(entries) == {"reverse", "length"}
    e = entries["reverse"]
    assert e["rung"] == "compiled" and e["vocab"] == [1, 2, 3] and e["max_seq_len"] == 5
    assert e["description"] and e["sizes"]["layers"] >= 1 and e["sizes"]["params"] > 0
    assert sorted(e["files"]) == ["circuits/compiled/reverse.json",
                                  "models/compiled/reverse.json",
                                  "models/compiled/reverse.safetensors"]
    for rel, digest in e["files"].items():
        assert zoo.sha256_file(built / rel) == digest
    circuit = json.loads((built / "circuits/compiled/reverse.json").read_text())
    assert circuit["output"] == "reverse" and circuit["edges"]
    assert not list(built.rglob("*.pkl")) and not list(built.rglob(".*.tmp"))
    assert "rasplab zoo verify" in (built / "README.md").read_text()


def test_rebuild_skips_what_is_there(built, capsys):
    mtimes = {p: p.stat().st_mtime_ns for p in built.rglob("*.safetensors")}
    assert main(["zoo", "build", str(built), "--programs", PROGRAMS]) == 0
    assert "0 built, 2 already there" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in built.rglob("*.safetensors")} == mtimes


def test_resume_rebuilds_only_a_damaged_entry(tmp_path):
    zoo.build(tmp_path, ["reverse", "length"], progress=False)
    (tmp_path / "models/compiled/length.safetensors").write_bytes(b"damaged")
    report = zoo.build(tmp_path, ["reverse", "length"], progress=False)
    assert report.built == ["length/compiled"] and report.skipped == ["reverse/compiled"]
    assert zoo.verify(tmp_path, progress=False) == []


def test_verify_passes_then_reports_each_damaged_file(built, tmp_path, capsys):
    assert main(["zoo", "verify", str(built)]) == 0
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(built, copy)
    (copy / "circuits/compiled/length.json").write_text("{}")
    (copy / "models/compiled/reverse.json").unlink()
    capsys.readouterr()
    assert main(["zoo", "verify", str(copy)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [
        "reverse [compiled]: models/compiled/reverse.json is missing",
        "length [compiled]: circuits/compiled/length.json does not match its SHA-256 in the "
        "manifest",
    ]


def test_verify_catches_an_inexact_model(tmp_path):
    def broken(compiled, seed):  # a rung that claims to be exact but is not
        params = dict(compiled.params)
        params["unembed"] = np.roll(params["unembed"], 1, axis=1)
        return dataclasses.replace(compiled, params=params)

    register_rung("broken", broken, exact=True)
    try:
        zoo.build(tmp_path, ["reverse"], ["broken"], progress=False)
        problems = zoo.verify(tmp_path, progress=False)
    finally:
        unregister_rung("broken")
    assert len(problems) == 1
    assert problems[0].startswith("reverse [broken]: ") and "disagree" in problems[0]


@pytest.mark.parametrize("args, message", [
    (["--rungs", "compiled,nope"], "unknown rung 'nope'"),
    (["--programs", "reverse,nope"], "no library program named 'nope'"),
])
def test_unknown_rung_or_program(tmp_path, capsys, args, message):
    assert main(["zoo", "build", str(tmp_path / "z"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rasplab: error: ") and message in err and "\n" not in err
    assert not (tmp_path / "z" / "manifest.json").exists()


def test_verify_without_manifest(tmp_path, capsys):
    assert main(["zoo", "verify", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_build_needs_no_jax(tmp_path):
    import subprocess
    import sys

    code = ("import sys\nfrom rasplab.cli import main\n"
            f"status = main(['zoo', 'build', {str(tmp_path)!r}, '--programs', 'length'])\n"
            "assert 'jax' not in sys.modules, 'JAX was imported'\nsys.exit(status)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "models/compiled/length.safetensors").is_file()


def test_one_rung_registry():
    from rasplab.variants import EXACT_RUNGS, RUNGS, get_rung, make, rung_names

    assert rung_names()[:3] == ["compiled", "rotated", "compressed"]
    assert list(RUNGS) == rung_names()
    assert get_rung("compiled").make("C", 0) == "C" and get_rung("compiled").exact
    assert get_rung("rotated").exact and not get_rung("compressed").exact
    assert {r for r in RUNGS if get_rung(r).exact} == set(EXACT_RUNGS)
    register_rung("spun", lambda compiled, seed: ("spun", compiled, seed), exact=False)
    try:
        assert rung_names()[-1] == "spun" and not get_rung("spun").exact
        assert make("spun", "C", seed=3) == ("spun", "C", 3)
        with pytest.raises(ValueError, match="takes no options"):
            make("spun", "C", d=4)
    finally:
        unregister_rung("spun")
    with pytest.raises(ValueError, match="unknown rung 'spun'"):
        get_rung("spun")
    with pytest.raises(ValueError, match="unknown rung 'spun'"):
        make("spun", "C")
