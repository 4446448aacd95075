"""Readouts: how a network's final residual becomes program values.

The unembedding (``params["unembed"]``) maps the final residual to read-out columns: one
per categorical output value (all near 0 means ``None``) or one number. A ``Readout`` turns
read-outs into values and says whether each read-out was *clean*:

* ``EXACT`` (compiled and rotated models): categorical: the value whose column is near 1,
  ``None`` if all are near 0; numerical: the nearest value of the exact value set. A
  read-out that is neither (a blend, a number between grid values) is unclean: on an exact
  model it happens only outside the program's domain.
* ``NEAREST`` (approximate models: compressed, retrained): the same nearest value, always
  called clean, since an approximate model's read-outs are never exactly one-hot; a
  categorical read-out is ``None`` only if the output can be ``None`` (else the argmax).

``codes`` is written once for numpy and ``jax.numpy`` (pass ``xp``), so the intervention
engine's jitted comparisons and the model's decoding are the same function.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

#: A categorical read-out below this is None; a clean one is within TOLERANCE of 0 or 1.
NONE_BELOW = 0.5
TOLERANCE = 0.1


class ReadoutKind(StrEnum):
    EXACT = "exact"
    NEAREST = "nearest"


@dataclass(frozen=True)
class Readout:
    """Decodes read-outs ``[..., n_out]`` of one output variable."""

    encoding: str  # "categorical" | "numerical"
    values: tuple  # categorical: the value of each column; numerical: the sorted grid
    kind: ReadoutKind = ReadoutKind.EXACT
    can_be_none: bool = True  # categorical: whether the output variable can be None

    @property
    def grid(self) -> tuple[float, ...]:
        return tuple(float(v) for v in self.values) if self.encoding == "numerical" else ()

    def codes(self, readout, xp: Any = np):
        """Value indices ``[...]`` (-1 for categorical None) and a clean mask ``[...]``."""
        readout = xp.asarray(readout)
        exact = self.kind is ReadoutKind.EXACT
        if self.encoding == "numerical":
            grid = self.grid or (0.0,)
            g = xp.asarray(grid, readout.dtype)
            x = readout[..., 0]
            idx = xp.argmin(xp.abs(x[..., None] - g), axis=-1)
            gap = float(np.diff(grid).min()) if len(grid) > 1 else 1.0
            clean = xp.abs(x - g[idx]) < gap / 4
            return idx, (clean if exact else xp.ones_like(clean))
        shape = readout.shape[:-1]
        if readout.shape[-1] == 0:
            return xp.full(shape, -1, dtype=xp.int32), xp.ones(shape, dtype=bool)
        top = readout.max(-1)
        rest = (xp.sort(readout, axis=-1)[..., -2] if readout.shape[-1] > 1
                else xp.zeros_like(top))
        none = top < NONE_BELOW
        if not (exact or self.can_be_none):
            none = xp.zeros_like(none)
        codes = xp.where(none, -1, readout.argmax(-1))
        clean = xp.where(none, top < TOLERANCE,
                         (xp.abs(top - 1) < TOLERANCE) & (xp.abs(rest) < TOLERANCE))
        return codes, (clean if exact else xp.ones_like(clean))

    def values_of(self, codes) -> list:
        """Program values for an array of codes (nested lists, like the codes' shape)."""
        codes = np.asarray(codes)
        vals = self.values
        if self.encoding == "numerical":
            pick = lambda i: vals[i] if vals else 0
        else:
            pick = lambda i: None if i < 0 else vals[i]
        return _map_nested(codes.tolist(), pick)

    def decode(self, readout: np.ndarray) -> tuple[list, np.ndarray]:
        """Decoded values (nested lists over the leading axes) and the clean mask."""
        codes, clean = self.codes(np.asarray(readout, np.float64))
        return self.values_of(codes), np.asarray(clean)


def _map_nested(x, fn):
    if isinstance(x, list):
        return [_map_nested(v, fn) for v in x]
    return fn(x)


__all__ = ["Readout", "ReadoutKind", "NONE_BELOW", "TOLERANCE"]
