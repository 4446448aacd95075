"""A compiled program as TransformerLens parts: config arguments, weights, sidecar (numpy).

Reads only ``compiled.params`` (the flat schema of ``compiler/assemble.py``),
``compiled.config``, ``token_ids``, ``output_variable`` and the planted circuit; nothing
assumes the weights are sparse, so a rotated (dense) variant exports the same way.

Shapes. TransformerLens needs one ``n_heads``, ``d_head`` and ``d_mlp`` for every layer;
ours vary per layer. Heads, head dimensions and MLP units are zero-padded up to the widest
(a layer with no attention gets only zero heads, one with no MLP a zero MLP; a model with
no MLP at all is exported ``attn_only``). Zero weights add exact zeros, so every real hook
is unchanged; the padded heads and MLPs are listed in the sidecar and lie outside every
circuit. Our attention is unscaled: the config sets ``use_attn_scale=False``
(TransformerLens 3.9.0 then divides by 1.0), so ``W_Q`` is ours unchanged and ``hook_q``
equals our queries. No layer norm, ReLU MLPs, no biases (all exported biases are zero).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..compiler.assemble import CompiledProgram
from ..compiler.circuit import edge_key
from ..compiler.model_file import encode_value
from .runtime import FORMAT_NAME, FORMAT_VERSION, MASKED_SCORE

TL_VERSION = "3.9.0"


def _layer(params: dict, layer: int, name: str) -> np.ndarray | None:
    return params.get(f"layers.{layer}.{name}")


def tl_config(compiled: CompiledProgram) -> dict[str, Any]:
    """``HookedTransformerConfig`` keyword arguments (JSON data) for ``compiled``."""
    p, cfg = compiled.params, compiled.config
    n_layers = max(cfg.num_layers, 1)
    sizes = [1]
    for layer in range(cfg.num_layers):
        for name in ("attn.q", "attn.v"):
            w = _layer(p, layer, name)
            if w is not None:
                sizes.append(w.shape[2])
    d_mlp = max([0] + [_layer(p, lyr, "mlp.in").shape[1] for lyr in range(cfg.num_layers)
                       if _layer(p, lyr, "mlp.in") is not None])
    n_heads = max([1] + [_layer(p, lyr, "attn.q").shape[0] for lyr in range(cfg.num_layers)
                         if _layer(p, lyr, "attn.q") is not None])
    return {
        "model_name": f"rasplab-{compiled.meta.get('name') or compiled.meta.get('program')}",
        "n_layers": n_layers,
        "d_model": int(p["embed.token"].shape[1]),
        "n_ctx": int(p["embed.pos"].shape[0]),
        "d_head": int(max(sizes)),
        "n_heads": int(n_heads),
        "d_mlp": int(d_mlp) if d_mlp else None,
        "attn_only": d_mlp == 0,
        "d_vocab": int(p["embed.token"].shape[0]),
        "d_vocab_out": int(max(p["unembed"].shape[1], 1)),
        "act_fn": "relu",
        "normalization_type": None,
        "attention_dir": "causal" if cfg.causal else "bidirectional",
        "positional_embedding_type": "standard",
        "use_attn_scale": False,
        "use_attn_result": True,
        "use_split_qkv_input": True,
        "use_hook_mlp_in": True,
        "use_hook_tokens": True,
        "default_prepend_bos": False,
        "init_weights": False,
        "device": "cpu",
        "seed": 0,
    }


def tl_weights(compiled: CompiledProgram, config: dict[str, Any]) -> dict[str, np.ndarray]:
    """The state dict (float32 numpy arrays) of the HookedTransformer for ``config``."""
    p = compiled.params
    d, H, dh = config["d_model"], config["n_heads"], config["d_head"]
    f32 = np.float32
    out = {"embed.W_E": p["embed.token"], "pos_embed.W_pos": p["embed.pos"]}
    for layer in range(config["n_layers"]):
        pre = f"blocks.{layer}."
        w = {x: np.zeros((H, d, dh), f32) for x in ("W_Q", "W_K", "W_V")}
        w["W_O"] = np.zeros((H, dh, d), f32)
        for ours, theirs in (("q", "W_Q"), ("k", "W_K"), ("v", "W_V")):
            src = _layer(p, layer, f"attn.{ours}")
            if src is not None:
                w[theirs][: src.shape[0], :, : src.shape[2]] = src
        o = _layer(p, layer, "attn.o")
        if o is not None:
            w["W_O"][: o.shape[0], : o.shape[1]] = o
        for name, arr in w.items():
            out[pre + "attn." + name] = arr
        for b in ("b_Q", "b_K", "b_V"):
            out[pre + "attn." + b] = np.zeros((H, dh), f32)
        out[pre + "attn.b_O"] = np.zeros(d, f32)
        if not config["attn_only"]:
            m = config["d_mlp"]
            w_in, w_out = np.zeros((d, m), f32), np.zeros((m, d), f32)
            src_in, src_out = _layer(p, layer, "mlp.in"), _layer(p, layer, "mlp.out")
            if src_in is not None:
                w_in[:, : src_in.shape[1]] = src_in
                w_out[: src_out.shape[0]] = src_out
            out.update({pre + "mlp.W_in": w_in, pre + "mlp.b_in": np.zeros(m, f32),
                        pre + "mlp.W_out": w_out, pre + "mlp.b_out": np.zeros(d, f32)})
    w_u = np.zeros((d, config["d_vocab_out"]), f32)
    w_u[:, : p["unembed"].shape[1]] = p["unembed"]
    out["unembed.W_U"] = w_u
    out["unembed.b_U"] = np.zeros(config["d_vocab_out"], f32)
    return {k: np.ascontiguousarray(v, dtype=f32) for k, v in out.items()}


# ---------------------------------------------------------------------------------------
# Components, receivers and the circuit as TransformerLens hooks


def _planted_circuit(compiled: CompiledProgram) -> tuple[list[dict], dict[str, list[str]]]:
    """Structural edges (``from``, ``to``, ``input``, ``carries``, ``constant``) and the
    per-ablation truths (ablation -> edge keys) where the compiled program carries them.

    The one place that reads the planted circuit's representation.
    """
    pc = compiled.planted
    edges = [{"from": e.sender, "to": e.receiver, "input": e.input,
              "carries": list(e.carries), "constant": e.constant} for e in pc.edges]
    per_ablation: dict[str, list[str]] = {}
    for t in pc.truths:
        key = t.ablation if t.ablation != "resample" else f"resample ({t.corruption})"
        per_ablation[key] = list(t.edges)
    return edges, per_ablation


def sender_hook(name: str) -> dict[str, Any]:
    """Where a component's output is read: ``{"hook": ..., "head": h or None}``."""
    if name == "embed":
        return {"hook": "hook_embed", "head": None}
    if name == "pos":
        return {"hook": "hook_pos_embed", "head": None}
    layer, part = name[1:].split(".", 1)
    if part == "MLP":
        return {"hook": f"blocks.{layer}.hook_mlp_out", "head": None}
    return {"hook": f"blocks.{layer}.attn.hook_result", "head": int(part[1:])}


