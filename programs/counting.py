"""Counting and histograms: how many positions satisfy a condition, globally or so far.

Counts are SelectorWidths; a condition on two variables is one Select over a tuple
(compilable by tracr) unless the name says composite.
"""

from __future__ import annotations

from rasplab.compiler import rasp

from .combinators import count_where, earlier_same_token_tuple, pair, prefix_count
from .mechanisms import make_copy_first
from .tracr_lib import make_hist


def make_count_in_set(letters: str) -> rasp.SOp:
    """How many positions hold one of ``letters``, everywhere."""
    return count_where(lambda t: t in letters, rasp.tokens, f"count_in_{letters}")


def make_count_greater() -> rasp.SOp:
    """How many positions hold a larger token."""
    greater = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.GT).named("greater")
    return rasp.SelectorWidth(greater).named("count_greater")


def make_count_same_as_first() -> rasp.SOp:
    """How many positions hold the first token, everywhere."""
    first = make_copy_first()
    same = rasp.SequenceMap(lambda t, f: t == f, rasp.tokens, first).named("same_as_first")
    return count_where(bool, same, "count_same_as_first")


def make_count_fixed_points() -> rasp.SOp:
    """How many positions i hold the token i, everywhere."""
    fixed = rasp.SequenceMap(lambda t, i: t == i, rasp.tokens, rasp.indices).named("is_fixed")
    return count_where(bool, fixed, "count_fixed_points")


def make_running_hist() -> rasp.SOp:
    """How many times the current token occurred so far (itself included)."""
    tok_idx = pair(rasp.tokens, rasp.indices, "tok_idx")
    so_far = rasp.Select(tok_idx, tok_idx, lambda k, q: k[0] == q[0] and k[1] <= q[1])
    return rasp.SelectorWidth(so_far.named("same_so_far")).named("running_hist")


def make_count_repeats() -> rasp.SOp:
    """How many positions repeat the token just before them, everywhere."""
    tok_idx = pair(rasp.tokens, rasp.indices, "tok_idx")
    prev_same = rasp.Select(tok_idx, tok_idx, lambda k, q: k[0] == q[0] and k[1] == q[1] - 1)
    repeats = rasp.SelectorWidth(prev_same.named("same_as_prev")).named("repeats_prev")
    return count_where(lambda w: w == 1, repeats, "count_repeats")


def make_max_frequency() -> rasp.SOp:
    """How often the most frequent token occurs, everywhere.

    The positions whose histogram count no other count exceeds all hold the same count,
    so one Aggregate over them reads it.
    """
    hist = make_hist()
    above = rasp.Select(hist, hist, rasp.Comparison.GT).named("count_above")
    is_top = rasp.Map(lambda w: w == 0, rasp.SelectorWidth(above).named("n_above"))
    is_top = is_top.named("is_top")
    top = rasp.Select(is_top, is_top, lambda k, q: bool(k)).named("select_top")
    return rasp.Aggregate(top, hist).named("max_frequency")


def make_distinct_so_far() -> rasp.SOp:
    """How many distinct tokens occurred so far."""
    copies = rasp.SelectorWidth(earlier_same_token_tuple()).named("earlier_copies")
    return prefix_count(lambda c: c == 0, copies, "distinct_so_far")


def make_count_unique() -> rasp.SOp:
    """How many positions hold a token occurring exactly once, everywhere."""
    return count_where(lambda h: h == 1, make_hist(), "count_unique")


def make_count_difference(first: str, second: str) -> rasp.SOp:
    """How many ``first`` tokens minus how many ``second`` tokens, everywhere."""
    n_first = count_where(lambda t: t == first, rasp.tokens, f"count_{first}")
    n_second = count_where(lambda t: t == second, rasp.tokens, f"count_{second}")
    return rasp.SequenceMap(lambda a, b: a - b, n_first, n_second).named(
        f"count_{first}_minus_{second}"
    )


def make_is_repeated() -> rasp.SOp:
    """True where the token occurs at least twice in the whole input."""
    return rasp.Map(lambda h: h >= 2, make_hist()).named("is_repeated")


def make_count_earlier_smaller() -> rasp.SOp:
    """How many earlier positions hold a smaller token (composite selector)."""
    smaller = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.LT).named("smaller")
    earlier = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LT).named("earlier")
    return rasp.SelectorWidth((smaller & earlier).named("earlier_smaller")).named(
        "count_earlier_smaller"
    )
