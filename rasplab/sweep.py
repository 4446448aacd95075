"""Sweeps of independent cells, stored on disk one cell at a time, run locally or on Ray.

A *cell* is a frozen dataclass of plain fields (``program``, ``method``, ``seed``, ...) and
a *cell function* ``fn(cell) -> dict`` (JSON data) computes its result. :func:`run_sweep`
runs the cells that a :class:`Store` does not hold yet and writes each result as soon as it
arrives, so an interrupted sweep loses only the cells in flight and a rerun does only the
missing ones; reports are then made from the store alone::

    store = Store("results/my_cells")
    run_sweep(my_cell_fn, cells, store, workers=2)      # or ray=True / $RAY_ADDRESS
    for cell, result in store.results(MyCell): ...

Execution: in this process (``workers=1``), a local process pool (``workers=N``, spawned
processes, so nothing of the parent's JAX state is forked), or Ray tasks (``ray=True``, or
the environment variable ``RAY_ADDRESS`` set): with an address Ray joins that cluster,
without one it starts a local Ray on loopback only (``num_cpus=workers``, no dashboard).
Ray is an optional extra (``pip install 'rasplab[ray]'``), imported only here, only then.
``fn`` must be importable by name on the workers (a module-level function of an installed
module).

``group_by(cell)`` (optional) sends cells with the same value to one task, run one after the
other in one worker: a cell function that caches per-program work (a compiled model, a
prepared experiment) then pays for it once per group. A cell that raises is not stored:
``on_error="stop"`` (the default) ends the sweep after storing what finished and raises
:class:`SweepError`; ``"continue"`` runs the rest and lists the failures in the report.
Progress is a tqdm bar over all cells (those already stored count as done) with the time
left.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
import traceback
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

C = TypeVar("C")
CellFn = Callable[[Any], dict]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.=+-]+")


class SweepError(RuntimeError):
    """A cell raised and the sweep stopped (everything finished before it is stored).

    ``report`` is the :class:`SweepReport` so far, ``traceback`` the failing cell's.
    """

    def __init__(self, message: str, report: SweepReport | None = None, traceback: str = ""):
        super().__init__(message)
        self.report = report
        self.traceback = traceback


def cell_dict(cell: Any) -> dict:
    if not dataclasses.is_dataclass(cell) or isinstance(cell, type):
        raise TypeError(f"a sweep cell must be a dataclass instance, got {type(cell).__name__}")
    return dataclasses.asdict(cell)


def cell_key(cell: Any) -> str:
    """A file-name-safe key: the field values, then 10 hex digits of their JSON's SHA-256."""
    data = cell_dict(cell)
    text = json.dumps(data, sort_keys=True, default=repr)
    readable = _UNSAFE.sub("_", "-".join(str(v) for v in data.values()))[:120]
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


