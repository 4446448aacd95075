"""Run compiled programs: a pure, jitted JAX forward pass, a Flax NNX module around it, and
the encoders that turn token sequences into ids and residuals into decoded values.

The forward pass is a plain function of (params, ids) so interventions in ``analysis/`` can
reuse its pieces (``embed``, ``attention``, ``mlp``) and patch anything between them.
All matrix products run at full float32 precision (``Precision.HIGHEST``): accelerators'
default reduced-precision matmuls would break exactness.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .assemble import CompiledProgram
from .errors import InputError

HIGHEST = jax.lax.Precision.HIGHEST
MASKED = -1e30


def _einsum(spec: str, *xs):
    return jnp.einsum(spec, *xs, precision=HIGHEST)


# ---------------------------------------------------------------------------------------
# Pure forward pieces


def embed(params: dict, ids: jnp.ndarray) -> jnp.ndarray:
    """Token plus position embedding: ``[batch, seq, d_model]``."""
    return params["embed.token"][ids] + params["embed.pos"][: ids.shape[1]][None]


def attention_mask(ids: jnp.ndarray, pad_id: int, causal: bool) -> jnp.ndarray:
    """``[batch, 1, query, key]``: padding keys are never attended; causal hides the future."""
    mask = (ids != pad_id)[:, None, None, :]
    if causal:
        t = ids.shape[1]
        mask = mask & jnp.tril(jnp.ones((t, t), dtype=bool))[None, None]
    return mask


def _pad_head_dim(w: jnp.ndarray, axis: int) -> jnp.ndarray:
    """``w`` with zero columns up to a multiple of 8 along ``axis`` (if it is over 1).

    The result is the same (the extra columns contribute exact zeros), but XLA's CPU
    kernels for many small batched matmuls are several times faster at these sizes.
    """
    n = w.shape[axis]
    extra = -n % 8 if n > 1 else 0
    if not extra:
        return w
    widths = [(0, 0)] * w.ndim
    widths[axis] = (0, extra)
    return jnp.pad(w, widths)


def attention(
    p: dict, x_q, x_k, x_v, mask, per_head: bool = True
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Outputs ``[batch, head, seq, d_model]`` (summed over heads, ``[batch, seq, d_model]``,
    unless ``per_head``) and patterns ``[batch, head, q, k]``.

    Queries, keys and values read separate residual inputs so an edge into one of them can
    be patched alone.
    """
    q = _einsum("btd,hdk->bhtk", x_q, _pad_head_dim(p["q"], 2))
    k = _einsum("btd,hdk->bhtk", x_k, _pad_head_dim(p["k"], 2))
    v = _einsum("btd,hdv->bhtv", x_v, _pad_head_dim(p["v"], 2))
    scores = jnp.where(mask, _einsum("bhqk,bhsk->bhqs", q, k), MASKED)
    pattern = jax.nn.softmax(scores, axis=-1)
    z = _einsum("bhqs,bhsv->bhqv", pattern, v)
    out = "bhqd" if per_head else "bqd"
    return _einsum(f"bhqv,hvd->{out}", z, _pad_head_dim(p["o"], 1)), pattern


def mlp(p: dict, x) -> tuple[jnp.ndarray, jnp.ndarray]:
    """MLP output ``[batch, seq, d_model]`` and hidden activations ``[batch, seq, hidden]``."""
    hidden = jax.nn.relu(_einsum("btd,dh->bth", x, p["in"]))
    return _einsum("bth,hd->btd", hidden, p["out"]), hidden


def layer_params(params: dict, layer: int, kind: str) -> dict | None:
    prefix = f"layers.{layer}.{kind}."
    sub = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
    return sub or None


# ---------------------------------------------------------------------------------------
# Activation sites (TransformerLens hook names)

#: A site hook: a pure function from the activation produced at a site to the activation
#: the rest of the forward pass uses (same shape).
Hook = Callable[[jnp.ndarray], jnp.ndarray]

ATTN_SITES = ("hook_q", "hook_k", "hook_v", "hook_pattern", "hook_z", "hook_result")
MLP_SITES = ("hook_pre", "hook_post")


