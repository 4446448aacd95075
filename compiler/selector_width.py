"""``SelectorWidth``: one attention head and a discretising MLP in the same layer.

BOS scores the same as a selected key, so with ``w`` keys selected the head puts weight
``1/(w+1)`` on BOS and copies it (through ``bos``) into a scratch direction. The MLP maps
the ``N+1`` possible values ``1/(w+1)`` back to ``w`` with steps placed between neighbours,
which stay separable in float32 far beyond the lengths tracr gets wrong.
"""

from __future__ import annotations

import numpy as np

from .attention_scores import query_key_weights
from .blocks import HeadBlock, MLPBlock, MLPBuilder
from .encode import value_matrix
from .mlp_discretise import add_steps
from .residual import ResidualSpace
from .selectors import Literal


def selector_width_blocks(
    space: ResidualSpace, node: str, out_numerical: bool, literals: list[Literal], gap: float,
    max_seq_len: int,
) -> tuple[HeadBlock, MLPBlock]:
    w_q, w_k = query_key_weights(space, literals, gap, bos_at=float(len(literals)))
    scratch = space.scratch(node, "width")
    w_v = np.zeros((space.dim, 1))
    w_v[space.special("bos"), 0] = 1.0
    w_o = np.zeros((1, space.dim))
    w_o[0, scratch] = 1.0
    head = HeadBlock(node, w_q, w_k, w_v, w_o, "selector_width")

    mlp = MLPBuilder(space, node, "selector_width")
    readout = mlp.zeros()
    readout[scratch] = 1.0
    widths = list(range(max_seq_len, -1, -1))  # ascending in 1/(w+1)
    add_steps(
        mlp, readout, [1.0 / (w + 1) for w in widths],
        value_matrix(space, node, out_numerical, widths), f"SelectorWidth {node!r}",
    )
    return head, mlp.build()
