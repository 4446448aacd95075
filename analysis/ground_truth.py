"""Ground-truth circuits per ablation, found and verified by running the interventions.

The compiler plants a *structural* circuit (``compiled.meta["planted_circuit"]``, or
``compiler.circuit.planted_circuit``): every edge backed by non-zero weights. What an
ablation can see is smaller. Miller et al. (2024) showed that under resample ablation an
edge carrying something that is the same on the clean and corrupted inputs (the length,
the positions, the constant ``one``/``bos`` directions) cannot matter. So the truth is
stated per ablation (``zero``, ``mean``, ``resample``) and per input distribution:

**The effective circuit** ``C`` is a set of structural edges such that

1. *faithfulness*: ablating every edge outside ``C`` (at once) leaves every decoded output
   on the dataset unchanged;
2. *minimality*: for each edge ``e`` in ``C``, ablating ``e`` as well (with the complement
   still ablated) changes some decoded output.

It is found greedily: start from all structural edges; visit them in reverse topological
order (edges into ``output`` first, then into the last layer, ... and, within a receiver,
from the latest sender back); remove an edge when ablating it together with everything
already removed leaves the decoded outputs unchanged. Passes repeat until one removes
nothing; in that last pass every kept edge was tested against the final complement, so
both properties hold by construction. ``verify`` checks them again from scratch (one run
for the complement, one vmapped sweep for the single edges), and the result records
``max_change`` (largest absolute change of the read-out, over real positions).

"Changes an output" means, at some real position (not BOS, not PAD) of some input: the
decoded value differs (categorical value or ``None``; numerical: the nearest value of the
exact value grid), or a clean read-out became unclean (no longer within the decoder's
tolerance of a valid value). This is exact program semantics; ``max_change`` is the numeric
view of the same runs. The circuit found greedily is *a* minimal faithful circuit: where
two redundant routes carry the same information, which one survives depends on the order.

Edges that exist in the complete graph but not in the structural one (no shared non-zero
direction) are never candidates: patching them is exactly a no-op, which
``structural_truth`` checks (its complement ablation must give ``max_change == 0``).

Expected differences from tracr's reference circuits (Conmy et al. 2023, Miller et al. 2024):
our models keep ``embed`` (tokens, constants, ``one``, ``bos``) and ``pos`` (indices)
apart and have no empty MLPs, so "tokens -> final head's V" is ``embed->L3.H0.v`` for
reverse and ``embed->L0.MLP`` for frac_prevs. Resample ablation uses the library's
corrupted inputs, which have the clean input's length; with other lengths more edges matter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rasplab.compiler.assemble import CompiledProgram
from rasplab.compiler.circuit import EdgeRecord
from rasplab.programs.corruptions import SAME_LENGTH, sample_corrupted

from .interventions import (
    ABLATIONS,
    MIN_BUCKET,
    EdgeGraph,
    Experiment,
    default_batch_size,
    prepare,
    single_edge_masks,
)

DEFAULT_SAMPLES = 256
ORDERS = 4  # pruning orders tried to decide whether a minimal circuit is unique


@dataclass
class Verification:
    """The result of running a circuit's checks on a dataset."""

    ablation: str
    max_change: float  # largest |read-out change| with the complement ablated
    outputs_unchanged: bool  # no decoded output changes with the complement ablated
    changed_positions: int  # how many (input, position) outputs changed
    failures: list[str]  # circuit edges whose extra ablation changes no decoded output
    edge_effects: dict[str, dict] = field(default_factory=dict)  # key -> max_change, changed

    @property
    def ok(self) -> bool:
        return self.outputs_unchanged and not self.failures

    def to_dict(self) -> dict:
        return {
            "ablation": self.ablation,
            "faithfulness": {"max_change": self.max_change,
                             "outputs_unchanged": self.outputs_unchanged,
                             "changed_positions": self.changed_positions},
            "minimality": {"failures": list(self.failures),
                           "edges": {k: dict(v) for k, v in self.edge_effects.items()}},
        }


