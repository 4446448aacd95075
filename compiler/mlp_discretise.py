"""Discretising MLPs: a function of a scalar that takes finitely many known values.

The scalar ``x = readout . residual`` takes one of the sorted values ``v_0 < ... < v_m``.
Between neighbours ``v_{i-1}, v_i`` sits a step ``ReLU(L(x-t)+1/2) - ReLU(L(x-t)-1/2)`` with
``t`` the midpoint and slope ``L = 4 / (v_i - v_{i-1})``: it is exactly 0 below ``t - gap/8``
and exactly 1 above ``t + gap/8``, leaving 3/8 of each gap as margin for float error.
The output telescopes: ``F(v_0) + sum_i step_i * (F(v_i) - F(v_{i-1}))``; steps where ``F``
does not change are left out.
"""

from __future__ import annotations

import numpy as np

from .blocks import MLPBuilder
from .errors import CompileError

# float32 keeps about 7 digits; values closer than this (relative to their magnitude) are
# refused rather than compiled into steps that rounding could flip.
MIN_RELATIVE_GAP = 2e-5


def check_gaps(values: list[float], where: str) -> None:
    """Refuse value sets whose neighbours are too close to separate in float32."""
    if len(values) < 2:
        return
    arr = np.array(values, dtype=np.float64)
    scale = max(1.0, float(np.abs(arr).max()))
    gap = float(np.diff(arr).min())
    if gap < MIN_RELATIVE_GAP * scale:
        hint = (
            " (they differ only by float64 rounding, as decimals like 0.1 do; use integers or "
            "binary fractions such as 0.5, 0.25)"
            if gap < 1e-12 * scale else ""
        )
        raise CompileError(
            f"{where}: two of its values are {gap:.3g} apart at magnitude {scale:.3g}, too "
            "close to tell apart exactly in float32; use fewer or coarser values, or a "
            f"shorter max_seq_len{hint}"
        )


def add_steps(
    mlp: MLPBuilder, readout: np.ndarray, values: list[float], outs: np.ndarray, where: str,
) -> None:
    """Add the units writing ``outs[i]`` (``[value, d_model]``) where ``readout . residual``
    is ``values[i]`` (sorted ascending)."""
    check_gaps(values, where)
    one = mlp.space.special("one")
    if outs[0].any():
        w = mlp.zeros()
        w[one] = 1.0
        mlp.unit(w, outs[0])
    deltas = np.diff(outs, axis=0)
    steps = np.flatnonzero(deltas.any(axis=1))  # a step only where the output changes
    arr = np.asarray(values, dtype=np.float64)
    lo, hi = arr[steps], arr[steps + 1]
    slope = 4.0 / (hi - lo)
    mid = (lo + hi) / 2.0
    w_in = np.empty((len(readout), 2 * len(steps)))
    w_out = np.empty((2 * len(steps), outs.shape[1]))
    for k, (offset, sign) in enumerate(((0.5, 1.0), (-0.5, -1.0))):  # units +, - per step
        w = readout[:, None] * slope[None, :]
        w[one] += -slope * mid + offset
        w_in[:, k::2] = w
        w_out[k::2] = sign * deltas[steps]
    mlp.units(w_in, w_out)
