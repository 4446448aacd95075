"""A seeded generator of random well-typed RASP programs (the library's generated family).

``random_program(seed)`` returns the same program, and the same source text, for the same
seed on every run: every choice comes from ``numpy.random.default_rng(seed)``. The
generator tracks the values each S-op can take (an over-approximation), so lookup tables
are drawn over the values that can reach them, and it only builds total programs: every
categorical Aggregate selects positions that share one value (at most one position, or
keys equal to the aggregated S-op), and numerical means average 0/1 flags (sometimes
small non-binary values). Functions are small objects with a readable ``repr``, so the
``source`` rebuilds the program with ``rasp`` and this module's names in scope.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rasplab.compiler import rasp

INT_VOCAB = (0, 1, 2, 3)
STR_VOCAB = ("a", "b", "c")
POOLS = {
    "int": (0, 1, 2, 3),
    "str": ("x", "y", "z"),
    "bool": (False, True),
}


# --- functions with a readable repr ------------------------------------------------------


class Lookup:
    """``x -> table.get(x, default)``."""

    def __init__(self, table: dict, default):
        self.table, self.default = dict(table), default

    def __call__(self, x):
        return self.table.get(x, self.default)

    def __repr__(self) -> str:
        return f"Lookup({self.table!r}, {self.default!r})"


class Lookup2:
    """``(x, y) -> table.get((x, y), default)``."""

    def __init__(self, table: dict, default):
        self.table, self.default = dict(table), default

    def __call__(self, x, y):
        return self.table.get((x, y), self.default)

    def __repr__(self) -> str:
        return f"Lookup2({self.table!r}, {self.default!r})"


_ARITH: dict[str, Callable] = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "max": max,
    "min": min,
}


class Arith:
    """A binary operator on numbers: ``add``, ``sub``, ``max`` or ``min``."""

    def __init__(self, op: str):
        self.op = op

    def __call__(self, x, y):
        return _ARITH[self.op](x, y)

    def __repr__(self) -> str:
        return f"Arith({self.op!r})"


class Above:
    """``v -> v > threshold`` (a numerical S-op to a categorical boolean)."""

    def __init__(self, threshold: float):
        self.threshold = threshold

    def __call__(self, v) -> bool:
        return v > self.threshold

    def __repr__(self) -> str:
        return f"Above({self.threshold!r})"


class Pairs:
    """A selector predicate: ``(key, query)`` is one of ``pairs``."""

    def __init__(self, pairs):
        self.pairs = frozenset(pairs)

    def __call__(self, key, query) -> bool:
        return (key, query) in self.pairs

    def __repr__(self) -> str:
        return f"Pairs({sorted(self.pairs, key=repr)!r})"


class Shift:
    """``i -> i + offset`` on indices (a pointer for a one-position Aggregate)."""

    def __init__(self, offset: int):
        self.offset = offset

    def __call__(self, i):
        return i + self.offset

    def __repr__(self) -> str:
        return f"Shift({self.offset})"


# --- the generator -----------------------------------------------------------------------


@dataclass
class _Var:
    name: str  # its Python name in the source
    sop: rasp.SOp
    values: frozenset  # the non-None values it can take
    none: bool  # whether it can be None
    numerical: bool


@dataclass(frozen=True)
class RandomProgram:
    """A generated program with its vocabulary, length, operations and source text."""

    seed: int
    program: rasp.SOp
    vocab: tuple
    max_seq_len: int
    ops: tuple[str, ...]
    source: str


def _key(v):
    return (type(v).__name__, v)


def _sorted(values) -> list:
    return sorted(values, key=_key)


def _is_num(v) -> bool:
    return isinstance(v, (int, float))


class _Builder:
    def __init__(self, rng: np.random.Generator, vocab: tuple, max_seq_len: int):
        self.rng, self.vocab, self.n = rng, vocab, max_seq_len
        self.vars = [
            _Var("tokens", rasp.tokens, frozenset(vocab), False, False),
            _Var("indices", rasp.indices, frozenset(range(max_seq_len)), False, False),
        ]
        self.lines: list[str] = []
        self.ops: list[str] = []
        self.n_sel = 0

    # -- choices ---------------------------------------------------------------------------
    def choice(self, items):
        items = list(items)
        return items[int(self.rng.integers(0, len(items)))]

    def pick(self, ok: Callable[[_Var], bool]) -> _Var | None:
        """A variable passing ``ok``: usually the newest one (so programs grow deep)."""
        cands = [v for v in self.vars if ok(v)]
        if not cands:
            return None
        return cands[-1] if self.rng.random() < 0.6 else self.choice(cands)

    def categorical(self, limit: int) -> Callable[[_Var], bool]:
        return lambda v: not v.numerical and 0 < len(v.values) <= limit

    def add(self, src: str, sop: rasp.SOp, values, none: bool, numerical: bool) -> _Var:
        name = f"v{len(self.vars) - 2}"
        self.lines.append(f"{name} = {src}")
        var = _Var(name, sop.named(name), frozenset(values), bool(none), numerical)
        self.vars.append(var)
        return var

    def table(self, domain) -> Lookup:
        pool = POOLS[self.choice(sorted(POOLS))]
        return Lookup({x: self.choice(pool) for x in _sorted(domain)}, self.choice(pool))

    # -- selectors -------------------------------------------------------------------------
    def predicate(self, keys: _Var, queries: _Var):
        kinds = ["EQ", "NEQ", "TRUE", "pairs"]
        both = keys.values | queries.values
        if all(_is_num(v) for v in both) or all(isinstance(v, str) for v in both):
            kinds += ["LT", "LEQ", "GT", "GEQ"]
        kind = self.choice(kinds)
        if kind == "pairs":
            pairs = [(k, q) for k in _sorted(keys.values) for q in _sorted(queries.values)]
            chosen = [p for p in pairs if self.rng.random() < 0.4]
            pred = Pairs(chosen)
            return pred, repr(pred)
        return rasp.Comparison[kind], f"rasp.Comparison.{kind}"

    def selector(self) -> tuple[rasp.Selector, str]:
        ok = self.categorical(8)
        keys = self.pick(ok) or self.vars[0]
        queries = self.choice([v for v in self.vars if ok(v)] or [self.vars[1]])
        pred, pred_src = self.predicate(keys, queries)
        sel = rasp.Select(keys.sop, queries.sop, pred)
        src = f"rasp.Select({keys.name}, {queries.name}, {pred_src})"
        if self.rng.random() < 0.25:  # a composite selector: and an order on the indices
            op = self.choice(["LT", "LEQ", "GT"])
            sel = sel & rasp.Select(rasp.indices, rasp.indices, rasp.Comparison[op])
            src = f"({src} & rasp.Select(indices, indices, rasp.Comparison.{op}))"
        return self.name_selector(sel, src)

    def name_selector(self, sel: rasp.Selector, src: str) -> tuple[rasp.Selector, str]:
        name = f"s{self.n_sel}"
        self.n_sel += 1
        self.lines.append(f"{name} = {src}")
        return sel.named(name), name

    # -- operations ------------------------------------------------------------------------
    def op_map(self) -> _Var:
        x = self.pick(self.categorical(12)) or self.vars[0]
        f = self.table(x.values)
        out = {f(v) for v in x.values}
        return self.add(f"rasp.Map({f!r}, {x.name})", rasp.Map(f, x.sop), out, x.none, False)

    def op_sequence_map(self) -> _Var:
        a = self.pick(self.categorical(6)) or self.vars[0]
        b = self.choice([v for v in self.vars if self.categorical(6)(v) and v is not a]
                        or [self.vars[1]])
        nums = [v for v in a.values | b.values]
        if all(_is_num(v) and not isinstance(v, bool) for v in nums) and self.rng.random() < 0.5:
            f = Arith(self.choice(sorted(_ARITH)))
            out = {f(p, q) for p in a.values for q in b.values}
        else:
            pool = POOLS[self.choice(sorted(POOLS))]
            table = {
                (p, q): self.choice(pool) for p in _sorted(a.values) for q in _sorted(b.values)
            }
            f = Lookup2(table, self.choice(pool))
            out = set(table.values())
        sop = rasp.SequenceMap(f, a.sop, b.sop)
        return self.add(f"rasp.SequenceMap({f!r}, {a.name}, {b.name})", sop, out,
                        a.none or b.none, False)

    def op_mean(self) -> _Var:
        """A numerical mean of a 0/1 flag (sometimes of small numbers) over a selector."""
        x = self.pick(lambda v: not v.none and self.categorical(12)(v)) or self.vars[0]
        binary = self.rng.random() < 0.8
        pool = (0, 1) if binary else (0, 1, 2)
        f = Lookup({v: self.choice(pool) for v in _sorted(x.values)}, 0)
        flag = self.add(f"rasp.numerical(rasp.Map({f!r}, {x.name}))",
                        rasp.numerical(rasp.Map(f, x.sop)), {f(v) for v in x.values}, False,
                        True)
        sel, sel_name = self.selector()
        sop = rasp.numerical(rasp.Aggregate(sel, flag.sop, default=0))
        means = {k / m for m in range(1, self.n + 1) for k in range(0, max(pool) * m + 1)}
        return self.add(f"rasp.numerical(rasp.Aggregate({sel_name}, {flag.name}, default=0))",
                        sop, means, False, True)

    def op_threshold(self) -> _Var:
        x = self.pick(lambda v: v.numerical) or self.op_mean()
        f = Above(self.choice([0, 0.25, 0.5, 0.75]))
        return self.add(f"rasp.Map({f!r}, {x.name})", rasp.Map(f, x.sop), {False, True},
                        x.none, False)

    def op_width(self) -> _Var:
        sel, sel_name = self.selector()
        return self.add(f"rasp.SelectorWidth({sel_name})", rasp.SelectorWidth(sel),
                        range(self.n + 1), False, False)

    def op_read(self) -> _Var:
        """A categorical Aggregate reading one position: ``indices`` shifted, or a table."""
        x = self.pick(lambda v: not v.numerical and bool(v.values)) or self.vars[0]
        if self.rng.random() < 0.5:
            f = Shift(self.choice([-2, -1, 1]))
            where = self.add(f"rasp.Map({f!r}, indices)", rasp.Map(f, rasp.indices),
                             {f(i) for i in range(self.n)}, False, False)
        else:
            src = self.pick(self.categorical(8)) or self.vars[0]
            f = Lookup({v: int(self.rng.integers(0, self.n)) for v in _sorted(src.values)}, 0)
            where = self.add(f"rasp.Map({f!r}, {src.name})", rasp.Map(f, src.sop),
                             {f(v) for v in src.values}, src.none, False)
        sel, sel_name = self.name_selector(
            rasp.Select(rasp.indices, where.sop, rasp.Comparison.EQ),
            f"rasp.Select(indices, {where.name}, rasp.Comparison.EQ)",
        )
        return self.add(f"rasp.Aggregate({sel_name}, {x.name})", rasp.Aggregate(sel, x.sop),
                        x.values, True, False)

    def op_match(self) -> _Var:
        """``Aggregate(Select(x, y, EQ), x)``: y's value where x holds it somewhere."""
        x = self.pick(self.categorical(12)) or self.vars[0]
        y = self.choice([v for v in self.vars if self.categorical(12)(v)])
        sel, sel_name = self.name_selector(
            rasp.Select(x.sop, y.sop, rasp.Comparison.EQ),
            f"rasp.Select({x.name}, {y.name}, rasp.Comparison.EQ)",
        )
        return self.add(f"rasp.Aggregate({sel_name}, {x.name})", rasp.Aggregate(sel, x.sop),
                        x.values, True, False)

    OPS: dict[str, Callable] = {
        "map": op_map,
        "sequence_map": op_sequence_map,
        "mean": op_mean,
        "threshold": op_threshold,
        "width": op_width,
        "read": op_read,
        "match": op_match,
    }


def random_program(seed: int) -> RandomProgram:
    """The random program of ``seed`` (3 to 6 operations; the last one is the output)."""
    rng = np.random.default_rng([20261201, seed])
    vocab = INT_VOCAB if rng.random() < 0.5 else STR_VOCAB
    max_seq_len = int(rng.integers(4, 6))
    b = _Builder(rng, vocab, max_seq_len)
    for _ in range(int(rng.integers(3, 7))):
        op = b.choice(sorted(_Builder.OPS))
        b.ops.append(op)
        _Builder.OPS[op](b)
    out = b.vars[-1]
    lines = ["tokens, indices = rasp.tokens, rasp.indices", *b.lines, f"program = {out.name}"]
    return RandomProgram(seed, out.sop, vocab, max_seq_len, tuple(b.ops), "\n".join(lines))
