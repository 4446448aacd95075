"""Every program variable at every position, interpreted and read off the residual stream.

``trace(model, tokens)`` runs one input and returns, for each program variable in the
order the model computes it, the value the reference interpreter gives at each position
(when the program is known) and the value decoded from each residual site where the
variable is present: from the site right after the block that writes it (the embedding for
tokens, indices and constants) to the end of the model. Side by side they show where a
model and its program part ways, if they ever do::

    model = compile_rasp_to_model(program, vocab={1, 2, 3}, max_seq_len=5)
    t = model.trace([3, 1, 2])
    print(t.table())                 # one row per variable, one column per position
    t.variables[-1].interpreted      # [..] the interpreter's values
    t.variables[-1].decoded          # {"blocks.1.hook_resid_post": [..], ...}

Sites are named as in TransformerLens: ``blocks.0.hook_resid_pre`` (after the embedding),
``blocks.{l}.hook_resid_mid`` (after layer ``l``'s attention), ``blocks.{l}.hook_resid_post``
(after its MLP). Positions are the input's, BOS left out.

``outside_domain`` reports inputs on which one of the program's functions raised while
compiling (the compiler records them in ``meta["raises"]``): the model has no value there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import rasp
from .assemble import CompiledProgram
from .values import same_value

EMBED_SITE = "blocks.0.hook_resid_pre"


@dataclass
class VariableTrace:
    """One program variable on one input."""

    name: str
    encoding: str  # "categorical" | "numerical"
    written_by: str  # "embed", "pos", "L0.H1", "L0.MLP" (SelectorWidth: its MLP)
    op: str
    interpreted: list | None  # one value per position; None when the program is unknown
    decoded: dict[str, list] = field(default_factory=dict)  # site -> one value per position

    @property
    def agrees(self) -> bool | None:
        """Whether every site decodes to the interpreter's values (None: no program)."""
        if self.interpreted is None:
            return None
        return all(
            len(vals) == len(self.interpreted)
            and all(_agree(d, i, self.encoding) for d, i in zip(vals, self.interpreted))
            for vals in self.decoded.values()
        )


@dataclass
class Trace:
    """What :func:`trace` found for one input."""

    tokens: list
    sites: list[str]  # residual sites in forward order
    variables: list[VariableTrace]  # in the order the model computes them
    output: list  # the model's decoded output, one per position
    clean: list[bool]  # whether each position's read-out is clean
    outside_domain: list[str] = field(default_factory=list)  # why the input is outside it
    interpreter_error: str | None = None

    @property
    def in_domain(self) -> bool:
        return not self.outside_domain and self.interpreter_error is None

    def variable(self, name: str) -> VariableTrace:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(f"no variable {name!r}; variables: {[v.name for v in self.variables]}")

    def table(self, *, all_sites: bool = False) -> str:
        """A text table: per variable its interpreted values and, per site where it is
        present, the decoded ones (only its first site, unless ``all_sites``)."""
        head = ["variable", "written by", "site"] + [_show(t) for t in self.tokens]
        rows = [head, ["", "", "position"] + [str(i) for i in range(len(self.tokens))]]
        for v in self.variables:
            if v.interpreted is not None:
                rows.append([v.name, f"{v.written_by} {v.op}", "interpreter"]
                            + [_show(x) for x in v.interpreted])
            sites = list(v.decoded) if all_sites else list(v.decoded)[:1]
            for i, site in enumerate(sites):
                name = v.name if v.interpreted is None and i == 0 else ""
                by = f"{v.written_by} {v.op}" if v.interpreted is None and i == 0 else ""
                rows.append([name, by, site] + [_show(x) for x in v.decoded[site]])
        rows.append(["(output)", "unembed", "model output"] + [_show(x) for x in self.output])
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                           for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]
        return "\n".join(lines)


def _show(x: Any) -> str:
    if isinstance(x, float):
        return f"{round(x, 6) + 0.0:.4g}"
    return str(x)


def _agree(decoded: Any, interpreted: Any, encoding: str) -> bool:
    if encoding == "numerical" and interpreted is not None and decoded is not None:
        return abs(float(decoded) - float(interpreted)) < 1e-3 * max(1.0, abs(interpreted))
    if encoding == "numerical" and interpreted is None:
        return decoded is None or abs(float(decoded)) < 1e-3
    return same_value(decoded, interpreted)


def decode_variable(compiled: CompiledProgram, var: str, resid: np.ndarray) -> list:
    """``var`` at every position of one residual ``[T, d]``: a categorical variable's value
    (``None`` where no direction is near 1), a numerical one's raw number."""
    info = compiled.variables[var]
    x = np.asarray(resid, dtype=np.float64)[:, info.dims]
    if info.encoding == "numerical":
        return [float(v[0]) if len(v) else None for v in x]
    if x.shape[1] == 0:
        return [None] * x.shape[0]
    best, top = x.argmax(axis=1), x.max(axis=1)
    return [info.values[int(b)] if t > 0.5 else None for b, t in zip(best, top)]


def _value_index(compiled: CompiledProgram, var: str, resid: np.ndarray) -> list[int | None]:
    """Index into ``variables[var].values`` at every position (numerical: nearest)."""
    info = compiled.variables[var]
    x = np.asarray(resid, dtype=np.float64)[:, info.dims]
    if not info.values or x.shape[1] == 0:
        return [None] * x.shape[0]
    if info.encoding == "numerical":
        grid = np.array([float(v) for v in info.values])
        return [int(np.abs(grid - v[0]).argmin()) for v in x]
    return [int(b) if t > 0.5 else None for b, t in zip(x.argmax(axis=1), x.max(axis=1))]


