"""The model zoo: every library program's models, planted circuits and a manifest, as one folder.

Layout (one dataset a user can publish as it is)::

    DIR/README.md                            this layout, for whoever downloads the folder
    DIR/manifest.json                        what is here, with the SHA-256 of every file
    DIR/models/<rung>/<program>.safetensors  weights (rasplab.save: safetensors + JSON)
    DIR/models/<rung>/<program>.json         the model's sidecar (config, variables, ...)
    DIR/circuits/<rung>/<program>.json       the planted circuit (compiler/circuit.py schema)

``manifest.json``::

    {"format": "rasplab-zoo", "format_version": 1, "rasplab": "0.1.0",
     "entries": [{"program": "reverse", "rung": "compiled", "description": ..., "tags": [...],
                  "vocab": [...], "min_len": 1, "max_seq_len": 5, "lengths": [1, ..., 5],
                  "exact": true, "key": "<model cache key>", "sizes": {...stats()...},
                  "files": {"models/compiled/reverse.safetensors": "<sha256>", ...}}, ...]}

:func:`build` is resumable: an entry whose key (program fingerprint, vocab, length, rasplab
version, compiler source; :func:`rasplab.testing.model_key`) and file hashes still match
is skipped, and the manifest is rewritten (atomically) after every entry, so an interrupted
build keeps what it finished. :func:`verify` rechecks every hash and, for exact rungs, that
the model agrees with the interpreter (:func:`rasplab.compiler.check.check_program`).

Rungs come from :mod:`rasplab.variants` (the one rung registry). Building needs numpy only;
verifying runs the models (JAX).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__
from .compiler import compile_program
from .compiler.model_file import save
from .fingerprint import model_key
from .inputs import UsageError, token_display
from .variants import get_rung, rung_names

FORMAT = "rasplab-zoo"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@dataclass
class ZooEntry:
    """One (program, rung) in the manifest; ``files`` maps relative path -> SHA-256."""

    program: str
    rung: str
    description: str
    tags: list[str]
    vocab: list
    min_len: int
    max_seq_len: int
    lengths: list[int]
    exact: bool
    key: str
    sizes: dict
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class BuildReport:
    built: list[str] = field(default_factory=list)  # "program/rung"
    skipped: list[str] = field(default_factory=list)


def planted_json(compiled) -> dict:
    """The planted circuit as JSON data, from whichever form the compiler keeps it in: a
    typed record ``compiled.planted`` (its ``to_json()``) or the dict in ``meta``."""
    planted = getattr(compiled, "planted", None)
    if planted is not None:
        return planted.to_json() if hasattr(planted, "to_json") else planted
    return compiled.meta["planted_circuit"]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_manifest(directory: str | Path) -> list[ZooEntry]:
    """The manifest's entries (none if there is no manifest yet)."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} manifest")
        return [ZooEntry(**e) for e in data["entries"]]
    except (ValueError, KeyError, TypeError) as err:
        raise UsageError(f"{path}: unreadable zoo manifest ({err}); remove it to rebuild") from None


def write_manifest(directory: str | Path, entries: Sequence[ZooEntry]) -> Path:
    path = Path(directory) / MANIFEST
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, "rasplab": __version__,
            "entries": [asdict(e) for e in entries]}
    _write_atomic(path, json.dumps(data, indent=1, sort_keys=True, default=token_display) + "\n")
    return path


def resolve_selection(programs: Sequence[str] | None, rungs: Sequence[str] | None
                      ) -> tuple[list, list[str]]:
    """Library specs and rung names, checked (one-line ``UsageError`` for an unknown one)."""
    from .programs import registry

    names = list(programs) if programs else registry.program_names()
    specs = []
    for name in names:
        try:
            specs.append(registry.get(name))
        except KeyError as err:
            raise UsageError(str(err)) from None
    chosen = list(rungs) if rungs else ["compiled"]
    for rung in chosen:
        try:
            get_rung(rung)
        except ValueError as err:
            raise UsageError(str(err)) from None
    return specs, chosen


def _paths(program: str, rung: str) -> tuple[str, str, str]:
    return (f"models/{rung}/{program}.safetensors", f"models/{rung}/{program}.json",
            f"circuits/{rung}/{program}.json")


def _intact(directory: Path, entry: ZooEntry) -> bool:
    return all((directory / rel).is_file() and sha256_file(directory / rel) == digest
               for rel, digest in entry.files.items())


