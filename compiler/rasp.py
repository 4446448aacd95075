"""The RASP language: S-ops, selectors, encodings and the reference interpreter.

The public names and signatures follow tracr's ``rasp`` module, so a tracr program runs
after ``from tracr.rasp import rasp`` becomes ``from rasplab.compiler import rasp``.

Semantics of ``None`` (the value an ``Aggregate`` with default ``None`` gives where it
selects nothing), fixed here because the compiler must reproduce them exactly:

* ``Map`` and ``SequenceMap`` give ``None`` where an input is ``None`` (``f`` is not called);
* a ``Select`` never selects a (key, query) pair in which either value is ``None``;
* a numerical ``Aggregate`` averages the selected values, rounding the exact mean once (so
  the result does not depend on summation order); a categorical one returns the single value
  its selected positions share, and raises ``EvaluationError`` when they disagree.

Inputs on which the interpreter raises ``EvaluationError`` (which also wraps any exception
a program's own function raises) are outside the program's domain.
"""

from __future__ import annotations

import abc
import enum
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from fractions import Fraction
from typing import Any, Generic, TypeVar

Value = Any
SelectorValue = list[list[bool]]
VT = TypeVar("VT")
ExprT = TypeVar("ExprT", bound="RASPExpr")


class EvaluationError(ValueError):
    """The interpreter met an input outside the program's domain."""


# ---------------------------------------------------------------------------------------
# Annotations


class _Annotations(Mapping):
    """Immutable-to-users annotations; ``name`` and ``encoding`` get lazy defaults."""

    def __init__(self, expr: RASPExpr, **kwargs: Any):
        self._expr = expr
        self._inner: dict[str, Any] = dict(kwargs)

    def __getitem__(self, key: str) -> Any:
        if key not in self._inner:
            if key not in DEFAULT_ANNOTATORS:
                raise KeyError(f"no annotation {key!r} on {self._expr!r}")
            self._inner[key] = DEFAULT_ANNOTATORS[key](self._expr)
        return self._inner[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._inner)

    def __len__(self) -> int:
        return len(self._inner)


DEFAULT_ANNOTATORS: dict[str, Callable[[RASPExpr], Any]] = {}


class RASPExpr(abc.ABC):
    """Base class of every RASP expression."""

    _ids = itertools.count(1)

    def __init__(self) -> None:
        self._annotations = _Annotations(self)

    @abc.abstractmethod
    def __call__(self, xs: Sequence[Value]) -> Any:
        """Evaluate with the reference interpreter."""

    @property
    def annotations(self) -> Mapping[str, Any]:
        return self._annotations

    @annotations.setter
    def annotations(self, annotations: Mapping[str, Any]) -> None:
        self._annotations = _Annotations(self, **annotations)

    @property
    def name(self) -> str:
        return self.annotations["name"]

    @property
    def has_explicit_name(self) -> bool:
        return "name" in self._annotations._inner and not getattr(self, "_name_defaulted", False)

    @property
    @abc.abstractmethod
    def children(self) -> Sequence[RASPExpr]:
        """Direct dependencies."""

    @property
    def unique_id(self) -> int:
        if not hasattr(self, "_unique_id"):
            self._unique_id = next(self._ids)
        return self._unique_id

    @property
    def label(self) -> str:
        return self.name

    def named(self: ExprT, name: str) -> ExprT:
        return annotate(self, name=name)

    def annotated(self: ExprT, **annotations: Any) -> ExprT:
        return annotate(self, **annotations)


def annotate(expr: ExprT, **annotations: Any) -> ExprT:
    """Add annotations to ``expr`` (new keys override old ones) and return it."""
    name_defaulted = getattr(expr, "_name_defaulted", False) and "name" not in annotations
    expr.annotations = {**expr._annotations._inner, **annotations}
    expr._name_defaulted = name_defaulted
    return expr


# ---------------------------------------------------------------------------------------
# S-ops


