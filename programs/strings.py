"""String manipulation: map letters, move them around, filter and compare halves.

Inputs are short strings over a few letters. Programs that drop tokens (filters,
de-duplication) move the kept ones to the front and leave None behind them.
"""

from __future__ import annotations

from rasplab.compiler import rasp

from .combinators import flag, pair, prefix_count, read_from, send_to
from .tracr_lib import make_length

UPPER = {"a": "A", "b": "B", "c": "C", "d": "D"}


def make_to_upper() -> rasp.SOp:
    """Each letter upper-cased (one MLP)."""
    return rasp.Map(lambda t: UPPER.get(t, t), rasp.tokens).named("to_upper")


def make_caesar(shift: int, alphabet: str) -> rasp.SOp:
    """Each letter moved ``shift`` places along ``alphabet``, wrapping around."""
    n = len(alphabet)
    table = {c: alphabet[(i + shift) % n] for i, c in enumerate(alphabet)}
    return rasp.Map(lambda t: table.get(t, t), rasp.tokens).named(f"caesar_{shift}")


def make_replace(old: str, new: str) -> rasp.SOp:
    """Every ``old`` replaced by ``new``."""
    return rasp.Map(lambda t: new if t == old else t, rasp.tokens).named(f"replace_{old}_{new}")


def make_capitalize() -> rasp.SOp:
    """The first letter upper-cased, the rest unchanged."""
    return rasp.SequenceMap(
        lambda t, i: UPPER.get(t, t) if i == 0 else t, rasp.tokens, rasp.indices
    ).named("capitalize")


def make_rotate_right() -> rasp.SOp:
    """The string rotated one place to the right: position i reads (i - 1) mod length."""
    source = rasp.SequenceMap(
        lambda i, n: (i - 1) % n if n else 0, rasp.indices, make_length()
    ).named("source_index")
    return read_from(source, rasp.tokens, "rotate_right")


def make_swap_ends() -> rasp.SOp:
    """The first and the last letter exchanged."""
    source = rasp.SequenceMap(
        lambda i, n: n - 1 if i == 0 else (0 if i == n - 1 else i), rasp.indices, make_length()
    ).named("source_index")
    return read_from(source, rasp.tokens, "swap_ends")


def make_stretch() -> rasp.SOp:
    """Each letter of the first half written twice: position i reads position i // 2."""
    select = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == q // 2)
    return rasp.Aggregate(select.named("half_select"), rasp.tokens).named("stretch")


def make_every_other() -> rasp.SOp:
    """The letters at even positions, moved to the front; None after them."""
    select = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == 2 * q)
    return rasp.Aggregate(select.named("double_select"), rasp.tokens).named("every_other")


def make_mirror_first_half() -> rasp.SOp:
    """The first half kept, the second half replaced by the first half mirrored."""
    source = rasp.SequenceMap(
        lambda i, n: n - 1 - i if 2 * i >= n else i, rasp.indices, make_length()
    ).named("source_index")
    return read_from(source, rasp.tokens, "mirror_first_half")


def make_filter_out(letter: str) -> rasp.SOp:
    """The string with every ``letter`` removed, the rest moved to the front."""
    keep = flag(rasp.tokens, lambda t: t != letter, "keep")
    kept_before = prefix_count(lambda t: t != letter, rasp.tokens, "kept_before", strict=True)
    target = rasp.SequenceMap(lambda k, c: c if k else -1, keep, kept_before).named("target")
    return send_to(target, rasp.tokens, f"filter_out_{letter}")


def make_dedupe_runs() -> rasp.SOp:
    """Each run of equal letters squeezed to one letter, moved to the front."""
    tok_idx = pair(rasp.tokens, rasp.indices, "tok_idx")
    repeats = rasp.Select(
        tok_idx, tok_idx, lambda k, q: k[0] == q[0] and k[1] == q[1] - 1
    ).named("same_as_prev")
    starts = rasp.Map(lambda w: w == 0, rasp.SelectorWidth(repeats).named("repeats_prev"))
    starts = starts.named("run_start")
    runs_before = prefix_count(bool, starts, "runs_before", strict=True)
    target = rasp.SequenceMap(lambda s, c: c if s else -1, starts, runs_before).named("target")
    return send_to(target, rasp.tokens, "dedupe_runs")


def make_halves_equal() -> rasp.SOp:
    """True everywhere iff the string is some word written twice (``abab``)."""
    length = make_length()
    partner = rasp.SequenceMap(
        lambda i, n: i + n // 2 if n % 2 == 0 and 2 * i < n else -1, rasp.indices, length
    ).named("partner_index")
    tok_partner = pair(rasp.tokens, partner, "tok_partner")
    tok_idx = pair(rasp.tokens, rasp.indices, "tok_idx")
    same = rasp.Select(tok_idx, tok_partner, lambda k, q: k == q).named("same_at_partner")
    matched = rasp.SelectorWidth(same).named("matched")
    is_first_half = rasp.SequenceMap(lambda i, n: 2 * i < n, rasp.indices, length)
    ok = rasp.SequenceMap(
        lambda m, f: m == 1 or not f, matched, is_first_half.named("first_half")
    ).named("half_ok")
    failing = rasp.Select(ok, ok, lambda k, q: not k).named("failing")
    fails = rasp.SelectorWidth(failing).named("fails")
    return rasp.SequenceMap(
        lambda f, n: f == 0 and n % 2 == 0, fails, length
    ).named("halves_equal")


def make_riffle() -> rasp.SOp:
    """The two halves interleaved: first-half letters at even, second-half ones at odd
    positions (the first half is the longer one)."""
    source = rasp.SequenceMap(
        lambda i, n: i // 2 if i % 2 == 0 else (n + 1) // 2 + i // 2, rasp.indices, make_length()
    ).named("source_index")
    return read_from(source, rasp.tokens, "riffle")
