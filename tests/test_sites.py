"""Activation sites (TransformerLens names) and interventions on them (analysis/sites.py)."""

from __future__ import annotations

import numpy as np
import pytest
from rasplab.compiler import compile_program

from rasplab import programs

jax = pytest.importorskip("jax")

from rasplab.analysis import sites as S  # noqa: E402
from rasplab.analysis.interventions import encode  # noqa: E402
from rasplab.compiler.model import (  # noqa: E402
    Model,
    attention,
    attention_mask,
    forward,
    layer_params,
    mlp,
)

N = 12  # batch rows


@pytest.fixture(scope="module")
def setup():
    """reverse (4 layers; layers 1 and 2 have no heads): model, params, base and source ids
    of equal lengths, a reference batch."""
    spec = programs.get("reverse")
    c = compile_program(spec.build(), spec.vocab, spec.max_seq_len)
    width = c.config.max_seq_len + 1
    base = spec.sample_clean(0, N)
    source = spec.sample_corrupted(1, base)
    ref = spec.sample_clean(2, 7)
    params = jax.device_put(dict(c.params))
    return dict(
        compiled=c, model=Model(c), cfg=S.SiteConfig.of(c), params=params,
        ids=encode(c, base, width), src=encode(c, source, width), ref=encode(c, ref, width),
    )


def _rest(s, x, start: int, stop_site: str | None = None):
    """The forward pass by hand (compiler.model's pieces) from the residual ``x`` entering
    layer ``start``."""
    c, params, ids = s["compiled"], s["params"], s["ids"]
    mask = attention_mask(ids, s["model"].pad_id, False)
    for layer in range(start, c.config.num_layers):
        att = layer_params(params, layer, "attn")
        if att is not None:
            x = x + attention(att, x, x, x, mask, per_head=False)[0]
        ff = layer_params(params, layer, "mlp")
        if ff is not None:
            x = x + mlp(ff, x)[0]
    return np.asarray(x)


def cfg_d(s) -> int:
    return s["compiled"].config.d_model


def _close(a, b, atol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=atol, rtol=0)


# ---------------------------------------------------------------------------------------
# Sites and capture


def test_sites_are_transformerlens_names_in_forward_order(setup):
    cfg = setup["cfg"]
    names = S.sites(cfg)
    assert names[:3] == ["hook_embed", "hook_pos_embed", "blocks.0.hook_resid_pre"]
    assert names[3:10] == [f"blocks.0.attn.hook_{n}" for n in ("q", "k", "v", "pattern", "z",
                                                             "result")] + ["blocks.0.hook_attn_out"]
    assert names[-1] == "blocks.3.hook_resid_post"
    # layer 1 of reverse has an MLP and no heads: no attention sites, resid_mid still there
    assert not any(n.startswith("blocks.1.attn") or n == "blocks.1.hook_attn_out" for n in names)
    assert "blocks.1.hook_resid_mid" in names and "blocks.1.mlp.hook_pre" in names
    # layer 3 has a head and no MLP
    assert "blocks.3.hook_mlp_out" not in names and "blocks.3.attn.hook_z" in names
    cache = S.capture(setup["params"], setup["ids"], cfg)
    assert list(cache) == names
    _, model_cache = setup["model"].forward(setup["ids"], capture=True)
    assert list(model_cache) == names


