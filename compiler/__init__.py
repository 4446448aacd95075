"""rasplab's compiler: RASP programs to exact transformer weights (numpy), run with JAX.

``compile_program`` needs numpy only; ``compile_rasp_to_model`` (tracr's signature) and
``Model`` import JAX on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import rasp
from .assemble import CompiledProgram, ModelConfig
from .compile import compile_program
from .errors import CompileError, InputError, ModelFileError
from .values import outputs_match, same_value

if TYPE_CHECKING:
    from .model import Model


def compile_rasp_to_model(
    program: rasp.SOp,
    vocab,
    max_seq_len: int,
    causal: bool = False,
    compiler_bos: str = "BOS",
    compiler_pad: str = "PAD",
    mlp_exactness: int = 100,
) -> Model:
    """tracr's entry point. ``mlp_exactness`` is accepted and ignored: sharpness is derived
    from the program's value gaps and ``max_seq_len`` so the model is exact, not tuned."""
    del mlp_exactness
    from .model import Model

    compiled = compile_program(
        program, vocab, max_seq_len, causal=causal, bos=compiler_bos, pad=compiler_pad
    )
    return Model(compiled, source_program=program)


def __getattr__(name: str):
    if name == "Model":
        from .model import Model

        return Model
    raise AttributeError(name)


__all__ = [
    "rasp", "compile_program", "compile_rasp_to_model", "CompiledProgram", "ModelConfig",
    "CompileError", "InputError", "ModelFileError", "Model", "outputs_match", "same_value",
]