@dataclass
class GroundTruth:
    """A circuit (a subset of ``graph.edges``) with its verification."""

    program: str
    ablation: str
    graph: EdgeGraph = field(repr=False)
    mask: np.ndarray = field(repr=False)  # [graph.n_edges] 1 inside the circuit
    verification: Verification
    samples: int
    passes: int = 0
    corruption: str | None = None  # resample: the corrupted inputs' distribution
    alternatives: list[np.ndarray] = field(default_factory=list, repr=False)

    @property
    def unique(self) -> bool | None:
        """Whether pruning in several orders found only this circuit (None: not checked)."""
        return None if not self.alternatives else len(self.alternatives) == 1

    def alternative_keys(self) -> list[list[str]]:
        """Each distinct minimal circuit found, as edge names."""
        masks = self.alternatives or [self.mask]
        return [[self.graph.edge_keys[i] for i in np.flatnonzero(m > 0.5)] for m in masks]

    @property
    def edges(self) -> list[EdgeRecord]:
        return self.graph.edges_of(self.mask)

    @property
    def keys(self) -> list[str]:
        return [self.graph.edge_keys[i] for i in np.flatnonzero(self.mask > 0.5)]

    @property
    def removed(self) -> list[str]:
        """Structural edges this ablation cannot see."""
        return [k for k, s, m in zip(self.graph.edge_keys, self.graph.structural, self.mask)
                if s and m < 0.5]

    def to_dict(self) -> dict:
        edges = [{"from": e.sender, "to": e.receiver, "input": e.input,
                  "carries": list(e.carries), "constant": e.constant} for e in self.edges]
        return {"program": self.program, "ablation": self.ablation,
                "corruption": self.corruption, "samples": self.samples,
                "unique": self.unique,
                "alternatives": self.alternative_keys() if self.alternatives else None,
                "edges": edges, "removed": self.removed, **self.verification.to_dict()}


# ---------------------------------------------------------------------------------------
# Search and verification


def _structural_mask(graph: EdgeGraph) -> np.ndarray:
    return np.asarray(graph.structural, np.float32).reshape(graph.n_edges)


def verify(exp: Experiment, mask: Sequence[float], *, batch_size: int | None = None
           ) -> Verification:
    """Faithfulness (complement ablated) and minimality (each inside edge on top of it).

    One stack of masks (the circuit, then the circuit minus each of its edges) through the
    vmapped effect function.
    """
    mask = np.asarray(mask, np.float32)
    inside = np.flatnonzero(mask > 0.5)
    masks = np.concatenate([mask[None], single_edge_masks(exp.graph.n_edges, mask)[inside]])
    sweep = exp.effects(masks, batch_size=batch_size)
    n_changed = np.asarray(sweep.n_changed)
    max_change = np.asarray(sweep.max_change)
    failures: list[str] = []
    effects: dict[str, dict] = {}
    for j, i in enumerate(inside, start=1):
        key = exp.graph.edge_keys[i]
        effects[key] = {"max_change": float(max_change[j]),
                        "changed_positions": int(n_changed[j])}
        if n_changed[j] == 0:
            failures.append(key)
    return Verification(
        ablation=exp.ablation, max_change=float(max_change[0]),
        outputs_unchanged=int(n_changed[0]) == 0, changed_positions=int(n_changed[0]),
        failures=failures, edge_effects=effects,
    )


def search(
    exp: Experiment, start: Sequence[float] | None = None, *, max_passes: int = 20,
    chunk: int | None = None, order: Sequence[int] | None = None,
) -> tuple[np.ndarray, int]:
    """Greedy pruning to a fixed point; returns ``(mask, passes)``. Edges are tried in
    ``order`` (default: reverse topological).

    Equivalent to trying the edges one by one, but evaluated up to ``chunk`` at a time
    (default ``MIN_BUCKET``, or the vmapped batch size if larger), speculatively, with two
    guesses in one batch: the chunk's edges removed cumulatively (the first mask that
    changes an output marks the first edge that must stay; every edge before it goes) and
    each edge removed alone from the current mask (if the first edge stays, the mask is
    unchanged for the next, so the first of these that changes nothing marks the first
    edge that goes; every edge before it stays). Either way the decisions are exactly the
    one-by-one loop's. The chunk follows the run lengths the order gives (short runs,
    e.g. in a random order, would waste most of a long chunk).
    """
    graph = exp.graph
    mask = _structural_mask(graph) if start is None else np.asarray(start, np.float32).copy()
    k = chunk or max(MIN_BUCKET, default_batch_size(graph, tuple(exp.ids.shape)))
    if int(np.asarray(exp.effects(mask[None]).n_changed)[0]):
        raise ValueError(
            f"ablating the complement of the starting circuit already changes outputs "
            f"under {exp.ablation} ablation; start from a larger circuit"
        )
    if order is None:
        order = sorted(range(graph.n_edges), key=lambda e: (
            graph.receiver_slot[graph.edges[e][1]], graph.edges[e][1],
            graph.sender_slot[graph.edges[e][0]], graph.edges[e][0]), reverse=True)
    passes = 0
    while passes < max_passes:
        passes += 1
        removed = False
        todo = [e for e in order if mask[e] > 0.5]
        i = 0
        size = k
        while i < len(todo):
            chunk = todo[i : i + size]
            n = len(chunk)
            # two speculations in one batch: "every edge of the chunk goes" (cumulative
            # removals) and "every edge stays" (each edge alone removed from the mask)
            masks = np.tile(mask, (2 * n - 1, 1))
            for j, e in enumerate(chunk):
                masks[j:n, e] = 0.0
                if j:
                    masks[n + j - 1, e] = 0.0
            n_changed = np.asarray(exp.effects(masks).n_changed)
            cumulative = n_changed[:n] > 0
            alone = np.concatenate([cumulative[:1], n_changed[n:] > 0])
            if not cumulative[0]:  # a run of removals, up to the first edge that must stay
                bad = np.flatnonzero(cumulative)
                run = n if len(bad) == 0 else int(bad[0])
                for e in chunk[:run]:
                    mask[e] = 0.0
                removed = True
                decided = run + (0 if len(bad) == 0 else 1)
            else:  # a run of edges that stay, up to the first that can go (alone)
                good = np.flatnonzero(~alone)
                run = n if len(good) == 0 else int(good[0])
                if len(good):
                    mask[chunk[run]] = 0.0
                    removed = True
                decided = run + (0 if len(good) == 0 else 1)
            i += decided
            # adapt the speculation to the run lengths this order gives
            size = min(k, max(2, 2 * decided))
        if not removed:
            break
    return mask, passes


