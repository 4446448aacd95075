"""Interchange interventions in the interpreter: run a program with chosen SOps forced.

``evaluate_forced(program, xs, forced)`` evaluates ``program`` on ``xs`` like
``rasp.evaluate``, except that every SOp named in ``forced`` takes the given values (one per
position) instead of computing them; everything downstream computes from the forced
values. ``interchange(program, base, source, variables)`` forces the variables to the values
they take on ``source``: the high-level counterfactual that interchange-intervention
accuracy scores a network's subspace patches against.

Variables are named by their *node ids*, the names the compiler gives them
(``compiled.variables``: an explicit ``.named(...)`` name, ``tokens``, ``indices``,
``length``, or ``kind_k`` for an unnamed node; see ``compiler.graph.trace``), or passed as
the SOp objects themselves. ``as_compiled`` returns the program the compiler actually
builds (selectors it rewrites into tuple SOps included), so every compiled variable can be
forced.

Rules (both are checked, never guessed):

* **Lengths**: a forced value list must have one value per position of ``xs``, and
  ``interchange`` needs ``base`` and ``source`` of equal length (a value per position has no
  meaning at a position the other input does not have). Anything else raises ``ValueError``.
* **Outside the domain**: forced values can make a later operation fail (a categorical
  ``Aggregate`` that now selects different values, a program function that raises). The
  interpreter then raises ``rasp.EvaluationError`` as it does for any input outside the
  program's domain: such a (base, source) pair has no counterfactual. Callers that score
  accuracy skip it and count it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import rasp
from .graph import trace

VariableKey = str | rasp.SOp


def _expressions(program: rasp.RASPExpr) -> list[rasp.RASPExpr]:
    """Every expression reachable from ``program`` (each once)."""
    seen: dict[int, rasp.RASPExpr] = {}
    stack = [program]
    while stack:
        expr = stack.pop()
        if id(expr) in seen:
            continue
        seen[id(expr)] = expr
        stack.extend(expr.children)
    return list(seen.values())


def variable_ids(program: rasp.SOp) -> dict[str, rasp.SOp]:
    """Node id (as the compiler names it) -> the program's SOp object with that id."""
    graph = trace(program)
    out: dict[str, rasp.SOp] = {}
    for expr in _expressions(program):
        if isinstance(expr, rasp.SOp):
            out[graph.node_of(expr).id] = expr
    return out


def as_compiled(program: rasp.SOp, vocab: Iterable, max_seq_len: int) -> rasp.SOp:
    """The program as ``compile_program`` builds it: selectors that one head cannot score
    are rewritten over tuple SOps (``compiler.rewrite``), which then are variables too. Its
    values equal ``program``'s on every input; its node ids are ``compiled.variables``'s."""
    from .rewrite import combine_selectors
    from .values import compute_value_sets

    graph = trace(program)
    vs = compute_value_sets(graph, set(vocab), max_seq_len)
    rewritten = combine_selectors(program, graph, vs)
    return program if rewritten is None else rewritten


class _ForcedEvaluator(rasp.DefaultRASPEvaluator):
    """The reference interpreter with some SOps' values given instead of computed."""

    def __init__(self, forced: dict[int, list], causal: bool):
        self.forced = forced
        self.causal = causal

    def _eval_uncached(self, expr: rasp.RASPExpr, xs: list, memo: dict[int, Any]) -> Any:
        if id(expr) in self.forced:
            return list(self.forced[id(expr)])
        return super()._eval_uncached(expr, xs, memo)


def _resolve(program: rasp.SOp, keys: Iterable[VariableKey]) -> dict[VariableKey, rasp.SOp]:
    keys = list(keys)
    by_id = variable_ids(program) if any(isinstance(k, str) for k in keys) else {}
    reachable = {id(e) for e in _expressions(program)}
    out: dict[VariableKey, rasp.SOp] = {}
    for key in keys:
        if isinstance(key, str):
            if key not in by_id:
                raise ValueError(
                    f"the program has no SOp {key!r}; its variables are {sorted(by_id)}"
                )
            out[key] = by_id[key]
        elif isinstance(key, rasp.SOp):
            if id(key) not in reachable:
                raise ValueError(f"{key!r} is not part of the program")
            out[key] = key
        else:
            raise ValueError(
                f"a forced variable is an SOp or its node id, got {type(key).__name__} {key!r}"
            )
    return out


def evaluate_forced(
    program: rasp.SOp, xs: Sequence, forced: Mapping[VariableKey, Sequence], *,
    causal: bool = False,
) -> list:
    """``program``'s output on ``xs`` with each SOp in ``forced`` set to the given values.

    Keys are node ids or SOps (see the module docstring); each value list has one entry per
    position of ``xs``. Raises ``ValueError`` for an unknown variable or a wrong length, and
    ``rasp.EvaluationError`` where the forced values put a later operation outside its
    domain. ``causal`` evaluates like ``rasp.causal_evaluate``.
    """
    xs = list(xs)
    sops = _resolve(program, forced)
    by_obj: dict[int, list] = {}
    for key, values in forced.items():
        values = list(values)
        if len(values) != len(xs):
            raise ValueError(
                f"forced values for {key!r} have {len(values)} positions but the input has "
                f"{len(xs)}; give one value per position"
            )
        by_obj[id(sops[key])] = values
    return list(_ForcedEvaluator(by_obj, causal).evaluate(program, xs))


def interchange(
    program: rasp.SOp, base: Sequence, source: Sequence, variables: Iterable[VariableKey], *,
    positions: Iterable[int] | None = None, causal: bool = False,
) -> list:
    """The output on ``base`` with ``variables`` forced to their values on ``source``.

    ``base`` and ``source`` must have equal lengths (``ValueError`` otherwise). With
    ``positions``, only those positions take the source's values (the others keep the
    base's own). Raises ``rasp.EvaluationError`` if ``source`` is outside the domain or the
    forced values put a later operation outside it (the pair has no counterfactual).
    """
    base, source = list(base), list(source)
    if len(base) != len(source):
        raise ValueError(
            f"interchange needs a base and a source of equal length, got {len(base)} and "
            f"{len(source)}; pair inputs of the same length"
        )
    variables = list(variables)
    sops = _resolve(program, variables)
    evaluate = rasp.causal_evaluate if causal else rasp.evaluate
    src = {key: list(evaluate(sops[key], source)) for key in variables}
    if positions is not None:
        chosen = set(positions)
        bad = sorted(p for p in chosen if not 0 <= p < len(base))
        if bad:
            raise ValueError(f"position {bad[0]} is outside an input of length {len(base)}")
        own = {key: list(evaluate(sops[key], base)) for key in variables}
        src = {
            key: [s if i in chosen else b for i, (s, b) in enumerate(zip(src[key], own[key]))]
            for key in variables
        }
    return evaluate_forced(program, base, src, causal=causal)


__all__ = ["as_compiled", "evaluate_forced", "interchange", "variable_ids"]
