"""``rasplab export PROGRAM --to transformer-lens -o DIR``: a model for TransformerLens."""

from __future__ import annotations

import argparse

from ..inputs import UsageError
from ._common import add_program_arguments, target_from_args

ORDER = 75
FORMATS = ("transformer-lens",)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export a compiled model to TransformerLens",
        description="Compile PROGRAM (or load a saved model) and write DIR/config.json "
        "(HookedTransformerConfig arguments), DIR/model.safetensors (weights) and "
        "DIR/rasplab.json (encoders, output decoding, residual labels, the planted circuit "
        "as hook names). Load it with rasplab.export.load_transformer_lens(DIR). Needs the "
        "optional extra: pip install rasplab[export].",
    )
    add_program_arguments(p)
    p.add_argument("--to", choices=FORMATS, default="transformer-lens",
                   help="export format (default transformer-lens)")
    p.add_argument("-o", "--output", metavar="DIR", required=True,
                   help="directory to write (created if missing)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export import MissingExtraError, save_transformer_lens

    target = target_from_args(args)
    compiled = target.compile(causal=args.causal)
    if target.kind != "model":
        compiled.meta.setdefault("name", target.name)
    try:
        paths = save_transformer_lens(compiled, args.output)
    except MissingExtraError as err:
        raise UsageError(str(err)) from None
    cfg = compiled.config
    print(f"{target.name}: {cfg.num_layers} layers, d_model {cfg.d_model} -> "
          f"{', '.join(str(p) for p in paths)}")
    return 0
