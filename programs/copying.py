"""Induction and copying: heads that move tokens from a position chosen by index, by
content, or by an earlier occurrence of the current token or bigram."""

from __future__ import annotations

from rasplab.compiler import rasp

from .combinators import pair, prefix_count, read_from, read_offset
from .tracr_lib import make_length, shift_by


def make_copy_at(position: int) -> rasp.SOp:
    """The token at ``position``, everywhere (None if the input is shorter)."""
    select = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == position)
    return rasp.Aggregate(select.named(f"select_{position}"), rasp.tokens).named(
        f"copy_token_{position}"
    )


def make_pair_leader() -> rasp.SOp:
    """The token at the even position of each pair (2j for 2j and 2j + 1)."""
    select = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == q - q % 2)
    return rasp.Aggregate(select.named("select_leader"), rasp.tokens).named("pair_leader")


def make_repeat_first_half() -> rasp.SOp:
    """The first half written again: position i reads i mod ceil(length / 2)."""
    source = rasp.SequenceMap(
        lambda i, n: i % ((n + 1) // 2) if n else 0, rasp.indices, make_length()
    ).named("source_index")
    return read_from(source, rasp.tokens, "repeat_first_half")


def make_echo(back: int) -> rasp.SOp:
    """The token ``back`` places earlier, or the current token near the start."""
    source = rasp.Map(lambda i: i - back if i >= back else i, rasp.indices).named("source_index")
    return read_from(source, rasp.tokens, f"echo_{back}")


def _occurrences(strict: bool, name: str) -> rasp.SOp:
    tok_idx = pair(rasp.tokens, rasp.indices, f"{name}_tok_idx")
    if strict:
        pred = lambda k, q: k[0] == q[0] and k[1] < q[1]
    else:
        pred = lambda k, q: k[0] == q[0] and k[1] <= q[1]
    return rasp.SelectorWidth(rasp.Select(tok_idx, tok_idx, pred).named(f"{name}_sel")).named(
        name
    )


def make_induction_first() -> rasp.SOp:
    """The token after the first occurrence of the current token, if that occurrence is
    earlier (None where the token is new)."""
    tok_idx = pair(rasp.tokens, rasp.indices, "tok_idx")
    earlier = _occurrences(True, "earlier_copies")
    first_marked = pair(rasp.tokens, earlier, "tok_copies")
    prev_marked = shift_by(1, first_marked).named("prev_tok_copies")
    after_first = rasp.Select(
        prev_marked, tok_idx, lambda k, q: k is not None and k[0] == q[0] and k[1] == 0
    ).named("after_first_occurrence")
    return _guarded(after_first, earlier, "induction_first")


def _guarded(select: rasp.Selector, earlier: rasp.SOp, name: str) -> rasp.SOp:
    """Aggregate ``select`` over tokens, None where the current token has no earlier copy."""
    read = rasp.Aggregate(select, rasp.tokens).named(f"{name}_read")
    return rasp.SequenceMap(lambda r, e: r if e > 0 else None, read, earlier).named(name)


def make_induction_before() -> rasp.SOp:
    """The token before the previous occurrence of the current token (None if there is
    no previous occurrence or it is at position 0)."""
    occurrence = _occurrences(True, "occurrence")
    tok_occ = pair(rasp.tokens, occurrence, "tok_occ")
    next_tok_occ = read_offset(1, tok_occ, "next_tok_occ")
    before_prev = rasp.Select(
        next_tok_occ, tok_occ,
        lambda k, q: k is not None and k[0] == q[0] and k[1] == q[1] - 1,
    ).named("before_prev_occurrence")
    return rasp.Aggregate(before_prev, rasp.tokens).named("induction_before")


def make_bigram_induction() -> rasp.SOp:
    """Two-token induction: the token that followed the previous occurrence of the bigram
    ending here (None where there is none)."""
    prev = read_offset(-1, rasp.tokens, "prev_token")
    bigram = pair(prev, rasp.tokens, "bigram")
    bigram_at = pair(bigram, rasp.indices, "bigram_at")
    seen = rasp.Select(
        bigram_at, bigram_at,
        lambda k, q: k is not None and q is not None and k[0] == q[0] and k[1] < q[1],
    ).named("same_bigram_before")
    occurrence = rasp.SelectorWidth(seen).named("bigram_occurrence")
    big_occ = pair(bigram, occurrence, "bigram_occ")
    prev_big_occ = read_offset(-1, big_occ, "prev_bigram_occ")
    after = rasp.Select(
        prev_big_occ, big_occ,
        lambda k, q: k is not None and q is not None and k[0] == q[0] and k[1] == q[1] - 1,
    ).named("after_prev_bigram")
    return rasp.Aggregate(after, rasp.tokens).named("bigram_induction")


def make_last_position_of(letter: str) -> rasp.SOp:
    """The index of the last ``letter`` so far (None before the first one)."""
    count = prefix_count(lambda t: t == letter, rasp.tokens, f"{letter}_so_far")
    is_letter = rasp.Map(lambda t: t == letter, rasp.tokens).named(f"is_{letter}")
    rank = pair(is_letter, count, f"{letter}_rank")
    select = rasp.Select(rank, count, lambda k, q: k[0] and k[1] == q).named(f"last_{letter}_sel")
    return rasp.Aggregate(select, rasp.indices).named(f"last_{letter}_position")


def make_copy_after(letter: str) -> rasp.SOp:
    """The token right after the first ``letter``, everywhere (None if there is none)."""
    earlier = prefix_count(lambda t: t == letter, rasp.tokens, "earlier", strict=True)
    first = rasp.SequenceMap(
        lambda t, c: t == letter and c == 0, rasp.tokens, earlier
    ).named(f"first_{letter}")
    prev_first = shift_by(1, first).named(f"after_first_{letter}")
    select = rasp.Select(prev_first, rasp.indices, lambda k, q: bool(k)).named("select_after")
    return rasp.Aggregate(select, rasp.tokens).named(f"copy_after_{letter}")
