"""The intervention engine: clean runs match the model, patches touch exactly what they name."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from rasplab.analysis import interventions as iv
from rasplab.compiler import compile_program, rasp
from rasplab.compiler.model import Model, attention, attention_mask, decode, layer_params
from rasplab.programs import registry

from tests.test_circuit import CASES


def _sample(vocab, max_len, n, seed):
    rng = np.random.default_rng(seed)
    clean = [list(rng.choice(vocab, size=int(rng.integers(1, max_len + 1)))) for _ in range(n)]
    corrupted = [list(rng.choice(vocab, size=len(s))) for s in clean]
    return clean, corrupted


@pytest.fixture(scope="module")
def setups():
    out = {}
    for name, (build, vocab, n) in CASES.items():
        program = build()
        c = compile_program(program, vocab, n)
        clean, corrupted = _sample(vocab, n, 256, seed=len(name))  # shapes as in ground truth
        out[name] = (program, c, clean, corrupted)
    return out


@pytest.fixture(scope="module")
def exps(setups):
    """Zero and resample experiments per program (sharing one graph, so compiled code)."""
    out = {}
    for name, (_, c, clean, corrupted) in setups.items():
        g = iv.edge_graph(c)
        out[name] = {
            "zero": iv.prepare(c, clean, "zero", graph=g),
            "resample": iv.prepare(c, clean, "resample", corrupted=corrupted, graph=g),
        }
    return out


@pytest.fixture(scope="module")
def reverse(exps):
    return exps["reverse"]["resample"]


@pytest.mark.parametrize("name", list(CASES))
def test_clean_run_matches_model(setups, exps, name):
    program, c, clean, _ = setups[name]
    exp = exps[name]["zero"]
    if name in ("reverse", "two_heads"):  # (compiling the model's own forward is slow)
        ref = np.asarray(Model(c).forward(np.asarray(exp.ids)))
        np.testing.assert_allclose(np.asarray(exp.clean.resid), ref, atol=1e-5)
    # the captured sender outputs sum to the final residual; embed/pos split apart
    np.testing.assert_allclose(np.asarray(exp.clean.outputs.sum(0)),
                               np.asarray(exp.clean.resid), atol=1e-5)
    ids = np.asarray(exp.ids)
    np.testing.assert_array_equal(np.asarray(exp.clean.outputs[0]), c.params["embed.token"][ids])
    np.testing.assert_array_equal(np.asarray(exp.clean.outputs[1][0]),
                                  c.params["embed.pos"][: ids.shape[1]])
    # decoded outputs are the interpreter's
    decoded = exp.decoded()
    for b, xs in enumerate(clean):
        assert decoded[b][1 : 1 + len(xs)] == rasp.evaluate(program, xs)


def test_decode_codes_agree_with_model_decode(setups, exps):
    rng = np.random.default_rng(0)
    for name in ("reverse", "frac_prevs"):
        _, c, clean, _ = setups[name]
        exp = exps[name]["zero"]
        resid = np.asarray(exp.clean.resid)
        for scale in (0.0, 0.3, 0.7):
            noisy = resid + scale * rng.normal(size=resid.shape).astype(np.float32)
            decoded, clean_mask = decode(c, noisy)
            readout = noisy @ c.params["unembed"]
            codes, ok = iv.decode_codes(exp.graph, readout)
            values = c.output_values
            mine = [[(None if i < 0 else values[i]) if c.output_variable.encoding ==
                     "categorical" else values[i] for i in row] for row in np.asarray(codes)]
            assert mine == decoded
            np.testing.assert_array_equal(np.asarray(ok), clean_mask)


def test_edge_patch_changes_only_its_reader(reverse):
    """Patching embed->L3.H0.v: the value input sees the corrupted embedding; the query and
    key of the same head, and every other reader of embed, still see the clean one."""
    exp = reverse
    g = exp.graph
    mask = g.mask(["embed->L3.H0.v"], value=0.0)
    run = exp.run(mask, capture=True)
    clean_in = np.asarray(exp.clean.inputs)
    got_in = np.asarray(run.inputs)
    target = g.receivers.index(("L3.H0", "v"))
    for r, recv in enumerate(g.receivers):
        if r == target:
            continue
        if recv == ("output", None):
            continue  # downstream of the patched head
        np.testing.assert_array_equal(got_in[r], clean_in[r], err_msg=str(recv))
    expected = clean_in[target] - np.asarray(exp.clean.outputs[0]) + np.asarray(exp.ablated[0])
    np.testing.assert_allclose(got_in[target], expected, atol=1e-6)
    assert not np.allclose(got_in[target], clean_in[target])
    # every sender upstream of L3.H0 wrote exactly what it wrote in the clean run
    np.testing.assert_array_equal(np.asarray(run.outputs[:-1]), np.asarray(exp.clean.outputs[:-1]))


def test_edge_patch_matches_hand_computation(setups, exps):
    """Zero-ablate pos->L3.H0.k by hand with compiler.model's pieces."""
    _, c, _, _ = setups["reverse"]
    exp = exps["reverse"]["zero"]
    ids = exp.ids
    model = Model(c)
    _, cache = model.forward(ids, capture=True)
    x = cache["blocks.3.hook_resid_pre"]
    pos = exp.clean.outputs[1]
    p = layer_params(exp.params, 3, "attn")
    heads, _ = attention(p, x, x - pos, x, attention_mask(ids, model.pad_id, False))
    final = x + heads.sum(1)
    want = np.asarray(final) @ c.params["unembed"]
    got = exp.run(exp.graph.mask(["pos->L3.H0.k"], value=0.0)).readout
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)