def site_names(has_attn: Sequence[bool], has_mlp: Sequence[bool]) -> list[str]:
    """Every activation site of a network, in forward order (TransformerLens hook names).

    ``has_attn[l]`` / ``has_mlp[l]``: whether layer ``l`` has heads / an MLP (a layer
    without one has none of its sites; its ``hook_resid_mid`` still exists). Shapes
    (TransformerLens's axis orders): ``hook_embed``, ``hook_pos_embed``, ``hook_resid_*``,
    ``hook_attn_out``, ``hook_mlp_out`` ``[batch, pos, d_model]``; ``attn.hook_q|k|v|z``
    ``[batch, pos, head, d_head]``; ``attn.hook_pattern`` ``[batch, head, query, key]``;
    ``attn.hook_result`` ``[batch, pos, head, d_model]`` (each head's output);
    ``mlp.hook_pre|post`` ``[batch, pos, d_mlp]`` (before / after the ReLU).
    """
    names = ["hook_embed", "hook_pos_embed"]
    for layer, (attn, ff) in enumerate(zip(has_attn, has_mlp, strict=True)):
        b = f"blocks.{layer}."
        names.append(b + "hook_resid_pre")
        if attn:
            names += [b + "attn." + s for s in ATTN_SITES] + [b + "hook_attn_out"]
        names.append(b + "hook_resid_mid")
        if ff:
            names += [b + "mlp." + s for s in MLP_SITES] + [b + "hook_mlp_out"]
        names.append(b + "hook_resid_post")
    return names


def params_site_names(params: dict, num_layers: int) -> list[str]:
    """``site_names`` of the network whose weights are ``params``."""
    return site_names(
        [f"layers.{layer}.attn.q" in params for layer in range(num_layers)],
        [f"layers.{layer}.mlp.in" in params for layer in range(num_layers)],
    )


def _attention_sites(p: dict, x, mask, prefix: str, site: Callable) -> jnp.ndarray:
    """``attention`` with every intermediate passed through ``site`` (capture / hooks), in
    TransformerLens's layouts; returns the heads' summed output ``[batch, seq, d_model]``.

    The head dimension is computed zero-padded (``_pad_head_dim``, for speed); sites see
    it trimmed to the true width, and a hooked value is padded again with exact zeros."""

    def trimmed(name: str, y, n: int):
        if y.shape[-1] == n:
            return site(name, y)
        got = site(name, y[..., :n])
        return jnp.pad(got, [(0, 0)] * (y.ndim - 1) + [(0, y.shape[-1] - n)])

    key, val = p["q"].shape[2], p["v"].shape[2]
    q = trimmed(prefix + "hook_q", _einsum("btd,hdk->bthk", x, _pad_head_dim(p["q"], 2)), key)
    k = trimmed(prefix + "hook_k", _einsum("btd,hdk->bthk", x, _pad_head_dim(p["k"], 2)), key)
    v = trimmed(prefix + "hook_v", _einsum("btd,hdv->bthv", x, _pad_head_dim(p["v"], 2)), val)
    scores = jnp.where(mask, _einsum("bqhk,bshk->bhqs", q, k), MASKED)
    pattern = site(prefix + "hook_pattern", jax.nn.softmax(scores, axis=-1))
    z = trimmed(prefix + "hook_z", _einsum("bhqs,bshv->bqhv", pattern, v), val)
    result = site(prefix + "hook_result", _einsum("bqhv,hvd->bqhd", z, _pad_head_dim(p["o"], 1)))
    return result.sum(axis=2)


