"""Variants of compiled models: the realism ladder's rungs, each a model that still carries
a known circuit. ``make(rung, compiled, seed=...)`` builds one; each rung's construction is
its own module (``variants/rotated.py``, ...), imported only when asked for."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rasplab.compiler.assemble import CompiledProgram

#: rung name -> (module, function); "compiled" is the model itself.
_BUILDERS = {"rotated": ("rotated", "rotate"), "compressed": ("compressed", "make_variant"),
             "retrained": ("retrained", "make_variant")}
RUNGS = ("compiled", *_BUILDERS)
#: Rungs whose models agree with the interpreter exactly (the others carry their accuracy).
EXACT_RUNGS = frozenset({"compiled", "rotated"})


def make(rung: str, compiled: CompiledProgram, *, seed: int = 0, **options) -> CompiledProgram:
    """The ``rung`` variant of ``compiled`` (``compiled`` itself for ``"compiled"``)."""
    if rung == "compiled":
        return compiled
    if rung not in _BUILDERS:
        raise ValueError(f"unknown rung {rung!r}; use one of {', '.join(RUNGS)}")
    module, fn = _BUILDERS[rung]
    build = getattr(importlib.import_module(f"{__name__}.{module}"), fn)
    return build(compiled, seed=seed, **options)


__all__ = ["RUNGS", "EXACT_RUNGS", "make"]