class Store:
    """One JSON file per cell under ``directory``: ``{"cell": {...}, "result": {...}}``.

    Files are written under a temporary name and renamed, so a file is either complete or
    absent, whenever the sweep is stopped.
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def path(self, cell: Any) -> Path:
        return self.directory / f"{cell_key(cell)}.json"

    def has(self, cell: Any) -> bool:
        return self.path(cell).is_file()

    def put(self, cell: Any, result: dict) -> Path:
        path = self.path(cell)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"cell": cell_dict(cell), "result": result}, sort_keys=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text + "\n")
        os.replace(tmp, path)
        return path

    def get(self, cell: Any) -> dict | None:
        path = self.path(cell)
        return json.loads(path.read_text())["result"] if path.is_file() else None

    def delete(self, cell: Any) -> None:
        self.path(cell).unlink(missing_ok=True)

    def missing(self, cells: Iterable[C]) -> list[C]:
        return [c for c in cells if not self.has(c)]

    def results(self, cell_type: type[C]) -> Iterator[tuple[C, dict]]:
        """Every stored ``(cell, result)`` whose fields fit ``cell_type``, in file-name order."""
        names = {f.name for f in dataclasses.fields(cell_type)}
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("*.json")):
            data = json.loads(path.read_text())
            if set(data["cell"]) == names:
                yield cell_type(**data["cell"]), data["result"]

    def __len__(self) -> int:
        return len(list(self.directory.glob("*.json"))) if self.directory.is_dir() else 0


@dataclass
class Failure:
    cell: Any
    error: str  # "ExceptionType: message"
    traceback: str = field(repr=False, default="")


@dataclass
class SweepReport:
    """What one :func:`run_sweep` call did."""

    total: int  # cells asked for
    already: int  # found in the store
    ran: int  # computed and stored now
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    executor: str = "serial"
    workers: int = 1

    @property
    def complete(self) -> bool:
        return self.already + self.ran == self.total


def _run_group(fn: CellFn, cells: Sequence, stop_on_error: bool) -> list[tuple[bool, Any]]:
    """Run ``cells`` one by one in this worker: ``(True, result)`` or ``(False, error)``."""
    out: list[tuple[bool, Any]] = []
    for cell in cells:
        try:
            out.append((True, fn(cell)))
        except Exception as err:  # noqa: BLE001 - sent back to the driver
            out.append((False, (f"{type(err).__name__}: {err}", traceback.format_exc())))
            if stop_on_error:
                break
    return out


def _groups(cells: list, group_by: Callable[[Any], Hashable] | None) -> list[list]:
    if group_by is None:
        return [[c] for c in cells]
    groups: dict[Hashable, list] = {}
    for c in cells:
        groups.setdefault(group_by(c), []).append(c)
    return list(groups.values())


def _serial(fn, groups, stop):
    for g in groups:
        yield g, _run_group(fn, g, stop)


def _pool(fn, groups, stop, workers):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=workers,
                               mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(_run_group, fn, g, stop): g for g in groups}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _ray(fn, groups, stop, workers, address):
    try:
        import ray
    except ImportError:
        raise SweepError("--ray needs Ray: pip install 'rasplab[ray]' (ray==2.60.0)") from None
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address)
        else:  # a local Ray, reachable from this machine only
            ray.init(num_cpus=max(1, workers), _node_ip_address="127.0.0.1",
                     include_dashboard=False)
        started = True
    remote = ray.remote(_run_group)
    pending = {remote.remote(fn, g, stop): g for g in groups}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), ray.get(ref)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def run_sweep(fn: CellFn, cells: Iterable, store: Store, *, workers: int = 1,
              ray: bool | None = None, ray_address: str | None = None,
              group_by: Callable[[Any], Hashable] | None = None, on_error: str = "stop",
              limit: int | None = None, progress: bool = True, desc: str = "cells"
              ) -> SweepReport:
    """Compute and store every cell of ``cells`` not in ``store``; see the module docstring.

    ``limit`` runs at most that many missing cells (a partial sweep, resumed by the next
    call). ``ray=None`` means: use Ray when ``RAY_ADDRESS`` is set.
    """
    from tqdm.auto import tqdm

    if on_error not in ("stop", "continue"):
        raise ValueError(f"on_error must be 'stop' or 'continue', got {on_error!r}")
    cells = list(dict.fromkeys(cells))
    todo = store.missing(cells)
    if limit is not None:
        todo = todo[:limit]
    address = ray_address or os.environ.get("RAY_ADDRESS") or None
    use_ray = bool(address) if ray is None else ray
    executor = "ray" if use_ray else ("pool" if workers > 1 else "serial")
    report = SweepReport(total=len(cells), already=len(cells) - len(store.missing(cells)),
                         ran=0, executor=executor, workers=workers)
    t0 = time.perf_counter()
    groups = _groups(todo, group_by)
    stop = on_error == "stop"
    if executor == "ray":
        stream = _ray(fn, groups, stop, workers, address)
    elif executor == "pool":
        stream = _pool(fn, groups, stop, min(workers, max(1, len(groups))))
    else:
        stream = _serial(fn, groups, stop)
    bar = tqdm(total=len(cells), initial=report.already, disable=not progress, unit="cell",
               desc=desc, dynamic_ncols=True, smoothing=0.1)
    try:
        for group, outcomes in stream:
            for cell, (ok, value) in zip(group, outcomes):
                if ok:
                    store.put(cell, value)
                    report.ran += 1
                else:
                    report.failures.append(Failure(cell, value[0], value[1]))
                bar.update(1)
            if report.failures:
                bar.set_postfix(failed=len(report.failures))
                if stop:
                    break
    finally:
        stream.close()
        bar.close()
        report.seconds = time.perf_counter() - t0
    if report.failures and stop:
        f = report.failures[0]
        raise SweepError(f"cell {cell_key(f.cell)} failed: {f.error} ({report.ran} cells "
                         "stored this run; rerun to continue)", report, f.traceback)
    return report



# ---------------------------------------------------------------------------------------
# A small sweep of its own: every program's compiled size per rung (numpy only)


@dataclass(frozen=True)
class SizeCell:
    """One program at one rung; :func:`size_cell` gives its ``stats()``."""

    program: str
    rung: str = "compiled"
    seed: int = 0


def size_cell(cell: SizeCell) -> dict:
    """Compile ``cell.program``, take it to ``cell.rung``, and return its sizes."""
    from .compiler import compile_program
    from .programs import registry
    from .variants import build_rung

    spec = registry.get(cell.program)
    model = build_rung(cell.rung, compile_program(spec.build(), spec.vocab, spec.max_seq_len),
                       cell.seed)
    return {"vocab": len(spec.vocab), "max_seq_len": spec.max_seq_len, **model.stats()}


__all__ = ["Store", "SweepReport", "SweepError", "Failure", "run_sweep", "cell_key",
           "cell_dict", "SizeCell", "size_cell"]
