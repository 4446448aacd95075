"""Scoring: ROC AUC with ties, curves, precision/recall, faithfulness, the score record.

Everything is checked against definitions (pairwise counts) or the planted circuit, never
against a method's own output.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from rasplab.analysis import interventions as iv
from rasplab.analysis import scoring
from rasplab.analysis.ground_truth import effective_circuit
from rasplab.analysis.methods import MethodResult
from rasplab.analysis.methods.common import circuit_nodes, structural
from rasplab.compiler import compile_program, rasp
from rasplab.programs import registry


def pairwise_auc(scores, labels) -> float:
    """The definition: P(score of a positive > score of a negative), ties one half."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auc_matches_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 30))
        labels = rng.random(n) < 0.4
        if labels.all() or not labels.any():
            continue
        scores = rng.integers(0, 4, n).astype(float)  # many ties
        assert scoring.roc_auc(scores, labels) == pytest.approx(pairwise_auc(scores, labels))


def test_auc_edge_cases():
    y = np.array([1, 1, 0, 0, 0], bool)
    assert scoring.roc_auc([5, 4, 3, 2, 1], y) == 1.0
    assert scoring.roc_auc([1, 2, 3, 4, 5], y) == 0.0
    assert scoring.roc_auc([7, 7, 7, 7, 7], y) == 0.5
    assert np.isnan(scoring.roc_auc([1, 2, 3], [True, True, True]))
    assert np.isnan(scoring.roc_auc([1, 2, 3], [False, False, False]))
    # a NaN score ranks lowest
    assert scoring.roc_auc([np.nan, 1.0, 0.5], [False, True, False]) == 1.0
    with pytest.raises(ValueError):
        scoring.roc_auc([1, 2], [True, False, True])


def test_curve_area_equals_auc():
    rng = np.random.default_rng(1)
    for _ in range(50):
        labels = rng.random(25) < 0.5
        if labels.all() or not labels.any():
            continue
        scores = rng.integers(0, 6, 25).astype(float)
        fpr, tpr, thresholds = scoring.roc_curve(scores, labels)
        assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
        assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
        area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
        assert area == pytest.approx(scoring.roc_auc(scores, labels))


def test_precision_recall():
    assert scoring.precision_recall([1, 1, 0, 0], [1, 0, 1, 0]) == (0.5, 0.5)
    assert scoring.precision_recall([1, 0, 0, 0], [1, 1, 0, 0]) == (1.0, 0.5)
    p, r = scoring.precision_recall([0, 0, 0], [1, 0, 0])
    assert np.isnan(p) and r == 0.0


def test_random_scores_give_half_against_the_planted_circuit():
    """Edges of reverse's complete graph labelled by the compiler's planted (structural)
    circuit, and its components by the circuit's nodes: random scores average 0.5."""
    spec = registry.get("reverse")
    compiled = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    graph = iv.edge_graph(compiled, complete=True)
    labels = structural(graph)
    assert 0 < labels.sum() < graph.n_edges
    rng = np.random.default_rng(0)
    aucs = [scoring.roc_auc(rng.random(graph.n_edges), labels) for _ in range(3000)]
    assert np.mean(aucs) == pytest.approx(0.5, abs=0.01)
    # with heavy ties too (scores from 3 levels)
    aucs = [scoring.roc_auc(rng.integers(0, 3, graph.n_edges), labels) for _ in range(3000)]
    assert np.mean(aucs) == pytest.approx(0.5, abs=0.01)
    # I/O nodes against the planted circuit restricted to tokens-carrying edges
    carries_tokens = np.array(["tokens" in r.carries for r in graph.edge_records])
    io_labels = scoring.io_node_labels(graph, carries_tokens)
    assert 0 < io_labels.sum() < len(io_labels)
    aucs = [scoring.roc_auc(rng.random(len(io_labels)), io_labels) for _ in range(3000)]
    assert np.mean(aucs) == pytest.approx(0.5, abs=0.01)


# ---------------------------------------------------------------------------------------
# On a compiled program (the identity copy head: tokens moved by an EQ selector on indices)


@pytest.fixture(scope="module")
def copy_setup():
    program = rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.EQ),
                             rasp.tokens).named("copy")
    compiled = compile_program(program, {"a", "b", "c"}, 4)
    rng = np.random.default_rng(0)
    # the same inputs as tests/test_methods.py, so the compiled JAX code is shared
    clean = [list(rng.choice(["a", "b", "c"], size=int(rng.integers(1, 5)))) for _ in range(64)]
    corrupted = [list(rng.choice(["a", "b", "c"], size=len(s))) for s in clean]
    exp = iv.prepare(compiled, clean, "resample", corrupted=corrupted, complete=True)
    return exp, effective_circuit(exp)


def test_score_against_the_matched_truth(copy_setup):
    exp, truth = copy_setup
    g = exp.graph
    assert truth.keys == ["embed->L0.H0.v", "L0.H0->output"]
    target = np.asarray(truth.mask) > 0.5
    # a method that returns the truth exactly
    perfect = MethodResult("oracle", target.astype(float),
                           np.asarray(circuit_nodes(g, target), float), circuit=target)
    s = scoring.score(exp, perfect, truth)
    assert s["edge_auc"] == 1.0 and s["node_auc"] == 1.0 and s["edge_auc_complete"] == 1.0
    assert s["precision"] == 1.0 and s["recall"] == 1.0
    assert s["faithfulness"]["fraction_unchanged"] == 1.0
    assert s["faithfulness"]["metric"] == pytest.approx(0.0, abs=1e-9)
    assert s["n_edges"] == int(structural(g).sum()) and s["n_edges_complete"] == g.n_edges
    # the structural target has negatives only on the complete graph
    assert 0.5 < s["edge_auc_structural"] < 1.0
    # the empty circuit changes outputs
    empty = MethodResult("none", np.zeros(g.n_edges), np.zeros(g.n_senders),
                         circuit=np.zeros(g.n_edges, bool))
    f = scoring.score(exp, empty, truth)["faithfulness"]
    assert f["fraction_unchanged"] < 1.0 and f["metric"] > 0


def test_random_method_scores_average_half(copy_setup):
    exp, truth = copy_setup
    g = exp.graph
    rng = np.random.default_rng(3)
    edge, node = [], []
    for _ in range(400):
        r = MethodResult("random", rng.random(g.n_edges), rng.random(g.n_senders))
        s = scoring.score(exp, r, truth, with_faithfulness=False)
        edge.append(s["edge_auc"])
        node.append(s["node_auc"])
    assert np.mean(edge) == pytest.approx(0.5, abs=0.04)
    assert np.mean(node) == pytest.approx(0.5, abs=0.04)


def test_roc_plot(copy_setup, tmp_path):
    exp, truth = copy_setup
    g = exp.graph
    r = MethodResult("random", np.random.default_rng(0).random(g.n_edges),
                     np.zeros(g.n_senders))
    curves = scoring.roc_curves(exp, r, truth)
    assert "edges vs matched (structural graph)" in curves
    path = scoring.plot_roc(curves, tmp_path / "roc.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
