"""The compiler stage by stage: graph, value sets, layout, determinism, bad input, padding,
decoding, and the four tracr regressions (each checked exactly against the interpreter)."""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np
import pytest
from rasplab.compiler import CompileError, InputError, compile_program, rasp
from rasplab.compiler.graph import trace
from rasplab.compiler.layout import chain_lower_bound
from rasplab.compiler.values import compute_value_sets
from strategies import all_inputs, check_exact, compare, same_output

Cmp = rasp.Comparison
T, I = rasp.tokens, rasp.indices  # noqa: E741
WXYZ = ["w", "x", "y", "z"]


# ---------------------------------------------------------------------------------------
# Programs (built here, as tracr's lib builds them, so these tests do not depend on the
# program library)


def make_length() -> rasp.SOp:
    return rasp.SelectorWidth(rasp.Select(T, T, Cmp.TRUE).named("all_true")).named("length")


def make_reverse() -> rasp.SOp:
    opp_idx = (make_length() - I).named("opp_idx")
    opp_idx = (opp_idx - 1).named("opp_idx-1")
    flip = rasp.Select(I, opp_idx, Cmp.EQ).named("reverse_selector")
    return rasp.Aggregate(flip, T).named("reverse")


def make_frac_prevs(token="x") -> rasp.SOp:
    is_x = rasp.numerical(rasp.Map(lambda t: 1 if t == token else 0, T)).named("is_x")
    prevs = rasp.Select(I, I, Cmp.LEQ).named("prevs")
    return rasp.numerical(rasp.Aggregate(prevs, is_x, default=0)).named("frac_prevs")


def make_hist() -> rasp.SOp:
    return rasp.SelectorWidth(rasp.Select(T, T, Cmp.EQ).named("same_tok")).named("hist")


def make_unnamed() -> rasp.SOp:
    """No explicit names anywhere: ids come from the graph's shape alone."""
    shifted = rasp.Aggregate(rasp.Select(I, I + 1, Cmp.EQ), T)
    width = rasp.SelectorWidth(rasp.Select(T, shifted, Cmp.LT))
    return rasp.SequenceMap(lambda a, b: (a, b), shifted, width)


# ---------------------------------------------------------------------------------------
# Graph


def test_trace_ids_are_stable_across_builds():
    first = trace(make_unnamed())
    for _ in range(50):  # move the process-wide counters that default names come from
        _ = rasp.Map(lambda x: x, T).name
    second = trace(make_unnamed())
    assert list(first.nodes) == list(second.nodes)
    assert first.output == second.output
    assert sorted(first.graph.edges) == sorted(second.graph.edges)
    for node_id in first.nodes:
        assert re.fullmatch(r"(tokens|indices|[a-z_]+_\d+)", node_id), node_id


def test_trace_structure():
    prog = make_reverse()
    g = trace(prog)
    assert g.output == "reverse"
    assert {"tokens", "indices", "length", "all_true", "opp_idx", "opp_idx-1",
            "reverse_selector", "reverse"} == set(g.nodes)
    order = list(g.nodes)
    for node in g.topo():  # children come before their parents
        for child in node.children:
            assert order.index(child) < order.index(node.id)
            assert g.graph.has_edge(child, node.id)
    assert g.nodes["reverse"].children == ["reverse_selector", "tokens"]
    assert g.nodes["reverse_selector"].children == ["indices", "opp_idx-1"]
    assert g.consumers("opp_idx-1") == ["reverse_selector"]
    assert g.node_of(prog).id == "reverse"


def test_shared_subexpression_is_one_node_and_duplicate_names_stay_unique():
    a = rasp.Map(lambda x: x + 1, T).named("a")
    b = rasp.Map(lambda x: x * 2, T).named("a")  # the same explicit name twice
    prog = rasp.SequenceMap(lambda x, y: x + y, a, rasp.SequenceMap(lambda x, y: x - y, a, b))
    g = trace(prog)
    ids = list(g.nodes)
    assert len(ids) == len(set(ids)) == 5  # tokens, a, a (renamed), two sequence maps
    assert "a" in ids and sum(i.startswith("a") for i in ids) == 2
    res = check_exact(prog, [0, 1, 2], 3)
    assert res.checked and not res.mismatches


