"""The compiler pipeline: program -> graph -> value sets -> checks -> blocks -> layers.

Pure numpy: compiling never imports JAX.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from . import rasp
from .assemble import CompiledProgram, VariableInfo, assemble
from .attention_scores import score_gap
from .build import build_node, validate
from .circuit import planted_circuit
from .encode import value_vector
from .errors import CompileError
from .graph import trace
from .layout import place
from .mlp_discretise import check_gaps
from .residual import BOS, ONE, Direction, ResidualSpace
from .rewrite import combine_selectors
from .values import compute_value_sets, sort_values


def _check_args(vocab: Iterable, max_seq_len: int, bos: str, pad: str) -> list:
    vocab = list(vocab)
    if not vocab:
        raise CompileError("the vocabulary is empty")
    if any(t is None for t in vocab):
        raise CompileError("the vocabulary may not contain None (None means 'no value')")
    if len(set(vocab)) != len(vocab):
        raise CompileError("the vocabulary lists a token twice")
    if bos == pad:
        raise CompileError(f"the BOS and PAD tokens must differ (both {bos!r})")
    for special, what in ((bos, "BOS"), (pad, "PAD")):
        if special in vocab:
            raise CompileError(
                f"the {what} token {special!r} is also in the vocabulary; pick another "
                f"{what} token (--{what.lower()} on the command line, {what.lower()}= in "
                f"compile_program, compiler_{what.lower()}= in compile_rasp_to_model)"
            )
    if not isinstance(max_seq_len, int) or isinstance(max_seq_len, bool) or max_seq_len < 1:
        raise CompileError(f"max_seq_len must be a positive integer, got {max_seq_len!r}")
    return sort_values(vocab)


def compile_program(
    program: rasp.SOp,
    vocab: Iterable,
    max_seq_len: int,
    *,
    causal: bool = False,
    bos: str = "BOS",
    pad: str = "PAD",
) -> CompiledProgram:
    """Compile ``program`` into exact transformer weights for inputs up to ``max_seq_len``.

    Raises ``CompileError`` naming the expression when the program cannot be compiled so
    that the model agrees with ``rasp.evaluate`` on every input.
    """
    vocab = _check_args(vocab, max_seq_len, bos, pad)
    graph = trace(program)
    raised: dict = {}
    vs = compute_value_sets(graph, set(vocab), max_seq_len, raised)
    rewritten = combine_selectors(program, graph, vs)
    if rewritten is not None:
        graph = trace(rewritten)
        raised = {}
        vs = compute_value_sets(graph, set(vocab), max_seq_len, raised)
    validate(graph, vs, max_seq_len, causal)

    space = ResidualSpace()
    space.add(Direction(ONE, role="special"))
    space.add(Direction(BOS, role="special"))
    variables: dict[str, VariableInfo] = {}
    selectors: dict[str, list[str]] = {}
    max_abs = 1.0
    for node in graph.topo():
        if not node.is_sop:
            selectors[node.id] = list(node.children)
            continue
        values = sort_values(v for v in vs[node.id] if v is not None)
        numerical = rasp.is_numerical(node.expr)
        if numerical:
            dims = [space.add(Direction(node.id))]
            max_abs = max([max_abs] + [abs(float(v)) for v in values])
        else:
            dims = [space.add(Direction(node.id, v)) for v in values]
        if node.kind == "SelectorWidth":
            space.add(Direction(node.id, "width", role="scratch"))
        variables[node.id] = VariableInfo(
            name=node.id, kind=node.kind, encoding="numerical" if numerical else "categorical",
            values=values, can_be_none=None in vs[node.id], dims=dims,
            children=list(node.children),
        )
    space.max_abs_value = max_abs

    gap = score_gap(max_seq_len)
    blocks = {}
    for node in graph.topo():
        nb = build_node(space, graph, vs, node.id, max_seq_len, gap)
        if nb is not None:
            blocks[node.id] = nb
    placements, num_layers = place(graph, blocks)

    def write(var: str, value) -> np.ndarray:
        return value_vector(space, var, variables[var].encoding == "numerical", value)

    embed_token = np.zeros((len(vocab) + 2, space.dim))
    embed_pos = np.zeros((max_seq_len + 1, space.dim))
    fulls = [n for n in graph.topo() if isinstance(n.expr, rasp.Full)]
    for i, tok in enumerate(vocab):
        embed_token[i, space.special(ONE)] = 1.0
        if "tokens" in variables:
            embed_token[i] += write("tokens", tok)
        for n in fulls:
            embed_token[i] += write(n.id, n.expr.fill)
    embed_token[len(vocab), space.special(BOS)] = 1.0
    if "indices" in variables:
        for p in range(1, max_seq_len + 1):
            embed_pos[p] = write("indices", p - 1)

    out = variables[graph.output]
    if out.encoding == "numerical":  # decoding snaps to the nearest value: it must be unique
        check_gaps([float(v) for v in out.values], f"the output {graph.output!r}")
    unembed = np.zeros((space.dim, len(out.dims)))
    for j, dim in enumerate(out.dims):
        unembed[dim, j] = 1.0

    model = assemble(
        space, blocks, placements, num_layers, vocab=vocab, max_seq_len=max_seq_len,
        causal=causal, bos=bos, pad=pad, output=graph.output, variables=variables,
        selectors=selectors, embed_token=embed_token, embed_pos=embed_pos, unembed=unembed,
    )
    if raised:
        model.meta["raises"] = _raises(graph, variables, raised)
    model.meta["program"] = graph.output
    model.circuit = planted_circuit(model)
    return model


def _raises(graph, variables: dict[str, VariableInfo], raised: dict) -> list[dict]:
    """The inputs on which a function raised, as indices into its inputs' value lists
    (JSON-safe for the model file): ``trace.outside_domain`` reads them back."""
    out = []
    for node_id, entries in raised.items():
        children = list(graph.nodes[node_id].children)
        index_of = [{v: i for i, v in enumerate(variables[c].values)} for c in children]
        rows, errors = [], []
        for args, error in entries:
            idx = [index_of[j].get(a) for j, a in enumerate(args)]
            if None not in idx:
                rows.append(idx)
                errors.append(error)
        if rows:
            out.append({"node": node_id, "kind": graph.nodes[node_id].kind,
                        "inputs": children, "index": rows, "errors": errors})
    return out
