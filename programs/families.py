"""The library entries of the task families (strings, counting, sorting, arithmetic,
pattern, brackets, pointers, means, copying), one function per family.

Sizes stay small (vocabularies of 2-6 tokens, lengths up to 4-6) so every entry compiles
in milliseconds and its exactness check stays cheap. Tags come from the fixed vocabulary
in :mod:`.spec`; the structural ones, ``causal`` and ``beyond-tracr`` are checked against
the program by the tests.
"""

from __future__ import annotations

from collections.abc import Sequence

from rasplab.compiler import rasp

from . import samplers
from . import arithmetic as ar
from . import counting as ct
from . import digits as dg
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
          sg.make_halves_equal, ("a", "b"), 6, "broadcast mlp-heavy pattern selector-width uses-length",
          generate=samplers.repeated_halves(("a", "b"))),
        e("riffle", "the two halves interleaved", sg.make_riffle, ABC, 6, "copying selector-width uses-length"),
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
          ct.make_count_earlier_smaller, (1, 2, 3), 6, "beyond-tracr causal composite-selector counting selector-width"),
    ]


def _distinct(xs: Sequence) -> bool:
    return len(set(xs)) == len(xs)


def sorting() -> list[ProgramSpec]:
    e = _entry("sorting")
    nums = (1, 2, 3, 4)
    return [
        e("sort_parity", "even tokens first, then odd ones, each in input order",
          lambda: so.make_sort_by(lambda t: t % 2, "sort_parity"), (0, 1, 2, 3), 5, "selector-width sorting"),
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
          lambda: dg.make_add_columns(3), digits3, 4, "arithmetic causal mlp-heavy numerical selector-width"),
        e("binary_subtract", "a - b of binary columns 'ab' (wrapping), LSB first",
          dg.make_binary_subtract, bits2, 5, "arithmetic causal mlp-heavy numerical selector-width"),
        e("greater_so_far", "whether a > b on the bits so far, columns 'ab', LSB first",
          dg.make_greater_so_far, bits2, 5, "arithmetic causal mlp-heavy numerical selector-width"),
        e("double_base3", "twice a base-3 number (wrapping), LSD first",
          lambda: dg.make_double(3), (0, 1, 2), 6, "arithmetic causal mlp-heavy numerical selector-width"),
        e("digit_sum_base3", "the sum of the base-3 digits, everywhere",
          lambda: dg.make_digit_sum(3), (0, 1, 2), 6, "arithmetic broadcast mlp-heavy selector-width"),
        e("prefix_sum_mod3", "the sum of the digits so far, mod 3",
          lambda: dg.make_prefix_sum_mod(3), (0, 1, 2), 6, "arithmetic causal mlp-heavy selector-width"),
        e("gray_code", "the Gray code of a binary number, LSB first", dg.make_gray_code,
          (0, 1), 8, "arithmetic selector-width"),
    ]


def all_family_specs() -> list[ProgramSpec]:
    """Every task-family entry, family by family."""
    return strings() + counting() + sorting() + arithmetic()
