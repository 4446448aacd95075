"""The planted circuit (compiler/circuit.py) against component graphs derived by hand.

How the expected edges are derived (see compiler/attention_scores.py, blocks.py):

* every head's query reads ``one`` (the BOS baseline column) and ``bos`` (a query at BOS
  attends to BOS), plus the selector's query variable; its key reads ``bos`` plus the key
  variable; its value reads the aggregated variable (``bos`` alone for a SelectorWidth,
  which counts through the attention it pays to BOS);
* an MLP reads its input variables, usually ``one`` (biases), and ``bos`` only where it
  needs the gate that silences it at BOS: units reading something a head of the same layer
  writes at BOS (a SelectorWidth's scratch ``x:__width__``, an aggregate's default);
  elsewhere every variable is 0 at BOS and ``one`` is too, so no gate is needed;
* ``embed`` writes tokens, Full constants, ``one`` and ``bos``; ``pos`` writes indices.
"""

from __future__ import annotations

import json

import pytest
from rasplab.compiler import compile_program, rasp
from rasplab.compiler.circuit import PlantedCircuit, edge_key
from rasplab.compiler.circuit import planted_circuit as _planted


def planted_circuit(compiled) -> dict:
    """The planted circuit's JSON form (what files and ``circuit --json`` hold)."""
    return _planted(compiled).to_json(plain=True)

EQ, LEQ, TRUE = rasp.Comparison.EQ, rasp.Comparison.LEQ, rasp.Comparison.TRUE


def make_reverse():
    length = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, TRUE)).named("length")
    opp = ((length - rasp.indices).named("opp_idx") - 1).named("opp_idx-1")
    flip = rasp.Select(rasp.indices, opp, EQ).named("flip")
    return rasp.Aggregate(flip, rasp.tokens).named("reverse")


def make_frac_prevs():
    is_x = rasp.numerical(rasp.Map(lambda t: t == "x", rasp.tokens).named("is_x"))
    prevs = rasp.Select(rasp.indices, rasp.indices, LEQ).named("prevs")
    return rasp.numerical(rasp.Aggregate(prevs, is_x, default=0)).named("frac_prevs")


def make_hist():
    return rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, EQ)).named("hist")


def make_two_heads():
    """Two heads in one layer (own token; first token) compared by one MLP."""
    same = rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, EQ), rasp.tokens).named("same")
    zero = rasp.Full(0).named("zero")
    first = rasp.Aggregate(rasp.Select(rasp.indices, zero, EQ), rasp.tokens).named("first")
    return rasp.SequenceMap(lambda x, y: x == y, same, first).named("is_first_tok")


CASES = {
    "reverse": (make_reverse, [1, 2, 3], 5),
    "frac_prevs": (make_frac_prevs, ["w", "x", "y", "z"], 5),
    "hist": (make_hist, ["a", "b", "c", "d"], 5),
    "two_heads": (make_two_heads, ["a", "b", "c"], 5),
}

