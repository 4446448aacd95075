"""The library entries of the task families (strings, counting, sorting, arithmetic,
pattern, brackets, pointers, means, copying), one function per family.

Sizes stay small (vocabularies of 2-9 tokens, lengths 4-8) so every entry compiles
in milliseconds and its exactness check stays cheap. Tags come from the fixed vocabulary
in :mod:`.spec`; the structural ones, ``causal`` and ``beyond-tracr`` are checked against
the program by the tests.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import arithmetic as ar
from . import brackets as br
from . import copying as cp
from . import counting as ct
from . import digits as dg
from . import means as mn
from . import patterns as pt
from . import pointers as pn
from . import samplers
from . import sorting as so
from . import strings as sg
from .spec import ProgramSpec

ABC = ("a", "b", "c")
ABCD = ("a", "b", "c", "d")


def _entry(family: str):
    def make(name: str, description: str, build, vocab, max_seq_len: int, tags: str, **kw):
        return ProgramSpec(
            name=name, description=description, build=build, vocab=vocab,
            max_seq_len=max_seq_len, tags=frozenset(tags.split()), family=family, **kw,
        )

    return make


def strings() -> list[ProgramSpec]:
    e = _entry("strings")
    return [
        e("to_upper", "every letter upper-cased", sg.make_to_upper, ABC, 6,
          "causal"),
        e("caesar_1", "every letter moved one place along abcd, d wrapping to a",
          lambda: sg.make_caesar(1, "abcd"), ABCD, 5, "causal"),
        e("replace_a_b", "every a replaced by b", lambda: sg.make_replace("a", "b"), ABC, 6,
          "causal"),
        e("capitalize", "the first letter upper-cased", sg.make_capitalize, ABC, 6,
          "causal"),
        e("rotate_right", "the string rotated one place to the right", sg.make_rotate_right,
          ABC, 6, "copying selector-width uses-length"),
        e("swap_ends", "the first and last letters exchanged", sg.make_swap_ends, ABC, 6,
          "copying selector-width uses-length"),
        e("stretch", "each letter of the first half written twice", sg.make_stretch, ABC, 6,
          "attention-only causal copying"),
        e("every_other", "the letters at even positions, moved to the front",
          sg.make_every_other, ABC, 6, "attention-only copying"),
        e("mirror_first_half", "the first half followed by its mirror image",
          sg.make_mirror_first_half, ABC, 6, "copying selector-width uses-length"),
        e("filter_out_a", "the string with every a removed, the rest moved to the front",
          lambda: sg.make_filter_out("a"), ABC, 6, "copying mlp-heavy selector-width"),
        e("dedupe_runs", "each run of equal letters squeezed to one letter",
          sg.make_dedupe_runs, ABC, 6, "copying mlp-heavy selector-width"),
        e("halves_equal", "True everywhere iff the string is a word written twice",
          sg.make_halves_equal, ("a", "b"), 6,
          "broadcast mlp-heavy pattern selector-width uses-length",
          generate=samplers.repeated_halves(("a", "b"))),
        e("riffle", "the two halves interleaved", sg.make_riffle, ABC, 6,
          "copying selector-width uses-length"),
    ]


def counting() -> list[ProgramSpec]:
    e = _entry("counting")
    return [
        e("count_in_ab", "how many positions hold a or b, everywhere",
          lambda: ct.make_count_in_set("ab"), ABC, 6, "broadcast counting selector-width"),
        e("count_greater", "how many positions hold a larger token", ct.make_count_greater,
          (1, 2, 3, 4), 5, "counting selector-width"),
        e("count_same_as_first", "how many positions hold the first token, everywhere",
          ct.make_count_same_as_first, ABC, 6, "broadcast counting selector-width"),
        e("count_fixed_points", "how many positions i hold the token i, everywhere",
          ct.make_count_fixed_points, (0, 1, 2, 3), 5, "broadcast counting selector-width"),
        e("running_hist", "how many times the current token occurred so far",
          ct.make_running_hist, ABC, 6, "causal counting selector-width"),
        e("count_repeats", "how many positions repeat the token before them, everywhere",
          ct.make_count_repeats, ABC, 6, "broadcast counting selector-width"),
        e("max_frequency", "how often the most frequent token occurs, everywhere",
          ct.make_max_frequency, ABC, 6, "broadcast counting selector-width"),
        e("distinct_so_far", "how many distinct tokens occurred so far",
          ct.make_distinct_so_far, ABCD, 5, "causal counting selector-width"),
        e("count_unique", "how many positions hold a token occurring once, everywhere",
          ct.make_count_unique, ABC, 6, "broadcast counting selector-width"),
        e("count_a_minus_b", "number of a minus number of b, everywhere",
          lambda: ct.make_count_difference("a", "b"), ABC, 6, "broadcast counting selector-width"),
        e("is_repeated", "True where the token occurs at least twice", ct.make_is_repeated,
          ABCD, 5, "counting selector-width"),
        e("count_earlier_smaller", "how many earlier positions hold a smaller token",
          ct.make_count_earlier_smaller, (1, 2, 3), 6,
          "beyond-tracr causal composite-selector counting selector-width"),
    ]


def _distinct(xs: Sequence) -> bool:
    return len(set(xs)) == len(xs)


def sorting() -> list[ProgramSpec]:
    e = _entry("sorting")
    nums = (1, 2, 3, 4)
    return [
        e("sort_parity", "even tokens first, then odd ones, each in input order",
          lambda: so.make_sort_by(lambda t: t % 2, "sort_parity"), (0, 1, 2, 3), 5,
          "selector-width sorting"),
        e("sort_descending", "the tokens from largest to smallest", so.make_sort_descending,
          nums, 5, "selector-width sorting"),
        e("argsort", "the indices of the tokens in ascending order", so.make_argsort, nums, 5,
          "selector-width sorting"),
        e("sort_rank", "each token's position in the stable ascending sort", so.make_rank,
          nums, 5, "selector-width sorting"),
        e("min_token", "the smallest token, everywhere", so.make_min_token, nums, 5,
          "broadcast selector-width sorting"),
        e("argmax", "the index of the first largest token, everywhere", so.make_argmax, nums,
          5, "broadcast selector-width sorting"),
        e("median", "the lower median token, everywhere", so.make_median, nums, 5,
          "broadcast selector-width sorting uses-length"),
        e("is_sorted", "True everywhere iff the tokens never decrease", so.make_is_sorted,
          nums, 5, "broadcast selector-width sorting"),
        e("sort_unique_descending", "distinct tokens from largest to smallest",
          so.make_sort_unique_descending, (1, 2, 3, 4, 5), 5, "selector-width sorting",
          valid=_distinct, generate=samplers.distinct((1, 2, 3, 4, 5))),
        e("second_largest", "the second token of the descending sort, everywhere",
          so.make_second_largest, nums, 5, "broadcast selector-width sorting"),
        e("frac_sorted_pairs", "fraction of positions not below their predecessor",
          so.make_frac_sorted_pairs, nums, 5, "broadcast numerical selector-width sorting"),
    ]


def arithmetic() -> list[ProgramSpec]:
    e = _entry("arithmetic")
    bits2 = ("00", "01", "10", "11")
    digits3 = tuple(f"{a}{b}" for a in range(3) for b in range(3))
    return [
        e("increment_base2", "add one to a binary number, least-significant bit first",
          lambda: ar.make_increment(2), (0, 1), 8, "arithmetic causal numerical"),
        e("decrement_base3", "subtract one from a base-3 number (wrapping), LSD first",
          lambda: dg.make_decrement(3), (0, 1, 2), 6, "arithmetic causal numerical"),
        e("add_base3", "sum of two base-3 numbers given as digit columns 'ab', LSD first",
          lambda: dg.make_add_columns(3), digits3, 4,
          "arithmetic causal mlp-heavy numerical selector-width"),
        e("binary_subtract", "a - b of binary columns 'ab' (wrapping), LSB first",
          dg.make_binary_subtract, bits2, 5,
          "arithmetic causal mlp-heavy numerical selector-width"),
        e("greater_so_far", "whether a > b on the bits so far, columns 'ab', LSB first",
          dg.make_greater_so_far, bits2, 5, "arithmetic causal mlp-heavy numerical selector-width"),
        e("double_base3", "twice a base-3 number (wrapping), LSD first",
          lambda: dg.make_double(3), (0, 1, 2), 6,
          "arithmetic causal mlp-heavy numerical selector-width"),
        e("digit_sum_base3", "the sum of the base-3 digits, everywhere",
          lambda: dg.make_digit_sum(3), (0, 1, 2), 6,
          "arithmetic broadcast mlp-heavy selector-width"),
        e("prefix_sum_mod3", "the sum of the digits so far, mod 3",
          lambda: dg.make_prefix_sum_mod(3), (0, 1, 2), 6,
          "arithmetic causal mlp-heavy selector-width"),
        e("gray_code", "the Gray code of a binary number, LSB first", dg.make_gray_code,
          (0, 1), 8, "arithmetic selector-width"),
    ]


def pattern() -> list[ProgramSpec]:
    e = _entry("pattern")
    return [
        e("repeat_here", "True where the token equals the one before it",
          pt.make_repeat_here, ABC, 6, "causal pattern selector-width"),
        e("alternating", "True everywhere iff no two neighbours are equal",
          pt.make_alternating, ABC, 6, "broadcast pattern selector-width"),
        e("period_2", "True everywhere iff each token equals the one two places back",
          lambda: pt.make_period(2), ("a", "b"), 6, "broadcast pattern selector-width",
          generate=samplers.periodic(("a", "b"), 2)),
        e("count_ab", "how many times ab occurs, everywhere", lambda: pt.make_count_bigram("ab"),
          ABC, 6, "broadcast counting pattern selector-width"),
        e("starts_with_ab", "True everywhere iff the input starts with ab",
          lambda: pt.make_starts_with("ab"), ABC, 6, "broadcast pattern selector-width uses-length",
          generate=samplers.with_pattern(ABC, "ab")),
        e("ends_with_ba", "True everywhere iff the input ends with ba",
          lambda: pt.make_ends_with("ba"), ABC, 6, "broadcast pattern selector-width uses-length",
          generate=samplers.with_pattern(ABC, "ba")),
        e("bigram_seen", "True where the bigram ending here ended somewhere before",
          pt.make_bigram_seen, ("a", "b"), 6, "causal pattern selector-width"),
        e("count_runs", "how many runs of equal tokens the input has, everywhere",
          pt.make_count_runs, ABC, 6, "broadcast counting pattern selector-width"),
        e("run_length", "how long the run of equal tokens ending here is",
          pt.make_run_length, ("a", "b"), 6, "causal counting mlp-heavy pattern selector-width"),
        e("first_ab_end", "the index where ab first ends, everywhere",
          lambda: pt.make_first_bigram_end("ab"), ABC, 6,
          "broadcast mlp-heavy pattern selector-width",
          generate=samplers.with_pattern(ABC, "ab")),
    ]


def brackets() -> list[ProgramSpec]:
    e = _entry("brackets")
    parens = ("(", ")")
    with_noise = ("(", ")", "a")
    gen = samplers.brackets(["()"])
    noisy = samplers.brackets(["()"], noise=["a"])
    return [
        e("depth", "nesting depth after each position (opening minus closing so far)",
          br.make_depth, with_noise, 6, "causal dyck mlp-heavy selector-width", generate=noisy),
        e("max_depth", "the deepest nesting reached, everywhere", br.make_max_depth,
          parens, 8, "broadcast dyck mlp-heavy selector-width", generate=gen),
        e("unmatched_closers", "how many closing brackets have no partner, everywhere",
          br.make_unmatched_closers, parens, 8,
          "broadcast dyck mlp-heavy selector-width", generate=gen),
        e("unmatched_openers", "how many opening brackets are never closed, everywhere",
          br.make_unmatched_openers, parens, 8,
          "broadcast dyck mlp-heavy selector-width", generate=gen),
        e("balanced", "True everywhere iff balanced, counted with selector widths",
          br.make_balanced, with_noise, 6,
          "broadcast dyck mlp-heavy selector-width", generate=noisy),
        e("balanced_prefix", "True where the input up to here is balanced",
          br.make_balanced_prefix, parens, 8, "causal dyck mlp-heavy selector-width", generate=gen),
        e("first_break", "the index of the first unmatched closing bracket, everywhere",
          br.make_first_break, parens, 8, "broadcast dyck mlp-heavy selector-width", generate=gen),
        e("top_level_groups", "how many top-level bracket groups close, everywhere",
          br.make_count_top_level, parens, 8,
          "broadcast counting dyck mlp-heavy selector-width", generate=gen),
    ]


def _pointers_inside(xs: Sequence) -> bool:
    return all(isinstance(x, int) and 0 <= x < len(xs) for x in xs)


def _permutation(xs: Sequence) -> bool:
    return sorted(xs) == list(range(len(xs)))


def _letter_pointers_inside(xs: Sequence) -> bool:
    return all(int(t[1]) < len(xs) for t in xs)


def pointers() -> list[ProgramSpec]:
    e = _entry("pointers")
    positions = (0, 1, 2, 3, 4)
    inside = {"valid": _pointers_inside, "generate": samplers.positions(), "min_len": 2}
    letter_offsets = tuple(f"{c}{d}" for c in "ab" for d in range(3))
    letter_pointers = tuple(f"{c}{d}" for c in "ab" for d in range(4))
    return [
        e("reach_3", "the position reached after three pointer hops",
          lambda: pn.make_follow(3), positions, 5, "attention-only copying", **inside),
        e("fixed_point", "True where the position points to itself", pn.make_is_fixed_point,
          positions, 5, "causal", **inside),
        e("in_degree", "how many positions point here", pn.make_in_degree, positions, 5,
          "counting selector-width", **inside),
        e("pointed_to", "True where some position points here", pn.make_is_pointed_to,
          positions, 5, "selector-width", **inside),
        e("returns_in_2", "True where two pointer hops lead back here", pn.make_two_cycle,
          positions, 5, "", **inside),
        e("inverse_permutation", "the inverse of a permutation of the positions",
          pn.make_inverse_permutation, positions, 5, "attention-only copying",
          valid=_permutation, generate=samplers.permutations(), min_len=2),
        e("offset_lookup", "tokens are letter+offset: the letter that many places back",
          pn.make_offset_lookup, letter_offsets, 4, "causal copying"),
        e("fetch_letter", "tokens are letter+pointer: the letter at the pointed position",
          pn.make_fetch_letter, letter_pointers, 4, "copying",
          valid=_letter_pointers_inside, generate=samplers.letter_pointers("ab")),
        e("self_loops", "how many positions point to themselves, everywhere",
          pn.make_count_self_loops, positions, 5, "broadcast counting selector-width", **inside),
        e("points_to_max", "True where the pointed position holds the largest pointer",
          pn.make_pointer_to_max, positions, 5, "selector-width", **inside),
    ]


def means() -> list[ProgramSpec]:
    e = _entry("means")
    nums = (0, 1, 2, 3)
    return [
        e("mean_token", "the mean token value, everywhere", mn.make_mean_token, nums, 5,
          "beyond-tracr broadcast non-binary-mean numerical"),
        e("frac_above_1", "fraction of tokens above 1, everywhere",
          lambda: mn.make_frac_where(lambda t: t > 1, "frac_above_1"), nums, 5,
          "broadcast counting numerical"),
        e("suffix_frac_a", "fraction of a from here to the end",
          lambda: mn.make_suffix_frac("a"), ABC, 6, "counting numerical"),
        e("window_mean", "mean of this token and the one before", mn.make_window_mean,
          nums, 5, "beyond-tracr causal non-binary-mean numerical"),
        e("above_mean", "True where the token exceeds the mean token", mn.make_above_mean,
          nums, 5, "beyond-tracr non-binary-mean numerical"),
        e("half_a", "1 everywhere iff at least half the tokens are a, else 0",
          lambda: mn.make_at_least_half("a"), ABC, 6, "broadcast counting numerical"),
        e("mean_even_positions", "mean token over the even positions, everywhere",
          mn.make_mean_even_positions, nums, 5, "beyond-tracr broadcast non-binary-mean numerical"),
        e("mean_ceil", "the mean token rounded up, everywhere", mn.make_mean_ceil, nums, 5,
          "beyond-tracr broadcast non-binary-mean numerical"),
        e("deviation", "each token minus the mean token", mn.make_deviation, nums, 5,
          "beyond-tracr non-binary-mean numerical"),
        e("frac_smaller", "fraction of positions holding a smaller token",
          mn.make_frac_smaller, nums, 5, "counting selector-width uses-length"),
        e("mostly_a", "True where more than half the tokens so far are a",
          lambda: mn.make_prefix_frac_above("a", 0.5), ABC, 6, "causal counting numerical"),
    ]


def copying() -> list[ProgramSpec]:
    e = _entry("copying")
    return [
        e("copy_token_1", "the second token, everywhere", lambda: cp.make_copy_at(1), ABC, 6,
          "attention-only broadcast copying"),
        e("pair_leader", "the token at the even position of each pair", cp.make_pair_leader,
          ABC, 6, "attention-only causal copying"),
        e("repeat_first_half", "the first half written again", cp.make_repeat_first_half,
          ABC, 6, "copying selector-width uses-length"),
        e("echo_2", "the token two places back, the current one near the start",
          lambda: cp.make_echo(2), ABC, 6, "causal copying"),
        e("induction_first", "the token after the first occurrence of the current token",
          cp.make_induction_first, ABC, 6, "causal copying induction mlp-heavy selector-width"),
        e("induction_before", "the token before the previous occurrence of the current token",
          cp.make_induction_before, ABC, 6, "copying induction selector-width"),
        e("bigram_induction", "the token after the previous occurrence of the current bigram",
          cp.make_bigram_induction, ("a", "b"), 6, "causal copying induction selector-width"),
        e("last_a_position", "the index of the last a so far",
          lambda: cp.make_last_position_of("a"), ABC, 6, "causal copying mlp-heavy selector-width"),
        e("copy_after_a", "the token right after the first a, everywhere",
          lambda: cp.make_copy_after("a"), ABC, 6, "broadcast copying selector-width"),
    ]


def all_family_specs() -> list[ProgramSpec]:
    """Every task-family entry, family by family."""
    return [spec for family in FAMILY_ENTRIES for spec in family()]


FAMILY_ENTRIES = (strings, counting, sorting, arithmetic, pattern, brackets, pointers,
                  means, copying)
