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

REFERENCE = {**STRINGS, **COUNTING, **SORTING, **ARITHMETIC}