def minimal_circuits(exp: Experiment, *, orders: int = ORDERS, seed: int = 0,
                     start=None) -> list[np.ndarray]:
    """Minimal faithful circuits found by pruning in ``orders`` different orders (reverse
    topological first, then seeded random permutations), each distinct one once, in the
    order found. One circuit means the search found no alternative (evidence that the
    minimal circuit is unique, not a proof); several mean redundant routes."""
    rng = np.random.default_rng(seed)
    found: list[np.ndarray] = []
    for k in range(orders):
        order = None if k == 0 else [int(e) for e in rng.permutation(exp.graph.n_edges)]
        mask, _ = search(exp, start, order=order)
        if not any(np.array_equal(mask, m) for m in found):
            found.append(mask)
    return found


def alternatives_by_necessity(exp: Experiment, mask: Sequence[float], *, start=None
                              ) -> list[np.ndarray]:
    """Minimal circuits other than ``mask`` found by excluding each of its edges in turn.

    One batched sweep ablates each edge of ``mask`` alone with every other structural edge
    kept (``start``'s, if given): an edge whose lone ablation changes an output is needed
    by every faithful circuit inside ``start`` (if ablating more never restores an output);
    for each edge that is not, the search runs again (reverse topological, fast) from the
    start minus that edge, and a faithful result is another minimal circuit, one without
    it. Returns ``[mask]`` followed by every distinct circuit found. Cheaper than random
    orders on big graphs (each search runs in the order the speculative chunking suits) and
    aimed at each edge of the found circuit in turn.
    """
    mask = np.asarray(mask, np.float32)
    base = _structural_mask(exp.graph) if start is None else np.asarray(start, np.float32)
    inside = [int(i) for i in np.flatnonzero(mask > 0.5)]
    found = [mask]
    if not inside:
        return found
    sweep = exp.effects(single_edge_masks(exp.graph.n_edges, base)[inside])
    n_changed = np.asarray(sweep.n_changed)
    for i, changed in zip(inside, n_changed, strict=True):
        if changed:
            continue
        begin = base.copy()
        begin[i] = 0.0
        alt, _ = search(exp, begin)
        if not any(np.array_equal(alt, m) for m in found) and verify(exp, alt).ok:
            found.append(alt)
    return found


def effective_circuit(exp: Experiment, *, program: str = "", start=None,
                      orders: int = 1, necessity: bool = False) -> GroundTruth:
    """The circuit ``exp.ablation`` can see on ``exp``'s dataset, searched and verified.

    With ``orders > 1`` the search is repeated in other orders (``minimal_circuits``);
    every distinct minimal circuit is verified and kept in ``alternatives``. With
    ``necessity`` the circuits ``alternatives_by_necessity`` finds are added too.
    """
    mask, passes = search(exp, start)
    alternatives: list[np.ndarray] = []
    if orders > 1:
        alternatives = minimal_circuits(exp, orders=orders, start=start)
        for alt in alternatives[1:]:
            if not verify(exp, alt).ok:
                raise RuntimeError("a pruned circuit failed its own verification")
    if necessity:
        alternatives = alternatives or [mask]
        for alt in alternatives_by_necessity(exp, mask, start=start)[1:]:
            if not any(np.array_equal(alt, m) for m in alternatives):
                alternatives.append(alt)
    return GroundTruth(program or exp.compiled.output, exp.ablation, exp.graph, mask,
                       verify(exp, mask), int(exp.ids.shape[0]), passes, exp.corruption,
                       alternatives)