def forward(
    params: dict, ids: jnp.ndarray, *, num_layers: int, pad_id: int, causal: bool,
    capture: bool = False, hooks: Mapping[str, Hook] | None = None,
) -> tuple[jnp.ndarray, dict]:
    """Final residual ``[batch, seq, d_model]`` and, with ``capture``, every activation site.

    The cache maps each site name (``site_names``; TransformerLens hook names) to its
    activation, inserted in forward order (a jitted call returns it with sorted keys; order
    it with ``site_names``). ``hooks`` maps site names to pure functions applied where the
    site is produced; the rest of the pass uses their result, and the cache holds the
    hooked value. Under ``jax.jit`` the hooks are static structure: build them inside the
    jitted function from its (traced) arguments rather than closing over outside arrays.
    A hook on a site the network does not have is an error. With neither capture nor
    hooks the pass is the plain fast one (heads summed inside the output product).
    """
    hooks = dict(hooks or {})
    cache: dict = {}
    used: set[str] = set()

    def site(name: str, x):
        fn = hooks.get(name)
        if fn is not None:
            y = fn(x)
            if jnp.shape(y) != jnp.shape(x):
                raise ValueError(
                    f"the hook at {name!r} returned shape {jnp.shape(y)}, expected {x.shape}"
                )
            x = y
            used.add(name)
        if capture:
            cache[name] = x
        return x

    def wanted(*names: str) -> bool:
        return capture or any(n in hooks for n in names)

    if wanted("hook_embed", "hook_pos_embed"):
        tok = site("hook_embed", params["embed.token"][ids])
        pos = jnp.broadcast_to(params["embed.pos"][: ids.shape[1]][None], tok.shape)
        x = tok + site("hook_pos_embed", pos)
    else:
        x = embed(params, ids)
    mask = attention_mask(ids, pad_id, causal)
    for layer in range(num_layers):
        b = f"blocks.{layer}."
        x = site(b + "hook_resid_pre", x)
        att = layer_params(params, layer, "attn")
        if att is not None:
            if wanted(*(b + "attn." + s for s in ATTN_SITES)):
                out = _attention_sites(att, x, mask, b + "attn.", site)
            else:
                out, _ = attention(att, x, x, x, mask, per_head=False)
            x = x + site(b + "hook_attn_out", out)
        x = site(b + "hook_resid_mid", x)
        ff = layer_params(params, layer, "mlp")
        if ff is not None:
            if wanted(b + "mlp.hook_pre", b + "mlp.hook_post"):
                pre = site(b + "mlp.hook_pre", _einsum("btd,dh->bth", x, ff["in"]))
                post = site(b + "mlp.hook_post", jax.nn.relu(pre))
                out = _einsum("bth,hd->btd", post, ff["out"])
            else:
                out, _ = mlp(ff, x)
            x = x + site(b + "hook_mlp_out", out)
        x = site(b + "hook_resid_post", x)
    unknown = sorted(set(hooks) - used)
    if unknown:
        known = params_site_names(params, num_layers)
        raise ValueError(
            f"no activation site {unknown[0]!r} in this network; its sites are {known}"
        )
    return x, cache


# ---------------------------------------------------------------------------------------
# Encoding and decoding


@dataclass
class InputEncoder:
    """Tokens to ids (tracr-style ``encoding_map``)."""

    encoding_map: dict
    bos: str
    pad: str
    max_seq_len: int

    def encode(self, tokens: Sequence) -> list[int]:
        """Encode one sequence that starts with BOS (tracr's convention)."""
        tokens = list(tokens)
        if not tokens or tokens[0] != self.bos:
            raise InputError(
                f"the input must start with the BOS token {self.bos!r}, got {tokens[:1]!r}"
            )
        body = tokens[1:]
        while body and body[-1] == self.pad:
            body.pop()
        return [self.encoding_map[self.bos]] + self.encode_body(body)

    def encode_body(self, seq: Sequence) -> list[int]:
        if len(seq) > self.max_seq_len:
            raise InputError(
                f"the sequence has {len(seq)} tokens but the model was compiled for at most "
                f"{self.max_seq_len}; recompile with a larger max_seq_len"
            )
        ids = []
        vocab = [t for t in self.encoding_map if t not in (self.bos, self.pad)]
        for i, tok in enumerate(seq):
            if tok in (self.bos, self.pad) or tok not in self.encoding_map:
                raise InputError(
                    f"token {tok!r} at position {i} is not in the vocabulary {vocab}"
                )
            ids.append(self.encoding_map[tok])
        return ids


@dataclass
class OutputEncoder:
    """Unembedding columns to values (tracr-style ``decoding_map``); None if numerical."""

    decoding_map: dict

    def decode(self, ids: Sequence[int]) -> list:
        return [self.decoding_map[i] for i in ids]


