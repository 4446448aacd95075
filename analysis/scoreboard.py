"""The circuit-recovery scoreboard as independent cells: program x rung x method x ablation x seed.

``run_cell(cell)`` scores one method on one program's model at one rung under one ablation
(``analysis.recover.Session``: same inputs, ground truth and scoring as ever) and returns
plain JSON; :mod:`rasplab.sweep` runs the cells (serially, on a process pool or on Ray)
and stores each result as it arrives. Cells of one (program, rung, seed, samples) go to one
worker (:func:`group_key`), which keeps that program's session (compiled model, samples,
experiments, ground truths) while it works through them.

A cell whose program fails to compile or whose method fails is stored with its ``error``
(it is a result: the table lists it under Failures); ``experiments/scoreboard.py
--redo-errors`` runs those again. :func:`load_records` reads the store back as
:class:`ScoreRecord` s, which ``analysis.recover``'s tables and plots accept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rasplab.sweep import Store


@dataclass(frozen=True)
class ScoreCell:
    """One scoreboard cell."""

    program: str
    rung: str
    method: str
    ablation: str
    seed: int
    samples: int
    corruption: str = "same-length"  # resample's corrupted inputs (programs/corruptions.py)
    truth: str = "network"  # resample's target: "network" (greedy) or "program" (derived)


@dataclass
class ScoreRecord:
    """A stored cell's result: ``scores`` (``analysis.scoring.score``) or ``error``."""

    cell: ScoreCell
    scores: dict | None
    error: str | None
    circuit: list[str] | None
    target: list[str] | None
    label: str  # the table's row name: program, with @rung and #seed where they vary
    model: dict | None = None  # model_info(): d_model, readout, variant key, accuracy
    wall_seconds: float = 0.0  # the cell's own time, its share of the program set-up included
    cpu_seconds: float = 0.0  # the same span in CPU time of the worker process (all threads)

    @property
    def program(self) -> str:
        return self.cell.program

    @property
    def method(self) -> str:
        return self.cell.method

    @property
    def ablation(self) -> str:
        return self.cell.ablation

    def to_dict(self) -> dict:
        from dataclasses import asdict

        out = {**asdict(self.cell), "label": self.label}
        if self.error is not None:
            return {**out, "error": self.error}
        return {**out, **(self.scores or {}), "circuit": self.circuit, "target": self.target,
                "wall_seconds": self.wall_seconds, "cpu_seconds": self.cpu_seconds,
                **({"model": self.model} if self.model else {})}


def make_cells(programs, rungs, methods, ablations, seeds, samples: int,
               corruptions=("same-length",), truth: str = "network") -> list[ScoreCell]:
    """Every combination, in table order (program, rung, seed, corruption, ablation,
    method); zero and mean ablation do not depend on the corruption and get one cell."""
    from .methods import canonical

    return [ScoreCell(p, r, canonical(m), a, s, samples, c, truth)
            for p in programs for r in rungs for s in seeds
            for k, c in enumerate(corruptions) for a in ablations
            if a == "resample" or k == 0 for m in methods]


def group_key(cell: ScoreCell) -> tuple:
    return (cell.program, cell.rung, cell.seed, cell.samples, cell.corruption, cell.truth)


def run_order(cells: list[ScoreCell]) -> list[ScoreCell]:
    """``cells`` with the biggest programs' groups first (by the edges of the complete
    component graph, which is what JAX compiles and the methods sweep): a pool that starts
    the long groups first does not wait on one at the end. Compiling every program for
    its size takes about 2 s for the whole library (numpy only); the order changes no
    result, only when each cell runs."""
    from rasplab.compiler import compile_program
    from rasplab.programs import registry

    from .interventions import edge_graph

    size: dict[str, int] = {}
    for name in dict.fromkeys(c.program for c in cells):
        try:
            spec = registry.get(name)
            compiled = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
            size[name] = edge_graph(compiled, complete=True).n_edges
        except Exception:  # noqa: BLE001 - the cell itself will record the failure
            size[name] = 0
    return sorted(cells, key=lambda c: -size[c.program])  # stable: table order within


