"""``rasplab compile PROGRAM [-o FILE] [--json]``: compile (numpy only) and report sizes."""

from __future__ import annotations

import argparse
import time

from ..compiler.model_file import save
from ._common import add_program_arguments, print_json, target_from_args

ORDER = 20


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compile", help="compile a program and report its size (no JAX)",
        description="Compile PROGRAM to transformer weights (numpy only; JAX is not "
        "imported) and print the number of layers, heads, d_model, MLP width, parameters "
        "and the compile time. With -o the model is saved as FILE.safetensors plus its "
        "FILE.json sidecar.",
    )
    add_program_arguments(p)
    p.add_argument("-o", "--output", metavar="FILE",
                   help="save the model (FILE.safetensors and FILE.json)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    target = target_from_args(args)
    t0 = time.perf_counter()
    compiled = target.compile(causal=args.causal)
    seconds = None if target.kind == "model" else time.perf_counter() - t0
    if target.kind != "model":
        compiled.meta.setdefault("name", target.name)
        if target.description:
            compiled.meta.setdefault("description", target.description)
    stats = compiled.stats()
    cfg = compiled.config
    if args.output and target.kind != "model":
        target.describe(compiled)
    saved = [str(p) for p in save(compiled, args.output)] if args.output else []
    if args.json:
        print_json({
            **stats,
            "compile_seconds": None if seconds is None else round(seconds, 4),
            "program": target.name,
            "source": target.kind,
            "vocab": list(compiled.vocab),
            "max_seq_len": cfg.max_seq_len,
            "causal": cfg.causal,
            "heads_per_layer": cfg.heads_per_layer,
            "mlp_hidden_per_layer": cfg.mlp_hidden_per_layer,
            "saved": saved,
        })
        return 0
    when = "loaded from a model file" if seconds is None else f"compiled in {seconds:.3f} s"
    print(f"{target.name}: {when}")
    per_layer = "; ".join(
        f"L{i}: {h} head{'s' * (h != 1)}, {m} MLP units"
        for i, (h, m) in enumerate(zip(cfg.heads_per_layer, cfg.mlp_hidden_per_layer))
    )
    rows = [
        ("layers", f"{stats['layers']}"),
        ("heads", f"{stats['heads_total']} in all, at most {stats['heads']} per layer"),
        ("d_model", f"{stats['d_model']}"),
        ("MLP width", f"{stats['mlp_hidden_total']} hidden units in all, widest layer "
                      f"{stats['mlp_hidden']}"),
        ("parameters", f"{stats['params']:,} ({stats['nonzero_params']:,} non-zero)"),
        ("per layer", per_layer),
        ("causal", "yes" if cfg.causal else "no"),
    ]
    for key, value in rows:
        print(f"  {key:<11} {value}")
    if saved:
        print(f"saved {saved[0]} and {saved[1]}")
    return 0
