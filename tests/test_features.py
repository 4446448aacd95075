"""Feature methods scored against the planted variables: the truth itself (present, used,
labels, aligned activations), linear probes with their control task, logit lens / DLA,
and the ``rasplab features`` command. Everything is scored against the compiler's
variables and circuit, never against a method's own output."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from rasplab.compiler import compile_program

from rasplab import programs, variants

ROOT = Path(__file__).resolve().parent.parent


@cache
def _model(name: str, rung: str = "compiled"):
    spec = programs.get(name)
    model = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    return spec, variants.make(rung, model, seed=3)


@cache
def _truth(name: str, rung: str = "compiled", samples: int = 64):
    from rasplab.analysis.features import feature_truth

    spec, model = _model(name, rung)
    return model, feature_truth(model, spec.sample_clean(0, samples), program=spec.build())


# ---------------------------------------------------------------------------------------
# The truth


def test_truth_present_and_used_follow_the_circuit():
    model, truth = _truth("reverse")
    assert truth.is_exact and truth.rung == "compiled" and truth.labels_from == "interpreter"
    assert truth.sites[0] == "blocks.0.hook_resid_pre" and len(truth.sites) == 12
    tok = truth.variable("tokens")
    assert all(tok.at(s).present for s in truth.sites)  # the embedding writes it
    assert tok.at("blocks.3.hook_resid_pre").readers == ("L3.H0.v",)
    assert not tok.at("blocks.3.hook_resid_mid").used  # nothing after L3.H0 reads it
    out = truth.variable("reverse")
    assert out.write_site == "blocks.3.hook_resid_mid" and out.computed_by == ("L3.H0",)
    assert not out.at("blocks.3.hook_resid_pre").present
    assert out.at("blocks.3.hook_resid_post").readers == ("output",)
    length = truth.variable("length")  # SelectorWidth: a head and its MLP
    assert length.write_site == "blocks.0.hook_resid_post"
    assert not length.at("blocks.0.hook_resid_mid").present
    assert all(not t.overwritten_by for v in truth.variables.values()
               for t in v.sites.values())
    # the stale cells exist: present, never read again
    assert truth.at("opp_idx-1", "blocks.3.hook_resid_mid").stale


def test_labels_from_interpreter_equal_exact_model_and_rotated():
    from rasplab.analysis.features import feature_truth

    spec, model = _model("sort")
    inputs = spec.sample_clean(1, 32)
    by_interp = feature_truth(model, inputs, program=spec.build())
    by_model = feature_truth(model, inputs)
    _, rot = _model("sort", "rotated")
    rotated = feature_truth(rot, inputs, program=spec.build())
    assert by_model.labels_from == "model" and rotated.rung == "rotated"
    for name, vt in by_interp.variables.items():
        assert vt.valid.all(), name
        np.testing.assert_array_equal(vt.targets, by_model.variables[name].targets)
        np.testing.assert_array_equal(vt.targets, rotated.variables[name].targets)
        assert {s: t.present for s, t in vt.sites.items()} == \
            {s: t.present for s, t in rotated.variables[name].sites.items()}
        assert not np.allclose(rotated.variables[name].basis, vt.basis)


def test_activations_align_with_labels_on_rotated_model():
    """Project the rotated activations on each variable's mapped basis at every site where
    it is present: the coordinates decode to the interpreter's labels."""
    from rasplab.analysis.features import all_activations

    model, truth = _truth("frac_prevs", "rotated")
    acts = all_activations(model, truth)
    assert set(acts) == set(truth.sites)
    for vt in truth.variables.values():
        for site in vt.present_sites:
            coords = acts[site].astype(np.float64) @ vt.basis
            if vt.categorical:
                np.testing.assert_array_equal(coords.argmax(1)[vt.valid], vt.targets[vt.valid])
            else:
                np.testing.assert_allclose(coords[:, 0][vt.valid], vt.targets[vt.valid],
                                           atol=1e-4)


def test_approximate_model_without_program_is_refused():
    import dataclasses

    from rasplab.analysis.features import feature_truth

    spec, model = _model("hist")
    approx = dataclasses.replace(model, meta={**model.meta, "readout": "nearest"})
    with pytest.raises(ValueError, match="approximate"):
        feature_truth(approx, spec.sample_clean(0, 4))
    truth = feature_truth(approx, spec.sample_clean(0, 4), program=spec.build())
    assert not truth.is_exact


# ---------------------------------------------------------------------------------------
# Probes


@pytest.mark.parametrize("name,rung", [("hist", "compiled"), ("frac_prevs", "compiled"),
                                       ("sort", "rotated")])
def test_probes_decode_every_present_variable(name, rung):
    from rasplab.analysis import features

    model, truth = _truth(name, rung)
    report = features.run("probe", model, truth, seed=0)
    present = [v for v in report.variables if v.present]
    assert len(present) == report.summary["present_cells"] > 0
    assert all(v.scores["accuracy"] == 1.0 for v in present), \
        [(v.name, v.site, v.scores["accuracy"]) for v in present if v.scores["accuracy"] < 1]
    # the control task (labels permuted across positions) decodes at about chance
    worst = max(v.scores["control_accuracy"] - v.scores["chance"] for v in report.variables)
    assert worst < 0.1, worst
    # so selectivity is near its ceiling, 1 - chance
    assert all(v.scores["selectivity"] > 1 - v.scores["chance"] - 0.1 for v in present)
    # some output variable cell before its write site is not present and scores below 1
    out = [v for v in report.variables if v.name == truth.output and not v.present]
    assert out and min(v.scores["accuracy"] for v in out) < 0.9


