"""Finding library programs by name or tag, and loading a user's program from a file."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from rasplab.compiler import rasp

from .spec import FAMILIES, TAGS, ProgramSpec


class UnknownProgramError(KeyError, ValueError):
    """No library program has that name (a KeyError and a ValueError)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


_CACHE: dict[str, ProgramSpec] = {}


def _library() -> dict[str, ProgramSpec]:
    if not _CACHE:
        from .catalog import all_specs

        for spec in all_specs():
            if spec.name in _CACHE:
                raise RuntimeError(f"two library programs are named {spec.name!r}")
            _CACHE[spec.name] = spec
    return _CACHE


def list_programs() -> list[ProgramSpec]:
    """Every library program, in library order."""
    return list(_library().values())


def program_names() -> list[str]:
    """The names of the library programs, in library order."""
    return list(_library())


def get(name: str) -> ProgramSpec:
    """The library program called ``name``; an unknown name raises
    :class:`UnknownProgramError` naming the closest matches."""
    library = _library()
    if name in library:
        return library[name]
    close = difflib.get_close_matches(name, library, n=5, cutoff=0.5)
    close += [n for n in library if name and name in n and n not in close][: 5 - len(close)]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownProgramError(
        f"no library program named {name!r}{hint} ({len(library)} programs: see list_programs())"
    )


def _chosen(values: str | Iterable[str] | None, known: frozenset[str], what: str,
            plural: str) -> frozenset[str]:
    """``values`` as a set, every one of them in ``known`` (else ``ValueError``)."""
    if values is None:
        return frozenset()
    chosen = frozenset([values] if isinstance(values, str) else values)
    unknown = sorted(chosen - known)
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(unknown)}; known {plural}: "
                         f"{', '.join(sorted(known))}")
    return chosen


def _tag_set(tags: str | Iterable[str] | None) -> frozenset[str]:
    return _chosen(tags, TAGS, "tag", "tags")


def _family_set(family: str | Iterable[str] | None) -> frozenset[str]:
    return _chosen(family, FAMILIES, "family", "families")


def filter_programs(
    tag: str | Iterable[str] | None = None,
    *,
    exclude: str | Iterable[str] | None = None,
    causal_ok: bool | None = None,
    family: str | Iterable[str] | None = None,
) -> list[ProgramSpec]:
    """Library programs carrying every tag in ``tag`` and none in ``exclude``.

    ``causal_ok`` (if not None) keeps only programs whose ``causal_ok`` equals it;
    ``family`` (if given) only programs of that family (or of any of several). Unknown
    tags and families raise ValueError.
    """
    wanted, unwanted = _tag_set(tag), _tag_set(exclude)
    families = _family_set(family)
    return [
        spec
        for spec in list_programs()
        if wanted <= spec.tags
        and not (unwanted & spec.tags)
        and (causal_ok is None or spec.causal_ok == causal_ok)
        and (not families or spec.family in families)
    ]


# --- user programs ----------------------------------------------------------------------


def parse_vocab(vocab: str | Iterable | None) -> tuple | None:
    """A vocabulary from a list, a set, or a comma-separated string (``"1,2,3"`` gives
    the integers 1, 2, 3; ``"a,b"`` the strings)."""
    if vocab is None:
        return None
    if isinstance(vocab, str):
        items = [item.strip() for item in vocab.split(",") if item.strip()]
        return tuple(int(item) if _is_int(item) else item for item in items)
    return tuple(vocab)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _import_file(path: Path) -> ModuleType:
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    module_name = f"rasplab_user_{resolved.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {path}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    folder = str(resolved.parent)
    if folder not in sys.path:  # the file's sibling modules import as they would from there
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except (SyntaxError, ImportError):
        sys.modules.pop(module_name, None)
        raise
    except Exception as err:
        sys.modules.pop(module_name, None)
        raise UserCodeError(
            f"importing {path}{_line_in(err, resolved)} raised {type(err).__name__}: {err}"
        ) from err
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


class UserCodeError(ValueError):
    """A user's program file raised while being imported or while building its program."""


def _line_in(err: BaseException, path: Path) -> str:
    """``":LINE"`` of the deepest traceback frame in ``path`` ("" if none)."""
    line = ""
    tb = err.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve() == path:
            line = f":{tb.tb_lineno}"
        tb = tb.tb_next
    return line


def call_user(func: Callable, path: str | Path, name: str | None = None) -> Any:
    """``func()``, with any exception it raises reported as a :class:`UserCodeError` that
    names the file, the line, the function and the exception type."""
    name = name or getattr(func, "__name__", "function")
    try:
        return func()
    except Exception as err:
        where = _line_in(err, Path(path).resolve())
        raise UserCodeError(
            f"{path}{where}: {name}() raised {type(err).__name__}: {err}"
        ) from err


