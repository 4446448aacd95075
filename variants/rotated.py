"""The rotated rung: the compiled model with its residual stream turned by a random
orthogonal matrix ``R`` (``x -> x @ R``).

Every write is multiplied by ``R`` on the right and every read by ``R.T`` on the left, so the
network computes the same function (up to float32 rounding), but no variable sits on a
residual axis any more: a method that reads single neurons of the stream, or assumes sparse
weights, sees nothing special. The planted circuit is carried over with each variable's
basis rotated (``R.T @ B``); the readout stays exact. Deterministic: the same seed gives the
same ``R`` (numpy's PCG64, QR of a Gaussian matrix with the sign fixed by R's diagonal).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from rasplab.compiler.assemble import CompiledProgram


def random_orthogonal(d: int, seed: int) -> np.ndarray:
    """A Haar-random ``d x d`` orthogonal matrix (float64), fixed by ``seed``."""
    g = np.random.default_rng(seed).standard_normal((d, d))
    q, r = np.linalg.qr(g)
    return q * np.sign(np.diag(r))[None, :]


def rotate(compiled: CompiledProgram, seed: int = 0) -> CompiledProgram:
    """``compiled`` with a rotated residual basis (a new ``CompiledProgram``)."""
    if "variant" in compiled.meta:
        raise ValueError(f"the model is already a {compiled.meta['variant']['rung']} variant; "
                         "rotate the compiled model")
    d = compiled.config.d_model
    rot = random_orthogonal(d, seed)
    net = compiled.network.transformed(rot)
    meta = {**compiled.meta, "readout": "exact",
            "variant": {"rung": "rotated", "seed": int(seed)}}
    return dataclasses.replace(
        compiled, params=dict(net.params), circuit=compiled.planted.transformed(rot),
        residual_labels=[f"rotated:{i}" for i in range(d)], meta=meta,
    )


__all__ = ["rotate", "random_orthogonal"]
