"""``rasplab.sweep``: cells stored one at a time, interrupted and resumed, serial / pool / Ray."""

from __future__ import annotations

import importlib.util
import json

import pytest

from rasplab.sweep import SizeCell, Store, SweepError, cell_key, run_sweep, size_cell

PROGRAMS = ["reverse", "hist", "length", "frac_prevs"]


def _cells(programs=PROGRAMS):
    return [SizeCell(p) for p in programs]


def _stored(store: Store) -> dict[str, dict]:
    return {c.program: r for c, r in store.results(SizeCell)}


def test_cells_are_stored_one_file_each(tmp_path):
    store = Store(tmp_path / "cells")
    report = run_sweep(size_cell, _cells(), store, progress=False)
    assert (report.total, report.already, report.ran, report.executor) == (4, 0, 4, "serial")
    files = sorted(p.name for p in (tmp_path / "cells").iterdir())
    assert files == sorted(f"{cell_key(c)}.json" for c in _cells())
    data = json.loads(store.path(SizeCell("reverse")).read_text())
    assert data["cell"] == {"program": "reverse", "rung": "compiled", "seed": 0}
    assert data["result"]["layers"] >= 1 and data["result"]["max_seq_len"] == 5


def test_interrupted_sweep_keeps_finished_cells_and_rerun_does_only_the_rest(tmp_path):
    store = Store(tmp_path)
    cells = _cells()
    broken = cells[:2] + [SizeCell("no_such_program")] + cells[2:]
    with pytest.raises(SweepError, match="no_such_program.*2 cells stored") as info:
        run_sweep(size_cell, broken, store, progress=False)
    assert info.value.report.ran == 2 and "UnknownProgramError" in info.value.traceback
    assert set(_stored(store)) == {"reverse", "hist"}
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()}

    report = run_sweep(size_cell, cells, store, progress=False)
    assert (report.already, report.ran, report.complete) == (2, 2, True)
    assert set(_stored(store)) == set(PROGRAMS)
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())  # not redone
    assert not list(tmp_path.glob(".*.tmp"))

    again = run_sweep(size_cell, cells, store, progress=False)
    assert (again.already, again.ran) == (4, 0)


def test_limit_and_continue_on_error(tmp_path):
    store = Store(tmp_path)
    first = run_sweep(size_cell, _cells(), store, limit=1, progress=False)
    assert (first.ran, first.complete) == (1, False)
    report = run_sweep(size_cell, _cells() + [SizeCell("nope")], store, on_error="continue",
                       progress=False)
    assert report.ran == 3 and [f.cell.program for f in report.failures] == ["nope"]
    assert not store.has(SizeCell("nope"))  # a failed cell is retried next time


def test_process_pool_of_two_gives_the_serial_results(tmp_path):
    serial, pool = Store(tmp_path / "serial"), Store(tmp_path / "pool")
    run_sweep(size_cell, _cells(), serial, progress=False)
    cells = _cells()
    run_sweep(size_cell, cells[:1], pool, workers=2, progress=False)  # "interrupted"
    report = run_sweep(size_cell, cells, pool, workers=2, group_by=lambda c: c.program,
                       progress=False)
    assert (report.executor, report.already, report.ran) == ("pool", 1, 3)
    assert _stored(pool) == _stored(serial)


def test_unknown_on_error_and_non_dataclass_cells(tmp_path):
    with pytest.raises(ValueError, match="on_error"):
        run_sweep(size_cell, _cells(), Store(tmp_path), on_error="ignore")
    with pytest.raises(TypeError, match="dataclass"):
        cell_key(("reverse", "compiled"))


HAVE_RAY = importlib.util.find_spec("ray") is not None


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_RAY, reason="ray is not installed (pip install 'rasplab[ray]')")
def test_local_ray_on_loopback_gives_the_serial_results(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    serial, on_ray = Store(tmp_path / "serial"), Store(tmp_path / "ray")
    run_sweep(size_cell, _cells(), serial, progress=False)
    run_sweep(size_cell, _cells()[:2], on_ray, ray=True, workers=2, progress=False)
    report = run_sweep(size_cell, _cells(), on_ray, ray=True, workers=2, progress=False)
    assert (report.executor, report.already, report.ran) == ("ray", 2, 2)
    assert _stored(on_ray) == _stored(serial)
