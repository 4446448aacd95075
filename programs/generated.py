"""The generated family: ``gen_000`` ... ``gen_029``, random programs from fixed seeds.

Each entry is :func:`~.random_programs.random_program` of its seed, with the generator's
vocabulary and length. The seeds are the first ones (from 0 up) whose program the
compiler accepts and whose output is not constant on the inputs of some length. Next to
each seed: a digest of the program's source (the tests check the generator still draws
that exact program) and its tags (checked against the program like every entry's).
"""

from __future__ import annotations

import hashlib
from collections import Counter

from .random_programs import random_program
from .spec import ProgramSpec

#: (seed, first 12 hex digits of sha256(source), tags)
GENERATED: tuple[tuple[int, str, str], ...] = (
    (1, "591fdccaad10", "selector-width"),
    (4, "7b3a90e9b571", "beyond-tracr causal"),
    (5, "c4e3d5891933", "causal"),
    (8, "318b9c74542e", ""),
    (9, "929fa652b4f8", "selector-width"),
    (10, "91f9e7c031bc", "mlp-heavy numerical"),
    (13, "a9895ce71faf", "causal numerical"),
    (17, "629eb574a5bc", ""),
    (18, "ef4402f6352c", "beyond-tracr selector-width"),
    (21, "771eceaf6a33", "numerical"),
    (23, "8b529409c5e9", "numerical"),
    (24, "ecf9e4f45669", ""),
    (25, "aa950aece187", "selector-width"),
    (26, "817c81387eab", "beyond-tracr composite-selector mlp-heavy numerical selector-width"),
    (29, "9083004d2241", "selector-width"),
    (30, "cbec4cdaeca0", "beyond-tracr non-binary-mean numerical"),
    (34, "30a3631e380b", "beyond-tracr composite-selector numerical"),
    (36, "28177bdab976", ""),
    (39, "44ffd1ae5a4c", "beyond-tracr composite-selector selector-width"),
    (42, "9df4bf9f5695", "beyond-tracr mlp-heavy selector-width"),
    (45, "bfcd6b7ad61c", "causal"),
    (46, "e96883874d80", "beyond-tracr mlp-heavy non-binary-mean numerical selector-width"),
    (47, "5e6a99dc82cb", "beyond-tracr composite-selector selector-width"),
    (49, "a6b757796e72", ""),
    (52, "88ba8b1b7dbb", "beyond-tracr selector-width"),
    (53, "5331c1fe48e4", "beyond-tracr"),
    (55, "6f023757048a", ""),
    (58, "b92395d9d020", "beyond-tracr selector-width"),
    (62, "e8059832c360", "mlp-heavy numerical"),
    (63, "6b552e9e39e5", "beyond-tracr composite-selector numerical selector-width"),
)


def source_digest(source: str) -> str:
    """The digest stored for a program's source text."""
    return hashlib.sha256(source.encode()).hexdigest()[:12]


def _describe(seed: int, ops: tuple[str, ...]) -> str:
    counts = Counter(ops)
    parts = [op if counts[op] == 1 else f"{op} x{counts[op]}" for op in dict.fromkeys(ops)]
    return f"random program of seed {seed}: {', '.join(parts)}"


def generated_specs() -> list[ProgramSpec]:
    """The generated family's entries (each builds its program afresh on ``build()``)."""
    specs = []
    for k, (seed, _digest, tags) in enumerate(GENERATED):
        drawn = random_program(seed)
        specs.append(ProgramSpec(
            name=f"gen_{k:03d}",
            description=_describe(seed, drawn.ops),
            build=lambda seed=seed: random_program(seed).program,
            vocab=drawn.vocab,
            max_seq_len=drawn.max_seq_len,
            tags=frozenset(tags.split()),
            family="generated",
        ))
    return specs
