"""Selectors as attention scores: a conjunction of literals over (key, query) tables.

A ``Select`` is a 0/1 table over the (query value, key value) pairs of its two categorical
variables. A compound selector is normalised (negations pushed to the leaves) into a
conjunction of literals, literals over the same (keys, queries) pair are merged into one
table, and the attention score of a key is ``gap * (number of true literals)``; every
selected key then has the same, highest score, so softmax averages uniformly over them.
A negated literal scores ``one_q * one_k - table``, so a ``None`` key or query satisfies it,
as ``SelectorNot`` does in the interpreter.

Disjunctions over different (keys, queries) pairs are not threshold functions of the
literals with a uniform top score; ``compiler.rewrite`` first combines their keys (and
queries) into one tuple-valued SOp each, so such a selector becomes a single ``Select``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import rasp
from .errors import CompileError
from .graph import ProgramGraph
from .values import sort_values


@dataclass
class Literal:
    """``table[q, k]`` (or its negation) over the non-None values of ``queries`` / ``keys``."""

    keys: str
    queries: str
    key_values: list
    query_values: list
    table: np.ndarray  # bool [n_query_values, n_key_values]
    negated: bool = False
    keys_can_be_none: bool = True
    queries_can_be_none: bool = True

    def query_only(self) -> np.ndarray | None:
        """Per query value, the literal's truth if it does not depend on the key, else None.

        Such a literal is scored from the query side and the key's ``one`` alone, so the
        head does not read the key variable at all (no edge that carries nothing).
        """
        if self.negated or self.keys_can_be_none or not self.table.size:
            return None
        rows_const = (self.table == self.table[:, :1]).all(axis=1)
        return self.table[:, 0].copy() if rows_const.all() else None

    def key_only(self) -> np.ndarray | None:
        """Per key value, the truth if it does not depend on the query, else None."""
        if self.negated or self.queries_can_be_none or not self.table.size:
            return None
        cols_const = (self.table == self.table[:1, :]).all(axis=0)
        return self.table[0, :].copy() if cols_const.all() else None

    def holds(self, key, query) -> bool:
        """The literal's truth for a (key value, query value) pair, ``None`` allowed."""
        if key is None or query is None:
            return self.negated
        t = bool(self.table[self.query_values.index(query), self.key_values.index(key)])
        return t != self.negated


Formula = tuple  # ("atom", node_id) | ("not", f) | ("and", f, g) | ("or", f, g)


def _formula(graph: ProgramGraph, sel_id: str) -> Formula:
    node = graph.nodes[sel_id]
    e = node.expr
    if isinstance(e, rasp.Select):
        return ("atom", sel_id)
    if isinstance(e, rasp.SelectorAnd):
        return ("and", _formula(graph, node.children[0]), _formula(graph, node.children[1]))
    if isinstance(e, rasp.SelectorOr):
        return ("or", _formula(graph, node.children[0]), _formula(graph, node.children[1]))
    if isinstance(e, rasp.SelectorNot):
        return ("not", _formula(graph, node.children[0]))
    if isinstance(e, rasp.ConstantSelector):
        raise CompileError(
            f"ConstantSelector {sel_id!r} is for testing the interpreter and cannot be compiled"
        )
    raise CompileError(f"{type(e).__name__} {sel_id!r} is not a selector the compiler knows")


def _atoms(f: Formula) -> list[str]:
    if f[0] == "atom":
        return [f[1]]
    return [a for sub in f[1:] for a in _atoms(sub)]


def _eval_formula(f: Formula, truth: dict):
    """The formula's value; ``truth`` maps atoms to bools or to boolean arrays."""
    op = f[0]
    if op == "atom":
        return truth[f[1]]
    if op == "not":
        return ~_eval_formula(f[1], truth) if _is_array(truth) else not _eval_formula(
            f[1], truth)
    a, b = _eval_formula(f[1], truth), _eval_formula(f[2], truth)
    if op == "and":
        return a & b if _is_array(truth) else a and b
    return a | b if _is_array(truth) else a or b


