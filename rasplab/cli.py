"""The ``rasplab`` command line.

Subcommands live in :mod:`rasplab.commands`, one module each, found with ``pkgutil``: a
module ``rasplab/commands/NAME.py`` (not starting with ``_``) defines
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed
arguments; returns the exit status). An optional module constant ``ORDER`` (default 100)
places it in ``rasplab --help``. Adding a command never touches this file.

Errors a user can act on (unknown program, bad token, unreadable or damaged file, a
program the compiler refuses, an input outside the model's domain) print one line,
``rasplab: error: ...``, on stderr and exit with status 2. Start-up imports no JAX:
commands that run a model import it themselves.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from . import __version__, commands
from .compiler import CompileError, InputError, ModelFileError, rasp
from .inputs import UsageError

#: Exceptions reported as one line and exit status 2.
USER_ERRORS: tuple[type[BaseException], ...] = (
    UsageError, CompileError, InputError, ModelFileError, rasp.EvaluationError, OSError,
)


def _command_modules() -> list:
    mods = []
    for info in pkgutil.iter_modules(commands.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(mod, "register"):
            mods.append(mod)
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rasplab",
        description="Compile RASP programs to exact transformers, run and check them.",
        epilog="PROGRAM is a library name (see `rasplab list`), path/to/file.py:function, "
        "or, where it makes sense, a saved model (.safetensors or .json).",
    )
    parser.add_argument("--version", action="version", version=f"rasplab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # A command's trailing positionals (``run P --trace 1 2 3``) may follow its options;
    # argparse leaves those over, so they are appended where the command asks for them.
    field_name = getattr(args, "extra_positionals", None)
    if extra and field_name and not any(_looks_like_option(a) for a in extra):
        setattr(args, field_name, list(getattr(args, field_name) or []) + extra)
    elif extra:
        unknown = [a for a in extra if _looks_like_option(a)] or extra
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        status = func(args)
    except BrokenPipeError:  # `rasplab list | head`
        return 0
    except USER_ERRORS as err:
        print(f"rasplab: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rasplab: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


def _looks_like_option(arg: str) -> bool:
    if not arg.startswith("-") or arg == "-":
        return False
    try:
        float(arg)  # a negative number is a token
    except ValueError:
        return True
    return False


def _one_line(err: BaseException) -> str:
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    text = " ".join(str(err).split())
    return text or type(err).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