class SOp(RASPExpr):
    """A sequence operation: a function from the input sequence to a sequence."""

    def __call__(self, xs: Sequence[Value]) -> list[Value]:
        return evaluate(self, xs)

    def __lt__(self, other: Value) -> SOp:
        return Map(lambda x: x < other, self)

    def __le__(self, other: Value) -> SOp:
        return Map(lambda x: x <= other, self)

    def __eq__(self, other: Value) -> SOp:  # type: ignore[override]
        return Map(lambda x: x == other, self)

    def __ne__(self, other: Value) -> SOp:  # type: ignore[override]
        return Map(lambda x: x != other, self)

    def __gt__(self, other: Value) -> SOp:
        return Map(lambda x: x > other, self)

    def __ge__(self, other: Value) -> SOp:
        return Map(lambda x: x >= other, self)

    __hash__ = object.__hash__

    def __add__(self, other: SOp | Value) -> SOp:
        if isinstance(other, SOp):
            return SequenceMap(lambda x, y: x + y, self, other)
        return Map(lambda x: x + other, self)

    def __radd__(self, other: SOp | Value) -> SOp:
        if isinstance(other, SOp):
            return SequenceMap(lambda x, y: x + y, other, self)
        return Map(lambda x: other + x, self)

    def __sub__(self, other: SOp | Value) -> SOp:
        if isinstance(other, SOp):
            return SequenceMap(lambda x, y: x - y, self, other)
        return Map(lambda x: x - other, self)

    def __rsub__(self, other: SOp | Value) -> SOp:
        if isinstance(other, SOp):
            return SequenceMap(lambda x, y: x - y, other, self)
        return Map(lambda x: other - x, self)

    def __mul__(self, other: SOp | Value) -> SOp:
        if isinstance(other, SOp):
            return SequenceMap(lambda x, y: x * y, self, other)
        return Map(lambda x: x * other, self)

    def __rmul__(self, other: SOp | Value) -> SOp:
        if isinstance(other, SOp):
            return SequenceMap(lambda x, y: x * y, other, self)
        return Map(lambda x: other * x, self)

    def __truediv__(self, other: SOp | Value) -> SOp:
        if isinstance(other, SOp):
            return SequenceMap(lambda x, y: x / y, self, other)
        return Map(lambda x: x / other, self)

    def __rtruediv__(self, other: SOp | Value) -> SOp:
        if isinstance(other, SOp):
            return SequenceMap(lambda x, y: x / y, other, self)
        return Map(lambda x: other / x, self)

    def __invert__(self) -> SOp:
        return Map(lambda x: not x, self)

    def __and__(self, other: SOp | Value) -> SOp:
        if isinstance(other, SOp):
            return SequenceMap(lambda x, y: x and y, self, other)
        return Map(lambda x: x and other, self)

    def __or__(self, other: SOp | Value) -> SOp:
        if isinstance(other, SOp):
            return SequenceMap(lambda x, y: x or y, self, other)
        return Map(lambda x: x or other, self)

    def __rand__(self, other: SOp | Value) -> SOp:
        if isinstance(other, SOp):
            return SequenceMap(lambda x, y: x and y, other, self)
        return Map(lambda x: other and x, self)

    def __ror__(self, other: SOp | Value) -> SOp:
        if isinstance(other, SOp):
            return SequenceMap(lambda x, y: x or y, other, self)
        return Map(lambda x: other or x, self)


class _Primitive(SOp):
    _label = ""

    @property
    def children(self) -> Sequence[RASPExpr]:
        return []

    @property
    def label(self) -> str:
        return self._label

    def __repr__(self) -> str:
        return self._label


class TokensType(_Primitive):
    """The input tokens."""

    _label = "tokens"


class IndicesType(_Primitive):
    """The position of each token, from 0."""

    _label = "indices"


class LengthType(_Primitive):
    """The input length at every position (compiled as a SelectorWidth)."""

    _label = "length"


tokens = TokensType()
indices = IndicesType()
length = LengthType()