def _is_array(truth: dict) -> bool:
    return any(isinstance(v, np.ndarray) for v in truth.values())


def _conjuncts(f: Formula, negate: bool = False) -> list[tuple[Formula, bool]] | None:
    """Split ``f`` (or ``not f``) into a flat AND of (sub-formula, negated) groups."""
    op = f[0]
    if op == "not":
        return _conjuncts(f[1], not negate)
    if (op == "and" and not negate) or (op == "or" and negate):
        left, right = _conjuncts(f[1], negate), _conjuncts(f[2], negate)
        return left + right
    return [(f, negate)]


def _predicate_table(graph: ProgramGraph, vs: dict[str, set], atom_id: str) -> tuple:
    e = graph.nodes[atom_id].expr
    keys, queries = graph.nodes[atom_id].children
    for side, sop_id in (("keys", keys), ("queries", queries)):
        if rasp.is_numerical(graph.nodes[sop_id].expr):
            raise CompileError(
                f"Select {atom_id!r}: its {side} {sop_id!r} are numerically encoded; a selector "
                "compares categorical values (mark them categorical)"
            )
    kv = sort_values(v for v in vs[keys] if v is not None)
    qv = sort_values(v for v in vs[queries] if v is not None)
    table = np.zeros((len(qv), len(kv)), dtype=bool)
    for i, q in enumerate(qv):
        for j, k in enumerate(kv):
            try:
                table[i, j] = bool(e.predicate(k, q))
            except Exception:  # noqa: BLE001 - the interpreter raises there too
                table[i, j] = False
    return keys, queries, kv, qv, table


def is_conjunctive(graph: ProgramGraph, sel_id: str) -> bool:
    """Whether every conjunct of the normalised selector reads a single (keys, queries) pair."""
    for sub, _ in _conjuncts(_formula(graph, sel_id)):
        pairs = {tuple(graph.nodes[a].children) for a in _atoms(sub)}
        if len(pairs) > 1:
            return False
    return True


def compile_selector(graph: ProgramGraph, vs: dict[str, set], sel_id: str) -> list[Literal]:
    """The selector as a conjunction of literals, one per distinct (keys, queries) pair."""
    formula = _formula(graph, sel_id)
    if not is_conjunctive(graph, sel_id):
        raise CompileError(f"selector {sel_id!r} mixes OR over different keys/queries")
    groups: dict[tuple[str, str], list[tuple[Formula, bool]]] = {}
    tables: dict[str, tuple] = {a: _predicate_table(graph, vs, a) for a in _atoms(formula)}
    for sub, neg in _conjuncts(formula):
        pair = (tables[_atoms(sub)[0]][0], tables[_atoms(sub)[0]][1])
        groups.setdefault(pair, []).append((sub, neg))

    literals = []
    for (keys, queries), subs in groups.items():
        atoms = sorted({a for sub, _ in subs for a in _atoms(sub)})
        kv, qv = tables[atoms[0]][2], tables[atoms[0]][3]

        # the group's truth on every (query, key) value pair, and on a None pair (all
        # atoms false), evaluated on whole tables at once
        both = {a: tables[a][4] for a in atoms}
        none = {a: False for a in atoms}
        table = np.ones((len(qv), len(kv)), dtype=bool)
        on_none = True
        for sub, neg in subs:
            table &= np.asarray(_eval_formula(sub, both), dtype=bool) != neg
            on_none = on_none and (_eval_formula(sub, none) != neg)
        if on_none:
            lit = Literal(keys, queries, kv, qv, ~table, negated=True)
        else:
            lit = Literal(keys, queries, kv, qv, table)
        lit.keys_can_be_none = None in vs[keys]
        lit.queries_can_be_none = None in vs[queries]
        literals.append(lit)
    return literals


# ---------------------------------------------------------------------------------------
# Causality: can a selector pick a key after its query?


MAX_CAUSAL_CHECKS = 2_000_000  # predicate calls one causality proof may spend


