"""The truth derived from the program (interpreter, edge-level interchange) vs the network's.

The program truth never runs the network until it is checked; these tests hold it against
the network's greedy truth where that one is unique, against the length machinery that
only a length-changing corruption can see, and against redundant routes.
"""

from __future__ import annotations

import numpy as np
import pytest
from rasplab.analysis import ground_truth as gt
from rasplab.analysis import interventions as iv
from rasplab.analysis import program_truth as pt
from rasplab.compiler import compile_program, rasp
from rasplab.compiler.program_edges import (
    UNDEFINED,
    PairEvaluator,
    ProgramEdge,
    program_edges,
    traced,
)
from rasplab.programs import registry


@pytest.mark.parametrize("name", ["reverse", "hist", "sort", "frac_prevs", "dyck1"])
def test_pair_evaluator_reproduces_the_interpreter(name):
    spec = registry.get(name)
    graph = traced(spec.build(), spec.vocab, spec.max_seq_len)
    clean, corrupted = gt.sample_dataset(spec, 24, 1, "any-length")
    for c, x in zip(clean, corrupted, strict=True):
        ev = PairEvaluator(graph, c, x)
        assert ev.clean_output == rasp.evaluate(spec.build(), c)
        assert ev.changed(()) == 0
        # forcing the output edge gives the corrupted output, UNDEFINED past its length
        out = ev.output([ProgramEdge(graph.output, "output", "out")])
        want = rasp.evaluate(spec.build(), x)[: len(c)]
        assert out[: len(want)] == want
        assert all(v is UNDEFINED for v in out[len(want):])


def _program_side(name, corruption, samples=96):
    spec = registry.get(name)
    clean, corrupted = gt.sample_dataset(spec, samples, 0, corruption)
    return pt.minimal_program_edges(spec.build(), spec.vocab, spec.max_seq_len, clean,
                                    corrupted, orders=2)


def test_reverse_any_length_needs_the_length_machinery_and_same_length_does_not():
    same = {e.key for e in _program_side("reverse", "same-length").truth}
    anyl = {e.key for e in _program_side("reverse", "any-length").truth}
    assert same == {"tokens->reverse.v", "reverse->output"}
    length_machinery = {"length:internal", "length->opp_idx.fst", "opp_idx->opp_idx-1.in",
                        "opp_idx-1->reverse.q"}
    assert length_machinery <= anyl
    assert not length_machinery & same
    # indices are the same on every input (a position's index is its position)
    assert not any(k.startswith("indices->") for k in anyl)


@pytest.mark.parametrize("name,corruption", [
    ("reverse", "any-length"), ("hist", "same-length"), ("frac_prevs", "any-length"),
    ("count_a", "any-length"),
])
def test_program_truth_equals_the_unique_greedy_truth(name, corruption):
    """Programs whose minimal network circuit is unique (results/truth_uniqueness.md)."""
    spec = registry.get(name)
    c = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    clean, corrupted = gt.sample_dataset(spec, 64, 0, corruption)
    exp = iv.prepare(c, clean, "resample", corrupted=corrupted, corruption=corruption)
    truth = pt.derive(spec, c, clean, corrupted, corruption=corruption, exp=exp, orders=2)
    assert truth.ok  # faithful and minimal on the network
    assert set(truth.edges) == set(gt.effective_circuit(exp).keys)
    assert truth.unique and truth.corruption == corruption
    assert not truth.unmapped  # every non-constant network edge carries a program edge


def test_program_truth_on_reverse_reports_its_constant_edges_apart():
    spec = registry.get("reverse")
    truth = pt.for_program(spec, corruption="any-length", samples=96, orders=1)
    # the length head reads only one/bos: its token inputs have no carrier, and the
    # constant edges that realise them are the ones the network needs
    assert set(truth.unrealised) == {"tokens->length.q", "tokens->length.k"}
    assert truth.constant and all(truth.constant[i] in truth.edges
                                  for i in range(len(truth.constant)))
    assert not set(truth.constant) & set(truth.mapped)
    d = truth.to_dict()
    assert d["corruption"] == "any-length" and d["ablation"] == "resample"


