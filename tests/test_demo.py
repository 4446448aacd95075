"""``make demo``'s ladder part on a tiny case: every rung it can build, scored, ranked."""

from __future__ import annotations

from rasplab import demo


def test_demo_ladder_on_a_tiny_program(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo, "SHIPPED", tmp_path / "shipped")  # none shipped here
    out, models = tmp_path / "out", tmp_path / "models"
    status = demo.main(["--skip-table", "--ladder", "copy_first", "--ablations", "resample",
                        "--samples", "16", "--compress-steps", "30", "--models", str(models),
                        "--out", str(out)])
    text = capsys.readouterr().out
    assert status == 0, text
    assert "training the compressed model of copy_first" in text
    assert "| method | compiled | rotated | compressed |" in text  # retrained left out
    assert "left out: copy_first @ retrained: no model file" in text
    assert "**acdc**: rank" in text and "order by mean edge_auc_complete on **compressed**" in text
    assert (out / "demo_ladder.png").stat().st_size > 0
    assert "## Across rungs" in (out / "demo_ladder.md").read_text()
    assert list((models / "compressed").glob("copy_first#0.safetensors"))
    # a second run finds the kept model and trains nothing
    assert demo.main(["--skip-table", "--ladder", "copy_first", "--ablations", "resample",
                      "--samples", "16", "--compress-steps", "30", "--models", str(models),
                      "--rungs", "compiled,compressed"]) == 0
    assert "training the" not in capsys.readouterr().out


def test_demo_refuses_an_unknown_rung(capsys):
    assert demo.main(["--rungs", "compiled,upside_down"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("demo: error: unknown rung 'upside_down'") and "\n" not in err
