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