class Map(SOp):
    """Apply ``f`` elementwise to ``inner``; nested Maps merge unless ``simplify=False``."""

    def __init__(self, f: Callable[[Value], Value], inner: SOp, simplify: bool = True):
        super().__init__()
        if not isinstance(inner, SOp):
            raise TypeError(f"Map's input must be an SOp, got {inner!r}")
        if not callable(f) or isinstance(f, RASPExpr):
            raise TypeError(f"Map's function must be a callable, got {f!r}")
        self.f = f
        self.inner = inner
        if simplify and isinstance(inner, Map):
            inner_f = inner.f

            def composed(x: Value) -> Value:
                y = inner_f(x)
                return None if y is None else f(y)  # None propagates as if unmerged

            self.f = composed
            self.inner = inner.inner

    @property
    def children(self) -> Sequence[RASPExpr]:
        return [self.inner]


class SequenceMap(SOp):
    """Apply ``f`` elementwise to the pair (``fst``, ``snd``)."""

    def __init__(self, f: Callable[[Value, Value], Value], fst: SOp, snd: SOp):
        super().__init__()
        if not isinstance(fst, SOp) or not isinstance(snd, SOp):
            raise TypeError("SequenceMap's inputs must be SOps")
        if not callable(f) or isinstance(f, RASPExpr):
            raise TypeError(f"SequenceMap's function must be a callable, got {f!r}")
        self.f = f
        self.fst = fst
        self.snd = snd

    @property
    def children(self) -> Sequence[RASPExpr]:
        return [self.fst, self.snd]


class LinearSequenceMap(SequenceMap):
    """``fst_fac * fst + snd_fac * snd`` elementwise."""

    def __init__(self, fst: SOp, snd: SOp, fst_fac: float, snd_fac: float):
        super().__init__(lambda x, y: fst_fac * x + snd_fac * y, fst, snd)
        self.fst_fac = fst_fac
        self.snd_fac = snd_fac


class Full(SOp):
    """The constant ``fill`` at every position."""

    def __init__(self, fill: Value):
        super().__init__()
        self.fill = fill

    @property
    def children(self) -> Sequence[RASPExpr]:
        return []


class ConstantSOp(SOp, Generic[VT]):
    """A fixed sequence (for tests of the interpreter; not compilable)."""

    def __init__(self, value: Sequence[VT], check_length: bool = True):
        super().__init__()
        self.value = value
        self.check_length = check_length

    @property
    def children(self) -> Sequence[RASPExpr]:
        return []


def sop_not(sop: SOp) -> SOp:
    return Map(lambda x: not x, sop)


# ---------------------------------------------------------------------------------------
# Selectors


class Comparison(enum.Enum):
    """Two-place predicates for ``Select``; called as ``predicate(key, query)``."""

    EQ = "=="
    LT = "<"
    LEQ = "<="
    GT = ">"
    GEQ = ">="
    NEQ = "!="
    TRUE = "True"
    FALSE = "False"

    def __call__(self, key: Value, query: Value) -> bool:
        if key is None or query is None:
            return False
        return _COMPARISONS[self](key, query)


_COMPARISONS: dict[Comparison, Callable[[Value, Value], bool]] = {
    Comparison.EQ: lambda k, q: k == q,
    Comparison.LT: lambda k, q: k < q,
    Comparison.LEQ: lambda k, q: k <= q,
    Comparison.GT: lambda k, q: k > q,
    Comparison.GEQ: lambda k, q: k >= q,
    Comparison.NEQ: lambda k, q: k != q,
    Comparison.TRUE: lambda k, q: True,
    Comparison.FALSE: lambda k, q: False,
}


class Selector(RASPExpr):
    """A boolean query-by-key matrix: which positions each position attends to."""

    def __call__(self, xs: Sequence[Value]) -> SelectorValue:
        return evaluate(self, xs)

    def __and__(self, other: Selector) -> Selector:
        return selector_and(self, other)

    def __rand__(self, other: Selector) -> Selector:
        return selector_and(other, self)

    def __or__(self, other: Selector) -> Selector:
        return selector_or(self, other)

    def __ror__(self, other: Selector) -> Selector:
        return selector_or(other, self)

    def __invert__(self) -> Selector:
        return selector_not(self)