# (from, to, input, carries), in the documented order: receiver, input, sender.
EXPECTED = {
    "reverse": [
        # L0.H0 computes length = SelectorWidth(Select(tokens, tokens, TRUE)); the TRUE
        # selector is scored through `one` alone, so the head never reads the tokens.
        ("embed", "L0.H0", "q", ["one", "bos"]),
        ("embed", "L0.H0", "k", ["one", "bos"]),
        ("embed", "L0.H0", "v", ["bos"]),
        ("embed", "L0.MLP", None, ["one", "bos"]),
        ("L0.H0", "L0.MLP", None, ["length"]),  # the scratch length:__width__
        # L1.MLP: opp_idx = length - indices (length is clean at BOS: no gate)
        ("embed", "L1.MLP", None, ["one"]),
        ("pos", "L1.MLP", None, ["indices"]),
        ("L0.MLP", "L1.MLP", None, ["length"]),
        # L2.MLP: opp_idx-1 = opp_idx - 1 (a lookup table: no bias unit, no gate, so
        # nothing from embed)
        ("L1.MLP", "L2.MLP", None, ["opp_idx"]),
        # L3.H0: Aggregate(Select(indices, opp_idx-1, EQ), tokens)
        ("embed", "L3.H0", "q", ["one", "bos"]),
        ("L2.MLP", "L3.H0", "q", ["opp_idx-1"]),
        ("embed", "L3.H0", "k", ["bos"]),
        ("pos", "L3.H0", "k", ["indices"]),
        ("embed", "L3.H0", "v", ["tokens"]),
        ("L3.H0", "output", None, ["reverse"]),
    ],
    "frac_prevs": [
        ("embed", "L0.MLP", None, ["tokens"]),  # is_x reads tokens:x only
        ("embed", "L1.H0", "q", ["one", "bos"]),
        ("pos", "L1.H0", "q", ["indices"]),
        ("embed", "L1.H0", "k", ["bos"]),
        ("pos", "L1.H0", "k", ["indices"]),
        ("L0.MLP", "L1.H0", "v", ["is_x"]),  # default 0: no bos in the value
        ("L1.H0", "output", None, ["frac_prevs"]),
    ],
    "hist": [
        ("embed", "L0.H0", "q", ["one", "bos", "tokens"]),
        ("embed", "L0.H0", "k", ["bos", "tokens"]),
        ("embed", "L0.H0", "v", ["bos"]),
        ("embed", "L0.MLP", None, ["one", "bos"]),
        ("L0.H0", "L0.MLP", None, ["hist"]),
        ("L0.MLP", "output", None, ["hist"]),
    ],
    "two_heads": [
        ("embed", "L0.H0", "q", ["one", "bos"]),
        ("pos", "L0.H0", "q", ["indices"]),
        ("embed", "L0.H0", "k", ["bos"]),
        ("pos", "L0.H0", "k", ["indices"]),
        ("embed", "L0.H0", "v", ["tokens"]),
        # Select(indices, Full(0), EQ) depends on the key alone: scored from `one` on the
        # query side, so the head does not read the constant.
        ("embed", "L0.H1", "q", ["one", "bos"]),
        ("embed", "L0.H1", "k", ["bos"]),
        ("pos", "L0.H1", "k", ["indices"]),
        ("embed", "L0.H1", "v", ["tokens"]),
        ("embed", "L0.MLP", None, ["one"]),  # default None: nothing at BOS, no gate
        ("L0.H0", "L0.MLP", None, ["same"]),
        ("L0.H1", "L0.MLP", None, ["first"]),
        ("L0.MLP", "output", None, ["is_first_tok"]),
    ],
}

EXPECTED_NODES = {
    "reverse": ["embed", "pos", "L0.H0", "L0.MLP", "L1.MLP", "L2.MLP", "L3.H0", "output"],
    "frac_prevs": ["embed", "pos", "L0.MLP", "L1.H0", "output"],
    "hist": ["embed", "pos", "L0.H0", "L0.MLP", "output"],
    "two_heads": ["embed", "pos", "L0.H0", "L0.H1", "L0.MLP", "output"],
}


