"""The program library: RASP programs with their vocabularies, lengths and input samplers.

    from rasplab.programs import get, list_programs, filter_programs
    spec = get("reverse")
    program = spec.build()
    inputs = spec.sample_clean(rng=0, n=8)

Program builders live in ``tracr_lib``, ``rasp_paper``, ``mechanisms``, ``arithmetic`` and
one module per task family (``strings``, ``counting``, ``sorting``, ``digits``,
``patterns``, ``brackets``, ``pointers``, ``means``, ``copying``), plus the seeded
generator ``random_programs``; they import only ``rasp`` (and numpy) and use only tracr's
API, so they also run under tracr. ``catalog``, ``families`` and ``generated`` turn them
into library entries, each in one family (``filter_programs(family=...)``).
Importing this package imports neither JAX nor the compiler's model code.
"""

from .registry import (
    UnknownProgramError,
    filter_programs,
    get,
    list_programs,
    load_user_program,
    parse_vocab,
    program_names,
)
from .spec import FAMILIES, FAMILY_DESCRIPTIONS, TAG_DESCRIPTIONS, TAGS, ProgramSpec

__all__ = [
    "FAMILIES",
    "FAMILY_DESCRIPTIONS",
    "ProgramSpec",
    "TAGS",
    "TAG_DESCRIPTIONS",
    "UnknownProgramError",
    "filter_programs",
    "get",
    "list_programs",
    "load_user_program",
    "parse_vocab",
    "program_names",
]
