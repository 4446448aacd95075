"""Detecting patterns of tokens: repeats, bigrams, runs, periods, prefixes and suffixes.

A comparison with a neighbour is one Select over ``(token, index)`` pairs whose width
(0 or 1) says whether the neighbour matches, so no None reaches later steps.
"""

from __future__ import annotations

from collections.abc import Sequence

from rasplab.compiler import rasp

from .combinators import count_where, pair, prefix_count
from .tracr_lib import make_length


def neighbour_matches(back: int, test, name: str) -> rasp.SOp:
    """1 where the position ``back`` places earlier exists and ``test(its token, this
    token)`` holds, else 0 (a SelectorWidth over ``(token, index)`` pairs)."""
    tok_idx = pair(rasp.tokens, rasp.indices, f"{name}_tok_idx")
    select = rasp.Select(
        tok_idx, tok_idx, lambda k, q: k[1] == q[1] - back and bool(test(k[0], q[0]))
    )
    return rasp.SelectorWidth(select.named(f"{name}_select")).named(name)


def make_repeat_here() -> rasp.SOp:
    """True where the token equals the one before it."""
    same = neighbour_matches(1, lambda k, q: k == q, "prev_same")
    return rasp.Map(lambda w: w == 1, same).named("repeat_here")


def make_alternating() -> rasp.SOp:
    """True everywhere iff no two neighbouring tokens are equal."""
    same = neighbour_matches(1, lambda k, q: k == q, "prev_same")
    repeats = count_where(lambda w: w == 1, same, "repeats")
    return rasp.Map(lambda r: r == 0, repeats).named("alternating")


def make_period(period: int) -> rasp.SOp:
    """True everywhere iff every token equals the one ``period`` places earlier."""
    differs = neighbour_matches(period, lambda k, q: k != q, "differs_back")
    breaks = count_where(lambda w: w == 1, differs, "breaks")
    return rasp.Map(lambda b: b == 0, breaks).named(f"period_{period}")


def make_count_bigram(bigram: Sequence[str]) -> rasp.SOp:
    """How many times ``bigram`` occurs, everywhere."""
    first, second = bigram
    ends = neighbour_matches(1, lambda k, q: k == first and q == second, "bigram_ends")
    return count_where(lambda w: w == 1, ends, f"count_{first}{second}")


def make_starts_with(prefix: Sequence[str]) -> rasp.SOp:
    """True everywhere iff the input starts with ``prefix``."""
    want = dict(enumerate(prefix))
    ok = rasp.SequenceMap(
        lambda t, i: i not in want or want[i] == t, rasp.tokens, rasp.indices
    ).named("prefix_ok")
    bad = count_where(lambda o: not o, ok, "prefix_bad")
    length = make_length()
    return rasp.SequenceMap(
        lambda b, n: b == 0 and n >= len(prefix), bad, length
    ).named(f"starts_with_{''.join(prefix)}")


def make_ends_with(suffix: Sequence[str]) -> rasp.SOp:
    """True everywhere iff the input ends with ``suffix``."""
    tail = tuple(suffix)
    length = make_length()
    from_end = rasp.SequenceMap(lambda i, n: n - 1 - i, rasp.indices, length).named("from_end")
    ok = rasp.SequenceMap(
        lambda t, r: r >= len(tail) or tail[len(tail) - 1 - r] == t, rasp.tokens, from_end
    ).named("suffix_ok")
    bad = count_where(lambda o: not o, ok, "suffix_bad")
    return rasp.SequenceMap(
        lambda b, n: b == 0 and n >= len(tail), bad, length
    ).named(f"ends_with_{''.join(tail)}")


def make_bigram_seen() -> rasp.SOp:
    """True where the bigram ending here also ended at some earlier position."""
    prev = rasp.Aggregate(
        rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == q - 1).named("prev_select"),
        rasp.tokens,
    ).named("prev_token")
    bigram = pair(prev, rasp.tokens, "bigram")
    bigram_at = pair(bigram, rasp.indices, "bigram_at")
    earlier = rasp.Select(
        bigram_at, bigram_at,
        lambda k, q: k is not None and q is not None and k[0] == q[0] and k[1] < q[1],
    ).named("same_bigram_earlier")
    return rasp.Map(lambda w: w > 0, rasp.SelectorWidth(earlier).named("earlier_bigrams")).named(
        "bigram_seen"
    )


def make_count_runs() -> rasp.SOp:
    """How many maximal runs of equal tokens the input has, everywhere."""
    same = neighbour_matches(1, lambda k, q: k == q, "prev_same")
    return count_where(lambda w: w == 0, same, "count_runs")


def make_run_length() -> rasp.SOp:
    """How long the run of equal tokens ending here is so far."""
    same = neighbour_matches(1, lambda k, q: k == q, "prev_same")
    starts = rasp.Map(lambda w: w == 0, same).named("run_start")
    runs = prefix_count(bool, starts, "runs_so_far")
    start_rank = pair(starts, runs, "start_rank")
    start_at = send_to_start(start_rank, runs)
    return rasp.SequenceMap(lambda i, s: i - s + 1, rasp.indices, start_at).named("run_length")


def send_to_start(start_rank: rasp.SOp, runs: rasp.SOp) -> rasp.SOp:
    """The index where the current run started: the run start whose run count is ours."""
    select = rasp.Select(start_rank, runs, lambda k, q: k[0] and k[1] == q).named(
        "select_run_start"
    )
    return rasp.Aggregate(select, rasp.indices).named("run_start_index")


def make_first_bigram_end(bigram: Sequence[str]) -> rasp.SOp:
    """The index where ``bigram`` first ends, everywhere (None if it never occurs)."""
    first, second = bigram
    ends = neighbour_matches(1, lambda k, q: k == first and q == second, "bigram_ends")
    earlier = prefix_count(lambda w: w == 1, ends, "ends_before", strict=True)
    is_first = rasp.SequenceMap(lambda w, c: w == 1 and c == 0, ends, earlier).named("first_end")
    select = rasp.Select(is_first, is_first, lambda k, q: bool(k)).named("select_first_end")
    return rasp.Aggregate(select, rasp.indices).named(f"first_{first}{second}_end")