@pytest.fixture(scope="module")
def compiled():
    return {name: compile_program(build(), vocab, n) for name, (build, vocab, n) in CASES.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_edges_match_hand_derivation(compiled, name):
    pc = planted_circuit(compiled[name])
    got = [(e["from"], e["to"], e["input"], e["carries"]) for e in pc["edges"]]
    assert got == EXPECTED[name]
    assert [n["name"] for n in pc["nodes"]] == EXPECTED_NODES[name]
    for e in pc["edges"]:
        assert e["constant"] == (set(e["carries"]) <= {"one", "bos"})


@pytest.mark.parametrize("name", list(CASES))
def test_schema_and_json(compiled, name):
    pc = planted_circuit(compiled[name])
    assert json.loads(json.dumps(pc)) == pc  # plain JSON, round-trips
    assert {"schema", "output", "nodes", "edges", "variables", "selectors", "dag"} <= set(pc)
    for e in pc["edges"]:
        assert set(e) == {"from", "to", "input", "carries", "directions", "constant"}
    slot = {n["name"]: n["slot"] for n in pc["nodes"]}
    assert all(slot[e["from"]] < slot[e["to"]] for e in pc["edges"])
    # the alignment: every variable is computed by some component
    for var, info in pc["variables"].items():
        assert info["computed_by"], var
        for comp in info["computed_by"]:
            assert var in next(n for n in pc["nodes"] if n["name"] == comp)["computes"]


def test_alignment_reverse(compiled):
    pc = planted_circuit(compiled["reverse"])
    by = {v: info["computed_by"] for v, info in pc["variables"].items()}
    assert by == {
        "tokens": ["embed"], "indices": ["pos"], "length": ["L0.H0", "L0.MLP"],
        "opp_idx": ["L1.MLP"], "opp_idx-1": ["L2.MLP"], "reverse": ["L3.H0"],
    }
    mlp0 = next(n for n in pc["nodes"] if n["name"] == "L0.MLP")
    assert mlp0["slices"] == [{"variable": "length", "op": "selector_width",
                               "units": [0, compiled["reverse"].config.mlp_hidden_per_layer[0]]}]
    assert ["flip", "reverse"] in pc["dag"] and ["opp_idx-1", "flip"] in pc["dag"]


def test_edges_come_from_weights_not_intentions(compiled):
    """Zeroing the weights that carry an edge removes it (the graph is read off weights)."""
    c = compiled["reverse"]
    keep = c.params["layers.3.attn.v"].copy()
    try:
        tok = c.variables["tokens"].dims
        c.params["layers.3.attn.v"][:, tok, :] = 0.0
        keys = [edge_key(e) for e in planted_circuit(c)["edges"]]
        assert "embed->L3.H0.v" not in keys
        assert len(keys) == len(EXPECTED["reverse"]) - 1
    finally:
        c.params["layers.3.attn.v"] = keep


def test_compile_hook_if_present(compiled):
    """compile_program stores the planted circuit; it equals planted_circuit() and its
    tagged JSON form round-trips through from_json exactly."""
    for c in compiled.values():
        assert c.circuit is not None
        assert c.circuit.to_json() == _planted(c).to_json()
        data = json.loads(json.dumps(c.circuit.to_json()))
        assert PlantedCircuit.from_json(data).to_json() == c.circuit.to_json()


def test_library_programs_have_consistent_graphs():
    from rasplab.programs import registry

    for spec in registry.list_programs():
        c = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
        pc = planted_circuit(c)
        json.dumps(pc)
        names = [n["name"] for n in pc["nodes"]]
        assert len(set(names)) == len(names)
        slot = {n["name"]: n["slot"] for n in pc["nodes"]}
        assert all(slot[e["from"]] < slot[e["to"]] for e in pc["edges"]), spec.name
        # the output reads exactly what computes the output variable
        into_out = {e["from"] for e in pc["edges"] if e["to"] == "output"}
        assert into_out and into_out <= set(pc["variables"][c.output]["computed_by"]), spec.name
        # every head and MLP reads something and is read by something
        for n in pc["nodes"]:
            if n["kind"] in ("attn", "mlp"):
                assert any(e["to"] == n["name"] for e in pc["edges"]), (spec.name, n["name"])


# ---------------------------------------------------------------------------------------
# The `rasplab circuit` command


def _cli(capsys, *argv):
    from rasplab.cli import main

    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_structural_json_and_text(capsys):
    rc, out, _ = _cli(capsys, "circuit", "hist", "--json")
    assert rc == 0
    data = json.loads(out)
    assert {"nodes", "edges", "variables"} <= set(data) and data["circuit"] == "structural"
    got = [(e["from"], e["to"], e["input"], e["carries"]) for e in data["edges"]]
    assert got == EXPECTED["hist"]
    rc, out, _ = _cli(capsys, "circuit", "hist")
    assert rc == 0 and "6 edges" in out and "L0.MLP  output" in out


def test_cli_ablation_verify_and_png(capsys, tmp_path):
    png = tmp_path / "fp.png"
    rc, out, _ = _cli(capsys, "circuit", "frac_prevs", "--ablation", "resample", "--verify",
                      "--json", "-o", str(png))
    assert rc == 0
    data = json.loads(out)
    assert [edge_key(e) for e in data["edges"]] == [
        "embed->L0.MLP", "L0.MLP->L1.H0.v", "L1.H0->output"]
    assert data["ablation"] == "resample"
    assert data["faithfulness"]["outputs_unchanged"] is True
    assert data["faithfulness"]["max_change"] < 1e-4
    assert data["minimality"] == {"failures": []}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rc, out, _ = _cli(capsys, "circuit", "frac_prevs", "--verify")  # structural, zero
    assert rc == 0 and "verified under zero ablation" in out
    assert "embed->L1.H0.q" in out  # a minimality failure zero ablation cannot see


def test_cli_errors(capsys):
    rc, _, err = _cli(capsys, "circuit", "no_such_program")
    assert rc == 2 and err.startswith("rasplab: error: ")


def test_nearest_readout_decodes_none_only_where_the_output_can_be_none():
    """An approximate model's faint read-out is its argmax unless the output can be None."""
    import numpy as np
    from rasplab.compiler.readout import Readout, ReadoutKind

    faint = np.array([[0.1, 0.3, 0.2]])
    never = Readout("categorical", ("a", "b", "c"), ReadoutKind.NEAREST, can_be_none=False)
    maybe = Readout("categorical", ("a", "b", "c"), ReadoutKind.NEAREST, can_be_none=True)
    exact = Readout("categorical", ("a", "b", "c"), ReadoutKind.EXACT, can_be_none=False)
    assert never.decode(faint)[0] == ["b"]
    assert maybe.decode(faint)[0] == [None]
    values, clean = exact.decode(faint)  # an exact model's faint read-out stays unclean
    assert values == [None] and not clean.any()
