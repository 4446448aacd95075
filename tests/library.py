"""Which library programs the fast suite sweeps: the original library (``CORE``); the task
families and the generated programs (``EXTRA``) join in ``make test-slow``."""

from __future__ import annotations

import pytest
from rasplab.programs import registry
from rasplab.programs.catalog import core_specs

CORE = [s.name for s in core_specs()]
EXTRA = [n for n in registry.program_names() if n not in set(CORE)]


def swept(names_or_specs=None, *, specs: bool = False) -> list:
    """Parameters over the whole library: ``CORE`` as they are, ``EXTRA`` marked slow
    (``ProgramSpec`` objects with ``specs``)."""
    value = registry.get if specs else (lambda n: n)
    return [*(value(n) for n in CORE),
            *(pytest.param(value(n), marks=pytest.mark.slow, id=n) for n in EXTRA)]
