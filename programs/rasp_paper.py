"""Programs from "Thinking Like Transformers" (Weiss, Goldberg and Yahav, 2021).

Histogram and reverse are the ones in :mod:`tracr_lib`. The paper's own formulations
use composite selectors (``&``, ``|`` of Selects over different SOps) where tracr's
library avoids them; those are kept here as the paper wrote them.
"""

from __future__ import annotations

from rasplab.compiler import rasp

from .combinators import earlier_same_token, ones, pair
from .tracr_lib import make_frac_prevs, make_hist, make_pair_balance, make_sort_freq


def make_double_hist() -> rasp.SOp:
    """How many distinct tokens occur exactly as often as the token at this position.

    ``aabbc`` gives ``[2, 2, 2, 2, 1]`` (a and b occur twice, only c once). The first
    occurrence of each token stands for it: a composite selector marks earlier copies.
    """
    hist = make_hist()
    has_earlier = rasp.numerical(rasp.Aggregate(earlier_same_token(), ones(), default=0))
    has_earlier = has_earlier.named("has_earlier")
    is_first = rasp.Map(lambda x: x == 0, has_earlier).named("is_first")
    same_count = rasp.Select(hist, hist, rasp.Comparison.EQ).named("same_count")
    first_key = rasp.Select(is_first, is_first, lambda k, q: k is not None and bool(k))
    first_key = first_key.named("key_is_first")
    return rasp.SelectorWidth((same_count & first_key).named("same_count_first")).named(
        "double_hist"
    )


def make_sort_stable(vals: rasp.SOp, keys: rasp.SOp) -> rasp.SOp:
    """``vals`` ordered by ``keys``, ties in input order, as the paper sorts.

    The target position counts keys that are smaller, or equal and earlier:
    ``Select(keys, keys, LT) | (Select(keys, keys, EQ) & Select(indices, indices, LT))``.
    """
    smaller = rasp.Select(keys, keys, rasp.Comparison.LT).named("smaller")
    equal = rasp.Select(keys, keys, rasp.Comparison.EQ).named("equal")
    earlier = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LT).named("earlier")
    before = (smaller | (equal & earlier).named("equal_earlier")).named("goes_before")
    target_pos = rasp.SelectorWidth(before).named("target_pos")
    fetch = rasp.Select(target_pos, rasp.indices, rasp.Comparison.EQ).named("fetch_sorted")
    return rasp.Aggregate(fetch, vals).named("sort_stable")


def make_most_freq(max_seq_len: int) -> rasp.SOp:
    """The most frequent token at every position (ties: the one occurring first).

    Sorts by descending frequency, then broadcasts the first sorted position.
    """
    by_freq = make_sort_freq(max_seq_len)
    first = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == 0).named("select_first")
    return rasp.Aggregate(first, by_freq).named("most_freq")


def make_dyck1(open_token: str = "(", close_token: str = ")") -> rasp.SOp:
    """Dyck-1 prefix labels: ``"T"`` balanced so far, ``"P"`` open brackets pending,
    ``"F"`` broken (some prefix closed more than it opened).

    Uses the paper's pair balance (numerical prefix means), a 0/1 flag for a negative
    balance, and a second prefix mean telling whether that flag was ever raised.
    """
    balance = make_pair_balance(rasp.tokens, open_token, close_token)
    negative = rasp.numerical(rasp.Map(lambda b: 1 if b < 0 else 0, balance)).named("negative")
    negative_seen = make_frac_prevs(negative).named("negative_seen")
    broken = rasp.Map(lambda x: x > 0, negative_seen).named("broken")
    closed = rasp.Map(lambda b: b == 0, balance).named("closed")
    return rasp.SequenceMap(_label, broken, closed).named("dyck1")


def _label(broken: bool, closed: bool) -> str:
    if broken:
        return "F"
    return "T" if closed else "P"


def make_dyck2(pairs: tuple[str, str] = ("()", "{}"), max_seq_len: int = 6) -> rasp.SOp:
    """Dyck-2 prefix labels (``"T"``, ``"P"``, ``"F"`` as in :func:`make_dyck1`), with
    nesting: ``"({)}"`` is broken at the ``)``.

    A closing bracket at level ``L`` (the depth before it) matches the opening bracket
    that raised the depth to ``L``; at one level, openings and closings alternate, so the
    r-th closing at level L matches the r-th opening at level L. Each position computes
    its depth (two prefix counts), its level, and its rank among earlier brackets of its
    kind (opening or closing) at its level; then one Select over ``(token, level, rank)``
    checks that the partner exists and has the same type. A closing bracket at level 0
    (the depth went negative) has no partner. Levels are clipped to ``0..max_seq_len``
    to bound the value sets.
    """
    opener = {p[1]: p[0] for p in pairs}
    openers = {p[0] for p in pairs}
    open_at = rasp.SequenceMap(lambda t, i: (t in openers, i), rasp.tokens, rasp.indices)
    open_at = open_at.named("open_at")
    tok_idx = pair(rasp.tokens, rasp.indices, "tok_idx")
    opened = rasp.SelectorWidth(
        rasp.Select(open_at, rasp.indices, lambda k, q: k[0] and k[1] <= q).named("opened_sel")
    ).named("opened")
    closed = rasp.SelectorWidth(
        rasp.Select(open_at, rasp.indices, lambda k, q: not k[0] and k[1] <= q).named(
            "closed_sel"
        )
    ).named("closed")
    depth = rasp.SequenceMap(lambda a, b: a - b, opened, closed).named("depth")

    def level(d: int, t: str) -> int:
        return min(max(d if t in openers else d + 1, 0), max_seq_len)

    # Two tuples computed side by side from the depth: with the index for ranking,
    # without it for matching (keeps the matching key's value set small).
    tok_level_at = rasp.SequenceMap(
        lambda d, ti: (ti[0], level(d, ti[0]), ti[1]), depth, tok_idx
    ).named("tok_level_at")
    tok_level = rasp.SequenceMap(lambda d, t: (t, level(d, t)), depth, rasp.tokens)
    tok_level = tok_level.named("tok_level")
    same_kind_level_before = rasp.Select(
        tok_level_at,
        tok_level_at,
        lambda k, q: (k[0] in openers) == (q[0] in openers) and k[1] == q[1] and k[2] < q[2],
    ).named("same_kind_level_before")
    rank = rasp.SelectorWidth(same_kind_level_before).named("rank")
    bracket = rasp.SequenceMap(lambda tl, r: (*tl, r), tok_level, rank)
    bracket = bracket.named("bracket")

    def partner(k: tuple, q: tuple) -> bool:
        if q[0] in openers:  # an opening bracket selects itself: always "matched"
            return k == q
        return q[1] >= 1 and k[1:] == q[1:] and k[0] == opener.get(q[0])

    matched = rasp.numerical(
        rasp.Aggregate(rasp.Select(bracket, bracket, partner).named("partner"), ones(), default=0)
    ).named("matched")
    mismatch = rasp.numerical(rasp.Map(lambda m: 1 if m == 0 else 0, matched)).named("mismatch")
    bad_seen = make_frac_prevs(mismatch).named("bad_seen")
    broken = rasp.Map(lambda x: x > 0, bad_seen).named("broken")
    balanced = rasp.Map(lambda d: d == 0, depth).named("depth_zero")
    return rasp.SequenceMap(_label, broken, balanced).named("dyck2")
