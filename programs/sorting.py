"""Sorting, ranks, minima and maxima.

A stable rank is one SelectorWidth over ``(key, index)`` pairs (see
:func:`~.combinators.stable_rank`); sorting sends each token to its rank.
"""

from __future__ import annotations

from rasplab.compiler import rasp

from .combinators import (
    count_where,
    numerical_flag,
    pair,
    select_all,
    send_to,
    stable_rank,
)
from .tracr_lib import make_length


def make_sort_by(key, name: str, *, descending: bool = False) -> rasp.SOp:
    """The tokens stably sorted by ``key(token)``."""
    keys = rasp.Map(key, rasp.tokens).named(f"{name}_key")
    rank = stable_rank(keys, f"{name}_rank", descending=descending)
    return send_to(rank, rasp.tokens, name)


def make_sort_descending() -> rasp.SOp:
    """The tokens sorted from largest to smallest."""
    rank = stable_rank(rasp.tokens, "rank", descending=True)
    return send_to(rank, rasp.tokens, "sort_descending")


def make_argsort() -> rasp.SOp:
    """Position i holds the index of the i-th smallest token (ties in input order)."""
    rank = stable_rank(rasp.tokens, "rank")
    return send_to(rank, rasp.indices, "argsort")


def make_rank() -> rasp.SOp:
    """Each token's position in the stably sorted input."""
    return stable_rank(rasp.tokens, "sort_rank")


def make_min_token() -> rasp.SOp:
    """The smallest token at every position."""
    rank = stable_rank(rasp.tokens, "rank")
    first = rasp.Select(rank, rank, lambda k, q: k == 0).named("select_smallest")
    return rasp.Aggregate(first, rasp.tokens).named("min_token")


def make_argmax() -> rasp.SOp:
    """The index of the first largest token, everywhere."""
    rank = stable_rank(rasp.tokens, "rank", descending=True)
    top = rasp.Select(rank, rank, lambda k, q: k == 0).named("select_largest")
    return rasp.Aggregate(top, rasp.indices).named("argmax")


def make_median() -> rasp.SOp:
    """The lower median token (sorted position (length - 1) // 2), everywhere."""
    rank = stable_rank(rasp.tokens, "rank")
    middle = rasp.Map(lambda n: (n - 1) // 2, make_length()).named("middle")
    select = rasp.Select(rank, middle, rasp.Comparison.EQ).named("select_middle")
    return rasp.Aggregate(select, rasp.tokens).named("median")


def make_is_sorted() -> rasp.SOp:
    """True everywhere iff the tokens never decrease."""
    tok_idx = pair(rasp.tokens, rasp.indices, "tok_idx")
    drop = rasp.Select(tok_idx, tok_idx, lambda k, q: k[1] == q[1] - 1 and k[0] > q[0])
    drops = rasp.SelectorWidth(drop.named("drop_before")).named("drops")
    descents = count_where(lambda d: d > 0, drops, "descents")
    return rasp.Map(lambda d: d == 0, descents).named("is_sorted")


def make_sort_unique_descending() -> rasp.SOp:
    """The distinct tokens from largest to smallest (tokens must be distinct)."""
    larger = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.GT).named("larger")
    target = rasp.SelectorWidth(larger).named("target_pos")
    return send_to(target, rasp.tokens, "sort_unique_descending")


def make_second_largest() -> rasp.SOp:
    """The token in second place of the descending sort, everywhere (None if length 1)."""
    rank = stable_rank(rasp.tokens, "rank", descending=True)
    second = rasp.Select(rank, rank, lambda k, q: k == 1).named("select_second")
    return rasp.Aggregate(second, rasp.tokens).named("second_largest")


def make_frac_sorted_pairs() -> rasp.SOp:
    """Fraction of positions whose token is at least the one before (position 0 counts)."""
    tok_idx = pair(rasp.tokens, rasp.indices, "tok_idx")
    drop = rasp.Select(tok_idx, tok_idx, lambda k, q: k[1] == q[1] - 1 and k[0] > q[0])
    drops = rasp.SelectorWidth(drop.named("drop_before")).named("drops")
    ok = numerical_flag(drops, lambda d: d == 0, "in_order")
    return rasp.numerical(rasp.Aggregate(select_all(), ok, default=0)).named(
        "frac_sorted_pairs"
    )