def build(directory: str | Path, programs: Sequence[str] | None = None,
          rungs: Sequence[str] | None = None, *, seed: int = 0, progress: bool = True
          ) -> BuildReport:
    """Write the zoo for ``programs`` (default: the whole library) x ``rungs`` (default
    ``compiled``) under ``directory``; entries already built and intact are skipped."""
    from tqdm.auto import tqdm

    specs, chosen = resolve_selection(programs, rungs)
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    entries = {(e.program, e.rung): e for e in read_manifest(root)}
    report = BuildReport()
    jobs = [(spec, rung) for spec in specs for rung in chosen]
    bar = tqdm(jobs, disable=not progress, unit="model", dynamic_ncols=True)
    for spec, rung_name in bar:
        bar.set_description(f"{spec.name} [{rung_name}]")
        sop = spec.build()
        key = model_key(sop, spec.vocab, spec.max_seq_len, name=f"{spec.name}@{rung_name}#{seed}")
        old = entries.get((spec.name, rung_name))
        if old is not None and old.key == key and _intact(root, old):
            report.skipped.append(f"{spec.name}/{rung_name}")
            continue
        rung = get_rung(rung_name)
        model = rung.make(compile_program(sop, spec.vocab, spec.max_seq_len), seed)
        model.meta["name"] = spec.name
        model.meta["rung"] = rung_name
        model.meta["description"] = spec.description
        weights_rel, sidecar_rel, circuit_rel = _paths(spec.name, rung_name)
        save(model, root / weights_rel)
        _write_atomic(root / circuit_rel,
                      json.dumps(planted_json(model), indent=1, sort_keys=True) + "\n")
        entries[(spec.name, rung_name)] = ZooEntry(
            program=spec.name, rung=rung_name, description=spec.description,
            tags=sorted(spec.tags), vocab=list(spec.vocab), min_len=spec.min_len,
            max_seq_len=spec.max_seq_len, lengths=list(spec.sample_lengths), exact=rung.exact,
            key=key, sizes=model.stats(),
            files={rel: sha256_file(root / rel) for rel in (weights_rel, sidecar_rel,
                                                            circuit_rel)},
        )
        write_manifest(root, list(entries.values()))
        report.built.append(f"{spec.name}/{rung_name}")
    write_manifest(root, list(entries.values()))
    _write_atomic(root / "README.md", _readme(list(entries.values())))
    return report


def _readme(entries: Sequence[ZooEntry]) -> str:
    programs = sorted({e.program for e in entries})
    rungs = sorted({e.rung for e in entries})
    return (
        "# rasplab model zoo\n\n"
        f"{len(programs)} RASP programs compiled to transformers by rasplab {__version__} "
        f"(rungs: {', '.join(rungs)}), each with its planted circuit: which residual "
        "directions hold which program variable and which head or MLP computes it.\n\n"
        "- `manifest.json`: per program and rung the description, vocabulary, lengths, "
        "sizes and the SHA-256 of every file;\n"
        "- `models/<rung>/<program>.safetensors` + `.json`: weights and their sidecar "
        "(load with `rasplab.load`; safetensors + JSON, no pickle);\n"
        "- `circuits/<rung>/<program>.json`: the planted circuit (nodes, edges, variables).\n\n"
        "Check a copy with `rasplab zoo verify DIR` (hashes, and every exact model against "
        "the interpreter).\n"
    )


def verify(directory: str | Path, *, samples: int = 500, exhaustive_limit: int = 2000,
           seed: int = 0, progress: bool = True) -> list[str]:
    """Every problem found, one line each (empty: the zoo is intact and exact)."""
    from tqdm.auto import tqdm

    from .compiler.check import check_program
    from .compiler.model_file import load
    from .programs import registry

    root = Path(directory)
    if not (root / MANIFEST).is_file():
        raise UsageError(f"{root}: no {MANIFEST}; build it with `rasplab zoo build {root}`")
    problems: list[str] = []
    bar = tqdm(read_manifest(root), disable=not progress, unit="model", dynamic_ncols=True)
    for entry in bar:
        where = f"{entry.program} [{entry.rung}]"
        bar.set_description(where)
        bad = False
        for rel, digest in entry.files.items():
            path = root / rel
            if not path.is_file():
                problems.append(f"{where}: {rel} is missing")
                bad = True
            elif sha256_file(path) != digest:
                problems.append(f"{where}: {rel} does not match its SHA-256 in the manifest")
                bad = True
        if bad or not entry.exact:
            continue
        weights = next(rel for rel in entry.files if rel.endswith(".safetensors"))
        try:
            spec = registry.get(entry.program)
            compiled = load(root / weights)
        except Exception as err:  # noqa: BLE001 - reported, one line
            problems.append(f"{where}: {' '.join(str(err).split())}")
            continue
        result = check_program(spec, compiled=compiled, samples=samples,
                               exhaustive_limit=exhaustive_limit, seed=seed, name=entry.program)
        if not result.ok:
            m = result.examples[0]
            problems.append(f"{where}: {result.mismatches} of {result.checked} inputs disagree "
                            f"with the interpreter (e.g. {m.input} -> {m.got}, "
                            f"expected {m.expected})")
    return problems


__all__ = ["ZooEntry", "BuildReport", "build", "verify", "read_manifest", "write_manifest",
           "resolve_selection", "sha256_file", "planted_json", "rung_names"]