def test_trace_refuses_a_selector_as_program():
    with pytest.raises(CompileError, match="SOp"):
        trace(rasp.Select(T, T, Cmp.EQ))


def test_length_primitive_is_traced_as_a_selector_width():
    g = trace(rasp.length + 0)
    assert g.nodes["length"].kind == "SelectorWidth"
    res = check_exact(rasp.length + 0, [0, 1], 4)
    assert res.checked == 30 and not res.mismatches


def test_a_node_named_like_a_primitive_is_exact_or_refused():
    """BUG (compile.py): the embedding writes tokens/indices into whichever variable has the
    *id* "tokens"/"indices"; a node explicitly named "tokens" takes that id, the real
    tokens become "tokens_2" and are never embedded (silently wrong outputs; with
    "indices" it crashes with KeyError instead)."""
    for name, prim, other in (("tokens", I, T), ("indices", T, I)):
        renamed = rasp.Map(lambda x: x % 3, rasp.Map(lambda x: x, prim), simplify=False)
        prog = rasp.SequenceMap(lambda a, b: (a, b), renamed.named(name), other)
        try:
            res = check_exact(prog, [0, 1, 2, 3], 4)
        except CompileError:
            continue
        assert not res.mismatches, f"named {name!r}: {res.mismatches[:3]}"


# ---------------------------------------------------------------------------------------
# Value sets


def _value_sets(program, vocab, n):
    g = trace(program)
    return g, compute_value_sets(g, set(vocab), n)


@pytest.mark.parametrize("n", [1, 3, 5, 7])
def test_numerical_mean_of_a_binary_variable_takes_every_fraction(n):
    g, vs = _value_sets(make_frac_prevs(), WXYZ, n)
    expected = {Fraction(k, m) for m in range(1, n + 1) for k in range(m + 1)}
    got = {Fraction(v) for v in vs["frac_prevs"]}
    assert got == {Fraction(float(f)) for f in expected}
    if n >= 3:  # not only {0, 1/n, 1}: e.g. 2/3 is there
        assert Fraction(float(Fraction(2, 3))) in got
    assert vs["is_x"] == {0, 1}


def test_value_sets_of_selector_width_aggregate_and_map():
    n = 5
    sw = make_hist()
    g, vs = _value_sets(sw, WXYZ, n)
    assert vs["hist"] == set(range(n + 1))
    agg = rasp.Aggregate(rasp.Select(I, T, Cmp.EQ), I).named("agg")
    _, vs = _value_sets(agg, [0, 1, 9], n)
    assert vs["agg"] == set(range(n)) | {None}
    agg = rasp.Aggregate(rasp.Select(I, T, Cmp.EQ), I, default=-1).named("agg")
    _, vs = _value_sets(agg, [0, 1, 9], n)
    assert vs["agg"] == set(range(n)) | {-1}
    inv = rasp.Map(lambda i: 12 // i, I).named("inv")  # raises at 0: skipped
    _, vs = _value_sets(inv, [0], n)
    assert vs["inv"] == {12, 6, 4, 3}


def test_too_large_value_sets_are_refused_with_the_expression_named():
    big = rasp.SequenceMap(lambda a, b: a * 1000 + b, I, rasp.Map(lambda x: x, I)).named("big")
    with pytest.raises(CompileError, match=r"'big'.*values"):
        compile_program(big, [0], 200)
    # 13 values 7**t: every multiset of at most 6 of them has its own sum (over 20000 means)
    spread = rasp.numerical(rasp.Map(lambda t: 7**t, T)).named("spread")
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(I, I, Cmp.LEQ), spread, default=0))
    with pytest.raises(CompileError, match=r"'mean'.*values"):
        compile_program(mean.named("mean"), list(range(13)), 6)


# ---------------------------------------------------------------------------------------
# Layout


def chain_layers(program) -> int:
    return chain_lower_bound(trace(program))


def test_reverse_layout_follows_its_chain():
    c = compile_program(make_reverse(), [1, 2, 3], 5)
    assert c.config.num_layers == 4 == chain_layers(make_reverse())
    placed = [(comp.name, comp.node) for comp in c.components]
    assert placed == [("L0.H0", "length"), ("L0.MLP", "length"), ("L1.MLP", "opp_idx"),
                      ("L2.MLP", "opp_idx-1"), ("L3.H0", "reverse")]
    assert c.config.heads_per_layer == [1, 0, 0, 1]


