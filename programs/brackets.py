"""Bracket matching: nesting depth, where balance breaks, what is left unmatched.

The depth after each position is the count of opening minus closing brackets so far
(two prefix counts). Maxima and minima over positions are read with a rank-free trick:
the positions no other position beats all hold the same value, so one Aggregate over
them is well defined.
"""

from __future__ import annotations

from rasplab.compiler import rasp

from .combinators import count_where, prefix_count


def make_depth(open_token: str = "(", close_token: str = ")") -> rasp.SOp:
    """Opening minus closing brackets up to and including each position."""
    opened = prefix_count(lambda t: t == open_token, rasp.tokens, "opened")
    closed = prefix_count(lambda t: t == close_token, rasp.tokens, "closed")
    return rasp.SequenceMap(lambda a, b: a - b, opened, closed).named("depth")


def _extreme(values: rasp.SOp, name: str, *, largest: bool) -> rasp.SOp:
    """The largest (smallest) value of ``values`` over all positions, everywhere."""
    beats = rasp.Comparison.GT if largest else rasp.Comparison.LT
    beaten = rasp.Select(values, values, beats).named(f"{name}_beaten_by")
    top = rasp.Map(lambda w: w == 0, rasp.SelectorWidth(beaten).named(f"{name}_n_beat"))
    top = top.named(f"{name}_is_top")
    select = rasp.Select(top, top, lambda k, q: bool(k)).named(f"{name}_select")
    return rasp.Aggregate(select, values).named(name)


def make_max_depth() -> rasp.SOp:
    """The deepest nesting reached anywhere, everywhere."""
    return _extreme(make_depth(), "max_depth", largest=True)


def make_unmatched_closers() -> rasp.SOp:
    """How many closing brackets have no opening partner, everywhere: minus the lowest
    depth, if that is below zero."""
    lowest = _extreme(make_depth(), "lowest_depth", largest=False)
    return rasp.Map(lambda d: max(0, -d), lowest).named("unmatched_closers")


def make_unmatched_openers() -> rasp.SOp:
    """How many opening brackets are never closed, everywhere: the final depth plus the
    unmatched closers."""
    depth = make_depth()
    lowest = _extreme(depth, "lowest_depth", largest=False)
    n_open = count_where(lambda t: t == "(", rasp.tokens, "n_open")
    n_close = count_where(lambda t: t == ")", rasp.tokens, "n_close")
    final = rasp.SequenceMap(lambda a, b: a - b, n_open, n_close).named("final_depth")
    return rasp.SequenceMap(lambda f, low: f + max(0, -low), final, lowest).named(
        "unmatched_openers"
    )


def make_balanced() -> rasp.SOp:
    """True everywhere iff the brackets are balanced (the depth never drops below zero
    and ends at zero), counted with SelectorWidths instead of means."""
    depth = make_depth()
    negative = count_where(lambda d: d < 0, depth, "negative_depths")
    n_open = count_where(lambda t: t == "(", rasp.tokens, "n_open")
    n_close = count_where(lambda t: t == ")", rasp.tokens, "n_close")
    even = rasp.SequenceMap(lambda a, b: a == b, n_open, n_close).named("as_many")
    return rasp.SequenceMap(lambda n, e: n == 0 and e, negative, even).named("balanced")


def make_balanced_prefix() -> rasp.SOp:
    """True where the input up to here is balanced."""
    depth = make_depth()
    negative = prefix_count(lambda d: d < 0, depth, "negative_so_far")
    return rasp.SequenceMap(lambda d, n: d == 0 and n == 0, depth, negative).named(
        "balanced_prefix"
    )


def make_first_break() -> rasp.SOp:
    """The index of the first closing bracket without a partner, everywhere (None if
    there is none)."""
    depth = make_depth()
    negative = rasp.Map(lambda d: d < 0, depth).named("negative")
    before = prefix_count(bool, negative, "negative_before", strict=True)
    first = rasp.SequenceMap(lambda n, b: n and b == 0, negative, before).named("is_first")
    select = rasp.Select(first, first, lambda k, q: bool(k)).named("select_first")
    return rasp.Aggregate(select, rasp.indices).named("first_break")


def make_count_top_level() -> rasp.SOp:
    """How many top-level groups close (depth returns to 0 at a closing bracket, never
    having been negative before), everywhere."""
    depth = make_depth()
    negative = prefix_count(lambda d: d < 0, depth, "negative_so_far")
    closes = rasp.SequenceMap(
        lambda d, t: d == 0 and t == ")", depth, rasp.tokens
    ).named("returns_to_zero")
    clean_close = rasp.SequenceMap(lambda c, n: c and n == 0, closes, negative).named(
        "group_closes"
    )
    return count_where(bool, clean_close, "top_level_groups")
