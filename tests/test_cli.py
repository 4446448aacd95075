"""The ``rasplab`` command line, run as a user would run it (subprocesses).

Subprocesses that execute a model start JAX (a few seconds each), so they are few; the
ones that must not touch JAX (list, compile, errors, --help) also check that it stays
unimported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from rasplab.compiler import compile_program, rasp

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rasplab", *args], capture_output=True, text=True,
        cwd=cwd or ROOT, timeout=300,
    )


def cli_no_jax(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``main(args)`` in a fresh interpreter and fail if it imported JAX."""
    code = textwrap.dedent(f"""
        import sys
        from rasplab.cli import main
        try:
            status = main({list(args)!r})
        except SystemExit as exc:
            status = exc.code
        sys.stdout.flush()
        assert 'jax' not in sys.modules, 'JAX was imported'
        sys.exit(status)
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=300)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rasplab: error: ")
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def user_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("user") / "myprog.py"
    path.write_text(textwrap.dedent("""
        from rasplab.compiler import rasp

        def prev_token():
            '''the token one position back'''
            before = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == q - 1)
            return rasp.Aggregate(before.named("before"), rasp.tokens).named("prev")

        def broken():
            return 42
    """))
    return path


# ---------------------------------------------------------------------------------------
# Without JAX


def test_help_lists_every_command_without_jax():
    proc = cli_no_jax("--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("list", "compile", "run", "check", "show"):
        assert command in proc.stdout


def test_console_script():
    script = Path(sys.executable).parent / "rasplab"
    if not script.exists():
        pytest.skip("the rasplab console script is not installed next to this Python")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "compile" in proc.stdout


def test_import_rasplab_does_not_import_jax():
    code = textwrap.dedent("""
        import sys, rasplab
        assert callable(rasplab.compile_program) and rasplab.rasp.tokens is not None
        assert rasplab.programs.get("reverse").name == "reverse"
        assert 'jax' not in sys.modules
        assert rasplab.Model.__name__ == "Model"
        assert 'jax' in sys.modules
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_parse_vocab_and_tokens():
    from rasplab.inputs import UsageError, parse_tokens, parse_vocab

    assert parse_vocab("1,2, 3") == [1, 2, 3]
    assert parse_vocab("a,-1,b") == ["a", -1, "b"]
    for bad in ("", "a,,b", "1,1"):
        with pytest.raises(UsageError):
            parse_vocab(bad)
    assert parse_tokens(["3", "1"], [1, 2, 3]) == [3, 1]
    assert [type(t) for t in parse_tokens(["3", "1"], [1, 2, 3])] == [int, int]
    assert parse_tokens(["1", "2"], [1, 2, "1"]) == ["1", 2]  # the string wins over 1
    assert parse_tokens(["True", "(1, 'a')"], [True, (1, "a")]) == [True, (1, "a")]
    assert parse_tokens(["2.0"], [1, 2]) == [2]
    with pytest.raises(UsageError, match="not in the vocabulary: a b"):
        parse_tokens(["c"], ["a", "b"])


def test_list_without_jax():
    proc = cli_no_jax("list")
    assert proc.returncode == 0, proc.stderr
    assert "reverse" in proc.stdout and "tracr-reverse" in proc.stdout
    assert "tags:" in proc.stdout


def test_list_json_and_tag_filter():
    proc = cli_no_jax("list", "--tag", "numerical", "--json")
    assert proc.returncode == 0, proc.stderr
    programs = json.loads(proc.stdout)
    assert programs and all("numerical" in p["tags"] for p in programs)
    assert {"name", "description", "vocab", "max_seq_len", "tags"} <= set(programs[0])
    assert "reverse" not in {p["name"] for p in programs}


def test_list_unknown_tag():
    assert "unknown tag" in one_error_line(cli_no_jax("list", "--tag", "no-such-tag"))


def test_compile_json_without_jax():
    proc = cli_no_jax("compile", "reverse", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"layers", "heads", "d_model", "mlp_hidden", "params", "compile_seconds"} <= set(data)
    from rasplab.programs import registry

    spec = registry.get("reverse")
    expected = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    assert data["layers"] == expected.config.num_layers
    assert data["d_model"] == expected.config.d_model
    assert data["params"] == expected.stats()["params"]
    assert data["compile_seconds"] >= 0