def receiver_hook(name: str, inp: str | None, n_layers: int) -> dict[str, Any]:
    """Where a component's input is read: ``hook_q_input`` etc. for a head's q/k/v."""
    if name == "output":
        return {"hook": f"blocks.{n_layers - 1}.hook_resid_post", "head": None}
    layer, part = name[1:].split(".", 1)
    if part == "MLP":
        return {"hook": f"blocks.{layer}.hook_mlp_in", "head": None}
    return {"hook": f"blocks.{layer}.hook_{inp}_input", "head": int(part[1:])}


def components(compiled: CompiledProgram, config: dict[str, Any]) -> list[dict]:
    """Every TransformerLens component with our name, its hooks and whether it is padding."""
    p, recs = compiled.params, []
    recs.append({"name": "embed", **sender_hook("embed"), "padded": False})
    recs.append({"name": "pos", **sender_hook("pos"), "padded": False})
    for layer in range(config["n_layers"]):
        q = _layer(p, layer, "attn.q")
        real = 0 if q is None else q.shape[0]
        for h in range(config["n_heads"]):
            name = f"L{layer}.H{h}"
            recs.append({
                "name": name, **sender_hook(name), "padded": h >= real,
                "inputs": {x: receiver_hook(name, x, config["n_layers"]) for x in "qkv"},
            })
        if not config["attn_only"]:
            name = f"L{layer}.MLP"
            recs.append({"name": name, **sender_hook(name),
                         "padded": _layer(p, layer, "mlp.in") is None,
                         "inputs": {"in": receiver_hook(name, None, config["n_layers"])}})
    recs.append({"name": "output", "hook": None, "head": None, "padded": False,
                 "inputs": {"in": receiver_hook("output", None, config["n_layers"])}})
    return recs


