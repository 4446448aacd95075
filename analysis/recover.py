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
    r = recover(rasplab.programs.get("reverse"), "acdc", "resample")
    r.scores["edge_auc"], r.result.circuit_keys(r.experiment.graph)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rasplab.compiler.jsonvalues import plain_value
from rasplab.programs.corruptions import SAME_LENGTH, check_name

from . import methods as _methods
from . import scoring
from .ground_truth import DEFAULT_SAMPLES, GroundTruth, effective_circuit, sample_dataset
from .interventions import ABLATIONS, Experiment, edge_graph, prepare
from .methods.common import MethodResult
from .timing import Clock

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
               "corruption": self.experiment.corruption, "samples": self.samples,
               "seed": self.seed, **self.scores,
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


plain = plain_value  # the one JSON sanitiser (compiler/jsonvalues.py)


TRUTH_SOURCES = ("network", "program")  # network: greedy pruning; program: program_truth


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
                 complete: bool = True, corruption: str = SAME_LENGTH,
                 truth: str = "network"):
        if truth not in TRUTH_SOURCES:
            raise ValueError(f"unknown truth {truth!r}; use {' or '.join(TRUTH_SOURCES)}")
        self.samples, self.seed, self.complete = samples, seed, complete
        self.truth_source = truth
        self.corruption = check_name(corruption)
        self._programs: dict[str, _Program] = {}
        self._experiments: dict[tuple[str, str], Experiment] = {}
        self._truths: dict[tuple[str, str], GroundTruth] = {}
        self._truth_seconds: dict[tuple[str, str], float] = {}

    def program(self, program, *, compiled=None) -> _Program:
        """A ``ProgramSpec`` (anything with ``build``, ``vocab``, ``max_seq_len``,
        ``sample_clean``, ``sample_corrupted``, ``name``), or the name of one this session
        already holds. Analysis never looks names up in the library: the caller does
        (``rasplab.programs.get``)."""
        if isinstance(program, str):
            if program in self._programs:
                return self._programs[program]
            raise TypeError(f"this session holds no program {program!r}: pass its "
                            f"ProgramSpec (rasplab.programs.get({program!r}))")
        spec = program
        name = spec.name
        if name not in self._programs:
            if compiled is None:
                from rasplab.compiler import compile_program

                compiled = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
            clean, corrupted = sample_dataset(spec, self.samples, self.seed, self.corruption)
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
                corrupted=p.corrupted if ablation == "resample" else None, graph=graph,
                corruption=self.corruption)
        return self._experiments[key]

    def truth(self, program, ablation: str) -> GroundTruth:
        p = self.program(program)
        key = (p.name, ablation)
        if key not in self._truths:
            exp = self.experiment(program, ablation)
            with Clock() as c:
                if self.truth_source == "program" and ablation == "resample":
                    from . import program_truth as pt

                    self._truths[key] = pt.as_ground_truth(pt.derive(
                        p.spec, p.compiled, p.clean, p.corrupted, corruption=self.corruption,
                        exp=exp), exp)
                else:  # zero / mean have no program-level meaning: the network's truth
                    self._truths[key] = _own_truth(exp, p.name)
            self._truth_seconds[key] = c.seconds
        return self._truths[key]

    def truth_seconds(self, program, ablation: str) -> float:
        """Wall time the ground truth of (program, ablation) took when it was found."""
        self.truth(program, ablation)
        return self._truth_seconds[(self.program(program).name, ablation)]

    def run(self, program, method: str, ablation: str = "resample", *,
            options: dict | None = None) -> Recovery:
        name = _methods.canonical(method)
        p = self.program(program)
        exp = self.experiment(program, ablation)
        truth = self.truth(program, ablation)
        with Clock() as clock:
            result = _methods.METHODS[name](exp, **(options or {}))
        scores = scoring.score(exp, result, truth)
        # the method's own time, JAX compiling apart (a sweep's first method on a program
        # compiles what later ones reuse), and the ground truth's (found once, cached)
        scores["method_seconds"] = clock.run_seconds
        scores["compile_seconds"] = clock.compile_seconds
        scores["truth_seconds"] = self.truth_seconds(program, ablation)
        scores["truth_source"] = ("program" if self.truth_source == "program"
                                  and ablation == "resample" else "network")
        return Recovery(p.name, name, ablation, self.samples, self.seed, result, scores,
                        truth, exp)


