"""The recovery runner: method x program x ablation -> scores against the planted circuit.

For one program: compile it, sample ``samples`` clean inputs and their corrupted partners
(``ground_truth.sample_dataset``, the library's samplers), build one experiment per
ablation on the *complete* graph (every earlier-sender/later-receiver pair; a method is
not told which pairs are structural), find the ablation-matched ground truth on that same
experiment, run the method, and score it (``analysis.scoring.score``).

``Session`` keeps the compiled programs, experiments and ground truths, so a sweep pays for
each once, and shares JAX's compiled functions across ablations (zero, mean and resample
experiments of one program have the same shapes).

::

    from rasplab.analysis.recover import recover
    r = recover("reverse", "acdc", "resample")
    r.scores["edge_auc"], r.result.circuit_keys(r.experiment.graph)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import methods as _methods
from . import scoring
from .ground_truth import DEFAULT_SAMPLES, GroundTruth, effective_circuit, sample_dataset
from .interventions import ABLATIONS, Experiment, edge_graph, prepare
from .methods.common import MethodResult

METHOD_NAMES = tuple(_methods.METHODS)


@dataclass
class Recovery:
    """One method run on one program under one ablation, with its scores."""

    program: str
    method: str
    ablation: str
    samples: int
    seed: int
    result: MethodResult
    scores: dict
    truth: GroundTruth = field(repr=False)
    experiment: Experiment = field(repr=False)

    def to_dict(self, *, details: bool = False) -> dict:
        """JSON-ready: the scores flat at the top level, plus the circuits."""
        g = self.experiment.graph
        out = {"program": self.program, "method": self.method, "ablation": self.ablation,
               "samples": self.samples, "seed": self.seed, **self.scores,
               "circuit": self.result.circuit_keys(g) if self.result.circuit is not None
               else None,
               "target": self.truth.keys}
        if details:
            out["edge_scores"] = {k: float(s) for k, s in zip(g.edge_keys,
                                                              self.result.edge_scores)}
            out["node_scores"] = {k: float(s) for k, s in zip(g.senders,
                                                              self.result.node_scores)}
            out["info"] = plain(self.result.info)
        return out

    def roc_curves(self) -> dict:
        return scoring.roc_curves(self.experiment, self.result, self.truth)

    def plot(self, path: str | Path) -> Path:
        title = (f"{self.program}: {self.method}, {self.ablation} ablation "
                 f"({self.samples} inputs)")
        return scoring.plot_roc(self.roc_curves(), path, title=title)


def plain(value):
    """Plain JSON data: numpy arrays and scalars converted, NaN and infinities as None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None  # JSON has no NaN; an undefined AUC is null
    return value


@dataclass
class _Program:
    name: str
    spec: object
    compiled: object
    clean: list
    corrupted: list


class Session:
    """Caches compiled programs, experiments and ground truths for a set of runs."""

    def __init__(self, *, samples: int = DEFAULT_SAMPLES, seed: int = 0,
                 complete: bool = True):
        self.samples, self.seed, self.complete = samples, seed, complete
        self._programs: dict[str, _Program] = {}
        self._experiments: dict[tuple[str, str], Experiment] = {}
        self._truths: dict[tuple[str, str], GroundTruth] = {}

    def program(self, program, *, compiled=None) -> _Program:
        """A library name or a ``ProgramSpec`` (anything with ``build``, ``vocab``,
        ``max_seq_len``, ``sample_clean``, ``sample_corrupted``, ``name``)."""
        spec = program
        if isinstance(program, str):
            from rasplab.programs import registry

            spec = registry.get(program)
        name = spec.name
        if name not in self._programs:
            if compiled is None:
                from rasplab.compiler import compile_program

                compiled = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
            clean, corrupted = sample_dataset(spec, self.samples, self.seed)
            self._programs[name] = _Program(name, spec, compiled, clean, corrupted)
        return self._programs[name]

    def experiment(self, program, ablation: str) -> Experiment:
        if ablation not in ABLATIONS:
            raise ValueError(f"unknown ablation {ablation!r}; use one of {', '.join(ABLATIONS)}")
        p = self.program(program)
        key = (p.name, ablation)
        if key not in self._experiments:
            graph = None
            for (name, _), other in self._experiments.items():
                if name == p.name:
                    graph = other.graph  # one graph object: compiled code is shared
                    break
            if graph is None:
                graph = edge_graph(p.compiled, complete=self.complete)
            self._experiments[key] = prepare(
                p.compiled, p.clean, ablation,
                corrupted=p.corrupted if ablation == "resample" else None, graph=graph)
        return self._experiments[key]

    def truth(self, program, ablation: str) -> GroundTruth:
        p = self.program(program)
        key = (p.name, ablation)
        if key not in self._truths:
            self._truths[key] = effective_circuit(self.experiment(program, ablation),
                                                  program=p.name)
        return self._truths[key]

    def run(self, program, method: str, ablation: str = "resample", *,
            options: dict | None = None) -> Recovery:
        name = _methods.canonical(method)
        p = self.program(program)
        exp = self.experiment(program, ablation)
        truth = self.truth(program, ablation)
        result = _methods.METHODS[name](exp, **(options or {}))
        scores = scoring.score(exp, result, truth)
        return Recovery(p.name, name, ablation, self.samples, self.seed, result, scores,
                        truth, exp)


