"""Turn each program node into its blocks, refusing what cannot be compiled exactly."""

from __future__ import annotations

from dataclasses import dataclass

from . import rasp
from .attention_aggregate import aggregate_head
from .blocks import HeadBlock, MLPBlock, MLPBuilder
from .encode import value_matrix
from .errors import CompileError
from .graph import ProgramGraph
from .mlp_discretise import add_steps, check_gaps
from .mlp_lookup import map_table, sequence_map_table, table_size
from .mlp_separable import Part, separable_mlp, split
from .residual import ResidualSpace
from .selector_width import selector_width_blocks
from .selectors import compile_selector, is_causal
from .values import all_numbers, is_number, sort_values


@dataclass
class NodeBlocks:
    """The blocks computing one variable. ``head`` and ``mlp`` share a layer when both exist."""

    node: str
    head: HeadBlock | None = None
    mlp: MLPBlock | None = None

    @property
    def kind(self) -> str:
        if self.head is None:
            return "mlp"
        return "attn+mlp" if self.mlp is not None and self.head.op == "selector_width" else "attn"


def _numerical(graph: ProgramGraph, node_id: str) -> bool:
    return rasp.is_numerical(graph.nodes[node_id].expr)


def validate(graph: ProgramGraph, vs: dict[str, set], max_seq_len: int, causal: bool) -> None:
    """Refuse, naming the expression, anything whose compiled output could differ."""
    for node in graph.topo():
        where = f"{node.kind} {node.id!r}"
        e = node.expr
        if node.is_sop and rasp.is_numerical(e):
            values = vs[node.id]
            if None in values:
                hint = (
                    " (a numerical Aggregate gives None where it selects nothing and its default "
                    "is None: use default=0)"
                    if isinstance(e, rasp.Aggregate) else
                    " (one of its inputs can be None, e.g. an aggregate that can select nothing)"
                )
                raise CompileError(
                    f"{where} is numerical but can be None, which a numerical direction cannot "
                    f"hold{hint}"
                )
            if not all_numbers(values):
                bad = [v for v in values if not is_number(v)]
                raise CompileError(
                    f"{where} is numerical but can take the non-number {bad[0]!r}; mark it "
                    "categorical"
                )
            check_gaps(sort_values(values), where)  # float32 must keep its values apart
        if isinstance(e, rasp.Aggregate) and not rasp.is_numerical(e):
            if _numerical(graph, node.children[1]):
                raise CompileError(
                    f"{where}: a categorical Aggregate of the numerical {node.children[1]!r} "
                    "is not supported; make the aggregate numerical (a mean) or its input "
                    "categorical"
                )
        if causal and isinstance(e, (rasp.Aggregate, rasp.SelectorWidth)):
            sel = node.children[0]
            if not is_causal(graph, sel, sort_values(vs.get("tokens", ())), max_seq_len):
                if node.id == "length":
                    raise CompileError(
                        f"{where}: `length` counts every position, later ones included, so a "
                        "causal model cannot compute it; compile with causal=False, or count "
                        "only earlier positions (SelectorWidth(Select(indices, indices, LEQ)))"
                    )
                raise CompileError(
                    f"{where}: its selector {sel!r} may select positions after the query (the "
                    "proof covers selectors whose keys and queries depend only on the token and "
                    "index at their position), so with causal=True the model could compute "
                    "something other than evaluate(); AND it with Select(indices, indices, LEQ) "
                    "to make the program causal, or compile with causal=False"
                )


