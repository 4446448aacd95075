"""Pointer chasing: tokens are positions of the input (or carry an offset), and programs
follow, count or invert the pointers."""

from __future__ import annotations

from rasplab.compiler import rasp

from .combinators import count_where, read_from, send_to


def make_follow(hops: int) -> rasp.SOp:
    """The position reached from each position after ``hops`` hops (``i -> tokens[i]``,
    ``hops >= 2``)."""
    if hops < 2:
        raise ValueError(f"make_follow needs hops >= 2, got {hops}")
    target = rasp.tokens
    for hop in range(2, hops + 1):
        target = read_from(target, rasp.tokens, f"hop_{hop}")
    return target.named(f"reach_{hops}")


def make_is_fixed_point() -> rasp.SOp:
    """True where the position points to itself."""
    return rasp.SequenceMap(lambda t, i: t == i, rasp.tokens, rasp.indices).named("fixed_point")


def make_in_degree() -> rasp.SOp:
    """How many positions point here."""
    pointing = rasp.Select(rasp.tokens, rasp.indices, rasp.Comparison.EQ).named("points_here")
    return rasp.SelectorWidth(pointing).named("in_degree")


def make_is_pointed_to() -> rasp.SOp:
    """True where at least one position points here."""
    return rasp.Map(lambda d: d > 0, make_in_degree()).named("pointed_to")


def make_two_cycle() -> rasp.SOp:
    """True where following two pointers leads back here."""
    back = read_from(rasp.tokens, rasp.tokens, "hop_2")
    return rasp.SequenceMap(lambda b, i: b == i, back, rasp.indices).named("returns_in_2")


def make_inverse_permutation() -> rasp.SOp:
    """For a permutation of the positions: where each position's index is pointed from."""
    return send_to(rasp.tokens, rasp.indices, "inverse_permutation")


def make_offset_lookup() -> rasp.SOp:
    """Tokens are a letter and a backwards offset (``"b2"``): the letter ``offset``
    places back (None where that falls before the start)."""
    letter = rasp.Map(lambda t: t[0], rasp.tokens).named("letter")
    source = rasp.SequenceMap(lambda t, i: i - int(t[1]), rasp.tokens, rasp.indices).named(
        "source_index"
    )
    return read_from(source, letter, "offset_lookup")


def make_fetch_letter() -> rasp.SOp:
    """Tokens are a letter and a pointer (``"a2"``): the letter at the pointed position."""
    letter = rasp.Map(lambda t: t[0], rasp.tokens).named("letter")
    pointer = rasp.Map(lambda t: int(t[1]), rasp.tokens).named("pointer")
    return read_from(pointer, letter, "fetch_letter")


def make_count_self_loops() -> rasp.SOp:
    """How many positions point to themselves, everywhere."""
    fixed = make_is_fixed_point()
    return count_where(bool, fixed, "self_loops")


def make_pointer_to_max() -> rasp.SOp:
    """Tokens are pointers; True where this pointer's target holds the largest pointer
    value of the input."""
    target_value = read_from(rasp.tokens, rasp.tokens, "target_value")
    larger = rasp.Select(rasp.tokens, target_value, rasp.Comparison.GT).named("larger_exists")
    beaten = rasp.SelectorWidth(larger).named("n_larger")
    return rasp.Map(lambda n: n == 0, beaten).named("points_to_max")
