"""Trace a RASP program into a DAG of nodes with stable, deterministic ids.

Ids depend only on the program's structure and explicit names, never on the process-wide
counters that name unnamed expressions, so compiling the same program in two processes
gives the same labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from . import rasp
from .errors import CompileError


@dataclass
class Node:
    """One expression of the program."""

    id: str
    expr: rasp.RASPExpr
    kind: str  # rasp class name, e.g. "Map", "Aggregate", "Select"
    children: list[str] = field(default_factory=list)

    @property
    def is_sop(self) -> bool:
        return isinstance(self.expr, rasp.SOp)

    @property
    def encoding(self) -> str:
        return rasp.get_encoding(self.expr).value if self.is_sop else "selector"


@dataclass
class ProgramGraph:
    """The program's DAG: ``nodes`` in topological order (children before parents)."""

    nodes: dict[str, Node]
    output: str
    graph: nx.DiGraph

    def node_of(self, expr: rasp.RASPExpr) -> Node:
        return self.nodes[self._by_obj[id(expr)]]

    _by_obj: dict[int, str] = field(default_factory=dict, repr=False)

    def topo(self) -> list[Node]:
        return list(self.nodes.values())

    def consumers(self, node_id: str) -> list[str]:
        return sorted(self.graph.successors(node_id))


def _length_expr() -> rasp.SOp:
    """``length`` as the compiler builds it: the width of an all-true selector."""
    sel = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.TRUE)
    return rasp.SelectorWidth(sel)


def trace(program: rasp.SOp) -> ProgramGraph:
    """Build the DAG of ``program``; unnamed nodes get ``kind_k`` in post-order."""
    if not isinstance(program, rasp.SOp):
        raise CompileError(f"the program must be an SOp, got {type(program).__name__}: {program!r}")
    order: list[rasp.RASPExpr] = []
    seen: set[int] = set()
    length_sub: dict[int, rasp.RASPExpr] = {}

    def children_of(expr: rasp.RASPExpr) -> list[rasp.RASPExpr]:
        if isinstance(expr, rasp.LengthType):
            if id(expr) not in length_sub:
                length_sub[id(expr)] = _length_expr()
            return [length_sub[id(expr)].selector]
        return list(expr.children)

    stack: list[tuple[rasp.RASPExpr, bool]] = [(program, False)]
    while stack:
        expr, done = stack.pop()
        if done:
            order.append(expr)
            continue
        if id(expr) in seen:
            continue
        seen.add(id(expr))
        stack.append((expr, True))
        for child in reversed(children_of(expr)):
            if id(child) not in seen:
                stack.append((child, False))

    by_obj: dict[int, str] = {}
    # the special residual directions and the input primitives own these ids
    used: set[str] = {"one", "bos", "tokens", "indices"}
    counter = 0
    nodes: dict[str, Node] = {}
    for expr in order:
        counter += 1
        if isinstance(expr, (rasp.TokensType, rasp.IndicesType)):
            by_obj[id(expr)] = expr.label
            nodes[expr.label] = Node(expr.label, expr, type(expr).__name__)
            continue
        if isinstance(expr, rasp.LengthType):
            base = expr.label
        elif expr.has_explicit_name:
            base = str(expr.name)
        else:
            base = f"{rasp.default_kind_name(expr)}_{counter}"
        node_id = base
        k = 2
        while node_id in used:
            node_id = f"{base}_{k}"
            k += 1
        used.add(node_id)
        by_obj[id(expr)] = node_id
        if isinstance(expr, rasp.LengthType):
            sub = length_sub[id(expr)]
            sub.annotations = {"name": "length", "encoding": rasp.get_encoding(expr)}
            nodes[node_id] = Node(node_id, sub, "SelectorWidth")
        else:
            nodes[node_id] = Node(node_id, expr, type(expr).__name__)

    g = nx.DiGraph()
    for expr in order:
        node = nodes[by_obj[id(expr)]]
        node.children = [by_obj[id(c)] for c in children_of(expr)]
        g.add_node(node.id)
        for c in node.children:
            g.add_edge(c, node.id)
    return ProgramGraph(nodes=nodes, output=by_obj[id(program)], graph=g, _by_obj=by_obj)

