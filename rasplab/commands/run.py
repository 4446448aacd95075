"""``rasplab run PROGRAM TOKENS... [--trace]``: run the compiled model on one input."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

from ..compiler import CompiledProgram
from ..inputs import UsageError, parse_tokens
from ._common import (
    add_program_arguments,
    format_table,
    print_json,
    show_value,
    target_from_args,
)

ORDER = 30


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="run the compiled model on one input",
        description="Compile PROGRAM (or load a saved model) and print the decoded output "
        "for the input TOKENS. Tokens are separate words converted to the vocabulary's "
        "type (with vocabulary 1,2,3 the word 3 is the integer 3).",
    )
    add_program_arguments(p)
    p.add_argument("tokens", nargs="*", metavar="TOKEN", help="the input, one token per word")
    p.add_argument("--trace", action="store_true",
                   help="show, position by position, the value each block wrote")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run, extra_positionals="tokens")


@dataclass
class TraceRow:
    """One row of a trace: a block and the variable it writes, decoded at every position."""

    block: str  # "embed", "pos", "L0.H1", "L0.MLP", "output"
    variable: str
    op: str
    values: list  # one per position, BOS first


def _var_value(compiled: CompiledProgram, var: str, vec: np.ndarray):
    info = compiled.variables[var]
    x = vec[info.dims]
    if info.encoding == "numerical":
        return float(x[0]) if len(x) else None
    if len(x) == 0 or x.max() <= 0.5:
        return None
    return info.values[int(x.argmax())]


def trace_rows(compiled: CompiledProgram, resid: np.ndarray, decoded: list) -> list[TraceRow]:
    """Rows for one sequence: ``resid`` is its final residual ``[T, d]``, ``decoded`` the
    decoded output (BOS position included).

    A block's row decodes the variable it computes from the final residual (every variable
    is written once, so the final residual holds what the block wrote). A SelectorWidth
    head writes no variable but the scratch direction ``var:__width__`` (``1/(w+1)``):
    its row shows that number.
    """
    labels = compiled.residual_labels
    T = resid.shape[0]
    col = lambda var: [_var_value(compiled, var, resid[t]) for t in range(T)]
    rows: list[TraceRow] = []
    if "tokens" in compiled.variables:
        rows.append(TraceRow("embed", "tokens", "token embedding", col("tokens")))
    if "indices" in compiled.variables:
        rows.append(TraceRow("pos", "indices", "position embedding", col("indices")))
    for var, info in compiled.variables.items():
        if info.kind == "Full":
            rows.append(TraceRow("embed", var, "constant", col(var)))
    ordered = sorted(compiled.components,
                     key=lambda c: (c.layer, c.kind != "attn", c.index))
    for comp in ordered:
        if comp.kind == "attn" and comp.op == "selector_width":
            scratch = f"{comp.node}:__width__"
            if scratch in labels:
                i = labels.index(scratch)
                rows.append(TraceRow(comp.name, f"{comp.node} 1/(w+1)", comp.op,
                                     [float(resid[t, i]) for t in range(T)]))
                continue
        rows.append(TraceRow(comp.name, comp.node, comp.op, col(comp.node)))
    rows.append(TraceRow("output", compiled.output, "unembed", list(decoded)))
    return rows


def format_trace(rows: list[TraceRow], tokens: list) -> str:
    header = ["block", "variable", "op", "BOS"] + [show_value(t) for t in tokens]
    sub = ["", "", "", "pos"] + [str(i) for i in range(len(tokens))]
    table = [header, sub]
    for r in rows:
        table.append([r.block, r.variable, r.op] + [show_value(v) for v in r.values])
    return format_table(table, right_from=3)


def run(args: argparse.Namespace) -> int:
    target = target_from_args(args)
    tokens = parse_tokens(args.tokens, target.token_vocab)
    if target.max_seq_len is not None and len(tokens) > target.max_seq_len:
        raise UsageError(
            f"the input has {len(tokens)} tokens but {target.name} is compiled for at most "
            f"{target.max_seq_len}; pass --max-seq-len {len(tokens)} (not possible for a saved "
            "model)"
        )
    compiled = target.compile(causal=args.causal)

    from ..compiler.model import Model, decode

    model = Model(compiled)
    ids = model.encode([tokens])
    if args.trace:
        resid, _cache = model.forward(ids, capture=True)
    else:
        resid = model.forward(ids)
    resid = np.asarray(resid, dtype=np.float64)
    decoded, clean = decode(compiled, resid)
    output = decoded[0][1:]
    unclean = [i for i in range(len(tokens)) if not clean[0, 1 + i]]
    rows = trace_rows(compiled, resid[0], decoded[0]) if args.trace else []
    if args.json:
        data = {"program": target.name, "input": tokens, "output": output,
                "clean": not unclean}
        if args.trace:
            data["trace"] = [
                {"block": r.block, "variable": r.variable, "op": r.op, "values": r.values}
                for r in rows
            ]
        print_json(data)
    elif args.trace:
        print(format_trace(rows, tokens))
        print("(None: no value; BOS is position 0 of the model's input)")
    else:
        print(" ".join(show_value(v) for v in output))
    if unclean:
        print(f"rasplab: note: the read-out at position(s) {', '.join(map(str, unclean))} "
              "is not clean; this input is probably outside the program's domain",
              file=sys.stderr)
    return 0
