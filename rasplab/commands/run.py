"""``rasplab run PROGRAM TOKENS... [--trace]``: run the compiled model on one input."""

from __future__ import annotations

import argparse
import sys

from ..compiler import InputError
from ..inputs import UsageError, parse_tokens
from ._common import (
    add_program_arguments,
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
                   help="show, position by position, every program variable: the "
                   "interpreter's value and the value decoded from the residual stream")
    p.add_argument("--all-sites", action="store_true",
                   help="with --trace: decode each variable at every residual site after "
                   "the block that writes it, not only the first")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run, extra_positionals="tokens")


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

    from ..compiler.model import Model
    from ..compiler.trace import trace

    model = Model(compiled, source_program=target.program)
    t = trace(model, tokens)
    if not t.in_domain:
        why = t.interpreter_error or "; ".join(t.outside_domain)
        raise InputError(
            f"the input {' '.join(show_value(v) for v in tokens)} is outside the domain of "
            f"{target.name}, so the model's output there means nothing: {why}"
        )
    unclean = [i for i, ok in enumerate(t.clean) if not ok]
    if args.json:
        data = {"program": target.name, "input": tokens, "output": t.output,
                "clean": not unclean}
        if args.trace:
            data["sites"] = t.sites
            data["trace"] = [
                {"variable": v.name, "written_by": v.written_by, "op": v.op,
                 "interpreted": v.interpreted, "decoded": v.decoded}
                for v in t.variables
            ]
        print_json(data)
    elif args.trace:
        print(t.table(all_sites=args.all_sites))
        print("(one row per variable with the interpreter's value, then its value decoded "
              "from the residual stream right after the block that writes it"
              + ("" if args.all_sites else "; --all-sites shows every later site too")
              + "; None: no value)")
    else:
        print(" ".join(show_value(v) for v in t.output))
    if unclean:
        print(f"rasplab: note: the read-out at position(s) {', '.join(map(str, unclean))} "
              "is not clean; this input is probably outside the program's domain",
              file=sys.stderr)
    return 0
