"""Ground-truth circuits per ablation, verified by running the interventions.

Expected circuits (library samplers: lengths 1..max_seq_len uniformly, corrupted inputs of
the clean input's length with different tokens; 256 samples, seed 0):

reverse (tokens 1,2,3; length <= 5). Nodes: L0.H0+L0.MLP compute ``length``, L1.MLP
``opp_idx``, L2.MLP ``opp_idx-1``, L3.H0 the reversing head.

* resample: ``{embed->L3.H0.v, L3.H0->output}``, Miller et al.'s result for tracr's
  reverse: length, indices and everything derived from them are the same on the corrupted
  input, so only the copied tokens matter.
* zero: the structural circuit minus four edges zero ablation cannot see. Into L0.H0's
  query or key: ``length`` uses a TRUE selector, and zeroed queries or keys give every key
  the same score, which is exactly what TRUE does. ``embed->L3.H0.q`` / ``.k`` carry the
  BOS baseline (``one`` in the query, ``bos`` in the key), which only matters where
  nothing is selected, and reverse always selects exactly one position.
* mean (per-position mean over the clean inputs): ``pos`` edges disappear (position p always
  has index p - 1, so the mean *is* the value), as do the ``bos``-only edges (position 0 is
  always BOS). ``embed->L0.H0.k`` stays: a key with averaged token directions no longer
  matches every query alike. ``embed->L0.H0.q`` goes: the TRUE selector's query columns sum
  to the same weight whatever (averaged) token the query holds.

frac_prevs (tokens w,x,y,z): L0.MLP computes ``tokens == "x"``, L1.H0 the prefix mean.

* resample and mean: ``{embed->L0.MLP, L0.MLP->L1.H0.v, L1.H0->output}`` (Miller et al.'s
  result for tracr's frac_prevs; our model has no empty MLP in layer 1).
* zero: also ``pos->L1.H0.q`` and ``pos->L1.H0.k`` (zeroed positions break the prefix
  selector); the ``one``/``bos``-only edges into L1.H0's query/key are not seen (the prefix
  always selects position 0 itself, so the BOS baseline never decides anything).
"""

from __future__ import annotations

import numpy as np
import pytest
from rasplab.analysis import ground_truth as gt
from rasplab.analysis import interventions as iv
from rasplab.compiler import compile_program, rasp
from rasplab.programs import registry

from tests.test_circuit import CASES

SAMPLES = 256

EXPECTED = {
    ("reverse", "resample"): ["embed->L3.H0.v", "L3.H0->output"],
    ("reverse", "zero"): [  # structural minus the four edges explained above
        "embed->L0.H0.v", "embed->L0.MLP", "L0.H0->L0.MLP", "embed->L1.MLP", "pos->L1.MLP",
        "L0.MLP->L1.MLP", "L1.MLP->L2.MLP", "L2.MLP->L3.H0.q", "pos->L3.H0.k",
        "embed->L3.H0.v", "L3.H0->output",
    ],
    ("reverse", "mean"): [
        "embed->L0.H0.k", "embed->L0.MLP", "L0.H0->L0.MLP", "embed->L1.MLP", "L0.MLP->L1.MLP",
        "L1.MLP->L2.MLP", "L2.MLP->L3.H0.q", "embed->L3.H0.v", "L3.H0->output",
    ],
    ("frac_prevs", "resample"): ["embed->L0.MLP", "L0.MLP->L1.H0.v", "L1.H0->output"],
    ("frac_prevs", "mean"): ["embed->L0.MLP", "L0.MLP->L1.H0.v", "L1.H0->output"],
    ("frac_prevs", "zero"): [
        "embed->L0.MLP", "pos->L1.H0.q", "pos->L1.H0.k", "L0.MLP->L1.H0.v", "L1.H0->output",
    ],
    # hist = SelectorWidth(Select(tokens, tokens, EQ)): resample cannot see the bos-only
    # value edge nor the MLP's one/bos edge (same on every input of a given length).
    ("hist", "resample"): [
        "embed->L0.H0.q", "embed->L0.H0.k", "L0.H0->L0.MLP", "L0.MLP->output",
    ],
}


def _library(name):
    spec = registry.get(name)
    compiled = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    clean, corrupted = gt.sample_dataset(spec, SAMPLES, seed=0)
    return compiled, clean, corrupted


@pytest.fixture(scope="module")
def truths():
    out = {}
    for name in ("reverse", "frac_prevs", "hist"):
        compiled, clean, corrupted = _library(name)
        out[name] = gt.ground_truths(compiled, clean, corrupted, program=name)
    return out


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_expected_circuits(truths, key):
    name, ablation = key
    truth = truths[name][ablation]
    assert truth.keys == EXPECTED[key]
    assert truth.verification.ok


