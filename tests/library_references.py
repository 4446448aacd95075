"""Plain-Python references for the task-family programs (``programs/families.py``).

Each maps an input list to the output list the program must give; the library tests
compare the interpreter with these on sampled inputs.
"""

from __future__ import annotations

from collections import Counter


def everywhere(value, xs: list) -> list:
    return [value] * len(xs)


def _upper(t):
    return t.upper() if isinstance(t, str) else t


def _compact(kept: list, n: int) -> list:
    return kept + [None] * (n - len(kept))


def _swap_ends(xs: list) -> list:
    ys = list(xs)
    ys[0], ys[-1] = xs[-1], xs[0]
    return ys


def _dedupe(xs: list) -> list:
    kept = [x for i, x in enumerate(xs) if i == 0 or xs[i - 1] != x]
    return _compact(kept, len(xs))


def _riffle(xs: list) -> list:
    h = (len(xs) + 1) // 2
    first, second = xs[:h], xs[h:]
    return [first[i // 2] if i % 2 == 0 else second[i // 2] for i in range(len(xs))]


STRINGS = {
    "to_upper": lambda xs: [_upper(x) for x in xs],
    "caesar_1": lambda xs: ["abcd"[("abcd".index(x) + 1) % 4] for x in xs],
    "replace_a_b": lambda xs: ["b" if x == "a" else x for x in xs],
    "capitalize": lambda xs: [_upper(x) if i == 0 else x for i, x in enumerate(xs)],
    "rotate_right": lambda xs: xs[-1:] + xs[:-1],
    "swap_ends": _swap_ends,
    "stretch": lambda xs: [xs[i // 2] for i in range(len(xs))],
    "every_other": lambda xs: _compact(xs[::2], len(xs)),
    "mirror_first_half": lambda xs: [
        xs[len(xs) - 1 - i] if 2 * i >= len(xs) else xs[i] for i in range(len(xs))
    ],
    "filter_out_a": lambda xs: _compact([x for x in xs if x != "a"], len(xs)),
    "dedupe_runs": _dedupe,
    "halves_equal": lambda xs: everywhere(
        len(xs) % 2 == 0 and xs[: len(xs) // 2] == xs[len(xs) // 2 :], xs
    ),
    "riffle": _riffle,
}



COUNTING = {
    "count_in_ab": lambda xs: everywhere(sum(x in "ab" for x in xs), xs),
    "count_greater": lambda xs: [sum(y > x for y in xs) for x in xs],
    "count_same_as_first": lambda xs: everywhere(xs.count(xs[0]), xs),
    "count_fixed_points": lambda xs: everywhere(sum(x == i for i, x in enumerate(xs)), xs),
    "running_hist": lambda xs: [xs[: i + 1].count(x) for i, x in enumerate(xs)],
    "count_repeats": lambda xs: everywhere(
        sum(xs[i] == xs[i - 1] for i in range(1, len(xs))), xs
    ),
    "max_frequency": lambda xs: everywhere(max(Counter(xs).values()), xs),
    "distinct_so_far": lambda xs: [len(set(xs[: i + 1])) for i in range(len(xs))],
    "count_unique": lambda xs: everywhere(sum(xs.count(x) == 1 for x in xs), xs),
    "count_a_minus_b": lambda xs: everywhere(xs.count("a") - xs.count("b"), xs),
    "is_repeated": lambda xs: [xs.count(x) >= 2 for x in xs],
    "count_earlier_smaller": lambda xs: [sum(y < x for y in xs[:i]) for i, x in enumerate(xs)],
}


def _stable_order(xs: list, descending: bool = False) -> list[int]:
    sign = -1 if descending else 1
    return sorted(range(len(xs)), key=lambda i: (sign * xs[i], i))


SORTING = {
    "sort_parity": lambda xs: [xs[i] for i in sorted(range(len(xs)), key=lambda i: (xs[i] % 2, i))],
    "sort_descending": lambda xs: sorted(xs, reverse=True),
    "argsort": _stable_order,
    "sort_rank": lambda xs: [_stable_order(xs).index(i) for i in range(len(xs))],
    "min_token": lambda xs: everywhere(min(xs), xs),
    "argmax": lambda xs: everywhere(xs.index(max(xs)), xs),
    "median": lambda xs: everywhere(sorted(xs)[(len(xs) - 1) // 2], xs),
    "is_sorted": lambda xs: everywhere(xs == sorted(xs), xs),
    "sort_unique_descending": lambda xs: sorted(xs, reverse=True),
    "second_largest": lambda xs: everywhere(
        sorted(xs, reverse=True)[1] if len(xs) > 1 else None, xs
    ),
    "frac_sorted_pairs": lambda xs: everywhere(
        sum(i == 0 or xs[i - 1] <= xs[i] for i in range(len(xs))) / len(xs), xs
    ),
}


def _value(digits: list, base: int) -> int:
    return sum(d * base**i for i, d in enumerate(digits))


def _digits(value: int, base: int, n: int) -> list:
    return [(value // base**i) % base for i in range(n)]


def _columns(xs: list) -> tuple[list, list]:
    return [int(t[0]) for t in xs], [int(t[1]) for t in xs]


def _add_columns(xs: list, base: int) -> list:
    a, b = _columns(xs)
    return _digits(_value(a, base) + _value(b, base), base, len(xs))


def _subtract(xs: list) -> list:
    a, b = _columns(xs)
    return _digits(_value(a, 2) - _value(b, 2), 2, len(xs))


def _greater_so_far(xs: list) -> list:
    a, b = _columns(xs)
    return [_value(a[: i + 1], 2) > _value(b[: i + 1], 2) for i in range(len(xs))]


ARITHMETIC = {
    "increment_base2": lambda xs: _digits(_value(xs, 2) + 1, 2, len(xs)),
    "decrement_base3": lambda xs: _digits(_value(xs, 3) - 1, 3, len(xs)),
    "add_base3": lambda xs: _add_columns(xs, 3),
    "binary_subtract": _subtract,
    "greater_so_far": _greater_so_far,
    "double_base3": lambda xs: _digits(2 * _value(xs, 3), 3, len(xs)),
    "digit_sum_base3": lambda xs: everywhere(sum(xs), xs),
    "prefix_sum_mod3": lambda xs: [sum(xs[: i + 1]) % 3 for i in range(len(xs))],
    "gray_code": lambda xs: _digits(_value(xs, 2) ^ (_value(xs, 2) >> 1), 2, len(xs)),
}


def _run_lengths(xs: list) -> list:
    out = []
    for i, x in enumerate(xs):
        out.append(out[-1] + 1 if i and xs[i - 1] == x else 1)
    return out


def _first_end(xs: list, bigram: str):
    ends = [i for i in range(1, len(xs)) if xs[i - 1] + xs[i] == bigram]
    return ends[0] if ends else None


PATTERN = {
    "repeat_here": lambda xs: [i > 0 and xs[i - 1] == x for i, x in enumerate(xs)],
    "alternating": lambda xs: everywhere(all(a != b for a, b in zip(xs, xs[1:])), xs),
    "period_2": lambda xs: everywhere(all(xs[i] == xs[i - 2] for i in range(2, len(xs))), xs),
    "count_ab": lambda xs: everywhere("".join(xs).count("ab"), xs),
    "starts_with_ab": lambda xs: everywhere(xs[:2] == ["a", "b"], xs),
    "ends_with_ba": lambda xs: everywhere(xs[-2:] == ["b", "a"], xs),
    "bigram_seen": lambda xs: [
        i > 0 and any(xs[j - 1 : j + 1] == xs[i - 1 : i + 1] for j in range(1, i))
        for i in range(len(xs))
    ],
    "count_runs": lambda xs: everywhere(
        sum(i == 0 or xs[i - 1] != xs[i] for i in range(len(xs))), xs
    ),
    "run_length": _run_lengths,
    "first_ab_end": lambda xs: everywhere(_first_end(xs, "ab"), xs),
}


def _depths(xs: list) -> list:
    out, d = [], 0
    for x in xs:
        d += (x == "(") - (x == ")")
        out.append(d)
    return out


def _first_break(xs: list):
    neg = [i for i, d in enumerate(_depths(xs)) if d < 0]
    return neg[0] if neg else None


def _top_level(xs: list) -> int:
    groups, broken = 0, False
    for x, d in zip(xs, _depths(xs)):
        broken = broken or d < 0
        groups += x == ")" and d == 0 and not broken
    return groups


def _balanced_prefix(xs: list) -> list:
    out, broken = [], False
    for d in _depths(xs):
        broken = broken or d < 0
        out.append(d == 0 and not broken)
    return out


BRACKETS = {
    "depth": _depths,
    "max_depth": lambda xs: everywhere(max(_depths(xs)), xs),
    "unmatched_closers": lambda xs: everywhere(max(0, -min(_depths(xs))), xs),
    "unmatched_openers": lambda xs: everywhere(
        _depths(xs)[-1] + max(0, -min(_depths(xs))), xs
    ),
    "balanced": lambda xs: everywhere(_balanced_prefix(xs)[-1], xs),
    "balanced_prefix": _balanced_prefix,
    "first_break": lambda xs: everywhere(_first_break(xs), xs),
    "top_level_groups": lambda xs: everywhere(_top_level(xs), xs),
}


def _reach(xs: list, hops: int) -> list:
    out = []
    for i in range(len(xs)):
        for _ in range(hops):
            i = xs[i]
        out.append(i)
    return out


def _offset_lookup(xs: list) -> list:
    return [xs[i - int(t[1])][0] if i - int(t[1]) >= 0 else None for i, t in enumerate(xs)]


POINTERS = {
    "reach_3": lambda xs: _reach(xs, 3),
    "fixed_point": lambda xs: [x == i for i, x in enumerate(xs)],
    "in_degree": lambda xs: [xs.count(i) for i in range(len(xs))],
    "pointed_to": lambda xs: [i in xs for i in range(len(xs))],
    "returns_in_2": lambda xs: [xs[xs[i]] == i for i in range(len(xs))],
    "inverse_permutation": lambda xs: [xs.index(i) for i in range(len(xs))],
    "offset_lookup": _offset_lookup,
    "fetch_letter": lambda xs: [xs[int(t[1])][0] for t in xs],
    "self_loops": lambda xs: everywhere(sum(x == i for i, x in enumerate(xs)), xs),
    "points_to_max": lambda xs: [xs[x] == max(xs) for x in xs],
}


def _mean(xs: list) -> float:
    return sum(xs) / len(xs)


MEANS = {
    "mean_token": lambda xs: everywhere(_mean(xs), xs),
    "frac_above_1": lambda xs: everywhere(sum(x > 1 for x in xs) / len(xs), xs),
    "suffix_frac_a": lambda xs: [xs[i:].count("a") / (len(xs) - i) for i in range(len(xs))],
    "window_mean": lambda xs: [_mean(xs[max(0, i - 1) : i + 1]) for i in range(len(xs))],
    "above_mean": lambda xs: [x > _mean(xs) + 1e-9 for x in xs],
    "half_a": lambda xs: everywhere(int(2 * xs.count("a") >= len(xs)), xs),
    "mean_even_positions": lambda xs: everywhere(_mean(xs[::2]), xs),
    "mean_ceil": lambda xs: everywhere(-(-sum(xs) // len(xs)), xs),
    "deviation": lambda xs: [x - _mean(xs) for x in xs],
    "frac_smaller": lambda xs: [sum(y < x for y in xs) / len(xs) for x in xs],
    "mostly_a": lambda xs: [xs[: i + 1].count("a") / (i + 1) > 0.5 for i in range(len(xs))],
}



def _induction_first(xs: list) -> list:
    return [xs[xs.index(x) + 1] if xs.index(x) < i else None for i, x in enumerate(xs)]


def _induction_before(xs: list) -> list:
    out = []
    for i, x in enumerate(xs):
        earlier = [k for k in range(i) if xs[k] == x]
        out.append(xs[earlier[-1] - 1] if earlier and earlier[-1] > 0 else None)
    return out


def _bigram_induction(xs: list) -> list:
    out = []
    for i in range(len(xs)):
        hits = [j for j in range(1, i) if i > 0 and xs[j - 1 : j + 1] == xs[i - 1 : i + 1]]
        out.append(xs[hits[-1] + 1] if hits else None)
    return out


def _last_position(xs: list, letter: str) -> list:
    out, last = [], None
    for i, x in enumerate(xs):
        last = i if x == letter else last
        out.append(last)
    return out


def _copy_after(xs: list, letter: str) -> list:
    at = xs.index(letter) if letter in xs else None
    return everywhere(xs[at + 1] if at is not None and at + 1 < len(xs) else None, xs)


COPYING = {
    "copy_token_1": lambda xs: everywhere(xs[1] if len(xs) > 1 else None, xs),
    "pair_leader": lambda xs: [xs[i - i % 2] for i in range(len(xs))],
    "repeat_first_half": lambda xs: [xs[i % ((len(xs) + 1) // 2)] for i in range(len(xs))],
    "echo_2": lambda xs: [xs[i - 2] if i >= 2 else x for i, x in enumerate(xs)],
    "induction_first": _induction_first,
    "induction_before": _induction_before,
    "bigram_induction": _bigram_induction,
    "last_a_position": lambda xs: _last_position(xs, "a"),
    "copy_after_a": lambda xs: _copy_after(xs, "a"),
}

REFERENCE = {
    **STRINGS, **COUNTING, **SORTING, **ARITHMETIC, **PATTERN, **BRACKETS, **POINTERS, **MEANS,
    **COPYING,
}