def decode(program: CompiledProgram, resid: np.ndarray) -> tuple[list, np.ndarray]:
    """Decoded output values ``[batch][seq]`` and a mask of clean read-outs.

    Categorical: the value whose direction is near 1 (``None`` if all are near 0).
    Numerical: the nearest value of the output's exact value set. A read-out that is
    neither (a blend of directions, a number between grid values) is marked unclean: it
    happens only on inputs outside the program's domain.
    """
    out = np.asarray(resid, dtype=np.float64) @ program.params["unembed"].astype(np.float64)
    info = program.output_variable
    values = info.values
    if info.encoding == "numerical":
        x = out[..., 0]
        grid = np.array([float(v) for v in values]) if values else np.zeros(1)
        pos = np.clip(np.searchsorted(grid, x), 1, max(len(grid) - 1, 1))
        lo = grid[pos - 1]
        hi = grid[np.minimum(pos, len(grid) - 1)]
        idx = np.where(np.abs(x - lo) <= np.abs(x - hi), pos - 1, np.minimum(pos, len(grid) - 1))
        snapped = grid[idx]
        gaps = np.diff(grid).min() if len(grid) > 1 else 1.0
        clean = np.abs(x - snapped) < gaps / 4
        decoded = [[values[i] if values else 0 for i in row] for row in idx.tolist()]
        return decoded, clean
    if out.shape[-1] == 0:
        return [[None] * out.shape[1] for _ in range(out.shape[0])], np.ones(out.shape[:2], bool)
    best = out.argmax(-1)
    top = out.max(-1)
    rest = np.sort(out, axis=-1)[..., -2] if out.shape[-1] > 1 else np.zeros(out.shape[:2])
    is_none = top < 0.5
    clean = np.where(is_none, top < 0.1, (np.abs(top - 1) < 0.1) & (np.abs(rest) < 0.1))
    decoded = [
        [None if n else values[b] for b, n in zip(brow, nrow, strict=True)]
        for brow, nrow in zip(best.tolist(), is_none.tolist(), strict=True)
    ]
    return decoded, clean


# ---------------------------------------------------------------------------------------
# The runnable model


class Transformer(nnx.Module):
    """The compiled weights as a Flax NNX module; calling it returns the final residual."""

    def __init__(self, program: CompiledProgram):
        self.names = sorted(program.params)
        for name in self.names:
            setattr(self, _attr(name), nnx.Param(jax.device_put(program.params[name])))
        self.num_layers = program.config.num_layers
        self.pad_id = program.token_ids[program.pad]
        self.causal = program.config.causal

    def weights(self) -> dict:
        return {name: getattr(self, _attr(name))[...] for name in self.names}

    def __call__(self, ids: jnp.ndarray, capture: bool = False):
        x, cache = forward(
            self.weights(), ids, num_layers=self.num_layers, pad_id=self.pad_id,
            causal=self.causal, capture=capture,
        )
        return (x, cache) if capture else x


def _attr(name: str) -> str:
    return "w_" + name.replace(".", "_")


@dataclass
class ModelOutput:
    """tracr-like result of ``Model.apply``."""

    decoded: list
    transformer_output: np.ndarray
    unembedded: np.ndarray
    residuals: list
    clean: list