def _two_route_program():
    """``a or b`` over two copies of ``tokens == "a"``, the second one layer later: on
    all-"a" inputs either copy alone keeps the output, so the minimal program-edge set is
    not unique, and the two routes use different network edges."""
    is_a = rasp.Map(lambda t: t == "a", rasp.tokens).named("is_a")
    is_a2 = rasp.Map(lambda x: x, rasp.Map(lambda t: t == "a", rasp.tokens).named("pre"),
                     simplify=False).named("is_a2")
    return rasp.SequenceMap(lambda x, y: x or y, is_a, is_a2).named("either")


def test_two_redundant_program_routes_give_a_set_of_program_truths():
    program = _two_route_program()
    vocab, n = ("a", "b"), 3
    clean = [["a"] * k for k in (1, 2, 3)] * 4
    corrupted = [["b"] * len(x) for x in clean]
    search = pt.minimal_program_edges(program, vocab, n, clean, corrupted, orders=8)
    routes = [{e.key for e in alt} for alt in search.minimal]
    assert not search.unique and len(routes) == 2
    assert {"tokens->is_a.in", "is_a->either.fst", "either->output"} in routes
    assert {"tokens->pre.in", "pre->is_a2.in", "is_a2->either.snd",
            "either->output"} in routes
    # each route, mapped to network edges, is faithful and minimal on the network
    c = compile_program(program, vocab, n)
    exp = iv.prepare(c, clean, "resample", corrupted=corrupted)
    graph = traced(program, vocab, n)
    edges = {e.key: e for e in program_edges(graph)}
    for route in routes:
        keys = {k for r in route for k in pt.carriers(c.planted, edges[r])}
        assert keys
        assert gt.verify(exp, exp.graph.mask(sorted(keys))).ok
    # and a method that finds either route is not penalised (the set rule)
    from rasplab.analysis.methods.common import MethodResult
    from rasplab.analysis.scoring import score

    spec = type("Spec", (), {"name": "either", "build": staticmethod(lambda: program),
                             "vocab": vocab, "max_seq_len": n})()
    truth = pt.derive(spec, c, clean, corrupted, corruption="given", exp=exp, orders=8)
    target = pt.as_ground_truth(truth, exp)
    assert len(target.alternatives) == 2
    for alt in target.alternatives:
        route = {exp.graph.edge_keys[i] for i in np.flatnonzero(alt > 0.5)}
        scores = np.array([1.0 if k in route else 0.0 for k in exp.graph.edge_keys])
        s = score(exp, MethodResult("oracle", scores, np.zeros(exp.graph.n_senders)),
                  target, with_faithfulness=False)
        assert s["edge_auc"] == 1.0


def test_an_operation_on_two_heads_puts_both_in_the_program_truth():
    """The duplicated copy head (tests/test_ground_truth.py): one program operation on two
    heads. Under resample ablation a mix of the two heads' values is no value, so both
    routes matter; the program truth maps the one program edge to both heads."""
    from tests.test_ground_truth import _two_route_copy

    twin = _two_route_copy()
    clean = [list(x) for x in ("abca", "cab", "b", "ccba")]
    corrupted = [list(x) for x in ("bcab", "abc", "c", "abac")]
    exp = iv.prepare(twin, clean, "resample", corrupted=corrupted)
    spec = type("Spec", (), {"name": "copy", "vocab": ("a", "b", "c"), "max_seq_len": 4,
                             "build": staticmethod(lambda: rasp.Aggregate(
                                 rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.EQ),
                                 rasp.tokens).named("copy"))})()
    truth = pt.derive(spec, twin, clean, corrupted, corruption="given", exp=exp)
    assert {"L0.H0->output", "L0.H1->output"} <= set(truth.edges)
    assert truth.ok
    assert set(truth.edges) == set(gt.effective_circuit(exp).keys)


def test_cli_circuit_shows_the_program_truth_with_its_distribution():
    import json

    from tests.test_cli import cli

    r = cli("circuit", "reverse", "--truth", "program", "--corruption", "any-length",
            "--samples", "32", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["truth"] == "program" and d["corruption"] == "any-length"
    assert "length:internal" in d["program_edges"]
    keys = {f"{e['from']}->{e['to']}" + (f".{e['input']}" if e["input"] else "")
            for e in d["edges"]}
    assert {"L0.H0->L0.MLP", "embed->L3.H0.v", "L3.H0->output"} <= keys
    bad = cli("circuit", "reverse", "--truth", "program", "--ablation", "zero")
    assert bad.returncode == 2 and "resample" in bad.stderr
    assert "Traceback" not in bad.stderr