@pytest.mark.parametrize("name", ["reverse", "frac_prevs", "hist"])
def test_verification_properties(truths, name):
    """Faithful: nothing outside changes any output (to the last bit here); minimal: every
    edge inside matters. The circuits shrink as the ablation becomes less informative."""
    t = truths[name]
    for ablation in ("zero", "mean", "resample"):
        v = t[ablation].verification
        assert v.outputs_unchanged and v.changed_positions == 0, ablation
        assert v.max_change < 1e-4, ablation
        assert v.failures == [], ablation
        assert set(t[ablation].keys) <= set(t["structural"].keys)
        for key, eff in v.edge_effects.items():
            assert eff["changed_positions"] > 0, key
    assert set(t["resample"].keys) <= set(t["zero"].keys)
    d = t[ablation].to_dict()
    assert {"faithfulness", "minimality", "edges", "ablation"} <= set(d)


def test_structural_circuit_under_zero(truths):
    """The planted circuit is exactly faithful (outside edges share no direction: the
    change is 0.0, not just small); its minimality failures are the edges zero ablation
    cannot see, i.e. exactly structural minus the zero-ablation circuit."""
    for name, t in truths.items():
        s = t["structural"].verification
        assert s.outputs_unchanged and s.max_change == 0.0, name
        assert set(s.failures) == set(t["structural"].keys) - set(t["zero"].keys), name
    assert truths["reverse"]["structural"].verification.failures == [
        "embed->L0.H0.q", "embed->L0.H0.k", "embed->L3.H0.q", "embed->L3.H0.k",
    ]
    assert truths["hist"]["structural"].verification.failures == []


def test_verify_detects_bad_circuits(truths):
    t = truths["frac_prevs"]["resample"]
    exp = iv.prepare(*_library("frac_prevs")[:2], "zero", graph=t.graph)
    empty = np.zeros(t.graph.n_edges, np.float32)
    v = gt.verify(exp, empty)
    assert not v.outputs_unchanged and v.changed_positions > 0 and v.max_change > 0.1
    full = np.ones(t.graph.n_edges, np.float32)
    v = gt.verify(exp, full)
    assert v.outputs_unchanged and v.failures == ["embed->L1.H0.q", "embed->L1.H0.k"]


def test_search_matches_one_by_one(truths):
    """The speculative chunked search makes the one-at-a-time greedy decisions."""
    compiled, clean, corrupted = _library("frac_prevs")
    exp = iv.prepare(compiled, clean, "zero", graph=truths["frac_prevs"]["zero"].graph)
    one, _ = gt.search(exp, chunk=1)
    np.testing.assert_array_equal(one, truths["frac_prevs"]["zero"].mask)


def test_two_heads_program():
    build, vocab, n = CASES["two_heads"]
    compiled = compile_program(build(), vocab, n)
    rng = np.random.default_rng(0)
    clean = [list(rng.choice(vocab, size=int(rng.integers(1, n + 1)))) for _ in range(128)]
    corrupted = [list(rng.choice(vocab, size=len(s))) for s in clean]
    out = gt.ground_truths(compiled, clean, corrupted)
    for ablation in ("zero", "mean", "resample"):
        assert out[ablation].verification.ok, ablation
    # resample: positions and the constant are the same, tokens are not
    assert out["resample"].keys == [
        "embed->L0.H0.v", "embed->L0.H1.v", "L0.H0->L0.MLP", "L0.H1->L0.MLP", "L0.MLP->output",
    ]


@pytest.mark.parametrize("name", ["shift_by_1", "pair_balance", "sort_unique"])
def test_library_programs(name):
    compiled, clean, corrupted = _library(name)
    out = gt.ground_truths(compiled, clean, corrupted, program=name)
    assert out["structural"].verification.max_change == 0.0
    for ablation in ("zero", "mean", "resample"):
        v = out[ablation].verification
        assert v.ok, (name, ablation, v)


@pytest.mark.slow
@pytest.mark.parametrize("name", registry.program_names())
def test_whole_library(name):
    compiled, clean, corrupted = _library(name)
    out = gt.ground_truths(compiled, clean, corrupted, program=name)
    s = out["structural"].verification
    assert s.outputs_unchanged and s.max_change == 0.0
    for ablation in ("zero", "mean", "resample"):
        v = out[ablation].verification
        assert v.ok, (name, ablation, v)
        assert set(out[ablation].keys) <= set(out["structural"].keys)


# ---------------------------------------------------------------------------------------
# Corruption distributions (programs/corruptions.py)


