"""Turning what a user types into programs, vocabularies and token sequences (no JAX).

``resolve_target`` accepts three kinds of PROGRAM:

* a library name (``reverse``), looked up in ``rasplab.programs``;
* ``path/to/file.py:function`` -- the function returns a RASP SOp (then ``vocab`` and
  ``max_seq_len`` must be given) or a ``ProgramSpec``;
* a saved model (``model.safetensors`` or ``model.json``), already compiled.

Everything here raises :class:`UsageError` (or the compiler's own errors) with a message
meant for the person at the keyboard.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compiler import CompiledProgram, compile_program, rasp
from .compiler.check import override_spec
from .compiler.jsonvalues import decode_value, encode_value
from .compiler.model_file import is_model_path
from .compiler.model_file import load as load_model_file
from .compiler.provenance import REFERENCE_SAMPLES, file_sha256, reference_table

_INT = re.compile(r"^[+-]?\d+$")


class UsageError(ValueError):
    """The command line asks for something that does not exist or does not fit."""


# ---------------------------------------------------------------------------------------
# Vocabularies and tokens


def parse_vocab(text: str) -> list:
    """``"a,b,c"`` -> ``["a", "b", "c"]``; items that look like integers become ints."""
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or any(t == "" for t in items):
        raise UsageError(f"--vocab {text!r}: give comma-separated tokens, e.g. --vocab 1,2,3")
    out = [int(t) if _INT.match(t) else t for t in items]
    if len(set(map(_key, out))) != len(out):
        raise UsageError(f"--vocab {text!r} lists a token twice")
    return out


def _key(v: Any) -> tuple:
    return (type(v).__name__, repr(v))


def token_display(value: Any) -> str:
    """How a token or value is printed: strings bare, everything else as ``str``."""
    return value if isinstance(value, str) else str(value)


def parse_tokens(words: Sequence[str], vocab: Sequence) -> list:
    """Convert command-line words to the vocabulary's own values.

    A word matches a vocabulary string equal to it first, then a value whose printed form
    is the word (``"3"`` -> ``3``, ``"True"`` -> ``True``, ``"(1, 2)"`` -> ``(1, 2)``), then
    a number equal to it (``"3.0"`` -> ``3``). Anything else is a :class:`UsageError`
    that lists the vocabulary.
    """
    by_text: dict[str, list] = {}
    for v in vocab:
        by_text.setdefault(token_display(v), []).append(v)
    out = []
    for i, word in enumerate(words):
        if any(isinstance(v, str) and v == word for v in vocab):
            out.append(word)
            continue
        matches = by_text.get(word, [])
        if len(matches) == 1:
            out.append(matches[0])
            continue
        number = _as_number(word)
        hits = [v for v in vocab if number is not None and _is_num(v) and v == number]
        if len(hits) == 1:
            out.append(hits[0])
            continue
        shown = " ".join(token_display(v) for v in vocab)
        if len(matches) > 1 or len(hits) > 1:
            raise UsageError(
                f"token {word!r} (position {i}) is ambiguous in the vocabulary: {shown}"
            )
        raise UsageError(f"token {word!r} (position {i}) is not in the vocabulary: {shown}")
    return out


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _as_number(word: str) -> float | None:
    try:
        return float(word)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------
# Programs


@dataclass
class Target:
    """What PROGRAM named: a program to compile, or an already compiled model."""

    name: str
    description: str = ""
    kind: str = "library"  # "library" | "file" | "model"
    program: rasp.SOp | None = None
    vocab: list | None = None
    max_seq_len: int | None = None
    min_len: int = 1
    spec: Any = None
    compiled: CompiledProgram | None = None
    bos: str = "BOS"
    pad: str = "PAD"
    tags: list[str] = field(default_factory=list)
    provenance: str = ""  # for a saved model: how its program was found, or why not
    source: dict | None = None  # the meta["source"] record of a compiled program

    def describe(self, compiled: CompiledProgram, *, samples: int = REFERENCE_SAMPLES,
                 seed: int = 0) -> CompiledProgram:
        """Write where ``compiled`` came from and a reference table into its ``meta``
        (what a saved model needs to be checked and analysed without its program)."""
        if self.program is None:
            return compiled
        compiled.meta["name"] = self.name
        if self.source is not None:
            compiled.meta["source"] = self.source
        if self.spec is not None and hasattr(self.spec, "sample_clean"):
            inputs = self.spec.sample_clean(seed, samples)
        else:
            import numpy as np

            rng = np.random.default_rng(seed)
            vocab, lengths = list(self.vocab), range(self.min_len, self.max_seq_len + 1)
            inputs = [[vocab[int(i)] for i in rng.integers(0, len(vocab), int(n))]
                      for n in rng.choice(list(lengths), samples)]
        compiled.meta["reference"] = reference_table(self.program, inputs,
                                                     causal=compiled.config.causal)
        return compiled

    def compile(self, causal: bool = False) -> CompiledProgram:
        """The compiled program (a saved model is returned as loaded)."""
        if self.compiled is not None:
            if causal and not self.compiled.config.causal:
                raise UsageError(
                    f"{self.name} was saved as a non-causal model; --causal needs the program"
                )
            return self.compiled
        assert self.program is not None and self.vocab is not None
        compiled = compile_program(self.program, self.vocab, self.max_seq_len,
                                   causal=causal, bos=self.bos, pad=self.pad)
        if self.source is not None:
            self.source["causal"] = bool(causal)
        return compiled

    def sampler(self) -> Any:
        """Input samplers for analysis: the program's, or for a saved model whose program
        was not found, its reference table (``compiler.provenance.ReferenceSampler``)."""
        if self.spec is not None and hasattr(self.spec, "sample_clean"):
            return self.spec
        if self.compiled is not None and self.compiled.meta.get("reference"):
            from .compiler.provenance import ReferenceSampler

            return ReferenceSampler(self.compiled.meta, self.name)
        why = f" ({self.provenance})" if self.provenance else ""
        raise UsageError(f"{self.name}: no input samplers, so no ablation can be run{why}")

    @property
    def token_vocab(self) -> list:
        return list(self.compiled.vocab if self.compiled is not None else self.vocab or [])


def _registry():
    from .programs import registry

    return registry


def _from_spec(spec: Any, kind: str, vocab: list | None, max_seq_len: int | None,
               source: dict | None = None, user_file: str | None = None) -> Target:
    vocab_ = list(vocab) if vocab is not None else list(spec.vocab)
    msl = max_seq_len if max_seq_len is not None else int(spec.max_seq_len)
    base = {"library": spec.name} if source is None else source
    source = {**base, "vocab": [encode_value(v) for v in vocab_], "max_seq_len": msl,
              "causal": False}
    if user_file is not None:  # a user's file: its errors name the file and function
        try:
            program = _registry().call_user(spec.build, user_file, spec.name)
        except ValueError as err:
            raise UsageError(" ".join(str(err).split())) from None
    else:
        program = spec.build()
    return Target(
        source=source,
        name=spec.name, description=getattr(spec, "description", ""), kind=kind,
        program=program, vocab=vocab_, max_seq_len=msl,
        min_len=min(int(getattr(spec, "min_len", 1)), msl),
        spec=override_spec(spec, vocab, max_seq_len),
        tags=sorted(getattr(spec, "tags", ())),
    )


def resolve_target(
    target: str,
    vocab: Sequence | None = None,
    max_seq_len: int | None = None,
    *,
    allow_model_file: bool = True,
    import_program: bool = False,
) -> Target:
    """Resolve PROGRAM (library name, ``FILE.py:FUNCTION`` or model file) to a :class:`Target`.

    ``vocab`` and ``max_seq_len`` override the program's own (not allowed for a saved
    model, whose vocabulary and length are baked into its weights). A saved model's
    program is found again from its ``source``: a library program with the same vocabulary
    and length; a program file only with ``import_program`` and only if its source hash
    still matches. Otherwise the target has no program, and ``provenance`` says why.
    """
    vocab = list(vocab) if vocab is not None else None
    if max_seq_len is not None and max_seq_len < 1:
        raise UsageError(f"--max-seq-len must be at least 1, got {max_seq_len}")
    head, sep, _ = target.rpartition(":")
    if sep and head.endswith(".py"):
        return _resolve_file(target, vocab, max_seq_len)
    if is_model_path(target) or (target.endswith(".py") and Path(target).exists()):
        if target.endswith(".py"):
            raise UsageError(f"{target}: name the function too, as {target}:FUNCTION")
        if not allow_model_file:
            raise UsageError(
                f"{target} is a saved model; this command needs the program itself "
                "(a library name or FILE.py:FUNCTION)"
            )
        if vocab is not None or max_seq_len is not None:
            raise UsageError(
                f"{target} is a saved model: its vocabulary and length are fixed; recompile "
                "the program to change them"
            )
        return _resolve_model_file(target, import_program=import_program)
    return _resolve_library(target, vocab, max_seq_len)


def _resolve_library(name: str, vocab: list | None, max_seq_len: int | None) -> Target:
    reg = _registry()
    try:
        spec = reg.get(name)
    except KeyError:
        names = list(reg.program_names())
        close = difflib.get_close_matches(name, names, n=4, cutoff=0.5)
        close += [n for n in names if name and name in n and n not in close][: 4 - len(close)]
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `rasplab list`"
        raise UsageError(f"unknown program {name!r}{hint}") from None
    return _from_spec(spec, "library", vocab, max_seq_len)


def _resolve_file(ref: str, vocab: list | None, max_seq_len: int | None) -> Target:
    """``FILE.py:FUNCTION`` through the library's loader (SOp, ProgramSpec or dict)."""
    reg = _registry()
    try:
        spec = reg.load_user_program(ref, vocab=vocab, max_seq_len=max_seq_len)
    except SyntaxError as err:
        raise UsageError(f"{err.filename}:{err.lineno}: syntax error: {err.msg}") from None
    except ImportError as err:
        hint = ""
        if (err.name or "").split(".")[0] == "tracr":
            hint = ("; to run a file written for tracr unchanged, pass --tracr-compat "
                    "(rasplab.tracr_compat() in Python), or import from rasplab.compiler")
        raise UsageError(f"cannot import {ref.rpartition(':')[0]}: {err}{hint}") from None
    except (ValueError, TypeError) as err:
        raise UsageError(" ".join(str(err).split())) from None
    # the loader has applied the overrides; the user's spec keeps its own domain
    path, _, function = ref.rpartition(":")
    source = {"file": str(Path(path).resolve()), "function": function,
              "sha256": file_sha256(path)}
    return _from_spec(spec, "file", None, None, source=source, user_file=path)


