"""Opt-in aliases that make tracr's module paths resolve to rasplab's (no tracr needed).

After :func:`install` (``rasplab.tracr_compat()`` in Python, ``--tracr-compat`` on the
command line), a file written for tracr imports unchanged::

    from tracr.rasp import rasp                  # rasplab.compiler.rasp
    from tracr.compiler import compiling         # compiling.compile_rasp_to_model
    from tracr.compiler import lib               # rasplab.programs.tracr_lib

Only these paths exist; anything else under ``tracr`` is still an ImportError. A real tracr
that is already imported is left alone (installing raises instead of shadowing it).
"""

from __future__ import annotations

import sys
from types import ModuleType

_MARK = "__rasplab_alias__"


def _package(name: str, **attrs) -> ModuleType:
    mod = ModuleType(name, f"rasplab alias for tracr's {name} (see rasplab.tracr_compat)")
    mod.__path__ = []  # a package, so submodules resolve from sys.modules
    setattr(mod, _MARK, True)
    for key, value in attrs.items():
        setattr(mod, key, value)
    return mod


def installed() -> bool:
    """Whether the aliases are in place."""
    return getattr(sys.modules.get("tracr"), _MARK, False)


def install() -> None:
    """Put the aliases in ``sys.modules`` (idempotent)."""
    if installed():
        return
    if "tracr" in sys.modules:
        raise RuntimeError(
            "tracr itself is already imported; the rasplab aliases would shadow it (run "
            "without tracr_compat, or in a fresh interpreter)"
        )
    from . import compiler
    from .compiler import rasp
    from .programs import tracr_lib

    aliases = {
        "tracr": _package("tracr"),
        "tracr.rasp": _package("tracr.rasp", rasp=rasp),
        "tracr.rasp.rasp": rasp,
        "tracr.compiler": _package("tracr.compiler", compiling=compiler, lib=tracr_lib),
        "tracr.compiler.compiling": compiler,
        "tracr.compiler.lib": tracr_lib,
    }
    aliases["tracr"].rasp = aliases["tracr.rasp"]
    aliases["tracr"].compiler = aliases["tracr.compiler"]
    sys.modules.update(aliases)


def uninstall() -> None:
    """Remove the aliases (only ours)."""
    if not installed():
        return
    for name in [n for n in sys.modules if n == "tracr" or n.startswith("tracr.")]:
        del sys.modules[name]


__all__ = ["install", "uninstall", "installed"]
