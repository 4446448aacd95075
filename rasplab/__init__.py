"""rasplab: RASP programs compiled to exact transformer weights, for interpretability research.

The front door::

    import rasplab
    from rasplab import rasp

    compiled = rasplab.compile_program(program, vocab={1, 2, 3}, max_seq_len=5)  # numpy
    rasplab.save(compiled, "reverse.safetensors")   # + reverse.json
    model = rasplab.Model(rasplab.load("reverse.safetensors"))                # JAX
    model.run([[1, 2, 3]])

Importing ``rasplab`` does not import JAX: ``Model`` and ``programs`` load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .compiler import (
    CompileError,
    InputError,
    ModelFileError,
    compile_program,
    compile_rasp_to_model,
    rasp,
)
from .compiler.model_file import load, save

if TYPE_CHECKING:
    from . import programs
    from .compiler.model import Model

__version__ = "0.1.0"


def tracr_compat() -> None:
    """Make ``from tracr.rasp import rasp``, ``tracr.compiler.compiling`` and
    ``tracr.compiler.lib`` resolve to rasplab's modules (see :mod:`rasplab.tracr_compat`)."""
    from .tracr_compat import install

    install()


def __getattr__(name: str):
    if name == "Model":
        from .compiler.model import Model

        return Model
    if name == "programs":
        import importlib

        return importlib.import_module(".programs", __name__)
    raise AttributeError(f"module 'rasplab' has no attribute {name!r}")


__all__ = [
    "rasp", "compile_program", "compile_rasp_to_model", "CompileError", "InputError",
    "ModelFileError", "save", "load", "Model", "programs", "tracr_compat", "__version__",
]
