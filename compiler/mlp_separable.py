"""MLPs for functions that split as ``f(x, y) = g(x) + h(y)`` on their finite domain.

Such a function needs no ``|X| x |Y|`` table. With a numerical output each part is written
directly (lookup units for a categorical input, ``ReLU(x) - ReLU(-x)`` for an affine
numerical one, steps otherwise). With a categorical output, ``s = g(x) + h(y)`` is a linear
readout of the residual, so one discretising MLP on ``s`` gives the one-hot of ``f``:
``O(|values of f|)`` units. ``reverse``'s ``length - indices`` is the classic case.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .blocks import MLPBlock, MLPBuilder
from .encode import value_matrix, value_vector
from .mlp_discretise import add_steps
from .residual import ResidualSpace
from .values import all_numbers, sort_values


@dataclass
class Part:
    """One input of a separable function: ``var`` with its values and its term ``fn``."""

    var: str
    numerical: bool
    values: list
    fn: Callable[[object], float]


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def affine_coefficients(values: list, fn: Callable) -> tuple[float, float] | None:
    """``(a, c)`` with ``fn(v) == a*v + c`` on every value, or None."""
    if len(values) < 2:
        return (0.0, float(fn(values[0]))) if values else (0.0, 0.0)
    v0, v1 = float(values[0]), float(values[-1])
    a = (float(fn(values[-1])) - float(fn(values[0]))) / (v1 - v0)
    c = float(fn(values[0])) - a * v0
    if all(_close(float(fn(v)), a * float(v) + c) for v in values):
        return a, c
    return None


def split(f: Callable, xs: list, ys: list) -> tuple[Callable, Callable] | None:
    """``(g, h)`` with ``f(x, y) == g(x) + h(y)`` for all pairs (all numbers), or None."""
    if not xs or not ys:
        return None
    try:
        rows = [[f(x, y) for y in ys] for x in xs]
    except Exception:  # noqa: BLE001 - partial functions use the lookup table
        return None
    if any(v is None for row in rows for v in row) or not all(map(all_numbers, rows)):
        return None
    table = np.array(rows, dtype=np.float64)
    g = table[:, 0]
    h = table[0, :] - table[0, 0]
    approx = g[:, None] + h[None, :]
    # math.isclose(rel_tol=1e-9, abs_tol=1e-12) on every pair
    tol = np.maximum(1e-9 * np.maximum(np.abs(table), np.abs(approx)), 1e-12)
    if np.all(np.abs(table - approx) <= tol):
        return dict(zip(xs, g.tolist())).__getitem__, dict(zip(ys, h.tolist())).__getitem__
    return None


def _write_part(mlp: MLPBuilder, part: Part, out: np.ndarray) -> None:
    """Units adding ``part.fn(value) * out`` to the residual."""
    space = mlp.space
    if not part.numerical:
        for v in part.values:
            if part.fn(v) != 0:
                w = mlp.zeros()
                w[space.value_dim(part.var, v)] = 1.0
                mlp.unit(w, part.fn(v) * out)
        return
    coef = affine_coefficients(part.values, part.fn)
    dim = space.numeric_dim(part.var)
    if coef is not None:
        a, c = coef
        if a != 0:
            for sign in (1.0, -1.0):
                w = mlp.zeros()
                w[dim] = sign
                mlp.unit(w, sign * a * out)
        if c != 0:
            w = mlp.zeros()
            w[space.special("one")] = 1.0
            mlp.unit(w, c * out)
        return
    readout = mlp.zeros()
    readout[dim] = 1.0
    outs = np.outer([part.fn(v) for v in part.values], out)
    add_steps(mlp, readout, [float(v) for v in part.values], outs, part.var)


def linear_readout(space: ResidualSpace, part: Part) -> tuple[np.ndarray, float] | None:
    """``(r, c)`` with ``part.fn(value) == r . residual + c`` for every value, or None."""
    r = np.zeros(space.dim)
    if not part.numerical:
        for v in part.values:
            r[space.value_dim(part.var, v)] = float(part.fn(v))
        return r, 0.0
    coef = affine_coefficients(part.values, part.fn)
    if coef is None:
        return None
    r[space.numeric_dim(part.var)] = coef[0]
    return r, coef[1]


def separable_mlp(
    space: ResidualSpace, node: str, out_numerical: bool, out_values: set, parts: list[Part],
    where: str,
) -> MLPBlock | None:
    """The MLP for ``sum(part.fn)``, or None if a categorical output has no linear readout."""
    mlp = MLPBuilder(space, node, "separable")
    if out_numerical:
        out = value_vector(space, node, True, 1.0)
        for part in parts:
            _write_part(mlp, part, out)
        return mlp.build()
    readout = np.zeros(space.dim)
    const = 0.0
    for part in parts:
        lin = linear_readout(space, part)
        if lin is None:
            return None
        readout += lin[0]
        const += lin[1]
    values = sort_values(v for v in out_values if v is not None)
    shifted = [float(v) - const for v in values]
    add_steps(mlp, readout, shifted, value_matrix(space, node, False, values), where)
    return mlp.build()
