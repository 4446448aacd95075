"""Rung 2 (compressed): a learned D x d projection of frozen compiled weights."""

from __future__ import annotations

import numpy as np
import pytest
from rasplab.compiler import compile_program, outputs_match, rasp
from rasplab.programs import get

pytest.importorskip("optax")
from rasplab.variants import compressed as C  # noqa: E402

FAST = dict(steps=60, eval_every=30, checkpoint_every=30, n_train=512, n_heldout=128,
            batch=64)


@pytest.fixture(scope="module")
def frac():
    spec = get("frac_prevs")
    return spec, compile_program(spec.build(), spec.vocab, spec.max_seq_len)


@pytest.fixture(scope="module")
def trained(frac):
    spec, compiled = frac
    return C.compress(compiled, 8, spec=spec, seed=0, progress=False, **FAST)


def test_loss_falls_and_metrics_recorded(frac, trained):
    _, compiled = frac
    losses = np.array(trained.losses)
    assert len(losses) == 60 and np.isfinite(losses).all()
    assert losses[-10:].mean() < 0.5 * losses[0]
    assert trained.W.shape == (compiled.config.d_model, 8)
    assert trained.params["embed.token"].shape[1] == 8
    assert trained.params["layers.1.attn.q"].shape[1] == 8
    assert trained.params["unembed"].shape[0] == 8
    assert 0.0 <= trained.heldout.inputs <= trained.heldout.positions <= 1.0
    assert trained.reference == "interpreter" and trained.heldout.n_inputs == 128
    assert 0.0 < trained.superposition < 1.0
    assert trained.bases["tokens"].shape == (8, 4)
    np.testing.assert_array_equal(
        trained.bases["indices"], trained.W[compiled.variables["indices"].dims].T
    )


def test_weights_are_the_compiled_ones_mapped_through_W(frac, trained):
    _, compiled = frac
    W = trained.W.astype(np.float64)
    p, q = compiled.params, trained.params
    np.testing.assert_allclose(q["embed.pos"], p["embed.pos"] @ W, atol=1e-5)
    np.testing.assert_allclose(q["layers.1.attn.k"][0], W.T @ p["layers.1.attn.k"][0],
                               atol=1e-3)
    np.testing.assert_allclose(q["layers.1.attn.o"][0], p["layers.1.attn.o"][0] @ W,
                               atol=1e-5)
    np.testing.assert_allclose(q["layers.0.mlp.in"], W.T @ p["layers.0.mlp.in"], atol=1e-5)
    np.testing.assert_allclose(q["unembed"], W.T @ p["unembed"], atol=1e-5)


def test_same_seed_same_W_other_seed_differs(frac, trained):
    spec, compiled = frac
    again = C.compress(compiled, 8, spec=spec, seed=0, progress=False, **FAST)
    np.testing.assert_array_equal(again.W, trained.W)
    assert again.losses == trained.losses
    other = C.compress(compiled, 8, spec=spec, seed=1, progress=False, **FAST)
    assert not np.allclose(other.W, trained.W)


def test_identity_at_full_width_reproduces_the_compiled_model(frac):
    spec, compiled = frac
    D = compiled.config.d_model
    c = C.compress(compiled, D, spec=spec, init="identity", steps=0, progress=False,
                   n_train=64, n_heldout=128)
    for name, w in compiled.params.items():
        np.testing.assert_array_equal(c.params[name], w)
    assert c.heldout.inputs == 1.0 and c.superposition == 0.0
    inputs = list(spec.iter_inputs())
    program = spec.build()
    got = C.run_compressed(c, inputs)
    assert all(outputs_match(g, rasp.evaluate(program, x)) for g, x in zip(got, inputs))
    # nothing to route around when the compressed model is the compiled one
    sources = spec.sample_corrupted(0, inputs[:200])
    effects = C.patch_effects(c, inputs[:200], sources)
    assert {e.variable for e in effects} == set(compiled.variables)
    for effect in effects:
        assert effect.iia == 1.0 and effect.routed_around == 0.0
        assert effect.changed_compressed == effect.changed_compiled
    # same-length sources share the indices; every other variable matters somewhere
    assert all(e.changed_compiled > 0 for e in effects if e.variable != "indices")


def test_resume_from_checkpoint_matches_an_uninterrupted_run(frac, trained, tmp_path):
    spec, compiled = frac
    ckpt = tmp_path / "ckpt"
    first = C.compress(compiled, 8, spec=spec, seed=0, progress=False, checkpoint=ckpt,
                       stop_after=30, **FAST)
    assert first.steps_done == 30
    assert (tmp_path / "ckpt.safetensors").exists() and (tmp_path / "ckpt.json").exists()
    resumed = C.compress(compiled, 8, spec=spec, seed=0, progress=False, checkpoint=ckpt,
                         **FAST)
    assert resumed.steps_done == 30
    np.testing.assert_array_equal(resumed.W, trained.W)
    assert resumed.losses == trained.losses
    with pytest.raises(ValueError, match="another configuration"):
        C.compress(compiled, 8, spec=spec, seed=0, progress=False, checkpoint=ckpt,
                   **{**FAST, "lr": 0.5})


@pytest.mark.parametrize("d", [0, -3, 14, 2.5, True])
def test_bad_d_is_refused(frac, d):
    _, compiled = frac
    with pytest.raises(ValueError, match="d must be an integer between 1 and the compiled"):
        C.compress(compiled, d, progress=False)


def test_decode_nearest_is_argmax_or_nearest_value():
    spec = get("shift_by_1")  # categorical output that can be None
    compiled = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    values = compiled.output_values
    readout = np.array([[[0.9, 0.7, 0.0], [0.2, 0.3, 0.1], [0.0, 0.0, 0.6]]])
    assert C.decode_nearest(compiled, readout) == [[values[0], None, values[2]]]
    frac = compile_program(get("frac_prevs").build(), get("frac_prevs").vocab, 5)
    assert C.decode_nearest(frac, np.array([[[0.26], [0.95], [-0.3]]])) == [[0.25, 1.0, 0.0]]


def test_uniform_inputs_for_a_bare_compiled_program(frac):
    _, compiled = frac
    c = C.compress(compiled, 6, progress=False, **FAST)
    assert c.reference == "compiled" and c.heldout.n_inputs == 128


@pytest.mark.slow
def test_frac_prevs_compresses_below_D_exactly(frac):
    spec, compiled = frac
    c = C.compress(compiled, 7, spec=spec, seed=0, progress=False, stop_at=0.995)
    assert c.d == 7 < compiled.config.d_model
    assert c.heldout.inputs >= 0.995 and c.heldout.n_inputs == 1024
