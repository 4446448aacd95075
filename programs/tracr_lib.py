"""The programs of tracr's ``compiler/lib.py``, rewritten with the same names and behaviour.

Each builder returns a fresh program (no module-level shared SOps), so two programs never
share, or rename, each other's nodes. Variables are named as tracr names them; where
tracr would give two nodes of one program the same name (``make_shuffle_dyck`` with
several pairs), the names here get a suffix so every name in a program is unique.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rasplab.compiler import rasp


def make_length() -> rasp.SOp:
    """The input length at every position: the width of an all-true selector."""
    all_true = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE)
    return rasp.SelectorWidth(all_true.named("all_true_selector")).named("length")


def make_reverse(sop: rasp.SOp) -> rasp.SOp:
    """``sop`` read backwards: position ``i`` reads position ``length - i - 1``."""
    opp_idx = (make_length() - rasp.indices).named("opp_idx")
    opp_idx = (opp_idx - 1).named("opp_idx-1")
    flip = rasp.Select(rasp.indices, opp_idx, rasp.Comparison.EQ).named("reverse_selector")
    return rasp.Aggregate(flip, sop).named("reverse")


def make_hist() -> rasp.SOp:
    """How many times the token at each position occurs in the whole input."""
    same_tok = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ).named("same_tok")
    return rasp.SelectorWidth(same_tok).named("hist")


def make_sort_unique(vals: rasp.SOp, keys: rasp.SOp) -> rasp.SOp:
    """``vals`` ordered by ascending ``keys``; the keys must be pairwise different.

    Each position counts the keys smaller than its own (its target position), and each
    output position fetches the value whose target it is.
    """
    smaller = rasp.Select(keys, keys, rasp.Comparison.LT).named("smaller")
    target_pos = rasp.SelectorWidth(smaller).named("target_pos")
    fetch = rasp.Select(target_pos, rasp.indices, rasp.Comparison.EQ).named("sel_new")
    return rasp.Aggregate(fetch, vals).named("sort")


def make_sort(vals: rasp.SOp, keys: rasp.SOp, *, max_seq_len: int, min_key: float) -> rasp.SOp:
    """``vals`` ordered by ``keys``, which may repeat; ties keep input order.

    tracr's trick instead of a composite tie-breaking selector: the key at index ``i``
    becomes ``key + min_key * i / max_seq_len``, unique when ``min_key`` is at most the
    smallest gap between distinct keys.
    """
    unique_keys = rasp.SequenceMap(
        lambda k, i: k + min_key * i / max_seq_len, keys, rasp.indices
    ).named("unique_keys")
    return make_sort_unique(vals, unique_keys)


def make_sort_freq(max_seq_len: int) -> rasp.SOp:
    """Tokens ordered by descending frequency; equally frequent ones keep input order."""
    neg_hist = (-1 * make_hist()).named("neg_hist")
    return make_sort(rasp.tokens, neg_hist, max_seq_len=max_seq_len, min_key=1).named(
        "sort_freq"
    )


def make_frac_prevs(bools: rasp.SOp) -> rasp.SOp:
    """Fraction of positions up to and including each one where ``bools`` is true.

    Marks ``bools`` numerical (in place, as tracr does) and takes its numerical mean over
    the prefix, with default 0.
    """
    bools = rasp.numerical(bools)
    prevs = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ)
    return rasp.numerical(rasp.Aggregate(prevs, bools, default=0)).named("frac_prevs")


def _pair_balance(sop: rasp.SOp, open_token: str, close_token: str, suffix: str) -> rasp.SOp:
    bools_open = rasp.numerical(sop == open_token).named(f"bools_open{suffix}")
    opens = rasp.numerical(make_frac_prevs(bools_open)).named(f"opens{suffix}")
    bools_close = rasp.numerical(sop == close_token).named(f"bools_close{suffix}")
    closes = rasp.numerical(make_frac_prevs(bools_close)).named(f"closes{suffix}")
    balance = rasp.numerical(rasp.LinearSequenceMap(opens, closes, 1, -1))
    return balance.named(f"pair_balance{suffix}")


def make_pair_balance(sop: rasp.SOp, open_token: str, close_token: str) -> rasp.SOp:
    """Fraction of opening minus fraction of closing tokens in each prefix (RASP paper).

    The input is balanced when this is never negative and is 0 at the last position.
    """
    return _pair_balance(sop, open_token, close_token, "")


def make_shuffle_dyck(pairs: list[str]) -> rasp.SOp:
    """True everywhere when every bracket type of ``pairs`` is balanced on its own.

    ``pairs`` holds two-character strings, opening then closing token (``["()", "{}"]``).
    Types may interleave freely (``"({)}"`` is accepted): this is shuffle-Dyck.
    """
    if not pairs:
        raise ValueError("make_shuffle_dyck needs at least one pair of brackets")
    balances = []
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"a bracket pair is two characters, got {pair!r}")
        suffix = f"_{pair}" if len(pairs) > 1 else ""
        balance = _pair_balance(rasp.tokens, pair[0], pair[1], suffix)
        balances.append(balance.named(f"balance_{pair}"))

    any_negative = balances[0] < 0
    for balance in balances[1:]:
        any_negative = any_negative | (balance < 0)
    any_negative = rasp.numerical(rasp.Map(lambda x: x, any_negative)).named("any_negative")

    everywhere = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.TRUE)
    everywhere = everywhere.named("select_all")
    has_neg = rasp.numerical(rasp.Aggregate(everywhere, any_negative, default=0)).named("has_neg")

    all_zero = balances[0] == 0
    for balance in balances[1:]:
        all_zero = all_zero & (balance == 0)
    all_zero = all_zero.named("all_zero")

    last = (make_length() - 1).named("last_index")
    select_last = rasp.Select(rasp.indices, last, rasp.Comparison.EQ).named("select_last")
    last_zero = rasp.Aggregate(select_last, all_zero).named("last_zero")

    not_has_neg = (~has_neg).named("not_has_neg")
    return (last_zero & not_has_neg).named("shuffle_dyck")


def make_shuffle_dyck2() -> rasp.SOp:
    """Shuffle-Dyck over ``()`` and ``{}``."""
    return make_shuffle_dyck(pairs=["()", "{}"]).named("shuffle_dyck2")


def shift_by(offset: int, /, sop: rasp.SOp) -> rasp.SOp:
    """``sop`` moved ``offset`` positions later; the first ``offset`` positions are None."""
    select = rasp.Select(rasp.indices, rasp.indices, lambda k, q: q == k + offset)
    return rasp.Aggregate(select.named(f"select_off_by_{offset}"), sop, default=None).named(
        f"shift_by({offset})"
    )


def detect_pattern(sop: rasp.SOp, pattern: Sequence[rasp.Value]) -> rasp.SOp:
    """True where ``pattern`` ends at this position in ``sop``.

    The first ``len(pattern) - 1`` positions are None. One detector per pattern element,
    each shifted to the pattern's end, joined with ``&``.
    """
    if len(pattern) < 1:
        raise ValueError(f"detect_pattern needs a pattern of length >= 1, got {pattern!r}")
    detectors = []
    for back, element in enumerate(reversed(pattern)):
        detector = sop == element
        detectors.append(shift_by(back, detector) if back else detector)
    detected = detectors.pop()
    while detectors:
        detected = detected & detectors.pop()
    return detected.named(f"detect_pattern({''.join(map(str, pattern))})")


def make_count_less_freq(n: int) -> rasp.SOp:
    """How many positions hold a token that occurs at most ``n`` times.

    tracr's docstring says "fewer than n", its code (and this one) compares ``<= n``.
    """
    hist = make_hist()
    select_less = rasp.Select(hist, hist, lambda k, q: k <= n).named("select_less")
    return rasp.SelectorWidth(select_less).named("count_less_freq")


def make_count(sop: rasp.SOp, token: rasp.Value) -> rasp.SOp:
    """How many positions of ``sop`` equal ``token``, at every position."""
    select = rasp.Select(sop, sop, lambda k, q: k == token).named(f"select_{token}")
    return rasp.SelectorWidth(select).named(f"count_{token}")


def make_nary_sequencemap(f: Callable[..., rasp.Value], *sops: rasp.SOp) -> rasp.SOp:
    """``f`` applied position-wise to any number of SOps.

    Binary SequenceMaps fold the inputs into a tuple, then a Map applies ``f``. The tuple
    variables are categorical over the product of their inputs' values, so they grow fast.
    """
    if not sops:
        raise ValueError("make_nary_sequencemap needs at least one SOp")
    packed, *rest = sops
    if not rest:
        return rasp.Map(f, packed)
    packed = rasp.SequenceMap(lambda a, b: (a, b), packed, rest[0])
    for sop in rest[1:]:
        packed = rasp.SequenceMap(lambda acc, b: (*acc, b), packed, sop)
    return rasp.Map(lambda args: f(*args), packed)
