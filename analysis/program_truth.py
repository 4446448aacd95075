"""The truth derived from the program: which program edges the output depends on.

``analysis/ground_truth.py`` finds its truth by pruning the *network* (ACDC's procedure
with a zero threshold). This module derives one from the **program** instead, without
running the network, and then checks it against the network by intervention.

1. **Program edges** (``compiler.program_edges``): each operation's each input (a head's
   queries, keys and values, an MLP's arguments, the output's read of the program's
   output, and the ``internal`` hand-over of an operation the compiler splits over two
   components, a ``SelectorWidth``'s head and MLP).
2. **Resample ablation in the interpreter**: on the same (clean, corrupted) pairs the
   network truth uses (``ground_truth.sample_dataset``), forcing a program edge gives that
   one input the value its parent takes on the corrupted input, every other use staying
   clean. The minimal set of program edges is found by greedy pruning to a fixed point in
   reverse topological order of the consumers (and, for uniqueness, seeded random orders):
   forcing every edge outside it changes no output on any pair, forcing any edge inside as
   well changes one.
3. **Mapping to the network** through the planted circuit's records: a program edge
   ``parent -> consumer.role`` is carried by every structural edge whose sender computes
   ``parent`` (the edge ``carries`` it), whose receiver computes ``consumer`` and whose
   input matches the role (``q``/``k``/``v`` for a head, the MLP's input for ``in``/``fst``/
   ``snd``, the unembedding for ``out``; ``internal``: an edge between two components that
   both compute ``consumer``). A network edge carrying several program edges (an MLP
   reading two variables from one sender, an MLP computing two variables) is in the truth
   if any of them is; an operation split over several components (an ``internal`` edge, or
   a variable that several components compute, which gets an ``internal`` program edge
   for the hand-over between them) puts every carrying edge in.
4. **Constant edges** (those carrying only ``one``/``bos``) have no program counterpart:
   they carry which positions are BOS, real or PAD, which the program does not name. The
   rule: they are kept only where the network needs them given the mapped edges (a search
   over the constant edges alone, everything non-constant fixed), and reported
   separately (``constant``) so the program-derived part (``mapped``) stays
   network-independent.
5. **Checked on the network** (``ground_truth.verify``): faithful (ablating everything
   outside changes no decoded output) and minimal (each edge inside matters). Where either
   fails, the program and the network disagree and the record says where.

**Ablations.** Only resample ablation has a program-level meaning: the ablated value is a
value the variable takes on another input. Zero and mean ablation do not: a zeroed
categorical direction is no value of the variable, and a mean of one-hot codes is a mix of
values; the interpreter cannot say what an operation does with either. The program-derived
truth is stated for resample ablation only, for each corruption distribution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rasplab.compiler.assemble import CompiledProgram
from rasplab.compiler.circuit import PlantedCircuit
from rasplab.compiler.program_edges import (
    OUTPUT,
    PairEvaluator,
    ProgramEdge,
    program_edges,
    traced,
)
from rasplab.programs.corruptions import SAME_LENGTH

from .ground_truth import DEFAULT_SAMPLES, Verification, sample_dataset, search, verify
from .interventions import Experiment, prepare

ABLATION = "resample"  # the only ablation with a program-level meaning
ORDERS = 4


# ---------------------------------------------------------------------------------------
# Step 2: the minimal program edges, in the interpreter


@dataclass(frozen=True)
class ProgramSearch:
    """Minimal program-edge sets of one program on one dataset (first: reverse
    topological order; the others: distinct sets other orders found)."""

    edges: tuple[ProgramEdge, ...]  # every program edge
    minimal: tuple[tuple[ProgramEdge, ...], ...]

    @property
    def truth(self) -> tuple[ProgramEdge, ...]:
        return self.minimal[0]

    @property
    def unique(self) -> bool:
        return len(self.minimal) == 1


def _faithful(evals: Sequence[PairEvaluator], forced: frozenset) -> bool:
    return all(ev.changed(forced) == 0 for ev in evals)


def _prune(evals, edges: Sequence[ProgramEdge], order: Sequence[int]) -> tuple[ProgramEdge, ...]:
    keep = set(range(len(edges)))
    while True:
        removed = False
        for i in order:
            if i not in keep:
                continue
            forced = frozenset(edges[j] for j in range(len(edges)) if j not in keep or j == i)
            if _faithful(evals, forced):
                keep.discard(i)
                removed = True
        if not removed:
            return tuple(edges[j] for j in sorted(keep))


def minimal_program_edges(
    program, vocab, max_seq_len: int, clean: Sequence[Sequence],
    corrupted: Sequence[Sequence], *, causal: bool = False, orders: int = ORDERS,
    seed: int = 0, split: Sequence[str] = (),
) -> ProgramSearch:
    """Greedy pruning of the program edges in the interpreter (``orders`` orders: reverse
    topological, then seeded random permutations). ``split``: variables the compiler
    spreads over several components, which get an ``internal`` edge (a ``SelectorWidth``
    always has one)."""
    graph = traced(program, vocab, max_seq_len)
    edges = program_edges(graph)
    for var in split:
        e = ProgramEdge(var, var, "internal")
        if var in graph.nodes and e not in edges:
            edges.insert(len(edges) - 1, e)
    evals = [PairEvaluator(graph, c, x, causal=causal) for c, x in zip(clean, corrupted,
                                                                      strict=True)]
    rng = np.random.default_rng(seed)
    found: list[tuple[ProgramEdge, ...]] = []
    for k in range(orders):
        order = (list(range(len(edges)))[::-1] if k == 0
                 else [int(i) for i in rng.permutation(len(edges))])
        result = _prune(evals, edges, order)
        if result not in found:
            found.append(result)
    return ProgramSearch(tuple(edges), tuple(found))


# ---------------------------------------------------------------------------------------
# Step 3: program edges -> network edges


def carriers(pc: PlantedCircuit, edge: ProgramEdge) -> list[str]:
    """The structural network edges that carry a program edge (see the module docstring)."""
    comps = {name: set(v.computed_by) for name, v in pc.variables.items()}
    parent_by = comps.get(edge.parent, set())
    out = []
    for e in pc.edges:
        if edge.parent not in e.carries or e.sender not in parent_by:
            continue
        if edge.role == "out":
            if e.receiver == OUTPUT:
                out.append(e.key)
            continue
        consumer_by = comps.get(edge.consumer, set())
        if e.receiver not in consumer_by:
            continue
        internal = e.sender in consumer_by
        if edge.role == "internal":
            if internal:
                out.append(e.key)
        elif internal:
            continue
        elif edge.role in ("q", "k", "v"):
            if e.input == edge.role:
                out.append(e.key)
        elif e.input is None:  # in / fst / snd: an MLP's input
            out.append(e.key)
    return out


def network_map(pc: PlantedCircuit, edges: Sequence[ProgramEdge]) -> dict[str, list[str]]:
    """``{program edge key: [network edge keys]}``."""
    return {e.key: carriers(pc, e) for e in edges}


# ---------------------------------------------------------------------------------------
# Steps 4-5: constants, and the check on the network


@dataclass
class ProgramTruth:
    """The program-derived truth of one program under resample ablation on one corruption
    distribution, mapped to network edges and checked on the network."""

    program: str
    corruption: str
    samples: int
    program_edges: list[str]  # the minimal program edges (reverse topological search)
    alternatives: list[list[str]]  # every distinct minimal program-edge set found
    mapped: list[str]  # network edges carrying a truth program edge
    constant: list[str]  # constant edges the network needs given ``mapped``
    unrealised: list[str]  # truth program edges no structural edge carries
    unmapped: list[str]  # non-constant structural edges carrying no program edge at all
    faithful_before_constants: bool  # mapped + every constant edge is faithful
    verification: Verification | None = None
    mask: np.ndarray | None = field(default=None, repr=False)
    edge_keys: tuple[str, ...] = field(default=(), repr=False)

    @property
    def edges(self) -> list[str]:
        """The truth as network edge names: ``mapped`` and the needed ``constant`` edges."""
        keys = set(self.mapped) | set(self.constant)
        return [k for k in self.edge_keys if k in keys]

    @property
    def unique(self) -> bool:
        return len(self.alternatives) == 1

    @property
    def ok(self) -> bool:
        return self.verification is not None and self.verification.ok

    def to_dict(self) -> dict:
        return {"program": self.program, "ablation": ABLATION, "corruption": self.corruption,
                "samples": self.samples, "source": "program",
                "program_edges": self.program_edges, "unique": self.unique,
                "alternatives": self.alternatives, "edges": self.edges,
                "mapped": self.mapped, "constant": self.constant,
                "unrealised": self.unrealised, "unmapped": self.unmapped,
                "faithful_before_constants": self.faithful_before_constants,
                **({} if self.verification is None else self.verification.to_dict())}


def derive(spec, compiled: CompiledProgram, clean: Sequence[Sequence],
           corrupted: Sequence[Sequence], *, corruption: str,
           exp: Experiment | None = None, orders: int = ORDERS) -> ProgramTruth:
    """The program-derived truth on these (clean, corrupted) pairs, checked on ``compiled``
    (``exp``: a prepared resample experiment on the same pairs, built if not given)."""
    pc = compiled.planted
    split = [name for name, v in pc.variables.items()
             if len(set(v.computed_by) - {"embed", "pos"}) > 1]
    search_ = minimal_program_edges(spec.build(), spec.vocab, spec.max_seq_len, clean,
                                    corrupted, causal=compiled.config.causal, orders=orders,
                                    split=split)
    mapping = network_map(pc, search_.edges)
    truth = search_.truth
    mapped = sorted({k for e in truth for k in mapping[e.key]})
    carried = {k for ks in mapping.values() for k in ks}
    unmapped = [e.key for e in pc.edges if not e.constant and e.key not in carried]
    unrealised = [e.key for e in truth if not mapping[e.key]]
    if exp is None:
        exp = prepare(compiled, clean, ABLATION, corrupted=corrupted, corruption=corruption)
    g = exp.graph
    mask = np.zeros(g.n_edges, np.float32)
    for k in mapped:
        mask[g.edge_index(k)] = 1.0
    const_idx = [i for i, r in enumerate(g.edge_records) if r.constant and g.structural[i]]
    mask[const_idx] = 1.0
    faithful = int(np.asarray(exp.effects(mask[None]).n_changed)[0]) == 0
    if faithful:  # keep the constant edges the network needs (the rest fixed)
        order = sorted(const_idx, key=lambda e: (
            g.receiver_slot[g.edges[e][1]], g.edges[e][1],
            g.sender_slot[g.edges[e][0]], g.edges[e][0]), reverse=True)
        mask, _ = search(exp, mask, order=order)
    constant = [g.edge_keys[i] for i in const_idx if mask[i] > 0.5]
    return ProgramTruth(
        program=spec.name, corruption=corruption, samples=len(clean),
        program_edges=[e.key for e in truth],
        alternatives=[[e.key for e in alt] for alt in search_.minimal],
        mapped=mapped, constant=constant, unrealised=unrealised, unmapped=unmapped,
        faithful_before_constants=faithful, verification=verify(exp, mask), mask=mask,
        edge_keys=g.edge_keys,
    )


def mapped_alternatives(pt: ProgramTruth, pc: PlantedCircuit) -> list[list[str]]:
    """Each minimal program-edge set found, as network edges (its carriers and the
    constant edges ``pt`` keeps): the program truth as a set where it is not unique."""
    by_key = {e.key: e for e in program_edges_of(pc, pt)}
    out = []
    for alt in pt.alternatives:
        keys = {k for key in alt for k in carriers(pc, by_key[key])} | set(pt.constant)
        out.append([k for k in pt.edge_keys if k in keys])
    return out


def program_edges_of(pc: PlantedCircuit, pt: ProgramTruth) -> list[ProgramEdge]:
    """The ``ProgramEdge`` records named in ``pt``'s alternatives."""
    out = []
    for alt in pt.alternatives:
        for key in alt:
            out.append(_parse_key(key))
    return out


