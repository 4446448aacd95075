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
    values = list(values)
    kinds = {type(v) for v in values}
    if kinds <= {int, bool, float} or kinds <= {str}:  # the common cases: no key needed
        return sorted(values)

    def key(v):
        if isinstance(v, (bool, int, float)):
            return (0, float(v), v)  # v breaks ties of large ints that float() merges
        if isinstance(v, str):
            return (1, 0.0, v)
        return (2, 0.0, repr(v))

    return sorted(values, key=key)


def is_number(v) -> bool:
    """A program number: int, float (not NaN) or bool."""
    if isinstance(v, float):
        return not math.isnan(v)
    return isinstance(v, int)  # bools included


def all_numbers(values: Iterable) -> bool:
    """Whether every value other than ``None`` is a number (``is_number``)."""
    values = [v for v in values if v is not None]
    kinds = {type(v) for v in values}
    if kinds <= {int, bool}:
        return True
    if kinds <= {int, bool, float}:
        return not any(v != v for v in values)  # NaN is the only value unequal to itself
    return all(map(is_number, values))


def _mean_values(values: set, max_seq_len: int, where: str) -> set:
    """Every value ``rasp.exact_mean`` can take for 1..max_seq_len picks from ``values``."""
    if all(isinstance(v, int) for v in values):
        exact: list = sorted(values)  # integer sums; int / int rounds once, as exact_mean does
        sums: set = {0}
    else:
        exact = sorted({Fraction(v) for v in values})
        sums = {Fraction(0)}
    means: set = set()
    for n in range(1, max_seq_len + 1):
        sums = {s + v for s in sums for v in exact}
        if len(sums) * (max_seq_len - n + 1) > 50 * MAX_VALUES:
            raise CompileError(
                f"{where}: the numerical mean can take too many values (over {MAX_VALUES}) for "
                f"max_seq_len {max_seq_len}; use fewer distinct input values or a shorter length"
            )
        means.update(float(s / n) for s in sums)
    return means


REL_TOL = 1e-9  # numbers closer than this (relative) are one value: float64 rounding noise


def same_value(a, b) -> bool:
    """Equality of program values, numbers up to float64 rounding noise (``REL_TOL``).

    ``3/5 - 1/5`` is ``0.39999999999999997`` and ``2/5`` is ``0.4``: the interpreter gives
    either for the same rational depending on the input, and no float32 model can (or
    should) tell them apart. Use this to compare compiled outputs with interpreted ones.
    """
    if a is None or b is None:
        return a is None and b is None
    if is_number(a) and is_number(b) and not isinstance(a, str):
        return math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=REL_TOL)
    return a == b


def outputs_match(got: list, expected: list) -> bool:
    """Whether two output sequences agree position by position under ``same_value``."""
    return len(got) == len(expected) and all(map(same_value, got, expected))


def _canonical(values: set) -> dict:
    """Map each number that has a rounding-noise twin to its class representative (the
    member with the shortest repr); numbers alone in their class are left out."""
    nums = sorted(v for v in values if v is not None)
    if len(nums) < 2 or all(isinstance(v, int) for v in nums):  # ints carry no noise
        return {}
    floats = [float(v) for v in nums]
    rep_of: dict = {}
    first = 0  # a class: the members same_value to its first (smallest) member
    for i in range(1, len(nums) + 1):
        if i == len(nums) or not math.isclose(
            floats[first], floats[i], rel_tol=REL_TOL, abs_tol=REL_TOL
        ):
            if i - first > 1:
                group = nums[first:i]
                rep = min(group, key=lambda x: (len(repr(x)), x))
                rep_of.update({x: rep for x in group})
            first = i
    return rep_of


def _consistent(where: str, results: dict) -> None:
    """``results`` maps an input class to the outputs its members gave; they must agree."""
    for key, outs in results.items():
        if len(outs) == 1:
            continue
        first = outs[0]
        for o in outs[1:]:
            if not same_value(o, first):
                raise CompileError(
                    f"{where} gives {first!r} and {o!r} on inputs that differ only by float64 "
                    f"rounding (near {key!r}); round its numerical input first, e.g. "
                    "Map(lambda x: round(x, 6), ...)"
                )


def _record(raised: dict, node_id: str, args: tuple, err: Exception) -> None:
    entries = raised.setdefault(node_id, [])
    if len(entries) < MAX_RAISES:
        entries.append((args, type(err).__name__))


