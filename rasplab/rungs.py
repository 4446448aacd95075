"""The realism ladder's rungs as a small registry: a rung turns a compiled program into a model.

A rung is a name plus a pure function ``make(compiled, seed) -> CompiledProgram``; the
zoo (:mod:`rasplab.zoo`) writes one model file per (program, rung) and the sweeps run a
cell per (program, rung, ...). Only ``compiled`` (the compiler's own, exact, axis-aligned
model) is built in. Other rungs plug in with :func:`register_rung`; a module
``rasplab.variants``, where it exists, is imported on first lookup so the rungs it
registers, or lists in its ``RUNGS`` with a ``make(rung, compiled, seed=)``, appear
without anyone touching this file::

    from rasplab.rungs import register_rung
    register_rung("rotated", rotate, description="random orthogonal residual basis",
                  exact=True)

No JAX here: rungs are built in numpy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from .compiler import CompiledProgram

#: Modules imported once, on the first lookup, so the rungs they register are known.
PLUGIN_MODULES = ("rasplab.variants",)


@dataclass(frozen=True)
class Rung:
    """One rung of the ladder: ``make(compiled, seed)`` gives that rung's model."""

    name: str
    make: Callable[[CompiledProgram, int], CompiledProgram]
    description: str = ""
    exact: bool = True  # agrees with the interpreter on every input (else: measured accuracy)


_RUNGS: dict[str, Rung] = {}
_plugins_loaded = False


def _identity(compiled: CompiledProgram, seed: int) -> CompiledProgram:
    return compiled


def register_rung(name: str, make: Callable[[CompiledProgram, int], CompiledProgram], *,
                  description: str = "", exact: bool = True) -> Rung:
    """Add (or replace) the rung ``name``; returns its record."""
    rung = Rung(name, make, description, exact)
    _RUNGS[name] = rung
    return rung


register_rung("compiled", _identity, description="the compiler's exact, axis-aligned model")


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for module in PLUGIN_MODULES:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:  # the plug-in exists but is broken: say so
                raise
            continue
        _adopt(mod)


def _adopt(mod) -> None:
    """Register the rungs of a module with ``RUNGS`` and ``make(rung, compiled, seed=)``
    (``rasplab.variants``' interface) that it did not register itself. A rung is taken as
    exact if it is in the module's ``EXACT_RUNGS`` (default: ``rotated`` only)."""
    make, names = getattr(mod, "make", None), getattr(mod, "RUNGS", ())
    if not callable(make):
        return
    exact = set(getattr(mod, "EXACT_RUNGS", {"rotated"}))
    for name in names:
        if name not in _RUNGS:
            register_rung(name, lambda compiled, seed, _r=name: make(_r, compiled, seed=seed),
                          description=f"{mod.__name__}.make({name!r}, ...)",
                          exact=name in exact)


def rung_names() -> list[str]:
    """Every known rung, ``compiled`` first."""
    _load_plugins()
    return list(_RUNGS)


def get_rung(name: str) -> Rung:
    """The rung called ``name``; an unknown one raises ``ValueError`` listing the known."""
    _load_plugins()
    if name not in _RUNGS:
        raise ValueError(f"unknown rung {name!r}; known rungs: {', '.join(_RUNGS)}")
    return _RUNGS[name]


def build_rung(name: str, compiled: CompiledProgram, seed: int = 0) -> CompiledProgram:
    """``compiled`` taken to rung ``name`` (``seed`` for rungs that draw something)."""
    return get_rung(name).make(compiled, seed)


__all__ = ["Rung", "register_rung", "rung_names", "get_rung", "build_rung"]
