"""The RASP language: tracr-compatible API surface and the reference interpreter's semantics."""

from __future__ import annotations

import inspect
from fractions import Fraction

import pytest
from rasplab.compiler import rasp

Cmp = rasp.Comparison
T, I = rasp.tokens, rasp.indices  # noqa: E741

# ---------------------------------------------------------------------------------------
# API surface: tracr's public names and signatures

# Every public, non-typing name of tracr's ``tracr.rasp.rasp`` module.
TRACR_NAMES = [
    "Aggregate", "Comparison", "ConstantSOp", "ConstantSelector", "DEFAULT_ANNOTATORS",
    "DefaultRASPEvaluator", "Encoding", "Full", "IndicesType", "LengthType",
    "LinearSequenceMap", "Map", "RASPEvaluator", "RASPExpr", "SOp", "Select", "Selector",
    "SelectorAnd", "SelectorNot", "SelectorOr", "SelectorValue", "SelectorWidth",
    "SequenceMap", "TokensType", "Value", "annotate", "categorical", "default_encoding",
    "default_name", "evaluate", "get_encoding", "indices", "is_categorical", "is_numerical",
    "length", "numerical", "selector_and", "selector_not", "selector_or", "sop_not", "tokens",
]


@pytest.mark.parametrize("name", TRACR_NAMES)
def test_tracr_public_name_exists(name):
    assert hasattr(rasp, name), f"rasp lacks tracr's public name {name!r}"


# (callable, [(parameter, default or inspect.Parameter.empty)]) as in tracr
SIGNATURES = {
    "Map": [("f", None), ("inner", None), ("simplify", True)],
    "SequenceMap": [("f", None), ("fst", None), ("snd", None)],
    "LinearSequenceMap": [("fst", None), ("snd", None), ("fst_fac", None), ("snd_fac", None)],
    "Full": [("fill", None)],
    "ConstantSOp": [("value", None), ("check_length", True)],
    "ConstantSelector": [("value", None), ("check_length", True)],
    "Select": [("keys", None), ("queries", None), ("predicate", None)],
    "Aggregate": [("selector", None), ("sop", None), ("default", None)],
    "SelectorWidth": [("selector", None)],
    "SelectorAnd": [("fst", None), ("snd", None)],
    "SelectorOr": [("fst", None), ("snd", None)],
    "SelectorNot": [("inner", None)],
    "selector_and": [("fst", None), ("snd", None), ("simplify", True)],
    "selector_or": [("fst", None), ("snd", None), ("simplify", True)],
    "selector_not": [("inner", None), ("simplify", True)],
    "numerical": [("sop", None)],
    "categorical": [("sop", None)],
    "get_encoding": [("sop", None)],
    "is_numerical": [("sop", None)],
    "is_categorical": [("sop", None)],
    "sop_not": [("sop", None)],
    "evaluate": [("expr", None), ("xs", None)],
}


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_signature_matches_tracr(name):
    params = list(inspect.signature(getattr(rasp, name)).parameters.values())
    assert [p.name for p in params] == [n for n, _ in SIGNATURES[name]]
    for p, (_, default) in zip(params, SIGNATURES[name], strict=True):
        if default is not None:
            assert p.default == default, f"{name}({p.name}=...) default"
    assert list(inspect.signature(rasp.annotate).parameters) == ["expr", "annotations"]


def test_comparison_members_and_key_query_order():
    assert {c.name: c.value for c in Cmp} == {
        "EQ": "==", "LT": "<", "LEQ": "<=", "GT": ">", "GEQ": ">=", "NEQ": "!=",
        "TRUE": "True", "FALSE": "False",
    }
    assert Cmp.LT(1, 2) and not Cmp.LT(2, 1)  # predicate(key, query): key < query
    assert Cmp.GEQ(2, 2) and Cmp.NEQ(1, 2) and Cmp.TRUE(0, 5) and not Cmp.FALSE(0, 0)
    for c in Cmp:  # a None key or query is never selected
        assert c(None, 1) is False and c(1, None) is False