_SESSION: tuple[tuple, object] | None = None  # this worker's current program session


def _session(cell: ScoreCell, variants=None):
    global _SESSION
    key = (group_key(cell), variants)
    if _SESSION is None or _SESSION[0] != key:
        if _SESSION is not None:  # a new program: let the last one's compiled code go
            import jax

            jax.clear_caches()
        from rasplab.compiler import compile_program
        from rasplab.programs import registry
        from rasplab.variants import make

        from .recover import Session

        spec = registry.get(cell.program)
        session = Session(samples=cell.samples, seed=cell.seed, corruption=cell.corruption,
                          truth=cell.truth)
        _SESSION = (key, session)  # a compile failure below leaves a fresh session
        compiled = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
        if variants is not None:  # a trained rung: built once, kept on disk
            compiled = variants.model(spec, cell.rung, cell.seed, compiled=compiled)
        else:
            compiled = make(cell.rung, compiled, seed=cell.seed)
        session.program(spec, compiled=compiled)
    return _SESSION[1]


def model_info(compiled) -> dict:
    """What a cell records about its model: width, exactness, the stored variant's key
    (``rasplab.ladder``) and, for an approximate rung, its held-out accuracy."""
    variant = compiled.meta.get("variant", {})
    info = {"d_model": int(compiled.config.d_model),
            "readout": compiled.meta.get("readout", "exact"),
            "key": compiled.meta.get("ladder", {}).get("key")}
    if "heldout" in variant:
        info["heldout"] = variant["heldout"]
    return info


def run_cell(cell: ScoreCell, variants=None) -> dict:
    """One cell's result as JSON data: the scores, the own circuit and the target, or
    ``{"error": ...}`` when the program or method fails. ``variants`` (a
    ``rasplab.ladder.VariantCache``) supplies the rungs' models from disk, building each
    (program, rung, seed) once; without it each worker builds them with
    ``rasplab.variants.make``'s defaults. Pass it with ``functools.partial(run_cell,
    variants=cache)`` (picklable, so it reaches pool and Ray workers)."""
    import time

    from .recover import plain

    t0, c0 = time.perf_counter(), time.process_time()
    try:
        run = _session(cell, variants).run(cell.program, cell.method, cell.ablation)
    except Exception as err:  # noqa: BLE001 - a failure is a result, shown in the table
        return {"error": f"{type(err).__name__}: {' '.join(str(err).split())}"}
    d = run.to_dict()
    return plain({"scores": run.scores, "circuit": d["circuit"], "target": d["target"],
                  "model": model_info(run.experiment.compiled),
                  "wall_seconds": time.perf_counter() - t0,
                  "cpu_seconds": time.process_time() - c0})


def load_records(store: Store | str | Path, cells: list[ScoreCell] | None = None
                 ) -> list[ScoreRecord]:
    """The stored results (of ``cells`` only, in their order, when given)."""
    store = store if isinstance(store, Store) else Store(store)
    if cells is None:
        pairs = list(store.results(ScoreCell))
    else:
        pairs = [(c, r) for c in cells if (r := store.get(c)) is not None]
    rungs = {c.rung for c, _ in pairs}
    seeds = {c.seed for c, _ in pairs}
    corruptions = {c.corruption for c, _ in pairs if c.ablation == "resample"}
    out = []
    for c, r in pairs:
        label = c.program
        if len(rungs) > 1 or c.rung != "compiled":
            label += f"@{c.rung}"
        if len(seeds) > 1:
            label += f"#{c.seed}"
        if len(corruptions) > 1 and c.ablation == "resample":
            label += f" ({c.corruption})"
        out.append(ScoreRecord(c, r.get("scores"), r.get("error"), r.get("circuit"),
                               r.get("target"), label, r.get("model"),
                               r.get("wall_seconds", 0.0),
                               r.get("cpu_seconds", 0.0)))
    return out


__all__ = ["ScoreCell", "ScoreRecord", "make_cells", "group_key", "run_order", "run_cell",
           "model_info", "load_records"]