@pytest.mark.parametrize("build", [make_frac_prevs, make_hist, make_length, make_unnamed])
def test_layer_count_is_the_chain_length(build):
    c = compile_program(build(), WXYZ, 4)
    assert c.config.num_layers == chain_layers(build())


def test_library_programs_reach_the_layer_lower_bound():
    from rasplab.programs import list_programs

    above = {}
    for spec in list_programs():
        program = spec.build()
        layers = compile_program(program, spec.vocab, spec.max_seq_len).config.num_layers
        bound = chain_lower_bound(trace(program))
        assert layers >= bound, spec.name
        if layers > bound:
            above[spec.name] = layers - bound
    # sort_stable ORs comparisons of two variables: one MLP combines them first (rewrite.py)
    assert above == {"sort_stable": 1}


# ---------------------------------------------------------------------------------------
# Determinism


def _fingerprint(c):
    return (
        [(k, c.params[k].dtype.str, c.params[k].shape, c.params[k].tobytes())
         for k in sorted(c.params)],
        list(c.residual_labels), [(x.name, x.node, x.index, x.size) for x in c.components],
        c.config.to_dict(),
    )


@pytest.mark.parametrize("build,vocab", [(make_reverse, [1, 2, 3]), (make_unnamed, WXYZ),
                                          (make_frac_prevs, WXYZ)])
def test_compiling_twice_gives_bit_identical_models(build, vocab):
    prog = build()
    once = _fingerprint(compile_program(prog, vocab, 5))
    assert _fingerprint(compile_program(prog, vocab, 5)) == once
    _ = rasp.Map(lambda x: x, T).name  # move the default-name counter
    assert _fingerprint(compile_program(build(), vocab, 5)) == once


# ---------------------------------------------------------------------------------------
# Bad input


@pytest.fixture(scope="module")
def hist_model(build_model):
    return build_model(make_hist(), WXYZ, 4)


def test_unknown_token_is_refused_naming_it(hist_model):
    with pytest.raises(InputError, match=r"'q'.*position 1.*vocabulary"):
        hist_model.run([["w", "q"]])
    with pytest.raises(InputError, match="None"):
        hist_model.run([["w", None]])
    with pytest.raises(InputError, match="BOS"):
        hist_model.run([["w", "BOS"]])


def test_too_long_input_is_refused_naming_the_lengths(hist_model):
    with pytest.raises(InputError, match=r"5 tokens.*at most 4"):
        hist_model.run([["w"] * 5])


def test_apply_needs_bos(hist_model):
    with pytest.raises(InputError, match="BOS"):
        hist_model.apply(["w", "x"])
    out = hist_model.apply(["BOS", "w", "x", "w"])
    assert out.decoded == ["BOS", 2, 1, 2]


def test_bad_vocabularies_are_refused():
    prog = make_hist()
    with pytest.raises(CompileError, match="empty"):
        compile_program(prog, [], 3)
    with pytest.raises(CompileError, match=r"BOS.*'BOS'"):
        compile_program(prog, ["a", "BOS"], 3)
    with pytest.raises(CompileError, match=r"PAD.*'PAD'"):
        compile_program(prog, ["a", "PAD"], 3)
    with pytest.raises(CompileError, match=r"BOS.*'<s>'"):
        compile_program(prog, ["a", "<s>"], 3, bos="<s>")
    with pytest.raises(CompileError, match="None"):
        compile_program(prog, ["a", None], 3)
    with pytest.raises(CompileError, match="max_seq_len"):
        compile_program(prog, ["a"], 0)


