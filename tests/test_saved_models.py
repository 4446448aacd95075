"""Saved models are self-sufficient: a variant or compiled model file carries its planted
circuit, where it came from and a reference table, and check / circuit / recover work on it
(against the program when it can be found again, otherwise against the reference table).
A model file never makes rasplab import code unless asked, and never a changed file."""

from __future__ import annotations

import json
import textwrap

import pytest
from rasplab.compiler import model_file

from rasplab.cli import main

PROGRAM = textwrap.dedent("""
    from rasplab.compiler import rasp

    def double():
        return rasp.Map(lambda x: 2 * x, rasp.tokens).named("double")
""")


def _cli(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def rotated(tmp_path_factory):
    path = tmp_path_factory.mktemp("rot") / "frac.safetensors"
    assert main(["variant", "frac_prevs", "--rung", "rotated", "--seed", "4",
                 "-o", str(path)]) == 0
    return path


def test_variant_file_carries_what_analysis_needs(rotated):
    m = model_file.load(rotated)
    assert m.meta["variant"] == {"rung": "rotated", "seed": 4}
    assert m.meta["source"]["library"] == "frac_prevs"
    assert len(m.meta["reference"]["inputs"]) == len(m.meta["reference"]["outputs"]) > 0
    assert m.circuit is not None and m.planted.variables["frac_prevs"].dims is None


def test_check_a_variant_against_its_library_program(capsys, rotated):
    rc, out, _ = _cli(capsys, "check", str(rotated), "--json")
    data = json.loads(out)
    assert rc == 0 and data["ok"] and data["against"] == "program"
    assert "library program 'frac_prevs'" in data["provenance"]


def test_circuit_and_recover_on_a_variant_file(capsys, rotated):
    rc, out, _ = _cli(capsys, "circuit", str(rotated), "--ablation", "resample", "--json",
                      "--samples", "64")
    assert rc == 0
    keys = [f"{e['from']}->{e['to']}" + (f".{e['input']}" if e["input"] else "")
            for e in json.loads(out)["edges"]]
    assert keys == ["embed->L0.MLP", "L0.MLP->L1.H0.v", "L1.H0->output"]  # as compiled
    rc, out, _ = _cli(capsys, "recover", str(rotated), "--method", "patching", "--json",
                      "--samples", "64")
    assert rc == 0 and json.loads(out)["edge_auc"] == pytest.approx(1.0)


def test_file_program_checked_by_reference_table_unless_imported(capsys, tmp_path):
    src = tmp_path / "prog.py"
    src.write_text(PROGRAM)
    model = tmp_path / "double.safetensors"
    rc, _, _ = _cli(capsys, "compile", f"{src}:double", "--vocab", "1,2,3", "--max-seq-len",
                    "3", "-o", str(model))
    assert rc == 0
    rc, out, _ = _cli(capsys, "check", str(model), "--json")
    data = json.loads(out)
    assert rc == 0 and data["against"] == "reference table" and data["checked"] > 0
    assert "--import-program" in data["provenance"]
    rc, out, _ = _cli(capsys, "check", str(model), "--import-program", "--json")
    data = json.loads(out)
    assert data["against"] == "program" and data["exhaustive"] and data["checked"] == 39
    src.write_text(PROGRAM + "\nEXTRA = 1\n")  # the source changed: never imported
    rc, out, _ = _cli(capsys, "check", str(model), "--import-program", "--json")
    data = json.loads(out)
    assert data["against"] == "reference table" and "has changed" in data["provenance"]


def test_a_wrong_reference_table_is_a_mismatch(capsys, tmp_path):
    """check against the table really compares: a tampered expected output fails."""
    src = tmp_path / "prog.py"
    src.write_text(PROGRAM)
    model = tmp_path / "double.safetensors"
    assert main(["compile", f"{src}:double", "--vocab", "1,2,3", "--max-seq-len", "3",
                 "-o", str(model)]) == 0
    sidecar = tmp_path / "double.json"
    data = json.loads(sidecar.read_text())
    data["meta"]["reference"]["outputs"][0][0] = {"int": 99}
    sidecar.write_text(json.dumps(data))
    capsys.readouterr()
    rc, out, _ = _cli(capsys, "check", str(model), "--json")
    assert rc == 1 and json.loads(out)["mismatches"] == 1


def test_unknown_rung_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["variant", "reverse", "--rung", "sideways", "-o", "x.safetensors"])
    assert exc.value.code == 2
    assert "invalid choice: 'sideways'" in capsys.readouterr().err
