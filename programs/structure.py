"""Facts about a program's expression graph: structural tags and tracr compatibility.

Not a builder module: it reads programs, so it may use all of ``rasp``. The checks here
are what the tests use to keep each library entry's tags honest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence

from rasplab.compiler import rasp

_COMPOSITE = (rasp.SelectorAnd, rasp.SelectorOr, rasp.SelectorNot)
_UNCOMPILABLE_BY_TRACR = (rasp.Full, rasp.ConstantSOp, rasp.ConstantSelector, rasp.LengthType)


def walk(program: rasp.RASPExpr) -> Iterator[rasp.RASPExpr]:
    """Every expression the program depends on (itself included), each once."""
    seen: set[int] = set()
    stack = [program]
    while stack:
        expr = stack.pop()
        if id(expr) in seen:
            continue
        seen.add(id(expr))
        yield expr
        stack.extend(expr.children)


def duplicate_names(program: rasp.RASPExpr) -> list[str]:
    """Names carried by more than one distinct expression of the program."""
    counts = Counter(expr.name for expr in walk(program))
    return sorted(name for name, n in counts.items() if n > 1)


def _is_length(expr: rasp.RASPExpr) -> bool:
    sel = getattr(expr, "selector", None)
    return (
        isinstance(expr, rasp.SelectorWidth)
        and isinstance(sel, rasp.Select)
        and sel.predicate is rasp.Comparison.TRUE
    )


def structural_tags(program: rasp.SOp) -> set[str]:
    """The tags of :data:`~rasplab.programs.spec.TAGS` that follow from the graph alone."""
    exprs = list(walk(program))
    kinds = Counter(type(e) for e in exprs)
    mlps = sum(isinstance(e, (rasp.Map, rasp.SequenceMap)) for e in exprs)
    attns = sum(isinstance(e, (rasp.Aggregate, rasp.SelectorWidth)) for e in exprs)
    tags = set()
    if mlps == 0 and kinds[rasp.SelectorWidth] == 0:
        tags.add("attention-only")
    if mlps >= 4 and mlps > attns:
        tags.add("mlp-heavy")
    if any(isinstance(e, rasp.SOp) and rasp.is_numerical(e) for e in exprs):
        tags.add("numerical")
    if kinds[rasp.SelectorWidth]:
        tags.add("selector-width")
    if any(isinstance(e, _COMPOSITE) for e in exprs):
        tags.add("composite-selector")
    if any(_is_length(e) for e in exprs):
        tags.add("uses-length")
    return tags


def tracr_static_issues(program: rasp.SOp) -> list[str]:
    """What tracr's compiler would reject, judged from the graph (its static rules)."""
    issues = []
    for expr in walk(program):
        where = f"{type(expr).__name__} {expr.name!r}"
        if isinstance(expr, _UNCOMPILABLE_BY_TRACR):
            issues.append(f"{where}: tracr cannot compile this expression type")
        elif isinstance(expr, _COMPOSITE):
            issues.append(f"{where}: tracr cannot compile composite selectors")
        elif isinstance(expr, rasp.Select):
            if not (rasp.is_categorical(expr.keys) and rasp.is_categorical(expr.queries)):
                issues.append(f"{where}: keys and queries must be categorical")
        elif isinstance(expr, rasp.Aggregate):
            if rasp.get_encoding(expr) != rasp.get_encoding(expr.sop):
                issues.append(f"{where}: output encoding differs from its input's")
            if rasp.is_categorical(expr) and expr.default is not None:
                issues.append(f"{where}: a categorical aggregate needs default None")
            if rasp.is_numerical(expr) and expr.default != 0:
                issues.append(f"{where}: a numerical aggregate needs default 0")
        elif isinstance(expr, rasp.LinearSequenceMap):
            if not all(rasp.is_numerical(e) for e in (expr, expr.fst, expr.snd)):
                issues.append(f"{where}: LinearSequenceMap must be numerical throughout")
        elif isinstance(expr, rasp.SequenceMap):
            if not all(rasp.is_categorical(e) for e in (expr, expr.fst, expr.snd)):
                issues.append(f"{where}: a non-linear SequenceMap must be categorical throughout")
    return issues


def tracr_dynamic_issues(program: rasp.SOp, inputs: Iterable[Sequence]) -> list[str]:
    """What would go wrong under tracr on these inputs, though rasplab accepts it.

    * a numerical Aggregate averaging values other than 0/1 (tracr's compiler only
      supports binary numerical means);
    * an Aggregate selecting several positions whose values are not plain numbers
      (tracr's interpreter raises);
    * a ``Comparison`` predicate meeting a None key or query (tracr's raises), or any
      predicate raising on the (key, query) pairs it is called with (tracr calls it on
      every pair, None included).
    """
    issues: set[str] = set()
    exprs = list(walk(program))
    for xs in inputs:
        for expr in exprs:
            where = f"{type(expr).__name__} {expr.name!r}"
            if isinstance(expr, rasp.Aggregate):
                vals = rasp.evaluate(expr.sop, xs)
                rows = rasp.evaluate(expr.selector, xs)
                if rasp.is_numerical(expr) and not {v for v in vals} <= {0, 1}:
                    issues.add(f"{where}: numerical mean of non-binary values")
                for row in rows:
                    chosen = [v for s, v in zip(row, vals) if s]
                    if len(chosen) > 1 and not all(
                        isinstance(v, (int, bool)) for v in chosen
                    ):
                        issues.add(f"{where}: averages several non-integer values")
            elif isinstance(expr, rasp.Select):
                keys = rasp.evaluate(expr.keys, xs)
                queries = rasp.evaluate(expr.queries, xs)
                for k in keys:
                    for q in queries:
                        if (k is None or q is None) and isinstance(expr.predicate, rasp.Comparison):
                            issues.add(f"{where}: Comparison predicate meets None")
                            continue
                        try:
                            expr.predicate(k, q)
                        except Exception as exc:  # noqa: BLE001 - reporting, not handling
                            issues.add(
                                f"{where}: predicate raises {type(exc).__name__} on {k!r}, {q!r}"
                            )
    return sorted(issues)


def looks_only_backwards(
    program: rasp.SOp,
    inputs: Iterable[Sequence],
    valid: Callable[[Sequence], bool] | None = None,
) -> bool:
    """Whether each output depends only on the input up to its position.

    Checks, on every input, that the outputs agree with the causal interpreter (every
    selector masked to earlier positions) and with the outputs on each prefix that is
    in the domain (``valid`` true).
    """
    for xs in inputs:
        full = rasp.evaluate(program, xs)
        try:
            masked = rasp.causal_evaluate(program, xs)
        except ValueError:  # masking left a selection outside the program's domain
            return False
        if masked != full:
            return False
        for end in range(1, len(xs)):
            prefix = list(xs[:end])
            if valid is not None and not valid(prefix):
                continue
            if rasp.evaluate(program, prefix) != full[:end]:
                return False
    return True
