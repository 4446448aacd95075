"""Interchange-intervention accuracy (IIA) of a network's planted variable subspaces.

For a variable ``v`` and a (base, source) pair of equal length, patch ``v``'s subspace
(``_basis``) from a run on the source into a run on the base, at the residual site right
after ``v`` is written (``write_site``) and at every real position; read the output
(``compiler.model.decode``) and compare it with the interpreter's counterfactual: the
program's output on the base with ``v`` forced to its values on the source
(``compiler.interchange.interchange``). IIA is the fraction of pairs whose every output
position matches (and reads out cleanly). Pairs whose counterfactual is outside the
program's domain (a later operation raises on the forced values) are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import numpy as np
from rasplab.compiler import rasp
from rasplab.compiler.assemble import CompiledProgram
from rasplab.compiler.interchange import interchange, variable_ids
from rasplab.compiler.model import decode
from rasplab.compiler.values import outputs_match

from .sites import SiteConfig, SubspacePatch, intervene


def _basis(compiled: CompiledProgram, variable: str) -> np.ndarray:
    """``d_model x k``: the variable's basis in the model's residual stream, from the
    planted circuit (unit vectors on a compiled model, rotated or compressed ones on a
    variant)."""
    return np.asarray(compiled.planted.variables[variable].basis, np.float32)


def write_site(compiled: CompiledProgram, variable: str) -> str:
    """The residual site right after ``variable`` is written: ``blocks.{l}.hook_resid_mid``
    after the head of layer ``l`` computing it, ``blocks.{l}.hook_resid_post`` after an
    MLP (the last of its components, for variables computed in several), and
    ``blocks.0.hook_resid_pre`` for what the embeddings write (tokens, indices,
    constants; ``hook_embed`` / ``hook_pos_embed`` in a network without layers)."""
    if variable not in compiled.variables:
        raise ValueError(f"no variable {variable!r}; the variables are "
                         f"{sorted(compiled.variables)}")
    comps = [c for c in compiled.components if c.node == variable]
    if comps:
        last = max(comps, key=lambda c: (c.layer, c.kind == "mlp"))
        return f"blocks.{last.layer}.hook_resid_" + ("post" if last.kind == "mlp" else "mid")
    writers = compiled.planted.variables[variable].computed_by
    by_token, by_pos = "embed" in writers, "pos" in writers
    if not (by_token or by_pos):
        raise ValueError(f"no component writes variable {variable!r}")
    if compiled.config.num_layers:
        return "blocks.0.hook_resid_pre"
    if by_token and by_pos:
        raise ValueError(f"{variable!r} is written by both embeddings of a network without "
                         "layers: no single site holds it")
    return "hook_embed" if by_token else "hook_pos_embed"


@dataclass(frozen=True)
class Mismatch:
    """One pair where the patched network and the interpreter disagree."""

    base: list
    source: list
    expected: list
    got: list
    clean: bool


@dataclass(frozen=True)
class IIAResult:
    """IIA of one variable over a set of (base, source) pairs."""

    variable: str
    site: str
    pairs: int  # pairs scored (in the domain)
    matches: int
    outside_domain: int  # pairs skipped: the counterfactual raised EvaluationError
    changed: int = 0  # scored pairs whose counterfactual differs from the base's own output
    mismatches: tuple[Mismatch, ...] = ()  # the first few

    @property
    def iia(self) -> float:
        return self.matches / self.pairs if self.pairs else float("nan")


def _encode(compiled: CompiledProgram, inputs: Sequence[Sequence], width: int) -> np.ndarray:
    ids_of = compiled.token_ids
    out = np.full((len(inputs), width), ids_of[compiled.pad], np.int32)
    out[:, 0] = ids_of[compiled.bos]
    for b, xs in enumerate(inputs):
        out[b, 1 : 1 + len(xs)] = [ids_of[t] for t in xs]
    return out


def interchange_accuracy(
    compiled: CompiledProgram, program: rasp.SOp, bases: Sequence[Sequence],
    sources: Sequence[Sequence], variables: Sequence[str] | None = None, *,
    params: dict | None = None, max_mismatches: int = 3,
    subspaces: dict[str, np.ndarray] | None = None, sites: dict[str, str] | None = None,
) -> dict[str, IIAResult]:
    """IIA of each variable (default: every one of ``compiled.variables``) on the pairs
    ``zip(bases, sources)`` (each pair of equal length).

    ``program`` is the program as compiled (``compiler.interchange.as_compiled``), so its
    node ids are ``compiled.variables``'s. All variables and pairs go through one jitted
    batch (one subspace patch per write site, one basis per row), so a program costs one
    XLA compilation. ``subspaces`` replaces a variable's planted basis (``d_model x k``)
    with another one, to test whether some other subspace carries it; ``sites`` patches a
    variable at another residual site than its write site.
    """
    bases, sources = [list(b) for b in bases], [list(s) for s in sources]
    if len(bases) != len(sources) or not bases:
        raise ValueError(f"need matching, non-empty lists of bases and sources, got "
                         f"{len(bases)} and {len(sources)}")
    variables = list(compiled.variables) if variables is None else list(variables)
    causal = bool(compiled.config.causal)
    evaluate = rasp.causal_evaluate if causal else rasp.evaluate
    own = [list(evaluate(program, base)) for base in bases]
    sops = variable_ids(program)
    missing = [v for v in variables if v not in sops]
    if missing:
        raise ValueError(f"the program has no variable {missing[0]!r}: pass the program as "
                         "compiled (compiler.interchange.as_compiled)")
    expected: dict[str, list] = {}
    for v in variables:
        expected[v] = []
        for base, source in zip(bases, sources, strict=True):
            try:
                expected[v].append(interchange(program, base, source, [sops[v]],
                                               causal=causal))
            except rasp.EvaluationError:
                expected[v].append(None)
    site_of = {v: (sites or {}).get(v) or write_site(compiled, v) for v in variables}
    width = compiled.config.max_seq_len + 1
    ids, src = _encode(compiled, bases, width), _encode(compiled, sources, width)
    ids_of = compiled.token_ids
    real = (ids != ids_of[compiled.bos]) & (ids != ids_of[compiled.pad])
    n, d = len(bases), compiled.config.d_model
    # row v * n + b: variable v on pair b
    all_ids, all_src = np.tile(ids, (len(variables), 1)), np.tile(src, (len(variables), 1))
    subspaces = subspaces or {}
    basis = {v: np.asarray(subspaces[v], np.float32) if v in subspaces else _basis(compiled, v)
             for v in variables}
    none = np.zeros((d, 0), np.float32)
    patches = []
    for site in dict.fromkeys(site_of.values()):
        rows = [basis[v] if site_of[v] == site else none for v in variables for _ in range(n)]
        mine = np.repeat([site_of[v] == site for v in variables], n)
        positions = np.tile(real, (len(variables), 1)) & mine[:, None]
        patches.append(SubspacePatch(site, rows, all_src, positions=positions))
    if params is None:
        params = jax.device_put(dict(compiled.params))
    resid = intervene(params, all_ids, SiteConfig.of(compiled), patches).resid
    decoded, clean = decode(compiled, np.asarray(resid))
    out: dict[str, IIAResult] = {}
    for i, v in enumerate(variables):
        matches, scored, changed, bad = 0, 0, 0, []
        for b, want in enumerate(expected[v]):
            if want is None:
                continue
            scored += 1
            changed += not outputs_match(own[b], want)
            row, length = i * n + b, len(bases[b])
            got, ok = decoded[row][1 : 1 + length], bool(clean[row, 1 : 1 + length].all())
            if ok and outputs_match(got, want):
                matches += 1
            elif len(bad) < max_mismatches:
                bad.append(Mismatch(bases[b], sources[b], want, got, ok))
        out[v] = IIAResult(v, site_of[v], scored, matches, n - scored, changed, tuple(bad))
    return out


__all__ = ["write_site", "Mismatch", "IIAResult", "interchange_accuracy"]