def recover(program, method: str, ablation: str = "resample", *,
            samples: int = DEFAULT_SAMPLES, seed: int = 0, complete: bool = True,
            options: dict | None = None, compiled=None) -> Recovery:
    """Run one method on one program under one ablation and score it."""
    session = Session(samples=samples, seed=seed, complete=complete)
    session.program(program, compiled=compiled)
    return session.run(program, method, ablation, options=options)


def sweep(programs: Iterable, methods: Sequence[str] = METHOD_NAMES,
          ablations: Sequence[str] = ("resample", "zero"), *, samples: int = DEFAULT_SAMPLES,
          seed: int = 0, options: dict[str, dict] | None = None, progress: bool = True,
          session: Session | None = None, on_error: str = "record") -> list:
    """Every method on every program under every ablation.

    Returns ``Recovery`` objects, and for a program that fails to compile or to run
    (``on_error="record"``) a dict ``{"program", "method", "ablation", "error"}``.
    ``options`` maps a method name to its keyword options.
    """
    from tqdm.auto import tqdm

    session = session or Session(samples=samples, seed=seed)
    programs = list(programs)
    methods = [_methods.canonical(m) for m in methods]
    jobs = [(p, m, a) for p in programs for a in ablations for m in methods]
    out: list = []
    bar = tqdm(jobs, disable=not progress, unit="run", dynamic_ncols=True)
    for p, m, a in bar:
        name = p if isinstance(p, str) else p.name
        bar.set_description(f"{name} {a} {m}")
        try:
            out.append(session.run(p, m, a, options=(options or {}).get(m)))
        except Exception as err:  # noqa: BLE001 - recorded in the table
            if on_error != "record":
                raise
            out.append({"program": name, "method": m, "ablation": a,
                        "error": f"{type(err).__name__}: {err}"})
    return out


def to_json(runs: Sequence, path: str | Path | None = None) -> str:
    rows = [r.to_dict() if isinstance(r, Recovery) else r for r in runs]
    text = json.dumps(plain(rows), indent=1, default=str)
    if path is not None:
        Path(path).write_text(text + "\n")
    return text





# ---------------------------------------------------------------------------------------
# Tables and plots of many runs: ``Recovery`` objects, error dicts, or stored records
# (``analysis.scoreboard.ScoreRecord``: ``program``, ``method``, ``ablation``, ``scores`` or
# ``error``, and a row ``label``)


def _scored(r) -> bool:
    return not isinstance(r, dict) and getattr(r, "scores", None) is not None


def _row(r) -> str:
    return getattr(r, "label", None) or r.program


