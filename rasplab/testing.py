"""Compiled models as pytest fixtures, cached on disk (a pytest plugin, entry point ``rasplab``).

Installed with rasplab, the plugin gives every test session two fixtures::

    def test_my_method(rasplab_model):
        m = rasplab_model("reverse")                    # a library program
        mine = rasplab_model(program=my_sop, vocab={1, 2, 3}, max_seq_len=4)
        m.compiled, m.circuit, m.spec.sample_clean(0, 8), m.model.run([[1, 2, 3]])

``rasplab_model`` (session scope) returns a :class:`FixtureModel`; ``rasplab_model_cache``
is the :class:`ModelCache` behind it. A model is compiled once and saved with
:func:`rasplab.save` (safetensors + JSON, no pickle) under the cache folder; later calls in
the session return the same record and later sessions load the file instead of compiling.

The cache folder is ``$RASPLAB_CACHE_DIR`` if set, else ``rasplab/models`` inside pytest's
cache folder (``.pytest_cache``), else (with ``-p no:cacheprovider``)
``$XDG_CACHE_HOME/rasplab/models`` (``~/.cache/rasplab/models``). A file is named after
the program and the SHA-256 of its key (:func:`rasplab.fingerprint.model_key`): the
program's fingerprint (every expression's type, explicit name, annotations and the
bytecode, constants and closures of its functions), the library name, vocabulary, length,
causality, the rasplab version and a hash of the compiler's source, so editing a program or
the compiler never serves a stale
model. Unnamed expressions keep the labels (``map_12``) they had in the session that
compiled the model; name the SOps whose labels a test reads.

Nothing here imports JAX until a test touches ``FixtureModel.model`` or ``.truth``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compiler import CompiledProgram, compile_program, rasp
from .compiler.model_file import load, save
from .fingerprint import compiler_source_hash, model_key, program_fingerprint

ENV_CACHE_DIR = "RASPLAB_CACHE_DIR"


# ---------------------------------------------------------------------------------------
# Records and the cache


@dataclass
class FixtureModel:
    """One compiled model handed to a test.

    ``compiled`` (numpy, the compiler's record), ``circuit`` (the planted circuit: the
    dict of :func:`rasplab.compiler.circuit.planted_circuit`), ``spec`` (a ``ProgramSpec``
    with the samplers), ``program`` (the RASP SOp), ``source`` (``"compiled"``, ``"disk"``
    or ``"memory"``: where this record came from), ``path`` (the model file). ``model``
    (the JAX model) is built on first use; ``truth(ablation)`` is the circuit a given
    ablation can see, found and verified by intervention (``analysis.ground_truth``).
    """

    name: str
    key: str
    compiled: CompiledProgram
    spec: Any
    program: rasp.SOp
    source: str
    path: Path
    _shared: dict = field(default_factory=dict, repr=False)  # JAX model and truths, per key

    @property
    def circuit(self):
        """The planted circuit: ``compiled.planted`` (a typed ``PlantedCircuit``) where the
        compiler keeps one, else the dict of ``compiler/circuit.py``."""
        planted = getattr(self.compiled, "planted", None)
        return planted if planted is not None else self.compiled.meta["planted_circuit"]

    @property
    def model(self):
        if "model" not in self._shared:
            from .compiler.model import Model

            self._shared["model"] = Model(self.compiled)
        return self._shared["model"]

    def sample_clean(self, n: int, seed: int = 0) -> list[list]:
        return self.spec.sample_clean(seed, n)

    def sample_corrupted(self, clean: Sequence[Sequence], seed: int = 1) -> list[list]:
        return self.spec.sample_corrupted(seed, clean)

    def experiment(self, ablation: str = "resample", *, samples: int = 64, seed: int = 0):
        """An ``analysis.interventions.Experiment`` on the spec's samples (JAX)."""
        from .analysis.ground_truth import sample_dataset
        from .analysis.interventions import prepare

        clean, corrupted = sample_dataset(self.spec, samples, seed)
        return prepare(self.compiled, clean, ablation,
                       corrupted=corrupted if ablation == "resample" else None)

    def truth(self, ablation: str = "resample", *, samples: int = 64, seed: int = 0):
        """The ablation-matched ground truth (``GroundTruth``), computed once per arguments."""
        key = ("truth", ablation, samples, seed)
        if key not in self._shared:
            from .analysis.ground_truth import effective_circuit

            exp = self.experiment(ablation, samples=samples, seed=seed)
            self._shared[key] = effective_circuit(exp, program=self.name)
        return self._shared[key]