def test_uncompilable_programs_are_refused_naming_the_expression():
    none_mean = rasp.numerical(rasp.Aggregate(rasp.Select(I, T, Cmp.EQ), I)).named("m")
    with pytest.raises(CompileError, match=r"'m'.*None.*default=0"):
        compile_program(none_mean, [0, 1], 3)
    num = rasp.numerical(rasp.Map(lambda t: t, T)).named("num")
    cat_of_num = rasp.Aggregate(rasp.Select(I, I, Cmp.EQ), num).named("c")
    with pytest.raises(CompileError, match=r"'c'.*numerical 'num'"):
        compile_program(cat_of_num, [0, 1], 3)
    sel_num = rasp.SelectorWidth(rasp.Select(num, num, Cmp.EQ)).named("w")
    with pytest.raises(CompileError, match="'num'.*numerical"):
        compile_program(sel_num, [0, 1], 3)
    with pytest.raises(CompileError, match="ConstantSOp"):
        compile_program(rasp.Map(lambda x: x, rasp.ConstantSOp([1, 2])), [0], 2)


def test_separable_sums_too_close_for_float32_fall_back_to_the_table():
    # x + y has 22 values (fewer than the 64-unit table, so the one-discretiser route is
    # tried) but 1 and 1.000001 cannot be told apart by a float32 readout: the table can
    letters = list("abcdefgh")
    xs = [0, 1e-6, 1, 2, 3, 4, 5, 6]
    x = rasp.Map(lambda t: xs[letters.index(t)], T).named("x")
    y = rasp.Map(lambda t: (3 * letters.index(t)) % 8, T).named("y")
    res = check_exact(rasp.SequenceMap(lambda a, b: a + b, x, y).named("s"), letters, 2)
    assert res.checked == len(all_inputs(letters, 2)) and not res.mismatches


# ---------------------------------------------------------------------------------------
# Running: padding and decoding


def test_padded_batches_equal_single_runs(build_model):
    prog = make_unnamed()
    vocab, n = WXYZ, 4
    model = build_model(prog, vocab, n)
    rng = np.random.default_rng(0)
    batch = [[vocab[i] for i in rng.integers(0, 4, size=k)] for k in (4, 1, 3, 2, 4, 1)]
    together = model.run(batch)
    for xs, got in zip(batch, together, strict=True):
        assert model.run([xs]) == [got]
        assert same_output(got, rasp.evaluate(prog, xs))
    # unpadded (width = own length) vs padded to the longest: identical real positions
    padded = np.asarray(model.forward(model.encode(batch)))
    for b, xs in enumerate(batch):
        alone = np.asarray(model.forward(model.encode([xs])))[0]
        np.testing.assert_allclose(padded[b, : len(xs) + 1], alone, rtol=0, atol=1e-5)


def test_numerical_outputs_decode_to_exact_values(build_model):
    prog = make_frac_prevs()
    model = build_model(prog, WXYZ, 4)
    inputs = all_inputs(WXYZ, 4)
    grid = {float(Fraction(k, m)) for m in range(1, 5) for k in range(m + 1)}
    for xs, got in zip(inputs, model.run(inputs), strict=True):
        assert got == rasp.evaluate(prog, xs)  # exactly equal floats, not close ones
        assert all(isinstance(v, float) and v in grid for v in got)


# ---------------------------------------------------------------------------------------
# The four tracr regressions


def test_tracr_regression_1_causal_reverse_is_refused_frac_prevs_is_exact():
    # both `length` and the flip selector look ahead; the message names one
    with pytest.raises(
        CompileError, match=r"(`length` counts every position|selector 'reverse_selector'.*after)"
    ):
        compile_program(make_reverse(), [1, 2, 3], 5, causal=True)
    res = check_exact(make_frac_prevs(), WXYZ, 5, causal=True)
    assert res.checked == len(all_inputs(WXYZ, 5)) and not res.mismatches


def _token_index_select(predicate) -> rasp.SOp:
    tok_idx = rasp.SequenceMap(lambda t, i: (t, i), T, I).named("tok_idx")
    sel = rasp.Select(tok_idx, tok_idx, predicate).named("sel")
    return rasp.numerical(rasp.Aggregate(sel, rasp.numerical(rasp.Map(
        lambda t: 1 if t == "x" else 0, T)).named("is_x"), default=0)).named("out")