def test_node_patch_equals_patching_all_its_edges(exps):
    exp = exps["two_heads"]["resample"]
    g = exp.graph
    for name in ("embed", "L0.H1", "L0.MLP"):
        s = g.sender_index(name)
        node_mask = np.ones(g.n_senders, np.float32)
        node_mask[s] = 0.0
        edges = [i for i, (snd, _) in enumerate(g.edges) if snd == s]
        by_node = exp.run(node_mask=node_mask).readout
        by_edges = exp.run(g.mask(edges, value=0.0)).readout
        np.testing.assert_allclose(np.asarray(by_node), np.asarray(by_edges), atol=1e-6)


def test_sweep_equals_one_at_a_time(exps):
    exp = exps["two_heads"]["resample"]
    masks = iv.single_edge_masks(exp.graph.n_edges)
    swept = exp.run_masks(masks, batch_size=4).readout  # 13 masks: the last chunk is padded
    for i in range(exp.graph.n_edges):
        one = exp.run(masks[i]).readout
        np.testing.assert_allclose(np.asarray(swept[i]), np.asarray(one), atol=1e-6)
    eff = exp.effects(masks, batch_size=4)
    for i in (0, 4, 12):
        ch = iv.compare(exp.graph, exp.ids, exp.clean.readout, swept[i])
        assert int(eff.n_changed[i]) == int(ch.n_changed)
        assert float(eff.max_change[i]) == pytest.approx(float(ch.max_change), abs=1e-6)


def test_masks_are_traced_no_recompile(exps):
    exp = exps["two_heads"]["resample"]
    rng = np.random.default_rng(1)
    f = iv._jitted(exp.graph, False)
    exp.run(np.ones(exp.graph.n_edges, np.float32))
    before = f._cache_size()
    for _ in range(3):
        exp.run(rng.random(exp.graph.n_edges).astype(np.float32))
    assert f._cache_size() == before


def test_complete_graph_extra_edges_are_no_ops(setups):
    _, c, clean, _ = setups["two_heads"]
    exp = iv.prepare(c, clean, "zero", complete=True)
    extra = [i for i, s in enumerate(exp.graph.structural) if not s]
    assert extra
    masks = iv.single_edge_masks(exp.graph.n_edges)[extra]
    masks = np.concatenate([masks, exp.graph.mask(extra, value=0.0)[None]])  # and all at once
    eff = exp.effects(masks)
    assert float(np.max(eff.max_change)) == 0.0


def test_ablation_values(setups):
    _, c, clean, corrupted = setups["frac_prevs"]
    g = iv.edge_graph(c)
    params = iv.params_of(c)
    ids = iv.encode(c, clean, 6)
    cids = iv.encode(c, corrupted, 6)
    mean = iv.ablation_values(g, params, "mean", ids=ids)
    np.testing.assert_allclose(np.asarray(mean[:, 0]),
                               np.asarray(iv.capture(g, params, ids).outputs.mean(1)), atol=1e-6)
    res = iv.ablation_values(g, params, "resample", corrupted_ids=cids)
    np.testing.assert_array_equal(np.asarray(res), np.asarray(iv.capture(g, params, cids).outputs))
    assert not np.asarray(iv.ablation_values(g, params, "zero", ids=ids)).any()
    with pytest.raises(ValueError, match="corrupted"):
        iv.ablation_values(g, params, "resample", ids=ids)
    with pytest.raises(ValueError, match="unknown ablation"):
        iv.ablation_values(g, params, "noise", ids=ids)


def test_mask_gradients_for_attribution(exps):
    """The edge mask is differentiable (EAP / subnetwork probing build on this)."""
    exp = exps["frac_prevs"]["resample"]

    def metric(m):
        readout = exp.run(m).readout
        return jnp.sum((readout - exp.clean.readout) ** 2)

    grad = jax.grad(metric)(jnp.full(exp.graph.n_edges, 0.5))
    assert np.all(np.isfinite(np.asarray(grad)))
    assert np.abs(np.asarray(grad)).max() > 0


def test_graph_lookup_errors(reverse):
    g = reverse.graph
    assert g.edge_index("embed->L3.H0.v") == g.edge_index(
        {"from": "embed", "to": "L3.H0", "input": "v"})
    with pytest.raises(KeyError):
        g.edge_index("pos->L3.H0.v")
    with pytest.raises(KeyError):
        g.sender_index("L9.H9")


@pytest.mark.parametrize("ablation", ["resample", "zero"])
def test_jitted_vmap_closing_over_the_experiment_is_finite_and_equal(ablation):
    """A jitted vmap that closes over the ablated values as constants gives the same,
    finite read-outs as the form that passes them as arguments (an old note said the
    closure form returned NaN on jax 0.10.2 CPU; this guards against it coming back)."""
    spec = registry.get("reverse")
    c = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    clean = spec.sample_clean(0, 64)
    corrupted = spec.sample_corrupted(1, clean)
    exp = iv.prepare(c, clean, ablation, corrupted=corrupted if ablation == "resample" else None,
                     complete=True)
    masks = np.random.default_rng(0).uniform(size=(32, exp.graph.n_edges)).astype(np.float32)
    closure = jax.jit(jax.vmap(lambda m: exp.run(m).readout))(masks)
    args = jax.jit(jax.vmap(
        lambda m, p, i, a: iv.run_patched(exp.graph, p, i, a, m).readout,
        in_axes=(0, None, None, None)))(masks, exp.params, exp.ids, exp.ablated)
    assert np.isfinite(np.asarray(closure)).all()
    np.testing.assert_allclose(np.asarray(closure), np.asarray(args), atol=1e-6)
