"""The planted circuit: what the compiler knows about its own model, read off the weights.

``planted_circuit(compiled)`` returns a JSON-serialisable dict (numpy only, no JAX). It is
computed from the compiled weights, never from the compiler's intentions: an edge exists
only where a non-zero weight makes one component's output reach another's input.

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

Schema (``"schema": 1``)
------------------------
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
                   "can_be_none": false, "dims": [37, 38, 39], "directions": [...],
                   "children": [...], "computed_by": ["L3.H0"]},
        ...
      },
      "selectors": {"<id>": {"children": ["<keys>", "<queries>"]}},
      "dag": [["<child>", "<parent>"], ...]  # the program DAG (variables and selectors)
    }

Edges are listed in forward order of the receiving node, then input (q, k, v, null), then
sending node. Scratch directions (``x:__width__``, the 1/(w+1) a SelectorWidth head hands
its MLP) are carried by the variable ``x`` they help compute. Values that JSON cannot hold
(tuples become lists; anything else becomes its ``repr``) are converted.
"""

from __future__ import annotations

import re

import numpy as np

from .assemble import CompiledProgram

SCHEMA_VERSION = 1
CONSTANT_CARRIERS = frozenset({"one", "bos"})
HEAD_INPUTS = ("q", "k", "v")
_SCRATCH = re.compile(r"^(.*):__[A-Za-z0-9_]+__$")


_PLAIN = (type(None), bool, int, float, str)


def _jsonable(v):
    if type(v) in _PLAIN:
        return v
    if isinstance(v, (bool, str)):
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    return repr(v)


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


def component_nodes(compiled: CompiledProgram) -> list[dict]:
    """Every component in forward order with its read/written residual dimensions.

    Each record: ``name, kind, layer, head, slot, writes`` (dims) and ``reads``
    (``{input: dims}``, input ``"q"/"k"/"v"`` for heads, ``None`` for MLP and output).
    """
    p = compiled.params
    nodes: list[dict] = [
        {"name": "embed", "kind": "embed", "layer": None, "head": None, "slot": -1,
         "writes": _nonzero(p["embed.token"], 0), "reads": {}},
        {"name": "pos", "kind": "pos", "layer": None, "head": None, "slot": -1,
         "writes": _nonzero(p["embed.pos"], 0), "reads": {}},
    ]
    cfg = compiled.config
    for layer in range(cfg.num_layers):
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
        "slot": 2 * cfg.num_layers, "writes": np.zeros(0, dtype=np.int64),
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


def planted_circuit(compiled: CompiledProgram) -> dict:
    """The high-level model, the component graph and the alignment (schema in the docstring)."""
    labels = list(compiled.residual_labels)
    owners = direction_owners(compiled)
    nodes = component_nodes(compiled)

    computed_by: dict[str, list[str]] = {name: [] for name in compiled.variables}
    for name, info in compiled.variables.items():
        if info.kind == "IndicesType":
            computed_by[name].append("pos")
        elif info.kind in ("TokensType", "Full", "ConstantSOp"):
            computed_by[name].append("embed")
    by_name: dict[str, dict] = {n["name"]: {"computes": [], "ops": [], "slices": []}
                                for n in nodes}
    for comp in compiled.components:
        rec = by_name[comp.name]
        if comp.node not in rec["computes"]:
            rec["computes"].append(comp.node)
        if comp.op not in rec["ops"]:
            rec["ops"].append(comp.op)
        if comp.kind == "mlp":
            rec["slices"].append({"variable": comp.node, "op": comp.op,
                                  "units": [comp.index, comp.index + comp.size]})
        if comp.node in computed_by and comp.name not in computed_by[comp.node]:
            computed_by[comp.node].append(comp.name)
    for name, comps in computed_by.items():
        for c in comps:
            if c in ("embed", "pos") and name not in by_name[c]["computes"]:
                by_name[c]["computes"].append(name)

    node_records = []
    for n in nodes:
        extra = by_name[n["name"]]
        node_records.append({
            "name": n["name"], "kind": n["kind"], "layer": n["layer"], "head": n["head"],
            "slot": n["slot"], "computes": extra["computes"], "ops": extra["ops"],
            "slices": extra["slices"], "writes": [labels[d] for d in n["writes"]],
            "reads": {("in" if k is None else k): [labels[d] for d in v]
                      for k, v in n["reads"].items()},
        })

    variables = {}
    for name, info in compiled.variables.items():
        variables[name] = {
            "kind": info.kind, "encoding": info.encoding,
            "values": [_jsonable(v) for v in info.values], "can_be_none": bool(info.can_be_none),
            "dims": [int(d) for d in info.dims], "directions": [labels[d] for d in info.dims],
            "children": list(info.children), "computed_by": computed_by[name],
        }
    selectors = {sid: {"children": list(ch)} for sid, ch in compiled.selectors.items()}
    dag = [[c, name] for name, info in compiled.variables.items() for c in info.children]
    dag += [[c, sid] for sid, ch in compiled.selectors.items() for c in ch]
    return {
        "schema": SCHEMA_VERSION,
        "output": compiled.output,
        "nodes": node_records,
        "edges": _edges(nodes, owners, labels),
        "variables": variables,
        "selectors": selectors,
        "dag": dag,
    }


def edge_key(edge: dict) -> str:
    """``"embed->L3.H0.v"``, ``"L3.H0->output"``: a stable, readable name for an edge."""
    tail = f".{edge['input']}" if edge.get("input") else ""
    return f"{edge['from']}->{edge['to']}{tail}"


__all__ = ["planted_circuit", "component_nodes", "direction_owners", "edge_key",
           "SCHEMA_VERSION", "CONSTANT_CARRIERS", "HEAD_INPUTS"]