def test_primitives():
    assert isinstance(T, rasp.TokensType) and isinstance(I, rasp.IndicesType)
    assert isinstance(rasp.length, rasp.LengthType)
    assert T.label == "tokens" and I.label == "indices" and rasp.length.label == "length"
    assert rasp.evaluate(T, [3, 1]) == [3, 1]
    assert rasp.evaluate(I, ["a", "b", "c"]) == [0, 1, 2]
    assert rasp.evaluate(rasp.length, ["a", "b", "c"]) == [3, 3, 3]
    assert rasp.evaluate(rasp.Full(7), [1, 2]) == [7, 7]
    assert T([1, 2]) == [1, 2]  # calling an expression evaluates it


def test_operators_build_maps_and_sequence_maps():
    xs = [1, 2, 3]
    cases = [
        (T + 1, rasp.Map, [2, 3, 4]), (1 + T, rasp.Map, [2, 3, 4]),
        (T - 1, rasp.Map, [0, 1, 2]), (10 - T, rasp.Map, [9, 8, 7]),
        (T * 2, rasp.Map, [2, 4, 6]), (2 * T, rasp.Map, [2, 4, 6]),
        (T / 2, rasp.Map, [0.5, 1.0, 1.5]), (6 / T, rasp.Map, [6.0, 3.0, 2.0]),
        (T + I, rasp.SequenceMap, [1, 3, 5]), (T - I, rasp.SequenceMap, [1, 1, 1]),
        (T * I, rasp.SequenceMap, [0, 2, 6]), (I / T, rasp.SequenceMap, [0.0, 0.5, 2 / 3]),
        (T == 2, rasp.Map, [False, True, False]), (T != 2, rasp.Map, [True, False, True]),
        (T < 2, rasp.Map, [True, False, False]), (T <= 2, rasp.Map, [True, True, False]),
        (T > 2, rasp.Map, [False, False, True]), (T >= 2, rasp.Map, [False, True, True]),
        (~(T > 1), rasp.Map, [True, False, False]), (rasp.sop_not(T > 1), rasp.Map,
                                                     [True, False, False]),
        ((T > 1) & (I > 1), rasp.SequenceMap, [False, False, True]),
        ((T > 2) | (I < 1), rasp.SequenceMap, [True, False, True]),
        ((T > 1) & True, rasp.Map, [False, True, True]),
    ]
    for expr, cls, expected in cases:
        assert type(expr) is cls, expr
        assert rasp.evaluate(expr, xs) == expected


def test_selector_operators_fold_or_combine():
    a = rasp.Select(T, T, Cmp.EQ)
    b = rasp.Select(T, T, Cmp.LT)
    c = rasp.Select(I, I, Cmp.LT)
    assert type(a & b) is rasp.Select and type(a | b) is rasp.Select  # same keys/queries
    assert type(~a) is rasp.SelectorNot  # never folded: keeps None semantics (selector_not)
    assert type(a & c) is rasp.SelectorAnd and type(a | c) is rasp.SelectorOr
    assert type(~(a & c)) is rasp.SelectorNot
    assert type(rasp.selector_and(a, b, simplify=False)) is rasp.SelectorAnd
    assert type(rasp.selector_or(a, b, simplify=False)) is rasp.SelectorOr
    assert type(rasp.selector_not(a, simplify=False)) is rasp.SelectorNot
    xs = [1, 0, 1]
    ev = lambda s: rasp.evaluate(s, xs)
    eq, lt, ilt = ev(a), ev(b), ev(c)
    both = lambda f, p, q: [[f(x, y) for x, y in zip(r, s)] for r, s in zip(p, q)]
    assert ev(a & b) == both(lambda x, y: x and y, eq, lt)
    assert ev(a | b) == both(lambda x, y: x or y, eq, lt)
    assert ev(a & c) == both(lambda x, y: x and y, eq, ilt)
    assert ev(a | c) == both(lambda x, y: x or y, eq, ilt)
    assert ev(~a) == [[not x for x in r] for r in eq]
    assert ev(~(a & c)) == [[not x for x in r] for r in ev(a & c)]
    # selector rows are queries, columns keys: Select(I, I, LT)[q][k] = k < q
    assert ilt == [[k < q for k in range(3)] for q in range(3)]