def _local_values(
    graph: ProgramGraph, sop_id: str, tokens: list, max_seq_len: int, memo: dict
) -> list[set] | None:
    """Per position, every value ``sop_id`` can take there, if it depends only on the token
    and the index at that position (built from tokens, indices and Full by Maps and
    SequenceMaps); else None. Tables are ``[position][token]``, folded to sets at the end."""
    table = _local_table(graph, sop_id, tokens, max_seq_len, memo)
    return None if table is None else [set(row) for row in table]


def _local_table(
    graph: ProgramGraph, sop_id: str, tokens: list, max_seq_len: int, memo: dict
) -> list[list] | None:
    if sop_id in memo:
        return memo[sop_id]
    node = graph.nodes[sop_id]
    e = node.expr
    n_tok = len(tokens)
    table: list[list] | None = None
    if isinstance(e, rasp.IndicesType):
        table = [[p] * n_tok for p in range(max_seq_len)]
    elif isinstance(e, rasp.TokensType):
        table = [list(tokens) for _ in range(max_seq_len)]
    elif isinstance(e, rasp.Full):
        table = [[e.fill] * n_tok for _ in range(max_seq_len)]
    elif isinstance(e, (rasp.Map, rasp.SequenceMap)):
        inner = [_local_table(graph, c, tokens, max_seq_len, memo) for c in node.children]
        if all(t is not None for t in inner):
            f = e.f
            table = [
                [
                    None if any(a is None for a in args) else _try(f, *args)
                    for args in zip(*(t[p] for t in inner))
                ]
                for p in range(max_seq_len)
            ]
    memo[sop_id] = table
    return table


def _try(f: Callable, *args):
    try:
        return f(*args)
    except Exception:  # noqa: BLE001
        return None


def _literal_causal(
    graph: ProgramGraph, sel_id: str, tokens: list, max_seq_len: int, negate: bool, memo: dict
) -> bool:
    """True if the Select (negated if ``negate``) selects no later key on any input."""
    node = graph.nodes[sel_id]
    keys = _local_values(graph, node.children[0], tokens, max_seq_len, memo)
    queries = _local_values(graph, node.children[1], tokens, max_seq_len, memo)
    if keys is None or queries is None:
        return False
    cost = sum(len(keys[k]) * len(queries[q]) for q in range(max_seq_len)
               for k in range(q + 1, max_seq_len))
    if cost > MAX_CAUSAL_CHECKS:
        return False
    pred = node.expr.predicate
    for q in range(max_seq_len):
        for k in range(q + 1, max_seq_len):
            for kv in keys[k]:
                for qv in queries[q]:
                    sel = kv is not None and qv is not None and bool(_try(pred, kv, qv))
                    if sel != negate:
                        return False
    return True


def _formula_causal(
    graph: ProgramGraph, f: Formula, tokens: list, max_seq_len: int, negate: bool, memo: dict
) -> bool:
    """True if the formula (negated if ``negate``) provably never selects a later key."""
    op = f[0]
    if op == "not":
        return _formula_causal(graph, f[1], tokens, max_seq_len, not negate, memo)
    if op in ("and", "or"):
        conj = (op == "and") != negate
        parts = [_formula_causal(graph, sub, tokens, max_seq_len, negate, memo) for sub in f[1:]]
        return any(parts) if conj else all(parts)
    return _literal_causal(graph, f[1], tokens, max_seq_len, negate, memo)


def is_causal(graph: ProgramGraph, sel_id: str, tokens: list, max_seq_len: int) -> bool:
    """Whether the selector provably selects no key after its query, for every input.

    A literal is proven when its keys and queries depend only on the token and index at
    their own position: every (key position > query position, token, token) is checked.
    A conjunction needs one proven conjunct; keys computed by attention are not proven.
    """
    tokens = list(tokens) or [None]  # no tokens in the program: one column for the rest
    return _formula_causal(graph, _formula(graph, sel_id), tokens, max_seq_len, False, {})
