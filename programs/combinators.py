"""Small building blocks shared by the program builders.

Like every builder module, this one imports only ``rasp`` and uses only the public API
that tracr's ``rasp`` also has, so the builders run unchanged under tracr. Predicates
and maps that may meet a ``None`` (the output of an ``Aggregate`` that selected nothing)
check for it themselves instead of relying on how an interpreter treats ``None``.
"""

from __future__ import annotations

from collections.abc import Callable

from rasplab.compiler import rasp


def pair(fst: rasp.SOp, snd: rasp.SOp, name: str) -> rasp.SOp:
    """The tuple ``(fst, snd)`` at every position, as one categorical SOp.

    Selects read one key SOp and one query SOp; packing two variables into a tuple lets a
    single ``Select`` compare both (tracr cannot compile ``&`` of Selects over different
    SOps, but it can compile one Select over a tuple-valued SOp).
    """
    return rasp.SequenceMap(lambda a, b: (a, b), fst, snd).named(name)


def ones(name: str = "one") -> rasp.SOp:
    """The number 1 at every position, numerically encoded (tracr cannot compile ``Full``)."""
    return rasp.numerical(rasp.Map(lambda _x: 1, rasp.tokens)).named(name)


def flag(sop: rasp.SOp, test: Callable[[rasp.Value], bool], name: str) -> rasp.SOp:
    """Categorical boolean ``test(sop)``."""
    return rasp.Map(lambda x: bool(test(x)), sop).named(name)


def numerical_flag(sop: rasp.SOp, test: Callable[[rasp.Value], bool], name: str) -> rasp.SOp:
    """``test(sop)`` as a numerical 0/1 SOp, ready for a numerical mean."""
    return rasp.numerical(rasp.Map(lambda x: 1 if test(x) else 0, sop)).named(name)


def prefix_count(
    test: Callable[[rasp.Value], bool],
    sop: rasp.SOp,
    name: str,
    *,
    strict: bool = False,
) -> rasp.SOp:
    """How many positions ``k <= i`` (``k < i`` if ``strict``) have ``test(sop[k])``.

    One Select over the tuple ``(test(sop), index)`` as key and the index as query,
    followed by a SelectorWidth.
    """
    marked = pair(flag(sop, test, f"{name}_flag"), rasp.indices, f"{name}_at")
    if strict:
        select = rasp.Select(marked, rasp.indices, lambda k, q: k[0] and k[1] < q)
    else:
        select = rasp.Select(marked, rasp.indices, lambda k, q: k[0] and k[1] <= q)
    return rasp.SelectorWidth(select.named(f"{name}_select")).named(name)


def earlier_same_token() -> rasp.Selector:
    """Composite selector: earlier positions holding the same token.

    ``Select(tokens, tokens, EQ) & Select(indices, indices, LT)``: the two Selects read
    different SOps, so this stays a ``SelectorAnd`` (not compilable by tracr).
    """
    same = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ).named("same_token")
    earlier = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LT).named("earlier")
    return (same & earlier).named("earlier_same_token")


def earlier_same_token_tuple() -> rasp.Selector:
    """The selector of :func:`earlier_same_token` as one Select over ``(token, index)``."""
    tok_idx = pair(rasp.tokens, rasp.indices, "tok_idx")
    return rasp.Select(tok_idx, tok_idx, lambda k, q: k[0] == q[0] and k[1] < q[1]).named(
        "earlier_same_token"
    )


def select_all(name: str = "select_all") -> rasp.Selector:
    """Every position attends to every position."""
    return rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.TRUE).named(name)


def select_prefix(name: str = "prefix") -> rasp.Selector:
    """Every position attends to itself and the positions before it."""
    return rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ).named(name)


def read_from(source: rasp.SOp, values: rasp.SOp, name: str) -> rasp.SOp:
    """Position ``i`` reads ``values`` at the position ``source[i]`` (None if none)."""
    select = rasp.Select(rasp.indices, source, rasp.Comparison.EQ).named(f"{name}_select")
    return rasp.Aggregate(select, values).named(name)


def send_to(target: rasp.SOp, values: rasp.SOp, name: str) -> rasp.SOp:
    """Position ``i`` receives ``values`` from the position whose ``target`` is ``i``
    (None if none; the targets must be pairwise different where they meet an index)."""
    select = rasp.Select(target, rasp.indices, rasp.Comparison.EQ).named(f"{name}_select")
    return rasp.Aggregate(select, values).named(name)


def read_offset(offset: int, values: rasp.SOp, name: str) -> rasp.SOp:
    """``values`` at position ``i + offset`` (None outside the input)."""
    select = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == q + offset)
    return rasp.Aggregate(select.named(f"{name}_select"), values).named(name)


def count_where(test: Callable[[rasp.Value], bool], sop: rasp.SOp, name: str) -> rasp.SOp:
    """How many positions of the whole input have ``test(sop)``, at every position."""
    select = rasp.Select(sop, sop, lambda k, q: k is not None and bool(test(k)))
    return rasp.SelectorWidth(select.named(f"{name}_select")).named(name)


def stable_rank(keys: rasp.SOp, name: str, *, descending: bool = False) -> rasp.SOp:
    """Each position's place in the stable sort of ``keys``: how many positions hold a
    smaller key (larger if ``descending``), or an equal key earlier. One Select over the
    tuple ``(key, index)``."""
    key_at = pair(keys, rasp.indices, f"{name}_key_at")
    if descending:
        before = lambda k, q: k[0] > q[0] or (k[0] == q[0] and k[1] < q[1])
    else:
        before = lambda k, q: k[0] < q[0] or (k[0] == q[0] and k[1] < q[1])
    select = rasp.Select(key_at, key_at, before).named(f"{name}_before")
    return rasp.SelectorWidth(select).named(name)


def first_where(flag_sop: rasp.SOp, values: rasp.SOp, name: str) -> rasp.SOp:
    """``values`` at the first position where the boolean ``flag_sop`` holds, everywhere
    (None if it holds nowhere)."""
    earlier = prefix_count(lambda f: bool(f), flag_sop, f"{name}_earlier", strict=True)
    first = rasp.SequenceMap(lambda f, c: bool(f) and c == 0, flag_sop, earlier)
    first = first.named(f"{name}_is_first")
    select = rasp.Select(first, first, lambda k, q: bool(k)).named(f"{name}_select")
    return rasp.Aggregate(select, values).named(name)