def _edge_record(edge: dict, n_layers: int) -> dict:
    src = sender_hook(edge["from"])
    dst = receiver_hook(edge["to"], edge["input"], n_layers)
    return {"key": edge_key(edge), **edge, "from_hook": src["hook"], "from_head": src["head"],
            "to_hook": dst["hook"], "to_head": dst["head"]}


def sidecar(compiled: CompiledProgram, config: dict[str, Any]) -> dict:
    """What TransformerLens cannot hold: encoders, decoding, labels, the planted circuit."""
    ids = compiled.token_ids
    out = compiled.output_variable
    edges, per_ablation = _planted_circuit(compiled)
    comps = components(compiled, config)
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "transformer_lens": TL_VERSION,
        "program": compiled.meta.get("name") or compiled.meta.get("program"),
        "input": {
            "vocab": [encode_value(v) for v in compiled.vocab],
            "token_ids": [[encode_value(t), int(i)] for t, i in ids.items()],
            "bos": encode_value(compiled.bos), "bos_id": int(ids[compiled.bos]),
            "pad": encode_value(compiled.pad), "pad_id": int(ids[compiled.pad]),
            "max_seq_len": int(compiled.config.max_seq_len),
            "note": "ids[0] is BOS, tokens follow, PAD fills the rest (right padding); "
                    "positions are absolute (do not pass attention_mask to the model)",
        },
        "output": {
            "variable": compiled.output, "encoding": out.encoding,
            "values": [encode_value(v) for v in out.values],
            "n_outputs": int(compiled.params["unembed"].shape[1]),
            "note": "categorical: logit column j is values[j]; the value with logit near 1, "
                    "None if every logit is below 0.5. numerical: logit 0 snapped to the "
                    "nearest value of the grid",
        },
        "attention": {
            "causal": bool(compiled.config.causal),
            "scaled": False,
            "pad_keys_masked": True,
            "masked_score": MASKED_SCORE,
            "how": "permanent hooks: hook_tokens records PAD positions, "
                   "blocks.{l}.attn.hook_attn_scores sets the score of every PAD key "
                   "(and future key if causal) to masked_score",
        },
        "residual_labels": list(compiled.residual_labels),
        "padded": [c["name"] for c in comps if c["padded"]],
        "components": comps,
        "circuit": {
            "edges": [_edge_record(e, config["n_layers"]) for e in edges],
            "per_ablation": per_ablation,
        },
        "meta": {k: v for k, v in compiled.meta.items() if k != "planted_circuit"},
    }


def to_parts(compiled: CompiledProgram) -> tuple[dict, dict[str, np.ndarray], dict]:
    """``(config arguments, state dict, sidecar)`` for ``compiled``."""
    config = tl_config(compiled)
    return config, tl_weights(compiled, config), sidecar(compiled, config)
