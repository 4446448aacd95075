"""Stable cache keys for compiled models: a program's fingerprint plus what it was compiled with.

Used by the test fixtures' cache (:mod:`rasplab.testing`) and the zoo (:mod:`rasplab.zoo`).
No JAX.
"""

from __future__ import annotations

import hashlib
import json
import types
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from . import __version__
from .compiler import rasp


def _func_fingerprint(f: Any, depth: int = 0) -> Any:
    """A stable description of a callable: bytecode, constants, names, defaults, closure."""
    if depth > 8:
        return "..."
    if isinstance(f, types.MethodType):
        return ["method", _func_fingerprint(f.__func__, depth + 1), _value(f.__self__, depth)]
    code = getattr(f, "__code__", None)
    if code is None:
        if hasattr(f, "func") and hasattr(f, "args"):  # functools.partial
            return ["partial", _func_fingerprint(f.func, depth + 1),
                    [_value(a, depth) for a in f.args],
                    {k: _value(v, depth) for k, v in sorted(f.keywords.items())}]
        return ["callable", getattr(f, "__module__", None), getattr(f, "__qualname__", repr(f))]
    closure = [_value(c.cell_contents, depth) for c in (f.__closure__ or ())]
    defaults = [_value(d, depth) for d in (f.__defaults__ or ())]
    g = getattr(f, "__globals__", {})
    used = [(n, _global(g[n], depth)) for n in _names(code) if n in g]
    return ["function", _code_fingerprint(code), defaults, closure, used]


def _names(code: types.CodeType) -> list[str]:
    """Global names a code object (and the code nested in it) refers to."""
    out = list(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            out += _names(c)
    return sorted(set(out))


def _global(v: Any, depth: int) -> Any:
    if isinstance(v, types.ModuleType):
        return ["module", v.__name__]
    if isinstance(v, type):
        return ["class", v.__module__, v.__qualname__]
    return _value(v, depth + 1)


def _code_fingerprint(code: types.CodeType) -> Any:
    consts = [_code_fingerprint(c) if isinstance(c, types.CodeType) else repr(c)
              for c in code.co_consts]
    return [code.co_code.hex(), consts, list(code.co_names), code.co_argcount]


def _value(v: Any, depth: int) -> Any:
    if depth > 8:
        return "..."
    if hasattr(v, "dtype") and hasattr(v, "tobytes"):  # numpy arrays: by content
        return ["array", str(v.dtype), list(getattr(v, "shape", ())),
                hashlib.sha256(v.tobytes()).hexdigest()]
    if isinstance(v, rasp.RASPExpr):
        return ["expr", program_fingerprint(v)]
    if callable(v) and not isinstance(v, type):
        return _func_fingerprint(v, depth + 1)
    if isinstance(v, (list, tuple)):
        return [type(v).__name__, [_value(x, depth) for x in v]]
    if isinstance(v, (set, frozenset)):
        return [type(v).__name__, sorted(repr(x) for x in v)]
    if isinstance(v, dict):
        return ["dict", sorted((repr(k), _value(x, depth)) for k, x in v.items())]
    return repr(v)


_SKIP_ATTRS = {"_annotations", "_unique_id", "_name_defaulted"}


def program_fingerprint(program: rasp.RASPExpr) -> str:
    """SHA-256 of a program's structure and code, stable across sessions.

    Expressions are numbered in depth-first order (so automatic ids like ``map_12`` do not
    matter); each contributes its type, its explicit name (if any), its other annotations
    and every attribute that is not a child (comparisons, fill values, defaults), with
    functions described by their bytecode, constants, names, defaults and closures.
    """
    order: dict[int, int] = {}
    records: list[Any] = []

    def visit(expr: rasp.RASPExpr) -> int:
        if id(expr) in order:
            return order[id(expr)]
        children = [visit(c) for c in expr.children]
        record: dict[str, Any] = {"type": type(expr).__name__, "children": children}
        notes = dict(expr._annotations._inner)
        if not expr.has_explicit_name:
            notes.pop("name", None)
        if isinstance(expr, rasp.SOp):  # the default is filled in lazily (e.g. by compiling)
            notes["encoding"] = expr.annotations["encoding"]
        record["annotations"] = sorted((k, repr(v)) for k, v in notes.items())
        attrs = []
        child_ids = {id(c) for c in expr.children}
        for k, v in sorted(vars(expr).items()):
            if k in _SKIP_ATTRS or id(v) in child_ids:
                continue
            attrs.append((k, _func_fingerprint(v) if callable(v) and not isinstance(v, type)
                          else _value(v, 0)))
        record["attrs"] = attrs
        order[id(expr)] = len(records)
        records.append(record)
        return order[id(expr)]

    visit(program)
    text = json.dumps(records, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


@cache
def compiler_source_hash() -> str:
    """SHA-256 over the compiler's Python sources (a cached model is tied to them)."""
    h = hashlib.sha256()
    from . import compiler

    for path in sorted(Path(compiler.__file__).resolve().parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def model_key(program: rasp.RASPExpr, vocab: Iterable, max_seq_len: int, *,
              causal: bool = False, name: str | None = None) -> str:
    """The cache key of one compiled model (hex SHA-256); see the module docstring."""
    data = {
        "name": name,
        "program": program_fingerprint(program),
        "vocab": sorted(repr(v) for v in vocab),
        "max_seq_len": int(max_seq_len),
        "causal": bool(causal),
        "rasplab": __version__,
        "compiler": compiler_source_hash(),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


__all__ = ["program_fingerprint", "compiler_source_hash", "model_key"]