def _split_target(target: str) -> tuple[Path, str]:
    """``"path/to/file.py:function"`` as (an existing file, the function's name)."""
    path_text, sep, func_name = target.rpartition(":")
    if not sep or not path_text or not func_name:
        raise ValueError(f"expected 'path/to/file.py:function', got {target!r}")
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    return path, func_name


def load_user_function(target: str) -> Callable:
    """The function ``FUNCTION`` of ``"path/to/file.py:FUNCTION"`` (not called)."""
    path, func_name = _split_target(target)
    func = getattr(_import_file(path), func_name, None)
    if not callable(func):
        raise ValueError(f"{path} has no function {func_name!r}")
    return func


_SPEC_FIELDS = {f.name for f in dataclasses.fields(ProgramSpec)}


def load_user_program(
    target: str,
    vocab: str | Iterable | None = None,
    max_seq_len: int | str | None = None,
) -> ProgramSpec:
    """Load ``"path/to/file.py:function"`` as a :class:`ProgramSpec`.

    The function is called with no arguments and returns one of:

    * a rasp SOp: ``vocab`` and ``max_seq_len`` must then be given here;
    * a ``ProgramSpec``;
    * a dict of ProgramSpec fields, with either ``build`` (a zero-argument callable) or
      ``program`` (an SOp); ``name`` defaults to the function's name.

    ``vocab`` and ``max_seq_len``, when given, override what the function says. Every
    mistake a user can make in the target raises ValueError with a one-line message.
    """
    path, func_name = _split_target(target)
    module = _import_file(path)
    func = getattr(module, func_name, None)
    if func is None:
        defined = sorted(
            n for n, v in vars(module).items()
            if inspect.isfunction(v) and v.__module__ == module.__name__
        )
        listed = ", ".join(defined) if defined else "none"
        raise ValueError(f"{path} has no function {func_name!r} (functions defined: {listed})")
    if not callable(func):
        raise ValueError(f"{path}: {func_name!r} is a {type(func).__name__}, not a function")
    _require_no_arguments(func, target)

    vocab = parse_vocab(vocab)
    if isinstance(max_seq_len, str):
        if not max_seq_len.strip().isdigit():
            raise ValueError(f"max_seq_len must be a positive integer, got {max_seq_len!r}")
        max_seq_len = int(max_seq_len)
    overrides: dict[str, Any] = {}
    if vocab is not None:
        overrides["vocab"] = vocab
    if max_seq_len is not None:
        overrides["max_seq_len"] = max_seq_len

    result = call_user(func, path, func_name)
    if isinstance(result, ProgramSpec):
        return dataclasses.replace(result, **overrides) if overrides else result
    if isinstance(result, rasp.SOp):
        fields = {"build": func}
    elif isinstance(result, Mapping):
        fields = _fields_from_mapping(result, func, target)
    else:
        raise ValueError(
            f"{target} returned a {type(result).__name__}; expected a rasp SOp, a "
            "ProgramSpec, or a dict of ProgramSpec fields"
        )
    fields.setdefault("name", func_name)
    doc = (inspect.getdoc(func) or "").strip().splitlines()
    fields.setdefault("description", doc[0] if doc else f"user program {target}")
    fields.update(overrides)
    for key, flag in (("vocab", "--vocab"), ("max_seq_len", "--max-seq-len")):
        if fields.get(key) is None:
            raise ValueError(
                f"{target} gives no {key}: pass {key}= ({flag} on the command line)"
            )
    return ProgramSpec(**fields)


def _require_no_arguments(func: Callable, target: str) -> None:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return
    named_kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                   inspect.Parameter.KEYWORD_ONLY)
    required = [p.name for p in params if p.default is p.empty and p.kind in named_kinds]
    if required:
        raise ValueError(f"{target} must take no arguments (it requires {', '.join(required)})")


def _fields_from_mapping(result: Mapping, func: Callable, target: str) -> dict[str, Any]:
    fields = dict(result)
    unknown = sorted(set(fields) - _SPEC_FIELDS - {"program"})
    if unknown:
        raise ValueError(
            f"{target} returned unknown field(s) {unknown}; allowed: "
            f"{', '.join(sorted(_SPEC_FIELDS | {'program'}))}"
        )
    program = fields.pop("program", None)
    if "build" not in fields:
        if not isinstance(program, rasp.SOp):
            raise ValueError(f"{target} returned a dict without 'build' or a 'program' SOp")

        def build() -> rasp.SOp:
            return func()["program"]

        fields["build"] = build
    if "tags" in fields and not isinstance(fields["tags"], str):
        fields["tags"] = frozenset(fields["tags"])
    return fields
