"""Run compiled programs: a pure, jitted JAX forward pass and the encoders that turn token
sequences into ids and residuals into decoded values.

The forward pass is a plain function of (params, ids) so interventions in ``analysis/`` can
reuse its pieces (``embed``, ``attention``, ``mlp``) and patch anything between them.
All matrix products run at full float32 precision (``Precision.HIGHEST``): accelerators'
default reduced-precision matmuls would break exactness.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import jax_cache
from .assemble import CompiledProgram
from .errors import InputError

jax_cache.enable()

HIGHEST = jax.lax.Precision.HIGHEST
MASKED = -1e30
CHUNK = 4096  # most inputs per forward pass in Model.run_batch


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
    """Decoded output values ``[batch][seq]`` and a mask of clean read-outs, through the
    program's ``Readout`` (compiler/readout.py): on an exact model a read-out that is not
    clean (a blend of directions, a number between grid values) happens only on inputs
    outside the program's domain."""
    out = np.asarray(resid, dtype=np.float64) @ program.params["unembed"].astype(np.float64)
    return program.readout.decode(out)


# ---------------------------------------------------------------------------------------
# The runnable model


@dataclass
class ModelOutput:
    """tracr-like result of ``Model.apply``.

    One sequence, batch axis of 1 kept. As in tracr, ``residuals`` and ``layer_outputs``
    have one entry per sublayer in forward order, attention then MLP for every layer
    (``2 * num_layers`` entries):
    ``residuals[2*l]`` is the stream after layer ``l``'s attention, ``residuals[2*l+1]``
    after its MLP; ``layer_outputs[i]`` is what that sublayer added (zeros for a layer
    without heads or without MLP). The embedding is ``input_embeddings``, not in the list.
    ``cache`` holds every captured activation, keyed, in forward order.
    ``outside_domain`` names the (variable, position) pairs whose input made one of the
    program's functions raise: the output there is not the program's (see ``in_domain``).
    """

    decoded: list
    transformer_output: np.ndarray
    unembedded: np.ndarray
    residuals: list
    clean: list
    layer_outputs: list = field(default_factory=list)
    input_embeddings: np.ndarray | None = None
    attn_patterns: list = field(default_factory=list)
    cache: dict = field(default_factory=dict)
    outside_domain: list = field(default_factory=list)

    @property
    def in_domain(self) -> bool:
        """False when the compiler recorded that this input makes a program function raise."""
        return not self.outside_domain


