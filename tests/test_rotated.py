"""The rotated rung (variants/rotated.py): the same function, nothing axis-aligned.

Shown here: over the whole library the rotated model agrees with the interpreter on sampled
inputs with clean read-outs; the weights really are dense (no variable on a residual axis);
the ablation-matched ground truth under zero, mean and resample ablation equals the
compiled model's (a representative set in the fast suite, the whole library in the slow
one); patching and ACDC give the same edge scores up to float32 tolerance; the file
round-trips with its rotated circuit.
"""

from __future__ import annotations

import numpy as np
import pytest
from library import swept
from rasplab.analysis import ground_truth as gt
from rasplab.analysis import interventions as iv
from rasplab.analysis.methods import acdc, patching
from rasplab.compiler import compile_program, model_file, outputs_match, rasp
from rasplab.compiler.model import Model
from rasplab.programs import registry
from rasplab.variants.rotated import random_orthogonal, rotate

FAST = ["reverse", "frac_prevs", "hist", "count_less_freq_2"]
ALL = swept()


@pytest.fixture(scope="module")
def models():
    cache = {}

    def get(name):
        if name not in cache:
            spec = registry.get(name)
            c = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
            cache[name] = (spec, c, rotate(c, seed=3))
        return cache[name]

    return get


def test_random_orthogonal_is_orthogonal_and_seeded():
    r = random_orthogonal(17, 5)
    assert np.allclose(r.T @ r, np.eye(17), atol=1e-12)
    assert np.array_equal(r, random_orthogonal(17, 5))
    assert not np.allclose(r, random_orthogonal(17, 6))


@pytest.mark.parametrize("name", ALL)
def test_rotated_agrees_with_interpreter(models, name):
    spec, c, r = models(name)
    xs = spec.sample_clean(0, 48)
    model = Model(r)
    got = model.run(xs, strict=True)  # strict: every read-out must be clean
    for x, g in zip(xs, got):
        assert outputs_match(g, rasp.evaluate(spec.build(), x)), (name, x)
    # the weights are dense: no variable lives on one residual axis
    assert all(v.dims is None for v in r.planted.variables.values() if v.basis.size)
    used = np.abs(c.params["embed.token"]).sum(1) > 0  # every row but PAD's
    assert (np.count_nonzero(r.params["embed.token"][used], axis=1) > 0.9 * c.config.d_model
            ).all()


def _truth_keys(compiled, spec, ablation):
    clean, corrupted = gt.sample_dataset(spec, 64, 0)
    return gt.ground_truth(compiled, clean, ablation, corrupted=corrupted).keys


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("ablation", ["zero", "mean", "resample"])
def test_rotated_ground_truth_equals_compiled(models, name, ablation):
    spec, c, r = models(name)
    assert _truth_keys(r, spec, ablation) == _truth_keys(c, spec, ablation)


@pytest.mark.slow
@pytest.mark.parametrize("name", registry.program_names())
def test_rotated_ground_truth_equals_compiled_whole_library(models, name):
    spec, c, r = models(name)
    for ablation in ("zero", "mean", "resample"):
        assert _truth_keys(r, spec, ablation) == _truth_keys(c, spec, ablation), ablation


@pytest.mark.parametrize("name", ["reverse", "frac_prevs"])
def test_methods_give_the_same_edge_scores(models, name):
    spec, c, r = models(name)
    clean, corrupted = gt.sample_dataset(spec, 64, 0)
    a = iv.prepare(c, clean, "resample", corrupted=corrupted, complete=True)
    b = iv.prepare(r, clean, "resample", corrupted=corrupted, complete=True)
    assert a.graph.edge_keys == b.graph.edge_keys
    pa, pb = patching(a), patching(b)
    np.testing.assert_allclose(pb.edge_scores, pa.edge_scores, atol=1e-4, rtol=1e-3)
    ca, cb = acdc(a), acdc(b)
    np.testing.assert_allclose(cb.edge_scores, ca.edge_scores, atol=1e-4, rtol=1e-3)
    assert ca.circuit_keys(a.graph) == cb.circuit_keys(b.graph)


def test_rotated_file_round_trip(models, tmp_path):
    spec, c, r = models("reverse")
    weights, _ = model_file.save(r, tmp_path / "rot.safetensors")
    back = model_file.load(weights)
    assert back.meta["variant"] == {"rung": "rotated", "seed": 3}
    for name, v in r.planted.variables.items():
        np.testing.assert_array_equal(back.planted.variables[name].basis, v.basis)
    xs = spec.sample_clean(1, 16)
    assert Model(back).run(xs) == Model(c).run(xs)


def test_rotating_twice_is_refused(models):
    _, _, r = models("hist")
    with pytest.raises(ValueError, match="already a rotated variant"):
        rotate(r)


@pytest.mark.parametrize("name", ["reverse", "frac_prevs", "hist", "sort"])
def test_subspace_iia_follows_the_rotated_bases(models, name):
    """Patching each variable's *rotated* basis reaches IIA 1.0; patching the old
    axis-aligned directions no longer carries the variable (the basis really moved)."""
    from rasplab.analysis.interchange import interchange_accuracy
    from rasplab.compiler.interchange import as_compiled

    spec, c, r = models(name)
    prog = as_compiled(spec.build(), spec.vocab, spec.max_seq_len)
    bases = spec.sample_clean(0, 24)
    sources = spec.sample_corrupted(1, bases)
    rotated = interchange_accuracy(r, prog, bases, sources)
    assert all(res.iia == 1.0 for res in rotated.values()), {
        v: res.iia for v, res in rotated.items()}
    axis = {v: c.planted.variables[v].basis for v in r.planted.variables}
    old = interchange_accuracy(r, prog, bases, sources, subspaces=axis)
    moved = [v for v, res in old.items() if res.changed and res.iia < 1.0]
    assert moved, "patching the unrotated directions still works: the basis did not move"
    # the variables whose counterfactual changes some output all lose it
    assert moved == [v for v, res in old.items() if res.changed]
