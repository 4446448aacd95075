"""Circuit-recovery methods, scored against the planted circuit.

Programs where the answer is unambiguous under resample ablation (corrupted inputs of the
same length with other tokens): only the edges that carry tokens can matter; the ones that
carry positions, the length or the constant ``one``/``bos`` directions provably cannot
(their ablated value equals their clean value).

* ``copy``: ``Aggregate(Select(indices, indices, EQ), tokens)``: a single head; the truth
  is ``{embed->L0.H0.v, L0.H0->output}``, and ``pos`` is a negative node.
* ``frac_prevs`` (library): ``{embed->L0.MLP, L0.MLP->L1.H0.v, L1.H0->output}``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from rasplab.analysis import interventions as iv
from rasplab.analysis import methods, scoring
from rasplab.analysis.ground_truth import effective_circuit
from rasplab.analysis.methods import common
from rasplab.analysis.methods.acdc import acdc_masks
from rasplab.analysis.recover import Session
from rasplab.compiler import compile_program, rasp
from rasplab.programs import registry

from rasplab.cli import main as cli_main

SAMPLES = 64


@pytest.fixture(scope="module")
def copy_exps():
    program = rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.EQ),
                             rasp.tokens).named("copy")
    compiled = compile_program(program, {"a", "b", "c"}, 4)
    rng = np.random.default_rng(0)
    clean = [list(rng.choice(["a", "b", "c"], size=int(rng.integers(1, 5))))
             for _ in range(SAMPLES)]
    corrupted = [list(rng.choice(["a", "b", "c"], size=len(s))) for s in clean]
    graph = iv.edge_graph(compiled, complete=True)
    out = {}
    for ablation in ("resample", "zero"):
        exp = iv.prepare(compiled, clean, ablation, corrupted=corrupted, graph=graph)
        out[ablation] = (exp, effective_circuit(exp))
    return out


@pytest.fixture(scope="module")
def session():
    return Session(samples=SAMPLES, seed=0)


@pytest.fixture(scope="module")
def frac(session):
    session.program(registry.get("frac_prevs"))
    return {a: (session.experiment("frac_prevs", a), session.truth("frac_prevs", a))
            for a in ("resample", "zero")}


def test_the_unambiguous_truths(copy_exps, frac):
    assert copy_exps["resample"][1].keys == ["embed->L0.H0.v", "L0.H0->output"]
    assert frac["resample"][1].keys == ["embed->L0.MLP", "L0.MLP->L1.H0.v", "L1.H0->output"]


@pytest.mark.parametrize("method", list(methods.METHODS))
def test_every_method_ranks_perfectly_where_the_answer_is_unambiguous(copy_exps, frac,
                                                                      method):
    for exp, truth in (copy_exps["resample"], frac["resample"]):
        result = methods.run(method, exp)
        assert result.edge_scores.shape == (exp.graph.n_edges,)
        assert result.node_scores.shape == (exp.graph.n_senders,)
        s = scoring.score(exp, result, truth)
        assert s["edge_auc"] == 1.0, (method, result.ranking(exp.graph))
        assert s["edge_auc_complete"] == 1.0
        assert s["node_auc"] == 1.0
        # its own circuit is the truth, and keeps every output
        assert s["precision"] == 1.0 and s["recall"] == 1.0
        assert s["faithfulness"]["fraction_unchanged"] == 1.0


def test_acdc_finds_the_planted_circuit_under_zero(copy_exps, frac):
    for exp, truth in (copy_exps["zero"], frac["zero"]):
        result = methods.run("acdc", exp)
        assert result.circuit_keys(exp.graph) == truth.keys
        assert scoring.score(exp, result, truth)["edge_auc"] == 1.0


def _naive_acdc(exp, tau: float) -> np.ndarray:
    """ACDC one edge at a time, no batching, no dead-receiver shortcut."""
    mask = np.ones(exp.graph.n_edges, np.float32)
    current = common.metric(exp, mask)
    for e in common.reverse_topological_order(exp.graph):
        mask[e] = 0.0
        value = common.metric(exp, mask)
        if value - current < tau:
            current = value
        else:
            mask[e] = 1.0
    return mask


def test_batched_acdc_makes_the_one_at_a_time_decisions(copy_exps, frac):
    taus = [1e-8, 1e-3, 0.3, 1.0]  # large ones force partial circuits
    for exp, _ in (copy_exps["zero"], frac["zero"]):
        batched, stats = acdc_masks(exp, taus)
        narrow, _ = acdc_masks(exp, taus, speculate=1)
        for i, tau in enumerate(taus):
            naive = _naive_acdc(exp, tau)
            np.testing.assert_array_equal(batched[i], naive, err_msg=f"tau={tau}")
            np.testing.assert_array_equal(narrow[i], naive, err_msg=f"tau={tau}")
        assert stats["masks_evaluated"] <= stats["edges_tested"]


def test_eap_gradient_is_the_patching_slope(frac):
    """For edges the read-out depends on linearly (into output and into a value input,
    the attention pattern fixed), the gradient equals the finite difference."""
    exp, _ = frac["resample"]
    g = exp.graph
    grad = common.metric_grad(exp, kind="projection")
    base = common.metric(exp, kind="projection")
    for key in ("L1.H0->output", "L0.MLP->L1.H0.v"):
        e = g.edge_index(key)
        m = np.ones(g.n_edges, np.float32)
        m[e] = 0.0
        slope = base - common.metric(exp, m, kind="projection")
        assert grad[e] == pytest.approx(slope, rel=1e-3, abs=1e-6)
    # edges that carry the same value on clean and corrupted inputs have no gradient
    for key in ("pos->L1.H0.q", "pos->L1.H0.k", "embed->L1.H0.q"):
        assert grad[g.edge_index(key)] == 0.0


def test_eap_ig_attributions_add_up(copy_exps):
    exp, _ = copy_exps["resample"]
    result = methods.run("eap_ig", exp, steps=32)
    total = common.metric(exp, np.zeros(exp.graph.n_edges)) - common.metric(exp)
    assert result.info["attribution_sum"] == pytest.approx(total, rel=0.02)


def test_sp_is_seeded(copy_exps):
    exp, _ = copy_exps["resample"]
    a = methods.run("sp", exp, steps=40, seed=1)
    b = methods.run("sp", exp, steps=40, seed=1)
    np.testing.assert_array_equal(a.edge_scores, b.edge_scores)
    plain = methods.run("sp", exp, steps=40, hard_concrete=False)
    assert plain.info["samples_per_step"] == 1


def test_node_patching_scores(copy_exps):
    exp, _ = copy_exps["resample"]
    r = methods.run("patching", exp)
    node = dict(zip(exp.graph.senders, r.node_scores))
    assert node["pos"] == 0.0 and node["embed"] > 0 and node["L0.H0"] > 0


def test_registry():
    assert methods.canonical("eap-ig") == "eap_ig"
    assert set(methods.METHODS) == {"patching", "acdc", "eap", "eap_ig", "sp"}
    with pytest.raises(ValueError, match="unknown method"):
        methods.canonical("nope")


# ---------------------------------------------------------------------------------------
# The runner and the command line (same inputs as the ``frac`` fixture: compiled code is
# shared)


def test_cli_recover_json(frac, capsys, tmp_path):
    png = tmp_path / "roc.png"
    status = cli_main(["recover", "frac_prevs", "--method", "eap-ig", "--ablation",
                       "resample", "--samples", str(SAMPLES), "--json", "-o", str(png)])
    assert status == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("edge_auc", "node_auc", "edge_auc_structural", "node_auc_structural",
                "precision", "recall", "faithfulness", "seconds", "n_edges"):
        assert key in data
    assert data["edge_auc"] == 1.0 and data["method"] == "eap_ig"
    assert data["node_auc_structural"] is None  # every component is structural
    assert data["target"] == frac["resample"][1].keys
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_recover_text_and_errors(frac, capsys):
    assert cli_main(["recover", "frac_prevs", "--method", "acdc", "--samples",
                     str(SAMPLES)]) == 0
    out = capsys.readouterr().out
    assert "vs ablation-matched" in out and "faithfulness" in out
    assert cli_main(["recover", "no_such_program", "--method", "acdc"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rasplab: error: unknown program")
    assert cli_main(["recover", "frac_prevs", "--method", "acdc", "--samples",
                     str(SAMPLES), "--set", "bogus=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rasplab: error:")
