"""experiments/scoreboard.py as a sweep: interrupted, resumed, regenerated; a pool of 2."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from rasplab.analysis.scoreboard import ScoreCell, load_records

from rasplab.sweep import Store

SCRIPT = Path(__file__).resolve().parent.parent / "experiments" / "scoreboard.py"
ARGS = ["--programs", "frac_prevs,hist", "--methods", "eap", "--ablations", "resample",
        "--samples", "32", "--quiet"]


@pytest.fixture(scope="module")
def scoreboard():
    spec = importlib.util.spec_from_file_location("scoreboard_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _scores(store_dir: Path) -> dict:
    out = {}
    for r in load_records(Store(store_dir)):
        assert r.error is None, r.error
        out[r.label] = {k: v for k, v in r.scores.items() if k != "seconds"}
    return out


def test_interrupted_scoreboard_resumes_and_regenerates(scoreboard, tmp_path, capsys):
    out = tmp_path / "results"
    assert scoreboard([*ARGS, "--out", str(out), "--limit", "1"]) == 0
    cells = sorted((out / "scoreboard_cells").glob("*.json"))
    assert len(cells) == 1
    first = cells[0].stat().st_mtime_ns
    text = (out / "scoreboard.md").read_text()
    assert "Incomplete: 1 cells are not in the store yet" in text
    assert "| frac_prevs | resample |" in text and "| hist |" not in text

    capsys.readouterr()
    assert scoreboard([*ARGS, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "1 cells run (serial, 1 workers" in err and "1 already stored, 2 in all" in err
    assert cells[0].stat().st_mtime_ns == first  # the stored cell was not redone
    text = (out / "scoreboard.md").read_text()
    assert "Incomplete" not in text
    assert "| frac_prevs | resample |" in text and "| hist | resample |" in text
    rows = json.loads((out / "scoreboard.json").read_text())
    assert sorted(r["program"] for r in rows) == ["frac_prevs", "hist"]
    assert all(0.0 <= r["edge_auc"] <= 1.0 for r in rows)
    assert all(r["target"] for r in rows)  # scored against a non-empty planted truth

    (out / "scoreboard.md").unlink()
    (out / "scoreboard_edge_auc.png").unlink()
    assert scoreboard([*ARGS, "--out", str(out), "--report-only"]) == 0
    assert (out / "scoreboard.md").read_text() == text
    assert (out / "scoreboard_edge_auc.png").stat().st_size > 0


@pytest.mark.slow  # about 90 s on 2 busy cores; the pool itself is tested in test_sweep.py
def test_pool_of_two_matches_serial(scoreboard, tmp_path):
    serial, pool = tmp_path / "serial", tmp_path / "pool"
    assert scoreboard([*ARGS, "--out", str(tmp_path), "--store", str(serial)]) == 0
    assert scoreboard([*ARGS, "--out", str(tmp_path), "--store", str(pool),
                       "--workers", "2"]) == 0
    assert _scores(pool) == _scores(serial)
    assert set(_scores(pool)) == {"frac_prevs", "hist"}


def test_unknown_program_exits_2(scoreboard, tmp_path, capsys):
    assert scoreboard(["--programs", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scoreboard: error: ") and "nope" in err
    assert not list(tmp_path.iterdir())


def test_cell_errors_are_stored_and_redone_on_request(scoreboard, tmp_path):
    store = Store(tmp_path / "cells")
    cell = ScoreCell("hist", "compiled", "eap", "resample", 0, 32)
    store.put(cell, {"error": "RuntimeError: injected"})
    assert scoreboard([*ARGS, "--programs", "hist", "--out", str(tmp_path),
                       "--store", str(store.directory), "--report-only"]) == 0
    assert "- hist / resample / eap: RuntimeError: injected" in (
        tmp_path / "scoreboard.md").read_text()
    assert scoreboard([*ARGS, "--programs", "hist", "--out", str(tmp_path),
                       "--store", str(store.directory), "--redo-errors"]) == 0
    assert load_records(store)[0].error is None
