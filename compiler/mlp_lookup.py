"""Lookup-table MLPs for Maps and SequenceMaps over categorical inputs.

A categorical input is a one-hot vector (``None`` = zero). For a Map, one ReLU unit per
output value reads the sum of the input values that give it (``ReLU(x_a + x_c)``): exactly
1 when the input is one of them, else 0; its output weights write that value. For a
SequenceMap, one unit per pair of values (``ReLU(x_a + y_b - one)``) is 1 exactly for that
pair. Units whose output is the zero vector (``f`` gives ``None``, or 0 for a numerical
output) are left out.
"""

from __future__ import annotations

from collections.abc import Callable

from .blocks import MLPBlock, MLPBuilder
from .encode import value_vector
from .residual import ResidualSpace
from .values import sort_values


def _apply(f: Callable, *args):
    try:
        return f(*args)
    except Exception:  # noqa: BLE001 - input outside the domain: the interpreter raises too
        return None


def map_table(
    space: ResidualSpace, node: str, out_numerical: bool, inner: str, inner_values: set,
    f: Callable,
) -> MLPBlock:
    mlp = MLPBuilder(space, node, "map")
    units: dict = {}  # output value -> (its vector, input dims giving it), first seen first
    for x in sort_values(v for v in inner_values if v is not None):
        y = _apply(f, x)
        if y not in units:
            units[y] = (value_vector(space, node, out_numerical, y), [])
        units[y][1].append(space.value_dim(inner, x))
    for out, dims in units.values():
        if out.any():
            w = mlp.zeros()
            w[dims] = 1.0
            mlp.unit(w, out)
    return mlp.build()


def sequence_map_table(
    space: ResidualSpace, node: str, out_numerical: bool, fst: str, fst_values: set,
    snd: str, snd_values: set, f: Callable,
) -> MLPBlock:
    mlp = MLPBuilder(space, node, "sequence_map")
    one = space.special("one")
    xs = sort_values(v for v in fst_values if v is not None)
    ys = sort_values(v for v in snd_values if v is not None)
    if fst == snd:  # both inputs are one variable: only the diagonal is reachable
        for x in xs:
            out = value_vector(space, node, out_numerical, _apply(f, x, x))
            if out.any():
                w = mlp.zeros()
                w[space.value_dim(fst, x)] = 1.0
                mlp.unit(w, out)
        return mlp.build()
    for x in xs:
        for y in ys:
            out = value_vector(space, node, out_numerical, _apply(f, x, y))
            if not out.any():
                continue
            w = mlp.zeros()
            w[space.value_dim(fst, x)] = 1.0
            w[space.value_dim(snd, y)] = 1.0
            w[one] = -1.0
            mlp.unit(w, out)
    return mlp.build()


def table_size(fst_values: set, snd_values: set) -> int:
    return len([v for v in fst_values if v is not None]) * len(
        [v for v in snd_values if v is not None]
    )



