"""The planted circuit: what the compiler knows about its own model, read off the weights.

``planted_circuit(compiled)`` returns a ``PlantedCircuit``: frozen, typed records (numpy
only, no JAX), JSON only at the file boundary (``to_json`` / ``from_json``). It is computed
from the compiled weights, never from the compiler's intentions: an edge exists only where a
non-zero weight makes one component's output reach another's input. A variant (a rotated or
compressed model) carries its source's circuit with each variable's **basis** (a
``d_model x k`` matrix whose columns are the variable's value directions) mapped into its
own residual stream, so analysis never needs the stream to be axis-aligned.

Components and their order
--------------------------
Nodes, in forward order: ``embed`` (the token embedding, which writes ``tokens``, every
``Full``/``ConstantSOp`` constant and the special directions ``one`` and ``bos``), ``pos``
(the position embedding, which writes ``indices``), then per layer ``L{l}.H{h}`` for each
head and ``L{l}.MLP`` (the whole MLP, even when it holds slices for several variables),
and last ``output`` (the unembedding). Each node has a ``slot``: -1 for ``embed``/``pos``,
``2l`` for layer ``l``'s heads, ``2l + 1`` for its MLP, ``2L`` for ``output``.

Edges
-----
``A -> B`` exists when ``slot(A) < slot(B)`` and some residual direction ``r`` is both
written by A and read by B. A writes ``r`` when its output weights have a non-zero in column
``r`` (``attn.o[h]`` for a head, ``mlp.out`` for an MLP, ``embed.token`` / ``embed.pos``
for the embeddings). B reads ``r`` when its input weights have a non-zero row ``r``: for a
head each of ``attn.q[h]``, ``attn.k[h]``, ``attn.v[h]`` separately (one edge per input,
labelled ``"q"``, ``"k"``, ``"v"``), ``mlp.in`` for an MLP (input ``None``), and
``unembed`` for ``output`` (input ``None``).

Special directions. ``one`` (1 at real positions) and ``bos`` (1 at BOS) are real weights:
MLPs use ``one`` for their constants, an MLP that shares a layer with a head writing at
BOS (an aggregate's default, a SelectorWidth's scratch value) reads ``bos`` as a gate,
and every head reads ``one``/``bos`` (the attention sink, the score of a literal that does
not depend on one side). Edges that carry *only* these directions are kept in the graph
but marked ``"constant": true``: they carry no information about the input tokens (only
which positions are BOS, real or PAD), so the structural circuit includes them and
ablation-specific ground truths (``analysis/ground_truth.py``) decide whether a given
ablation can see them (zero ablation usually can, resample ablation between inputs of
equal length cannot).

JSON form (``"schema": 2``; ``from_json`` also reads schema 1)
--------------------------------------------------------------
::

    {
      "schema": 1,
      "output": "<output variable>",
      "nodes": [
        {"name": "L0.H0", "kind": "attn",   # "embed" | "pos" | "attn" | "mlp" | "output"
         "layer": 0, "head": 0,             # null where not applicable
         "slot": 0,
         "computes": ["length"],            # program variables this component (co)computes
         "ops": ["selector_width"],
         "slices": [],                      # MLP only: [{"variable", "op", "units": [lo, hi)}]
         "writes": ["length:__width__"],    # residual labels of non-zero output columns
         "reads": {"q": [...], "k": [...], "v": [...]}   # heads; {"in": [...]} for MLP and
        },                                               # output; {} for embed/pos
        ...
      ],
      "edges": [
        {"from": "embed", "to": "L3.H0", "input": "v",   # input: "q"|"k"|"v" or null
         "carries": ["tokens"],             # variables owning the shared directions
         "directions": ["tokens:1", ...],   # the shared residual labels
         "constant": false},                # true iff carries is a subset of {"one", "bos"}
        ...
      ],
      "variables": {
        "<name>": {"kind": "Aggregate", "encoding": "categorical", "values": [...],
                   "can_be_none": false, "directions": [...],   # a label per column
                   "dims": [37, 38, 39],          # axis-aligned basis: unit columns, or
                   "basis": [[...], ...],         # any other basis: the d_model x k matrix
                   "basis_kind": "estimated",     # only where the basis is not exact
                   "children": [...], "computed_by": ["L3.H0"]},
        ...
      },
      "selectors": {"<id>": {"children": ["<keys>", "<queries>"]}},
      "dag": [["<child>", "<parent>"], ...],  # the program DAG (variables and selectors)
      "d_model": 41,
      "truths": [{"ablation": "resample", "corruption": "same-length", "edges": [...],
                  "samples": 256, "faithful": true, "minimal": true}]
    }

Edges are listed in forward order of the receiving node, then input (q, k, v, null), then
sending node. Scratch directions (``x:__width__``, the 1/(w+1) a SelectorWidth head hands
its MLP) are carried by the variable ``x`` they help compute. Values that JSON cannot hold
(tuples become lists; anything else becomes its ``repr``) are converted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from .assemble import CompiledProgram
from .names import Edge, Kind, Node, edge_name

SCHEMA_VERSION = 2
CONSTANT_CARRIERS = frozenset({"one", "bos"})
_SCRATCH = re.compile(r"^(.*):__[A-Za-z0-9_]+__$")


def direction_owners(compiled: CompiledProgram) -> list[str]:
    """For every residual dimension, the variable (or ``one``/``bos``) that owns it."""
    owners: list[str | None] = [None] * len(compiled.residual_labels)
    for name, info in compiled.variables.items():
        for d in info.dims:
            owners[d] = name
    result = []
    for d, label in enumerate(compiled.residual_labels):
        if owners[d] is not None:
            result.append(owners[d])
            continue
        m = _SCRATCH.match(label)
        result.append(m.group(1) if m else label)
    return result


def _nonzero(a: np.ndarray, axis: int) -> np.ndarray:
    return np.flatnonzero((np.asarray(a) != 0).any(axis=axis))


def component_nodes(params: Mapping[str, np.ndarray], num_layers: int) -> list[dict]:
    """Every component of a network in forward order with the residual dimensions its
    weights touch (non-zero columns written, non-zero rows read: every dimension for a
    dense network).

    Each record: ``name, kind, layer, head, slot, writes`` (dims) and ``reads``
    (``{input: dims}``, input ``"q"/"k"/"v"`` for heads, ``None`` for MLP and output).
    """
    p = params
    nodes: list[dict] = [
        {"name": "embed", "kind": "embed", "layer": None, "head": None, "slot": -1,
         "writes": _nonzero(p["embed.token"], 0), "reads": {}},
        {"name": "pos", "kind": "pos", "layer": None, "head": None, "slot": -1,
         "writes": _nonzero(p["embed.pos"], 0), "reads": {}},
    ]
    for layer in range(num_layers):
        if f"layers.{layer}.attn.q" in p:
            q, k, v, o = (p[f"layers.{layer}.attn.{x}"] for x in ("q", "k", "v", "o"))
            for h in range(q.shape[0]):
                nodes.append({
                    "name": f"L{layer}.H{h}", "kind": "attn", "layer": layer, "head": h,
                    "slot": 2 * layer, "writes": _nonzero(o[h], 0),
                    "reads": {"q": _nonzero(q[h], 1), "k": _nonzero(k[h], 1),
                              "v": _nonzero(v[h], 1)},
                })
        if f"layers.{layer}.mlp.in" in p:
            nodes.append({
                "name": f"L{layer}.MLP", "kind": "mlp", "layer": layer, "head": None,
                "slot": 2 * layer + 1, "writes": _nonzero(p[f"layers.{layer}.mlp.out"], 0),
                "reads": {None: _nonzero(p[f"layers.{layer}.mlp.in"], 1)},
            })
    nodes.append({
        "name": "output", "kind": "output", "layer": None, "head": None,
        "slot": 2 * num_layers, "writes": np.zeros(0, dtype=np.int64),
        "reads": {None: _nonzero(p["unembed"], 1)},
    })
    return nodes


def _edges(nodes: list[dict], owners: list[str], labels: list[str]) -> list[dict]:
    edges = []
    writes = [n["writes"].tolist() for n in nodes]
    for recv in nodes:
        for inp, reads in recv["reads"].items():
            read_set = set(reads.tolist())
            for send, written in zip(nodes, writes, strict=True):
                if send["slot"] >= recv["slot"]:
                    continue
                shared = [d for d in written if d in read_set]
                if not shared:
                    continue
                carries: list[str] = []
                for d in shared:
                    if owners[d] not in carries:
                        carries.append(owners[d])
                edges.append({
                    "from": send["name"], "to": recv["name"], "input": inp,
                    "carries": carries, "directions": [labels[d] for d in shared],
                    "constant": set(carries) <= CONSTANT_CARRIERS,
                })
    return edges


# ---------------------------------------------------------------------------------------
# Typed records


@dataclass(frozen=True)
class MLPSlice:
    """Hidden units ``[lo, hi)`` of an MLP that compute ``variable`` by ``op``."""

    variable: str
    op: str
    units: tuple[int, int]


@dataclass(frozen=True)
class ComponentRecord:
    """A component and what it computes; ``writes``/``reads`` are residual labels of the
    compiled source (the axis-aligned stream the circuit was read off)."""

    node: Node
    slot: int
    computes: tuple[str, ...] = ()
    ops: tuple[str, ...] = ()
    slices: tuple[MLPSlice, ...] = ()
    writes: tuple[str, ...] = ()
    reads: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.node)

    @property
    def kind(self) -> Kind:
        return self.node.kind

    def to_json(self) -> dict:
        n = self.node
        return {"name": self.name, "kind": n.kind.value, "layer": n.layer, "head": n.head,
                "slot": self.slot, "computes": list(self.computes), "ops": list(self.ops),
                "slices": [{"variable": s.variable, "op": s.op, "units": list(s.units)}
                           for s in self.slices],
                "writes": list(self.writes), "reads": {k: list(v) for k, v in self.reads.items()}}


@dataclass(frozen=True)
class EdgeRecord:
    """A structural edge: the variables whose directions it shares, and whether they are
    only the constant ``one``/``bos`` directions."""

    edge: Edge
    carries: tuple[str, ...]
    directions: tuple[str, ...]
    constant: bool

    @property
    def key(self) -> str:
        return str(self.edge)

    @property
    def sender(self) -> str:
        return str(self.edge.sender)

    @property
    def receiver(self) -> str:
        return str(self.edge.receiver)

    @property
    def input(self) -> str | None:
        return self.edge.input

    def to_json(self) -> dict:
        return {"from": self.sender, "to": self.receiver, "input": self.input,
                "carries": list(self.carries), "directions": list(self.directions),
                "constant": self.constant}


class BasisKind(StrEnum):
    """How a variable's basis is known: ``exact`` (the compiler's directions, or those
    mapped through a known matrix: rotated, compressed) or ``estimated`` (a dense trained
    model, where no basis is exact: an estimate of where each value is written, which
    nothing downstream may treat as the variable's true subspace)."""

    EXACT = "exact"
    ESTIMATED = "estimated"


@dataclass(frozen=True, eq=False)
class Variable:
    """A program variable: its values, the components computing it, and its basis in the
    model's residual stream (``basis[:, j]`` is the direction labelled ``labels[j]``:
    ``var:value`` for a categorical value, ``var`` for a numerical variable).
    ``basis_kind`` says whether that basis is exact or only estimated."""

    name: str
    kind: str
    encoding: str
    values: tuple
    can_be_none: bool
    children: tuple[str, ...]
    computed_by: tuple[str, ...]
    labels: tuple[str, ...]
    basis: np.ndarray  # [d_model, k] float64
    basis_kind: BasisKind = BasisKind.EXACT

    @property
    def dims(self) -> list[int] | None:
        """The residual dimensions of an axis-aligned basis (unit columns), else None."""
        b = self.basis
        if b.size and not (np.count_nonzero(b, axis=0) == 1).all():
            return None
        rows = [int(np.flatnonzero(b[:, j])[0]) for j in range(b.shape[1])]
        unit = np.zeros_like(b)
        unit[rows, range(len(rows))] = 1.0
        return rows if np.array_equal(unit, b) else None


@dataclass(frozen=True)
class Truth:
    """The circuit one ablation can see on one corruption distribution, verified by
    intervention (faithful: ablating the rest changes no output; minimal: each edge
    matters)."""

    ablation: str
    corruption: str
    edges: tuple[str, ...]
    samples: int
    faithful: bool
    minimal: bool


@dataclass(frozen=True, eq=False)
class PlantedCircuit:
    """What the compiler knows about its model: components, structural edges, variables
    with their bases, the program DAG, and verified per-ablation truths once computed."""

    output: str
    d_model: int
    components: tuple[ComponentRecord, ...]
    edges: tuple[EdgeRecord, ...]
    variables: Mapping[str, Variable]
    selectors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    dag: tuple[tuple[str, str], ...] = ()
    truths: tuple[Truth, ...] = ()

    def component(self, name: str) -> ComponentRecord:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(f"no component {name!r}; components are "
                       f"{[c.name for c in self.components]}")

    def edge(self, key: str) -> EdgeRecord:
        for e in self.edges:
            if e.key == key:
                return e
        raise KeyError(f"no edge {key!r} in the planted circuit")

    @property
    def edge_keys(self) -> list[str]:
        return [e.key for e in self.edges]

    def truth(self, ablation: str, corruption: str | None = None) -> Truth | None:
        """The stored truth for ``ablation`` (and ``corruption``, if given), or None."""
        for t in self.truths:
            if t.ablation == ablation and corruption in (None, t.corruption):
                return t
        return None

    def with_truths(self, *truths: Truth) -> PlantedCircuit:
        """A copy holding ``truths`` (replacing any stored for the same pair)."""
        new = {(t.ablation, t.corruption) for t in truths}
        kept = tuple(t for t in self.truths if (t.ablation, t.corruption) not in new)
        return replace(self, truths=kept + tuple(truths))

    def transformed(self, matrix: np.ndarray) -> PlantedCircuit:
        """The circuit of a network whose residual stream is ``x @ matrix`` (D x d): every
        variable basis becomes ``matrix.T @ basis``. Truths are dropped: re-verify them."""
        m = np.asarray(matrix, np.float64)
        if m.shape[0] != self.d_model:
            raise ValueError(f"a {m.shape} map does not start from d_model {self.d_model}")
        variables = {k: replace(v, basis=m.T @ v.basis) for k, v in self.variables.items()}
        return replace(self, d_model=m.shape[1], variables=variables, truths=())

    # -- JSON ----------------------------------------------------------------------------
    def to_json(self, *, plain: bool = False) -> dict:
        """JSON data (schema 2). Values are tagged with their type (``{"int": 1}``) so they
        load back exactly, unless ``plain`` (for display: ``1``)."""
        from .jsonvalues import encode_value, plain_value

        enc = plain_value if plain else encode_value
        variables = {}
        for name, v in self.variables.items():
            rec = {"kind": v.kind, "encoding": v.encoding, "values": [enc(x) for x in v.values],
                   "can_be_none": v.can_be_none, "directions": list(v.labels),
                   "children": list(v.children), "computed_by": list(v.computed_by)}
            if v.basis_kind is not BasisKind.EXACT:
                rec["basis_kind"] = v.basis_kind.value
            dims = v.dims
            if dims is not None:
                rec["dims"] = dims
            else:
                rec["basis"] = v.basis.tolist()
            variables[name] = rec
        return {
            "schema": SCHEMA_VERSION,
            "output": self.output,
            "d_model": self.d_model,
            "nodes": [c.to_json() for c in self.components],
            "edges": [e.to_json() for e in self.edges],
            "variables": variables,
            "selectors": {k: {"children": list(v)} for k, v in self.selectors.items()},
            "dag": [list(p) for p in self.dag],
            "truths": [{"ablation": t.ablation, "corruption": t.corruption,
                        "edges": list(t.edges), "samples": t.samples,
                        "faithful": t.faithful, "minimal": t.minimal} for t in self.truths],
        }

    @classmethod
    def from_json(cls, data: Mapping) -> PlantedCircuit:
        """Read ``to_json``'s output (schema 2) or the plain schema-1 dicts of older files."""
        from .jsonvalues import decode_value

        schema = data.get("schema")
        if schema not in (1, SCHEMA_VERSION):
            raise ValueError(f"planted circuit schema {schema!r} is not one this rasplab "
                             f"reads (1 or {SCHEMA_VERSION})")
        dec = decode_value if schema == SCHEMA_VERSION else (lambda x: x)
        d_model = data.get("d_model")
        if d_model is None:  # schema 1: the largest dimension any variable names
            d_model = 1 + max((d for v in data["variables"].values() for d in v["dims"]),
                              default=-1)
        components = tuple(
            ComponentRecord(
                node=Node.parse(n["name"]), slot=int(n["slot"]),
                computes=tuple(n.get("computes", ())), ops=tuple(n.get("ops", ())),
                slices=tuple(MLPSlice(s["variable"], s["op"], tuple(s["units"]))
                             for s in n.get("slices", ())),
                writes=tuple(n.get("writes", ())),
                reads={k: tuple(v) for k, v in n.get("reads", {}).items()},
            )
            for n in data["nodes"]
        )
        edges = tuple(
            EdgeRecord(Edge(Node.parse(e["from"]), Node.parse(e["to"]), e["input"]),
                       tuple(e["carries"]), tuple(e["directions"]), bool(e["constant"]))
            for e in data["edges"]
        )
        variables = {}
        for name, v in data["variables"].items():
            if "basis" in v:
                basis = np.asarray(v["basis"], np.float64).reshape(d_model, -1)
            else:
                basis = np.zeros((d_model, len(v["dims"])))
                basis[list(v["dims"]), range(len(v["dims"]))] = 1.0
            variables[name] = Variable(
                name=name, kind=v["kind"], encoding=v["encoding"],
                values=tuple(dec(x) for x in v["values"]), can_be_none=bool(v["can_be_none"]),
                children=tuple(v["children"]), computed_by=tuple(v["computed_by"]),
                labels=tuple(v["directions"]), basis=basis,
                basis_kind=BasisKind(v.get("basis_kind", "exact")),
            )
        truths = tuple(
            Truth(t["ablation"], t["corruption"], tuple(t["edges"]), int(t["samples"]),
                  bool(t["faithful"]), bool(t["minimal"]))
            for t in data.get("truths", ())
        )
        return cls(
            output=data["output"], d_model=int(d_model), components=components, edges=edges,
            variables=variables,
            selectors={k: tuple(v["children"]) for k, v in data.get("selectors", {}).items()},
            dag=tuple(tuple(p) for p in data.get("dag", ())), truths=truths,
        )


# ---------------------------------------------------------------------------------------
# Reading the circuit off compiled weights


def planted_circuit(compiled: CompiledProgram) -> PlantedCircuit:
    """The high-level model, the component graph and the alignment, read off the weights."""
    labels = list(compiled.residual_labels)
    d = len(labels)
    owners = direction_owners(compiled)
    nodes = component_nodes(compiled.params, compiled.config.num_layers)

    computed_by: dict[str, list[str]] = {name: [] for name in compiled.variables}
    for name, info in compiled.variables.items():
        if info.kind == "IndicesType":
            computed_by[name].append("pos")
        elif info.kind in ("TokensType", "Full", "ConstantSOp"):
            computed_by[name].append("embed")
    extra: dict[str, dict] = {n["name"]: {"computes": [], "ops": [], "slices": []}
                              for n in nodes}
    for comp in compiled.components:
        rec = extra[comp.name]
        if comp.node not in rec["computes"]:
            rec["computes"].append(comp.node)
        if comp.op not in rec["ops"]:
            rec["ops"].append(comp.op)
        if comp.kind == "mlp":
            rec["slices"].append(MLPSlice(comp.node, comp.op,
                                          (comp.index, comp.index + comp.size)))
        if comp.node in computed_by and comp.name not in computed_by[comp.node]:
            computed_by[comp.node].append(comp.name)
    for name, comps in computed_by.items():
        for c in comps:
            if c in ("embed", "pos") and name not in extra[c]["computes"]:
                extra[c]["computes"].append(name)

    components = tuple(
        ComponentRecord(
            node=Node.parse(n["name"]), slot=n["slot"],
            computes=tuple(extra[n["name"]]["computes"]), ops=tuple(extra[n["name"]]["ops"]),
            slices=tuple(extra[n["name"]]["slices"]),
            writes=tuple(labels[i] for i in n["writes"]),
            reads={("in" if k is None else k): tuple(labels[i] for i in v)
                   for k, v in n["reads"].items()},
        )
        for n in nodes
    )
    edges = tuple(
        EdgeRecord(Edge(Node.parse(e["from"]), Node.parse(e["to"]), e["input"]),
                   tuple(e["carries"]), tuple(e["directions"]), e["constant"])
        for e in _edges(nodes, owners, labels)
    )
    variables = {}
    for name, info in compiled.variables.items():
        basis = np.zeros((d, len(info.dims)))
        basis[list(info.dims), range(len(info.dims))] = 1.0
        variables[name] = Variable(
            name=name, kind=info.kind, encoding=info.encoding, values=tuple(info.values),
            can_be_none=bool(info.can_be_none), children=tuple(info.children),
            computed_by=tuple(computed_by[name]), labels=tuple(labels[i] for i in info.dims),
            basis=basis,
        )
    dag = tuple((c, name) for name, info in compiled.variables.items() for c in info.children)
    dag += tuple((c, sid) for sid, ch in compiled.selectors.items() for c in ch)
    return PlantedCircuit(
        output=compiled.output, d_model=d, components=components, edges=edges,
        variables=variables,
        selectors={sid: tuple(ch) for sid, ch in compiled.selectors.items()}, dag=dag,
    )


def edge_key(edge) -> str:
    """``"embed->L3.H0.v"``: the name of an ``EdgeRecord``, ``Edge`` or edge dict."""
    if isinstance(edge, EdgeRecord):
        return edge.key
    if isinstance(edge, Edge):
        return str(edge)
    return edge_name(edge["from"], edge["to"], edge.get("input"))


__all__ = ["planted_circuit", "PlantedCircuit", "ComponentRecord", "EdgeRecord", "Variable",
           "BasisKind",
           "MLPSlice", "Truth", "component_nodes", "direction_owners", "edge_key",
           "SCHEMA_VERSION", "CONSTANT_CARRIERS"]