class Select(Selector):
    """Select key position k for query position q where ``predicate(keys[k], queries[q])``."""

    def __init__(self, keys: SOp, queries: SOp, predicate: Callable[[Value, Value], bool]):
        super().__init__()
        if not isinstance(keys, SOp) or not isinstance(queries, SOp):
            raise TypeError("Select's keys and queries must be SOps")
        self.keys = keys
        self.queries = queries
        self.predicate = predicate

    @property
    def children(self) -> Sequence[RASPExpr]:
        return [self.keys, self.queries]


class ConstantSelector(Selector):
    """A fixed selector matrix (for tests of the interpreter; not compilable)."""

    def __init__(self, value: SelectorValue, check_length: bool = True):
        super().__init__()
        self.value = value
        self.check_length = check_length

    @property
    def children(self) -> Sequence[RASPExpr]:
        return []


class SelectorAnd(Selector):
    def __init__(self, fst: Selector, snd: Selector):
        super().__init__()
        self.fst, self.snd = fst, snd

    @property
    def children(self) -> Sequence[RASPExpr]:
        return [self.fst, self.snd]


class SelectorOr(Selector):
    def __init__(self, fst: Selector, snd: Selector):
        super().__init__()
        self.fst, self.snd = fst, snd

    @property
    def children(self) -> Sequence[RASPExpr]:
        return [self.fst, self.snd]


class SelectorNot(Selector):
    def __init__(self, inner: Selector):
        super().__init__()
        self.inner = inner

    @property
    def children(self) -> Sequence[RASPExpr]:
        return [self.inner]


def _safe(pred: Callable[[Value, Value], bool]) -> Callable[[Value, Value], bool]:
    return lambda k, q: k is not None and q is not None and bool(pred(k, q))


def selector_not(inner: Selector, simplify: bool = True) -> Selector:
    """``~inner``, always a ``SelectorNot``.

    tracr folds ``~Select(k, q, p)`` into ``Select(k, q, not p)``; that would make a pair
    with a ``None`` key unselected under ``~`` but selected under ``SelectorNot``. Keeping
    the ``SelectorNot`` gives both spellings one meaning, and compiles to the same head.
    """
    del simplify
    return SelectorNot(inner)


def _merge(fst: Selector, snd: Selector, combine: Callable[[bool, bool], bool]) -> Select | None:
    if not (isinstance(fst, Select) and isinstance(snd, Select)):
        return None
    if fst.keys is not snd.keys or fst.queries is not snd.queries:
        return None
    p1, p2 = _safe(fst.predicate), _safe(snd.predicate)
    return Select(fst.keys, fst.queries, lambda k, q: combine(p1(k, q), p2(k, q)))


def selector_and(fst: Selector, snd: Selector, simplify: bool = True) -> Selector:
    """``fst & snd``; two Selects over the same keys and queries fold into one."""
    merged = _merge(fst, snd, lambda a, b: a and b) if simplify else None
    return merged or SelectorAnd(fst, snd)


def selector_or(fst: Selector, snd: Selector, simplify: bool = True) -> Selector:
    """``fst | snd``; two Selects over the same keys and queries fold into one."""
    merged = _merge(fst, snd, lambda a, b: a or b) if simplify else None
    return merged or SelectorOr(fst, snd)


class SelectorWidth(SOp):
    """How many key positions the selector selects, per query position."""

    def __init__(self, selector: Selector):
        super().__init__()
        if not isinstance(selector, Selector):
            raise TypeError(f"SelectorWidth needs a Selector, got {selector!r}")
        self.selector = selector

    @property
    def children(self) -> Sequence[RASPExpr]:
        return [self.selector]


class Aggregate(SOp, Generic[VT]):
    """Average ``sop`` over the selected positions; ``default`` where nothing is selected."""

    def __init__(self, selector: Selector, sop: SOp, default: VT | None = None):
        super().__init__()
        if not isinstance(selector, Selector):
            raise TypeError(f"Aggregate needs a Selector, got {selector!r}")
        if not isinstance(sop, SOp):
            raise TypeError(f"Aggregate needs an SOp to aggregate, got {sop!r}")
        if default is not None and not isinstance(default, (str, float, bool, int)):
            raise TypeError(f"Aggregate's default must be None, str, bool or number: {default!r}")
        self.selector = selector
        self.sop = sop
        self.default = default

    @property
    def children(self) -> Sequence[RASPExpr]:
        return [self.selector, self.sop]


