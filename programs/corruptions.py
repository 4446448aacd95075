"""Corruption distributions: how the corrupted partner of each clean input is drawn.

Under resample ablation, what a circuit "needs" is only what differs between clean and
corrupted inputs, so the distribution is a named, explicit parameter of every truth and
every score:

* ``same-length``: a valid input of the clean input's length with other tokens (the
  library's default: length, positions and everything derived from them stay the same,
  so the length machinery is invisible to resample ablation);
* ``any-length``: a valid input drawn from the clean distribution, any length, different
  from the clean one (the length can change too);
* ``counterfactual:VAR``: an input on which the program variable ``VAR`` takes another
  value, chosen among candidates (of the clean input's length first, then of any length)
  to change as few other variables as the program allows (variables computed from ``VAR``
  must change with it, and tokens always do).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rasplab.compiler import rasp

SAME_LENGTH = "same-length"
ANY_LENGTH = "any-length"
COUNTERFACTUAL = "counterfactual"
CORRUPTIONS = (SAME_LENGTH, ANY_LENGTH, f"{COUNTERFACTUAL}:VARIABLE")
DEFAULT = SAME_LENGTH
_CANDIDATES = 48


def check_name(name: str) -> str:
    """``name`` if it is a corruption distribution, else ``ValueError`` naming them."""
    kind, _, var = name.partition(":")
    if name in (SAME_LENGTH, ANY_LENGTH) or (kind == COUNTERFACTUAL and var):
        return name
    raise ValueError(f"unknown corruption {name!r}; use {SAME_LENGTH}, {ANY_LENGTH} or "
                     f"{COUNTERFACTUAL}:VARIABLE (a program variable's name)")


def sops_by_label(program: rasp.SOp) -> dict[str, rasp.SOp]:
    """Every SOp of ``program`` by its label (selectors left out)."""
    out: dict[str, rasp.SOp] = {}
    stack = [program]
    while stack:
        expr = stack.pop()
        if isinstance(expr, rasp.SOp) and expr.label not in out:
            out[expr.label] = expr
        stack.extend(expr.children)
    return out


def _descendants(program: rasp.SOp, var: str) -> set[str]:
    """Labels of the SOps computed (directly or not) from ``var``, ``var`` included."""
    memo: dict[int, bool] = {}

    def uses(expr) -> bool:
        if id(expr) not in memo:
            memo[id(expr)] = expr.label == var or any(uses(c) for c in expr.children)
        return memo[id(expr)]

    return {label for label, s in sops_by_label(program).items() if uses(s)}


def sample_corrupted(spec, rng, clean: Sequence[Sequence], corruption: str = DEFAULT
                     ) -> list[list]:
    """A corrupted partner for each clean input, drawn from ``corruption``."""
    check_name(corruption)
    rng = np.random.default_rng(rng)
    if corruption == SAME_LENGTH:
        return spec.sample_corrupted(rng, clean)
    if corruption == ANY_LENGTH:
        out = []
        for xs in clean:
            for _ in range(1000):
                (other,) = spec.sample_clean(rng, 1)
                if list(other) != list(xs):
                    break
            else:
                raise ValueError(f"program {spec.name!r}: cannot draw an input different "
                                 f"from {list(xs)!r}")
            out.append(list(other))
        return out
    return _counterfactual(spec, rng, clean, corruption.partition(":")[2])


def _counterfactual(spec, rng, clean, var: str) -> list[list]:
    program = spec.build()
    sops = sops_by_label(program)
    if var not in sops:
        raise ValueError(f"program {spec.name!r} has no variable {var!r}; its variables are "
                         f"{', '.join(sorted(sops))}")
    moved = _descendants(program, var)
    others = [s for label, s in sops.items() if label not in moved and label != "tokens"]

    def values(sop, xs):
        try:
            return rasp.evaluate(sop, list(xs))
        except Exception:  # noqa: BLE001 - outside the domain: never a good candidate
            return None

    out = []
    for xs in clean:
        base_v = values(sops[var], xs)
        base_o = [values(s, xs) for s in others]
        cands = spec.sample_corrupted(rng, [xs] * _CANDIDATES)  # same length first,
        cands += [c for c in spec.sample_clean(rng, _CANDIDATES) if list(c) != list(xs)]
        best, best_cost = cands[0], None
        for cand in cands:
            v = values(sops[var], cand)
            if v is None or v == base_v:
                continue
            cost = sum(values(s, cand) != b for s, b in zip(others, base_o))
            if best_cost is None or cost < best_cost:
                best, best_cost = cand, cost
                if cost == 0:
                    break
        out.append(list(best))
    return out


__all__ = ["CORRUPTIONS", "SAME_LENGTH", "ANY_LENGTH", "COUNTERFACTUAL", "DEFAULT",
           "check_name", "sample_corrupted", "sops_by_label"]
