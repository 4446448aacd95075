"""How a variable's value is written into the residual stream."""

from __future__ import annotations

import numpy as np

from .residual import ResidualSpace


def value_matrix(space: ResidualSpace, var: str, numerical: bool, values: list) -> np.ndarray:
    """``[len(values), d_model]``: row i represents ``var == values[i]`` (``None``: zeros)."""
    m = np.zeros((len(values), space.dim))
    for i, value in enumerate(values):
        if value is None:
            continue
        if numerical:
            m[i, space.numeric_dim(var)] = float(value)
        else:
            m[i, space.value_dim(var, value)] = 1.0
    return m


def value_vector(space: ResidualSpace, var: str, numerical: bool, value: object) -> np.ndarray:
    """The residual vector that represents ``var == value`` (``None`` is the zero vector)."""
    return value_matrix(space, var, numerical, [value])[0]
