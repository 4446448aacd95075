"""Pieces shared by the subcommands: the PROGRAM argument and its overrides, JSON output."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from ..compiler.jsonvalues import plain_value
from ..inputs import Target, parse_vocab, resolve_target

PROGRAM_HELP = (
    "a library name (see `rasplab list`), path/to/file.py:FUNCTION, or a saved model "
    "(.safetensors / .json)"
)
PROGRAM_ONLY_HELP = "a library name (see `rasplab list`) or path/to/file.py:FUNCTION"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_program_arguments(
    parser: argparse.ArgumentParser, *, model_files: bool = True, causal: bool = True
) -> None:
    """PROGRAM plus ``--vocab``, ``--max-seq-len`` (and ``--causal``)."""
    parser.add_argument("program", metavar="PROGRAM",
                        help=PROGRAM_HELP if model_files else PROGRAM_ONLY_HELP)
    parser.add_argument("--vocab", metavar="TOKENS",
                        help="comma-separated vocabulary overriding the program's "
                        "(integer-looking tokens become ints), e.g. 1,2,3")
    parser.add_argument("--max-seq-len", type=positive_int, metavar="N",
                        help="longest input, overriding the program's")
    parser.add_argument("--bos", metavar="TOKEN", default=None,
                        help="the BOS token the model is compiled with (default BOS)")
    parser.add_argument("--pad", metavar="TOKEN", default=None,
                        help="the PAD token the model is compiled with (default PAD)")
    parser.add_argument("--tracr-compat", action="store_true",
                        help="let a program file import tracr's modules (tracr.rasp.rasp, "
                        "tracr.compiler.compiling, tracr.compiler.lib) as rasplab's")
    if causal:
        parser.add_argument("--causal", action="store_true",
                            help="compile with a causal attention mask")
    if model_files:
        parser.add_argument("--import-program", action="store_true",
                            help="for a saved model made from a program file: import that "
                            "file (only if its source hash still matches) instead of "
                            "using the model's reference table")


CORRUPTION_HELP = (
    "how resample ablation's corrupted inputs are drawn: same-length (default: other tokens, "
    "the clean input's length, so length-only machinery is invisible), any-length, or "
    "counterfactual:VARIABLE (change that program variable, keep the others where possible)"
)


def corruption_name(text: str) -> str:
    """argparse type for ``--corruption``."""
    from ..programs.corruptions import check_name

    try:
        return check_name(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def target_from_args(args: argparse.Namespace, *, model_files: bool = True) -> Target:
    """PROGRAM and its overrides as a :class:`Target` (``--tracr-compat``, ``--bos`` and
    ``--pad`` applied)."""
    from ..inputs import UsageError

    if getattr(args, "tracr_compat", False):
        from ..tracr_compat import install

        install()
    target = _resolve(args, model_files=model_files)
    bos, pad = getattr(args, "bos", None), getattr(args, "pad", None)
    if target.kind == "model" and (bos is not None or pad is not None):
        raise UsageError(f"{target.name} is a saved model: its BOS and PAD tokens are fixed "
                         f"({target.compiled.bos!r}, {target.compiled.pad!r})")
    if bos is not None:
        target.bos = bos
    if pad is not None:
        target.pad = pad
    return target


def _resolve(args: argparse.Namespace, *, model_files: bool = True) -> Target:
    vocab = parse_vocab(args.vocab) if getattr(args, "vocab", None) is not None else None
    return resolve_target(
        args.program, vocab, getattr(args, "max_seq_len", None), allow_model_file=model_files,
        import_program=getattr(args, "import_program", False),
    )


jsonable = plain_value


def print_json(data: Any) -> None:
    json.dump(jsonable(data), sys.stdout, indent=2)
    sys.stdout.write("\n")


def show_value(value: Any) -> str:
    """One program value for a terminal: strings bare, floats with 4 significant digits."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            value = round(value, 6) + 0.0  # float noise such as 7.9e-23 reads as 0
        return f"{value:.4g}"
    return str(value)


def format_table(rows: list[list[str]], *, right_from: int = 1) -> str:
    """Left-align the first ``right_from`` columns, right-align the rest."""
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
    lines = []
    for r in rows:
        cells = [
            c.ljust(widths[i]) if i < right_from else c.rjust(widths[i]) for i, c in enumerate(r)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