def test_causality_is_proven_through_token_index_pairs():
    # keys and queries are (token, index) pairs: every (token, token, later key) is checked
    prog = _token_index_select(lambda k, q: k[0] == q[0] and k[1] <= q[1])
    res = check_exact(prog, WXYZ, 4, causal=True)
    assert res.checked == len(all_inputs(WXYZ, 4)) and not res.mismatches
    # looks ahead only when the query token is "w": refused
    ahead = _token_index_select(lambda k, q: k[1] <= q[1] or (q[0] == "w" and k[1] == q[1] + 1))
    with pytest.raises(CompileError, match=r"selector 'sel' may select positions after"):
        compile_program(ahead, WXYZ, 4, causal=True)
    compile_program(ahead, WXYZ, 4)  # fine without causal


def test_causal_length_gets_its_own_advice():
    with pytest.raises(CompileError, match=r"`length` counts every position.*causal=False"):
        compile_program(rasp.numerical(rasp.Map(lambda n: n, make_length())), WXYZ, 4,
                        causal=True)


def test_tracr_regression_2_aggregate_of_aggregate_with_none():
    sel = rasp.Select(I, T, Cmp.EQ)
    prog = rasp.Aggregate(sel, rasp.Aggregate(sel, I))
    vocab, n = [0, 1, 2], 4
    res = check_exact(prog, vocab, n)
    assert res.checked == len(all_inputs(vocab, n)) and not res.mismatches, res.mismatches[:3]
    outputs = [v for xs in all_inputs(vocab, n) for v in rasp.evaluate(prog, xs)]
    assert None in outputs and {0, 1, 2} <= set(outputs)  # both None and values occur


