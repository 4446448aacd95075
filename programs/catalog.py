"""The library: every program with its vocabulary, lengths, tags and samplers.

Sizes are kept small (vocabularies of 2-5 tokens, lengths up to 5-8) so every entry
compiles quickly. Tags come from the fixed vocabulary in :mod:`.spec`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rasplab.compiler import rasp

from . import arithmetic as ar
from . import mechanisms as me
from . import rasp_paper as rp
from . import samplers
from . import tracr_lib as tl
from .spec import ProgramSpec

ABC = ("a", "b", "c")
ABCD = ("a", "b", "c", "d")
PARENS = ("(", ")")
TWO_PARENS = ("(", ")", "{", "}")


def _distinct_tokens(xs: Sequence) -> bool:
    return len(set(xs)) == len(xs)


def _pointers_inside(xs: Sequence) -> bool:
    return all(isinstance(x, int) and 0 <= x < len(xs) for x in xs)


#: The family of each entry below.
_FAMILY: dict[str, str] = {
    "reverse": "strings",
    "rotate_left": "strings",
    "swap_pairs": "strings",
    "palindrome": "strings",
    "length": "counting",
    "hist": "counting",
    "count_less_freq_2": "counting",
    "count_a": "counting",
    "double_hist": "counting",
    "first_occurrence": "counting",
    "prev_occurrence_count": "counting",
    "later_different_count": "counting",
    "prefix_count_a": "counting",
    "count_distinct": "counting",
    "count_smaller": "counting",
    "sort_unique": "sorting",
    "sort": "sorting",
    "sort_freq": "sorting",
    "sort_stable": "sorting",
    "most_freq": "sorting",
    "max_token": "sorting",
    "position_checksum": "arithmetic",
    "running_parity": "arithmetic",
    "increment_base3": "arithmetic",
    "binary_add": "arithmetic",
    "digit_sum_mod3": "arithmetic",
    "detect_pattern_abc": "pattern",
    "detect_pattern_aba": "pattern",
    "contains_ab": "pattern",
    "same_as_first": "pattern",
    "pair_balance": "brackets",
    "shuffle_dyck": "brackets",
    "shuffle_dyck2": "brackets",
    "dyck1": "brackets",
    "dyck2": "brackets",
    "pointer_follow_1": "pointers",
    "pointer_follow_2": "pointers",
    "frac_prevs": "means",
    "majority": "means",
    "prefix_mean": "means",
    "prefix_mean_above": "means",
    "mean_floor": "means",
    "shift_by_1": "copying",
    "shift_by_2": "copying",
    "induction": "copying",
    "induction_composite": "copying",
    "next_token": "copying",
    "copy_first": "copying",
    "last_token": "copying",
}


def _spec(name: str, description: str, build, vocab, max_seq_len: int, tags: str, **kw):
    return ProgramSpec(
        name=name,
        description=description,
        build=build,
        vocab=vocab,
        max_seq_len=max_seq_len,
        tags=frozenset(tags.split()),
        family=kw.pop("family", None) or _FAMILY[name],
        **kw,
    )


def _tracr_lib() -> list[ProgramSpec]:
    return [
        _spec(
            "length", "the input length at every position",
            tl.make_length, ABC, 5,
            "tracr-lib selector-width uses-length counting broadcast",
        ),
        _spec(
            "reverse", "the input reversed (ACDC's tracr-reverse)",
            lambda: tl.make_reverse(rasp.tokens), (1, 2, 3), 5,
            "tracr-lib rasp-paper copying selector-width uses-length",
        ),
        _spec(
            "hist", "how often each position's token occurs in the input",
            tl.make_hist, ABCD, 5,
            "tracr-lib rasp-paper counting selector-width",
        ),
        _spec(
            "sort_unique", "distinct tokens sorted ascending",
            lambda: tl.make_sort_unique(rasp.tokens, rasp.tokens), (1, 2, 3, 4, 5), 5,
            "tracr-lib sorting selector-width",
            valid=_distinct_tokens, generate=samplers.distinct((1, 2, 3, 4, 5)),
        ),
        _spec(
            "sort", "tokens sorted ascending, repeats allowed (keys made unique by index)",
            lambda: tl.make_sort(rasp.tokens, rasp.tokens, max_seq_len=5, min_key=1),
            (1, 2, 3, 4), 5,
            "tracr-lib sorting selector-width",
        ),
        _spec(
            "sort_freq", "tokens sorted by descending frequency, ties in input order",
            lambda: tl.make_sort_freq(5), ABC, 5,
            "tracr-lib sorting counting selector-width",
        ),
        _spec(
            "frac_prevs", "fraction of 'x' tokens so far (ACDC's tracr-proportion)",
            lambda: tl.make_frac_prevs(rasp.tokens == "x"), ("w", "x", "y", "z"), 5,
            "tracr-lib rasp-paper counting numerical causal",
        ),
        _spec(
            "pair_balance", "fraction of '(' minus fraction of ')' so far",
            lambda: tl.make_pair_balance(rasp.tokens, "(", ")"), ("(", ")", "a"), 6,
            "tracr-lib rasp-paper dyck numerical causal",
            generate=samplers.brackets(["()"], noise=["a"]),
        ),
        _spec(
            "shuffle_dyck", "True everywhere iff the parentheses are balanced",
            lambda: tl.make_shuffle_dyck(["()"]), PARENS, 6,
            "tracr-lib dyck numerical uses-length selector-width mlp-heavy broadcast",
            generate=samplers.brackets(["()"]), lengths=(2, 4, 6),
        ),
        _spec(
            "shuffle_dyck2", "True everywhere iff () and {} are each balanced (may interleave)",
            tl.make_shuffle_dyck2, TWO_PARENS, 6,
            "tracr-lib dyck numerical uses-length selector-width mlp-heavy broadcast",
            generate=samplers.brackets(["()", "{}"]), lengths=(2, 4, 6),
        ),
        _spec(
            "detect_pattern_abc", "True where the pattern abc ends here",
            lambda: tl.detect_pattern(rasp.tokens, "abc"), ABC, 6,
            "tracr-lib pattern mlp-heavy causal",
            generate=samplers.with_pattern(ABC, "abc"),
        ),
        _spec(
            "detect_pattern_aba", "True where the pattern aba ends here",
            lambda: tl.detect_pattern(rasp.tokens, "aba"), ("a", "b"), 6,
            "tracr-lib pattern mlp-heavy causal",
            generate=samplers.with_pattern(("a", "b"), "aba"),
        ),
        _spec(
            "count_less_freq_2", "how many positions hold a token occurring at most twice",
            lambda: tl.make_count_less_freq(2), ABC, 6,
            "tracr-lib counting selector-width broadcast",
        ),
        _spec(
            "count_a", "how many 'a' tokens the input holds",
            lambda: tl.make_count(rasp.tokens, "a"), ABC, 6,
            "tracr-lib counting selector-width broadcast",
        ),
        _spec(
            "position_checksum", "(token + index + length) mod 3 via an n-ary SequenceMap",
            lambda: ar.make_position_checksum(3), (0, 1, 2), 5,
            "tracr-lib arithmetic selector-width uses-length",
        ),
        _spec(
            "shift_by_1", "previous-token copy: the token one position back",
            lambda: tl.shift_by(1, rasp.tokens), ABC, 6,
            "tracr-lib copying attention-only causal",
        ),
        _spec(
            "shift_by_2", "the token two positions back",
            lambda: tl.shift_by(2, rasp.tokens), ABC, 6,
            "tracr-lib copying attention-only causal",
        ),
    ]


def _rasp_paper() -> list[ProgramSpec]:
    return [
        _spec(
            "double_hist", "how many distinct tokens occur as often as this one",
            rp.make_double_hist, ABCD, 6,
            "rasp-paper counting composite-selector numerical selector-width beyond-tracr",
        ),
        _spec(
            "sort_stable", "stable ascending sort with a composite tie-breaking selector",
            lambda: rp.make_sort_stable(rasp.tokens, rasp.tokens), (1, 2, 3, 4), 5,
            "rasp-paper sorting composite-selector selector-width beyond-tracr",
        ),
        _spec(
            "most_freq", "the most frequent token (first to occur on ties), everywhere",
            lambda: rp.make_most_freq(5), ABC, 5,
            "rasp-paper sorting counting selector-width broadcast",
        ),
        _spec(
            "dyck1", "Dyck-1 prefix labels: T balanced, P pending, F broken",
            rp.make_dyck1, PARENS, 8,
            "rasp-paper dyck numerical mlp-heavy causal",
            generate=samplers.brackets(["()"]), lengths=(2, 4, 6, 8),
        ),
        _spec(
            "dyck2", "Dyck-2 prefix labels over () and {} with proper nesting",
            lambda: rp.make_dyck2(("()", "{}"), max_seq_len=6), TWO_PARENS, 6,
            "rasp-paper dyck numerical selector-width mlp-heavy causal",
            generate=samplers.brackets(["()", "{}"]), lengths=(2, 4, 6),
        ),
    ]


def _mechanisms() -> list[ProgramSpec]:
    return [
        _spec(
            "induction", "the token after the previous occurrence of the current token",
            me.make_induction, ABC, 6,
            "induction copying selector-width causal",
        ),
        _spec(
            "induction_composite", "induction, counting occurrences with a composite selector",
            me.make_induction_composite, ABC, 6,
            "induction copying composite-selector selector-width beyond-tracr causal",
        ),
        _spec(
            "first_occurrence", "True where the token has not occurred before",
            me.make_first_occurrence, ABC, 6,
            "counting composite-selector numerical beyond-tracr causal",
        ),
        _spec(
            "prev_occurrence_count", "how many earlier positions hold the current token",
            me.make_prev_occurrence_count, ABC, 6,
            "counting composite-selector selector-width beyond-tracr causal",
        ),
        _spec(
            "later_different_count", "how many later positions hold a different token",
            me.make_later_different_count, ABC, 6,
            "counting composite-selector selector-width beyond-tracr",
        ),
        _spec(
            "prefix_count_a", "how many 'a' tokens so far",
            lambda: me.make_prefix_count("a"), ABC, 6,
            "counting selector-width causal",
        ),
        _spec(
            "running_parity", "parity of the number of 1s so far",
            me.make_running_parity, (0, 1), 8,
            "counting arithmetic selector-width causal",
        ),
        _spec(
            "pointer_follow_1", "tokens are positions: tokens[tokens[i]]",
            lambda: me.make_pointer_follow(1), (0, 1, 2, 3, 4), 5,
            "copying attention-only",
            valid=_pointers_inside, generate=samplers.positions(), min_len=2,
        ),
        _spec(
            "pointer_follow_2", "two pointer hops: tokens[tokens[tokens[i]]]",
            lambda: me.make_pointer_follow(2), (0, 1, 2, 3, 4), 5,
            "copying attention-only",
            valid=_pointers_inside, generate=samplers.positions(), min_len=2,
        ),
        _spec(
            "majority", "1 where ones outnumber zeros in the input, else 0",
            me.make_majority_binary, (0, 1), 7,
            "counting numerical broadcast",
        ),
        _spec(
            "palindrome", "True everywhere iff the input reads the same backwards",
            me.make_palindrome, ABC, 6,
            "pattern numerical selector-width uses-length mlp-heavy broadcast",
            generate=samplers.palindromes(ABC),
        ),
        _spec(
            "next_token", "the token one position ahead",
            me.make_next_token, ABC, 6,
            "copying attention-only",
        ),
        _spec(
            "copy_first", "the first token at every position",
            me.make_copy_first, ABC, 6,
            "copying attention-only broadcast causal",
        ),
        _spec(
            "swap_pairs", "tokens of positions 2j and 2j+1 swapped",
            me.make_swap_pairs, ABC, 6,
            "copying attention-only",
        ),
        _spec(
            "last_token", "the last token at every position",
            me.make_last_token, ABC, 6,
            "copying broadcast selector-width uses-length",
        ),
        _spec(
            "rotate_left", "the input rotated one position to the left",
            me.make_rotate_left, ABC, 6,
            "copying selector-width uses-length",
        ),
        _spec(
            "same_as_first", "True where the token equals the first token",
            me.make_same_as_first, ABC, 6,
            "copying causal",
        ),
        _spec(
            "max_token", "the largest token at every position",
            me.make_max_token, (1, 2, 3, 4), 5,
            "sorting broadcast selector-width",
        ),
        _spec(
            "count_smaller", "how many positions hold a smaller token",
            me.make_count_smaller, (1, 2, 3, 4), 5,
            "counting sorting selector-width",
        ),
        _spec(
            "count_distinct", "how many distinct tokens the input holds",
            me.make_count_distinct, ABCD, 6,
            "counting broadcast selector-width",
        ),
        _spec(
            "contains_ab", "True everywhere iff the pattern ab occurs in the input",
            lambda: me.make_contains_pattern("ab"), ABC, 6,
            "pattern numerical mlp-heavy broadcast",
            generate=samplers.with_pattern(ABC, "ab"),
        ),
        _spec(
            "prefix_mean", "mean of the tokens 0..3 so far (a non-binary numerical mean)",
            me.make_prefix_mean, (0, 1, 2, 3), 5,
            "numerical non-binary-mean beyond-tracr causal",
        ),
        _spec(
            "prefix_mean_above", "1 where the mean of the tokens so far exceeds 1.5, else 0",
            lambda: me.make_prefix_mean_above(1.5), (0, 1, 2, 3), 5,
            "numerical non-binary-mean beyond-tracr causal",
        ),
        _spec(
            "mean_floor", "floor of the mean token 0..3 of the input",
            me.make_mean_floor, (0, 1, 2, 3), 5,
            "numerical non-binary-mean beyond-tracr broadcast",
        ),
    ]


def _arithmetic() -> list[ProgramSpec]:
    return [
        _spec(
            "increment_base3", "add one to a base-3 number, least-significant digit first",
            lambda: ar.make_increment(3), (0, 1, 2), 5,
            "arithmetic numerical causal",
        ),
        _spec(
            "binary_add", "sum of two binary numbers given as bit columns 'ab', LSB first",
            ar.make_binary_add, ("00", "01", "10", "11"), 5,
            "arithmetic numerical selector-width mlp-heavy causal",
        ),
        _spec(
            "digit_sum_mod3", "sum of the base-3 digits mod 3, at every position",
            lambda: ar.make_digit_sum_mod(3), (0, 1, 2), 6,
            "arithmetic counting selector-width mlp-heavy broadcast",
        ),
    ]


def core_specs() -> list[ProgramSpec]:
    """The original library (tracr's, the RASP paper's, mechanisms, arithmetic): the set
    the fast tests sweep; the task families and generated programs are swept when slow."""
    return _tracr_lib() + _rasp_paper() + _mechanisms() + _arithmetic()


def all_specs() -> list[ProgramSpec]:
    """Every library entry, in library order."""
    from .families import all_family_specs
    from .generated import generated_specs

    return (
        _tracr_lib() + _rasp_paper() + _mechanisms() + _arithmetic() + all_family_specs()
        + generated_specs()
    )