def _resolve_model_file(path: str, *, import_program: bool) -> Target:
    """A saved model, with its program found again where that is safe (see
    :func:`resolve_target`)."""
    compiled = load_model_file(path)
    meta = compiled.meta
    name = str(meta.get("name") or meta.get("program") or path)
    target = Target(name=name, description=str(meta.get("description", "")), kind="model",
                    vocab=list(compiled.vocab), max_seq_len=compiled.config.max_seq_len,
                    compiled=compiled)
    src = meta.get("source") or {}
    found = None
    if src.get("library"):
        try:
            spec = _registry().get(src["library"])
        except KeyError:
            target.provenance = (f"its library program {src['library']!r} is not in this "
                                 "rasplab's library")
        else:
            same = ([decode_value(v) for v in src.get("vocab", [])] == list(compiled.vocab)
                    and src.get("max_seq_len") == compiled.config.max_seq_len)
            if same:
                found = _from_spec(spec, "library", list(compiled.vocab),
                                   compiled.config.max_seq_len)
                target.provenance = f"the library program {spec.name!r}"
            else:
                target.provenance = (f"the library program {spec.name!r} was compiled with "
                                     "another vocabulary or length")
    elif src.get("file"):
        ref = f"{src['file']}:{src['function']}"
        if not import_program:
            target.provenance = (f"its program {ref} is only imported when asked "
                                 "(--import-program)")
        elif not Path(src["file"]).is_file():
            target.provenance = f"its program file {src['file']} no longer exists"
        elif file_sha256(src["file"]) != src.get("sha256"):
            target.provenance = (f"its program file {src['file']} has changed since the model "
                                 "was saved (SHA-256 differs), so it is not imported")
        else:
            found = _resolve_file(ref, list(compiled.vocab), compiled.config.max_seq_len)
            target.provenance = f"the program {ref} (source hash matches)"
    else:
        target.provenance = "it does not say where it came from"
    if found is not None:
        target.program, target.spec, target.min_len = found.program, found.spec, found.min_len
        target.tags = found.tags
        target.description = target.description or found.description
    return target


def load_sampler(ref: str) -> Any:
    """``FILE.py:FUNCTION`` as an input generator ``f(rng, length) -> tokens``."""
    path, sep, name = ref.rpartition(":")
    if not sep or not path.endswith(".py") or not name:
        raise UsageError(f"--sampler {ref!r}: expected path/to/file.py:FUNCTION")
    try:
        func = _registry().load_user_function(ref)
    except SyntaxError as err:
        raise UsageError(f"{err.filename}:{err.lineno}: syntax error: {err.msg}") from None
    except (ImportError, ValueError, TypeError) as err:
        raise UsageError(f"--sampler {ref}: " + " ".join(str(err).split())) from None
    return func
