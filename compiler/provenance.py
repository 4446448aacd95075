"""Where a model came from, and a reference table of what it must compute.

A saved model carries, in ``meta``:

* ``"source"``: ``{"library": NAME, ...}`` for a library program, or ``{"file": PATH,
  "function": NAME, "sha256": ...}`` for a user's program file (the hash of its source
  when compiled), plus ``vocab`` (tagged values), ``max_seq_len`` and ``causal``;
* ``"reference"``: inputs and the interpreter's outputs on them (tagged values), so a model
  can be checked without its program, and analysed with its inputs as a dataset.

A model file never makes rasplab run code: a program file named in ``source`` is imported
only when the user asks for it, and only if its hash still matches
(``rasplab/inputs.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from . import rasp
from .jsonvalues import decode_value, encode_value

REFERENCE_SAMPLES = 64


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def reference_table(program: rasp.SOp, inputs: Sequence[Sequence], *, causal: bool = False
                    ) -> dict:
    """The interpreter's outputs on ``inputs`` (those where it raises are left out)."""
    evaluate = rasp.causal_evaluate if causal else rasp.evaluate
    rows_in, rows_out = [], []
    for xs in inputs:
        try:
            out = evaluate(program, list(xs))
        except Exception:  # noqa: BLE001 - outside the domain: not a reference row
            continue
        rows_in.append([encode_value(v) for v in xs])
        rows_out.append([encode_value(v) for v in out])
    return {"inputs": rows_in, "outputs": rows_out}


def reference_rows(meta: dict) -> tuple[list[list], list[list]]:
    """``(inputs, outputs)`` of a model's reference table (empty if it has none)."""
    ref = meta.get("reference") or {}
    inputs = [[decode_value(v) for v in row] for row in ref.get("inputs", [])]
    outputs = [[decode_value(v) for v in row] for row in ref.get("outputs", [])]
    return inputs, outputs


__all__ = ["ReferenceSampler", "reference_table", "reference_rows", "file_sha256",
           "REFERENCE_SAMPLES"]


class ReferenceSampler:
    """A saved model's reference inputs as a dataset, for analysis without its program:
    clean inputs drawn from the table, each corrupted partner another reference input of
    the same length (the "same-length" corruption)."""

    def __init__(self, meta: dict, name: str = "model"):
        self.name = name
        self.inputs, _ = reference_rows(meta)
        if not self.inputs:
            raise ValueError("the model carries no reference inputs")

    def sample_clean(self, rng, n: int) -> list[list]:
        import numpy as np

        rng = np.random.default_rng(rng)
        return [list(self.inputs[int(i)]) for i in rng.integers(0, len(self.inputs), n)]

    def sample_corrupted(self, rng, clean) -> list[list]:
        import numpy as np

        rng = np.random.default_rng(rng)
        out = []
        for xs in clean:
            others = [x for x in self.inputs if len(x) == len(xs) and x != list(xs)]
            if not others:
                raise ValueError(f"the reference table has no other input of length {len(xs)} "
                                 "to corrupt with; analyse the model with its program")
            out.append(list(others[int(rng.integers(0, len(others)))]))
        return out
