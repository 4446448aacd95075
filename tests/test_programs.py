"""The program library: registry, specs, samplers, and what every program computes."""

from __future__ import annotations

import ast
import math
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import rasplab.programs as programs
from library_references import REFERENCE as FAMILY_REFERENCE
from rasplab.compiler import rasp
from rasplab.programs import (
    TAGS,
    ProgramSpec,
    UnknownProgramError,
    filter_programs,
    get,
    list_programs,
    load_user_program,
    parse_vocab,
    program_names,
    structure,
)
from rasplab.programs.tracr_lib import make_hist, make_sort, shift_by

SPECS = list_programs()
NAMES = [spec.name for spec in SPECS]
STRUCTURAL = {
    "attention-only", "mlp-heavy", "numerical", "selector-width", "composite-selector",
    "uses-length",
}


def ev(name: str, xs: list) -> list:
    return rasp.evaluate(get(name).build(), xs)


# --- plain-Python references, one per library program -----------------------------------


def _dyck_labels(xs: list, pairs: dict[str, str], nested: bool) -> list[str]:
    """T/P/F prefix labels; ``pairs`` maps closing to opening tokens."""
    out, stack, depth, broken = [], [], Counter(), False
    for x in xs:
        if x in pairs.values():
            stack.append(x)
            depth[x] += 1
        elif x in pairs:
            if nested:
                broken = broken or not stack or stack.pop() != pairs[x]
            else:
                depth[pairs[x]] -= 1
                broken = broken or depth[pairs[x]] < 0
        out.append("F" if broken else ("T" if (not stack if nested else not +depth) else "P"))
    return out


def _shuffle_balanced(xs: list, pairs: dict[str, str]) -> bool:
    return _dyck_labels(xs, pairs, nested=False)[-1] == "T"


def _induction(xs: list) -> list:
    out = []
    for q, x in enumerate(xs):
        earlier = [k for k in range(q) if xs[k] == x]
        out.append(xs[earlier[-1] + 1] if earlier else None)
    return out