class Model:
    """A compiled program ready to run: batched, jitted, decodes to program values."""

    def __init__(self, program: CompiledProgram):
        self.program = program
        self.config = program.config
        self.module = Transformer(program)
        # device_put, not jnp.asarray: on jax 0.10 asarray compiles a kernel per new shape
        self.params_flat = jax.device_put(dict(program.params))
        ids = program.token_ids
        self.bos_id, self.pad_id = ids[program.bos], ids[program.pad]
        self.input_encoder = InputEncoder(ids, program.bos, program.pad, self.config.max_seq_len)
        out = program.output_variable
        self.output_encoder = (
            None if out.encoding == "numerical"
            else OutputEncoder(dict(enumerate(out.values)))
        )
        kw = dict(num_layers=self.config.num_layers, pad_id=self.pad_id, causal=self.config.causal)
        self._fwd = jax.jit(partial(forward, **kw, capture=False))
        self._fwd_cache = jax.jit(partial(forward, **kw, capture=True))

    # -- tracr-compatible surface ----------------------------------------------------------
    @property
    def model_config(self):
        return self.config

    @property
    def residual_labels(self) -> list[str]:
        return self.program.residual_labels

    @property
    def params(self) -> dict:
        """Weights as a nested dict (``{"layers": {"0": {"attn": {"q": ...}}}}``)."""
        nested: dict = {}
        for name, arr in self.program.params.items():
            *path, leaf = name.split(".")
            node = nested
            for part in path:
                node = node.setdefault(part, {})
            node[leaf] = arr
        return nested

    def apply(self, tokens: Sequence) -> ModelOutput:
        """Run one sequence that starts with BOS; ``.decoded`` starts with BOS, like tracr."""
        ids = np.array([self.input_encoder.encode(tokens)], dtype=np.int32)
        resid, cache = self.forward(ids, capture=True)
        resid = np.asarray(resid)
        decoded, clean = decode(self.program, resid)
        # the embeddings, then the stream after each attention and MLP sublayer
        residuals = [np.asarray(v) for k, v in cache.items()
                     if k == "blocks.0.hook_resid_pre" or k.endswith(("_mid", "_post"))]
        unembedded = resid @ self.program.params["unembed"]
        return ModelOutput(
            decoded=[self.program.bos] + decoded[0][1:], transformer_output=resid,
            unembedded=unembedded, residuals=residuals, clean=clean[0].tolist(),
        )

    # -- native surface --------------------------------------------------------------------
    def encode(self, inputs: Sequence[Sequence], width: int | None = None) -> np.ndarray:
        """``[batch, width]`` ids: BOS, the tokens, PAD after shorter sequences.

        ``width`` defaults to 1 + the longest input.
        """
        inputs = [list(s) for s in inputs]
        width = width or 1 + max((len(s) for s in inputs), default=0)
        ids = np.full((len(inputs), width), self.pad_id, dtype=np.int32)
        ids[:, 0] = self.bos_id
        for b, seq in enumerate(inputs):
            try:
                ids[b, 1 : 1 + len(seq)] = self.input_encoder.encode_body(seq)
            except InputError as err:
                raise InputError(f"input {b}: {err}") from None
        return ids

    @property
    def site_names(self) -> list[str]:
        """The activation sites (TransformerLens hook names) in forward order."""
        return params_site_names(self.program.params, self.config.num_layers)

    def forward(self, ids, capture: bool = False):
        """Final residual (and, with ``capture``, every activation site in forward order:
        ``site_names``), jitted."""
        ids = jnp.asarray(ids)
        if capture:
            resid, cache = self._fwd_cache(self.params_flat, ids)
            return resid, {name: cache[name] for name in self.site_names}
        return self._fwd(self.params_flat, ids)[0]

    def run(self, inputs: Sequence[Sequence], *, strict: bool = False) -> list[list]:
        """Decoded outputs (without the BOS position) for a batch of token sequences."""
        inputs = [list(s) for s in inputs]
        if not inputs:
            return []
        # One shape per batch-size bucket: full width, batch rounded up to a power of two,
        # so checking many inputs compiles the forward pass once or twice, not per length.
        ids = self.encode(inputs, width=self.config.max_seq_len + 1)
        rows = 1 << (len(inputs) - 1).bit_length()
        ids = np.concatenate([ids, np.repeat(ids[:1], rows - len(inputs), axis=0)])
        resid = np.asarray(self.forward(ids))[: len(inputs)]
        decoded, clean = decode(self.program, resid)
        out = []
        for b, seq in enumerate(inputs):
            n = len(seq)
            if strict and not clean[b, 1 : 1 + n].all():
                raise InputError(f"input {b} {seq!r} gave an unclean read-out (outside the domain)")
            out.append(decoded[b][1 : 1 + n])
        return out

    def __call__(self, inputs: Sequence[Sequence]) -> list[list]:
        return self.run(inputs)
