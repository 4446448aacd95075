"""Hypothesis strategies for random well-typed RASP programs, and the exactness harness.

``programs()`` draws a :class:`Case`: a program over a small vocabulary with the
``max_seq_len`` to compile it for. The generator tracks, for every S-op it creates, an
over-approximation of the values it can take (and whether it can be ``None``), so the
random lookup tables it draws are defined on every value that can reach them. Every
function in a program is a small callable object with a readable ``repr`` (a dict lookup
with a default, a comparison, an arithmetic operator), so a failing case prints as a
script that rebuilds the program: ``exec(case.source)`` with this module's names in scope.

``check_exact`` compiles a program and compares the model with the interpreter on every
input of lengths 1..max_seq_len, in one batched ``Model.run`` call.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction

from hypothesis import strategies as st
from rasplab.compiler import CompileError, compile_program, rasp

Cmp = rasp.Comparison

INT_VOCAB = (0, 1, 2, 3)
STR_VOCAB = ("a", "b", "c", "d")


# ---------------------------------------------------------------------------------------
# Functions with a readable repr (so a failing program prints as code)


class Table:
    """``x -> table.get(x, default)``: a total, deterministic unary function."""

    def __init__(self, table: dict, default):
        self.table, self.default = dict(table), default

    def __call__(self, x):
        return self.table.get(x, self.default)

    def __repr__(self) -> str:
        return f"Table({self.table!r}, {self.default!r})"


class Table2:
    """``(x, y) -> table.get((x, y), default)``."""

    def __init__(self, table: dict, default):
        self.table, self.default = dict(table), default

    def __call__(self, x, y):
        return self.table.get((x, y), self.default)

    def __repr__(self) -> str:
        return f"Table2({self.table!r}, {self.default!r})"


class PredTable:
    """A selector predicate ``(key, query) -> (key, query) in true_pairs``."""

    def __init__(self, true_pairs):
        self.true_pairs = frozenset(true_pairs)

    def __call__(self, key, query) -> bool:
        return (key, query) in self.true_pairs

    def __repr__(self) -> str:
        return f"PredTable({sorted(self.true_pairs, key=repr)!r})"


class Offset:
    """Selector predicate ``key == query + d`` (numbers only)."""

    def __init__(self, d: int):
        self.d = d

    def __call__(self, key, query) -> bool:
        return key == query + self.d

    def __repr__(self) -> str:
        return f"Offset({self.d})"


ARITH = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "max": lambda x, y: max(x, y),
}


class Arith:
    """A binary arithmetic operator on numbers (``add``/``sub`` are additively separable)."""

    def __init__(self, op: str):
        self.op = op
        self.f = ARITH[op]

    def __call__(self, x, y):
        return self.f(x, y)

    def __repr__(self) -> str:
        return f"Arith({self.op!r})"


class Threshold:
    """``v -> v > t`` (numerical to categorical)."""

    def __init__(self, t):
        self.t = t

    def __call__(self, v) -> bool:
        return v > self.t

    def __repr__(self) -> str:
        return f"Threshold({self.t!r})"


class Affine:
    """``v -> a * v + b``."""

    def __init__(self, a, b):
        self.a, self.b = a, b

    def __call__(self, v):
        return self.a * v + self.b

    def __repr__(self) -> str:
        return f"Affine({self.a!r}, {self.b!r})"


class Square:
    """``v -> v * v`` (the numerical-to-numerical Map tracr compiles wrongly)."""

    def __call__(self, v):
        return v * v

    def __repr__(self) -> str:
        return "Square()"


# ---------------------------------------------------------------------------------------
# Helpers on value sets


def is_number(v) -> bool:
    return isinstance(v, (bool, int, float))


def numeric(values) -> bool:
    return bool(values) and all(is_number(v) for v in values)


def orderable(a, b) -> bool:
    """Whether ``<`` between a value of ``a`` and a value of ``b`` cannot raise."""
    both = set(a) | set(b)
    return bool(both) and (numeric(both) or all(isinstance(v, str) for v in both))


def sort_key(v):
    return (0, float(v), "") if is_number(v) else (1, 0.0, repr(v))


def sorted_values(values) -> list:
    return sorted(values, key=sort_key)


def exact_means(values, max_len: int) -> set:
    """Every mean of 1..max_len picks (with repetition) from ``values``, rounded once."""
    out = set()
    for n in range(1, max_len + 1):
        for combo in itertools.combinations_with_replacement(sorted_values(values), n):
            out.add(float(sum(Fraction(v) for v in combo) / n))
    return out


@dataclass
class Var:
    """An S-op of the program being generated and what the generator knows about it."""

    name: str  # the Python variable in ``Case.source``
    sop: rasp.SOp
    values: frozenset  # non-None values it can take (over-approximation)
    none: bool  # whether it can be None
    numerical: bool

    @property
    def is_numeric_valued(self) -> bool:
        return numeric(self.values)


class Case:
    """A drawn program, with how to compile it and a script that rebuilds it.

    Not a dataclass: hypothesis prints a failing case with this ``repr``, the script.
    """

    def __init__(self, program: rasp.SOp, vocab: tuple, max_seq_len: int, causal: bool,
                 source: str, ops: list[str] | None = None):
        self.program, self.vocab, self.max_seq_len = program, vocab, max_seq_len
        self.causal, self.source, self.ops = causal, source, list(ops or [])

    def __repr__(self) -> str:
        return (
            f"Case(vocab={self.vocab!r}, max_seq_len={self.max_seq_len}, causal={self.causal},"
            f" ops={self.ops})\n{self.source}"
        )


OUTPUT_POOLS = {
    "int": [0, 1, 2, 3, 4],
    "str": ["x", "y", "z", "w"],
    "bool": [False, True],
    "int_none": [0, 1, 2, None],
    "str_none": ["x", "y", None],
}


NAMES = ["x", "y", "x", "out", "map_3", "aggregate_5", "x:keys"]


class _Builder:
    """Draws one program step by step; ``vars`` grows, ``lines`` records the source."""

    def __init__(self, draw, vocab: tuple, max_seq_len: int, causal: bool):
        self.draw, self.vocab, self.n, self.causal = draw, vocab, max_seq_len, causal
        self.vars: list[Var] = []
        self.lines: list[str] = []
        self.ops: list[str] = []
        self.n_sel = 0

    # -- bookkeeping -----------------------------------------------------------------------
    def maybe_named(self, expr, src: str):
        """Sometimes give an explicit name (duplicates and default-looking ones included)."""
        if self.draw(st.integers(0, 5)) == 0:
            label = self.draw(st.sampled_from(NAMES))
            return expr.named(label), f"{src}.named({label!r})"
        return expr, src

    def add(self, expr_src: str, sop: rasp.SOp, values, none: bool, numerical: bool) -> Var:
        sop, expr_src = self.maybe_named(sop, expr_src)
        name = f"v{len(self.vars)}"
        self.lines.append(f"{name} = {expr_src}")
        var = Var(name, sop, frozenset(values), bool(none), numerical)
        self.vars.append(var)
        return var

    def pick(self, pred=lambda v: True, *, recent: bool = True) -> Var | None:
        """A variable satisfying ``pred``; favours the newest (for depth), shrinks to the first."""
        cands = [v for v in self.vars if pred(v)]
        if not cands:
            return None
        if recent and self.draw(st.integers(0, 3)) > 0:
            return cands[-1]
        return self.draw(st.sampled_from(cands))

    def small_cat(self, limit: int = 12):
        return lambda v: not v.numerical and 0 < len(v.values) <= limit

    # -- base S-ops ------------------------------------------------------------------------
    def base(self) -> None:
        self.vars.append(Var("tokens", rasp.tokens, frozenset(self.vocab), False, False))
        self.vars.append(Var("indices", rasp.indices, frozenset(range(self.n)), False, False))
        if self.draw(st.integers(0, 3)) == 0:
            fill = self.draw(st.sampled_from([0, 1, 2, "x"]))
            self.add(f"rasp.Full({fill!r})", rasp.Full(fill), {fill}, False, False)
        if not self.causal and self.draw(st.integers(0, 5)) == 0:
            self.vars.append(
                Var("rasp.length", rasp.length, frozenset(range(self.n + 1)), False, False)
            )

    # -- functions -------------------------------------------------------------------------
    def table(self, domain, pool_name: str | None = None) -> Table:
        pool = OUTPUT_POOLS[pool_name or self.draw(st.sampled_from(sorted(OUTPUT_POOLS)))]
        outs = self.draw(st.lists(st.sampled_from(pool), min_size=len(domain),
                                  max_size=len(domain)))
        default = self.draw(st.sampled_from(pool))
        return Table(dict(zip(sorted_values(domain), outs)), default)

    # -- operations ------------------------------------------------------------------------
    def op_map(self) -> Var:
        x = self.pick(self.small_cat())
        simplify = self.draw(st.integers(0, 3)) == 0
        f = self.table(x.values)
        out = {f(v) for v in x.values} | {f.default}
        sop = rasp.Map(f, x.sop, simplify=simplify)
        return self.add(f"rasp.Map({f!r}, {x.name}, simplify={simplify})", sop,
                        out - {None}, x.none or None in out, False)

    def op_map_to_numerical(self) -> Var:
        """A categorical S-op to numbers (mostly 0/1), numerically encoded."""
        x = self.pick(lambda v: self.small_cat()(v) and not v.none) or self.vars[0]
        pool = self.draw(st.sampled_from(["bool01", "bool01", "small"]))
        outs = [0, 1] if pool == "bool01" else [0, 1, 2, -1, 0.5]
        domain = sorted_values(x.values)
        table = dict(zip(domain, self.draw(st.lists(st.sampled_from(outs), min_size=len(domain),
                                                    max_size=len(domain)))))
        f = Table(table, 0)
        sop = rasp.numerical(rasp.Map(f, x.sop, simplify=False))
        return self.add(f"rasp.numerical(rasp.Map({f!r}, {x.name}, simplify=False))", sop,
                        set(table.values()) | {0}, x.none, True)

    def op_map_from_numerical(self) -> Var:
        x = self.pick(lambda v: v.numerical)
        if x is None:
            return self.op_map_to_numerical()
        vals = sorted_values(x.values)
        kind = self.draw(st.sampled_from(["threshold", "square", "affine", "table"]))
        if kind == "threshold":
            mids = [(a + b) / 2 for a, b in zip(vals, vals[1:])] or [vals[0] - 0.5]
            f = Threshold(self.draw(st.sampled_from(mids + [vals[0]])))
            numerical = False
        elif kind == "square":
            f, numerical = Square(), True
        elif kind == "affine":
            f = Affine(self.draw(st.sampled_from([2, -1, 3, 0.5])),
                       self.draw(st.sampled_from([0, 1, -2])))
            numerical = True
        else:
            if len(vals) > 12:
                return self.op_map_to_numerical()
            f = self.table(vals, self.draw(st.sampled_from(["int", "str", "bool"])))
            numerical = False
        out = {f(v) for v in vals}
        if isinstance(f, Table):
            out.add(f.default)
        simplify = self.draw(st.booleans())
        sop = rasp.Map(f, x.sop, simplify=simplify)
        src = f"rasp.Map({f!r}, {x.name}, simplify={simplify})"
        if numerical:
            sop, src = rasp.numerical(sop), f"rasp.numerical({src})"
        return self.add(src, sop, out, x.none, numerical)

    def op_sequence_map_table(self) -> Var:
        a = self.pick(self.small_cat(8))
        b = self.pick(self.small_cat(8), recent=False)
        domain = [(p, q) for p in sorted_values(a.values) for q in sorted_values(b.values)]
        pool = OUTPUT_POOLS[self.draw(st.sampled_from(sorted(OUTPUT_POOLS)))]
        outs = self.draw(st.lists(st.sampled_from(pool), min_size=len(domain),
                                  max_size=len(domain)))
        f = Table2(dict(zip(domain, outs)), self.draw(st.sampled_from(pool)))
        out = set(outs) | {f.default}
        sop = rasp.SequenceMap(f, a.sop, b.sop)
        return self.add(f"rasp.SequenceMap({f!r}, {a.name}, {b.name})", sop, out - {None},
                        a.none or b.none or None in out, False)

    def _numeric_pair(self) -> tuple[Var, Var] | None:
        ok = lambda v: v.is_numeric_valued and len(v.values) <= 12
        a = self.pick(ok)
        b = self.pick(ok, recent=False)
        return None if a is None or b is None else (a, b)

    def op_sequence_map_arith(self) -> Var:
        pair = self._numeric_pair()
        if pair is None:
            return self.op_sequence_map_table()
        a, b = pair
        f = Arith(self.draw(st.sampled_from(sorted(ARITH))))
        numerical = self.draw(st.booleans()) and not (a.none or b.none)
        out = {f(x, y) for x in a.values for y in b.values}
        sop = rasp.SequenceMap(f, a.sop, b.sop)
        src = f"rasp.SequenceMap({f!r}, {a.name}, {b.name})"
        if numerical:
            sop, src = rasp.numerical(sop), f"rasp.numerical({src})"
        return self.add(src, sop, out, a.none or b.none, numerical)

    def op_linear_sequence_map(self) -> Var:
        pair = self._numeric_pair()
        if pair is None:
            return self.op_sequence_map_table()
        a, b = pair
        fa = self.draw(st.sampled_from([1, -1, 2, 0.5]))
        fb = self.draw(st.sampled_from([1, -1, 3]))
        numerical = self.draw(st.booleans()) and not (a.none or b.none)
        sop = rasp.LinearSequenceMap(a.sop, b.sop, fa, fb)
        out = {fa * x + fb * y for x in a.values for y in b.values}
        src = f"rasp.LinearSequenceMap({a.name}, {b.name}, {fa!r}, {fb!r})"
        if numerical:
            sop, src = rasp.numerical(sop), f"rasp.numerical({src})"
        return self.add(src, sop, out, a.none or b.none, numerical)

    # -- selectors -------------------------------------------------------------------------
    def predicate(self, keys: Var, queries: Var):
        """A predicate and its source: a Comparison, a random table, or an offset."""
        kinds = ["EQ", "NEQ", "TRUE", "FALSE", "table"]
        if orderable(keys.values, queries.values):
            kinds += ["LT", "LEQ", "GT", "GEQ"]
        if numeric(keys.values) and numeric(queries.values):
            kinds.append("offset")
        kind = self.draw(st.sampled_from(kinds))
        if kind == "table":
            pairs = [(k, q) for k in sorted_values(keys.values)
                     for q in sorted_values(queries.values)]
            if len(pairs) > 64:
                return Cmp.EQ, "Cmp.EQ"
            chosen = self.draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
            pred = PredTable(p for p, c in zip(pairs, chosen) if c)
            return pred, repr(pred)
        if kind == "offset":
            pred = Offset(self.draw(st.sampled_from([-1, 1, 2])))
            return pred, repr(pred)
        return Cmp[kind], f"Cmp.{kind}"

    def select(self, none_ok: bool = True) -> tuple[rasp.Selector, str]:
        ok = lambda v: not v.numerical and (none_ok or not v.none) and v.values
        keys = self.pick(ok)
        queries = self.pick(ok, recent=False)
        if keys is None or queries is None:
            keys = queries = self.vars[1]
        pred, src = self.predicate(keys, queries)
        return rasp.Select(keys.sop, queries.sop, pred), (
            f"rasp.Select({keys.name}, {queries.name}, {src})"
        )

    def selector(self) -> tuple[rasp.Selector, str]:
        shapes = ["simple", "simple", "and", "not", "raw_not", "and_not", "or", "not_and"]
        shape = self.draw(st.sampled_from(shapes))
        # an OR over different (keys, queries) pairs is refused when an input can be None
        none_ok = shape not in ("or", "not_and")
        a, a_src = self.select(none_ok)
        if shape == "simple":
            sel, src = a, a_src
        elif shape == "not":
            sel, src = ~a, f"~{a_src}"
        elif shape == "raw_not":  # a real SelectorNot: selects pairs with a None value
            sel, src = rasp.SelectorNot(a), f"rasp.SelectorNot({a_src})"
        else:
            b, b_src = self.select(none_ok)
            if shape == "and":
                sel, src = a & b, f"({a_src} & {b_src})"
            elif shape == "or":
                sel, src = a | b, f"({a_src} | {b_src})"
            elif shape == "and_not":
                sel, src = a & ~b, f"({a_src} & ~{b_src})"
            else:
                sel = rasp.SelectorNot(rasp.SelectorAnd(a, b))
                src = f"rasp.SelectorNot(rasp.SelectorAnd({a_src}, {b_src}))"
        return self.causal_mask(sel, src)

    def causal_mask(self, sel, src):
        if self.causal and self.draw(st.integers(0, 9)) > 0:
            op = self.draw(st.sampled_from(["LEQ", "LT"]))
            sel = sel & rasp.Select(rasp.indices, rasp.indices, Cmp[op])
            src = f"({src} & rasp.Select(indices, indices, Cmp.{op}))"
        return sel, src

    def name_selector(self, sel, src: str) -> str:
        sel, src = self.maybe_named(sel, src)
        self.n_sel += 1
        name = f"s{self.n_sel}"
        self.lines.append(f"{name} = {src}")
        return name

    # -- aggregates ------------------------------------------------------------------------
    def op_numerical_mean(self) -> Var:
        ok = lambda v: v.is_numeric_valued and not v.none and len(v.values) <= 4
        x = self.pick(lambda v: v.numerical and ok(v))
        if x is None or self.draw(st.integers(0, 2)) == 0:
            x = self.pick(ok) if self.draw(st.integers(0, 3)) == 0 else None
            x = x or self.op_map_to_numerical()
        sel, sel_src = self.selector()
        s = self.name_selector(sel, sel_src)
        default = self.draw(st.sampled_from([0, 0, 0, 1, 0.5]))
        sop = rasp.numerical(rasp.Aggregate(sel, x.sop, default=default))
        values = exact_means(x.values, self.n) | {default}
        return self.add(f"rasp.numerical(rasp.Aggregate({s}, {x.name}, default={default!r}))",
                        sop, values, False, True)

    def op_categorical_aggregate(self) -> Var:
        shape = self.draw(st.sampled_from(["at_most_one", "at_most_one", "same_value", "any"]))
        x = self.pick(lambda v: not v.numerical and bool(v.values))
        if shape == "at_most_one":
            # the keys are the (distinct) indices: at most one key matches each query
            if self.draw(st.booleans()):
                src_var = self.pick(self.small_cat())
                dom = sorted_values(src_var.values)
                outs = self.draw(st.lists(st.integers(-1, self.n), min_size=len(dom),
                                          max_size=len(dom)))
                f = Table(dict(zip(dom, outs)), -1)
            else:
                src_var = self.vars[1]
                d = self.draw(st.sampled_from([-1, 1, 2]))
                f = Table({i: i + d for i in range(self.n)}, -1)
            q = self.add(f"rasp.Map({f!r}, {src_var.name}, simplify=False)",
                         rasp.Map(f, src_var.sop, simplify=False),
                         {f(v) for v in src_var.values} | {f.default}, src_var.none, False)
            sel = rasp.Select(rasp.indices, q.sop, Cmp.EQ)
            sel, src = self.causal_mask(sel, f"rasp.Select(indices, {q.name}, Cmp.EQ)")
        elif shape == "same_value":
            y = self.pick(lambda v: not v.numerical and bool(v.values), recent=False)
            sel = rasp.Select(x.sop, y.sop, Cmp.EQ)
            sel, src = self.causal_mask(sel, f"rasp.Select({x.name}, {y.name}, Cmp.EQ)")
        else:
            sel, src = self.selector()
        s = self.name_selector(sel, src)
        default = self.draw(st.sampled_from([None, None, None, 0, "x"]))
        sop = rasp.Aggregate(sel, x.sop, default=default)
        values = set(x.values) | ({default} - {None})
        return self.add(f"rasp.Aggregate({s}, {x.name}, default={default!r})", sop, values,
                        x.none or default is None, False)

    def op_selector_width(self) -> Var:
        sel, src = self.selector()
        s = self.name_selector(sel, src)
        numerical = self.draw(st.integers(0, 4)) == 0
        sop = rasp.SelectorWidth(sel)
        src = f"rasp.SelectorWidth({s})"
        if numerical:
            sop, src = rasp.numerical(sop), f"rasp.numerical({src})"
        return self.add(src, sop, range(self.n + 1), False, numerical)

    OPS = {
        "map": op_map,
        "map_to_numerical": op_map_to_numerical,
        "map_from_numerical": op_map_from_numerical,
        "sequence_map_table": op_sequence_map_table,
        "sequence_map_arith": op_sequence_map_arith,
        "linear_sequence_map": op_linear_sequence_map,
        "numerical_mean": op_numerical_mean,
        "categorical_aggregate": op_categorical_aggregate,
        "selector_width": op_selector_width,
    }


@st.composite
def programs(draw, *, causal: bool = False, max_ops: int = 5, lengths=(3, 4, 5)) -> Case:
    """A random well-typed program, its vocabulary (ints or strings) and max_seq_len."""
    vocab = draw(st.sampled_from([INT_VOCAB, STR_VOCAB]))
    n = draw(st.sampled_from(list(lengths)))
    b = _Builder(draw, vocab, n, causal)
    b.base()
    n_ops = draw(st.integers(1, max_ops))
    for _ in range(n_ops):
        op = draw(st.sampled_from(sorted(_Builder.OPS)))
        b.ops.append(op)
        _Builder.OPS[op](b)
    header = ["tokens, indices = rasp.tokens, rasp.indices"]
    source = "\n".join(header + b.lines + [f"program = {b.vars[-1].name}"])
    return Case(b.vars[-1].sop, vocab, n, causal, source, b.ops)


def rebuild(source: str) -> rasp.SOp:
    """The program a ``Case.source`` script builds (for reproducing a failure)."""
    scope = dict(globals())
    exec(source, scope)  # noqa: S102 - our own generated code
    return scope["program"]


# ---------------------------------------------------------------------------------------
# The exactness harness


def all_inputs(vocab, max_seq_len: int, min_len: int = 1) -> list[list]:
    return [list(xs) for n in range(min_len, max_seq_len + 1)
            for xs in itertools.product(vocab, repeat=n)]


@dataclass
class Result:
    """What comparing one compiled model with the interpreter found."""

    checked: int = 0
    outside_domain: int = 0
    mismatches: list = field(default_factory=list)  # (input, got, expected)


def compare(model, program: rasp.SOp, inputs: list[list], evaluators,
            outside: tuple = (rasp.EvaluationError,)) -> Result:
    """Run ``inputs`` through ``model`` in one batch and compare with each evaluator.

    An input on which an evaluator raises one of ``outside`` (by default
    ``EvaluationError``) is outside the domain and counted, not compared; any other
    exception propagates.
    """
    res = Result()
    if not inputs:
        return res
    outs = model.run(inputs)
    for xs, got in zip(inputs, outs, strict=True):
        expected = []
        for ev in evaluators:
            try:
                expected.append(ev(program, xs))
            except outside:
                expected = None
                break
        if expected is None:
            res.outside_domain += 1
            continue
        res.checked += 1
        for exp in expected:
            if not same_output(got, exp):
                res.mismatches.append((xs, got, exp))
                break
    return res


REL_TOL = 1e-9


def same_value(got, expected) -> bool:
    """None only equals None; numbers agree up to float64 rounding noise (relative 1e-9:
    the interpreter can give ``0.39999999999999997`` or ``0.4`` for the same rational, and
    the compiler treats them as one value); everything else compares with ``==``."""
    if got is None or expected is None:
        return got is None and expected is None
    if is_number(got) and is_number(expected):
        return math.isclose(float(got), float(expected), rel_tol=REL_TOL, abs_tol=REL_TOL)
    return got == expected


def same_output(got: list, expected: list) -> bool:
    """Position by position :func:`same_value`."""
    return len(got) == len(expected) and all(map(same_value, got, expected))


def check_exact(program: rasp.SOp, vocab, max_seq_len: int, *, causal: bool = False,
                inputs: list[list] | None = None) -> Result:
    """Compile (``CompileError`` propagates) and compare on every input (or ``inputs``)."""
    from rasplab.compiler.model import Model

    compiled = compile_program(program, vocab, max_seq_len, causal=causal)
    model = Model(compiled)
    if inputs is None:
        inputs = all_inputs(vocab, max_seq_len)
    evaluators = [rasp.causal_evaluate, rasp.evaluate] if causal else [rasp.evaluate]
    return compare(model, program, inputs, evaluators)


_EXPR_NAME = re.compile(
    r"'(?:tokens|indices|length|map|sequence_map|linear_sequence_map|full|aggregate|"
    r"selector_width|select|selector_and|selector_or|selector_not)(?:_\d+)*(?::\w+)?'"
)


def names_an_expression(message: str, program: rasp.SOp) -> bool:
    """Whether a CompileError message names one of the program's expressions (by its graph
    id, or by the ``kind_k`` id of a node the compiler's rewrites created)."""
    from rasplab.compiler.graph import trace

    ids = trace(program).nodes
    return any(repr(i) in message for i in ids) or bool(_EXPR_NAME.search(message))


__all__ = [
    "Affine", "Arith", "Case", "Cmp", "CompileError", "INT_VOCAB", "Offset", "PredTable",
    "Result", "STR_VOCAB", "Square", "Table", "Table2", "Threshold", "all_inputs",
    "check_exact", "compare", "exact_means", "names_an_expression", "programs", "rasp",
    "rebuild", "same_output",
]
