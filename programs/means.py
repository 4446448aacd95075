"""Numerical means and thresholds: fractions of positions, means of token values over
windows and subsets, and categorical decisions on them.

Means of 0/1 flags are what tracr compiles; means of other values are marked
``non-binary-mean`` in the library.
"""

from __future__ import annotations

from rasplab.compiler import rasp

from .combinators import numerical_flag, select_all, select_prefix
from .tracr_lib import make_length


def _value(name: str = "value") -> rasp.SOp:
    return rasp.numerical(rasp.Map(lambda t: t, rasp.tokens)).named(name)


def _mean(selector: rasp.Selector, values: rasp.SOp, name: str) -> rasp.SOp:
    return rasp.numerical(rasp.Aggregate(selector, values, default=0)).named(name)


def make_mean_token() -> rasp.SOp:
    """The mean token value, everywhere."""
    return _mean(select_all(), _value(), "mean_token")


def make_frac_where(test, name: str) -> rasp.SOp:
    """Fraction of positions whose token passes ``test``, everywhere."""
    return _mean(select_all(), numerical_flag(rasp.tokens, test, f"{name}_flag"), name)


def make_suffix_frac(letter: str) -> rasp.SOp:
    """Fraction of ``letter`` among this position and the ones after it."""
    later = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.GEQ).named("from_here")
    flag = numerical_flag(rasp.tokens, lambda t: t == letter, f"is_{letter}")
    return _mean(later, flag, f"suffix_frac_{letter}")


def make_window_mean() -> rasp.SOp:
    """Mean of this token and the one before it (just this one at position 0)."""
    window = rasp.Select(rasp.indices, rasp.indices, lambda k, q: q - 1 <= k <= q)
    return _mean(window.named("window"), _value(), "window_mean")


def make_above_mean() -> rasp.SOp:
    """True where the token is larger than the mean token."""
    mean = rasp.Map(lambda m: m, make_mean_token()).named("mean_category")
    return rasp.SequenceMap(lambda t, m: t > m + 1e-9, rasp.tokens, mean).named("above_mean")


def make_at_least_half(letter: str) -> rasp.SOp:
    """1 everywhere iff at least half the tokens are ``letter``, else 0."""
    frac = make_frac_where(lambda t: t == letter, f"frac_{letter}")
    return rasp.Map(lambda f: 1 if f >= 0.5 - 1e-9 else 0, frac).named(f"half_{letter}")


def make_mean_even_positions() -> rasp.SOp:
    """Mean token value over the even positions, everywhere."""
    even = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k % 2 == 0).named("even_keys")
    return _mean(even, _value(), "mean_even_positions")


def make_mean_ceil() -> rasp.SOp:
    """The mean token value rounded up, everywhere."""
    mean = make_mean_token()
    return rasp.Map(lambda m: -int(-m // 1) if abs(m - round(m)) > 1e-9 else round(m), mean).named(
        "mean_ceil"
    )


def make_deviation() -> rasp.SOp:
    """Each token minus the mean token (numerical)."""
    return rasp.numerical(
        rasp.LinearSequenceMap(_value("own_value"), make_mean_token(), 1, -1)
    ).named("deviation")


def make_frac_smaller() -> rasp.SOp:
    """Fraction of positions holding a smaller token."""
    smaller = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.LT).named("smaller")
    count = rasp.SelectorWidth(smaller).named("n_smaller")
    return rasp.SequenceMap(lambda c, n: c / n if n else 0, count, make_length()).named(
        "frac_smaller"
    )


def make_prefix_frac_above(letter: str, threshold: float) -> rasp.SOp:
    """True where more than ``threshold`` of the tokens so far are ``letter``."""
    flag = numerical_flag(rasp.tokens, lambda t: t == letter, f"is_{letter}")
    frac = _mean(select_prefix(), flag, f"prefix_frac_{letter}")
    return rasp.Map(lambda f: f > threshold, frac).named(f"mostly_{letter}")