def _parse_key(key: str) -> ProgramEdge:
    if key.endswith(":internal"):
        v = key[: -len(":internal")]
        return ProgramEdge(v, v, "internal")
    parent, _, rest = key.partition("->")
    if rest == OUTPUT:
        return ProgramEdge(parent, OUTPUT, "out")
    consumer, _, role = rest.rpartition(".")
    return ProgramEdge(parent, consumer, role)


def as_ground_truth(pt: ProgramTruth, exp: Experiment):
    """The program truth as a ``GroundTruth`` on ``exp``'s graph (what ``scoring.score``
    takes): its mask, its verification, and every mapped alternative (the set rule of
    ``analysis/scoring.py`` then scores a method against the best-matching one)."""
    from .ground_truth import GroundTruth

    g = exp.graph
    masks = []
    for keys in mapped_alternatives(pt, exp.compiled.planted):
        m = np.zeros(g.n_edges, np.float32)
        for k in keys:
            m[g.edge_index(k)] = 1.0
        if not any(np.array_equal(m, x) for x in masks):
            masks.append(m)
    mask = masks[0]
    return GroundTruth(pt.program, ABLATION, g, mask,
                       pt.verification if pt.verification is not None else verify(exp, mask),
                       pt.samples, 0, pt.corruption, masks if len(masks) > 1 else [])


def for_program(spec, *, corruption: str = SAME_LENGTH, samples: int = DEFAULT_SAMPLES,
                seed: int = 0, compiled: CompiledProgram | None = None,
                orders: int = ORDERS) -> ProgramTruth:
    """The program-derived truth of a library program (a ``ProgramSpec``), on the dataset
    ``ground_truth.for_program`` uses for the same samples, seed and corruption."""
    if compiled is None:
        from rasplab.compiler import compile_program

        compiled = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    clean, corrupted = sample_dataset(spec, samples, seed, corruption)
    return derive(spec, compiled, clean, corrupted, corruption=corruption, orders=orders)


__all__ = ["ABLATION", "ProgramSearch", "ProgramTruth", "minimal_program_edges", "carriers",
           "network_map", "derive", "for_program", "mapped_alternatives", "as_ground_truth"]