@pytest.mark.parametrize("n", [16, 32])
def test_tracr_regression_3_length_at_long_max_seq_len(build_model, n):
    model = build_model(make_length(), ["a", "b"], n)
    rng = np.random.default_rng(n)
    lengths = sorted({1, 2, n // 2, n - 1, n, *rng.integers(1, n + 1, size=8).tolist()})
    inputs = [["ab"[i] for i in rng.integers(0, 2, size=k)] for k in lengths]
    for xs, got in zip(inputs, model.run(inputs), strict=True):
        assert got == [len(xs)] * len(xs)
    assert model.run([["a"] * n]) == [[n] * n]


def test_tracr_regression_4_square_of_a_mean(build_model):
    frac = make_frac_prevs()
    square = rasp.numerical(rasp.Map(lambda v: v * v, frac)).named("square")
    n = 5
    res = check_exact(square, WXYZ, n)
    assert res.checked == len(all_inputs(WXYZ, n)) and not res.mismatches, res.mismatches[:3]
    # the MLP computing the square has a step between every two neighbouring k/m
    c = compile_program(square, WXYZ, n)
    grid = sorted({float(Fraction(k, m)) for m in range(1, n + 1) for k in range(m + 1)})
    assert c.variables["frac_prevs"].values == grid
    comp = next(x for x in c.components if x.node == "square")
    w_in = c.params[f"layers.{comp.layer}.mlp.in"][:, comp.index: comp.index + comp.size]
    frac_dim = c.variables["frac_prevs"].dims[0]
    one_dim = c.residual_labels.index("one")
    reads = w_in[frac_dim] != 0
    kinks = -w_in[one_dim, reads].astype(np.float64) / w_in[frac_dim, reads]
    for lo, hi in zip(grid, grid[1:]):
        assert ((kinks > lo) & (kinks < hi)).any(), f"no step between {lo} and {hi}"


# ---------------------------------------------------------------------------------------
# Exact or refused: cases found while writing these tests


def test_equal_values_of_different_types_stay_apart():
    """BUG (values.py / residual.py): 1 and True are one value set member and one
    direction, but a function can tell them apart (``type``, ``str``, ``repr``): the model
    computes ``f`` on whichever of the two the value set kept, for both."""
    mixed = rasp.Map(lambda t: True if t == 0 else 1, T)
    prog = rasp.Map(lambda v: type(v).__name__, mixed, simplify=False)
    try:
        res = check_exact(prog, [0, 1, 2], 3)
    except CompileError:
        return
    assert not res.mismatches, res.mismatches[:3]


def test_intermediate_numerical_values_must_survive_float32():
    """BUG (numerical variables other than the output): values float32 cannot tell apart
    (2**24 and 2**24 + 0.5) are not refused; an affine Map then reads them wrongly."""
    big = rasp.numerical(rasp.Map(lambda t: 2**24 + t * 0.5, T)).named("big")
    small = rasp.numerical(rasp.Map(lambda v: (v - 2**24) * 4, big, simplify=False))
    try:
        res = check_exact(small.named("small"), [0, 1, 2, 3], 3)
    except CompileError as err:
        assert "'big'" in str(err) or "'small'" in str(err)
        return
    assert not res.mismatches, res.mismatches[:3]


def test_partial_numerical_map_compiles_or_is_refused():
    """BUG (mlp_separable): a numerical-to-numerical Map that raises on part of its input
    value set (outside the domain, as values.py documents) crashes the compiler with the
    function's own exception instead of compiling (or raising CompileError)."""
    frac = make_frac_prevs()
    inv = rasp.numerical(rasp.Map(lambda v: 1 / v, frac)).named("inv")
    vocab, n = WXYZ, 3
    try:
        compiled = compile_program(inv, vocab, n)
    except CompileError:
        return
    from rasplab.compiler.model import Model

    inputs = all_inputs(vocab, n)
    outside = (rasp.EvaluationError, ZeroDivisionError)
    res = compare(Model(compiled), inv, inputs, [rasp.evaluate], outside=outside)
    assert res.checked and not res.mismatches, res.mismatches[:3]


def _or_then_prefix():
    """An OR over different (keys, queries) pairs, restricted to the prefix (so causal)."""
    either = rasp.Select(T, T, Cmp.EQ) | rasp.Select(I, I, Cmp.LT)
    return rasp.Map(lambda w: w * 2, rasp.SelectorWidth(either & rasp.Select(I, I, Cmp.LEQ)))


def test_rewritten_selectors_keep_the_programs_node_ids():
    """BUG (rewrite.py + graph.py): compiling an OR selector rewrites the program and traces
    it again; unnamed nodes are numbered by position, so the compiled variables get ids
    that differ from ``trace(program)`` (here the output is 'map_9' in the program's graph
    but 'map_7' in the compiled model), breaking the map from program to residual labels."""
    prog = _or_then_prefix()
    sop_ids = [n for n, node in trace(prog).nodes.items() if node.is_sop]
    compiled = compile_program(prog, [0, 1, 2], 4)
    assert compiled.output == trace(prog).output
    assert set(sop_ids) <= set(compiled.variables), (sop_ids, list(compiled.variables))


def test_causal_refusal_names_an_expression_of_the_program():
    """BUG (rewrite.py): with causal=True the program above (causal: every selector is ANDed
    with the prefix) is refused, and the message names 'selector_width_6' and 'select_5',
    ids of the rewritten program that do not exist in the user's program; its advice
    ("AND it with Select(indices, indices, LEQ)") is what the program already does."""
    prog = _or_then_prefix()
    ids = trace(prog).nodes
    try:
        res = check_exact(prog, [0, 1, 2], 4, causal=True)
    except CompileError as err:
        named = set(re.findall(r"'([^']+)'", str(err)))
        assert named and named <= set(ids), f"names {named - set(ids)}, not in {list(ids)}"
        return
    assert not res.mismatches


def test_a_map_that_always_writes_zero_compiles():
    """BUG (circuit.py, since the planted circuit is attached to every compiled model): a Map
    whose every output is the zero vector (numerical 0, or None) gets an MLP component with
    no hidden units, and compiling crashes with ``KeyError: 'L0.MLP'``."""
    for prog in (rasp.numerical(rasp.Map(lambda x: 0, T)), rasp.Map(lambda x: None, T)):
        res = check_exact(prog, [0, 1], 3)
        assert res.checked == 14 and not res.mismatches


def test_length_inside_an_or_selector():
    """Regression (rewrite.py, found by the slow random run): rewriting an OR selector that
    reads ``rasp.length`` crashed with a KeyError (the SelectorWidth standing for length has
    no id in the program's graph)."""
    either = rasp.Select(T, T, Cmp.EQ) | rasp.Select(I, rasp.length, Cmp.LT)
    res = check_exact(rasp.SelectorWidth(either), [0, 1, 2, 3], 3)
    assert res.checked == 84 and not res.mismatches
    mean = rasp.numerical(rasp.Aggregate(either, rasp.length, default=0))
    res = check_exact(mean, [0, 1, 2, 3], 3)
    assert res.checked == 84 and not res.mismatches