def outside_domain(compiled: CompiledProgram, resid: np.ndarray) -> list[str]:
    """Why this input is outside the program's domain, from the final residual ``[T, d]``
    of one sequence (BOS at 0): every (function, position) whose input the compiler saw
    make the function raise. Empty when none did (or the model records nothing)."""
    found = []
    for rec in compiled.meta.get("raises", []):
        children = rec["inputs"]
        if any(c not in compiled.variables for c in children):
            continue
        idx = [_value_index(compiled, c, resid) for c in children]
        raising = {tuple(i): e for i, e in zip(map(tuple, rec["index"]), rec["errors"])}
        for t in range(1, resid.shape[0]):
            key = tuple(col[t] for col in idx)
            if None not in key and key in raising:
                args = ", ".join(repr(compiled.variables[c].values[i])
                                 for c, i in zip(children, key))
                found.append(f"{rec['kind']} {rec['node']!r} raises {raising[key]} on "
                              f"({args}) at position {t - 1}")
    return found


def _writers(compiled: CompiledProgram) -> dict[str, tuple[str, str, str]]:
    """variable -> (written by, op, first site where present)."""
    out: dict[str, tuple[str, str, str]] = {}
    for var, info in compiled.variables.items():
        if var == "tokens":
            out[var] = ("embed", "token embedding", EMBED_SITE)
        elif var == "indices":
            out[var] = ("pos", "position embedding", EMBED_SITE)
        elif info.kind == "Full":
            out[var] = ("embed", "constant", EMBED_SITE)
    order = sorted(compiled.components, key=lambda c: (c.layer, c.kind != "attn", c.index))
    for c in order:  # the last block that writes a variable (SelectorWidth: its MLP)
        sub = "mid" if c.kind == "attn" else "post"
        out[c.node] = (c.name, c.op, f"blocks.{c.layer}.hook_resid_{sub}")
    return out


def residual_sites(cache: dict, num_layers: int) -> dict[str, np.ndarray]:
    """The residual stream at every site, forward order, from ``forward``'s capture cache."""
    from .model import cache_site

    sites = {EMBED_SITE: cache_site(cache, "input_embeddings")}
    for layer in range(num_layers):
        sites[f"blocks.{layer}.hook_resid_mid"] = cache_site(cache, "resid_mid", layer)
        sites[f"blocks.{layer}.hook_resid_post"] = cache_site(cache, "resid_post", layer)
    return sites


def interpret(program: rasp.SOp, tokens: Sequence, *, causal: bool = False
              ) -> tuple[dict[str, list | None], str | None]:
    """The interpreter's value of every S-op of ``program`` (by node id) on ``tokens``,
    and the first error (``None`` if the input is inside the domain)."""
    from .graph import trace as program_graph

    graph = program_graph(program)
    evaluator = rasp.CausalEvaluator() if causal else rasp.DefaultRASPEvaluator()
    memo: dict = {}
    values: dict[str, list | None] = {}
    error = None
    for node in graph.topo():
        if not node.is_sop:
            continue
        try:
            values[node.id] = evaluator._eval(node.expr, list(tokens), memo)
        except rasp.EvaluationError as err:
            values[node.id] = None
            error = error or str(err)
    return values, error


def trace(model, tokens: Sequence, *, program: rasp.SOp | None = None) -> Trace:
    """Trace one input (``tokens`` without BOS) through ``model`` (a ``Model``).

    ``program`` defaults to the one the model was compiled from, if it knows it
    (``compile_rasp_to_model`` records it); without one only decoded values are given.
    """
    compiled: CompiledProgram = model.program
    tokens = list(tokens)
    ids = model.encode([tokens])
    resid, cache = model.forward(ids, capture=True)
    cache = {k: np.asarray(v) for k, v in cache.items()}
    sites = {k: v[0] for k, v in residual_sites(cache, compiled.config.num_layers).items()}
    site_names = list(sites)
    final = np.asarray(resid)[0]

    from .model import decode

    decoded_out, clean = decode(compiled, final[None])
    program = program if program is not None else getattr(model, "source_program", None)
    interpreted, error = (interpret(program, tokens, causal=compiled.config.causal)
                          if program is not None else ({}, None))

    writers = _writers(compiled)
    variables = []
    ordered = sorted(writers, key=lambda v: (site_names.index(writers[v][2]), _order(writers[v])))
    for var in ordered:
        by, op, first = writers[var]
        info = compiled.variables[var]
        present = site_names[site_names.index(first):]
        decoded = {s: decode_variable(compiled, var, sites[s])[1:] for s in present}
        interp = interpreted.get(var)  # None: no program, or it raised on this input
        variables.append(VariableTrace(var, info.encoding, by, op, interp, decoded))
    return Trace(
        tokens=tokens, sites=site_names, variables=variables, output=decoded_out[0][1:],
        clean=[bool(c) for c in clean[0][1:]], outside_domain=outside_domain(compiled, final),
        interpreter_error=error,
    )


def _order(writer: tuple[str, str, str]) -> tuple:
    by = writer[0]
    if by in ("embed", "pos"):
        return (0, by)
    head = by.split(".")[1]
    return (1, head == "MLP", int(head[1:]) if head.startswith("H") else 0)


__all__ = ["Trace", "VariableTrace", "trace", "interpret", "outside_domain",
           "decode_variable", "residual_sites"]
