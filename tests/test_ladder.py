"""The scoreboard across rungs (experiments/scoreboard.py --rungs ...), its disk cache of
trained models (rasplab.ladder) and its tables (analysis/ladder.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from rasplab.analysis import ladder
from rasplab.analysis.scoreboard import ScoreCell

from rasplab.ladder import RungOptions, VariantCache, model_path, variant_key

SCRIPT = Path(__file__).resolve().parent.parent / "experiments" / "scoreboard.py"
PROGRAM = "copy_first"  # 9 edges, d_model 14: the smallest program with attention
ARGS = ["--programs", PROGRAM, "--rungs", "compiled,rotated,compressed", "--methods",
        "acdc,eap", "--ablations", "resample", "--samples", "32", "--compress-steps", "60",
        "--quiet"]


@pytest.fixture(scope="module")
def scoreboard():
    spec = importlib.util.spec_from_file_location("scoreboard_ladder_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(scope="module")
def across(scoreboard, tmp_path_factory):
    out = tmp_path_factory.mktemp("ladder")
    assert scoreboard([*ARGS, "--out", str(out)]) == 0
    return out


def test_across_rungs_writes_tables_and_a_png_per_rung(across):
    text = (across / "scoreboard.md").read_text()
    assert "## Across rungs" in text and "## Models" in text
    assert "| method | compiled | rotated | compressed |" in text
    assert "Against InterpBench's finding" in text
    for rung in ("compiled", "rotated", "compressed"):
        assert (across / f"scoreboard_{rung}_edge_auc.png").stat().st_size > 0
        assert f"scoreboard_{rung}_edge_auc.png" in text
    assert (across / "scoreboard_ladder.png").stat().st_size > 0
    rows = json.loads((across / "scoreboard.json").read_text())
    assert sorted({r["rung"] for r in rows}) == ["compiled", "compressed", "rotated"]
    by_rung = {r["rung"]: r for r in rows if r["method"] == "acdc"}
    assert all(r["target"] for r in rows)  # each scored against a non-empty truth
    assert all(0.0 <= r["edge_auc"] <= 1.0 for r in rows if r["edge_auc"] is not None)
    small, full = by_rung["compressed"]["model"], by_rung["compiled"]["model"]
    assert small["d_model"] == 7 and full["d_model"] == 14  # ceil(0.5 * 14)
    assert small["readout"] == "nearest" and 0.0 <= small["heldout"]["inputs"] <= 1.0
    assert small["key"] and full["key"] is None


def test_trained_models_are_kept_and_reused(across, scoreboard, capsys):
    path = model_path(across / "scoreboard_models", PROGRAM, "compressed", 0)
    assert path.is_file() and path.with_suffix(".json").is_file()
    assert not list((across / "scoreboard_models").rglob("*.tmp*"))
    before = path.stat().st_mtime_ns
    capsys.readouterr()
    assert scoreboard([*ARGS, "--out", str(across)]) == 0
    assert "0 cells run" in capsys.readouterr().err
    assert path.stat().st_mtime_ns == before


def test_other_options_retrain_and_rescore(scoreboard, tmp_path, capsys):
    args = [a if a != "compiled,rotated,compressed" else "compressed" for a in ARGS]
    assert scoreboard([*args, "--out", str(tmp_path)]) == 0
    path = model_path(tmp_path / "scoreboard_models", PROGRAM, "compressed", 0)
    first = json.loads(path.with_suffix(".json").read_text())["meta"]["ladder"]
    capsys.readouterr()
    changed = [a if a != "60" else "40" for a in args]
    assert scoreboard([*changed, "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "2 stored cells were scored on a model built with other options" in err
    assert "2 cells run" in err
    second = json.loads(path.with_suffix(".json").read_text())["meta"]["ladder"]
    assert first["options"]["steps"] == 60 and second["options"]["steps"] == 40
    assert first["key"] != second["key"]


@pytest.mark.parametrize("args, message", [
    (["--compress", "1.5"], "compress 1.5"),
    (["--compress-steps", "0"], "compress_steps 0"),
    (["--rungs", "compiled,sideways"], "unknown rung 'sideways'"),
])
def test_bad_ladder_options_exit_2(scoreboard, tmp_path, capsys, args, message):
    base = ["--programs", PROGRAM, "--rungs", "compiled,compressed", "--out", str(tmp_path)]
    assert scoreboard([*base, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("scoreboard: error: ") and message in err and "\n" not in err


def test_variant_key_changes_with_what_builds_the_model():
    from rasplab.programs import registry

    spec = registry.get(PROGRAM)
    base = variant_key(spec, "compressed", 0, RungOptions())
    assert base == variant_key(spec, "compressed", 0, RungOptions())
    assert base != variant_key(spec, "compressed", 1, RungOptions())
    assert base != variant_key(spec, "compressed", 0, RungOptions(compress=0.25))
    assert base != variant_key(registry.get("hist"), "compressed", 0, RungOptions())
    # options of another rung do not matter to this one
    assert base == variant_key(spec, "compressed", 0, RungOptions(retrain_steps=5))


def test_rotated_rung_comes_from_the_cache(tmp_path):
    from rasplab.programs import registry

    spec = registry.get(PROGRAM)
    cache = VariantCache(str(tmp_path))
    made = cache.model(spec, "rotated", 3)
    again = cache.model(spec, "rotated", 3)
    assert model_path(tmp_path, PROGRAM, "rotated", 3).is_file()
    for k in made.params:
        np.testing.assert_array_equal(made.params[k], again.params[k])
    assert cache.find(spec, "rotated", 4) is None
    assert cache.model(spec, "compiled", 0).meta.get("variant") is None


# ---------------------------------------------------------------------------------------
# the tables, on hand-made records


def _rec(method, rung, edge_auc, ablation="resample", program="p"):
    cell = ScoreCell(program, rung, method, ablation, 0, 8)
    scores = {"edge_auc": edge_auc, "edge_auc_complete": edge_auc, "node_auc": 1.0,
              "precision": 1.0, "recall": 1.0,
              "faithfulness": {"fraction_unchanged": 1.0}, "edge_auc_structural": 1.0,
              "method_seconds": 0.1, "compile_seconds": 0.0}
    return SimpleNamespace(cell=cell, method=method, ablation=ablation, program=program,
                           scores=scores, error=None, target=["a->b"], model=None, label=program)


def test_ranks_and_moves():
    runs = [_rec("acdc", "compiled", 1.0), _rec("eap", "compiled", 0.8),
            _rec("sp", "compiled", 0.8), _rec("eap_ig", "compiled", 0.9),
            _rec("acdc", "compressed", 0.7), _rec("eap", "compressed", 0.9),
            _rec("sp", "compressed", 0.5), _rec("eap_ig", "compressed", 0.72)]
    values = ladder.means(runs)
    assert ladder.ranks(values, "compiled") == {"acdc": 1, "eap_ig": 2, "eap": 3, "sp": 3}
    assert ladder.ranks(values, "compressed") == {"eap": 1, "eap_ig": 2, "acdc": 3, "sp": 4}
    moves = "\n".join(ladder.rank_moves(runs))
    assert "**acdc**: rank 1 (1.000) -> 3 (0.700), falls 2 places" in moves
    assert "**eap**: rank 3 (0.800) -> 1 (0.900), rises 2 places" in moves
    table = ladder.rank_table(runs)
    assert "| acdc | 1.000 (1) | 0.700 (3) |" in table
    said = "\n".join(ladder.interpbench_comparison(runs))
    assert ("edge_auc_complete on **compressed**: eap 0.900 > eap_ig 0.720 > acdc 0.700 > "
            "sp 0.500") in said
    assert "ACDC best of InterpBench's four: no" in said
    agree = [_rec("acdc", "retrained", 0.9), _rec("eap_ig", "retrained", 0.88),
             _rec("sp", "retrained", 0.6), _rec("eap", "retrained", 0.5)]
    said = "\n".join(ladder.interpbench_comparison(runs + agree))
    assert "on **retrained**" in said and ": no" not in said


def test_undefined_scores_are_left_out():
    runs = [_rec("acdc", "compiled", None), _rec("eap", "compiled", 0.5)]
    assert ladder.ranks(ladder.means(runs), "compiled") == {"eap": 1}
    assert "| acdc | n/a |" in ladder.rank_table(runs)


def test_a_shipped_file_is_used_as_it_is(across, tmp_path):
    import shutil

    from rasplab.programs import registry

    kept = model_path(across / "scoreboard_models", PROGRAM, "compressed", 0)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(kept.with_suffix(suffix), shipped / f"{PROGRAM}.compressed{suffix}")
    cache = VariantCache(str(tmp_path / "empty"), RungOptions(compress=0.25),
                         shipped=(str(shipped),))
    spec = registry.get(PROGRAM)
    assert cache.find(spec, "compressed", 0) == shipped / f"{PROGRAM}.compressed.safetensors"
    assert cache.find(spec, "compressed", 1) is None  # another seed
    assert cache.find(spec, "retrained", 0) is None  # the file says it is compressed
    model = cache.model(spec, "compressed", 0)
    assert model.config.d_model == 7 and not (tmp_path / "empty").exists()
