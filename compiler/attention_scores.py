"""Query/key weights that turn a conjunction of selector literals into attention scores.

For a query at a real position the score of a real key is ``gap * (#true literals)``; BOS
scores ``baseline``; a query at BOS scores its own BOS key far above everything, so heads
write (almost exactly) zero there and every variable stays zero at BOS.
"""

from __future__ import annotations

import math

import numpy as np

from .residual import ResidualSpace
from .selectors import Literal

# Softmax leaks exp(-margin) of weight to each key on the wrong side of a margin; at this
# margin the leak is below float32 resolution for every length the compiler accepts.
BASE_MARGIN = 24.0


def score_gap(max_seq_len: int) -> float:
    """Score difference between one literal being true and false (twice the margin)."""
    return 2.0 * (BASE_MARGIN + math.log(max_seq_len + 1))


def query_key_weights(
    space: ResidualSpace, literals: list[Literal], gap: float, bos_at: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(w_q, w_k)``; the BOS key scores ``bos_at * gap`` for real queries."""
    one, bos = space.special("one"), space.special("bos")
    cols_q: list[np.ndarray] = []
    cols_k: list[np.ndarray] = []

    def column() -> tuple[np.ndarray, np.ndarray]:
        q, k = np.zeros(space.dim), np.zeros(space.dim)
        cols_q.append(q)
        cols_k.append(k)
        return q, k

    n_negated = sum(lit.negated for lit in literals)
    q, k = column()  # constants: BOS baseline and the "1" of negated literals
    q[one] = 1.0
    k[bos] = bos_at * gap
    k[one] = n_negated * gap
    q, k = column()  # a query at BOS attends to BOS only
    q[bos] = 1.0
    k[bos] = (len(literals) + 2) * gap
    for lit in literals:
        query_only, key_only = lit.query_only(), lit.key_only()
        if query_only is not None:
            q, k = column()
            if query_only.all() and not lit.queries_can_be_none:  # always true
                q[one] = 1.0
            for i, qv in enumerate(lit.query_values):
                if query_only[i] and not q[one]:
                    q[space.value_dim(lit.queries, qv)] = 1.0
            k[one] = gap
            continue
        if key_only is not None:
            q, k = column()
            q[one] = 1.0
            for j, kv in enumerate(lit.key_values):
                if key_only[j]:
                    k[space.value_dim(lit.keys, kv)] = gap
            continue
        sign = -1.0 if lit.negated else 1.0
        for i, qv in enumerate(lit.query_values):
            row = lit.table[i]
            if not row.any():
                continue
            q, k = column()
            q[space.value_dim(lit.queries, qv)] = 1.0
            for j, kv in enumerate(lit.key_values):
                if row[j]:
                    k[space.value_dim(lit.keys, kv)] = sign * gap
    return np.stack(cols_q, axis=1), np.stack(cols_k, axis=1)
