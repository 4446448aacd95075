"""Rung 3 (retrained): a fresh dense transformer trained with strict interchange
intervention training so the components aligned with each program variable implement it."""

from __future__ import annotations

import numpy as np
import pytest
from rasplab.compiler import compile_program
from rasplab.programs import get

pytest.importorskip("optax")
from rasplab.variants import retrained as R  # noqa: E402
from rasplab.variants import siit  # noqa: E402

FAST = dict(steps=40, eval_every=20, checkpoint_every=20, n_train=512, n_heldout=64,
            batch=64)


@pytest.fixture(scope="module")
def hist():
    spec = get("hist")
    return spec, compile_program(spec.build(), spec.vocab, spec.max_seq_len)


@pytest.fixture(scope="module")
def trained(hist):
    spec, compiled = hist
    return R.retrain(compiled, spec=spec, seed=0, progress=False, **FAST)


def test_architecture_and_alignment_follow_the_compiled_layout():
    spec = get("reverse")
    compiled = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    arch = R.architecture(compiled)
    assert arch.num_layers == 4 and arch.n_heads == 4 and arch.d_mlp == 4 * arch.d_model
    assert arch.d_head == 4  # half the compiled key size 7, rounded up
    al = R.align(compiled, arch)
    assert {v: [s.component for s in sites] for v, sites in al.variables.items()} == {
        "length": ["L0.H0", "L0.MLP"], "opp_idx": ["L1.MLP"], "opp_idx-1": ["L2.MLP"],
        "reverse": ["L3.H0"]}
    assert set(al.outside) | set(al.circuit) == {
        f"L{i}.H{h}" for i in range(4) for h in range(4)} | {f"L{i}.MLP" for i in range(4)}
    assert not set(al.outside) & set(al.circuit)
    opts = R.options(al, arch)
    assert opts.heads[0].sum() == 0 and opts.units[0].sum() == 0  # row 0 patches nothing
    assert opts.heads[1 + opts.variables.index("reverse"), 3, 0] == 1
    assert opts.heads[1 + opts.variables.index("reverse")].sum() == 1


def test_shared_mlp_is_split_between_its_variables():
    spec = get("sort")
    compiled = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    arch = R.architecture(compiled)
    al = R.align(compiled, arch)
    # every aligned MLP range lies inside the MLP and no two variables share a unit
    used: dict[str, set] = {}
    for sites in al.variables.values():
        for s in sites:
            if s.units is not None:
                units = set(range(*s.units))
                assert not used.get(s.component, set()) & units
                used.setdefault(s.component, set()).update(units)
    assert used


def test_loss_falls_and_metrics_recorded(trained):
    losses = trained.trained.losses
    assert losses.shape == (40, 3) and np.isfinite(losses).all()
    for j in range(3):  # interchange, strict, behaviour
        assert losses[-5:, j].mean() < 0.5 * losses[0, j]
    m = trained.trained.metrics
    assert 0.0 <= m.accuracy <= m.accuracy_positions <= 1.0
    assert 0.0 <= m.iia <= 1.0 and 0.0 <= m.strict <= 1.0
    assert m.n_inputs > 0 and m.n_interchange > 0 and m.n_strict > 0
    assert set(m.iia_per_variable) == {"hist"}
    assert [h[0] for h in trained.trained.history] == [20, 40]


def test_same_seed_same_weights_other_seed_differs(hist, trained):
    spec, compiled = hist
    again = R.retrain(compiled, spec=spec, seed=0, progress=False, **FAST)
    for k, v in trained.params.items():
        np.testing.assert_array_equal(again.params[k], v)
    np.testing.assert_array_equal(again.trained.losses, trained.trained.losses)
    other = R.retrain(compiled, spec=spec, seed=1, progress=False, **{**FAST, "steps": 20})
    assert not np.allclose(other.params["unembed"], trained.params["unembed"])