def _digits_plus(xs: list, base: int, addend: int) -> list:
    value = sum(d * base**i for i, d in enumerate(xs)) + addend
    return [(value // base**i) % base for i in range(len(xs))]


def _binary_add(xs: list) -> list:
    a = sum(int(t[0]) << i for i, t in enumerate(xs))
    b = sum(int(t[1]) << i for i, t in enumerate(xs))
    return [((a + b) >> i) & 1 for i in range(len(xs))]


def _first_max_count(xs: list):
    counts = Counter(xs)
    return min(xs, key=lambda t: (-counts[t], xs.index(t)))


def _everywhere(value, xs: list) -> list:
    return [value] * len(xs)


PARENS = {")": "("}
TWO = {")": "(", "}": "{"}

REFERENCE = {
    "length": lambda xs: _everywhere(len(xs), xs),
    "reverse": lambda xs: xs[::-1],
    "hist": lambda xs: [xs.count(x) for x in xs],
    "sort_unique": sorted,
    "sort": sorted,
    "sort_freq": lambda xs: [
        xs[i] for i in sorted(range(len(xs)), key=lambda i: (-xs.count(xs[i]), i))
    ],
    "frac_prevs": lambda xs: [xs[: i + 1].count("x") / (i + 1) for i in range(len(xs))],
    "pair_balance": lambda xs: [
        (xs[: i + 1].count("(") - xs[: i + 1].count(")")) / (i + 1) for i in range(len(xs))
    ],
    "shuffle_dyck": lambda xs: _everywhere(_shuffle_balanced(xs, PARENS), xs),
    "shuffle_dyck2": lambda xs: _everywhere(_shuffle_balanced(xs, TWO), xs),
    "detect_pattern_abc": lambda xs: [
        None if i < 2 else xs[i - 2 : i + 1] == list("abc") for i in range(len(xs))
    ],
    "detect_pattern_aba": lambda xs: [
        None if i < 2 else xs[i - 2 : i + 1] == list("aba") for i in range(len(xs))
    ],
    "count_less_freq_2": lambda xs: _everywhere(sum(xs.count(x) <= 2 for x in xs), xs),
    "count_a": lambda xs: _everywhere(xs.count("a"), xs),
    "position_checksum": lambda xs: [(t + i + len(xs)) % 3 for i, t in enumerate(xs)],
    "shift_by_1": lambda xs: ([None] + xs)[: len(xs)],
    "shift_by_2": lambda xs: ([None, None] + xs)[: len(xs)],
    "double_hist": lambda xs: [
        len({y for y in xs if xs.count(y) == xs.count(x)}) for x in xs
    ],
    "sort_stable": sorted,
    "most_freq": lambda xs: _everywhere(_first_max_count(xs), xs),
    "dyck1": lambda xs: _dyck_labels(xs, PARENS, nested=True),
    "dyck2": lambda xs: _dyck_labels(xs, TWO, nested=True),
    "induction": _induction,
    "induction_composite": _induction,
    "first_occurrence": lambda xs: [x not in xs[:i] for i, x in enumerate(xs)],
    "prev_occurrence_count": lambda xs: [xs[:i].count(x) for i, x in enumerate(xs)],
    "later_different_count": lambda xs: [
        sum(y != x for y in xs[i + 1 :]) for i, x in enumerate(xs)
    ],
    "prefix_count_a": lambda xs: [xs[: i + 1].count("a") for i in range(len(xs))],
    "running_parity": lambda xs: [xs[: i + 1].count(1) % 2 for i in range(len(xs))],
    "pointer_follow_1": lambda xs: [xs[x] for x in xs],
    "pointer_follow_2": lambda xs: [xs[xs[x]] for x in xs],
    "majority": lambda xs: _everywhere(int(xs.count(1) > xs.count(0)), xs),
    "palindrome": lambda xs: _everywhere(xs == xs[::-1], xs),
    "next_token": lambda xs: xs[1:] + [None],
    "copy_first": lambda xs: _everywhere(xs[0], xs),
    "swap_pairs": lambda xs: [xs[i ^ 1] if i ^ 1 < len(xs) else None for i in range(len(xs))],
    "last_token": lambda xs: _everywhere(xs[-1], xs),
    "rotate_left": lambda xs: xs[1:] + xs[:1],
    "same_as_first": lambda xs: [x == xs[0] for x in xs],
    "max_token": lambda xs: _everywhere(max(xs), xs),
    "count_smaller": lambda xs: [sum(y < x for y in xs) for x in xs],
    "count_distinct": lambda xs: _everywhere(len(set(xs)), xs),
    "contains_ab": lambda xs: _everywhere("ab" in "".join(xs), xs),
    "prefix_mean": lambda xs: [sum(xs[: i + 1]) / (i + 1) for i in range(len(xs))],
    "prefix_mean_above": lambda xs: [
        int(sum(xs[: i + 1]) / (i + 1) > 1.5) for i in range(len(xs))
    ],
    "mean_floor": lambda xs: _everywhere(math.floor(sum(xs) / len(xs) + 1e-9), xs),
    "increment_base3": lambda xs: _digits_plus(xs, 3, 1),
    "binary_add": _binary_add,
    "digit_sum_mod3": lambda xs: _everywhere(sum(xs) % 3, xs),
    **FAMILY_REFERENCE,
}
GENERATED = [spec.name for spec in SPECS if spec.family == "generated"]


def _same(got: list, want: list) -> bool:
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if isinstance(w, float) or isinstance(g, float):
            if g is None or w is None or not math.isclose(g, w, abs_tol=1e-9):
                return False
        elif g != w:
            return False
    return True


# --- the builders run under tracr ------------------------------------------------------

BUILDER_MODULES = [
    "combinators", "tracr_lib", "rasp_paper", "mechanisms", "arithmetic", "strings", "counting",
    "sorting", "digits", "patterns", "brackets", "pointers", "means", "copying",
    "random_programs",
]
# What the builders may use of ``rasp``: names tracr's rasp module has, minus ``length``
# (tracr cannot compile it) and anything rasplab-only.
TRACR_API = {
    "tokens", "indices", "Map", "SequenceMap", "LinearSequenceMap", "Select", "Comparison",
    "Aggregate", "SelectorWidth", "numerical", "categorical", "SOp", "Selector", "Value",
}
STDLIB_OK = {"__future__", "collections.abc", "math", "itertools", "functools", "dataclasses"}


@pytest.mark.parametrize("module", BUILDER_MODULES)
def test_builders_use_only_tracr_api(module):
    path = Path(programs.__file__).parent / f"{module}.py"
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert {a.name for a in node.names} <= STDLIB_OK | {"numpy"}, ast.dump(node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: only other builder modules
                assert node.module in BUILDER_MODULES, node.module
            elif node.module == "rasplab.compiler":
                assert [a.name for a in node.names] == ["rasp"]
            else:
                assert node.module in STDLIB_OK, node.module
        elif isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "rasp":
            assert node.attr in TRACR_API, f"{module}.py uses rasp.{node.attr}"


# --- the registry -----------------------------------------------------------------------


def test_library_size_and_unique_names():
    assert len(SPECS) >= 150
    assert len(set(NAMES)) == len(NAMES)
    assert program_names() == NAMES


def test_every_program_has_a_reference():
    """Every hand-written program; the generated ones are checked against the interpreter
    only (tests/test_library_families.py)."""
    assert set(REFERENCE) == set(NAMES) - set(GENERATED)


def test_get_returns_the_spec():
    spec = get("reverse")
    assert isinstance(spec, ProgramSpec) and spec.name == "reverse"


def test_unknown_name_lists_close_matches():
    with pytest.raises(KeyError) as info:
        get("revers")
    assert isinstance(info.value, ValueError) and isinstance(info.value, UnknownProgramError)
    assert "reverse" in str(info.value)
    with pytest.raises(UnknownProgramError, match="shift_by_1"):
        get("shift_by")


def test_tag_filter():
    tracr = filter_programs(tag="tracr-lib")
    assert {"length", "reverse", "hist", "sort", "shift_by_2"} <= {s.name for s in tracr}
    assert all("tracr-lib" in s.tags for s in tracr)
    both = filter_programs(tag=["rasp-paper", "dyck"])
    assert {s.name for s in both} >= {"dyck1", "dyck2", "pair_balance"}
    composite = filter_programs(tag="composite-selector", exclude="selector-width")
    assert composite and all("selector-width" not in s.tags for s in composite)
    assert all(s.causal_ok for s in filter_programs(causal_ok=True))
    with pytest.raises(ValueError, match="unknown tag"):
        filter_programs(tag="no-such-tag")


def test_tags_come_from_the_fixed_vocabulary():
    for spec in SPECS:
        assert spec.tags <= TAGS, spec.name
        assert ("causal" in spec.tags) == spec.causal_ok, spec.name
    assert len({t for s in SPECS for t in s.tags}) >= 15


def test_spec_rejects_bad_fields():
    build = lambda: rasp.tokens
    with pytest.raises(ValueError, match="unknown tags"):
        ProgramSpec("x", "d", build, ("a",), 3, tags=frozenset({"nope"}))
    with pytest.raises(ValueError, match="min_len"):
        ProgramSpec("x", "d", build, ("a",), 3, min_len=4)
    spec = ProgramSpec("x", "d", build, {"b", "a"}, 3, tags=frozenset({"causal"}))
    assert spec.vocab == ("a", "b") and spec.causal_ok


# --- every program ----------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in NAMES if n not in GENERATED])
def test_program_runs_and_matches_its_reference(name):
    spec = get(name)
    program = spec.build()
    assert isinstance(program, rasp.SOp)
    assert spec.build() is not program  # a fresh program each call
    assert not structure.duplicate_names(program)
    rng = np.random.default_rng(0)
    for xs in spec.sample_clean(rng, 40):
        out = rasp.evaluate(program, xs)
        assert len(out) == len(xs)
        assert _same(out, REFERENCE[name](list(xs))), (xs, out)


@pytest.mark.parametrize("name", NAMES)
def test_samplers_stay_in_the_domain(name):
    spec = get(name)
    rng = np.random.default_rng(1)
    clean = spec.sample_clean(rng, 30)
    corrupted = spec.sample_corrupted(rng, clean)
    assert len(clean) == len(corrupted) == 30
    vocab = set(spec.vocab)
    for xs, ys in zip(clean, corrupted):
        for seq in (xs, ys):
            assert spec.min_len <= len(seq) <= spec.max_seq_len
            assert set(seq) <= vocab
            assert all(type(t) in (int, str) for t in seq)  # no numpy scalars
            assert spec.is_valid(seq)
        assert len(ys) == len(xs) and ys != xs


def test_samplers_are_reproducible():
    spec = get("dyck2")
    assert spec.sample_clean(7, 5) == spec.sample_clean(np.random.default_rng(7), 5)


@pytest.mark.parametrize("name", NAMES)
def test_structural_tags_match_the_graph(name):
    spec = get(name)
    assert structure.structural_tags(spec.build()) == spec.tags & STRUCTURAL


@pytest.mark.parametrize("name", NAMES)
def test_tracr_compatibility_tags(name):
    spec = get(name)
    program = spec.build()
    inputs = spec.sample_clean(2, 25)
    dynamic = structure.tracr_dynamic_issues(program, inputs)
    issues = structure.tracr_static_issues(program) + dynamic
    assert bool(issues) == ("beyond-tracr" in spec.tags), issues
    assert any("non-binary" in i for i in dynamic) == ("non-binary-mean" in spec.tags)


@pytest.mark.parametrize("name", NAMES)
def test_causal_flag(name):
    spec = get(name)
    inputs = spec.sample_clean(3, 40)
    assert structure.looks_only_backwards(spec.build(), inputs, spec.valid) == spec.causal_ok


@pytest.mark.parametrize("name", [s.name for s in filter_programs(tag="dyck")])
def test_bracket_samples_hold_both_answers(name):
    spec = get(name)
    program = spec.build()
    rng = np.random.default_rng(4)
    clean = spec.sample_clean(rng, 60)
    corrupted = spec.sample_corrupted(rng, clean)
    for batch in (clean, corrupted):
        finals = {rasp.evaluate(program, xs)[-1] for xs in batch}
        assert len(finals) >= 2, finals
    if name in ("shuffle_dyck", "shuffle_dyck2"):
        assert finals == {True, False}


def test_restricted_domains():
    sort_unique = get("sort_unique")
    assert not sort_unique.is_valid([1, 1])
    assert sort_unique.is_valid([3, 1])
    assert all(len(set(xs)) == len(xs) for xs in sort_unique.iter_inputs([3]))
    pointer = get("pointer_follow_2")
    assert not pointer.is_valid([0, 4]) and pointer.is_valid([1, 0])
    assert not get("reverse").is_valid([1, 9])
    assert len(list(get("shuffle_dyck").iter_inputs([4]))) == 16


# --- hand-worked values -----------------------------------------------------------------


def test_reverse_hist_length():
    assert ev("reverse", [1, 2, 3]) == [3, 2, 1]
    assert ev("hist", ["a", "b", "a", "c"]) == [2, 1, 2, 1]
    assert ev("length", ["a", "b", "c"]) == [3, 3, 3]
    assert rasp.evaluate(make_hist(), list("abac")) == [2, 1, 2, 1]


def test_sorts():
    assert ev("sort", [2, 4, 1, 2]) == [1, 2, 2, 4]
    assert ev("sort_unique", [3, 1, 2]) == [1, 2, 3]
    assert ev("sort_stable", [3, 1, 3, 2]) == [1, 2, 3, 3]
    assert ev("sort_freq", ["b", "a", "b", "c"]) == ["b", "b", "a", "c"]
    assert ev("most_freq", ["a", "c", "c", "b"]) == ["c"] * 4
    # tracr's docstring example: keys 2,4,2,1 with max_seq_len 5
    program = make_sort(rasp.tokens, rasp.tokens, max_seq_len=5, min_key=1)
    assert rasp.evaluate(program, [2, 4, 3, 1]) == [1, 2, 3, 4]


def test_frac_prevs_and_pair_balance():
    assert ev("frac_prevs", ["x", "w", "x", "x", "y"]) == pytest.approx(
        [1, 1 / 2, 2 / 3, 3 / 4, 3 / 5]
    )
    # opens 1,1,2/3,2/4,2/5 minus closes 0,0,1/3,1/4,2/5
    assert ev("pair_balance", ["(", "(", ")", "a", ")"]) == pytest.approx(
        [1, 1, 1 / 3, 1 / 4, 0]
    )


def test_dyck_programs():
    assert ev("shuffle_dyck2", ["(", "{", ")", "}"]) == [True] * 4
    assert ev("shuffle_dyck2", ["(", ")", "}", "{"]) == [False] * 4
    assert ev("shuffle_dyck", ["(", ")", "(", ")"]) == [True] * 4
    assert ev("shuffle_dyck", ["(", "(", ")", ")", ")", "("]) == [False] * 6
    assert ev("dyck1", ["(", ")", ")", "("]) == ["P", "T", "F", "F"]
    assert ev("dyck2", ["(", "{", "}", ")"]) == ["P", "P", "P", "T"]
    assert ev("dyck2", ["(", "{", ")", "}"]) == ["P", "P", "F", "F"]  # shuffle-only
    assert ev("dyck2", ["{", "}", "(", ")"]) == ["P", "T", "P", "T"]


def test_pattern_and_shift():
    assert ev("detect_pattern_abc", list("abcabc")) == [None, None, True, False, False, True]
    assert ev("shift_by_1", ["a", "b", "c"]) == [None, "a", "b"]
    assert ev("shift_by_2", ["a", "b", "c"]) == [None, None, "a"]
    assert rasp.evaluate(shift_by(3, rasp.tokens), [1, 2, 3, 4]) == [None, None, None, 1]
    assert ev("contains_ab", list("cab")) == [True] * 3
    assert ev("contains_ab", list("bac")) == [False] * 3


def test_induction():
    assert ev("induction", list("abaca")) == [None, None, "b", None, "c"]
    assert ev("induction_composite", list("aab")) == [None, "a", None]


def test_counting():
    assert ev("count_less_freq_2", list("aaabbc")) == [3] * 6
    assert ev("count_a", list("abca")) == [2] * 4
    assert ev("double_hist", list("aabbc")) == [2, 2, 2, 2, 1]
    assert ev("first_occurrence", list("abab")) == [True, True, False, False]
    assert ev("prev_occurrence_count", list("aaba")) == [0, 1, 0, 2]
    assert ev("later_different_count", list("abca")) == [2, 2, 1, 0]
    assert ev("running_parity", [1, 0, 1, 1]) == [1, 1, 0, 1]
    assert ev("count_distinct", list("aba")) == [2, 2, 2]
    assert ev("majority", [1, 0, 1]) == [1, 1, 1]


def test_copying_and_pointers():
    assert ev("pointer_follow_1", [2, 0, 1]) == [1, 2, 0]
    assert ev("pointer_follow_2", [2, 0, 1]) == [0, 1, 2]
    assert ev("swap_pairs", list("abc")) == ["b", "a", None]
    assert ev("rotate_left", list("abc")) == ["b", "c", "a"]
    assert ev("max_token", [1, 3, 2, 3]) == [3, 3, 3, 3]
    assert ev("palindrome", list("aba")) == [True] * 3
    assert ev("palindrome", list("ab")) == [False] * 2


def test_arithmetic_and_means():
    assert ev("increment_base3", [2, 2, 0]) == [0, 0, 1]  # 8 + 1 = 9
    assert ev("binary_add", ["11", "10", "00"]) == [0, 0, 1]  # 3 + 1 = 4
    assert ev("prefix_mean", [0, 3, 1]) == pytest.approx([0, 1.5, 4 / 3])
    assert ev("prefix_mean_above", [0, 3, 3]) == [0, 0, 1]
    assert ev("mean_floor", [3, 3, 0]) == [2, 2, 2]


# --- user programs ----------------------------------------------------------------------


def _write(tmp_path, body: str):
    path = tmp_path / "user_prog.py"
    path.write_text(textwrap.dedent(body))
    return path


USER_FILE = """
    from rasplab.compiler import rasp

    def bare():
        \"\"\"Doubles each token.\"\"\"
        return rasp.Map(lambda x: 2 * x, rasp.tokens).named("double")

    def as_dict():
        return {"program": bare(), "vocab": [1, 2], "max_seq_len": 4, "tags": ["causal"]}

    def as_spec():
        from rasplab.programs import ProgramSpec
        return ProgramSpec("mine", "spec", bare, (1, 2, 3), 3)

    def wrong():
        return 42

    def needs_arg(x):
        return x

    NOT_A_FUNCTION = 3
"""


def test_load_bare_sop(tmp_path):
    path = _write(tmp_path, USER_FILE)
    spec = load_user_program(f"{path}:bare", vocab="1,2,3", max_seq_len=4)
    assert spec.name == "bare" and spec.vocab == (1, 2, 3) and spec.max_seq_len == 4
    assert spec.description == "Doubles each token."
    assert rasp.evaluate(spec.build(), [1, 3]) == [2, 6]


def test_load_dict_and_spec(tmp_path):
    path = _write(tmp_path, USER_FILE)
    spec = load_user_program(f"{path}:as_dict")
    assert spec.vocab == (1, 2) and spec.max_seq_len == 4 and spec.causal_ok
    assert rasp.evaluate(spec.build(), [2]) == [4]
    spec = load_user_program(f"{path}:as_spec", max_seq_len="5")
    assert spec.name == "mine" and spec.max_seq_len == 5


@pytest.mark.parametrize(
    "target, kwargs, message",
    [
        ("{path}:bare", {"max_seq_len": 4}, "--vocab"),
        ("{path}:bare", {"vocab": [1]}, "--max-seq-len"),
        ("{path}:missing", {}, "no function 'missing'.*bare"),
        ("{path}:NOT_A_FUNCTION", {}, "not a function"),
        ("{path}:wrong", {}, "returned a int"),
        ("{path}:needs_arg", {}, "no arguments"),
        ("{dir}/nope.py:f", {}, "no such file"),
        ("{path}", {}, "path/to/file.py:function"),
    ],
)
def test_load_errors(tmp_path, target, kwargs, message):
    path = _write(tmp_path, USER_FILE)
    target = target.format(path=path, dir=tmp_path)
    with pytest.raises(ValueError, match=message) as info:
        load_user_program(target, **kwargs)
    assert "\n" not in str(info.value)


def test_parse_vocab():
    assert parse_vocab("1, 2,x") == (1, 2, "x")
    assert parse_vocab(["a", "b"]) == ("a", "b")
    assert parse_vocab(None) is None
