"""Model files: a compiled program as safetensors weights plus a JSON sidecar.

A model saved as ``reverse.safetensors`` has its description in ``reverse.json`` next to
it. The weights file holds ``CompiledProgram.params`` (float32, the flat names of
``compiler/assemble.py``); the sidecar holds everything else a ``CompiledProgram`` is made
of, the SHA-256 of the weights file and the name and shape of every tensor::

    {
      "format": "rasplab-model", "format_version": 2,
      "config": {...ModelConfig...}, "residual_labels": [...],
      "vocab": [{"int": 1}, {"str": "a"}, ...], "bos": {"str": "BOS"}, "pad": {...},
      "output": "reverse",
      "variables": [{"name": ..., "values": [tagged...], "dims": [...], ...}, ...],
      "selectors": [{"id": ..., "children": [...]}, ...],
      "components": [{...Component...}, ...],
      "meta": {...verbatim JSON: "source" (where the model came from), "variant" (the
               rung and its settings), "reference" (inputs and interpreter outputs),
               "readout" ("exact" or "nearest"), metrics of approximate models...},
      "circuit": {...the planted circuit, compiler/circuit.py's JSON form...},
      "weights": {"sha256": "...", "tensors": [{"name": ..., "shape": [...],
                                                "dtype": "float32"}, ...]}
    }

Program values (vocabulary, variable value sets, BOS and PAD) are tagged with their type
(``{"int": 1}``, ``{"str": "1"}``, ``{"bool": true}``, ``{"float": 0.5}``, ``{"tuple":
[...]}``, ``null`` for None) so ``1``, ``"1"``, ``1.0`` and ``True`` come back as what they
were, in any JSON reader. ``meta`` is stored as plain JSON: it must be JSON data, and a
tuple inside it comes back as a list. Ordered records (variables, selectors, tensors) are
lists, so loading restores the original order of every dict.

The bytes are deterministic: the same compiled program gives identical files (sorted
keys, no timestamps, a single-entry safetensors metadata block, since safetensors writes
a multi-entry one in hash order).

Format 1 files (the planted circuit inside ``meta``) still load. Only numpy, safetensors
and json are used; loading never unpickles anything and never
imports JAX.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .assemble import CompiledProgram, Component, ModelConfig, VariableInfo
from .circuit import PlantedCircuit
from .errors import ModelFileError
from .jsonvalues import decode_value, encode_value

FORMAT_NAME = "rasplab-model"
FORMAT_VERSION = 2
WEIGHTS_SUFFIX = ".safetensors"
SIDECAR_SUFFIX = ".json"
_ST_METADATA = {"format": f"{FORMAT_NAME}-v{FORMAT_VERSION}"}


# ---------------------------------------------------------------------------------------
# Paths


def model_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights, sidecar)`` paths for ``path``, which may name either half.

    ``m.safetensors`` and ``m.json`` both give ``(m.safetensors, m.json)``; a path with any
    other suffix (or none) is taken as the stem: ``m`` gives ``(m.safetensors, m.json)``.
    """
    p = Path(path)
    if p.suffix in (WEIGHTS_SUFFIX, SIDECAR_SUFFIX):
        p = p.with_suffix("")
    return p.with_name(p.name + WEIGHTS_SUFFIX), p.with_name(p.name + SIDECAR_SUFFIX)


def is_model_path(path: str | Path) -> bool:
    """True when ``path`` names a model file by its suffix (it need not exist)."""
    return Path(path).suffix in (WEIGHTS_SUFFIX, SIDECAR_SUFFIX)


# ---------------------------------------------------------------------------------------
# Saving


