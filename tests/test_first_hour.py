"""A researcher's first hour (issue 16): activations in forward order, ``trace``, and the
rough edges a new user hits, each as the exact command that used to fail."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from rasplab.compiler import CompileError, compile_program, compile_rasp_to_model, rasp

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rasplab", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=300)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rasplab: error: ") and "Traceback" not in proc.stderr
    return lines[0]


def reverse_program() -> rasp.SOp:
    length = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE))
    opp_idx = (length - rasp.indices - 1).named("opp_idx")
    flip = rasp.Select(rasp.indices, opp_idx, rasp.Comparison.EQ)
    return rasp.Aggregate(flip, rasp.tokens).named("reverse")


@pytest.fixture(scope="module")
def reverse_model():
    return compile_rasp_to_model(reverse_program(), vocab={1, 2, 3}, max_seq_len=5)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("first_hour")
    (d / "bad.py").write_text(textwrap.dedent("""
        from rasplab.compiler import rasp

        def listy():
            return rasp.Map(lambda x: [x], rasp.tokens).named("listy")

        def nan():
            return rasp.numerical(
                rasp.Map(lambda x: float("nan") if x == 2 else 1.0, rasp.tokens).named("nanny"))

        def tenth():
            return rasp.Map(lambda x: 10 // x, rasp.tokens).named("tenth")

        def boom():
            raise KeyError("oops")
    """))
    (d / "helpers.py").write_text(textwrap.dedent("""
        from tracr.rasp import rasp
        from tracr.compiler import lib

        def make_rev():
            return lib.make_reverse(rasp.tokens)
    """))
    (d / "tracr_style.py").write_text(textwrap.dedent("""
        from tracr.compiler import compiling
        from helpers import make_rev

        def rev():
            return make_rev()
    """))
    (d / "sibling.py").write_text(textwrap.dedent("""
        from siblib import make

        def prog():
            return make()

        def ascending(rng, length):
            return sorted(int(x) for x in rng.integers(0, 4, size=length))
    """))
    (d / "siblib.py").write_text(textwrap.dedent("""
        from rasplab.compiler import rasp

        def make():
            return rasp.Map(lambda x: x + 1, rasp.tokens).named("inc")
    """))
    return d


# ---------------------------------------------------------------------------------------
# apply and forward(capture=True): forward order, tracr's meaning


def test_apply_residuals_follow_forward_order(reverse_model):
    out = reverse_model.apply(["BOS", 1, 2, 3])
    n = reverse_model.config.num_layers
    assert len(out.residuals) == len(out.layer_outputs) == 2 * n
    x = out.input_embeddings
    for i, (resid, added) in enumerate(zip(out.residuals, out.layer_outputs)):
        np.testing.assert_allclose(resid, x + added, atol=1e-6, err_msg=f"sublayer {i}")
        x = resid
    np.testing.assert_array_equal(out.residuals[-1], out.transformer_output)
    # the embedding is not in the list (tracr keeps it apart) and is not its first entry
    assert not np.allclose(out.residuals[0], out.input_embeddings)
    assert out.decoded == ["BOS", 3, 2, 1] and out.in_domain


def test_capture_cache_is_in_forward_order(reverse_model):
    ids = reverse_model.encode([[1, 2, 3]])
    _, cache = reverse_model.forward(ids, capture=True)
    keys = list(cache)
    assert "embed" in keys[0]
    layer_of = [int(k.split(".")[1]) if k.startswith("blocks.") else
                int(k.split(".")[0][1:]) if k[0] == "L" else -1 for k in keys]
    assert layer_of == sorted(layer_of)
    for layer in range(reverse_model.config.num_layers):
        mine = [k for k, lay in zip(keys, layer_of) if lay == layer]
        pre = next(i for i, k in enumerate(mine) if "resid_pre" in k)
        mid = next(i for i, k in enumerate(mine) if "resid_mid" in k)
        post = next(i for i, k in enumerate(mine) if "resid_post" in k)
        assert pre < mid < post


# ---------------------------------------------------------------------------------------
# trace


def test_trace_matches_interpreter_at_every_site(reverse_model):
    t = reverse_model.trace([3, 1, 2])
    assert t.in_domain and t.output == [2, 1, 3]
    names = [v.name for v in t.variables]
    assert names[:2] == ["tokens", "indices"] and names[-1] == "reverse"
    program = reverse_program()
    assert t.variable("reverse").interpreted == rasp.evaluate(program, [3, 1, 2])
    assert t.variable("opp_idx").interpreted == [2, 1, 0]
    for v in t.variables:
        assert v.agrees, v
        sites = list(v.decoded)
        assert sites == t.sites[t.sites.index(sites[0]):]  # present from its write to the end
    assert list(t.variable("tokens").decoded)[0] == "blocks.0.hook_resid_pre"
    reverse_site = list(t.variable("reverse").decoded)[0]
    assert reverse_site == f"blocks.{reverse_model.config.num_layers - 1}.hook_resid_mid"


def test_trace_without_the_program_decodes_only(reverse_model):
    from rasplab.compiler.model import Model

    t = Model(reverse_model.program).trace([1, 2])
    assert all(v.interpreted is None and v.agrees is None for v in t.variables)
    assert t.variable("reverse").decoded[t.sites[-1]] == [2, 1]


# ---------------------------------------------------------------------------------------
# Map functions: unhashable, NaN, raising


def test_map_returning_unhashable_or_nan_is_a_compile_error():
    with pytest.raises(CompileError, match=r"Map 'listy' returns \[\d\] \(a list\).*hashable"):
        compile_program(rasp.Map(lambda x: [x], rasp.tokens).named("listy"), [1, 2], 3)
    nan = rasp.numerical(rasp.Map(lambda x: float("nan") if x == 2 else 1.0, rasp.tokens))
    with pytest.raises(CompileError, match=r"returns NaN on input 2"):
        compile_program(nan.named("nanny"), [1, 2], 3)


def test_cli_map_errors_are_one_line(files):
    for func, words in (("listy", ["'listy'", "hashable"]), ("nan", ["'nanny'", "NaN"])):
        line = one_error_line(cli("compile", f"{files / 'bad.py'}:{func}", "--vocab", "1,2",
                                  "--max-seq-len", "3"))
        assert all(w in line for w in words), line


def test_raising_map_inputs_are_outside_the_domain(tmp_path):
    from rasplab.compiler.model import Model
    from rasplab.compiler.model_file import load, save

    compiled = compile_program(rasp.Map(lambda x: 10 // x, rasp.tokens).named("tenth"),
                               [0, 1, 2], 3)
    assert compiled.meta["raises"][0]["node"] == "tenth"
    save(compiled, tmp_path / "tenth.safetensors")
    for model in (Model(compiled), Model(load(tmp_path / "tenth.safetensors"))):
        inside = model.apply(["BOS", 1, 2])
        assert inside.in_domain and inside.decoded == ["BOS", 10, 5]
        outside = model.apply(["BOS", 1, 0])
        assert not outside.in_domain
        assert "ZeroDivisionError" in outside.outside_domain[0]
        assert "position 1" in outside.outside_domain[0]


def test_cli_run_refuses_an_input_outside_the_domain(files, tmp_path):
    line = one_error_line(cli("run", f"{files / 'bad.py'}:tenth", "--vocab", "0,1,2",
                              "--max-seq-len", "3", "1", "0"))
    assert "outside the domain" in line and "ZeroDivisionError" in line
    saved = tmp_path / "tenth.safetensors"
    proc = cli("compile", f"{files / 'bad.py'}:tenth", "--vocab", "0,1,2", "--max-seq-len", "3",
               "-o", str(saved))
    assert proc.returncode == 0, proc.stderr
    line = one_error_line(cli("run", str(saved), "2", "0"))
    assert "outside the domain" in line and "'tenth'" in line


# ---------------------------------------------------------------------------------------
# Program files


def test_program_function_that_raises_names_file_function_and_type(files):
    line = one_error_line(cli("compile", f"{files / 'bad.py'}:boom", "--vocab", "1,2",
                              "--max-seq-len", "3"))
    assert "bad.py:" in line and "boom()" in line and "KeyError" in line


def test_tracr_imports_suggest_the_flag_and_work_with_it(files):
    target = f"{files / 'tracr_style.py'}:rev"
    line = one_error_line(cli("compile", target, "--vocab", "1,2,3", "--max-seq-len", "4"))
    assert "--tracr-compat" in line
    proc = cli("compile", target, "--vocab", "1,2,3", "--max-seq-len", "4", "--tracr-compat",
               "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["layers"] >= 1


def test_tracr_compat_in_python():
    code = textwrap.dedent("""
        import rasplab
        rasplab.tracr_compat()
        from tracr.rasp import rasp
        from tracr.compiler import compiling, lib
        model = compiling.compile_rasp_to_model(lib.make_hist(), {"a", "b"}, 4,
                                                compiler_bos="BOS")
        assert rasp is rasplab.rasp
        print(model.program.stats()["layers"])
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(compile_program(
        __import__("rasplab.programs.tracr_lib", fromlist=["x"]).make_hist(),
        ["a", "b"], 4).config.num_layers)


def test_sibling_imports_need_no_pythonpath(files, tmp_path):
    proc = cli("compile", f"{files / 'sibling.py'}:prog", "--vocab", "1,2", "--max-seq-len", "3",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_check_with_a_sampler_checks_only_its_inputs(files):
    proc = cli("check", f"{files / 'sibling.py'}:prog", "--vocab", "0,1,2,3", "--max-seq-len",
               "4", "--sampler", f"{files / 'sibling.py'}:ascending", "--samples", "40",
               "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert data["exhaustive"] is False and data["inputs"] == data["checked"] == 40
    line = one_error_line(cli("check", "reverse", "--sampler", "nofile.py"))
    assert "--sampler" in line


# ---------------------------------------------------------------------------------------
# Model files and special tokens


def test_missing_model_halves_are_named(tmp_path):
    line = one_error_line(cli("run", str(tmp_path / "gone.safetensors"), "1"))
    assert "gone.safetensors not found" in line
    saved = tmp_path / "rev.safetensors"
    assert cli("compile", "reverse", "-o", str(saved)).returncode == 0
    saved.with_suffix(".json").unlink()
    line = one_error_line(cli("run", str(saved), "1"))
    assert "rev.json not found" in line and "sidecar is missing" in line


def test_bos_in_vocab_names_the_flag_and_the_flag_works():
    line = one_error_line(cli("compile", "reverse", "--vocab", "BOS,1"))
    assert "--bos" in line
    proc = cli("compile", "reverse", "--vocab", "BOS,1", "--bos", "START", "--json")
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------------------------------
# recover


def test_recover_options_accept_lists_and_scalars():
    from rasplab.commands.recover import _option, method_options
    from rasplab.inputs import UsageError

    assert _option("thresholds=[0.5,0.1]") == ("thresholds", [0.5, 0.1])
    assert _option("thresholds=0.5,0.1") == ("thresholds", [0.5, 0.1])
    assert method_options("acdc", {"thresholds": 0.5}) == {"thresholds": [0.5]}
    assert method_options("acdc", {"thresholds": [0.5, 0.1]}) == {"thresholds": [0.5, 0.1]}
    with pytest.raises(UsageError, match="no option 'nosuch'.*thresholds"):
        method_options("acdc", {"nosuch": 1})
    with pytest.raises(UsageError, match="one value"):
        method_options("eap", {"threshold": [0.1, 0.2]})


def test_recover_with_a_one_token_vocabulary_is_refused():
    line = one_error_line(cli("recover", "reverse", "--method", "eap", "--vocab", "1"))
    assert "corrupted" in line and "--vocab" in line


@pytest.mark.slow  # a full recover run: ground truth plus ACDC, about a minute on 2 cores
def test_recover_thresholds_flag_and_json_details():
    proc = cli("recover", "reverse", "--method", "acdc", "--set", "thresholds=0.5",
               "--samples", "8", "--max-seq-len", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert 0.5 in data["info"]["thresholds"]
    assert len(data["edge_scores"]) == data["n_edges_complete"]
    assert {"embed", "pos"} <= set(data["node_scores"])
    assert data["method_seconds"] >= 0 and data["compile_seconds"] >= 0
    assert data["truth_seconds"] > 0