def _own_truth(exp: Experiment, name: str) -> GroundTruth:
    """The model's effective circuit, pruned from its structural edges; an approximate
    model (compressed, retrained: read-out not exact) whose outputs already change with
    everything outside those ablated is pruned from every edge of the complete graph
    instead (its dense weights carry signal the compiled layout does not predict)."""
    try:
        return effective_circuit(exp, program=name)
    except ValueError:
        if exp.compiled.meta.get("readout", "exact") == "exact" or not exp.graph.complete:
            raise
        return effective_circuit(exp, program=name,
                                 start=np.ones(exp.graph.n_edges, np.float32))


def recover(program, method: str, ablation: str = "resample", *,
            samples: int = DEFAULT_SAMPLES, seed: int = 0, complete: bool = True,
            options: dict | None = None, compiled=None, corruption: str = SAME_LENGTH
            ) -> Recovery:
    """Run one method on one program under one ablation and score it."""
    session = Session(samples=samples, seed=seed, complete=complete, corruption=corruption)
    session.program(program, compiled=compiled)
    return session.run(program, method, ablation, options=options)


def sweep(programs: Iterable, methods: Sequence[str] = METHOD_NAMES,
          ablations: Sequence[str] = ("resample", "zero"), *, samples: int = DEFAULT_SAMPLES,
          seed: int = 0, options: dict[str, dict] | None = None, progress: bool = True,
          session: Session | None = None, on_error: str = "record",
          corruption: str = SAME_LENGTH) -> list:
    """Every method on every program under every ablation.

    Returns ``Recovery`` objects, and for a program that fails to compile or to run
    (``on_error="record"``) a dict ``{"program", "method", "ablation", "error"}``.
    ``options`` maps a method name to its keyword options.
    """
    from tqdm.auto import tqdm

    session = session or Session(samples=samples, seed=seed, corruption=corruption)
    programs = list(programs)
    methods = [_methods.canonical(m) for m in methods]
    jobs = [(p, m, a) for p in programs for a in ablations for m in methods]
    out: list = []
    import sys
    import time

    # on a terminal a bar redraws in place; in a log (stderr not a tty) a plain line is
    # written at most every 30 s instead of a stream of redraws
    tty = sys.stderr.isatty()
    bar = tqdm(jobs, disable=not progress or not tty, unit="run", dynamic_ncols=True)
    start = last = time.perf_counter()
    for i, (p, m, a) in enumerate(bar):
        name = p if isinstance(p, str) else p.name
        bar.set_description(f"{name} {a} {m}")
        now = time.perf_counter()
        if progress and not tty and (i == 0 or now - last >= 30.0):
            print(f"[{i + 1}/{len(jobs)}, {now - start:.0f} s] {name} {a} {m}",
                  file=sys.stderr, flush=True)
            last = now
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


def summary_table(runs: Sequence, *, notes: bool = True) -> str:
    """Per method and ablation: mean edge / node AUC (defined values only), mean
    precision, recall, faithfulness of the own circuit, median method seconds (JAX
    compiling apart) and total compile seconds; ``notes`` adds what the columns mean."""
    groups: dict[tuple[str, str], list] = {}
    for r in runs:
        if _scored(r):
            groups.setdefault((r.method, r.ablation), []).append(r)

    def mean(values):
        v = [x for x in values if x is not None and np.isfinite(x)]
        return float(np.mean(v)) if v else float("nan")

    lines = ["| method | ablation | runs | edge AUC | node AUC | edge AUC (structural) | "
             "precision | recall | faithful outputs | median s | compile s |",
             "|" + "---|" * 11]
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
            f"{np.median([_method_seconds(r) for r in rs]):.2f} | "
            f"{sum(r.scores.get('compile_seconds', 0.0) for r in rs):.1f} |")
    return "\n".join(lines) + ("\n\n" + SUMMARY_NOTES if notes else "")


#: What the summary table's columns mean (printed under it).
SUMMARY_NOTES = """\
edge/node AUC: ROC AUC of the method's scores against the ablation-matched truth (the
planted edges this ablation can see on these inputs); "structural" is against every
planted edge. "n/a": undefined, e.g. node AUC when every component is in the target (no
negatives). precision/recall: of the circuit the method picks itself. faithful outputs:
the fraction of output positions (not inputs) left unchanged when everything outside
that circuit is patched. median s: the method's wall time without JAX compiling; compile
s: total JAX compile time of those runs (the first method on a program compiles what
later ones reuse, so this depends on the order)."""


def _method_seconds(r) -> float:
    return float(r.scores.get("method_seconds", r.scores.get("seconds", 0.0)))


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
           "summary_table", "plot_scoreboard", "METHOD_NAMES", "SUMMARY_NOTES"]
