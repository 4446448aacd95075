"""The record describing one library program: how to build it, its inputs, its samplers."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from rasplab.compiler import rasp

from . import samplers

#: The fixed tag vocabulary, each with what it promises. Structural tags (the first
#: group) are checked against the program's expression graph by the tests.
TAG_DESCRIPTIONS: dict[str, str] = {
    "attention-only": "only Selects and Aggregates: no Map, SequenceMap or SelectorWidth",
    "mlp-heavy": "at least 4 Map/SequenceMap nodes, more than Aggregate/SelectorWidth nodes",
    "numerical": "some variable is numerically encoded",
    "selector-width": "uses SelectorWidth",
    "composite-selector": "combines Selects with &, | or ~ over different SOps",
    "uses-length": "computes the input length (SelectorWidth of an all-true Select)",
    "non-binary-mean": "a numerical Aggregate averages values other than 0 and 1",
    "beyond-tracr": "tracr cannot compile it (composite selector or non-binary mean)",
    "causal": "each output depends only on the input up to its position",
    "tracr-lib": "from tracr's compiler/lib.py",
    "rasp-paper": "from Weiss et al. 2021, Thinking Like Transformers",
    "copying": "moves tokens between positions",
    "induction": "finds an earlier occurrence of the current token and reads after it",
    "counting": "counts positions satisfying a condition",
    "sorting": "reorders the input by a key",
    "dyck": "bracket balancing",
    "pattern": "detects a fixed pattern of tokens",
    "arithmetic": "computes on numbers written as digits",
    "broadcast": "every position outputs the same global fact",
}
TAGS: frozenset[str] = frozenset(TAG_DESCRIPTIONS)

#: The task families, each with what its programs do. Every library program belongs to
#: exactly one; a user's program is in ``"user"`` unless it says otherwise.
FAMILY_DESCRIPTIONS: dict[str, str] = {
    "strings": "string manipulation: reverse, rotate, filter, map letters",
    "counting": "counting and histograms",
    "sorting": "sorting, ranks, minima and maxima",
    "arithmetic": "arithmetic on numbers written as digits",
    "pattern": "detecting patterns of tokens",
    "brackets": "bracket matching and nesting depth",
    "pointers": "tokens are positions: following and inverting pointers",
    "means": "numerical means and thresholds",
    "copying": "induction and copying tokens between positions",
    "generated": "random well-typed programs from a seeded generator",
    "user": "a program from outside the library",
}
FAMILIES: frozenset[str] = frozenset(FAMILY_DESCRIPTIONS)

_MAX_TRIES = 1000


def _sorted_vocab(vocab: Iterable) -> tuple:
    values = set(vocab)
    try:
        return tuple(sorted(values))
    except TypeError:  # mixed types: group by type name, then by value
        return tuple(sorted(values, key=lambda v: (type(v).__name__, repr(v))))


@dataclasses.dataclass(frozen=True)
class ProgramSpec:
    """One library program with its input domain and input samplers.

    ``build()`` returns a fresh program each call. ``vocab`` is stored as a sorted tuple.
    Inputs are lists of vocab tokens of length ``min_len .. max_seq_len`` on which
    ``valid`` (if given) holds. ``lengths`` (if given) restricts the lengths the samplers
    draw, ``generate(rng, length)`` (if given) replaces uniform token sampling. ``family``
    is one of :data:`FAMILIES` (``"user"`` by default). A
    program that only looks backwards has ``causal_ok`` (equivalently, the tag
    ``"causal"``; either one sets both).
    """

    name: str
    description: str
    build: Callable[[], rasp.SOp] = dataclasses.field(repr=False, compare=False)
    vocab: tuple
    max_seq_len: int
    min_len: int = 1
    tags: frozenset[str] = frozenset()
    causal_ok: bool = False
    valid: Callable[[Sequence], bool] | None = dataclasses.field(
        default=None, repr=False, compare=False
    )
    generate: samplers.Generator | None = dataclasses.field(
        default=None, repr=False, compare=False
    )
    lengths: tuple[int, ...] | None = None
    family: str = "user"

    def __post_init__(self) -> None:
        set_ = lambda field, value: object.__setattr__(self, field, value)
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"a program needs a non-empty string name, got {self.name!r}")
        if not callable(self.build):
            raise ValueError(f"program {self.name!r}: build must be a zero-argument callable")
        set_("vocab", _sorted_vocab(self.vocab))
        if not self.vocab:
            raise ValueError(f"program {self.name!r}: the vocab is empty")
        if not 1 <= self.min_len <= self.max_seq_len:
            raise ValueError(
                f"program {self.name!r}: need 1 <= min_len <= max_seq_len, got "
                f"min_len={self.min_len}, max_seq_len={self.max_seq_len}"
            )
        tags = frozenset([self.tags] if isinstance(self.tags, str) else self.tags)
        unknown = sorted(tags - TAGS)
        if unknown:
            raise ValueError(
                f"program {self.name!r}: unknown tags {unknown}; known: {sorted(TAGS)}"
            )
        if self.family not in FAMILIES:
            raise ValueError(
                f"program {self.name!r}: unknown family {self.family!r}; known: "
                f"{', '.join(sorted(FAMILIES))}"
            )
        causal = self.causal_ok or "causal" in tags
        set_("causal_ok", causal)
        set_("tags", (tags | {"causal"}) if causal else tags)
        if self.lengths is not None:
            lengths = tuple(sorted(set(self.lengths)))
            if not lengths or lengths[0] < self.min_len or lengths[-1] > self.max_seq_len:
                raise ValueError(
                    f"program {self.name!r}: sampling lengths {lengths} must lie in "
                    f"{self.min_len}..{self.max_seq_len}"
                )
            set_("lengths", lengths)

    # -- the input domain ----------------------------------------------------------------

    @property
    def sample_lengths(self) -> tuple[int, ...]:
        """The lengths the samplers draw from (uniformly)."""
        return self.lengths or tuple(range(self.min_len, self.max_seq_len + 1))

    def is_valid(self, xs: Sequence) -> bool:
        """Whether ``xs`` is in the program's domain: length, tokens and ``valid``."""
        if not self.min_len <= len(xs) <= self.max_seq_len:
            return False
        vocab = set(self.vocab)
        if any(x not in vocab for x in xs):
            return False
        return self.valid is None or bool(self.valid(list(xs)))

    def iter_inputs(self, lengths: Iterable[int] | None = None) -> Iterator[list]:
        """Every valid input, shortest first (all of ``min_len .. max_seq_len`` by default)."""
        if lengths is None:
            lengths = range(self.min_len, self.max_seq_len + 1)
        for length in lengths:
            for xs in itertools.product(self.vocab, repeat=length):
                if self.valid is None or self.valid(list(xs)):
                    yield list(xs)

    # -- samplers ------------------------------------------------------------------------

    def _generator(self) -> samplers.Generator:
        return self.generate or samplers.uniform(self.vocab)

    def sample_clean(self, rng: np.random.Generator | int | None, n: int) -> list[list]:
        """``n`` valid inputs, lengths drawn uniformly from :attr:`sample_lengths`."""
        rng = np.random.default_rng(rng)
        generate, lengths = self._generator(), self.sample_lengths
        out = []
        for _ in range(n):
            length = lengths[int(rng.integers(0, len(lengths)))]
            out.append(self._draw(rng, generate, length, avoid=None))
        return out

    def sample_corrupted(
        self, rng: np.random.Generator | int | None, clean: Sequence[Sequence]
    ) -> list[list]:
        """A counterfactual for each clean input: valid, same length, different tokens.

        Drawn from the clean distribution at that length (so for balanced-bracket
        programs it is balanced about half the time, whatever the clean input was).
        """
        rng = np.random.default_rng(rng)
        generate = self._generator()
        return [self._draw(rng, generate, len(xs), avoid=list(xs)) for xs in clean]

    def _draw(
        self,
        rng: np.random.Generator,
        generate: samplers.Generator,
        length: int,
        avoid: list | None,
    ) -> list:
        for _ in range(_MAX_TRIES):
            xs = list(generate(rng, length))
            if xs != avoid and self.is_valid(xs):
                return xs
        if avoid is not None:  # the generator keeps repeating itself: change one token
            for pos in rng.permutation(length):
                for token in self.vocab:
                    xs = list(avoid)
                    xs[int(pos)] = token
                    if xs != avoid and self.is_valid(xs):
                        return xs
        raise RuntimeError(
            f"program {self.name!r}: could not draw a valid input of length {length}"
            + (" different from the clean one" if avoid is not None else "")
        )

    # -- description ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The plain-data fields (no callables), JSON-ready."""
        return {
            "name": self.name,
            "description": self.description,
            "family": self.family,
            "vocab": list(self.vocab),
            "max_seq_len": self.max_seq_len,
            "min_len": self.min_len,
            "tags": sorted(self.tags),
            "causal_ok": self.causal_ok,
            "restricted_domain": self.valid is not None,
        }