class Model:
    """A compiled program ready to run: batched, jitted, decodes to program values."""

    def __init__(self, program: CompiledProgram, source_program=None):
        self.program = program
        self.source_program = source_program  # the RASP program, when known (for trace)
        self.config = program.config
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
        """Run one sequence that starts with BOS; ``.decoded`` starts with BOS, like tracr.

        ``residuals`` and ``layer_outputs`` follow tracr's order and meaning (see
        :class:`ModelOutput`).
        """
        ids = np.array([self.input_encoder.encode(tokens)], dtype=np.int32)
        resid, cache = self.forward(ids, capture=True)
        resid = np.asarray(resid)
        decoded, clean = decode(self.program, resid)
        cache = {k: np.asarray(v) for k, v in cache.items()}
        residuals, layer_outputs, patterns = tracr_lists(cache, self.config.num_layers)
        unembedded = resid @ self.program.params["unembed"]
        from .trace import outside_domain

        return ModelOutput(
            decoded=[self.program.bos] + decoded[0][1:], transformer_output=resid,
            unembedded=unembedded, residuals=residuals, clean=clean[0].tolist(),
            layer_outputs=layer_outputs, input_embeddings=cache_site(cache, "input_embeddings"),
            attn_patterns=patterns, cache=cache,
            outside_domain=outside_domain(self.program, resid[0]),
        )

    def trace(self, tokens: Sequence, program=None):
        """Every program variable at every position: the interpreter's value (when the
        program is known) next to the value decoded from each residual site where the
        variable is present. ``tokens`` without BOS. See :mod:`rasplab.compiler.trace`."""
        from .trace import trace

        return trace(self, tokens, program=program)

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

    def run_batch(self, inputs: Sequence[Sequence]) -> tuple[list[list], list[np.ndarray]]:
        """Decoded outputs (without BOS) and per-position clean flags for token sequences
        of any lengths, in one forward pass per chunk.

        Every input is padded to the full width and each chunk's row count is rounded up
        to a power of two (at most ``CHUNK``), so checking many inputs compiles the forward
        pass once or twice, not once per length or batch size.
        """
        inputs = [list(s) for s in inputs]
        decoded_all: list[list] = []
        clean_all: list[np.ndarray] = []
        if not inputs:
            return decoded_all, clean_all
        rows = min(CHUNK, 1 << (len(inputs) - 1).bit_length())
        for start in range(0, len(inputs), rows):
            chunk = inputs[start : start + rows]
            ids = self.encode(chunk, width=self.config.max_seq_len + 1)
            ids = np.concatenate([ids, np.repeat(ids[:1], rows - len(chunk), axis=0)])
            resid = np.asarray(self.forward(ids))[: len(chunk)]
            decoded, clean = decode(self.program, resid)
            for b, seq in enumerate(chunk):
                decoded_all.append(decoded[b][1 : 1 + len(seq)])
                clean_all.append(clean[b, 1 : 1 + len(seq)])
        return decoded_all, clean_all

    def run(self, inputs: Sequence[Sequence], *, strict: bool = False) -> list[list]:
        """Decoded outputs (without the BOS position) for a batch of token sequences.

        ``strict``: raise ``InputError`` where a read-out is not clean (on an exact model,
        an input outside the program's domain).
        """
        decoded, clean = self.run_batch(inputs)
        if strict:
            for b, ok in enumerate(clean):
                if not ok.all():
                    raise InputError(f"input {b} {list(inputs[b])!r} gave an unclean read-out "
                                     "(outside the domain)")
        return decoded

    def __call__(self, inputs: Sequence[Sequence]) -> list[list]:
        return self.run(inputs)


# ---------------------------------------------------------------------------------------
# Reading the capture cache


#: Where ``Model.apply`` finds each activation in ``forward``'s capture cache (``{l}`` is
#: the layer). A site that names several keys is their sum; an attention site with a head
#: axis (``[batch, head, seq, d]``) is summed over heads. Renaming the cache keys means
#: editing this table only.
CACHE_SITES: dict[str, tuple[str, ...]] = {
    "input_embeddings": ("hook_embed", "hook_pos_embed"),
    "resid_mid": ("blocks.{l}.hook_resid_mid",),
    "resid_post": ("blocks.{l}.hook_resid_post",),
    "attn_out": ("blocks.{l}.hook_attn_out",),
    "mlp_out": ("blocks.{l}.hook_mlp_out",),
    "attn_pattern": ("blocks.{l}.attn.hook_pattern",),
}


def cache_site(cache: dict, site: str, layer: int = 0) -> np.ndarray | None:
    """The activation ``site`` of ``CACHE_SITES`` at ``layer`` (``None`` if the layer has
    no such sublayer: no heads, or no MLP)."""
    keys = [k.format(l=layer) for k in CACHE_SITES[site]]
    if not all(k in cache for k in keys):
        return None
    arrays = [np.asarray(cache[k]) for k in keys]
    total = arrays[0] if len(arrays) == 1 else sum(arrays[1:], arrays[0])
    if site == "attn_out" and total.ndim == 4:
        total = total.sum(axis=1)
    return total


def tracr_lists(cache: dict, num_layers: int) -> tuple[list, list, list]:
    """``(residuals, layer_outputs, attn_patterns)`` in tracr's order from a capture cache."""
    x = cache_site(cache, "input_embeddings")
    residuals, outputs, patterns = [], [], []
    for layer in range(num_layers):
        for sub in ("attn", "mlp"):
            resid = cache_site(cache, "resid_mid" if sub == "attn" else "resid_post", layer)
            out = cache_site(cache, f"{sub}_out", layer)
            outputs.append(np.zeros_like(x) if out is None else out)
            residuals.append(resid)
            x = resid
        patterns.append(cache_site(cache, "attn_pattern", layer))
    return residuals, outputs, patterns