# ---------------------------------------------------------------------------------------
# Encodings and names


class Encoding(enum.Enum):
    CATEGORICAL = "categorical"
    NUMERICAL = "numerical"


def numerical(sop: ExprT) -> ExprT:
    """Mark ``sop`` as numerically encoded (one residual dimension holding its value)."""
    return annotate(sop, encoding=Encoding.NUMERICAL)


def categorical(sop: ExprT) -> ExprT:
    """Mark ``sop`` as categorically encoded (one residual dimension per value)."""
    return annotate(sop, encoding=Encoding.CATEGORICAL)


def get_encoding(sop: SOp) -> Encoding:
    return sop.annotations["encoding"]


def is_numerical(sop: SOp) -> bool:
    return get_encoding(sop) == Encoding.NUMERICAL


def is_categorical(sop: SOp) -> bool:
    return get_encoding(sop) == Encoding.CATEGORICAL


def _default_encoding(expr: RASPExpr) -> Encoding:
    if not isinstance(expr, SOp):
        raise TypeError(f"{expr!r} is not an SOp and has no encoding")
    return Encoding.CATEGORICAL


_DEFAULT_NAMES: list[tuple[type, str]] = [
    (TokensType, "tokens"),
    (IndicesType, "indices"),
    (LengthType, "length"),
    (LinearSequenceMap, "linear_sequence_map"),
    (SequenceMap, "sequence_map"),
    (Map, "map"),
    (Full, "full"),
    (ConstantSOp, "constant_sop"),
    (SelectorWidth, "selector_width"),
    (Aggregate, "aggregate"),
    (Select, "select"),
    (SelectorAnd, "selector_and"),
    (SelectorOr, "selector_or"),
    (SelectorNot, "selector_not"),
    (ConstantSelector, "constant_selector"),
    (SOp, "sop"),
    (Selector, "selector"),
]


def default_kind_name(expr: RASPExpr) -> str:
    """The type-based name an unnamed expression gets (``map``, ``aggregate``, ...)."""
    for cls, name in _DEFAULT_NAMES:
        if isinstance(expr, cls):
            return name
    raise TypeError(f"{expr!r} is not a RASP expression")


def _default_name(expr: RASPExpr) -> str:
    expr._name_defaulted = True
    return f"{default_kind_name(expr)}_{expr.unique_id}"


DEFAULT_ANNOTATORS["encoding"] = _default_encoding
DEFAULT_ANNOTATORS["name"] = _default_name
default_encoding = _default_encoding
default_name = _default_name


# ---------------------------------------------------------------------------------------
# The reference interpreter


def exact_mean(xs: Sequence[float]) -> float:
    """The mean rounded once from its exact value, so equal means are equal floats."""
    if all(isinstance(x, int) for x in xs):  # int / int is correctly rounded in Python
        return sum(xs) / len(xs)
    return float(sum(map(Fraction, xs)) / len(xs))


def _mean(selected: list[Value], expr: Aggregate, query_pos: int) -> Value:
    if not selected:
        return expr.default
    if is_numerical(expr):
        if any(v is None for v in selected):
            raise EvaluationError(
                f"numerical Aggregate {expr.label!r} selected a None value at query {query_pos}"
            )
        return exact_mean(selected)
    first = selected[0]
    if any(v != first or (v is None) != (first is None) for v in selected[1:]):
        raise EvaluationError(
            f"categorical Aggregate {expr.label!r} selected different values {selected} at "
            f"query {query_pos}; a categorical aggregate must select positions sharing one "
            "value (mark it numerical to average)"
        )
    return first


class RASPEvaluator(abc.ABC):
    """Interface of an evaluator (tracr's name)."""

    @abc.abstractmethod
    def evaluate(self, expr: RASPExpr, xs: Sequence[Value]) -> Any:
        """Evaluate ``expr`` on ``xs``."""