def test_captured_sites_fit_together(setup):
    """Shapes in TransformerLens's axis orders, and every site agrees with the others and
    with a computation by hand."""
    c, s = setup["compiled"], setup
    cache = {k: np.asarray(v) for k, v in S.capture(s["params"], s["ids"], s["cfg"]).items()}
    b, t, d = N, c.config.max_seq_len + 1, c.config.d_model
    p = c.params
    heads, key = p["layers.0.attn.q"].shape[0], p["layers.0.attn.q"].shape[2]
    assert cache["blocks.0.attn.hook_q"].shape == (b, t, heads, key)
    assert cache["blocks.0.attn.hook_pattern"].shape == (b, heads, t, t)
    assert cache["blocks.0.attn.hook_result"].shape == (b, t, heads, d)
    assert cache["blocks.0.mlp.hook_pre"].shape == (b, t, p["layers.0.mlp.in"].shape[1])
    _close(cache["hook_embed"], p["embed.token"][s["ids"]])
    _close(cache["blocks.0.hook_resid_pre"], cache["hook_embed"] + cache["hook_pos_embed"])
    x = cache["blocks.3.hook_resid_pre"]
    _close(cache["blocks.3.attn.hook_q"], np.einsum("btd,hdk->bthk", x, p["layers.3.attn.q"]))
    _close(cache["blocks.3.attn.hook_v"], np.einsum("btd,hdk->bthk", x, p["layers.3.attn.v"]))
    _close(cache["blocks.3.attn.hook_z"],
           np.einsum("bhqs,bshv->bqhv", cache["blocks.3.attn.hook_pattern"],
                     cache["blocks.3.attn.hook_v"]))
    _close(cache["blocks.3.hook_attn_out"], cache["blocks.3.attn.hook_result"].sum(2))
    _close(cache["blocks.3.hook_resid_mid"], x + cache["blocks.3.hook_attn_out"])
    _close(cache["blocks.0.mlp.hook_post"], np.maximum(cache["blocks.0.mlp.hook_pre"], 0))
    _close(cache["blocks.0.hook_resid_post"],
           cache["blocks.0.hook_resid_mid"] + cache["blocks.0.hook_mlp_out"])
    _close(cache["blocks.1.hook_resid_pre"], cache["blocks.0.hook_resid_post"], atol=0)
    _close(cache["blocks.3.hook_resid_post"], s["model"].forward(s["ids"]))


def test_forward_hooks_are_checked_and_jit(setup):
    s = setup
    kw = dict(num_layers=4, pad_id=s["model"].pad_id, causal=False)
    with pytest.raises(ValueError, match="no activation site 'blocks.1.attn.hook_q'"):
        forward(s["params"], s["ids"], **kw, hooks={"blocks.1.attn.hook_q": lambda x: x})
    with pytest.raises(ValueError, match="returned shape"):
        forward(s["params"], s["ids"], **kw, hooks={"hook_embed": lambda x: x[:, :1]})

    @jax.jit
    def doubled(params, ids, scale):
        hooks = {"blocks.0.hook_mlp_out": lambda x: x * scale}
        return forward(params, ids, **kw, hooks=hooks)[0]

    x = S.capture(s["params"], s["ids"], s["cfg"])["blocks.0.hook_resid_mid"]
    out = S.capture(s["params"], s["ids"], s["cfg"])["blocks.0.hook_mlp_out"]
    _close(doubled(s["params"], s["ids"], 2.0), _rest(s, x + 2 * out, 1))


# ---------------------------------------------------------------------------------------
# Interventions


def test_zero_at_a_site_equals_zeroing_by_hand(setup):
    s = setup
    cache = S.capture(s["params"], s["ids"], s["cfg"])
    got = S.intervene(s["params"], s["ids"], s["cfg"], [S.Zero("blocks.0.hook_mlp_out")]).resid
    _close(got, _rest(s, cache["blocks.0.hook_resid_mid"], 1))
    # only position 2 of the token embedding
    tok = np.asarray(cache["hook_embed"]).copy()
    tok[:, 2] = 0
    got = S.intervene(s["params"], s["ids"], s["cfg"], [S.Zero("hook_embed", positions=[2])])
    _close(got.resid, _rest(s, tok + np.asarray(cache["hook_pos_embed"]), 0))
    assert not np.allclose(np.asarray(got.resid), np.asarray(cache["blocks.3.hook_resid_post"]))


def test_resample_every_embedding_site_equals_running_the_source(setup):
    s = setup
    patches = [S.Resample("hook_embed", s["src"]), S.Resample("hook_pos_embed", s["src"])]
    run = S.intervene(s["params"], s["ids"], s["cfg"], patches, capture=True)
    _close(run.resid, s["model"].forward(s["src"]))
    src_cache = S.capture(s["params"], s["src"], s["cfg"])
    for name in S.sites(s["cfg"]):
        _close(run.cache[name], src_cache[name])


