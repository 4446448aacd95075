"""The exported TransformerLens model at run time: build, mask padding, encode, decode.

This module is self-contained on purpose: it imports only torch, transformer_lens,
safetensors, numpy and the standard library (nothing from rasplab), so a client in another
environment (``benchmarks/autocircuit_side.py``, with TransformerLens 2.4.0) can load an
exported directory by importing this one file.

Padding. Our attention never attends to a PAD key (``compiler/model.attention_mask``),
causal or not. TransformerLens applies its ``attention_mask`` argument only inside its
causal mask (never for ``attention_dir="bidirectional"``) and, when given one, also
shifts the positional embedding, so it is not used. Instead the model carries two
permanent hooks: ``hook_tokens`` records which positions hold the PAD id, and every
``blocks.{l}.attn.hook_attn_scores`` replaces the score of a PAD key (and, for a causal
model, of a future key) by ``MASKED_SCORE``, exactly our ``where(mask, scores, -1e30)``.
Permanent hooks survive ``model.reset_hooks()`` and run before any user hook.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from transformer_lens import HookedTransformer, HookedTransformerConfig

FORMAT_NAME = "rasplab-transformer-lens"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
SIDECAR_FILE = "rasplab.json"
MASKED_SCORE = -1e30


class ExportFileError(ValueError):
    """An export directory that is missing a file or does not hold what it should."""


# ---------------------------------------------------------------------------------------
# Tagged program values (the tags of compiler/model_file.py)


def untag(data: Any) -> Any:
    """``{"int": 1}`` -> ``1``, ``{"tuple": [...]}`` -> a tuple, ``None`` -> ``None``."""
    if data is None:
        return None
    (tag, raw), = data.items()
    if tag in ("tuple", "list", "frozenset"):
        return {"tuple": tuple, "list": list, "frozenset": frozenset}[tag](untag(v) for v in raw)
    if tag == "float":
        return float(raw)
    return raw


# ---------------------------------------------------------------------------------------
# The model


def install_pad_mask(model: HookedTransformer, pad_id: int, causal: bool) -> None:
    """Permanent hooks that mask PAD keys (and future keys if ``causal``) as ours do."""
    state: dict[str, torch.Tensor] = {}

    def record_tokens(tokens: torch.Tensor, hook) -> torch.Tensor:
        state["keep"] = tokens != pad_id  # [batch, key]
        return tokens

    def mask_scores(scores: torch.Tensor, hook) -> torch.Tensor:
        keep = state["keep"][:, None, None, :]
        if causal:
            q, k = scores.shape[-2:]
            keep = keep & torch.ones(q, k, dtype=torch.bool, device=scores.device).tril()
        return torch.where(keep, scores, torch.full_like(scores, MASKED_SCORE))

    model.hook_tokens.add_perma_hook(record_tokens)
    for block in model.blocks:
        block.attn.hook_attn_scores.add_perma_hook(mask_scores)


def build_model(config: dict, tensors: dict[str, torch.Tensor], pad_id: int,
                causal: bool) -> HookedTransformer:
    """A HookedTransformer from its config arguments and state dict, padding masked."""
    cfg = HookedTransformerConfig(**config)
    with torch.device("cpu"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "HookedTransformer is deprecated")
        model = HookedTransformer(cfg)
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    # TransformerLens registers buffers (masks, IGNORE) that are not exported
    missing = [m for m in missing if m.split(".")[-1] not in ("mask", "IGNORE")]
    if missing or unexpected:
        raise ExportFileError(
            f"the weights do not fit the config: missing {missing[:4]}, unexpected "
            f"{unexpected[:4]}"
        )
    model.eval()
    install_pad_mask(model, pad_id, causal)
    return model


# ---------------------------------------------------------------------------------------
# Encoding and decoding


def decode_logits(logits: np.ndarray, encoding: str, values: list) -> tuple[list, np.ndarray]:
    """Decoded values ``[batch][seq]`` and a mask of clean read-outs (``compiler/model.decode``
    applied to the unembedded residual)."""
    out = np.asarray(logits, dtype=np.float64)
    if encoding == "numerical":
        x = out[..., 0]
        grid = np.array([float(v) for v in values]) if values else np.zeros(1)
        pos = np.clip(np.searchsorted(grid, x), 1, max(len(grid) - 1, 1))
        hi_i = np.minimum(pos, len(grid) - 1)
        lo, hi = grid[pos - 1], grid[hi_i]
        idx = np.where(np.abs(x - lo) <= np.abs(x - hi), pos - 1, hi_i)
        gaps = np.diff(grid).min() if len(grid) > 1 else 1.0
        clean = np.abs(x - grid[idx]) < gaps / 4
        return [[values[i] if values else 0 for i in row] for row in idx.tolist()], clean
    out = out[..., : len(values)]
    if out.shape[-1] == 0:
        return [[None] * out.shape[1] for _ in range(out.shape[0])], np.ones(out.shape[:2], bool)
    best, top = out.argmax(-1), out.max(-1)
    rest = np.sort(out, axis=-1)[..., -2] if out.shape[-1] > 1 else np.zeros(out.shape[:2])
    is_none = top < 0.5
    clean = np.where(is_none, top < 0.1, (np.abs(top - 1) < 0.1) & (np.abs(rest) < 0.1))
    decoded = [[None if n else values[b] for b, n in zip(brow, nrow, strict=True)]
               for brow, nrow in zip(best.tolist(), is_none.tolist(), strict=True)]
    return decoded, clean


@dataclass
class ExportedModel:
    """An exported model with what TransformerLens cannot hold: encoders and the circuit."""

    model: HookedTransformer
    sidecar: dict
    token_ids: dict
    output_values: list

    @property
    def bos_id(self) -> int:
        return int(self.sidecar["input"]["bos_id"])

    @property
    def pad_id(self) -> int:
        return int(self.sidecar["input"]["pad_id"])

    @property
    def circuit(self) -> dict:
        """The planted circuit with components and edges as TransformerLens hooks."""
        return self.sidecar["circuit"]

    def encode(self, inputs: list, width: int | None = None) -> torch.Tensor:
        """``[batch, width]`` ids: BOS, the tokens, PAD after shorter sequences."""
        inputs = [list(s) for s in inputs]
        width = width or 1 + max((len(s) for s in inputs), default=0)
        limit = int(self.sidecar["input"]["max_seq_len"])
        ids = torch.full((len(inputs), width), self.pad_id, dtype=torch.long)
        ids[:, 0] = self.bos_id
        for b, seq in enumerate(inputs):
            if len(seq) > min(limit, width - 1):
                raise ValueError(f"input {b} has {len(seq)} tokens; the model takes at most "
                                 f"{min(limit, width - 1)}")
            for i, tok in enumerate(seq):
                key = _token_key(tok)
                if key not in self.token_ids or key in (self._special("bos"),
                                                        self._special("pad")):
                    raise ValueError(f"input {b}: token {tok!r} at position {i} is not in "
                                     "the vocabulary")
                ids[b, 1 + i] = self.token_ids[key]
        return ids

    def decode(self, logits: torch.Tensor, ids: torch.Tensor | None = None) -> list[list]:
        """Program values at every real position (BOS and, given ``ids``, PAD dropped)."""
        arr = logits.detach().to(torch.float64).cpu().numpy()
        out = self.sidecar["output"]
        decoded, _ = decode_logits(arr, out["encoding"], self.output_values)
        if ids is None:
            return [row[1:] for row in decoded]
        real = (ids != self.pad_id).cpu().numpy()
        return [[v for v, r in zip(row[1:], keep[1:], strict=True) if r]
                for row, keep in zip(decoded, real, strict=True)]

    def run(self, inputs: list) -> list[list]:
        """Decoded outputs for a batch of token sequences."""
        ids = self.encode(inputs)
        with torch.no_grad():
            return self.decode(self.model(ids), ids)

    def _special(self, which: str):
        return _token_key(untag(self.sidecar["input"][which]))


def _token_key(tok: Any) -> tuple:
    """Tokens as dictionary keys that keep ``1``, ``1.0``, ``True`` and ``"1"`` apart."""
    return (type(tok).__name__, repr(tok))


def from_parts(config: dict, tensors: dict[str, torch.Tensor], sidecar: dict) -> ExportedModel:
    inp = sidecar["input"]
    model = build_model(config, tensors, int(inp["pad_id"]), bool(sidecar["attention"]["causal"]))
    token_ids = {_token_key(untag(tok)): int(i) for tok, i in inp["token_ids"]}
    values = [untag(v) for v in sidecar["output"]["values"]]
    return ExportedModel(model=model, sidecar=sidecar, token_ids=token_ids, output_values=values)


def load(directory: str | Path) -> ExportedModel:
    """Load an export directory (``config.json``, ``model.safetensors``, ``rasplab.json``)."""
    d = Path(directory)
    for name in (CONFIG_FILE, WEIGHTS_FILE, SIDECAR_FILE):
        if not (d / name).is_file():
            raise ExportFileError(f"{d / name} is missing; is {d} a rasplab export directory?")
    sidecar = json.loads((d / SIDECAR_FILE).read_text())
    if sidecar.get("format") != FORMAT_NAME:
        raise ExportFileError(f"{d / SIDECAR_FILE} is not a {FORMAT_NAME} sidecar")
    if int(sidecar.get("format_version", 0)) > FORMAT_VERSION:
        raise ExportFileError(f"{d} was written by a newer rasplab (format version "
                              f"{sidecar['format_version']}); upgrade rasplab")
    config = json.loads((d / CONFIG_FILE).read_text())
    tensors = load_file(str(d / WEIGHTS_FILE))
    return from_parts(config, tensors, sidecar)


__all__ = ["ExportedModel", "ExportFileError", "build_model", "decode_logits", "from_parts",
           "install_pad_mask", "load", "untag", "MASKED_SCORE"]