def default_cache_dir(pytest_cache_dir: Path | None = None) -> Path:
    """``$RASPLAB_CACHE_DIR``, else pytest's cache folder, else the user cache folder."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    if pytest_cache_dir is not None:
        return Path(pytest_cache_dir)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "rasplab" / "models"


class ModelCache:
    """Compiles each (program, vocab, length, causal) once and keeps it in ``directory``.

    ``compiled`` / ``loaded`` count how many models this cache compiled / read from disk.
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.compiled = 0
        self.loaded = 0
        self._memo: dict[str, FixtureModel] = {}

    def get(self, name: str | None = None, *, program: Any = None, vocab: Iterable | None = None,
            max_seq_len: int | None = None, causal: bool = False) -> FixtureModel:
        """A library program by ``name``, or ``program=``: a RASP SOp (with ``vocab`` and
        ``max_seq_len``), a ``ProgramSpec``, or a zero-argument function returning an SOp."""
        spec, library = _resolve(name, program, vocab, max_seq_len)
        sop = spec.build()
        key = model_key(sop, spec.vocab, spec.max_seq_len, causal=causal,
                        name=spec.name if library else None)
        if key in self._memo:
            memo = self._memo[key]
            return FixtureModel(memo.name, key, memo.compiled, spec, sop, "memory", memo.path,
                                memo._shared)
        path = self.directory / f"{spec.name}-{key[:16]}.safetensors"
        compiled = None
        if path.exists() and path.with_suffix(".json").exists():
            try:
                compiled = load(path)
                source = "disk"
                self.loaded += 1
            except Exception:  # noqa: BLE001 - a damaged cache file is rebuilt
                compiled = None
        if compiled is None:
            compiled = compile_program(sop, spec.vocab, spec.max_seq_len, causal=causal)
            compiled.meta.setdefault("name", spec.name)
            compiled.meta["cache_key"] = key
            _atomic_save(compiled, path)
            source = "compiled"
            self.compiled += 1
        record = FixtureModel(spec.name, key, compiled, spec, sop, source, path)
        self._memo[key] = record
        return record

    __call__ = get


def _atomic_save(compiled: CompiledProgram, path: Path) -> None:
    """Save to a private stem, then rename both halves (sidecar last: it marks completion)."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
    weights, sidecar = save(compiled, tmp)
    os.replace(weights, path)
    os.replace(sidecar, path.with_suffix(".json"))


def _resolve(name, program, vocab, max_seq_len):
    from .programs import registry
    from .programs.spec import ProgramSpec

    if (name is None) == (program is None):
        raise ValueError("rasplab_model: give a library name or program=, not both or neither")
    if name is not None:
        spec = registry.get(name)
        if vocab is not None or max_seq_len is not None:
            from .compiler.check import override_spec

            spec = override_spec(spec, None if vocab is None else tuple(vocab), max_seq_len)
        return spec, True
    if isinstance(program, ProgramSpec):
        return program, False
    if isinstance(program, rasp.SOp):
        sop = program
        build = lambda: sop
        label = program.label if program.has_explicit_name else "program"
    elif callable(program):
        build = program
        label = getattr(program, "__name__", "program")
    else:
        raise TypeError(f"rasplab_model: program= must be a rasp SOp, a ProgramSpec or a "
                        f"function returning an SOp, got {type(program).__name__}")
    if vocab is None or max_seq_len is None:
        raise ValueError("rasplab_model(program=...) needs vocab= and max_seq_len=")
    spec = ProgramSpec(name=label, description="user program", build=build, vocab=tuple(vocab),
                       max_seq_len=int(max_seq_len))
    return spec, False


# ---------------------------------------------------------------------------------------
# The pytest plugin


def session_cache(config) -> ModelCache:
    """The :class:`ModelCache` of a pytest session, made on first use."""
    mc = getattr(config, "_rasplab_model_cache", None)
    if mc is None:
        pytest_dir = None
        if not os.environ.get(ENV_CACHE_DIR) and getattr(config, "cache", None) is not None:
            pytest_dir = config.cache.mkdir("rasplab") / "models"
        mc = config._rasplab_model_cache = ModelCache(default_cache_dir(pytest_dir))
    return mc


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    mc = getattr(config, "_rasplab_model_cache", None)
    if mc is not None and (mc.compiled or mc.loaded):
        terminalreporter.write_line(
            f"rasplab: {mc.compiled} models compiled, {mc.loaded} loaded from {mc.directory}")


try:
    import pytest
except ImportError:  # pragma: no cover - the module is also a plain library
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def rasplab_model_cache(request) -> ModelCache:
        """The session's :class:`ModelCache`."""
        return session_cache(request.config)

    @pytest.fixture(scope="session")
    def rasplab_model(rasplab_model_cache):
        """A factory: ``rasplab_model("reverse")`` or ``rasplab_model(program=sop,
        vocab=..., max_seq_len=...)`` gives a :class:`FixtureModel`."""
        return rasplab_model_cache.get


__all__ = ["FixtureModel", "ModelCache", "model_key", "program_fingerprint", "compiler_source_hash",
           "default_cache_dir", "ENV_CACHE_DIR"]