def test_names_and_annotations():
    m = rasp.Map(lambda x: x, T)
    assert m.name.startswith("map_") and not m.has_explicit_name
    assert m.named("mine") is m and m.name == "mine" and m.label == "mine"
    assert m.has_explicit_name
    other = rasp.Map(lambda x: x, T)
    assert other.unique_id != m.unique_id
    assert other.name != rasp.Map(lambda x: x, T).name  # default names are unique
    s = rasp.Select(T, T, Cmp.EQ)
    assert s.name.startswith("select_")
    n = rasp.numerical(rasp.Map(lambda x: 1, T)).named("ones")
    assert rasp.is_numerical(n) and not rasp.is_categorical(n)
    assert n.annotations["encoding"] == rasp.Encoding.NUMERICAL and n.name == "ones"
    rasp.categorical(n)
    assert rasp.get_encoding(n) == rasp.Encoding.CATEGORICAL and n.name == "ones"
    assert rasp.is_categorical(rasp.Map(lambda x: x, T))  # the default encoding
    a = rasp.annotate(rasp.Map(lambda x: x, T).named("k"), foo=3)
    assert a.annotations["foo"] == 3 and a.name == "k"
    assert a.annotated(bar=1).annotations["bar"] == 1 and a.annotations["foo"] == 3
    with pytest.raises(TypeError):
        a.annotations["foo"] = 4  # annotations are read-only; use annotate
    with pytest.raises(TypeError):
        rasp.get_encoding(s)  # a selector has no encoding
    assert "name" in rasp.DEFAULT_ANNOTATORS and "encoding" in rasp.DEFAULT_ANNOTATORS


def test_map_simplify_merges_nested_maps():
    inner = rasp.Map(lambda x: x + 1, T)
    outer = rasp.Map(lambda x: x * 10, inner)
    assert outer.inner is T and outer.children == [T]
    assert rasp.evaluate(outer, [1, 2]) == [20, 30]
    kept = rasp.Map(lambda x: x * 10, inner, simplify=False)
    assert kept.inner is inner and rasp.evaluate(kept, [1, 2]) == [20, 30]
    assert rasp.Map(lambda x: x, rasp.SequenceMap(lambda a, b: a, T, I)).inner is not T


def test_constructors_check_their_arguments():
    with pytest.raises(TypeError):
        rasp.Map(lambda x: x, 3)
    with pytest.raises(TypeError):
        rasp.Map(T, T)
    with pytest.raises(TypeError):
        rasp.SequenceMap(lambda a, b: a, T, 1)
    with pytest.raises(TypeError):
        rasp.Aggregate(T, T)
    with pytest.raises(TypeError):
        rasp.Aggregate(rasp.Select(T, T, Cmp.EQ), T, default=[1])
    with pytest.raises(TypeError):
        rasp.SelectorWidth(T)
    with pytest.raises(TypeError):
        rasp.Select(T, 1, Cmp.EQ)


def test_children():
    s = rasp.Select(T, I, Cmp.EQ)
    agg = rasp.Aggregate(s, T)
    assert s.children == [T, I] and agg.children == [s, T]
    assert rasp.SelectorWidth(s).children == [s]
    assert rasp.SequenceMap(lambda a, b: a, T, I).children == [T, I]
    assert (s & rasp.Select(I, I, Cmp.EQ)).children[0] is s
    assert rasp.Full(1).children == [] and T.children == []


# ---------------------------------------------------------------------------------------
# Interpreter semantics


def _none_where_token_too_big() -> rasp.SOp:
    """indices[token]: None where the token is not a valid position (nothing selected)."""
    return rasp.Aggregate(rasp.Select(I, T, Cmp.EQ), I)


def test_aggregate_selecting_nothing_gives_its_default():
    g = _none_where_token_too_big()
    assert rasp.evaluate(g, [1, 5, 0]) == [1, None, 0]
    g0 = rasp.Aggregate(rasp.Select(I, T, Cmp.EQ), I, default=-1)
    assert rasp.evaluate(g0, [1, 5, 0]) == [1, -1, 0]


