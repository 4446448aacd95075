"""``rasplab variant PROGRAM --rung RUNG -o FILE``: a rung of the realism ladder."""

from __future__ import annotations

import argparse

from ..compiler.model_file import save
from ..inputs import UsageError
from ._common import add_program_arguments, positive_int, print_json, target_from_args

ORDER = 55


def register(subparsers) -> None:
    from ..variants import RUNGS

    rungs = [r for r in RUNGS if r != "compiled"]
    p = subparsers.add_parser(
        "variant", help="write a variant of a compiled model (a realism-ladder rung)",
        description="Compile PROGRAM and write a variant that computes the same program with "
        "its circuit still known: rotated (a random orthogonal change of residual basis, "
        "exact, nothing axis-aligned) or compressed (the tracr paper's section 5: frozen "
        "weights and one learned D x d matrix, features in superposition, approximate; "
        "its held-out accuracy against the interpreter is recorded) or retrained (a fresh "
        "dense transformer trained with InterpBench's strict interchange intervention "
        "training so the components aligned with each program variable implement it; "
        "held-out accuracy, interchange-intervention accuracy and strict accuracy are "
        "recorded, and its ground truth is recomputed by intervention). The file carries the "
        "planted circuit with each variable's basis mapped into the variant's stream, "
        "where it came from and a "
        "reference table, so check, circuit, recover and show work on it.",
    )
    add_program_arguments(p, causal=True)
    p.add_argument("--rung", required=True, choices=rungs, help="which variant")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--d", metavar="N|auto", default=None,
                   help="compressed: the residual width d (1..D), or auto for the smallest "
                   "d whose held-out accuracy reaches 99.5%% (default auto)")
    p.add_argument("--steps", type=positive_int, default=None, metavar="N",
                   help="compressed, retrained: most training steps (default: the "
                   "trainer's; retrained stops earlier once accuracy, IIA and strict "
                   "accuracy all reach 99.5%%)")
    p.add_argument("--checkpoint", metavar="FILE",
                   help="compressed, retrained: checkpoint to resume from and write while "
                   "training")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="where to write it (FILE.safetensors and FILE.json)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..variants import make

    target = target_from_args(args)
    compiled = target.describe(target.compile(causal=args.causal))
    options: dict = {}
    if args.rung == "compressed":
        options = {"d": _width(args.d, compiled.config.d_model), "spec": target.spec,
                   "checkpoint": args.checkpoint}
        if args.steps:
            options["steps"] = args.steps
    elif args.rung == "retrained":
        if args.d is not None:
            raise UsageError("--d is for --rung compressed; a retrained model's width is "
                             "chosen from the compiled one")
        if target.program is None:
            raise UsageError(f"{target.name}: retraining needs the program (the interpreter "
                             "gives the training targets); name a library program or "
                             "FILE.py:FUNCTION, not a saved model")
        options = {"spec": target.spec, "program": target.program,
                   "checkpoint": args.checkpoint}
        if args.steps:
            options["steps"] = args.steps
    elif args.d is not None or args.steps or args.checkpoint:
        raise UsageError(f"--d, --steps and --checkpoint are for --rung compressed or "
                         f"retrained, not {args.rung}")
    try:
        variant = make(args.rung, compiled, seed=args.seed, **options)
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
    info = variant.meta["variant"]
    if info.get("rung") == "retrained":
        m = info["metrics"]
        reached = (f"reached 99.5% at step {info['reached_at']}" if info["reached"]
                   else f"did not reach 99.5% in {info['steps']} steps")
        print(f"approximate: held-out accuracy {m['accuracy']:.3f}, IIA {m['iia']:.3f}, "
              f"strict accuracy {m['strict']:.3f} (against the interpreter; {reached}, "
              f"{info['seconds']:.0f} s)")
        for ablation, t in info.get("truths", {}).items():
            status = "verified" if t["verified"] else "NOT verified"
            diff = ("same edges as the compiled model's" if t["same"] else
                    f"differs from the compiled: +{len(t['only_retrained'])} "
                    f"-{len(t['only_compiled'])} edges")
            print(f"{ablation} ground truth: {len(t['retrained'])} edges, {status}, {diff}")
    elif "heldout" in info:
        h = info["heldout"]
        print(f"approximate: held-out accuracy {h.get('inputs', 0):.3f} of inputs, "
              f"{h.get('positions', 0):.3f} of positions (against the {info['reference']}); "
              f"superposition {info['superposition']:.3f}")
    print(f"saved {paths[0]} and {paths[1]}")
    return 0


def _width(text: str | None, full: int) -> int | str:
    if text is None or text == "auto":
        return "auto"
    try:
        d = int(text)
    except ValueError:
        raise UsageError(f"--d {text!r}: give a whole number from 1 to {full}, or auto") from None
    if not 1 <= d <= full:
        raise UsageError(f"--d {d} is outside 1..{full} (the compiled model's d_model is {full})")
    return d
