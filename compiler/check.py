"""Compiled vs interpreted: does the model agree with ``rasp.evaluate`` on the domain?

``check_program`` compiles a program (or takes a compiled one), runs it on every input of
lengths ``min_len .. max_seq_len`` when there are at most ``exhaustive_limit`` of them, and
otherwise on ``samples`` random inputs (half from the spec's clean sampler when there is a
spec, the rest uniform over the vocabulary), and compares position by position with the
reference interpreter (``rasp.causal_evaluate`` for a causal model). All inputs share
fixed-size batches of one forward pass (see :func:`run_batch`).

Inputs outside the program's domain are counted apart, never as mismatches: those where
the interpreter raises (``rasp.EvaluationError``, or an exception from one of the
program's own functions, which the compiler also treats as "no value") and those the
spec's ``valid`` rejects. A read-out that decodes to the right value but is not clean
(a blend of directions, a number between grid values) is counted in ``unclean``.

JAX is imported only when a model has to be built.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import rasp
from .assemble import CompiledProgram
from .compile import compile_program
from .jsonvalues import plain_value
from .values import same_value as values_equal

EXHAUSTIVE_LIMIT = 10_000


@dataclass
class Mismatch:
    """One input on which the compiled model and the interpreter disagree."""

    input: list
    expected: list
    got: list
    positions: list[int]  # where they differ


@dataclass
class CheckResult:
    """What :func:`check_program` found. ``ok`` means no mismatch."""

    program: str
    inputs: int  # inputs examined, outside the domain included
    checked: int  # inputs inside the domain, compared
    mismatches: int
    outside_domain: int
    unclean: int
    exhaustive: bool
    causal: bool
    lengths: list[int]
    seconds: float
    examples: list[Mismatch] = field(default_factory=list)
    outside_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.mismatches == 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        d["examples"] = [
            {k: plain_value(v) for k, v in asdict(m).items()} for m in self.examples
        ]
        return d


def override_spec(spec: Any, vocab: Sequence | None, max_seq_len: int | None) -> Any:
    """``spec`` with another vocabulary and/or length, or ``None`` if it cannot take them.

    The spec's ``valid`` is kept (it states the domain in general terms); its own input
    generator and sampling lengths are dropped, since they may draw tokens or lengths the
    new vocabulary and length do not have.
    """
    if vocab is None and max_seq_len is None:
        return spec
    if not dataclasses.is_dataclass(spec):
        return None
    changes: dict[str, Any] = {"generate": None, "lengths": None}
    if vocab is not None:
        changes["vocab"] = tuple(vocab)
    if max_seq_len is not None:
        changes["max_seq_len"] = max_seq_len
        changes["min_len"] = min(int(getattr(spec, "min_len", 1)), max_seq_len)
    try:
        return dataclasses.replace(spec, **changes)
    except (TypeError, ValueError):
        return None


def _total_inputs(n_vocab: int, lengths: Sequence[int]) -> int:
    return sum(n_vocab**n for n in lengths)


def _random_inputs(
    spec: Any, vocab: list, lengths: list[int], samples: int, seed: int,
    clean_fraction: float = 0.5,
) -> list[list]:
    rng = np.random.default_rng(seed)
    out: list[list] = []
    n_clean = round(samples * clean_fraction) if spec is not None else 0
    if n_clean:
        out.extend(list(xs) for xs in spec.sample_clean(rng, n_clean))
    for _ in range(samples - n_clean):
        n = lengths[int(rng.integers(0, len(lengths)))]
        out.append([vocab[int(i)] for i in rng.integers(0, len(vocab), size=n)])
    return out


def run_batch(model: Any, inputs: list[list]) -> tuple[list[list], list[bool]]:
    """Decoded outputs of ``model`` on ``inputs`` and whether each whole read-out was
    clean (``Model.run_batch``: one compiled shape for every length)."""
    decoded, clean = model.run_batch(inputs)
    return decoded, [bool(c.all()) for c in clean]


def check_program(
    program: Any,
    vocab: Sequence | None = None,
    max_seq_len: int | None = None,
    *,
    min_len: int | None = None,
    causal: bool = False,
    compiled: CompiledProgram | None = None,
    model: Any = None,
    samples: int = 2000,
    exhaustive_limit: int = EXHAUSTIVE_LIMIT,
    seed: int = 0,
    max_examples: int = 5,
    name: str | None = None,
    inputs: Sequence[Sequence] | None = None,
    sampled_only: bool = False,
) -> CheckResult:
    """Compare the compiled model with the interpreter; see the module docstring.

    ``inputs`` replaces the enumerated or sampled inputs with the given ones.

    ``program`` is a RASP SOp or a library ``ProgramSpec`` (then ``vocab``,
    ``max_seq_len`` and ``min_len`` default to the spec's, and its ``valid`` and clean
    sampler are used). ``compiled`` / ``model`` skip compiling / building the model.
    ``sampled_only`` checks ``samples`` inputs from the spec's clean sampler and nothing
    else (for a program whose domain only its sampler knows).
    """
    t0 = time.perf_counter()
    spec = None
    if not isinstance(program, rasp.RASPExpr) and hasattr(program, "build"):
        name = name or program.name
        spec = override_spec(program, vocab, max_seq_len)
        vocab = list(program.vocab) if vocab is None else list(vocab)
        max_seq_len = program.max_seq_len if max_seq_len is None else max_seq_len
        if min_len is None:
            min_len = min(int(getattr(program, "min_len", 1)), max_seq_len)
        program = program.build()
    if compiled is None and model is not None:
        compiled = model.program
    if compiled is not None:
        vocab = list(compiled.vocab) if vocab is None else list(vocab)
        max_seq_len = compiled.config.max_seq_len if max_seq_len is None else max_seq_len
        causal = compiled.config.causal
    if vocab is None or max_seq_len is None:
        raise ValueError("check_program needs vocab and max_seq_len (or a spec)")
    vocab = list(vocab)
    min_len = 1 if min_len is None else min_len
    if compiled is None:
        compiled = compile_program(program, vocab, max_seq_len, causal=causal)
    if model is None:
        from .model import Model

        model = Model(compiled)
    evaluate = rasp.causal_evaluate if causal else rasp.evaluate

    lengths = list(range(min_len, max_seq_len + 1))
    if sampled_only and spec is None:
        raise ValueError("sampled_only needs a spec with a clean sampler")
    exhaustive = (inputs is None and not sampled_only
                  and _total_inputs(len(vocab), lengths) <= exhaustive_limit)
    if inputs is not None:
        candidates = [list(xs) for xs in inputs]
    elif exhaustive:
        candidates = [list(xs) for n in lengths for xs in itertools.product(vocab, repeat=n)]
    else:
        candidates = _random_inputs(spec, vocab, lengths, samples, seed,
                                    clean_fraction=1.0 if sampled_only else 0.5)

    outside: Counter[str] = Counter()
    domain: list[tuple[list, list]] = []
    for xs in candidates:
        if spec is not None and getattr(spec, "valid", None) is not None and not spec.valid(xs):
            outside["spec.valid"] += 1
            continue
        try:
            expected = list(evaluate(program, xs))
        except Exception as err:  # noqa: BLE001 - the interpreter's "no value": outside
            outside[type(err).__name__] += 1
            continue
        domain.append((xs, expected))

    mismatches = unclean = 0
    examples: list[Mismatch] = []
    got_all, clean_all = run_batch(model, [xs for xs, _ in domain])
    for (xs, expected), got, clean in zip(domain, got_all, clean_all):
        bad = [i for i, (e, g) in enumerate(zip(expected, got)) if not values_equal(e, g)]
        if len(got) != len(expected):
            bad = bad or [min(len(got), len(expected))]
        if bad:
            mismatches += 1
            if len(examples) < max_examples:
                examples.append(Mismatch(list(xs), expected, list(got), bad))
        elif not clean:
            unclean += 1

    return CheckResult(
        program=name or getattr(program, "label", "program"),
        inputs=len(candidates),
        checked=len(domain),
        mismatches=mismatches,
        outside_domain=sum(outside.values()),
        unclean=unclean,
        exhaustive=exhaustive,
        causal=causal,
        lengths=lengths,
        seconds=round(time.perf_counter() - t0, 3),
        examples=examples,
        outside_reasons=dict(sorted(outside.items())),
    )


def check_reference(compiled: CompiledProgram, *, model: Any = None, name: str | None = None,
                    max_examples: int = 5) -> CheckResult:
    """Compare a saved model with the reference table it carries (``meta["reference"]``:
    inputs and the interpreter's outputs, written when it was saved)."""
    from .provenance import reference_rows

    t0 = time.perf_counter()
    inputs, outputs = reference_rows(compiled.meta)
    if not inputs:
        raise ValueError("the model carries no reference table and its program was not "
                         "found, so there is nothing to check it against")
    if model is None:
        from .model import Model

        model = Model(compiled)
    got_all, clean_all = run_batch(model, inputs)
    mismatches = unclean = 0
    examples: list[Mismatch] = []
    for xs, expected, got, clean in zip(inputs, outputs, got_all, clean_all):
        bad = [i for i, (e, g) in enumerate(zip(expected, got)) if not values_equal(e, g)]
        if bad:
            mismatches += 1
            if len(examples) < max_examples:
                examples.append(Mismatch(list(xs), expected, list(got), bad))
        elif not clean and compiled.is_exact:
            unclean += 1
    return CheckResult(
        program=name or str(compiled.meta.get("name", compiled.output)), inputs=len(inputs),
        checked=len(inputs), mismatches=mismatches, outside_domain=0, unclean=unclean,
        exhaustive=False, causal=compiled.config.causal,
        lengths=sorted({len(x) for x in inputs}), seconds=round(time.perf_counter() - t0, 3),
        examples=examples,
    )


__all__ = [
    "override_spec", "check_reference", "check_program", "run_batch", "CheckResult",
    "Mismatch", "values_equal",
    "EXHAUSTIVE_LIMIT",
]
