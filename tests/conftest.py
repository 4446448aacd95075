"""Shared fixtures. ``tests/`` is on ``sys.path`` (pytest's rootdir-relative import), so
test files import their helpers with ``from strategies import ...``."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# CI runs the property tests on a fixed sequence of examples, so a run is reproducible and
# a submission is judged on the same programs each time; locally they explore afresh.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def build_model():
    """``build_model(program, vocab, max_seq_len, causal=False)`` -> a runnable ``Model``
    (imports JAX only when a test asks for a model)."""
    from rasplab.compiler import compile_program
    from rasplab.compiler.model import Model

    def build(program, vocab, max_seq_len, causal=False):
        return Model(compile_program(program, vocab, max_seq_len, causal=causal))

    return build
