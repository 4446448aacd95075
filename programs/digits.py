"""Arithmetic on numbers written as digits, least-significant digit first.

Most carries follow one pattern: a column either passes the incoming carry on or
"stops" it, and a stopping column sets the outgoing carry itself. The carry into column
i is then what the last stopping column before i sets (see :func:`carry_in`), found by
rank: that column is the stopping one with one stopping column fewer before it.
"""

from __future__ import annotations

from collections.abc import Callable

from rasplab.compiler import rasp

from .combinators import count_where, numerical_flag, pair, prefix_count


def carry_in(
    stops: Callable[[rasp.Value], bool], sets: Callable[[rasp.Value], bool], name: str
) -> rasp.SOp:
    """Whether column i receives a carry: ``sets`` of the last column before i where
    ``stops`` holds (False if there is none). Both test the token."""
    stop = rasp.Map(lambda t: bool(stops(t)), rasp.tokens).named(f"{name}_stops")
    stop_at = pair(stop, rasp.indices, f"{name}_stop_at")
    before = rasp.Select(stop_at, rasp.indices, lambda k, q: k[0] and k[1] < q)
    stops_before = rasp.SelectorWidth(before.named(f"{name}_before_sel")).named(
        f"{name}_stops_before"
    )
    stop_rank = pair(stop, stops_before, f"{name}_stop_rank")
    last = rasp.Select(stop_rank, stops_before, lambda k, q: k[0] and k[1] == q - 1)
    setting = numerical_flag(rasp.tokens, lambda t: bool(sets(t)), f"{name}_sets")
    carry = rasp.numerical(rasp.Aggregate(last.named(f"{name}_last_stop"), setting, default=0))
    return rasp.Map(lambda c: c > 0.5, carry.named(f"{name}_mean")).named(name)


def _columns(token: str) -> tuple[int, int]:
    return int(token[0]), int(token[1])


def make_decrement(base: int) -> rasp.SOp:
    """Subtract one (wrapping around): a digit changes when every earlier digit is 0."""
    nonzero = numerical_flag(rasp.tokens, lambda d: d != 0, "nonzero")
    before = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LT).named("before")
    nonzero_before = rasp.numerical(rasp.Aggregate(before, nonzero, default=0)).named(
        "nonzero_before"
    )
    borrow = rasp.Map(lambda f: f == 0, nonzero_before).named("borrow_in")
    return rasp.SequenceMap(
        lambda d, b: (d - 1) % base if b else d, rasp.tokens, borrow
    ).named("decrement")


def make_add_columns(base: int) -> rasp.SOp:
    """Sum of two base-``base`` numbers given as digit columns ``"ab"``."""
    total = lambda t: sum(_columns(t))
    carry = carry_in(lambda t: total(t) != base - 1, lambda t: total(t) >= base, "carry")
    col = rasp.Map(total, rasp.tokens).named("column_sum")
    return rasp.SequenceMap(lambda s, c: (s + c) % base, col, carry).named(f"add_base{base}")


def make_binary_subtract() -> rasp.SOp:
    """a - b (mod 2 to the length) for binary columns ``"ab"``."""
    borrow = carry_in(lambda t: t[0] != t[1], lambda t: t[0] < t[1], "borrow")
    col = rasp.Map(lambda t: int(t[0]) - int(t[1]), rasp.tokens).named("column_diff")
    return rasp.SequenceMap(lambda d, b: (d - b) % 2, col, borrow).named("binary_subtract")


def make_greater_so_far() -> rasp.SOp:
    """Whether a > b on the digits up to here (binary columns ``"ab"``): the highest
    differing column decides."""
    earlier = carry_in(lambda t: t[0] != t[1], lambda t: t[0] > t[1], "decided")
    return rasp.SequenceMap(
        lambda t, g: t[0] > t[1] if t[0] != t[1] else g, rasp.tokens, earlier
    ).named("greater_so_far")


def make_double(base: int) -> rasp.SOp:
    """Twice a base-``base`` number (mod base to the length)."""
    carry = carry_in(lambda d: 2 * d != base - 1, lambda d: 2 * d >= base, "carry")
    return rasp.SequenceMap(lambda d, c: (2 * d + c) % base, rasp.tokens, carry).named(
        f"double_base{base}"
    )


def make_digit_sum(base: int) -> rasp.SOp:
    """The sum of all digits, everywhere (a count per digit value, weighted)."""
    total = None
    for digit in range(1, base):
        count = count_where(lambda t, d=digit: t == d, rasp.tokens, f"count_{digit}")
        weighted = rasp.Map(lambda c, d=digit: c * d, count).named(f"weighted_{digit}")
        total = weighted if total is None else rasp.SequenceMap(
            lambda a, b: a + b, total, weighted
        ).named(f"sum_to_{digit}")
    return rasp.Map(lambda s: s, total).named("digit_sum")


def make_prefix_sum_mod(base: int) -> rasp.SOp:
    """The sum of the digits so far, modulo ``base``."""
    total = None
    for digit in range(1, base):
        count = prefix_count(lambda t, d=digit: t == d, rasp.tokens, f"so_far_{digit}")
        weighted = rasp.Map(lambda c, d=digit: (c * d) % base, count).named(f"weighted_{digit}")
        total = weighted if total is None else rasp.SequenceMap(
            lambda a, b: (a + b) % base, total, weighted
        ).named(f"sum_to_{digit}")
    return rasp.Map(lambda s: s % base, total).named("prefix_sum_mod")


def make_gray_code() -> rasp.SOp:
    """The binary reflected Gray code of a binary number: bit i xor bit i + 1."""
    bit_at = pair(rasp.tokens, rasp.indices, "bit_at")
    next_one = rasp.Select(bit_at, rasp.indices, lambda k, q: k[0] == 1 and k[1] == q + 1)
    higher = rasp.SelectorWidth(next_one.named("next_is_one_sel")).named("next_bit")
    return rasp.SequenceMap(lambda b, h: b ^ h, rasp.tokens, higher).named("gray_code")