def test_none_propagates_through_maps_without_calling_them():
    def strict(x, *rest):
        if x is None or None in rest:
            raise AssertionError("f was called with None")
        return x + sum(rest)

    g = _none_where_token_too_big()
    xs = [1, 5, 0]
    assert rasp.evaluate(rasp.Map(strict, g), xs) == [1, None, 0]
    assert rasp.evaluate(rasp.SequenceMap(strict, g, I), xs) == [1, None, 2]
    assert rasp.evaluate(rasp.SequenceMap(strict, I, g), xs) == [1, None, 2]
    assert rasp.evaluate(rasp.LinearSequenceMap(g, I, 1, 1), xs) == [1, None, 2]


def test_select_never_selects_a_none_key_or_query():
    g = _none_where_token_too_big()  # [1, None, 0] on [1, 5, 0]
    xs = [1, 5, 0]
    assert rasp.evaluate(rasp.SelectorWidth(rasp.Select(g, I, Cmp.TRUE)), xs) == [2, 2, 2]
    assert rasp.evaluate(rasp.SelectorWidth(rasp.Select(I, g, Cmp.TRUE)), xs) == [3, 0, 3]
    custom = rasp.Select(g, g, lambda k, q: True)  # custom predicates are not even called
    assert rasp.evaluate(custom, xs)[1] == [False, False, False]


def test_selector_not_selects_pairs_with_none():
    g = _none_where_token_too_big()
    xs = [1, 5, 0]
    sel = rasp.SelectorNot(rasp.Select(g, I, Cmp.EQ))
    assert [row[1] for row in rasp.evaluate(sel, xs)] == [True, True, True]


def test_inverting_a_select_means_the_same_as_selector_not():
    """``~sel`` folds into one Select; that simplification must not change what it selects.

    BUG (rasp.selector_not): the folded Select never selects a pair with a None key, while
    ``SelectorNot(sel)`` (what ``~`` means, and what ``simplify=False`` builds) does.
    """
    g = _none_where_token_too_big()
    sel = rasp.Select(g, I, Cmp.EQ)
    xs = [5, 0]
    assert rasp.evaluate(~sel, xs) == rasp.evaluate(rasp.SelectorNot(sel), xs)
    assert rasp.evaluate(~sel, xs) == rasp.evaluate(rasp.selector_not(sel, simplify=False), xs)


def test_merged_maps_keep_none_propagation():
    """``Map(f, Map(g, x))`` merges into one Map; where g gives None, f must not be called.

    BUG (rasp.Map with simplify=True): the merged function calls ``f(None)``.
    """
    g = lambda t: None if t == 0 else t
    f = lambda v: v is None  # would be True only if called with None
    merged = rasp.Map(f, rasp.Map(g, T))
    unmerged = rasp.Map(f, rasp.Map(g, T), simplify=False)
    assert rasp.evaluate(unmerged, [0, 1]) == [None, False]
    assert rasp.evaluate(merged, [0, 1]) == [None, False]


def test_categorical_aggregate_needs_one_shared_value():
    sel_all = rasp.Select(I, I, Cmp.TRUE)
    agg = rasp.Aggregate(sel_all, T)
    assert rasp.evaluate(agg, ["a", "a"]) == ["a", "a"]
    with pytest.raises(rasp.EvaluationError, match="different values"):
        rasp.evaluate(agg, ["a", "b"])
    g = _none_where_token_too_big()
    with pytest.raises(rasp.EvaluationError):  # a None and a value: mixed
        rasp.evaluate(rasp.Aggregate(sel_all, g), [1, 5])
    assert rasp.evaluate(rasp.Aggregate(sel_all, g), [5, 5]) == [None, None]
    assert issubclass(rasp.EvaluationError, ValueError)


def test_numerical_mean_is_rounded_once_from_the_exact_value():
    sel = rasp.Select(I, I, Cmp.TRUE)

    def mean_of(values):
        sop = rasp.numerical(rasp.ConstantSOp(values))
        return rasp.evaluate(rasp.numerical(rasp.Aggregate(sel, sop, default=0)), values)[0]

    for values in ([1e16, 1.0, -1e16], [0.1, 0.2, 0.4], [0.1] * 10, [1, 0, 0], [2.5, 1, True]):
        exact = float(sum(Fraction(v) for v in values) / len(values))
        assert mean_of(values) == exact
        assert mean_of(list(reversed(values))) == exact  # independent of order
    assert mean_of([1e16, 1.0, -1e16]) == 1 / 3  # naive summation gives 0.0


