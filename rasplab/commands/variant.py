"""``rasplab variant PROGRAM --rung RUNG -o FILE``: a rung of the realism ladder."""

from __future__ import annotations

import argparse

from ..compiler.model_file import save
from ..inputs import UsageError
from ._common import add_program_arguments, print_json, target_from_args

ORDER = 55


def register(subparsers) -> None:
    from ..variants import RUNGS

    rungs = [r for r in RUNGS if r != "compiled"]
    p = subparsers.add_parser(
        "variant", help="write a variant of a compiled model (a realism-ladder rung)",
        description="Compile PROGRAM and write a variant that computes the same program with "
        "its circuit still known: rotated (a random orthogonal change of residual basis, "
        "exact, nothing axis-aligned). The file carries the planted circuit with each "
        "variable's basis mapped into the variant's stream, where it came from and a "
        "reference table, so check, circuit, recover and show work on it.",
    )
    add_program_arguments(p, causal=True)
    p.add_argument("--rung", required=True, choices=rungs, help="which variant")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="where to write it (FILE.safetensors and FILE.json)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..variants import make

    target = target_from_args(args)
    compiled = target.describe(target.compile(causal=args.causal))
    try:
        variant = make(args.rung, compiled, seed=args.seed)
    except ValueError as err:
        raise UsageError(str(err)) from None
    paths = [str(p) for p in save(variant, args.output)]
    stats = variant.stats()
    if args.json:
        print_json({"program": target.name, "rung": args.rung, "seed": args.seed,
                    "saved": paths, **stats})
        return 0
    print(f"{target.name}: {args.rung} variant (seed {args.seed}), {stats['layers']} layers, "
          f"d_model {stats['d_model']}, {stats['params']:,} params")
    print(f"saved {paths[0]} and {paths[1]}")
    return 0
