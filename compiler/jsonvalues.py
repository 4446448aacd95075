"""Program values and analysis results as JSON: one place for every conversion.

``encode_value`` / ``decode_value`` tag a program value with its type (``{"int": 1}``,
``{"str": "1"}``, ``{"tuple": [...]}``, ``null`` for None) so ``1``, ``"1"``, ``1.0`` and
``True`` come back as what they were; model files and planted circuits use them.
``plain_value`` turns anything a report holds (numpy scalars and arrays, tuples, sets,
dataclass-free nested dicts) into plain JSON for display, with non-finite floats as
``null`` (JSON has no NaN: an undefined AUC is null).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import ModelFileError


def plain_value(value: Any) -> Any:
    """Plain JSON data: numpy converted, tuples and sets as lists, NaN/inf as None,
    anything else as its ``repr``."""
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return plain_value(value.tolist())
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if isinstance(value, (set, frozenset)):
            items.sort(key=repr)
        return [plain_value(v) for v in items]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def encode_value(value: Any) -> Any:
    """A program value as JSON that keeps its Python type (see the module docstring)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return {"bool": bool(value)}
    if isinstance(value, (int, np.integer)):
        return {"int": int(value)}
    if isinstance(value, (float, np.floating)):
        x = float(value)
        return {"float": x if math.isfinite(x) else repr(x)}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, tuple):
        return {"tuple": [encode_value(v) for v in value]}
    if isinstance(value, list):
        return {"list": [encode_value(v) for v in value]}
    if isinstance(value, frozenset):
        return {"frozenset": [encode_value(v) for v in _stable(value)]}
    raise ModelFileError(
        f"cannot store the value {value!r} (type {type(value).__name__}) in a model file; "
        "program values must be None, bool, int, float, str, or tuples/lists of them"
    )


def _stable(values) -> list:
    return sorted(values, key=lambda v: (type(v).__name__, repr(v)))


def decode_value(data: Any) -> Any:
    """Inverse of :func:`encode_value`."""
    if data is None:
        return None
    if not isinstance(data, dict) or len(data) != 1:
        raise ValueError(f"not a tagged value: {data!r}")
    (tag, raw), = data.items()
    if tag == "bool" and isinstance(raw, bool):
        return raw
    if tag == "int" and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if tag == "float" and isinstance(raw, (int, float, str)) and not isinstance(raw, bool):
        return float(raw)
    if tag == "str" and isinstance(raw, str):
        return raw
    if tag in ("tuple", "list", "frozenset") and isinstance(raw, list):
        items = [decode_value(v) for v in raw]
        return {"tuple": tuple, "list": list, "frozenset": frozenset}[tag](items)
    raise ValueError(f"unknown tagged value: {data!r}")


__all__ = ["encode_value", "decode_value", "plain_value"]