def _cell(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def markdown_table(runs: Sequence, *, key: str = "edge_auc", second: str | None = "node_auc"
                   ) -> str:
    """One row per (program, ablation), one column per method: ``key`` (and ``second``)."""
    methods: list[str] = []
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for r in runs:
        if isinstance(r, dict):
            d = r
        elif getattr(r, "error", None) is not None:
            d = {"program": _row(r), "method": r.method, "ablation": r.ablation,
                 "error": r.error}
        else:
            d = {"program": _row(r), "method": r.method, "ablation": r.ablation, **r.scores}
        if d["method"] not in methods:
            methods.append(d["method"])
        row = cells.setdefault((d["program"], d["ablation"]), {})
        if "error" in d:
            row[d["method"]] = "error"
        else:
            text = _cell(d.get(key))
            if second:
                text += f" / {_cell(d.get(second))}"
            row[d["method"]] = text
    head = f"| program | ablation | {' | '.join(methods)} |"
    lines = [head, "|" + "---|" * (len(methods) + 2)]
    for (program, ablation), row in cells.items():
        lines.append(f"| {program} | {ablation} | "
                     + " | ".join(row.get(m, "-") for m in methods) + " |")
    return "\n".join(lines)


def summary_table(runs: Sequence) -> str:
    """Per method and ablation: mean edge / node AUC (defined values only), mean
    precision, recall, faithfulness of the own circuit, and median seconds."""
    groups: dict[tuple[str, str], list] = {}
    for r in runs:
        if _scored(r):
            groups.setdefault((r.method, r.ablation), []).append(r)

    def mean(values):
        v = [x for x in values if x is not None and np.isfinite(x)]
        return float(np.mean(v)) if v else float("nan")

    lines = ["| method | ablation | runs | edge AUC | node AUC | edge AUC (structural) | "
             "precision | recall | faithful outputs | median s |", "|" + "---|" * 10]
    for (method, ablation), rs in sorted(groups.items()):
        faith = [r.scores["faithfulness"]["fraction_unchanged"] for r in rs
                 if r.scores.get("faithfulness")]
        lines.append(
            f"| {method} | {ablation} | {len(rs)} | "
            f"{_cell(mean(r.scores['edge_auc'] for r in rs))} | "
            f"{_cell(mean(r.scores['node_auc'] for r in rs))} | "
            f"{_cell(mean(r.scores['edge_auc_structural'] for r in rs))} | "
            f"{_cell(mean(r.scores.get('precision') for r in rs))} | "
            f"{_cell(mean(r.scores.get('recall') for r in rs))} | "
            f"{_cell(mean(faith))} | "
            f"{np.median([r.scores['seconds'] for r in rs]):.2f} |")
    return "\n".join(lines)


def plot_scoreboard(runs: Sequence, path: str | Path, *, key: str = "edge_auc",
                    title: str = "") -> Path:
    """A heat map per ablation: programs x methods, coloured by ``key``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in runs if _scored(r)]
    ablations = list(dict.fromkeys(r.ablation for r in done))
    methods = list(dict.fromkeys(r.method for r in done))
    programs = list(dict.fromkeys(_row(r) for r in done))
    n = max(1, len(ablations))
    fig, axes = plt.subplots(1, n, figsize=(1.0 + 1.1 * len(methods) * n,
                                            1.2 + 0.32 * len(programs)), squeeze=False)
    for ax, ablation in zip(axes[0], ablations):
        grid = np.full((len(programs), len(methods)), np.nan)
        for r in done:
            if r.ablation == ablation:
                v = r.scores.get(key)
                grid[programs.index(_row(r)), methods.index(r.method)] = (
                    np.nan if v is None else v)
        ax.imshow(grid, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        for i in range(len(programs)):
            for j in range(len(methods)):
                ax.text(j, i, _cell(grid[i, j], 2), ha="center", va="center", fontsize=6.5)
        ax.set_xticks(range(len(methods)), methods, fontsize=7, rotation=30)
        ax.set_yticks(range(len(programs)), programs, fontsize=7)
        ax.set_title(f"{key}, {ablation} ablation", fontsize=8.5)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return scoring.save_figure(fig, path, dpi=120)


__all__ = ["Recovery", "Session", "recover", "sweep", "to_json", "plain", "markdown_table",
           "summary_table", "plot_scoreboard", "METHOD_NAMES"]
