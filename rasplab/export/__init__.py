"""Export compiled models to TransformerLens (the optional extra ``rasplab[export]``).

::

    from rasplab.export import to_transformer_lens, save_transformer_lens, load_transformer_lens

    model = to_transformer_lens(compiled)          # a HookedTransformer, PAD keys masked
    save_transformer_lens(compiled, "out/reverse") # config.json, model.safetensors, rasplab.json
    exp = load_transformer_lens("out/reverse")
    ids = exp.encode([[1, 2, 3], [3, 1]])          # BOS + tokens + PAD
    exp.decode(exp.model(ids), ids)                # [[3, 2, 1], [1, 3]]

An export directory holds the weights as safetensors (no pickle), the
``HookedTransformerConfig`` arguments as JSON and a sidecar (``rasplab.json``) with the
encoders, the output decoding, the residual labels and the planted circuit as
TransformerLens hook names (see ``convert.py`` for the shapes, ``runtime.py`` for padding).
Importing this package needs torch and transformer_lens only when a function is called.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..compiler.assemble import CompiledProgram

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

    from .runtime import ExportedModel

INSTALL_HINT = "pip install rasplab[export]"


class MissingExtraError(ImportError):
    """torch or transformer_lens is not installed."""


def _runtime():
    try:
        from . import runtime
    except ImportError as err:
        raise MissingExtraError(
            f"the TransformerLens export needs torch and transformer-lens ({err.name} is not "
            f"installed): {INSTALL_HINT}"
        ) from None
    return runtime


def _compiled(model_or_compiled: Any) -> CompiledProgram:
    if isinstance(model_or_compiled, CompiledProgram):
        return model_or_compiled
    program = getattr(model_or_compiled, "program", None)  # compiler.model.Model
    if isinstance(program, CompiledProgram):
        return program
    raise TypeError(f"expected a CompiledProgram or a rasplab Model, got "
                    f"{type(model_or_compiled).__name__}")


def _exported(model_or_compiled: Any) -> ExportedModel:
    rt = _runtime()
    import torch

    from .convert import to_parts

    config, weights, sidecar = to_parts(_compiled(model_or_compiled))
    tensors = {k: torch.from_numpy(v) for k, v in weights.items()}
    return rt.from_parts(config, tensors, sidecar)


def to_transformer_lens(model_or_compiled: Any) -> HookedTransformer:
    """The compiled model as a TransformerLens ``HookedTransformer`` (PAD keys masked)."""
    return _exported(model_or_compiled).model


def exported(model_or_compiled: Any) -> ExportedModel:
    """The model with its encoders and circuit, as :func:`load_transformer_lens` returns."""
    return _exported(model_or_compiled)


def save_transformer_lens(model_or_compiled: Any, directory: str | Path) -> list[Path]:
    """Write ``config.json``, ``model.safetensors`` and ``rasplab.json`` into ``directory``."""
    rt = _runtime()
    import torch
    from safetensors.torch import save_file

    from .convert import to_parts

    config, weights, sidecar = to_parts(_compiled(model_or_compiled))
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    paths = [d / rt.CONFIG_FILE, d / rt.WEIGHTS_FILE, d / rt.SIDECAR_FILE]
    paths[0].write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
    save_file({k: torch.from_numpy(v) for k, v in sorted(weights.items())}, str(paths[1]),
              metadata={"format": rt.FORMAT_NAME})
    paths[2].write_text(json.dumps(sidecar, indent=1, sort_keys=True, allow_nan=False) + "\n")
    return paths


def load_transformer_lens(directory: str | Path) -> ExportedModel:
    """An export directory as ``.model`` (HookedTransformer), ``.encode``, ``.decode``."""
    return _runtime().load(directory)


__all__ = ["to_transformer_lens", "save_transformer_lens", "load_transformer_lens", "exported",
           "MissingExtraError", "INSTALL_HINT"]
