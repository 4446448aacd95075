"""Programs that each isolate a mechanism interpretability work looks for.

Copying (previous token, first token, pointer hops), induction, counting, first
occurrences, broadcasts of a global fact, and numerical means of non-binary values.
Selections over two variables appear both ways: as a composite selector (``&``, ``|``,
``~`` of Selects over different SOps; rasplab compiles it, tracr does not) and packed
into one Select over a tuple-valued SOp (both compile it). Induction exists in both
forms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rasplab.compiler import rasp

from .combinators import (
    earlier_same_token,
    earlier_same_token_tuple,
    numerical_flag,
    ones,
    pair,
    prefix_count,
    select_all,
    select_prefix,
)
from .tracr_lib import make_length, shift_by

# --- copying ----------------------------------------------------------------------------


def make_copy_first() -> rasp.SOp:
    """The first token at every position (one head reading position 0)."""
    first = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == 0).named("select_first")
    return rasp.Aggregate(first, rasp.tokens).named("first_token")


def make_next_token() -> rasp.SOp:
    """The token one position later; None at the last position (looks ahead)."""
    nxt = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == q + 1).named("select_next")
    return rasp.Aggregate(nxt, rasp.tokens).named("next_token")


def make_swap_pairs() -> rasp.SOp:
    """Swap the tokens at positions 2j and 2j+1; a lone last token becomes None."""
    partner = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == q ^ 1).named(
        "select_partner"
    )
    return rasp.Aggregate(partner, rasp.tokens).named("swap_pairs")


def make_last_token() -> rasp.SOp:
    """The last token at every position (needs the length)."""
    last = (make_length() - 1).named("last_index")
    select_last = rasp.Select(rasp.indices, last, rasp.Comparison.EQ).named("select_last")
    return rasp.Aggregate(select_last, rasp.tokens).named("last_token")


def make_rotate_left() -> rasp.SOp:
    """Rotate the input one position left: position i reads (i + 1) mod length."""
    # Compilers apply the function to every (index, length) pair of the value sets,
    # length 0 included: keep it total.
    source = rasp.SequenceMap(
        lambda i, n: (i + 1) % n if n else 0, rasp.indices, make_length()
    ).named("source_index")
    select = rasp.Select(rasp.indices, source, rasp.Comparison.EQ).named("select_source")
    return rasp.Aggregate(select, rasp.tokens).named("rotate_left")


def make_pointer_follow(hops: int) -> rasp.SOp:
    """Tokens are positions; follow ``hops`` pointers: ``x -> tokens[x]`` from each token.

    One hop reads ``tokens[tokens[i]]``. Inputs must hold positions inside the input.
    """
    if hops < 1:
        raise ValueError(f"make_pointer_follow needs hops >= 1, got {hops}")
    target = rasp.tokens
    for hop in range(1, hops + 1):
        select = rasp.Select(rasp.indices, target, rasp.Comparison.EQ).named(f"follow_{hop}")
        target = rasp.Aggregate(select, rasp.tokens).named(f"hop_{hop}")
    return target.named(f"pointer_follow_{hops}")


def make_same_as_first() -> rasp.SOp:
    """True where the token equals the first token."""
    first = make_copy_first()
    return rasp.SequenceMap(lambda a, b: a == b, rasp.tokens, first).named("same_as_first")


# --- induction --------------------------------------------------------------------------


def _occurrence_induction(occurrence: rasp.SOp) -> rasp.SOp:
    """The token that followed the previous occurrence of the current token.

    ``occurrence`` counts earlier copies of the current token. Position p is the one
    after the previous occurrence of the token at q exactly when the (token, occurrence)
    pair at p - 1 is (token[q], occurrence[q] - 1): one Select over the shifted pair.
    """
    tok_occ = pair(rasp.tokens, occurrence, "tok_occ")
    prev_tok_occ = shift_by(1, tok_occ).named("prev_tok_occ")
    after_prev = rasp.Select(
        prev_tok_occ,
        tok_occ,
        lambda k, q: k is not None and q is not None and k[0] == q[0] and k[1] == q[1] - 1,
    ).named("after_prev_occurrence")
    return rasp.Aggregate(after_prev, rasp.tokens).named("induction")


def make_induction() -> rasp.SOp:
    """Induction: the token that followed the previous occurrence of the current token.

    None where the current token has not occurred before. Occurrence counts come from
    one Select over ``(token, index)`` pairs (compilable by tracr).
    """
    occurrence = rasp.SelectorWidth(earlier_same_token_tuple()).named("occurrence")
    return _occurrence_induction(occurrence)


def make_induction_composite() -> rasp.SOp:
    """Induction as :func:`make_induction`, counting occurrences with the composite
    selector ``Select(tokens, tokens, EQ) & Select(indices, indices, LT)``."""
    occurrence = rasp.SelectorWidth(earlier_same_token()).named("occurrence")
    return _occurrence_induction(occurrence)


# --- occurrences and counting -----------------------------------------------------------


def make_first_occurrence() -> rasp.SOp:
    """True where the token occurs for the first time (composite selector)."""
    has_earlier = rasp.numerical(rasp.Aggregate(earlier_same_token(), ones(), default=0))
    has_earlier = has_earlier.named("has_earlier")
    return rasp.Map(lambda x: x == 0, has_earlier).named("is_first")


def make_prev_occurrence_count() -> rasp.SOp:
    """How many earlier positions hold the current token (composite selector)."""
    return rasp.SelectorWidth(earlier_same_token()).named("prev_count")


def make_later_different_count() -> rasp.SOp:
    """How many later positions hold a different token.

    ``~(Select(indices, indices, LEQ) | Select(tokens, tokens, EQ))``: a selector ``or``
    and ``not`` over different SOps.
    """
    not_later = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ).named("not_later")
    same = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ).named("same_token")
    later_different = (~(not_later | same).named("earlier_or_same")).named("later_different")
    return rasp.SelectorWidth(later_different).named("later_different_count")


def make_prefix_count(token: rasp.Value) -> rasp.SOp:
    """How many times ``token`` occurred up to and including each position."""
    return prefix_count(lambda t: t == token, rasp.tokens, f"prefix_count_{token}")


def make_running_parity(one: rasp.Value = 1) -> rasp.SOp:
    """Parity (0 or 1) of the number of ``one`` tokens in each prefix."""
    count = prefix_count(lambda t: t == one, rasp.tokens, "ones_so_far")
    return rasp.Map(lambda c: c % 2, count).named("running_parity")


def make_count_smaller() -> rasp.SOp:
    """How many positions hold a smaller token."""
    smaller = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.LT).named("smaller")
    return rasp.SelectorWidth(smaller).named("count_smaller")


def make_count_distinct() -> rasp.SOp:
    """How many distinct tokens the input holds, at every position."""
    earlier_copies = rasp.SelectorWidth(earlier_same_token_tuple()).named("earlier_copies")
    is_first = rasp.Map(lambda c: c == 0, earlier_copies).named("is_first")
    firsts = rasp.Select(is_first, rasp.tokens, lambda k, q: k is not None and bool(k))
    return rasp.SelectorWidth(firsts.named("select_firsts")).named("count_distinct")


def make_max_token() -> rasp.SOp:
    """The largest token at every position.

    Ranks positions by (token descending, index ascending) with one Select over
    ``(token, index)``; exactly one position has rank 0 and is broadcast.
    """
    tok_idx = pair(rasp.tokens, rasp.indices, "tok_idx")
    ahead = rasp.Select(
        tok_idx, tok_idx, lambda k, q: k[0] > q[0] or (k[0] == q[0] and k[1] < q[1])
    ).named("ranks_ahead")
    rank = rasp.SelectorWidth(ahead).named("rank")
    top = rasp.Select(rank, rasp.indices, lambda k, q: k == 0).named("select_top")
    return rasp.Aggregate(top, rasp.tokens).named("max_token")


def make_majority_binary() -> rasp.SOp:
    """1 where ones outnumber zeros in the whole input, else 0 (a numerical mean)."""
    is_one = numerical_flag(rasp.tokens, lambda t: t == 1, "is_one")
    frac = rasp.numerical(rasp.Aggregate(select_all(), is_one, default=0)).named("frac_ones")
    return rasp.Map(lambda m: 1 if m > 0.5 else 0, frac).named("majority")


def make_palindrome() -> rasp.SOp:
    """True everywhere when the input reads the same backwards.

    Position i selects its mirror position only if it holds the same token: one Select
    of ``(token, index)`` keys against ``(token, length - 1 - index)`` queries, whose
    width (0 or 1) says whether i matches its mirror. Counting with a SelectorWidth
    rather than reading the mirror with an Aggregate keeps every value non-None.
    """
    mirror = rasp.SequenceMap(lambda n, i: n - 1 - i, make_length(), rasp.indices).named(
        "mirror_index"
    )
    tok_idx = pair(rasp.tokens, rasp.indices, "tok_idx")
    tok_mirror = pair(rasp.tokens, mirror, "tok_mirror")
    same_at_mirror = rasp.Select(tok_idx, tok_mirror, lambda k, q: k == q).named("same_at_mirror")
    matches = rasp.SelectorWidth(same_at_mirror).named("matches_mirror")
    differs = numerical_flag(matches, lambda m: m == 0, "differs")
    differ_frac = rasp.numerical(rasp.Aggregate(select_all(), differs, default=0))
    return rasp.Map(lambda m: m == 0, differ_frac.named("differ_frac")).named("is_palindrome")


def make_contains_pattern(pattern: Sequence[rasp.Value]) -> rasp.SOp:
    """True everywhere when ``pattern`` occurs somewhere in the input.

    Unlike :func:`detect_pattern`, the shifted element detectors are numerical means
    with default 0, so no None reaches the final numerical mean.
    """
    if len(pattern) < 1:
        raise ValueError("make_contains_pattern needs a non-empty pattern")
    matches = None
    for back, element in enumerate(reversed(pattern)):
        is_element = numerical_flag(
            rasp.tokens, lambda t, e=element: t == e, f"is_{element}_{back}"
        )
        if back:
            offset = rasp.Select(
                rasp.indices, rasp.indices, lambda k, q, b=back: q == k + b
            ).named(f"select_back_{back}")
            is_element = rasp.numerical(rasp.Aggregate(offset, is_element, default=0)).named(
                f"was_{element}_{back}"
            )
        present = rasp.Map(lambda x: x > 0.5, is_element).named(f"match_{back}")
        matches = present if matches is None else (matches & present).named(f"ends_{back}")
    ends_here = rasp.numerical(rasp.Map(lambda m: 1 if m else 0, matches)).named("ends_here")
    frac = rasp.numerical(rasp.Aggregate(select_all(), ends_here, default=0)).named("frac_ends")
    return rasp.Map(lambda m: m > 0, frac).named("contains_pattern")


# --- numerical means of non-binary values -----------------------------------------------


def _token_value() -> rasp.SOp:
    return rasp.numerical(rasp.Map(lambda t: t, rasp.tokens)).named("token_value")


def make_prefix_mean() -> rasp.SOp:
    """Mean of the (numeric) tokens up to and including each position."""
    return rasp.numerical(rasp.Aggregate(select_prefix(), _token_value(), default=0)).named(
        "prefix_mean"
    )


def make_prefix_mean_above(threshold: float) -> rasp.SOp:
    """1 where the prefix mean of the tokens exceeds ``threshold``, else 0 (numerical)."""
    mean = make_prefix_mean()
    return rasp.numerical(rasp.Map(lambda m: 1 if m > threshold else 0, mean)).named(
        "mean_above"
    )


def make_mean_floor() -> rasp.SOp:
    """The floor of the mean token over the whole input (categorical)."""
    mean = rasp.numerical(rasp.Aggregate(select_all(), _token_value(), default=0))
    return rasp.Map(lambda m: math.floor(m + 1e-9), mean.named("mean")).named("mean_floor")
