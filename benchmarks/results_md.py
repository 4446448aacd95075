"""One section of ``benchmarks/RESULTS.md`` per benchmark script, rewritten in place."""

from __future__ import annotations

import os
from pathlib import Path


def replace_section(path: Path, text: str, start: str, end: str) -> None:
    """Put ``text`` (which begins with ``start`` and ends with ``end``) where the old
    section between those markers was, or append it; atomically, so an interrupted run
    leaves the old file."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in old and end in old:
        head, rest = old.split(start, 1)
        new = head + text.rstrip("\n") + rest.split(end, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(new)
    os.replace(tmp, path)
