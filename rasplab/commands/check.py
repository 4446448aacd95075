"""``rasplab check PROGRAM``: the compiled model against the reference interpreter."""

from __future__ import annotations

import argparse

from ..compiler.check import EXHAUSTIVE_LIMIT, check_program, check_reference
from ..inputs import UsageError
from ._common import (
    add_program_arguments,
    positive_int,
    print_json,
    show_value,
    target_from_args,
)

ORDER = 40


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "check", help="compare the compiled model with the interpreter",
        description="Run the compiled model and the reference interpreter (rasp.evaluate, "
        "or rasp.causal_evaluate with --causal) on every input of lengths min_len.."
        f"max_seq_len when there are at most {EXHAUSTIVE_LIMIT:,} of them, otherwise on "
        "random inputs (half from the program's clean sampler, half uniform). Inputs on "
        "which the interpreter raises, or that the program's domain excludes, are counted "
        "as outside the domain. Exit status 1 if any input in the domain disagrees.",
    )
    add_program_arguments(p)
    p.add_argument("--samples", type=positive_int, default=2000, metavar="N",
                   help="random inputs to try when the domain is too large to enumerate "
                   "(default 2000)")
    p.add_argument("--seed", type=int, default=0, help="random seed for the samples")
    p.add_argument("--exhaustive-limit", type=positive_int, default=EXHAUSTIVE_LIMIT, metavar="N",
                   help=f"enumerate every input when there are at most N (default "
                   f"{EXHAUSTIVE_LIMIT})")
    p.add_argument("--sampler", metavar="FILE.py:FUNCTION",
                   help="check only --samples inputs drawn by FUNCTION(rng, length) -> "
                   "tokens (rng a numpy Generator), for a program whose domain is narrower "
                   "than every token sequence (balanced brackets, sorted inputs)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    target = target_from_args(args)
    spec = target.spec
    if args.sampler:
        if target.program is None:
            raise UsageError(f"--sampler needs the program; {args.program}: "
                             f"{target.provenance}")
        import dataclasses

        from ..inputs import load_sampler
        from ..programs import ProgramSpec

        generate = load_sampler(args.sampler)
        base = dict(name=target.name, description=target.description,
                    build=lambda: target.program, vocab=tuple(target.vocab),
                    max_seq_len=target.max_seq_len, min_len=target.min_len)
        spec = (dataclasses.replace(spec, generate=generate, lengths=None)
                if isinstance(spec, ProgramSpec) else ProgramSpec(**base, generate=generate))
    compiled = target.compile(causal=args.causal)
    against = "program"
    if target.program is not None:
        result = check_program(
            spec if spec is not None else target.program,
            target.vocab, target.max_seq_len, min_len=target.min_len,
            causal=args.causal, compiled=compiled, samples=args.samples,
            exhaustive_limit=args.exhaustive_limit, seed=args.seed, name=target.name,
            sampled_only=bool(args.sampler),
        )
    else:
        against = "reference table"
        try:
            result = check_reference(compiled, name=target.name)
        except ValueError as err:
            raise UsageError(f"{args.program}: {err} ({target.provenance})") from None
    # an approximate model (compressed, retrained) is measured, not passed or failed
    approximate = compiled is not None and not compiled.is_exact
    accuracy = 1.0 - result.mismatches / result.checked if result.checked else None
    if args.json:
        print_json({**result.to_dict(), "against": against,
                    "provenance": target.provenance or None, "approximate": approximate,
                    "accuracy": accuracy})
        return 0 if result.ok or approximate else 1
    if target.kind == "model":
        print(f"{args.program}: checked against "
              + (target.provenance if against == "program"
                 else f"its reference table, since {target.provenance}"))
    how = (f"every input of length {result.lengths[0]}-{result.lengths[-1]}"
           if result.exhaustive else f"{result.inputs} reference inputs"
           if against == "reference table" else f"{result.inputs} random inputs"
           + (f" from {args.sampler}" if args.sampler else ""))
    evaluator = "rasp.causal_evaluate" if result.causal else "rasp.evaluate"
    if against == "reference table":
        evaluator = "its reference table (interpreter outputs saved with it)"
    print(f"{result.program}: {how} ({result.inputs} in all, {result.checked} in the domain, "
          f"{result.outside_domain} outside), {result.seconds:.2f} s")
    if result.outside_reasons:
        reasons = ", ".join(f"{k}: {v}" for k, v in result.outside_reasons.items())
        print(f"  outside the domain: {reasons}")
    if result.unclean:
        print(f"  {result.unclean} inputs decode correctly but with an unclean read-out")
    if approximate:
        recorded = compiled.meta.get("variant", {}).get("heldout", {}).get("inputs")
        print(f"APPROXIMATE model ({compiled.meta['variant']['rung']}, nearest-value "
              f"readout): agrees with {evaluator} on {accuracy:.3f} of {result.checked} inputs"
              + (f"; held-out accuracy recorded when trained: {recorded:.3f}"
                 if recorded is not None else ""))
        return 0
    if result.ok:
        print(f"OK: the compiled model agrees with {evaluator} on all {result.checked} inputs")
        return 0
    print(f"MISMATCH: {result.mismatches} of {result.checked} inputs disagree with {evaluator}")
    for m in result.examples:
        show = lambda xs: " ".join(show_value(v) for v in xs)
        print(f"  input    {show(m.input)}\n  expected {show(m.expected)}\n"
              f"  got      {show(m.got)}   (positions {m.positions})")
    return 1
