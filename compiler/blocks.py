"""Block records: the numpy weights of one attention head or one MLP, in residual coordinates.

Every matrix acts on the full residual space (rows or columns indexed like
``ResidualSpace.directions``); which variables a block reads and writes is read off its
non-zero weights, so an edge that exists only through zero weights is never reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .residual import ResidualSpace


@dataclass
class HeadBlock:
    """One attention head computing program variable ``node``."""

    node: str
    w_q: np.ndarray  # [d_model, key_size]
    w_k: np.ndarray  # [d_model, key_size]
    w_v: np.ndarray  # [d_model, value_size]
    w_o: np.ndarray  # [value_size, d_model]
    op: str = "aggregate"  # "aggregate" | "selector_width"


@dataclass
class MLPBlock:
    """One MLP (a slice of a layer's hidden units) computing program variable ``node``."""

    node: str
    w_in: np.ndarray  # [d_model, hidden]
    w_out: np.ndarray  # [hidden, d_model]
    op: str = "map"
    ungated: list[int] = field(default_factory=list)  # units allowed to fire at BOS


class MLPBuilder:
    """Collects hidden units one by one; rows are residual directions."""

    def __init__(self, space: ResidualSpace, node: str, op: str):
        self.space, self.node, self.op = space, node, op
        self.ins: list[np.ndarray] = []
        self.outs: list[np.ndarray] = []
        self.ungated: list[int] = []

    def unit(self, w_in: np.ndarray, w_out: np.ndarray, gated: bool = True) -> None:
        if not gated:
            self.ungated.append(len(self.ins))
        self.ins.append(w_in)
        self.outs.append(w_out)

    def units(self, w_in: np.ndarray, w_out: np.ndarray) -> None:
        """Add gated units at once: ``w_in`` is ``[d_model, n]``, ``w_out`` ``[n, d_model]``."""
        self.ins.extend(w_in.T)
        self.outs.extend(w_out)

    def zeros(self) -> np.ndarray:
        return np.zeros(self.space.dim)

    def build(self) -> MLPBlock:
        d = self.space.dim
        w_in = np.stack(self.ins, axis=1) if self.ins else np.zeros((d, 0))
        w_out = np.stack(self.outs, axis=0) if self.outs else np.zeros((0, d))
        return MLPBlock(self.node, w_in, w_out, self.op, list(self.ungated))


def written_at_bos(heads: list[HeadBlock], space: ResidualSpace) -> np.ndarray:
    """Residual dims the heads of one layer write at BOS (a query at BOS reads BOS only)."""
    bos = space.special("bos")
    dirty = np.zeros(space.dim, dtype=bool)
    for h in heads:
        dirty |= (h.w_v[bos] @ h.w_o) != 0
    return dirty


def gate_at_bos(block: MLPBlock, space: ResidualSpace, dirty: np.ndarray) -> None:
    """Zero at BOS every unit that reads a ``dirty`` dim, with a large negative ``bos`` weight.

    Variables are zero at BOS (``one`` is 0 there, so MLPs write nothing) except for what a
    head of the same layer wrote at BOS: an aggregate's default, a SelectorWidth's scratch
    value. Only units reading those need the gate, which outweighs any such pre-activation.
    """
    if block.w_in.shape[1] == 0 or not dirty.any():
        return
    bos = space.special("bos")
    w = block.w_in.copy()
    w[bos, :] = 0.0
    bound = np.abs(w).sum(axis=0).max() * max(1.0, _max_abs_value(space)) + 1.0
    gated = (w[dirty] != 0).any(axis=0)
    gated[block.ungated] = False
    block.w_in[bos, gated] = -bound


def _max_abs_value(space: ResidualSpace) -> float:
    return getattr(space, "max_abs_value", 1.0)