def test_compile_text_with_overrides_and_save(tmp_path):
    out = tmp_path / "rev"
    proc = cli_no_jax("compile", "reverse", "--vocab", "1,2,3,4", "--max-seq-len", "4",
                      "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "layers" in proc.stdout and "non-zero" in proc.stdout
    from rasplab.compiler.model_file import load

    loaded = load(out.with_suffix(".safetensors"))
    assert loaded.vocab == [1, 2, 3, 4] and loaded.config.max_seq_len == 4


def test_unknown_program_suggests_close_names():
    line = one_error_line(cli_no_jax("compile", "revers"))
    assert "unknown program 'revers'" in line and "reverse" in line


def test_bad_token_is_one_line_without_jax():
    line = one_error_line(cli_no_jax("run", "reverse", "1", "7"))
    assert "'7'" in line and "vocabulary" in line


def test_too_long_input():
    line = one_error_line(cli_no_jax("run", "reverse", "--max-seq-len", "2", "1", "2", "3"))
    assert "3 tokens" in line and "at most 2" in line


def test_unreadable_and_damaged_files(tmp_path):
    assert "not found" in one_error_line(cli_no_jax("run", str(tmp_path / "x.safetensors")))
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    assert "not a rasplab model" in one_error_line(cli_no_jax("compile", str(junk)))
    assert "no such file" in one_error_line(cli_no_jax("run", str(tmp_path / "no.py:f")))


def test_compile_error_is_one_line(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text(textwrap.dedent("""
        from rasplab.compiler import rasp
        def square():
            x = rasp.numerical(rasp.Map(lambda t: t, rasp.tokens)).named("x")
            return rasp.SequenceMap(lambda a, b: a * b, x, x).named("square")
    """))
    line = one_error_line(cli_no_jax("compile", f"{path}:square", "--vocab", "1,2,3",
                                     "--max-seq-len", "3"))
    assert "'square'" in line


def test_user_program_needs_vocab(user_file):
    line = one_error_line(cli_no_jax("compile", f"{user_file}:prev_token"))
    assert "vocab" in line
    line = one_error_line(cli_no_jax("compile", f"{user_file}:missing", "--vocab", "a"))
    assert "no function 'missing'" in line
    line = one_error_line(cli_no_jax("compile", f"{user_file}:broken", "--vocab", "a",
                                     "--max-seq-len", "3"))
    assert "int" in line


def test_check_exit_status_follows_mismatches(monkeypatch, capsys):
    """The CLI plumbing of `check`, with the checker replaced (no JAX needed)."""
    from rasplab.compiler.check import CheckResult, Mismatch

    from rasplab.cli import main
    from rasplab.commands import check as check_cmd

    def fake(*args, **kwargs):
        return CheckResult(program="reverse", inputs=3, checked=3, mismatches=1,
                           outside_domain=0, unclean=0, exhaustive=True, causal=False,
                           lengths=[1, 2, 3], seconds=0.0,
                           examples=[Mismatch([1, 2], [2, 1], [2, 2], [1])])

    monkeypatch.setattr(check_cmd, "check_program", fake)
    monkeypatch.setattr("rasplab.inputs.Target.compile", lambda self, causal=False: None)
    assert main(["check", "reverse", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["mismatches"] == 1 and data["ok"] is False
    assert data["examples"][0]["got"] == [2, 2]
    assert main(["check", "reverse"]) == 1
    assert "MISMATCH" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------
# With JAX (each starts JAX once)


def test_run_reverse():
    proc = cli("run", "reverse", "1", "2", "3")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "3 2 1"


def test_run_trace_table():
    proc = cli("run", "reverse", "3", "1", "2", "--trace")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[-3:] == ["3", "1", "2"]
    cells = [line.split() for line in lines[2:] if line.strip() and not line.startswith("(one")]
    names = [c[0] for c in cells if not c[0].startswith("blocks.") and c[0] != "interpreter"]
    # variables in the order the model computes them, the output last
    assert names[:3] == ["tokens", "indices", "length"] and names[-2:] == ["reverse", "(output)"]
    by_var: dict = {}
    current = None
    for c in cells:
        if c[0] not in ("interpreter",) and not c[0].startswith("blocks."):
            current = c[0]
        by_var.setdefault(current, []).append(c)
    interp, site = by_var["length"]
    assert interp[-4:] == ["interpreter", "3", "3", "3"]
    assert site[-4:] == ["blocks.0.hook_resid_post", "3", "3", "3"]
    assert by_var["reverse"][0][-3:] == by_var["reverse"][1][-3:] == ["2", "1", "3"]
    assert by_var["(output)"][0][-3:] == ["2", "1", "3"]


def test_run_user_program_file(user_file):
    proc = cli("run", f"{user_file}:prev_token", "--vocab", "a,b,c", "--max-seq-len", "4",
               "a", "b", "c", "c", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    prev = rasp.Aggregate(
        rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == q - 1), rasp.tokens
    )
    assert data["output"] == rasp.evaluate(prev, ["a", "b", "c", "c"]) == [None, "a", "b", "c"]
    assert data["clean"] is True


def test_saved_model_runs_like_the_program(tmp_path):
    model = tmp_path / "sorted.safetensors"
    proc = cli_no_jax("compile", "sort", "-o", str(model))
    assert proc.returncode == 0, proc.stderr
    proc = cli("run", str(model.with_suffix(".json")), "3", "1", "4", "1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "1", "3", "4"]


@pytest.mark.parametrize("program", ["reverse", "frac_prevs"])
def test_check_agrees(program):
    proc = cli("check", program, "--max-seq-len", "4", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert data["mismatches"] == 0 and data["inputs"] > 0
    assert data["inputs"] == data["checked"] + data["outside_domain"]
    assert data["exhaustive"] is True


def test_show_writes_png(tmp_path):
    out = tmp_path / "pics" / "reverse.png"
    proc = cli_no_jax("show", "reverse", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


# ---------------------------------------------------------------------------------------
# The checker itself, in process


def test_check_program_counts_domain_and_catches_a_broken_model():
    from rasplab.compiler.check import check_program
    from rasplab.programs import registry

    spec = registry.get("sort_unique")
    result = check_program(spec, max_seq_len=3)
    assert result.ok and result.exhaustive
    assert result.outside_domain > 0 and result.outside_reasons == {
        "spec.valid": result.outside_domain
    }
    assert result.checked + result.outside_domain == result.inputs == 5 + 25 + 125

    program = spec.build()
    compiled = compile_program(program, spec.vocab, 3)
    unembed = compiled.params["unembed"]
    compiled.params["unembed"] = unembed[:, ::-1].copy()  # decode every value as another
    broken = check_program(program, spec.vocab, 3, compiled=compiled, max_examples=2)
    assert not broken.ok and broken.mismatches > 0 and len(broken.examples) == 2
    example = broken.examples[0]
    assert example.expected == rasp.evaluate(program, example.input)
    assert example.positions


def test_check_program_samples_large_domains():
    from rasplab.compiler.check import check_program
    from rasplab.programs import registry

    result = check_program(registry.get("reverse"), exhaustive_limit=10, samples=40)
    assert not result.exhaustive and result.inputs == 40 and result.ok