def structural_truth(exp: Experiment, *, program: str = "") -> GroundTruth:
    """The planted structural circuit, verified under ``exp``'s ablation (use ``zero``).

    ``max_change`` must be exactly 0 (edges outside it share no direction); ``failures``
    lists structural edges whose ablation alone (with the complement ablated, a no-op)
    changes no output on the dataset: real weights the outputs do not depend on here.
    """
    mask = _structural_mask(exp.graph)
    return GroundTruth(program or exp.compiled.output, exp.ablation, exp.graph, mask,
                       verify(exp, mask), int(exp.ids.shape[0]), 0, exp.corruption)


# ---------------------------------------------------------------------------------------
# Convenience entry points


def ground_truth(
    compiled: CompiledProgram, clean: Sequence[Sequence], ablation: str = "resample", *,
    corrupted: Sequence[Sequence] | None = None, reference: Sequence[Sequence] | None = None,
    complete: bool = False, program: str = "", corruption: str | None = None,
) -> GroundTruth:
    """The effective circuit of ``compiled`` under ``ablation`` on the given inputs.

    ``corrupted`` (paired with ``clean`` row by row; ``corruption`` names its
    distribution) is needed for resample;
    ``reference`` is the dataset mean ablation averages over (default ``clean``).
    ``complete`` searches within the complete graph's edge list (the result is the same
    set; its mask then indexes the complete graph).
    """
    exp = prepare(compiled, clean, ablation, corrupted=corrupted, reference=reference,
                  complete=complete, corruption=corruption)
    return effective_circuit(exp, program=program)


def ground_truths(
    compiled: CompiledProgram, clean: Sequence[Sequence], corrupted: Sequence[Sequence], *,
    ablations: Sequence[str] = ABLATIONS, complete: bool = False, program: str = "",
    corruption: str | None = None,
) -> dict[str, GroundTruth]:
    """``{"structural": ..., "zero": ..., "mean": ..., "resample": ...}`` on one dataset.

    ``structural`` is the planted circuit verified under zero ablation.
    """
    out: dict[str, GroundTruth] = {}
    zero = prepare(compiled, clean, "zero", complete=complete)
    out["structural"] = structural_truth(zero, program=program)
    for ablation in ablations:
        exp = zero if ablation == "zero" else prepare(
            compiled, clean, ablation, corrupted=corrupted, complete=complete,
            corruption=corruption)
        out[ablation] = effective_circuit(exp, program=program)
    return out


def sample_dataset(spec, n: int = DEFAULT_SAMPLES, seed: int = 0,
                   corruption: str = SAME_LENGTH) -> tuple[list[list], list[list]]:
    """Clean inputs from a library ``ProgramSpec`` and their paired corrupted inputs drawn
    from the named ``corruption`` distribution (``programs/corruptions.py``)."""
    rng = np.random.default_rng(seed)
    clean = spec.sample_clean(rng, n)
    return clean, sample_corrupted(spec, rng, clean, corruption)


def for_program(
    spec, ablation: str = "resample", *, samples: int = DEFAULT_SAMPLES, seed: int = 0,
    compiled: CompiledProgram | None = None, complete: bool = False,
    corruption: str = SAME_LENGTH,
) -> GroundTruth:
    """Ground truth for a library program (a ``ProgramSpec``: ``rasplab.programs.get``).

    ``ablation`` may also be ``"structural"`` (the planted circuit verified under zero).
    """
    if isinstance(spec, str):
        raise TypeError(f"for_program takes a ProgramSpec, not a name: pass "
                        f"rasplab.programs.get({spec!r})")
    if compiled is None:
        from rasplab.compiler import compile_program

        compiled = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    clean, corrupted = sample_dataset(spec, samples, seed, corruption)
    if ablation == "structural":
        exp = prepare(compiled, clean, "zero", complete=complete)
        return structural_truth(exp, program=spec.name)
    return ground_truth(compiled, clean, ablation, corrupted=corrupted, complete=complete,
                        program=spec.name, corruption=corruption)


__all__ = [
    "Verification", "GroundTruth", "verify", "search", "effective_circuit",
    "minimal_circuits", "alternatives_by_necessity",
    "structural_truth", "ground_truth", "ground_truths", "sample_dataset", "for_program",
    "DEFAULT_SAMPLES",
]
