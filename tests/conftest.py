"""Shared fixtures. ``tests/`` is on ``sys.path`` (pytest's rootdir-relative import), so
test files import their helpers with ``from strategies import ...``."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def build_model():
    """``build_model(program, vocab, max_seq_len, causal=False)`` -> a runnable ``Model``
    (imports JAX only when a test asks for a model)."""
    from rasplab.compiler import compile_program
    from rasplab.compiler.model import Model

    def build(program, vocab, max_seq_len, causal=False):
        return Model(compile_program(program, vocab, max_seq_len, causal=causal))

    return build
