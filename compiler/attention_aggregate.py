"""The attention head for ``Aggregate`` (and the MLP unit that clears its default at BOS).

Selected keys score ``gap`` above the BOS sink and unselected ones ``gap/2`` below it, so the
head averages the value over the selected positions, or returns BOS's value when nothing is
selected. BOS's value is the default's vector (zero for ``None`` and for 0). A non-zero
default is also written at BOS itself; one ungated MLP unit in the same layer reading
``bos`` subtracts it again, so the variable is zero at BOS for later layers.
"""

from __future__ import annotations

import numpy as np

from .attention_scores import query_key_weights
from .blocks import HeadBlock, MLPBlock, MLPBuilder
from .encode import value_vector
from .residual import ResidualSpace
from .selectors import Literal
from .values import sort_values


def aggregate_head(
    space: ResidualSpace, node: str, out_numerical: bool, sop: str, sop_numerical: bool,
    sop_values: set, default: object, literals: list[Literal], gap: float,
) -> tuple[HeadBlock, MLPBlock | None]:
    w_q, w_k = query_key_weights(space, literals, gap, bos_at=len(literals) - 0.5)
    bos = space.special("bos")
    if out_numerical:
        w_v = np.zeros((space.dim, 1))
        w_o = np.zeros((1, space.dim))
        w_o[0, space.numeric_dim(node)] = 1.0
        if sop_numerical:
            w_v[space.numeric_dim(sop), 0] = 1.0
        else:
            for x in sop_values:
                if x is not None:
                    w_v[space.value_dim(sop, x), 0] = float(x)
        w_v[bos, 0] = 0.0 if default is None else float(default)
    else:
        out_dims = space.var_dims(node)
        w_v = np.zeros((space.dim, len(out_dims)))
        w_o = np.zeros((len(out_dims), space.dim))
        for j, dim in enumerate(out_dims):
            w_o[j, dim] = 1.0
        col = {dim: j for j, dim in enumerate(out_dims)}
        for x in sort_values(v for v in sop_values if v is not None):
            w_v[space.value_dim(sop, x), col[space.value_dim(node, x)]] = 1.0
        if default is not None:
            w_v[bos, col[space.value_dim(node, default)]] = 1.0
    head = HeadBlock(node, w_q, w_k, w_v, w_o, "aggregate")

    fix = None
    default_vec = value_vector(space, node, out_numerical, default)
    if default_vec.any():
        mlp = MLPBuilder(space, node, "clear_default_at_bos")
        w = mlp.zeros()
        w[bos] = 1.0
        mlp.unit(w, -default_vec, gated=False)
        fix = mlp.build()
    return head, fix