def _add(out: dict, value, where: str, arg=None) -> None:
    """Add to a value set kept as a dict, refusing ``True`` next to ``1`` (and the like),
    unhashable values and NaN (``arg`` is the input that gave ``value``, for the message).

    Python's sets merge equal values of different types; a later function could still
    tell them apart (``type``, ``str``), so one direction cannot stand for both.
    """
    try:
        prev = out.setdefault(value, value)
    except TypeError:
        raise CompileError(
            f"{where} returns {value!r} (a {type(value).__name__}) on input {arg!r}: program "
            "values must be hashable; return a tuple instead of a list, a frozenset instead "
            "of a set"
        ) from None
    if prev is value:
        if isinstance(value, float) and value != value:
            raise CompileError(
                f"{where} returns NaN on input {arg!r}: NaN equals nothing, not even itself, "
                "so no residual direction can stand for it; return None or a number"
            )
        return
    if type(prev) is type(value):
        return
    if prev is not None and isinstance(prev, bool) != isinstance(value, bool):
        raise CompileError(
            f"{where} can give both {prev!r} and {value!r}, equal values of different types "
            "that one residual direction cannot keep apart; return one type"
        )


MAX_RAISES = 10_000  # raising inputs recorded per function (``raised``)


def compute_value_sets(
    graph: ProgramGraph, vocab: set, max_seq_len: int, raised: dict | None = None
) -> dict[str, set]:
    """Value set of every S-op node, keyed by node id.

    Numerical sets hold one representative per class of values that differ only by float64
    rounding; functions of a numerical input are evaluated on every member and must agree
    within each class. ``raised``, if given, receives for each Map/SequenceMap whose
    function raised the inputs it raised on (class representatives, as tuples) and the
    exception's type name: ``{node_id: [((x,), "ZeroDivisionError"), ...]}``.
    """
    vs: dict[str, set] = {}
    raw: dict[str, set] = {}  # every member, before merging rounding-noise duplicates
    rep_of: dict[str, dict] = {}

    def cls(node_id: str, v):
        return rep_of.get(node_id, {}).get(v, v) if v is not None else None

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
            inner = node.children[0]
            found: dict = {}
            results: dict = {}
            track = bool(rep_of.get(inner))  # else every input class has one member
            for x in raw[inner]:
                if x is None:
                    found[None] = None
                    continue
                try:
                    y = expr.f(x)
                except Exception as err:  # noqa: BLE001 - outside the domain, see module doc
                    if raised is not None:
                        _record(raised, node.id, (cls(inner, x),), err)
                    continue
                _add(found, y, where, x)
                if track:
                    results.setdefault(cls(inner, x), []).append(y)
            _consistent(where, results)
            out = set(found)
        elif isinstance(expr, rasp.SequenceMap):
            a_id, b_id = node.children
            a, b = raw[a_id], raw[b_id]
            if len(a) * len(b) > MAX_TABLE:
                raise CompileError(
                    f"{where}: {len(a)} x {len(b)} input combinations are too many to tabulate"
                )
            found = {}
            results = {}
            track = bool(rep_of.get(a_id) or rep_of.get(b_id))
            for x in a:
                for y in b:
                    if x is None or y is None:
                        found[None] = None
                        continue
                    try:
                        z = expr.f(x, y)
                    except Exception as err:  # noqa: BLE001
                        if raised is not None:
                            _record(raised, node.id, (cls(a_id, x), cls(b_id, y)), err)
                        continue
                    _add(found, z, where, (x, y))
                    if track:
                        results.setdefault((cls(a_id, x), cls(b_id, y)), []).append(z)
            _consistent(where, results)
            out = set(found)
        elif isinstance(expr, rasp.SelectorWidth):
            out = set(range(max_seq_len + 1))
        elif isinstance(expr, rasp.Aggregate):
            inner = raw[node.children[1]]
            if rasp.is_numerical(expr):
                bad = [v for v in inner if v is not None and not is_number(v)]
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
        raw[node.id] = out
        if rasp.is_numerical(expr) and all_numbers(out):
            rep = rep_of[node.id] = _canonical(out)
            vs[node.id] = {rep.get(v, v) for v in out}
        else:
            vs[node.id] = out
    return vs
