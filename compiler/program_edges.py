"""Edge-level interchange in the interpreter: one operation's one input from another input.

``compiler.interchange`` forces a *variable* (every use of it). Resample ablation of a
network edge ``A -> B`` is finer: only ``B``'s read of ``A`` takes the value ``A`` has on
the corrupted input; every other reader keeps the clean value. Its program counterpart is a
**program edge** ``(parent, consumer, role)``: the input ``role`` of the operation computing
``consumer`` reads ``parent``. Roles:

* ``in`` (``Map``), ``fst`` / ``snd`` (``SequenceMap``);
* ``q`` / ``k`` (the queries / keys of every ``Select`` under an ``Aggregate``'s or a
  ``SelectorWidth``'s selector), ``v`` (an ``Aggregate``'s values);
* ``internal``: the consumer's own value, for an operation the compiler splits over two
  components (a ``SelectorWidth``'s head hands its MLP a scratch value): forcing it gives
  every reader the corrupted value of the operation itself;
* ``out``: the program's output read by the unembedding (``consumer`` is ``"output"``).

``PairEvaluator`` holds, for one (clean, corrupted) pair, every variable's value on both
inputs (the corrupted run is a clean run of the corrupted input, as a resample ablation's
sender outputs are) and evaluates the program with any set of program edges forced.

Inputs of different lengths (the ``any-length`` corruption) line up by position: a value of
the corrupted input at a position it does not have is ``UNDEFINED`` (the network reads a PAD
position's activations there, which are no program value), and so is anything computed
from it; positions the clean input does not have are dropped. The exception is ``indices``: a
position's index does not depend on the input (the position embedding writes it at PAD
positions too), so it is the position everywhere. An operation pushed outside
its domain by forced values (a categorical aggregate that selects different values, a
program function that raises, a numerical mean over ``None``) is ``UNDEFINED`` at that
position. An ``UNDEFINED`` output counts as a changed output. A key that is ``UNDEFINED``
leaves the selection unknown, so every query that could see it is ``UNDEFINED``.

The reference evaluator (``rasp.evaluate``) is not changed; this module re-implements its
operations on aligned value lists, and ``PairEvaluator.clean_output`` equals
``rasp.evaluate`` (checked in the tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import rasp
from .graph import ProgramGraph, trace

OUTPUT = "output"
ROLES = ("in", "fst", "snd", "q", "k", "v", "internal", "out")


class _Undefined:
    """No program value (a PAD position's activations, or an operation outside its domain)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED = _Undefined()


@dataclass(frozen=True, order=True)
class ProgramEdge:
    """``consumer``'s input ``role`` reads ``parent`` (node ids as ``compiled.variables``)."""

    parent: str
    consumer: str
    role: str

    @property
    def key(self) -> str:
        if self.role == "internal":
            return f"{self.consumer}:internal"
        if self.role == "out":
            return f"{self.parent}->{OUTPUT}"
        return f"{self.parent}->{self.consumer}.{self.role}"

    def __str__(self) -> str:
        return self.key


def _selects(selector: rasp.RASPExpr) -> list[rasp.Select]:
    """The ``Select`` leaves of a selector expression."""
    if isinstance(selector, rasp.Select):
        return [selector]
    out: list[rasp.Select] = []
    for child in selector.children:
        if isinstance(child, rasp.Selector):
            out.extend(_selects(child))
    return out


def program_edges(graph: ProgramGraph) -> list[ProgramEdge]:
    """Every program edge of a traced program, consumers in topological order."""
    id_of = graph._by_obj
    edges: list[ProgramEdge] = []

    def add(parent_expr, consumer: str, role: str) -> None:
        e = ProgramEdge(id_of[id(parent_expr)], consumer, role)
        if e not in edges:
            edges.append(e)

    for node in graph.topo():
        expr = node.expr
        if isinstance(expr, rasp.Map):
            add(expr.inner, node.id, "in")
        elif isinstance(expr, rasp.SequenceMap):
            add(expr.fst, node.id, "fst")
            add(expr.snd, node.id, "snd")
        elif isinstance(expr, (rasp.Aggregate, rasp.SelectorWidth)):
            for sel in _selects(expr.selector):
                add(sel.queries, node.id, "q")
                add(sel.keys, node.id, "k")
            if isinstance(expr, rasp.Aggregate):
                add(expr.sop, node.id, "v")
            else:
                edges.append(ProgramEdge(node.id, node.id, "internal"))
    edges.append(ProgramEdge(graph.output, OUTPUT, "out"))
    return edges


# ---------------------------------------------------------------------------------------
# Evaluation on aligned value lists


def _apply1(f, xs: list) -> list:
    out = []
    for x in xs:
        if x is UNDEFINED:
            out.append(UNDEFINED)
        elif x is None:
            out.append(None)
        else:
            try:
                out.append(f(x))
            except Exception:  # noqa: BLE001 - outside the domain at this position
                out.append(UNDEFINED)
    return out


def _apply2(f, xs: list, ys: list) -> list:
    out = []
    for x, y in zip(xs, ys, strict=True):
        if x is UNDEFINED or y is UNDEFINED:
            out.append(UNDEFINED)
        elif x is None or y is None:
            out.append(None)
        else:
            try:
                out.append(f(x, y))
            except Exception:  # noqa: BLE001
                out.append(UNDEFINED)
    return out


def _selection(selector, read, n: int, causal: bool) -> list[list]:
    """``[query][key]`` of True / False / UNDEFINED."""
    if isinstance(selector, rasp.Select):
        keys, queries = read(selector, "k"), read(selector, "q")
        rows = []
        for q in queries:
            row = []
            for k in keys:
                if q is UNDEFINED or k is UNDEFINED:
                    row.append(UNDEFINED)
                elif q is None or k is None:
                    row.append(False)
                else:
                    try:
                        row.append(bool(selector.predicate(k, q)))
                    except Exception:  # noqa: BLE001
                        row.append(UNDEFINED)
            rows.append(row)
    elif isinstance(selector, rasp.ConstantSelector):
        rows = [list(map(bool, r)) for r in selector.value]
    elif isinstance(selector, rasp.SelectorNot):
        rows = [[x if x is UNDEFINED else not x for x in r]
                for r in _selection(selector.inner, read, n, False)]
    elif isinstance(selector, (rasp.SelectorAnd, rasp.SelectorOr)):
        a = _selection(selector.fst, read, n, False)
        b = _selection(selector.snd, read, n, False)
        is_and = isinstance(selector, rasp.SelectorAnd)
        rows = []
        for ra, rb in zip(a, b, strict=True):
            row = []
            for x, y in zip(ra, rb, strict=True):
                if is_and and (x is False or y is False):
                    row.append(False)
                elif not is_and and (x is True or y is True):
                    row.append(True)
                elif x is UNDEFINED or y is UNDEFINED:
                    row.append(UNDEFINED)
                else:
                    row.append(x and y if is_and else x or y)
            rows.append(row)
    else:
        raise NotImplementedError(f"cannot evaluate selector {selector!r}")
    if causal:
        rows = [[s if k <= q else False for k, s in enumerate(r)] for q, r in enumerate(rows)]
    return rows


def _aggregate(expr: rasp.Aggregate, sel: list[list], vals: list) -> list:
    numerical = rasp.is_numerical(expr)
    out = []
    for row in sel:
        if any(s is UNDEFINED for s in row):
            out.append(UNDEFINED)
            continue
        chosen = [v for s, v in zip(row, vals, strict=True) if s]
        if any(v is UNDEFINED for v in chosen):
            out.append(UNDEFINED)
        elif not chosen:
            out.append(expr.default)
        elif numerical:
            out.append(UNDEFINED if any(v is None for v in chosen) else rasp.exact_mean(chosen))
        else:
            first = chosen[0]
            same = all(v == first and (v is None) == (first is None) for v in chosen[1:])
            out.append(first if same else UNDEFINED)
    return out


def _width(sel: list[list]) -> list:
    return [UNDEFINED if any(s is UNDEFINED for s in row) else sum(row) for row in sel]


class PairEvaluator:
    """Every variable of a traced program on one clean input and its corrupted partner,
    and the program's output with chosen program edges forced to the corrupted side."""

    def __init__(self, graph: ProgramGraph, clean: Sequence, corrupted: Sequence, *,
                 causal: bool = False):
        self.graph = graph
        self.causal = causal
        self.n = len(clean)
        self.xs = list(clean)
        self.clean = self._run(self.xs, frozenset(), None)
        corr = self._run(list(corrupted), frozenset(), None)
        n = self.n
        self.corrupted = {k: (list(v[:n]) + [UNDEFINED] * (n - len(v)))
                          for k, v in corr.items()}
        for node in graph.topo():  # a position's index does not depend on the input
            if isinstance(node.expr, rasp.IndicesType):
                self.corrupted[node.id] = list(range(n))
        self.clean_output = self.clean[graph.output]

    def _run(self, xs: list, forced: frozenset[ProgramEdge], base: dict | None) -> dict:
        """Values of every node on ``xs`` (``base``: the clean values, recomputing only what
        the forced edges reach)."""
        g = self.graph
        n = len(xs)
        vals: dict[str, list] = {}
        changed: set[str] = set()
        consumers_forced = {e.consumer for e in forced}
        for node in g.topo():
            if not node.is_sop:
                continue
            nid = node.id
            if (base is not None and nid not in consumers_forced
                    and not self._reads_changed(node, changed)):
                vals[nid] = base[nid]
                continue
            if ProgramEdge(nid, nid, "internal") in forced:
                vals[nid] = self.corrupted[nid]
            else:
                vals[nid] = self._compute(node, xs, n, vals, forced)
            if base is not None and vals[nid] != base[nid]:
                changed.add(nid)
        return vals

    def _reads_changed(self, node, changed: set[str]) -> bool:
        """Whether a variable ``node`` reads (through its selector too) has changed."""
        expr = node.expr
        id_of = self.graph._by_obj
        if isinstance(expr, (rasp.Aggregate, rasp.SelectorWidth)):
            for sel in _selects(expr.selector):
                if id_of[id(sel.keys)] in changed or id_of[id(sel.queries)] in changed:
                    return True
            return isinstance(expr, rasp.Aggregate) and id_of[id(expr.sop)] in changed
        return any(id_of[id(c)] in changed for c in expr.children)

    def _compute(self, node, xs: list, n: int, vals: dict, forced) -> list:
        expr = node.expr
        nid = node.id
        id_of = self.graph._by_obj

        def read(child, role: str) -> list:
            cid = id_of[id(child)]
            if ProgramEdge(cid, nid, role) in forced:
                return self.corrupted[cid]
            return vals[cid]

        if isinstance(expr, rasp.TokensType):
            return list(xs)
        if isinstance(expr, rasp.IndicesType):
            return list(range(n))
        if isinstance(expr, rasp.Full):
            return [expr.fill] * n
        if isinstance(expr, rasp.ConstantSOp):
            return list(expr.value)
        if isinstance(expr, rasp.Map):
            return _apply1(expr.f, read(expr.inner, "in"))
        if isinstance(expr, rasp.SequenceMap):
            return _apply2(expr.f, read(expr.fst, "fst"), read(expr.snd, "snd"))
        if isinstance(expr, (rasp.Aggregate, rasp.SelectorWidth)):
            sel = _selection(expr.selector, lambda s, role: read(
                s.keys if role == "k" else s.queries, role), n, self.causal)
            if isinstance(expr, rasp.SelectorWidth):
                return _width(sel)
            return _aggregate(expr, sel, read(expr.sop, "v"))
        raise NotImplementedError(f"cannot evaluate {expr!r}")

    def output(self, forced: Iterable[ProgramEdge]) -> list:
        """The program's output on the clean input with ``forced`` edges corrupted."""
        forced = frozenset(forced)
        out_edge = ProgramEdge(self.graph.output, OUTPUT, "out")
        if out_edge in forced:
            return self.corrupted[self.graph.output]
        if not forced:
            return self.clean_output
        return self._run(self.xs, forced, self.clean)[self.graph.output]

    def changed(self, forced: Iterable[ProgramEdge]) -> int:
        """How many positions of the output differ from the clean output (UNDEFINED
        counts as different)."""
        out = self.output(forced)
        return sum(1 for a, b in zip(out, self.clean_output, strict=True)
                   if a is UNDEFINED or a != b or (a is None) != (b is None))


def traced(program: rasp.SOp, vocab: Iterable, max_seq_len: int) -> ProgramGraph:
    """The program as the compiler builds it (``interchange.as_compiled``), traced: its node
    ids are ``compiled.variables``'s."""
    from .interchange import as_compiled

    return trace(as_compiled(program, vocab, max_seq_len))


__all__ = ["ProgramEdge", "PairEvaluator", "program_edges", "traced", "UNDEFINED", "OUTPUT",
           "ROLES"]