def test_reverse_resample_truth_depends_on_the_corruption():
    """Same-length corruptions hide the length machinery from resample ablation; corrupted
    inputs of any length make it part of the truth (README: why truth depends on the
    ablation and the distribution)."""
    from rasplab.programs.corruptions import sample_corrupted

    spec = registry.get("reverse")
    c = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    same = gt.for_program(spec, "resample", samples=128, compiled=c)
    anyl = gt.for_program(spec, "resample", samples=128, compiled=c, corruption="any-length")
    assert same.corruption == "same-length" and anyl.corruption == "any-length"
    assert same.keys == ["embed->L3.H0.v", "L3.H0->output"]
    length_edges = {"L0.H0->L0.MLP", "L0.MLP->L1.MLP", "L1.MLP->L2.MLP", "L2.MLP->L3.H0.q"}
    assert length_edges <= set(anyl.keys) and not length_edges & set(same.keys)
    clean = spec.sample_clean(0, 64)
    assert all(len(a) == len(b) for a, b in zip(clean, sample_corrupted(spec, 1, clean)))
    assert any(len(a) != len(b) for a, b in zip(clean, sample_corrupted(spec, 1, clean,
                                                                        "any-length")))


def test_counterfactual_corruption_changes_its_variable():
    from rasplab.compiler import rasp as r
    from rasplab.programs.corruptions import sample_corrupted, sops_by_label

    spec = registry.get("reverse")
    length = sops_by_label(spec.build())["length"]
    clean = spec.sample_clean(0, 32)
    corrupted = sample_corrupted(spec, 1, clean, "counterfactual:length")
    changed = [r.evaluate(length, a) != r.evaluate(length, b) for a, b in zip(clean, corrupted)]
    assert all(changed)
    with pytest.raises(ValueError, match="no variable 'nope'"):
        sample_corrupted(spec, 1, clean, "counterfactual:nope")
    with pytest.raises(ValueError, match="unknown corruption"):
        sample_corrupted(spec, 1, clean, "sideways")


# ---------------------------------------------------------------------------------------
# Uniqueness: redundant routes give a set of minimal circuits


def _two_route_copy():
    """A copy head duplicated: two heads each write the whole answer, so the output keeps
    its value (doubled read-out, same decoded value) with either head zero-ablated."""
    import dataclasses

    from rasplab.compiler.assemble import Component
    from rasplab.compiler.circuit import planted_circuit

    sop = rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.EQ),
                         rasp.tokens).named("copy")
    c = compile_program(sop, ["a", "b", "c"], 4)
    params = dict(c.params)
    for x in "qkvo":
        params[f"layers.0.attn.{x}"] = np.concatenate([params[f"layers.0.attn.{x}"]] * 2)
    h0 = next(comp for comp in c.components if comp.name == "L0.H0")
    twin = dataclasses.replace(
        c, params=params, circuit=None,
        config=dataclasses.replace(c.config, num_heads=2, heads_per_layer=[2]),
        components=[*c.components, Component("L0.H1", 0, "attn", h0.node, h0.op, 1, 1)])
    twin.circuit = planted_circuit(twin)
    return twin


def test_redundant_routes_give_a_set_of_truths_and_either_route_scores_full():
    from rasplab.analysis.methods.common import MethodResult
    from rasplab.analysis.scoring import score

    twin = _two_route_copy()
    clean = [list(x) for x in ("abca", "cab", "b", "ccba")]
    exp = iv.prepare(twin, clean, "zero")
    truth = gt.effective_circuit(exp, orders=6)
    assert truth.unique is False and len(truth.alternatives) == 2
    routes = [set(keys) for keys in truth.alternative_keys()]
    assert any("L0.H0->output" in r and "L0.H1->output" not in r for r in routes)
    assert any("L0.H1->output" in r and "L0.H0->output" not in r for r in routes)
    for alt in truth.alternatives:  # each route alone is faithful and minimal
        assert gt.verify(exp, alt).ok
    for route in routes:  # a method that ranks exactly one route first is not penalised
        scores = np.array([1.0 if k in route else 0.0 for k in exp.graph.edge_keys])
        result = MethodResult("oracle", scores, np.zeros(exp.graph.n_senders))
        s = score(exp, result, truth, with_faithfulness=False)
        assert s["edge_auc"] == 1.0 and s["target_alternatives"] == 2


def test_reverse_truth_is_unique_under_every_ablation():
    spec = registry.get("reverse")
    c = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    clean, corrupted = gt.sample_dataset(spec, 128, 0)
    for ablation in ("zero", "mean", "resample"):
        exp = iv.prepare(c, clean, ablation, corrupted=corrupted)
        truth = gt.effective_circuit(exp, orders=4)
        assert truth.unique, ablation
        assert truth.keys == gt.effective_circuit(exp).keys  # the greedy truth