def test_resume_from_checkpoint_matches_an_uninterrupted_run(hist, trained, tmp_path):
    spec, compiled = hist
    ckpt = tmp_path / "ckpt"
    first = R.retrain(compiled, spec=spec, seed=0, progress=False, checkpoint=ckpt,
                      stop_after=20, **FAST)
    assert first.trained.steps_done == 20
    assert (tmp_path / "ckpt.safetensors").exists() and (tmp_path / "ckpt.json").exists()
    resumed = R.retrain(compiled, spec=spec, seed=0, progress=False, checkpoint=ckpt, **FAST)
    assert resumed.trained.steps_done == 20 and resumed.trained.step == 40
    for k, v in trained.params.items():
        np.testing.assert_array_equal(resumed.params[k], v)
    with pytest.raises(ValueError, match="another configuration"):
        R.retrain(compiled, spec=spec, seed=0, progress=False, checkpoint=ckpt,
                  **{**FAST, "lr": 0.5})


def test_model_file_round_trips_as_an_approximate_model(hist, trained, tmp_path):
    from rasplab.compiler.circuit import BasisKind
    from rasplab.compiler.model_file import load, save

    spec, compiled = hist
    model = R.as_model(trained, spec=spec)
    assert not model.is_exact and model.readout.kind.value == "nearest"
    model.network.check()
    info = model.meta["variant"]
    assert info["rung"] == "retrained" and info["seed"] == 0
    assert info["metrics"]["iia"] == trained.trained.metrics.iia
    assert info["heldout"]["inputs"] == trained.trained.metrics.accuracy
    pc = model.planted
    assert all(v.basis_kind is BasisKind.ESTIMATED for v in pc.variables.values())
    assert pc.variables["hist"].basis.shape == (model.config.d_model, 6)
    assert pc.variables["hist"].computed_by == ("L0.H0", "L0.MLP")
    # every earlier-sender/later-receiver pair is an edge; the compiled ones keep carries
    assert pc.edge("L0.H0->L0.MLP").carries == compiled.planted.edge("L0.H0->L0.MLP").carries
    assert pc.edge("L1.H2->output").carries == ()
    paths = save(model, tmp_path / "m.safetensors")
    back = load(paths[0])
    for k, v in model.params.items():
        np.testing.assert_array_equal(back.params[k], v)
    assert back.meta["variant"]["metrics"] == info["metrics"]
    assert not back.is_exact
    assert back.planted.variables["hist"].basis_kind is BasisKind.ESTIMATED
    np.testing.assert_allclose(back.planted.variables["hist"].basis,
                               pc.variables["hist"].basis)
    assert back.planted.edge_keys == pc.edge_keys


def test_decoding_matches_the_training_metric(hist, trained):
    """The file's nearest readout decodes the trained model's outputs the way the trainer
    scored them: accuracy recomputed through ``Model.run`` equals the recorded one."""
    from rasplab.compiler import rasp
    from rasplab.compiler.model import Model

    spec, compiled = hist
    model = R.as_model(trained, spec=spec)
    held = R._sample(compiled, spec, R._seeds(0)[1], FAST["n_heldout"])[0]
    program = spec.build()
    got = Model(model).run(held)
    right = {tuple(x) for x, y in zip(held, got) if y == rasp.evaluate(program, x)}
    assert len(right) / len({tuple(x) for x in held}) == pytest.approx(
        trained.trained.metrics.accuracy)


def test_ground_truth_of_a_trained_model_is_verified_by_intervention(hist, trained):
    from rasplab.analysis.ground_truth import verify
    from rasplab.analysis.interventions import prepare

    spec, compiled = hist
    model = R.as_model(trained, spec=spec)
    clean, corrupted = R._sample(compiled, spec, 3, 64)
    model, report = R.truths(model, compiled, spec, clean, corrupted, ("resample",))
    rep = report["resample"]
    assert rep["verified"] and rep["faithful"] and rep["minimal"] and rep["retrained"]
    truth = model.planted.truth("resample")
    assert truth is not None and sorted(truth.edges) == rep["retrained"]
    # independently: the stored truth's complement ablated changes no output, and each
    # of its edges ablated on top changes one
    exp = prepare(model, clean, "resample", corrupted=corrupted)
    check = verify(exp, exp.graph.mask(truth.edges))
    assert check.ok
    assert not verify(exp, exp.graph.mask(truth.edges[1:])).outputs_unchanged