def _weights_bytes(params: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save as st_save

    arrays = {}
    for name, arr in params.items():
        if not isinstance(name, str):
            raise ModelFileError(f"weight names must be strings, got {name!r}")
        arrays[name] = np.ascontiguousarray(np.asarray(arr), dtype=np.float32)
    return st_save(arrays, metadata=dict(_ST_METADATA))


def sidecar_dict(compiled: CompiledProgram, weights: bytes) -> dict:
    """The sidecar's content for ``compiled`` whose weights file has bytes ``weights``."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "config": compiled.config.to_dict(),
        "residual_labels": list(compiled.residual_labels),
        "vocab": [encode_value(v) for v in compiled.vocab],
        "bos": encode_value(compiled.bos),
        "pad": encode_value(compiled.pad),
        "output": compiled.output,
        "variables": [
            {
                "name": v.name,
                "kind": v.kind,
                "encoding": v.encoding,
                "values": [encode_value(x) for x in v.values],
                "can_be_none": bool(v.can_be_none),
                "dims": [int(d) for d in v.dims],
                "children": list(v.children),
                "key": key,
            }
            for key, v in compiled.variables.items()
        ],
        "selectors": [
            {"id": sid, "children": list(children)}
            for sid, children in compiled.selectors.items()
        ],
        "components": [
            {
                "name": c.name, "layer": int(c.layer), "kind": c.kind, "node": c.node,
                "op": c.op, "index": int(c.index), "size": int(c.size),
            }
            for c in compiled.components
        ],
        "meta": compiled.meta,
        "circuit": compiled.planted.to_json(),
        "weights": {
            "sha256": hashlib.sha256(weights).hexdigest(),
            "tensors": [
                {"name": name, "shape": [int(s) for s in np.shape(arr)], "dtype": "float32"}
                for name, arr in compiled.params.items()
            ],
        },
    }


def _dumps(data: dict) -> bytes:
    try:
        text = json.dumps(data, sort_keys=True, indent=1, ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ModelFileError(
            f"the model's description cannot be written as JSON ({err}); CompiledProgram.meta "
            "must hold JSON data only (dicts with string keys, lists, str, numbers, bool, None)"
        ) from None
    return (text + "\n").encode("ascii")


def save(compiled: CompiledProgram, path: str | Path) -> tuple[Path, Path]:
    """Write ``compiled`` as ``<stem>.safetensors`` plus ``<stem>.json``; return both paths.

    ``path`` may end in ``.safetensors`` or ``.json`` (either names the pair) or be the
    stem. Both files are written completely in memory first, so an unserialisable model
    leaves nothing behind.
    """
    weights_path, sidecar_path = model_paths(path)
    weights = _weights_bytes(compiled.params)
    sidecar = _dumps(sidecar_dict(compiled, weights))
    try:
        weights_path.parent.mkdir(parents=True, exist_ok=True)
        weights_path.write_bytes(weights)
        sidecar_path.write_bytes(sidecar)
    except OSError as err:
        raise ModelFileError(f"cannot write the model file {weights_path}: {err}") from None
    return weights_path, sidecar_path


# ---------------------------------------------------------------------------------------
# Loading


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        weights, sidecar = model_paths(path)
        half = "weights file" if what == "weights" else "JSON sidecar"
        raise ModelFileError(
            f"model file {path} not found: a rasplab model is {weights.name} (weights) and "
            f"{sidecar.name} (its description) side by side; the {half} is missing"
        ) from None
    except OSError as err:
        raise ModelFileError(f"cannot read model file {path}: {err}") from None


def read_sidecar(path: str | Path) -> dict:
    """The parsed and format-checked sidecar of the model at ``path`` (either half)."""
    _, sidecar_path = model_paths(path)
    raw = _read(sidecar_path, "sidecar")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(
            f"{sidecar_path} is not a rasplab model description (not valid JSON: {err})"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise ModelFileError(
            f"{sidecar_path} is not a rasplab model description (its \"format\" field is not "
            f"{FORMAT_NAME!r}); save models with rasplab.save"
        )
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{sidecar_path}: invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{sidecar_path} was written by a newer rasplab (format {version}; this rasplab "
            f"reads format {FORMAT_VERSION} and older); upgrade rasplab to load it"
        )
    return data


def _load_weights(weights_path: Path, data: dict) -> dict[str, np.ndarray]:
    from safetensors.numpy import load as st_load

    raw = _read(weights_path, "weights")
    try:
        expected = data["weights"]["sha256"]
        listed = [(t["name"], [int(s) for s in t["shape"]]) for t in data["weights"]["tensors"]]
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(
            f"{model_paths(weights_path)[1]}: malformed \"weights\" entry ({err!r})"
        ) from None
    try:
        tensors = st_load(raw)
        parse_error = None
    except Exception as err:  # any failure to parse untrusted bytes means a damaged file
        tensors, parse_error = None, err
    if parse_error is not None:
        raise ModelFileError(
            f"{weights_path} is damaged or truncated ({len(raw)} bytes; safetensors cannot "
            f"parse it: {parse_error}); save the model again"
        )
    if hashlib.sha256(raw).hexdigest() != expected:
        raise ModelFileError(
            f"{weights_path} does not match its sidecar (SHA-256 differs): the weights were "
            "modified or replaced after saving; save the model again"
        )
    names = [name for name, _ in listed]
    if sorted(tensors) != sorted(names):
        missing = sorted(set(names) - set(tensors))
        extra = sorted(set(tensors) - set(names))
        raise ModelFileError(
            f"{weights_path}: tensor names do not match the sidecar "
            f"(missing {missing}, unexpected {extra})"
        )
    params: dict[str, np.ndarray] = {}
    for name, shape in listed:
        arr = tensors[name]
        if list(arr.shape) != shape or arr.dtype != np.float32:
            raise ModelFileError(
                f"{weights_path}: tensor {name!r} is {arr.dtype}{list(arr.shape)}, the sidecar "
                f"says float32{shape}"
            )
        params[name] = arr
    return params


def _program(data: dict, params: dict[str, np.ndarray]) -> CompiledProgram:
    config = ModelConfig(**data["config"])
    variables = {}
    for v in data["variables"]:
        info = VariableInfo(
            name=v["name"], kind=v["kind"], encoding=v["encoding"],
            values=[decode_value(x) for x in v["values"]], can_be_none=bool(v["can_be_none"]),
            dims=[int(d) for d in v["dims"]], children=list(v["children"]),
        )
        variables[v.get("key", info.name)] = info
    selectors = {s["id"]: list(s["children"]) for s in data["selectors"]}
    components = [Component(**c) for c in data["components"]]
    meta = dict(data.get("meta", {}))
    if not isinstance(data.get("meta", {}), dict):
        raise ValueError("meta is not an object")
    # format 1 kept the planted circuit (schema 1) in meta; format 2 has its own field
    legacy = meta.pop("planted_circuit", None)
    circuit_data = data.get("circuit", legacy)
    circuit = PlantedCircuit.from_json(circuit_data) if circuit_data is not None else None
    program = CompiledProgram(
        config=config, params=params, residual_labels=list(data["residual_labels"]),
        vocab=[decode_value(t) for t in data["vocab"]], bos=decode_value(data["bos"]),
        pad=decode_value(data["pad"]), output=data["output"], variables=variables,
        selectors=selectors, components=components, meta=meta, circuit=circuit,
    )
    _check_consistent(program)
    return program


def _check_consistent(p: CompiledProgram) -> None:
    d = p.config.d_model
    if len(p.residual_labels) != d and "variant" not in p.meta:
        raise ValueError(f"{len(p.residual_labels)} residual labels for d_model {d}")
    if p.output not in p.variables:
        raise ValueError(f"output variable {p.output!r} is not among the variables")
    for v in p.variables.values():  # a variant's dims describe its source's stream
        if "variant" not in p.meta and any(not 0 <= i < len(p.residual_labels) for i in v.dims):
            raise ValueError(f"variable {v.name!r} has a dimension outside its residual labels")
    if p.circuit is not None and p.circuit.d_model != d:
        raise ValueError(f"the planted circuit is for d_model {p.circuit.d_model}, not {d}")
    for name in ("embed.token", "embed.pos", "unembed"):
        if name not in p.params:
            raise ValueError(f"weight {name!r} is missing")
    if p.params["embed.token"].shape != (len(p.vocab) + 2, d):
        raise ValueError("embed.token does not match the vocabulary and d_model")


def load(path: str | Path) -> CompiledProgram:
    """Load a model saved by :func:`save`; ``path`` may name either half of the pair.

    Raises ``ModelFileError`` for a missing half, a file that is not a rasplab model, a
    newer format, damaged or modified weights, or weights that disagree with the sidecar.
    """
    weights_path, sidecar_path = model_paths(path)
    named = sidecar_path if Path(path).suffix == SIDECAR_SUFFIX else weights_path
    if not named.exists() and not (weights_path.exists() or sidecar_path.exists()):
        raise ModelFileError(f"model file {named} not found")
    data = read_sidecar(path)
    params = _load_weights(weights_path, data)
    try:
        return _program(data, params)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        detail = f"missing field {err}" if isinstance(err, KeyError) else str(err)
        raise ModelFileError(f"{sidecar_path} is malformed ({detail})") from None


__all__ = [
    "FORMAT_NAME", "FORMAT_VERSION", "save", "load", "model_paths", "is_model_path",
    "read_sidecar", "sidecar_dict", "encode_value", "decode_value",
]
