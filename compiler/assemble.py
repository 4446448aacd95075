"""Assemble placed blocks into one numpy model record: config, weights, labels, encoders.

Weights are float32 arrays in a flat dict::

    embed.token [n_tokens, d]    embed.pos [max_seq_len + 1, d]
    layers.{l}.attn.q / .k [H, d, key]   .v [H, d, val]   .o [H, val, d]
    layers.{l}.mlp.in [d, hidden]        .out [hidden, d]
    unembed [d, n_outputs]

Each layer keeps its own head count and MLP width (nothing is padded to the widest layer);
heads within a layer are padded to the layer's largest key/value size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .blocks import HeadBlock, MLPBlock, gate_at_bos, written_at_bos
from .build import NodeBlocks
from .layout import Placement
from .residual import ResidualSpace
from .values import sort_values

if TYPE_CHECKING:
    from .circuit import PlantedCircuit
    from .network import Network
    from .readout import Readout


@dataclass
class ModelConfig:
    """Shape of a compiled model (tracr's field names first)."""

    num_layers: int
    num_heads: int  # most heads in any layer
    key_size: int  # largest query/key size
    mlp_hidden_size: int  # widest MLP
    d_model: int
    max_seq_len: int
    vocab_size: int
    causal: bool
    heads_per_layer: list[int] = field(default_factory=list)
    mlp_hidden_per_layer: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Component:
    """One head or one MLP slice, and the program variable it computes."""

    name: str  # "L0.H1" or "L0.MLP"
    layer: int
    kind: str  # "attn" | "mlp"
    node: str
    op: str
    index: int  # head index, or first hidden unit of the slice
    size: int  # 1 for a head, number of hidden units for an MLP slice


@dataclass
class VariableInfo:
    """A program variable as it lives in the residual stream."""

    name: str
    kind: str  # rasp class
    encoding: str  # "categorical" | "numerical"
    values: list  # sorted, without None
    can_be_none: bool
    dims: list[int]
    children: list[str]


@dataclass
class CompiledProgram:
    """Everything a compiled model (or a variant of one) is: JAX-free, saved as
    safetensors + JSON. Analysis reads it as three things kept apart: ``network`` (config
    and weights), ``circuit`` (the planted circuit) and ``readout`` (how the last residual
    becomes values). ``variables`` and ``residual_labels`` describe the compiled source's
    axis-aligned stream; a variant's own bases are in ``circuit``.
"""

    config: ModelConfig
    params: dict[str, np.ndarray]
    residual_labels: list[str]
    vocab: list
    bos: str
    pad: str
    output: str
    variables: dict[str, VariableInfo]
    selectors: dict[str, list[str]]  # selector id -> its children
    components: list[Component]
    meta: dict = field(default_factory=dict)
    circuit: PlantedCircuit | None = None  # set by compile_program and by variants

    # -- the three parts analysis reads ----------------------------------------------------
    @property
    def network(self) -> Network:
        from .network import Network, NetworkConfig

        c, ids = self.config, self.token_ids
        return Network(NetworkConfig(
            num_layers=c.num_layers, heads_per_layer=tuple(c.heads_per_layer),
            mlp_hidden_per_layer=tuple(c.mlp_hidden_per_layer), d_model=c.d_model,
            max_seq_len=c.max_seq_len, n_tokens=len(ids), bos_id=ids[self.bos],
            pad_id=ids[self.pad], causal=c.causal), self.params)

    @property
    def planted(self) -> PlantedCircuit:
        """The planted circuit (read off the weights if none is stored)."""
        if self.circuit is None:
            from .circuit import planted_circuit

            self.circuit = planted_circuit(self)
        return self.circuit

    @property
    def readout(self) -> Readout:
        from .readout import Readout, ReadoutKind

        out = self.output_variable
        return Readout(out.encoding, tuple(out.values),
                       ReadoutKind(self.meta.get("readout", "exact")), bool(out.can_be_none))

    @property
    def is_exact(self) -> bool:
        """Compiled and rotated models are exact; compressed and retrained ones are not."""
        return self.meta.get("readout", "exact") == "exact"

    # -- encoders --------------------------------------------------------------------------
    @property
    def token_ids(self) -> dict:
        ids = {tok: i for i, tok in enumerate(self.vocab)}
        ids[self.bos] = len(self.vocab)
        ids[self.pad] = len(self.vocab) + 1
        return ids

    @property
    def output_variable(self) -> VariableInfo:
        return self.variables[self.output]

    @property
    def output_values(self) -> list:
        """Decoded value of each unembedding column (categorical) or the value grid."""
        return self.output_variable.values

    def stats(self) -> dict:
        """Sizes. ``heads`` is the most heads in any one layer (tracr's ``num_heads``),
        ``heads_total`` all heads, ``heads_per_layer`` one count per layer; likewise
        ``mlp_hidden`` (widest layer), ``mlp_hidden_total`` and ``mlp_hidden_per_layer``.
        ``params`` counts every weight, ``nonzero_params`` those that are not zero."""
        total = sum(int(a.size) for a in self.params.values())
        nonzero = sum(int(np.count_nonzero(a)) for a in self.params.values())
        c = self.config
        return {
            "layers": c.num_layers,
            "heads": c.num_heads,
            "heads_total": int(sum(c.heads_per_layer)),
            "heads_per_layer": [int(h) for h in c.heads_per_layer],
            "d_model": c.d_model,
            "mlp_hidden": c.mlp_hidden_size,
            "mlp_hidden_total": int(sum(c.mlp_hidden_per_layer)),
            "mlp_hidden_per_layer": [int(m) for m in c.mlp_hidden_per_layer],
            "params": total,
            "nonzero_params": nonzero,
        }


def _stack_heads(heads: list[HeadBlock], d: int) -> dict[str, np.ndarray]:
    key = max(h.w_q.shape[1] for h in heads)
    val = max(h.w_v.shape[1] for h in heads)
    q = np.zeros((len(heads), d, key))
    k = np.zeros((len(heads), d, key))
    v = np.zeros((len(heads), d, val))
    o = np.zeros((len(heads), val, d))
    for i, h in enumerate(heads):
        q[i, :, : h.w_q.shape[1]] = h.w_q
        k[i, :, : h.w_k.shape[1]] = h.w_k
        v[i, :, : h.w_v.shape[1]] = h.w_v
        o[i, : h.w_o.shape[0]] = h.w_o
    return {"q": q, "k": k, "v": v, "o": o}


def assemble(
    space: ResidualSpace, blocks: dict[str, NodeBlocks], placements: list[Placement],
    num_layers: int, *, vocab: list, max_seq_len: int, causal: bool, bos: str, pad: str,
    output: str, variables: dict[str, VariableInfo], selectors: dict[str, list[str]],
    embed_token: np.ndarray, embed_pos: np.ndarray, unembed: np.ndarray,
) -> CompiledProgram:
    d = space.dim
    params: dict[str, np.ndarray] = {"embed.token": embed_token, "embed.pos": embed_pos}
    components: list[Component] = []
    heads_per_layer, hidden_per_layer, key_sizes = [], [], [0]
    for layer in range(num_layers):
        heads = [p.node for p in placements if p.layer == layer and p.sublayer == "attn"]
        mlps = [p.node for p in placements if p.layer == layer and p.sublayer == "mlp"]
        if heads:
            blocks_h = [blocks[n].head for n in heads]
            for name, arr in _stack_heads(blocks_h, d).items():
                params[f"layers.{layer}.attn.{name}"] = arr
            key_sizes.append(params[f"layers.{layer}.attn.q"].shape[2])
            for i, (n, h) in enumerate(zip(heads, blocks_h, strict=True)):
                components.append(Component(f"L{layer}.H{i}", layer, "attn", n, h.op, i, 1))
        start = 0
        mlp_blocks: list[MLPBlock] = [blocks[n].mlp for n in mlps]
        dirty = written_at_bos([blocks[n].head for n in heads], space)
        for m in mlp_blocks:
            gate_at_bos(m, space, dirty)
        for n, m in zip(mlps, mlp_blocks, strict=True):
            width = m.w_in.shape[1]
            if width:  # a block with no units computes a variable that is always 0 / None
                components.append(Component(f"L{layer}.MLP", layer, "mlp", n, m.op, start,
                                            width))
            start += width
        if start:
            params[f"layers.{layer}.mlp.in"] = np.concatenate([m.w_in for m in mlp_blocks], 1)
            params[f"layers.{layer}.mlp.out"] = np.concatenate([m.w_out for m in mlp_blocks], 0)
        heads_per_layer.append(len(heads))
        hidden_per_layer.append(start)
    params["unembed"] = unembed
    params = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in params.items()}
    config = ModelConfig(
        num_layers=num_layers,
        num_heads=max(heads_per_layer, default=0),
        key_size=max(key_sizes),
        mlp_hidden_size=max(hidden_per_layer, default=0),
        d_model=d,
        max_seq_len=max_seq_len,
        vocab_size=len(vocab),
        causal=causal,
        heads_per_layer=heads_per_layer,
        mlp_hidden_per_layer=hidden_per_layer,
    )
    return CompiledProgram(
        config=config, params=params, residual_labels=space.labels, vocab=list(vocab),
        bos=bos, pad=pad, output=output, variables=variables, selectors=selectors,
        components=components,
    )


__all__ = ["CompiledProgram", "ModelConfig", "Component", "VariableInfo", "assemble",
           "sort_values"]