def test_bad_input_is_refused(hist):
    spec, compiled = hist
    with pytest.raises(ValueError, match="steps must be a whole number"):
        R.retrain(compiled, spec=spec, steps=-1, progress=False)
    with pytest.raises(ValueError, match="batch must be a whole number"):
        R.retrain(compiled, spec=spec, batch=0, progress=False)
    bare = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    bare.meta.pop("source", None)
    with pytest.raises(ValueError, match="needs the program"):
        R.retrain(bare, progress=False)
    from rasplab.variants import make

    with pytest.raises(ValueError, match="unknown rung"):
        make("retraind", compiled)


def test_categorical_loss_matches_the_nearest_readout():
    """argmax of [read-out, 0.5] is the nearest readout's code, so a zero-loss model
    decodes right; None is the extra column."""
    import jax.numpy as jnp
    from rasplab.compiler.readout import Readout, ReadoutKind

    info = siit.OutputInfo.of(Readout("categorical", ("a", "b", "c"), ReadoutKind.NEAREST))
    readout = jnp.asarray([[[0.9, 0.7, 0.0], [0.2, 0.3, 0.1], [0.0, -1.0, 0.6]]])
    assert siit.codes(readout, info).tolist() == [[0, -1, 2]]
    good = siit.output_loss(readout, jnp.asarray([[0, -1, 2]]), info, 0.1)
    bad = siit.output_loss(readout, jnp.asarray([[1, 0, -1]]), info, 0.1)
    assert float(good) < float(bad)
    assert float(siit.output_loss(readout, jnp.asarray([[-2, -2, -2]]), info, 0.1)) == 0.0


@pytest.mark.slow
def test_hist_trains_to_threshold_and_its_circuit_is_the_aligned_one(hist):
    spec, compiled = hist
    r = R.retrain(compiled, spec=spec, seed=0, progress=False, steps=3000)
    m = r.trained.metrics
    assert r.trained.reached_at is not None
    assert m.accuracy >= 0.995 and m.iia >= 0.995 and m.strict >= 0.995
    model = R.as_model(r, spec=spec)
    clean, corrupted = R._sample(compiled, spec, 3, 256)
    model, report = R.truths(model, compiled, spec, clean, corrupted, ("resample",))
    rep = report["resample"]
    assert rep["verified"]
    allowed = set(r.alignment.circuit) | {"embed", "pos", "output"}
    from rasplab.compiler.names import Edge

    for key in rep["retrained"]:
        e = Edge.parse(key)
        assert str(e.sender) in allowed and str(e.receiver) in allowed, key


def _cli_error(capsys, *args: str) -> str:
    from rasplab.cli import main

    try:
        rc = main(list(args))
    except SystemExit as exc:
        rc = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    return err[-1]


def test_cli_bad_input_is_one_line_exit_2(capsys, tmp_path):
    out = str(tmp_path / "m.safetensors")
    line = _cli_error(capsys, "variant", "hist", "--rung", "retrained", "--d", "3", "-o", out)
    assert line.startswith("rasplab: error: --d is for --rung compressed")
    assert "invalid choice: 'retraind'" in _cli_error(
        capsys, "variant", "hist", "--rung", "retraind", "-o", out)
    assert "--steps" in _cli_error(capsys, "variant", "hist", "--rung", "retrained",
                                   "--steps", "0", "-o", out)
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from rasplab.compiler import rasp\n"
        "def square():\n"
        "    x = rasp.numerical(rasp.Map(lambda t: t, rasp.tokens)).named('x')\n"
        "    return rasp.SequenceMap(lambda a, b: a * b, x, x).named('square')\n")
    line = _cli_error(capsys, "variant", f"{bad}:square", "--vocab", "1,2,3",
                      "--max-seq-len", "3", "--rung", "retrained", "-o", out)
    assert line.startswith("rasplab: error: ") and "'square'" in line
    assert not (tmp_path / "m.safetensors").exists()
