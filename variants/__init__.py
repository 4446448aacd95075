"""Variants of compiled models: the realism ladder's rungs, each a model that still carries
a known circuit, and the one registry of rungs.

``make(rung, compiled, seed=...)`` builds one; each rung's construction is its own module
(``variants/rotated.py``, ...), imported only when asked for, so listing or looking up a
rung needs no JAX. :func:`get_rung` gives a rung's record (``Rung``: a
``make(compiled, seed)``, a description, whether it is exact), :func:`rung_names` every
rung, ``compiled`` first. A rung defined elsewhere plugs in with :func:`register_rung`::

    from rasplab.variants import register_rung
    register_rung("spun", spin, description="my own change of basis", exact=True)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rasplab.compiler.assemble import CompiledProgram

#: rung name -> (module, function); "compiled" is the model itself.
_BUILDERS = {"rotated": ("rotated", "rotate"), "compressed": ("compressed", "make_variant"),
             "retrained": ("retrained", "make_variant")}
RUNGS = ("compiled", *_BUILDERS)
#: Rungs whose models agree with the interpreter exactly (the others carry their accuracy).
EXACT_RUNGS = frozenset({"compiled", "rotated"})

#: One line per built-in rung (a rung without one is described by its builder's name).
DESCRIPTIONS = {
    "compiled": "the compiler's exact, axis-aligned model",
    "rotated": "a random orthogonal change of residual basis (exact)",
    "compressed": "frozen weights, one learned D x d matrix: features in superposition "
                  "(approximate, accuracy measured)",
    "retrained": "a fresh transformer trained with the circuit enforced (approximate, "
                 "accuracy measured)",
}


@dataclass(frozen=True)
class Rung:
    """One rung of the ladder: ``make(compiled, seed)`` gives that rung's model."""

    name: str
    make: Callable[[CompiledProgram, int], CompiledProgram]
    description: str = ""
    exact: bool = True  # agrees with the interpreter on every input (else: measured accuracy)


_REGISTERED: dict[str, Rung] = {}  # rungs plugged in at run time (register_rung)


def register_rung(name: str, make: Callable[[CompiledProgram, int], CompiledProgram], *,
                  description: str = "", exact: bool = True) -> Rung:
    """Add (or replace) the rung ``name``; returns its record. A registered rung takes
    precedence over a built-in one of the same name."""
    rung = Rung(name, make, description, exact)
    _REGISTERED[name] = rung
    return rung


def unregister_rung(name: str) -> None:
    """Remove a rung added with :func:`register_rung` (the built-in ones stay)."""
    _REGISTERED.pop(name, None)


def rung_names() -> list[str]:
    """Every known rung, ``compiled`` first."""
    return list(dict.fromkeys([*RUNGS, *_REGISTERED]))


def _built_in(name: str) -> Rung:
    def build(compiled: CompiledProgram, seed: int) -> CompiledProgram:
        return make(name, compiled, seed=seed)

    fallback = f"variants.{'.'.join(_BUILDERS[name])}" if name in _BUILDERS else ""
    return Rung(name, build, DESCRIPTIONS.get(name, fallback), name in EXACT_RUNGS)


def get_rung(name: str) -> Rung:
    """The rung called ``name``; an unknown one raises ``ValueError`` listing the known."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in RUNGS:
        raise ValueError(f"unknown rung {name!r}; known rungs: {', '.join(rung_names())}")
    return _built_in(name)


def make(rung: str, compiled: CompiledProgram, *, seed: int = 0, **options) -> CompiledProgram:
    """The ``rung`` variant of ``compiled`` (``compiled`` itself for ``"compiled"``);
    ``options`` go to the built-in builder (``compressed``: ``d``, ``spec``, ``steps``...)."""
    if rung in _REGISTERED:
        if options:
            raise ValueError(f"rung {rung!r} takes no options (got {', '.join(options)})")
        return _REGISTERED[rung].make(compiled, seed)
    if rung == "compiled":
        return compiled
    if rung not in _BUILDERS:
        raise ValueError(f"unknown rung {rung!r}; use one of {', '.join(rung_names())}")
    module, fn = _BUILDERS[rung]
    build = getattr(importlib.import_module(f"{__name__}.{module}"), fn)
    return build(compiled, seed=seed, **options)


def build_rung(name: str, compiled: CompiledProgram, seed: int = 0) -> CompiledProgram:
    """``compiled`` taken to rung ``name`` (``seed`` for rungs that draw something)."""
    return get_rung(name).make(compiled, seed)


__all__ = ["RUNGS", "EXACT_RUNGS", "DESCRIPTIONS", "Rung", "make", "register_rung",
           "unregister_rung", "rung_names", "get_rung", "build_rung"]