class DefaultRASPEvaluator(RASPEvaluator):
    """The reference interpreter; shared sub-expressions are evaluated once per call."""

    causal = False

    def evaluate(self, expr: RASPExpr, xs: Sequence[Value]) -> Any:
        return self._eval(expr, list(xs), {})

    def _eval(self, expr: RASPExpr, xs: list[Value], memo: dict[int, Any]) -> Any:
        key = id(expr)
        if key not in memo:
            try:
                memo[key] = self._eval_uncached(expr, xs, memo)
            except EvaluationError:
                raise
            except Exception as err:  # a program function failed: outside the domain
                raise EvaluationError(
                    f"{type(expr).__name__} {expr.label!r} raised {type(err).__name__}: {err} "
                    f"on input {xs!r}"
                ) from err
        return memo[key]

    def _eval_uncached(self, expr: RASPExpr, xs: list[Value], memo: dict[int, Any]) -> Any:
        ev = lambda e: self._eval(e, xs, memo)
        n = len(xs)
        if isinstance(expr, TokensType):
            return list(xs)
        if isinstance(expr, IndicesType):
            return list(range(n))
        if isinstance(expr, LengthType):
            if self.causal:
                return [i + 1 for i in range(n)]
            return [n] * n
        if isinstance(expr, Map):
            return [None if x is None else expr.f(x) for x in ev(expr.inner)]
        if isinstance(expr, SequenceMap):
            return [
                None if x is None or y is None else expr.f(x, y)
                for x, y in zip(ev(expr.fst), ev(expr.snd), strict=True)
            ]
        if isinstance(expr, Full):
            return [expr.fill] * n
        if isinstance(expr, ConstantSOp):
            if expr.check_length and len(expr.value) != n:
                raise EvaluationError(
                    f"constant of length {len(expr.value)} on an input of length {n}"
                )
            return list(expr.value)
        if isinstance(expr, SelectorWidth):
            return [sum(row) for row in ev(expr.selector)]
        if isinstance(expr, Aggregate):
            sel, vals = ev(expr.selector), ev(expr.sop)
            return [
                _mean([v for s, v in zip(row, vals, strict=True) if s], expr, q)
                for q, row in enumerate(sel)
            ]
        if isinstance(expr, Selector):
            return self._mask(self._eval_selector(expr, ev, n))
        raise NotImplementedError(f"cannot evaluate {expr!r}")

    def _eval_selector(self, expr: Selector, ev: Callable, n: int) -> SelectorValue:
        if isinstance(expr, Select):
            keys, queries = ev(expr.keys), ev(expr.queries)
            pred = expr.predicate
            return [
                [k is not None and q is not None and bool(pred(k, q)) for k in keys]
                for q in queries
            ]
        if isinstance(expr, ConstantSelector):
            if expr.check_length and len(expr.value) != n:
                raise EvaluationError("constant selector does not match the input length")
            return [list(map(bool, row)) for row in expr.value]
        if isinstance(expr, SelectorAnd):
            a, b = ev(expr.fst), ev(expr.snd)
            return [[x and y for x, y in zip(r, s)] for r, s in zip(a, b)]
        if isinstance(expr, SelectorOr):
            a, b = ev(expr.fst), ev(expr.snd)
            return [[x or y for x, y in zip(r, s)] for r, s in zip(a, b)]
        if isinstance(expr, SelectorNot):
            return [[not x for x in r] for r in ev(expr.inner)]
        raise NotImplementedError(f"cannot evaluate selector {expr!r}")

    def _mask(self, sel: SelectorValue) -> SelectorValue:
        if not self.causal:
            return sel
        return [[s and k <= q for k, s in enumerate(row)] for q, row in enumerate(sel)]


class CausalEvaluator(DefaultRASPEvaluator):
    """Each position sees only itself and earlier positions: every selector is masked."""

    causal = True


def evaluate(expr: RASPExpr, xs: Sequence[Value]) -> Any:
    """Evaluate ``expr`` on the input sequence ``xs`` with the reference interpreter."""
    return DefaultRASPEvaluator().evaluate(expr, xs)


def causal_evaluate(expr: RASPExpr, xs: Sequence[Value]) -> Any:
    """Evaluate ``expr`` with every selector masked to the current and earlier positions."""
    return CausalEvaluator().evaluate(expr, xs)