def test_probe_reads_the_planted_subspace():
    """With the planted basis of a variable projected out, a probe on the same activations
    drops to about chance: it was reading that subspace and nothing else."""
    from rasplab.analysis.features import all_activations
    from rasplab.analysis.features.probes import probe_scores

    model, truth = _truth("hist", "rotated")
    site = "blocks.0.hook_resid_pre"
    acts = all_activations(model, truth, sites=[site])
    q, _ = np.linalg.qr(truth.variable("tokens").basis)
    removed = {site: acts[site] - (acts[site] @ q) @ q.T}
    full = probe_scores(truth, acts, [("tokens", site)])[0].scores
    cut = probe_scores(truth, removed, [("tokens", site)])[0].scores
    assert full["accuracy"] == 1.0
    assert cut["accuracy"] < cut["chance"] + 0.1, cut


def test_probe_on_random_data_scores_chance():
    from rasplab.analysis.features.probes import fit_linear, fit_softmax

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 400, 12)).astype(np.float32)
    y = rng.integers(0, 4, size=(4, 400))
    train = np.zeros((4, 400), bool)
    train[:, :300] = True
    pred = fit_softmax(x, y, train, 4)
    acc = (pred[:, 300:] == y[:, 300:]).mean()
    assert abs(acc - 0.25) < 0.1, acc
    yn = rng.normal(size=400)
    fit = fit_linear(x[0], yn, train[0])
    r2 = 1 - ((fit[300:] - yn[300:]) ** 2).sum() / ((yn[300:] - yn[300:].mean()) ** 2).sum()
    assert r2 < 0.1


# ---------------------------------------------------------------------------------------
# Logit lens and DLA


@pytest.mark.parametrize("rung", ["compiled", "rotated"])
def test_dla_ranks_the_planted_output_writer_first(rung):
    from rasplab.analysis import features
    from rasplab.analysis.features.dla import _auc, output_writers

    model, truth = _truth("sort", rung)
    report = features.run("dla", model, truth)
    writers = output_writers(model)
    assert writers == ["L2.H0"]
    top = max(report.components, key=lambda c: c.scores["dla"])
    assert top.name == "L2.H0" and top.writes_output
    assert report.summary["auc"] == 1.0 and report.summary["precision_at_k"] == 1.0
    assert report.summary["completeness"] < 1e-4  # the contributions sum to the read-out
    lens = {v.site: v.scores["lens_accuracy"] for v in report.variables}
    assert lens["blocks.2.hook_resid_mid"] == 1.0 and lens["blocks.2.hook_resid_pre"] < 0.5
    # the scorer: random component scores give an AUC about one half
    labels = np.array([c.writes_output for c in report.components])
    rng = np.random.default_rng(0)
    aucs = [_auc(rng.random(len(labels)), labels) for _ in range(400)]
    assert abs(np.mean(aucs) - 0.5) < 0.05


def test_dla_writers_of_a_retrained_model_are_the_aligned_ones():
    """A retrained model's graph is complete (every component reaches ``output``); the
    planted writer is the component aligned with the output variable's last step."""
    from rasplab.analysis.features.dla import output_writers
    from rasplab.compiler.model_file import load

    model = load(Path(__file__).resolve().parent.parent / "models/demo/hist.retrained.safetensors")
    into_output = {e.sender for e in model.planted.edges if e.receiver == "output"}
    assert len(into_output) == 12  # embed, pos, 8 heads, 2 MLPs
    aligned = model.planted.variables[model.planted.output].computed_by
    assert len(aligned) >= 1 and output_writers(model) == [aligned[-1]]


# ---------------------------------------------------------------------------------------
# The result type and the command line


def test_report_json_shape(capsys):
    from rasplab.cli import main

    assert main(["features", "hist", "--method", "probe", "--samples", "32", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["method"] == "probe" and data["is_exact"] is True
    assert isinstance(data["variables"], list) and data["variables"]
    for v in data["variables"]:
        assert {"name", "site", "present", "used", "accuracy", "selectivity"} <= set(v)
    assert main(["features", "hist", "--method", "dla", "--json", "--samples", "16",
                 "--site", "blocks.0.hook_resid_post"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [v["site"] for v in data["variables"]] == ["blocks.0.hook_resid_post"]
    assert data["components"] and data["summary"]["auc"] == 1.0


@pytest.mark.parametrize("args,needle", [
    (["--method", "nope"], "--method 'nope'"),
    (["--method", "probe", "--site", "blocks.9.hook_resid_pre"], "--site"),
    (["--method", "probe", "--variable", "nope"], "--variable 'nope'"),
    (["--method", "probe", "--rung", "nope"], "--rung 'nope'"),
    (["--method", "dla", "--variable", "tokens"], "dla reads the output"),
])
def test_bad_input_is_one_line(capsys, args, needle):
    from rasplab.cli import main

    assert main(["features", "hist", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rasplab: error: ") and needle in err[0], err


def test_bad_method_is_one_line_without_jax():
    code = textwrap.dedent("""
        import sys
        from rasplab.cli import main
        status = main(["features", "hist", "--method", "saes"])
        assert 'jax' not in sys.modules, 'JAX was imported'
        sys.exit(status)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "unknown feature method" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