def test_replace_add_mean(setup):
    s = setup
    p, ids, cfg = s["params"], s["ids"], s["cfg"]
    cache = S.capture(p, ids, cfg)
    site = "blocks.1.hook_resid_post"
    clean = np.asarray(cache["blocks.3.hook_resid_post"])
    # replacing with the activation itself, or adding zero, changes nothing
    _close(S.intervene(p, ids, cfg, [S.Replace(site, cache[site])]).resid, clean)
    _close(S.intervene(p, ids, cfg, [S.Add(site, np.zeros(cfg_d(s)))]).resid, clean)
    # add == replace with the sum, here at positions 1 and 3 only
    delta = np.random.default_rng(0).normal(size=cfg_d(s)).astype(np.float32)
    added = S.intervene(p, ids, cfg, [S.Add(site, delta, positions=[1, 3])]).resid
    by_hand = np.asarray(cache[site]).copy()
    by_hand[:, [1, 3]] += delta
    _close(added, _rest(s, by_hand, 2))
    # mean over a reference batch, per position
    ref_cache = S.capture(p, s["ref"], cfg)
    mean = np.asarray(ref_cache[site]).mean(0)
    got = S.intervene(p, ids, cfg, [S.Mean(site, s["ref"])]).resid
    _close(got, _rest(s, np.broadcast_to(mean, cache[site].shape), 2))
    _close(got, S.intervene(p, ids, cfg, [S.Replace(site, mean)]).resid)


def test_subspace_patch_full_basis_equals_resample(setup):
    s = setup
    p, ids, cfg = s["params"], s["ids"], s["cfg"]
    d = cfg_d(s)
    rot = np.linalg.qr(np.random.default_rng(1).normal(size=(d, d)))[0]
    for site in ("blocks.0.hook_resid_post", "blocks.3.hook_resid_pre", "hook_embed"):
        resampled = S.intervene(p, ids, cfg, [S.Resample(site, s["src"])]).resid
        for basis in (np.eye(d), rot @ np.diag(np.arange(1, d + 1.0))):  # any full-rank B
            got = S.intervene(p, ids, cfg, [S.SubspacePatch(site, basis, s["src"])]).resid
            _close(got, resampled, atol=1e-4)
        assert not np.allclose(np.asarray(resampled), np.asarray(s["model"].forward(ids)))


def test_subspace_patch_of_the_complement_is_a_no_op(setup):
    """At the final residual, the orthogonal complement of what the unembedding reads
    (in a random, not axis-aligned basis) carries nothing to the output; the unembedding's
    own span carries all of it."""
    s = setup
    c, p, ids, cfg = s["compiled"], s["params"], s["ids"], s["cfg"]
    d, site = cfg_d(s), "blocks.3.hook_resid_post"
    u = c.params["unembed"]
    read = np.linalg.qr(u)[0]
    comp = np.linalg.svd(np.eye(d) - read @ read.T)[0][:, : d - read.shape[1]]
    comp = comp @ np.linalg.qr(np.random.default_rng(2).normal(size=(comp.shape[1],) * 2))[0]
    clean = np.asarray(s["model"].forward(ids)) @ u
    source = np.asarray(s["model"].forward(s["src"])) @ u
    out = S.intervene(p, ids, cfg, [S.SubspacePatch(site, comp, s["src"])]).resid
    _close(np.asarray(out) @ u, clean)
    out = S.intervene(p, ids, cfg, [S.SubspacePatch(site, u, s["src"])]).resid
    _close(np.asarray(out) @ u, source)
    assert not np.allclose(clean, source)


