"""The network: config plus parameters in one key schema, the only thing the intervention
engine and the forward pass read.

Parameter keys (float32 arrays; a layer without heads or without an MLP has no such keys)::

    embed.token [n_tokens, d]          embed.pos [max_seq_len + 1, d]
    layers.{l}.attn.q / .k [H_l, d, key]   .v [H_l, d, val]   .o [H_l, val, d]
    layers.{l}.mlp.in [d, hidden_l]        .out [hidden_l, d]
    unembed [d, n_out]

No layer norm, no biases, ReLU MLPs, unscaled softmax attention, BOS at position 0 and PAD
after the tokens (never attended as a key). Nothing here assumes weights are sparse,
one-hot or axis-aligned: a rotated or compressed variant is a ``Network`` like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NetworkConfig:
    num_layers: int
    heads_per_layer: tuple[int, ...]
    mlp_hidden_per_layer: tuple[int, ...]
    d_model: int
    max_seq_len: int
    n_tokens: int  # vocabulary + BOS + PAD
    bos_id: int
    pad_id: int
    causal: bool
    activation: str = "relu"

    def has_attn(self, layer: int) -> bool:
        return self.heads_per_layer[layer] > 0

    def has_mlp(self, layer: int) -> bool:
        return self.mlp_hidden_per_layer[layer] > 0


@dataclass(frozen=True, eq=False)
class Network:
    """Config and weights of a transformer in the schema above."""

    config: NetworkConfig
    params: Mapping[str, np.ndarray]

    @classmethod
    def from_params(cls, params: Mapping[str, np.ndarray], *, bos_id: int, pad_id: int,
                    causal: bool) -> Network:
        """Read the config off the weights' shapes (and check them)."""
        layers = sorted({int(k.split(".")[1]) for k in params if k.startswith("layers.")})
        num_layers = layers[-1] + 1 if layers else 0
        heads = tuple(params[f"layers.{i}.attn.q"].shape[0]
                      if f"layers.{i}.attn.q" in params else 0 for i in range(num_layers))
        hidden = tuple(params[f"layers.{i}.mlp.in"].shape[1]
                       if f"layers.{i}.mlp.in" in params else 0 for i in range(num_layers))
        tok = params["embed.token"]
        net = cls(NetworkConfig(num_layers, heads, hidden, int(tok.shape[1]),
                                int(params["embed.pos"].shape[0]) - 1, int(tok.shape[0]),
                                int(bos_id), int(pad_id), bool(causal)), params)
        net.check()
        return net

    def check(self) -> None:
        """Raise ``ValueError`` naming the first weight whose shape breaks the schema."""
        c, p, d = self.config, self.params, self.config.d_model
        expect = {"embed.token": (c.n_tokens, d), "embed.pos": (c.max_seq_len + 1, d)}
        for name, shape in expect.items():
            if name not in p or tuple(p[name].shape) != shape:
                got = tuple(p[name].shape) if name in p else "missing"
                raise ValueError(f"weight {name!r} should be {shape}, got {got}")
        if "unembed" not in p or p["unembed"].shape[0] != d:
            raise ValueError(f"weight 'unembed' should have {d} rows")
        for layer in range(c.num_layers):
            pre = f"layers.{layer}."
            if c.has_attn(layer):
                q, k, v, o = (p[pre + "attn." + x] for x in "qkvo")
                if not (q.shape[:2] == k.shape[:2] == v.shape[:2] == (q.shape[0], d)
                        and q.shape[2] == k.shape[2] and o.shape == (v.shape[0], v.shape[2], d)):
                    raise ValueError(f"layer {layer}'s attention weights have mismatched "
                                     f"shapes: q{q.shape} k{k.shape} v{v.shape} o{o.shape}")
            if c.has_mlp(layer):
                w_in, w_out = p[pre + "mlp.in"], p[pre + "mlp.out"]
                if w_in.shape[0] != d or w_out.shape != (w_in.shape[1], d):
                    raise ValueError(f"layer {layer}'s MLP weights have mismatched shapes: "
                                     f"in{w_in.shape} out{w_out.shape}")

    def layer(self, layer: int, kind: str) -> dict[str, np.ndarray] | None:
        """``{"q","k","v","o"}`` of layer ``layer``'s attention or ``{"in","out"}`` of its
        MLP (``kind`` ``"attn"``/``"mlp"``), None if the layer has none."""
        prefix = f"layers.{layer}.{kind}."
        sub = {k[len(prefix):]: v for k, v in self.params.items() if k.startswith(prefix)}
        return sub or None

    def transformed(self, matrix: np.ndarray) -> Network:
        """The network whose residual stream is ``x @ matrix`` (D x d): writes are
        multiplied by ``matrix`` on the right, reads by ``matrix.T`` on the left. With an
        orthogonal ``matrix`` it computes the same function (a rotated basis)."""
        m = np.asarray(matrix, np.float64)
        out = {}
        for name, w in self.params.items():
            w = np.asarray(w, np.float64)
            if name in ("embed.token", "embed.pos") or name.endswith(("attn.o", "mlp.out")):
                w = w @ m
            elif name == "unembed" or name.endswith(("attn.q", "attn.k", "attn.v", "mlp.in")):
                w = np.einsum("dj,hdx->hjx", m, w) if w.ndim == 3 else m.T @ w
            out[name] = np.ascontiguousarray(w, dtype=np.float32)
        c = self.config
        cfg = NetworkConfig(c.num_layers, c.heads_per_layer, c.mlp_hidden_per_layer,
                            int(m.shape[1]), c.max_seq_len, c.n_tokens, c.bos_id, c.pad_id,
                            c.causal, c.activation)
        return Network(cfg, out)


__all__ = ["Network", "NetworkConfig"]
