"""Input generators: ``(rng, length) -> one input of that length``.

A :class:`~rasplab.programs.spec.ProgramSpec` draws lengths and calls one of these; the
default draws tokens uniformly. Tokens come back as the vocabulary's own Python objects
(never numpy scalars), so they compare and serialise like the vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Generator = Callable[[np.random.Generator, int], list]


def uniform(vocab: Sequence) -> Generator:
    """Each token drawn independently and uniformly from ``vocab``."""
    vocab = list(vocab)

    def generate(rng: np.random.Generator, length: int) -> list:
        return [vocab[i] for i in rng.integers(0, len(vocab), size=length)]

    return generate


def distinct(vocab: Sequence) -> Generator:
    """Pairwise different tokens (needs ``length <= len(vocab)``)."""
    vocab = list(vocab)

    def generate(rng: np.random.Generator, length: int) -> list:
        if length > len(vocab):
            raise ValueError(f"cannot draw {length} distinct tokens from {len(vocab)}")
        return [vocab[i] for i in rng.permutation(len(vocab))[:length]]

    return generate


def positions() -> Generator:
    """Tokens that are positions of the input: each in ``0 .. length - 1``."""

    def generate(rng: np.random.Generator, length: int) -> list:
        return [int(i) for i in rng.integers(0, length, size=length)]

    return generate


def with_pattern(vocab: Sequence, pattern: Sequence, p: float = 0.5) -> Generator:
    """Uniform tokens; with probability ``p`` a copy of ``pattern`` is planted somewhere."""
    base = uniform(vocab)
    pattern = list(pattern)

    def generate(rng: np.random.Generator, length: int) -> list:
        xs = base(rng, length)
        if length >= len(pattern) and rng.random() < p:
            start = int(rng.integers(0, length - len(pattern) + 1))
            xs[start : start + len(pattern)] = pattern
        return xs

    return generate


def palindromes(vocab: Sequence, p: float = 0.5) -> Generator:
    """Uniform tokens; with probability ``p`` the second half mirrors the first."""
    base = uniform(vocab)

    def generate(rng: np.random.Generator, length: int) -> list:
        xs = base(rng, length)
        if rng.random() < p:
            for i in range(length // 2):
                xs[length - 1 - i] = xs[i]
        return xs

    return generate


def _nested(rng: np.random.Generator, length: int, pairs: Sequence[str]) -> list:
    """A balanced, properly nested bracket string (``length`` must be even): a random
    walk that opens or closes with equal odds while both keep it completable."""
    out: list = []
    stack: list[str] = []
    for pos in range(length):
        remaining = length - pos  # tokens still to write, this one included
        can_open = len(stack) + 1 <= remaining - 1
        if stack and (not can_open or rng.random() < 0.5):
            out.append(stack.pop())
        else:
            pair = pairs[int(rng.integers(0, len(pairs)))]
            out.append(pair[0])
            stack.append(pair[1])
    return out


def brackets(pairs: Sequence[str], noise: Sequence = (), p_balanced: float = 0.5) -> Generator:
    """Bracket strings over ``pairs`` (e.g. ``["()", "{}"]``), plus ``noise`` tokens.

    With probability ``p_balanced`` (even lengths only) the string is properly nested and
    balanced; otherwise it is a balanced string with one token replaced at random (which
    usually unbalances it) or, half the time, uniformly random.
    """
    alphabet = [c for pair in pairs for c in pair] + list(noise)
    random_tokens = uniform(alphabet)

    def generate(rng: np.random.Generator, length: int) -> list:
        if length % 2 == 0 and rng.random() < p_balanced:
            return _nested(rng, length, pairs)
        if length % 2 == 0 and rng.random() < 0.5:
            xs = _nested(rng, length, pairs)
            xs[int(rng.integers(0, length))] = alphabet[int(rng.integers(0, len(alphabet)))]
            return xs
        return random_tokens(rng, length)

    return generate


def repeated_halves(vocab: Sequence, p: float = 0.5) -> Generator:
    """Uniform tokens; with probability ``p`` (even lengths) the second half repeats the
    first."""
    base = uniform(vocab)

    def generate(rng: np.random.Generator, length: int) -> list:
        xs = base(rng, length)
        if length % 2 == 0 and rng.random() < p:
            xs[length // 2 :] = xs[: length // 2]
        return xs

    return generate


def periodic(vocab: Sequence, period: int, p: float = 0.5) -> Generator:
    """Uniform tokens; with probability ``p`` every token repeats the one ``period``
    places earlier."""
    base = uniform(vocab)

    def generate(rng: np.random.Generator, length: int) -> list:
        xs = base(rng, length)
        if rng.random() < p:
            xs = [xs[i % period] for i in range(length)]
        return xs

    return generate


def permutations() -> Generator:
    """A uniformly random permutation of the positions ``0 .. length - 1``."""

    def generate(rng: np.random.Generator, length: int) -> list:
        return [int(i) for i in rng.permutation(length)]

    return generate


def letter_pointers(letters: Sequence[str]) -> Generator:
    """Tokens ``letter + pointer`` (``"a2"``), each pointer a position of the input."""
    letters = list(letters)

    def generate(rng: np.random.Generator, length: int) -> list:
        return [
            f"{letters[int(rng.integers(0, len(letters)))]}{int(rng.integers(0, length))}"
            for _ in range(length)
        ]

    return generate
