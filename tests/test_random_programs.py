"""Random well-typed programs: compiled exactly, or refused with a message naming why.

For each drawn program, ``compile_program`` either raises ``CompileError`` (allowed, but
counted: refusals must stay a minority, and each message must name an expression) or the
compiled model agrees with ``rasp.evaluate`` on *every* input of lengths 1..max_seq_len
(inputs on which the interpreter raises ``EvaluationError`` are outside the domain and
counted). The causal variant compiles with ``causal=True`` and compares with both
``rasp.causal_evaluate`` and ``rasp.evaluate``.

Each example builds and jit-compiles a new model, which dominates the cost; all inputs of
one program go through one ``Model.run`` call. Run with ``-s`` to see the counts.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from strategies import (
    Case,
    CompileError,
    check_exact,
    names_an_expression,
    programs,
    rasp,
    rebuild,
)

MAX_REFUSAL_RATE = 0.35


def _check_case(case: Case, stats: Counter, refusals: Counter) -> None:
    stats["examples"] += 1
    try:
        res = check_exact(case.program, case.vocab, case.max_seq_len, causal=case.causal)
    except CompileError as err:
        stats["refused"] += 1
        msg = str(err)
        refusals[" ".join(w for w in msg.split() if "'" not in w)[:80]] += 1
        assert names_an_expression(msg, case.program), f"refusal names no expression: {msg}"
        return
    stats["inputs_checked"] += res.checked
    stats["outside_domain"] += res.outside_domain
    stats["mismatching_inputs"] += len(res.mismatches)
    if res.mismatches:
        xs, got, expected = res.mismatches[0]
        raise AssertionError(
            f"compiled model disagrees with the interpreter on {len(res.mismatches)} of "
            f"{res.checked} inputs; first: input {xs!r}: model {got!r}, evaluate {expected!r}"
            f"\n{case!r}"
        )


def _run(max_examples: int, *, causal: bool, lengths=(3, 4, 5)) -> Counter:
    stats: Counter = Counter()
    refusals: Counter = Counter()

    @settings(max_examples=max_examples, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(programs(causal=causal, lengths=lengths))
    def prop(case: Case) -> None:
        _check_case(case, stats, refusals)

    prop()
    rate = stats["refused"] / max(stats["examples"], 1)
    print(f"\nrandom programs (causal={causal}): {dict(stats)}; refusal rate {rate:.1%}")
    for reason, count in refusals.most_common(8):
        print(f"  refused x{count}: {reason}")
    assert stats["examples"] > 0
    assert rate <= MAX_REFUSAL_RATE, (
        f"{rate:.0%} of random programs were refused (limit {MAX_REFUSAL_RATE:.0%}): "
        f"{refusals.most_common(5)}"
    )
    assert stats["inputs_checked"] > 0
    return stats


def test_random_programs_compile_exactly_or_are_refused():
    _run(200, causal=False, lengths=(3, 4))


def test_random_causal_programs_match_both_evaluators():
    _run(40, causal=True, lengths=(3, 4))


@pytest.mark.slow
def test_random_programs_slow():
    _run(3000, causal=False, lengths=(3, 4, 5, 6))


@pytest.mark.slow
def test_random_causal_programs_slow():
    _run(500, causal=True, lengths=(3, 4, 5))


def test_case_source_rebuilds_an_equivalent_program():
    """A failing case prints as a script; that script must rebuild the same program."""
    seen = []

    @settings(max_examples=30, deadline=None, database=None)
    @given(programs())
    def prop(case: Case) -> None:
        again = rebuild(case.source)
        for n in range(1, case.max_seq_len + 1):
            xs = [case.vocab[(i * 3 + n) % len(case.vocab)] for i in range(n)]
            try:
                expected = rasp.evaluate(case.program, xs)
            except rasp.EvaluationError:
                continue
            assert rasp.evaluate(again, xs) == expected
        seen.append(case)

    prop()
    assert seen