def test_numerical_mean_of_prefix_and_default():
    prefix = rasp.Select(I, I, Cmp.LEQ)
    ones = rasp.numerical(rasp.Map(lambda t: 1 if t == "x" else 0, T))
    frac = rasp.numerical(rasp.Aggregate(prefix, ones, default=0))
    assert rasp.evaluate(frac, ["x", "y", "x", "y"]) == [1.0, 0.5, 2 / 3, 0.5]
    never = rasp.numerical(rasp.Aggregate(rasp.Select(I, I, Cmp.FALSE), ones, default=0))
    assert rasp.evaluate(never, ["x", "y"]) == [0, 0]


def test_numerical_mean_over_none_is_outside_the_domain():
    g = _none_where_token_too_big()
    agg = rasp.numerical(rasp.Aggregate(rasp.Select(I, I, Cmp.TRUE), g, default=0))
    assert rasp.evaluate(agg, [0, 1]) == [0.5, 0.5]
    with pytest.raises(rasp.EvaluationError, match="None"):
        rasp.evaluate(agg, [0, 9])


def test_selector_width_counts_selected_keys():
    hist = rasp.SelectorWidth(rasp.Select(T, T, Cmp.EQ))
    assert rasp.evaluate(hist, list("abca")) == [2, 1, 1, 2]
    assert rasp.evaluate(rasp.SelectorWidth(rasp.Select(I, I, Cmp.FALSE)), [1, 2]) == [0, 0]


def test_causal_evaluator_masks_the_future():
    everything = rasp.Select(I, I, Cmp.TRUE)
    xs = [1, 0, 1, 1]
    ones = rasp.numerical(rasp.Map(lambda t: t, T))
    mean = rasp.numerical(rasp.Aggregate(everything, ones, default=0))
    assert rasp.evaluate(mean, xs) == [0.75] * 4
    assert rasp.causal_evaluate(mean, xs) == [1.0, 0.5, 2 / 3, 0.75]
    width = rasp.SelectorWidth(everything)
    assert rasp.causal_evaluate(width, xs) == [1, 2, 3, 4]
    assert rasp.causal_evaluate(rasp.length, xs) == [1, 2, 3, 4]
    assert rasp.causal_evaluate(everything, xs) == [[k <= q for k in range(4)] for q in range(4)]
    last = rasp.Aggregate(rasp.Select(I, I, Cmp.EQ), T)  # reads only its own position
    assert rasp.causal_evaluate(last, xs) == rasp.evaluate(last, xs) == xs
    future = rasp.Aggregate(rasp.Select(I, I + 1, Cmp.EQ), T)  # reads the next position
    assert rasp.evaluate(future, xs) == [0, 1, 1, None]
    assert rasp.causal_evaluate(future, xs) == [None] * 4


def test_shared_subexpressions_are_evaluated_once():
    calls = []

    def f(x):
        calls.append(x)
        return x

    shared = rasp.Map(f, T)
    prog = rasp.SequenceMap(lambda a, b: a + b, shared, shared)
    assert rasp.evaluate(prog, [1, 2]) == [2, 4]
    assert calls == [1, 2]


def test_constants_check_the_length():
    c = rasp.ConstantSOp([1, 2])
    assert rasp.evaluate(c, ["a", "b"]) == [1, 2]
    with pytest.raises(rasp.EvaluationError):
        rasp.evaluate(c, ["a"])
    assert rasp.evaluate(rasp.ConstantSOp([1, 2], check_length=False), ["a"]) == [1, 2]
    cs = rasp.ConstantSelector([[1, 0], [0, 1]])
    assert rasp.evaluate(cs, "ab") == [[True, False], [False, True]]
    with pytest.raises(rasp.EvaluationError):
        rasp.evaluate(cs, "abc")


def test_evaluate_on_empty_input():
    assert rasp.evaluate(rasp.Map(lambda x: x, T), []) == []
    assert rasp.evaluate(rasp.SelectorWidth(rasp.Select(T, T, Cmp.EQ)), []) == []
