"""How a variable's value is written into the residual stream."""

from __future__ import annotations

import numpy as np

from .residual import ResidualSpace


def value_vector(space: ResidualSpace, var: str, numerical: bool, value: object) -> np.ndarray:
    """The residual vector that represents ``var == value`` (``None`` is the zero vector)."""
    v = np.zeros(space.dim)
    if value is None:
        return v
    if numerical:
        v[space.numeric_dim(var)] = float(value)
    else:
        v[space.value_dim(var, value)] = 1.0
    return v
