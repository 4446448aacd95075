"""Every library program compiles to a model that agrees with ``rasp.evaluate``.

Each program is its own test id. Inputs: every valid input of lengths
``min_len..max_seq_len`` when there are fewer than ``EXHAUSTIVE_LIMIT`` of them, otherwise
a few thousand (half from the spec's clean sampler, half uniform and filtered by the
spec's ``valid``). The comparison is done here, against the interpreter, position by
position (``strategies.compare``); nothing is delegated to the library's own checker.

Programs tagged causal are also compiled with ``causal=True`` and compared with both
``rasp.causal_evaluate`` and ``rasp.evaluate``.

The default run covers the cheap programs (small input space, few layers: the cost is the
jit compile of each model) of the original catalog; the task families and the generated
family get their default-run check on samples in ``tests/test_library_families.py`` (one
jit for all of them). ``-m slow`` runs every program here.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from rasplab.compiler import CompileError, compile_program, rasp
from rasplab.programs import list_programs
from rasplab.programs.families import all_family_specs
from rasplab.programs.generated import generated_specs
from strategies import compare, same_output

EXHAUSTIVE_LIMIT = 10_000
SAMPLES = 3000
FAST_MAX_INPUTS = 1_400  # default run: programs with at most this many valid inputs ...
FAST_MAX_LAYERS = 4  # ... and at most this many layers
FAST_CAUSAL = 6  # causal compilations in the default run (the cheapest ones)


def _input_space(spec) -> int:
    return sum(len(spec.vocab) ** n for n in range(spec.min_len, spec.max_seq_len + 1))


_LAYERS: dict[str, int] = {}


def _layers(spec) -> int:
    if spec.name not in _LAYERS:
        try:
            compiled = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
            _LAYERS[spec.name] = compiled.config.num_layers
        except Exception:  # noqa: BLE001 - refused: cheap, so the default run reports it
            _LAYERS[spec.name] = 0
    return _LAYERS[spec.name]


CHECKED_ELSEWHERE = {s.name for s in all_family_specs() + generated_specs()}


def _is_fast(spec) -> bool:
    return (
        spec.name not in CHECKED_ELSEWHERE
        and _input_space(spec) <= FAST_MAX_INPUTS
        and _layers(spec) <= FAST_MAX_LAYERS
    )


def _params(causal: bool) -> list:
    specs = [s for s in list_programs() if s.causal_ok or not causal]
    if causal:
        original = [s for s in specs if s.name not in CHECKED_ELSEWHERE]
        by_cost = sorted(original, key=lambda s: (_input_space(s) * max(_layers(s), 1), s.name))
        fast = {s.name for s in by_cost[:FAST_CAUSAL]}
    else:
        fast = {s.name for s in specs if _is_fast(s)}
    return [
        pytest.param(s, id=s.name, marks=() if s.name in fast else pytest.mark.slow)
        for s in specs
    ]


def domain_inputs(spec, seed: int = 0, limit: int = EXHAUSTIVE_LIMIT) -> tuple[list[list], bool]:
    """The inputs to check, and whether they are all of the domain."""
    lengths = range(spec.min_len, spec.max_seq_len + 1)
    valid = spec.valid or (lambda xs: True)
    if _input_space(spec) < limit:
        return [list(xs) for n in lengths for xs in itertools.product(spec.vocab, repeat=n)
                if valid(list(xs))], True
    rng = np.random.default_rng(seed)
    inputs = [list(xs) for xs in spec.sample_clean(rng, SAMPLES // 2)]
    while len(inputs) < SAMPLES:
        n = int(rng.integers(spec.min_len, spec.max_seq_len + 1))
        xs = [spec.vocab[int(i)] for i in rng.integers(0, len(spec.vocab), size=n)]
        if valid(xs):
            inputs.append(xs)
    return inputs, False


def _check(spec, causal: bool) -> None:
    from rasplab.compiler.model import Model

    program = spec.build()
    inputs, _ = domain_inputs(spec)
    assert inputs, f"{spec.name}: no valid inputs"
    try:
        compiled = compile_program(program, spec.vocab, spec.max_seq_len, causal=causal)
    except CompileError as err:
        if not causal:
            raise  # a library program must compile
        # The compiler proves causality conservatively; a refusal is allowed, but the
        # library's claim that the program only looks back must then hold in the interpreter.
        _assert_semantically_causal(spec, program, inputs)
        pytest.skip(f"refused with causal=True (the program is causal in the interpreter): {err}")
    evaluators = [rasp.causal_evaluate, rasp.evaluate] if causal else [rasp.evaluate]
    res = compare(Model(compiled), program, inputs, evaluators)
    assert res.checked > 0, f"{spec.name}: every input was outside the domain"
    assert res.outside_domain <= res.checked, (
        f"{spec.name}: {res.outside_domain} of {len(inputs)} valid inputs make the "
        "interpreter raise"
    )
    if res.mismatches:
        xs, got, expected = res.mismatches[0]
        pytest.fail(
            f"{spec.name} (causal={causal}): the compiled model disagrees with the "
            f"interpreter on {len(res.mismatches)} of {res.checked} inputs; first: {xs!r}: "
            f"model {got!r}, evaluate {expected!r}"
        )


def _assert_semantically_causal(spec, program, inputs: list[list]) -> None:
    for xs in inputs:
        try:
            expected = rasp.evaluate(program, xs)
        except rasp.EvaluationError:
            continue
        assert same_output(rasp.causal_evaluate(program, xs), expected), (
            f"{spec.name} is tagged causal, but causal_evaluate differs from evaluate on {xs!r}"
        )


@pytest.mark.parametrize("spec", _params(causal=False))
def test_library_program_is_exact(spec):
    _check(spec, causal=False)


@pytest.mark.parametrize("spec", _params(causal=True))
def test_causal_library_program_is_exact(spec):
    _check(spec, causal=True)


def test_the_library_is_not_empty_and_fast_subset_is_real():
    params = _params(causal=False)
    assert len(params) >= 10
    fast = [p for p in params if not p.marks]
    assert fast, "no library program is in the default run"


def test_sampled_inputs_lie_in_the_domain():
    """The sampled path (for input spaces too large to enumerate) draws valid inputs."""
    spec = next((s for s in list_programs() if s.valid is not None), list_programs()[0])
    inputs, exhaustive = domain_inputs(spec, seed=1, limit=0)
    assert not exhaustive and len(inputs) == SAMPLES
    assert all(spec.is_valid(xs) for xs in inputs)
    assert len({len(xs) for xs in inputs}) > 1