def test_subspace_patch_per_row_bases_and_positions(setup):
    """One basis per row (k may differ; k = 0 leaves the row alone) equals patching each
    row alone; positions restrict the patch."""
    s = setup
    c, p, ids, cfg = s["compiled"], s["params"], s["ids"], s["cfg"]
    site = "blocks.0.hook_resid_post"
    d = cfg_d(s)
    dims = c.variables["length"].dims
    b_len = np.eye(d)[:, dims]
    b_tok = np.eye(d)[:, c.variables["tokens"].dims]
    rows = [b_len if i % 3 == 0 else b_tok if i % 3 == 1 else np.zeros((d, 0))
            for i in range(N)]
    got = np.asarray(S.intervene(p, ids, cfg, [S.SubspacePatch(site, rows, s["src"])]).resid)
    for basis, which in ((b_len, 0), (b_tok, 1)):
        alone = np.asarray(S.intervene(p, ids, cfg, [S.SubspacePatch(site, basis, s["src"])]).resid)
        _close(got[which::3], alone[which::3])
    _close(got[2::3], np.asarray(s["model"].forward(ids))[2::3])
    # the patch at positions 1..2 only: the residual after it equals the source's there
    mask = np.zeros(ids.shape, bool)
    mask[:, 1:3] = True
    run = S.intervene(p, ids, cfg, [S.SubspacePatch(site, b_tok, s["src"], positions=mask)],
                      capture=True)
    after = np.asarray(run.cache[site])[..., c.variables["tokens"].dims]
    src = np.asarray(S.capture(p, s["src"], cfg)[site])[..., c.variables["tokens"].dims]
    base = np.asarray(S.capture(p, ids, cfg)[site])[..., c.variables["tokens"].dims]
    _close(after[:, 1:3], src[:, 1:3])
    _close(after[:, 3:], base[:, 3:])


def test_interventions_compose_in_order(setup):
    s = setup
    p, ids, cfg = s["params"], s["ids"], s["cfg"]
    site = "blocks.2.hook_resid_post"
    one = np.ones(cfg_d(s), np.float32)
    a = S.intervene(p, ids, cfg, [S.Zero(site), S.Add(site, one)]).resid
    b = S.intervene(p, ids, cfg, [S.Replace(site, one)]).resid
    _close(a, b)
    c = S.intervene(p, ids, cfg, [S.Add(site, one), S.Zero(site)]).resid
    _close(c, S.intervene(p, ids, cfg, [S.Zero(site)]).resid)


def test_pattern_site_positions_are_queries(setup):
    s = setup
    p, ids, cfg = s["params"], s["ids"], s["cfg"]
    run = S.intervene(p, ids, cfg, [S.Zero("blocks.3.attn.hook_pattern", positions=[2])],
                      capture=True)
    z = np.asarray(run.cache["blocks.3.attn.hook_z"])
    clean_z = np.asarray(S.capture(p, ids, cfg)["blocks.3.attn.hook_z"])
    assert np.all(z[:, 2] == 0)
    _close(np.delete(z, 2, axis=1), np.delete(clean_z, 2, axis=1))


def test_bad_interventions_are_refused(setup):
    s = setup
    p, ids, cfg = s["params"], s["ids"], s["cfg"]
    d = cfg_d(s)
    with pytest.raises(ValueError, match="no activation site 'blocks.9.hook_resid_pre'"):
        S.intervene(p, ids, cfg, [S.Zero("blocks.9.hook_resid_pre")])
    with pytest.raises(ValueError, match="linearly dependent"):
        S.intervene(p, ids, cfg, [S.SubspacePatch("hook_embed", np.ones((d, 2)), s["src"])])
    with pytest.raises(ValueError, match="source ids of shape"):
        S.intervene(p, ids, cfg, [S.Resample("hook_embed", s["src"][:3])])
    with pytest.raises(ValueError, match="rows but the activation"):
        S.intervene(p, ids, cfg, [S.SubspacePatch("blocks.0.mlp.hook_pre", np.eye(d)[:, :2],
                                                  s["src"])])
    with pytest.raises(ValueError, match="do not broadcast"):
        S.intervene(p, ids, cfg, [S.Replace("hook_embed", np.ones(d + 1))])
    with pytest.raises(ValueError, match="outside"):
        S.intervene(p, ids, cfg, [S.Zero("hook_embed", positions=[99])])
