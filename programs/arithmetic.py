"""Arithmetic on digit sequences: carries are the interesting mechanism.

Numbers are written least-significant digit first, so a carry only flows from earlier
positions to later ones and the programs are causal.
"""

from __future__ import annotations

from rasplab.compiler import rasp

from .combinators import numerical_flag, pair
from .tracr_lib import make_count, make_length, make_nary_sequencemap


def make_increment(base: int) -> rasp.SOp:
    """Add one to a base-``base`` number (least-significant digit first; wraps around).

    A digit changes exactly when every earlier digit is ``base - 1``: the numerical mean
    of "not the top digit" over the strictly earlier positions is 0 (the default at
    position 0, which always receives the added one).
    """
    not_top = numerical_flag(rasp.tokens, lambda d: d != base - 1, "not_top")
    before = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LT).named("before")
    not_top_before = rasp.numerical(rasp.Aggregate(before, not_top, default=0)).named(
        "not_top_before"
    )
    carry_in = rasp.Map(lambda f: f == 0, not_top_before).named("carry_in")
    return rasp.SequenceMap(
        lambda d, c: (d + 1) % base if c else d, rasp.tokens, carry_in
    ).named("increment")


def make_binary_add() -> rasp.SOp:
    """Sum bits of two binary numbers given column-wise, least-significant first.

    Each token ``"ab"`` holds bit ``a`` of the first and bit ``b`` of the second number.
    The carry into column i is whether the last column before i that does not propagate
    a carry (``"00"`` kills, ``"11"`` generates) generates one. That column is found by
    rank: it is the non-propagating column whose count of earlier non-propagating columns
    is one less than column i's.
    """
    col_sum = rasp.Map(lambda t: int(t[0]) + int(t[1]), rasp.tokens).named("col_sum")
    stops = rasp.Map(lambda t: t[0] == t[1], rasp.tokens).named("stops_carry")
    stops_at = pair(stops, rasp.indices, "stops_at")
    stops_before = rasp.SelectorWidth(
        rasp.Select(stops_at, rasp.indices, lambda k, q: k[0] and k[1] < q).named(
            "stops_before_sel"
        )
    ).named("stops_before")
    stop_rank = pair(stops, stops_before, "stop_rank")
    last_stop = rasp.Select(stop_rank, stops_before, lambda k, q: k[0] and k[1] == q - 1).named(
        "last_stop"
    )
    generates = numerical_flag(rasp.tokens, lambda t: t == "11", "generates")
    carry = rasp.numerical(rasp.Aggregate(last_stop, generates, default=0)).named("carry")
    carry_bit = rasp.Map(lambda c: 1 if c > 0.5 else 0, carry).named("carry_bit")
    return rasp.SequenceMap(lambda s, c: (s + c) % 2, col_sum, carry_bit).named("sum_bit")


def make_digit_sum_mod(base: int) -> rasp.SOp:
    """Sum of all digits modulo ``base``, at every position (one count per digit value)."""
    total = None
    for digit in range(1, base):
        weighted = rasp.Map(lambda c, d=digit: c * d, make_count(rasp.tokens, digit)).named(
            f"weighted_{digit}"
        )
        if total is None:
            total = weighted
        else:
            total = rasp.SequenceMap(lambda a, b: (a + b) % base, total, weighted).named(
                f"partial_sum_{digit}"
            )
    return rasp.Map(lambda s: s % base, total).named("digit_sum_mod")


def make_position_checksum(modulus: int) -> rasp.SOp:
    """``(token + index + length) mod modulus`` via tracr's n-ary SequenceMap."""
    return make_nary_sequencemap(
        lambda t, i, n: (t + i + n) % modulus, rasp.tokens, rasp.indices, make_length()
    ).named("position_checksum")
