"""Rewrite selectors that one attention head cannot score uniformly into single Selects.

An OR (or a NOT of an AND) over Selects with different keys or queries is not a threshold
function of its literals with one top score. Combining all its key SOps into one
tuple-valued SOp (a SequenceMap, so one MLP) and likewise its query SOps turns it into a
single ``Select`` whose predicate evaluates the original formula on the tuple components:
exact, at the cost of one MLP and ``|K1| * |K2|`` hidden units.

The tuple SOps cannot represent a ``None`` component (the interpreter's Select treats a
``None`` key as "not selected" per literal, while a ``None`` tuple selects nothing at all),
so inputs that can be ``None`` are refused.
"""

from __future__ import annotations

from . import rasp
from .errors import CompileError
from .graph import ProgramGraph
from .selectors import _atoms, _conjuncts, _eval_formula, _formula, is_conjunctive


def _tuple_of(sops: list[rasp.SOp], name: str) -> tuple[rasp.SOp, list]:
    """One SOp holding all of ``sops`` as a tuple, and per-sop component accessors."""
    if len(sops) == 1:
        return sops[0], [lambda v: v]
    combined: rasp.SOp = rasp.SequenceMap(lambda a, b: (a, b), sops[0], sops[1])
    for sop in sops[2:]:
        combined = rasp.SequenceMap(lambda t, c: (*t, c), combined, sop)
    combined = rasp.categorical(combined.named(name))
    return combined, [lambda t, i=i: t[i] for i in range(len(sops))]


def combine_selectors(program: rasp.SOp, graph: ProgramGraph, vs: dict) -> rasp.SOp | None:
    """A rewritten copy of ``program`` if some selector needs combining, else None.

    Every rebuilt node is named with its id in ``graph``, so the compiled variables keep
    the ids of the user's program. Only the conjuncts that mix (keys, queries) pairs are
    combined; the others (a causal ``Select(indices, indices, LEQ)``, say) stay as they are.
    """
    targets = {
        id(graph.nodes[n.children[0]].expr): n.children[0]
        for n in graph.topo()
        if isinstance(n.expr, (rasp.Aggregate, rasp.SelectorWidth))
        and not is_conjunctive(graph, n.children[0])
    }
    if not targets:
        return None
    memo: dict[int, rasp.RASPExpr] = {}

    def tuple_select(sel_id: str, part: int, formula, negate: bool) -> rasp.Select:
        atoms = sorted(set(_atoms(formula)))
        key_ids, query_ids = [], []
        for a in atoms:
            k, q = graph.nodes[a].children
            key_ids += [k] if k not in key_ids else []
            query_ids += [q] if q not in query_ids else []
        for sop_id in key_ids + query_ids:
            if None in vs[sop_id]:
                raise CompileError(
                    f"selector {sel_id!r} combines Selects over different keys/queries with OR "
                    f"or NOT, and its input {sop_id!r} can be None; give that input a default"
                )
        name = f"{sel_id}:{part}"
        keys, key_at = _tuple_of([rebuild(graph.nodes[k].expr) for k in key_ids], f"{name}:keys")
        queries, query_at = _tuple_of(
            [rebuild(graph.nodes[q].expr) for q in query_ids], f"{name}:queries"
        )
        parts = []
        for a in atoms:
            k, q = graph.nodes[a].children
            parts.append((a, graph.nodes[a].expr.predicate,
                          key_at[key_ids.index(k)], query_at[query_ids.index(q)]))

        def predicate(kt, qt) -> bool:
            truth = {}
            for a, pred, kget, qget in parts:
                kv, qv = kget(kt), qget(qt)
                truth[a] = kv is not None and qv is not None and bool(pred(kv, qv))
            return _eval_formula(formula, truth) != negate

        return rasp.Select(keys, queries, predicate).named(name)

    def from_formula(formula) -> rasp.Selector:
        op = formula[0]
        if op == "atom":
            return rebuild(graph.nodes[formula[1]].expr)
        if op == "not":
            return rasp.SelectorNot(from_formula(formula[1]))
        cls = rasp.SelectorAnd if op == "and" else rasp.SelectorOr
        return cls(from_formula(formula[1]), from_formula(formula[2]))

    def combined(sel_id: str) -> rasp.Selector:
        result = None
        for i, (sub, neg) in enumerate(_conjuncts(_formula(graph, sel_id))):
            pairs = {tuple(graph.nodes[a].children) for a in _atoms(sub)}
            if len(pairs) > 1:
                part = tuple_select(sel_id, i, sub, neg)
            else:
                part = from_formula(("not", sub) if neg else sub)
            result = part if result is None else rasp.SelectorAnd(result, part)
        return result.named(sel_id)

    def rebuild(expr: rasp.RASPExpr) -> rasp.RASPExpr:
        key = id(expr)
        if key in memo:
            return memo[key]
        if key in targets:
            new = combined(targets[key])
        elif isinstance(expr, (rasp.TokensType, rasp.IndicesType, rasp.LengthType, rasp.Full,
                               rasp.ConstantSOp, rasp.ConstantSelector)):
            new = expr
        elif isinstance(expr, rasp.Map):
            new = rasp.Map(expr.f, rebuild(expr.inner), simplify=False)
        elif isinstance(expr, rasp.LinearSequenceMap):
            new = rasp.LinearSequenceMap(rebuild(expr.fst), rebuild(expr.snd),
                                         expr.fst_fac, expr.snd_fac)
        elif isinstance(expr, rasp.SequenceMap):
            new = rasp.SequenceMap(expr.f, rebuild(expr.fst), rebuild(expr.snd))
        elif isinstance(expr, rasp.Aggregate):
            new = rasp.Aggregate(rebuild(expr.selector), rebuild(expr.sop), expr.default)
        elif isinstance(expr, rasp.SelectorWidth):
            new = rasp.SelectorWidth(rebuild(expr.selector))
        elif isinstance(expr, rasp.Select):
            new = rasp.Select(rebuild(expr.keys), rebuild(expr.queries), expr.predicate)
        elif isinstance(expr, (rasp.SelectorAnd, rasp.SelectorOr)):
            new = type(expr)(rebuild(expr.fst), rebuild(expr.snd))
        elif isinstance(expr, rasp.SelectorNot):
            new = rasp.SelectorNot(rebuild(expr.inner))
        else:
            raise CompileError(f"cannot rewrite {type(expr).__name__} {expr.label!r}")
        if new is not expr and key not in targets:
            new.annotations = dict(expr._annotations._inner)
            if key in graph._by_obj:  # not so for the SelectorWidth standing for `length`
                new.named(graph._by_obj[key])
        memo[key] = new
        return new

    return rebuild(program)
