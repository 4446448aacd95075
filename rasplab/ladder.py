"""Realism-ladder models for experiments: each (program, rung, seed) built once, kept on disk.

A compressed model takes 30-50 s to train and a retrained one minutes, so an experiment
over rungs (``experiments/scoreboard.py --rungs ...``, ``make demo``) asks a
:class:`VariantCache` for its models instead of calling ``rasplab.variants.make`` itself::

    cache = VariantCache("results/scoreboard_models")
    model = cache.model(rasplab.programs.get("reverse"), "compressed", seed=0)

The model is read from ``<dir>/<rung>/<program>#<seed>.safetensors`` (``rasplab.save``'s
format: safetensors + JSON sidecar) when that file was built for the same program source,
vocabulary, length, rung, seed and rung options (:func:`variant_key`, kept in the model's
``meta["ladder"]``); otherwise it is built and saved there (both halves renamed into place,
the sidecar last, so an interrupted build leaves no half file). ``compiled`` is never
stored (compiling is fast and exact). ``shipped`` folders (the small pre-trained files the
repository carries for the demo, ``models/demo/<program>.<rung>.safetensors``, written by
``experiments/make_demo_variants.py``) are searched first and used as they are, whatever
the options, when the file's recorded rung and seed are the ones asked for.

Which options a rung is built with is :class:`RungOptions` (the compressed width as a
fraction of the compiled ``d_model``, training steps), turned into ``variants.make``'s
keyword arguments by :func:`make_options`. Building needs what the rung needs (JAX for the
trained rungs); looking a file up does not.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .compiler import CompiledProgram, compile_program
from .compiler.model_file import load, save
from .fingerprint import program_fingerprint

#: the rungs whose models are not worth storing (built in well under a second, exactly)
NOT_STORED = frozenset({"compiled"})


@dataclass(frozen=True)
class RungOptions:
    """How the trained rungs are built (part of every stored model's key)."""

    compress: float = 0.5  # compressed: d = ceil(compress * D), 0 < compress <= 1
    compress_steps: int | None = None  # compressed: at most this many steps (None: trainer's)
    stop_at: float = 0.995  # compressed: stop once held-out input accuracy reaches it
    retrain_steps: int | None = None  # retrained: training steps (None: trainer's)

    def __post_init__(self) -> None:
        if not 0.0 < self.compress <= 1.0:
            raise ValueError(f"compress {self.compress}: give a fraction of d_model in (0, 1]")
        for name in ("compress_steps", "retrain_steps"):
            steps = getattr(self, name)
            if steps is not None and steps < 1:
                raise ValueError(f"{name} {steps}: give a positive number of steps")

    def for_rung(self, rung: str) -> dict:
        """The options that decide ``rung``'s model (what its key hashes)."""
        if rung == "compressed":
            return {"compress": self.compress, "steps": self.compress_steps,
                    "stop_at": self.stop_at}
        if rung == "retrained":
            return {"steps": self.retrain_steps}
        return {}


def make_options(rung: str, compiled: CompiledProgram, spec, options: RungOptions) -> dict:
    """``variants.make``'s keyword arguments for ``rung`` (besides the seed)."""
    if rung == "compressed":
        d = max(1, math.ceil(options.compress * compiled.config.d_model))
        out = {"d": d, "spec": spec, "progress": False, "stop_at": options.stop_at}
        if options.compress_steps is not None:
            out["steps"] = options.compress_steps
        return out
    if rung == "retrained":
        out = {"spec": spec, "progress": False}
        if options.retrain_steps is not None:
            out["steps"] = options.retrain_steps
        return out
    return {}


def variant_key(spec, rung: str, seed: int, options: RungOptions) -> str:
    """What a stored model must have been built from: hex SHA-256 of the program's
    fingerprint, vocabulary, length, the rung, the seed and the rung's options."""
    data = {"program": program_fingerprint(spec.build()), "name": spec.name,
            "vocab": sorted(repr(v) for v in spec.vocab), "max_seq_len": int(spec.max_seq_len),
            "rung": rung, "seed": int(seed), "options": options.for_rung(rung)}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def model_path(directory: str | Path, program: str, rung: str, seed: int) -> Path:
    """Where a stored model lives: ``<dir>/<rung>/<program>#<seed>.safetensors``."""
    return Path(directory) / rung / f"{program}#{seed}.safetensors"


@dataclass(frozen=True)
class VariantCache:
    """Models of the ladder, built on first use and kept under ``directory``."""

    directory: str
    options: RungOptions = field(default_factory=RungOptions)
    shipped: tuple[str, ...] = ()  # read-only folders of pre-trained files, searched first

    def find(self, spec, rung: str, seed: int = 0) -> Path | None:
        """The stored model file for (program, rung, seed) with the right key (or a
        shipped one), if any."""
        for folder in self.shipped:
            path = Path(folder) / f"{spec.name}.{rung}.safetensors"
            if path.is_file() and _shipped_matches(path, rung, seed):
                return path
        path = model_path(self.directory, spec.name, rung, seed)
        if path.is_file() and _stored_key(path) == variant_key(spec, rung, seed, self.options):
            return path
        return None

    def expected_key(self, spec, rung: str, seed: int = 0) -> str:
        """The key the model for (program, rung, seed) carries (``meta["ladder"]["key"]``):
        a shipped file's own (``shipped:`` and its weights' SHA-256), else
        :func:`variant_key`."""
        path = self.find(spec, rung, seed)
        if path is not None and Path(path).parent != Path(self.directory) / rung:
            return _shipped_key(path)
        return variant_key(spec, rung, seed, self.options)

    def model(self, spec, rung: str, seed: int = 0, *, compiled: CompiledProgram | None = None
              ) -> CompiledProgram:
        """``spec``'s model at ``rung`` (loaded, or built and saved)."""
        if rung in NOT_STORED:
            return compiled or compile_program(spec.build(), spec.vocab, spec.max_seq_len)
        path = self.find(spec, rung, seed)
        if path is not None:
            model = load(path)
            if "ladder" not in model.meta:  # a shipped file: named by its weights
                model.meta["ladder"] = {"key": _shipped_key(path), "shipped": str(path),
                                        "program": spec.name, "rung": rung, "seed": int(seed)}
            return model
        from .variants import make

        compiled = compiled or compile_program(spec.build(), spec.vocab, spec.max_seq_len)
        model = make(rung, compiled, seed=seed,
                     **make_options(rung, compiled, spec, self.options))
        model.meta["ladder"] = {"key": variant_key(spec, rung, seed, self.options),
                                "program": spec.name, "rung": rung, "seed": int(seed),
                                "options": self.options.for_rung(rung)}
        _save_atomic(model, model_path(self.directory, spec.name, rung, seed))
        return model

    def to_dict(self) -> dict:
        return {"directory": self.directory, "options": asdict(self.options),
                "shipped": list(self.shipped)}


def _sidecar_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.with_suffix(".json").read_text()).get("meta", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _shipped_matches(path: Path, rung: str, seed: int) -> bool:
    variant = _sidecar_meta(path).get("variant", {})
    return variant.get("rung") == rung and int(variant.get("seed", 0)) == int(seed)


def _shipped_key(path: Path) -> str:
    sidecar = json.loads(Path(path).with_suffix(".json").read_text())
    return f"shipped:{sidecar.get('weights', {}).get('sha256', '')}"


def _stored_key(path: Path) -> str | None:
    return _sidecar_meta(path).get("ladder", {}).get("key")


def _save_atomic(model: CompiledProgram, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
    weights, sidecar = save(model, tmp)
    os.replace(weights, path)
    os.replace(sidecar, path.with_suffix(".json"))


def stored(directory: str | Path, rungs: Sequence[str] | None = None) -> list[Path]:
    """Every stored model file under ``directory`` (of ``rungs`` only, when given)."""
    root = Path(directory)
    files = sorted(root.glob("*/*.safetensors")) if root.is_dir() else []
    return [f for f in files if rungs is None or f.parent.name in rungs]


__all__ = ["RungOptions", "VariantCache", "make_options", "variant_key", "model_path",
           "stored", "NOT_STORED"]
