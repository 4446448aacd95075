"""The exact finite set of values each S-op can take for a vocabulary and max length.

A set may contain ``None`` (an aggregate that can select nothing). Sets are
over-approximations of what is reachable (every combination of input values is assumed
possible), never under-approximations, so every reachable value gets a residual direction.
A function that raises on a combination is skipped: the interpreter raises there too, so
such inputs are outside the program's domain.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

from . import rasp
from .errors import CompileError
from .graph import ProgramGraph

MAX_VALUES = 20_000  # largest value set of one variable the compiler accepts
MAX_TABLE = 2_000_000  # largest number of function evaluations to tabulate one node


def sort_values(values: Iterable) -> list:
    """Deterministic order: numbers (bools as numbers) ascending, then strings, then others."""

    def key(v):
        if isinstance(v, (bool, int, float)):
            return (0, float(v), repr(v))
        if isinstance(v, str):
            return (1, 0.0, v)
        return (2, 0.0, repr(v))

    return sorted(values, key=key)


def _is_number(v) -> bool:
    return isinstance(v, (bool, int, float)) and not (isinstance(v, float) and math.isnan(v))


def _mean_values(values: set, max_seq_len: int, where: str) -> set:
    """Every value ``rasp.exact_mean`` can take for 1..max_seq_len picks from ``values``."""
    exact = sorted({Fraction(v) for v in values})
    means: set = set()
    sums: set[Fraction] = {Fraction(0)}
    for n in range(1, max_seq_len + 1):
        sums = {s + v for s in sums for v in exact}
        if len(sums) * (max_seq_len - n + 1) > 50 * MAX_VALUES:
            raise CompileError(
                f"{where}: the numerical mean can take too many values (over {MAX_VALUES}) for "
                f"max_seq_len {max_seq_len}; use fewer distinct input values or a shorter length"
            )
        means.update(float(s / n) for s in sums)
    return means


def compute_value_sets(graph: ProgramGraph, vocab: set, max_seq_len: int) -> dict[str, set]:
    """Value set of every S-op node, keyed by node id."""
    vs: dict[str, set] = {}
    for node in graph.topo():
        expr = node.expr
        where = f"{node.kind} {node.id!r}"
        if not node.is_sop:
            continue
        if isinstance(expr, rasp.TokensType):
            out = set(vocab)
        elif isinstance(expr, rasp.IndicesType):
            out = set(range(max_seq_len))
        elif isinstance(expr, rasp.Full):
            out = {expr.fill}
        elif isinstance(expr, rasp.ConstantSOp):
            raise CompileError(
                f"{where}: ConstantSOp is for testing the interpreter and cannot be compiled; "
                "build the constant from indices with a Map instead"
            )
        elif isinstance(expr, rasp.Map):
            inner = vs[node.children[0]]
            out = set()
            for x in inner:
                if x is None:
                    out.add(None)
                    continue
                try:
                    out.add(expr.f(x))
                except Exception:  # noqa: BLE001 - outside the domain, see module docstring
                    pass
        elif isinstance(expr, rasp.SequenceMap):
            a, b = vs[node.children[0]], vs[node.children[1]]
            if len(a) * len(b) > MAX_TABLE:
                raise CompileError(
                    f"{where}: {len(a)} x {len(b)} input combinations are too many to tabulate"
                )
            out = set()
            for x in a:
                for y in b:
                    if x is None or y is None:
                        out.add(None)
                        continue
                    try:
                        out.add(expr.f(x, y))
                    except Exception:  # noqa: BLE001
                        pass
        elif isinstance(expr, rasp.SelectorWidth):
            out = set(range(max_seq_len + 1))
        elif isinstance(expr, rasp.Aggregate):
            inner = vs[node.children[1]]
            if rasp.is_numerical(expr):
                bad = [v for v in inner if v is not None and not _is_number(v)]
                if bad:
                    raise CompileError(
                        f"{where}: a numerical Aggregate averages numbers, but its input "
                        f"{node.children[1]!r} can be {bad[0]!r}"
                    )
                out = _mean_values({v for v in inner if v is not None}, max_seq_len, where)
                if None in inner:
                    out.add(None)
            else:
                out = set(inner)
            out.add(expr.default)
        else:
            raise CompileError(f"{where}: unsupported expression type {type(expr).__name__}")
        if len(out) > MAX_VALUES:
            raise CompileError(
                f"{where} can take {len(out)} values (limit {MAX_VALUES}); reduce the vocabulary "
                "or max_seq_len, or simplify the function"
            )
        vs[node.id] = out
    return vs