def _map_blocks(space: ResidualSpace, graph: ProgramGraph, vs: dict, node) -> MLPBlock:
    inner = node.children[0]
    out_num = _numerical(graph, node.id)
    f = node.expr.f
    if not _numerical(graph, inner):
        return map_table(space, node.id, out_num, inner, vs[inner], f)
    values = sort_values(v for v in vs[inner] if v is not None)
    if out_num:
        # values where f raises are outside the domain: the output there is unconstrained
        values = [v for v in values if _safe_call(f, v) is not None]
        block = separable_mlp(
            space, node.id, True, vs[node.id], [Part(inner, True, values, f)],
            f"Map {node.id!r}",
        )
        assert block is not None
        return block
    mlp = MLPBuilder(space, node.id, "map")
    readout = mlp.zeros()
    readout[space.numeric_dim(inner)] = 1.0
    outs = value_matrix(space, node.id, False, [_safe_call(f, v) for v in values])
    add_steps(
        mlp, readout, [float(v) for v in values], outs, f"Map {node.id!r} (input {inner!r})"
    )
    return mlp.build()


def _safe_call(f, *args):
    try:
        return f(*args)
    except Exception:  # noqa: BLE001
        return None


def _sequence_map_blocks(space: ResidualSpace, graph: ProgramGraph, vs: dict, node) -> MLPBlock:
    fst, snd = node.children
    f = node.expr.f
    out_num = _numerical(graph, node.id)
    where = f"SequenceMap {node.id!r}"
    num = {c: _numerical(graph, c) for c in (fst, snd)}
    xs = sort_values(v for v in vs[fst] if v is not None)
    ys = sort_values(v for v in vs[snd] if v is not None)
    has_none = None in vs[fst] or None in vs[snd]
    parts = None
    if fst != snd and not has_none:
        gh = split(f, xs, ys)
        if gh is not None:
            parts = [Part(fst, num[fst], xs, gh[0]), Part(snd, num[snd], ys, gh[1])]
    if any(num.values()):
        if parts is None or fst == snd:
            raise CompileError(
                f"{where}: a SequenceMap with a numerical input compiles only when it splits as "
                "g(x) + h(y) (e.g. a LinearSequenceMap); make the inputs categorical"
            )
        block = separable_mlp(space, node.id, out_num, vs[node.id], parts, where)
        if block is None:
            raise CompileError(
                f"{where}: its numerical input enters non-linearly and the output is "
                "categorical; make that input categorical"
            )
        return block
    n_values = len([v for v in vs[node.id] if v is not None])
    if parts is not None and (out_num or 2 * n_values < table_size(vs[fst], vs[snd])):
        try:
            block = separable_mlp(space, node.id, out_num, vs[node.id], parts, where)
        except CompileError:  # sums too close to discretise in float32: the table is exact
            block = None
        if block is not None:
            return block
    return sequence_map_table(space, node.id, out_num, fst, vs[fst], snd, vs[snd], f)


def build_node(
    space: ResidualSpace, graph: ProgramGraph, vs: dict, node_id: str, max_seq_len: int,
    gap: float,
) -> NodeBlocks | None:
    """The blocks for one node; None for inputs (tokens, indices, Full) and selectors."""
    node = graph.nodes[node_id]
    e = node.expr
    if isinstance(e, (rasp.TokensType, rasp.IndicesType, rasp.Full)) or not node.is_sop:
        return None
    if isinstance(e, rasp.Map):
        return NodeBlocks(node_id, mlp=_map_blocks(space, graph, vs, node))
    if isinstance(e, rasp.SequenceMap):
        return NodeBlocks(node_id, mlp=_sequence_map_blocks(space, graph, vs, node))
    if isinstance(e, rasp.Aggregate):
        literals = compile_selector(graph, vs, node.children[0])
        sop = node.children[1]
        head, fix = aggregate_head(
            space, node_id, _numerical(graph, node_id), sop, _numerical(graph, sop), vs[sop],
            e.default, literals, gap,
        )
        return NodeBlocks(node_id, head=head, mlp=fix)
    if isinstance(e, rasp.SelectorWidth):
        literals = compile_selector(graph, vs, node.children[0])
        head, mlp = selector_width_blocks(
            space, node_id, _numerical(graph, node_id), literals, gap, max_seq_len
        )
        return NodeBlocks(node_id, head=head, mlp=mlp)
    raise CompileError(f"{node.kind} {node_id!r} cannot be compiled")

