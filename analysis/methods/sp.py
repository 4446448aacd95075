"""Subnetwork probing over edges: learn which edges to keep (after Cao et al., 2021, as the
ACDC paper ran it, but with a mask per edge rather than per component).

Every edge has a logit ``a_e``. Masks are drawn from the logits, the model runs with each
mask (1 keeps the clean term, 0 patches the edge with the experiment's ablated value), and
the loss is

``distance(mask) / distance(all patched)  +  penalty * mean_e P(mask_e != 0)``

(faithfulness relative to patching everything, so ``penalty`` means the same on every
program, plus the expected fraction of edges kept). With ``hard_concrete`` (default) each
mask is a stretched and clipped hard-concrete sample (Louizos et al., 2018):
``s = sigmoid((log u - log(1 - u) + a) / beta)``, ``mask = clip(s (zeta - gamma) + gamma,
0, 1)``, ``P(mask != 0) = sigmoid(a - beta log(-gamma / zeta))``; ``samples`` masks per
step (default: one vmapped gradient chunk) average the gradient. Without it the mask is
``sigmoid(a)`` (plain relaxation, L1 penalty).

The gradient of the faithfulness term with respect to the masks comes from the shared
vmapped value-and-gradient function (``common``), already compiled when EAP or EAP-IG ran
on the same graph; the chain rule through the sampling is done here and the logits are
updated with optax's Adam for ``steps`` steps.

Score: the final logit. The method's own circuit: edges whose deterministic mask
(``sigmoid(a)`` stretched and clipped) exceeds 1/2, i.e. ``a > 0``.
"""

from __future__ import annotations

from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..interventions import Experiment
from .common import (
    MethodResult,
    Timer,
    grad_chunk_size,
    metric,
    metric_values_and_grads,
    node_scores_from_edges,
)

GAMMA, ZETA = -0.1, 1.1


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@cache
def _adam(lr: float):
    opt = optax.adam(lr)

    @jax.jit
    def update(grad, state, params):
        updates, state = opt.update(grad, state, params)
        return optax.apply_updates(params, updates), state

    return opt, update


def sp(exp: Experiment, *, steps: int = 200, lr: float = 0.1, penalty: float = 1.0,
       init: float = 3.0, hard_concrete: bool = True, beta: float = 2.0 / 3.0,
       samples: int | None = None, seed: int = 0) -> MethodResult:
    """Learned edge masks: faithfulness loss plus an expected-L0 (or L1) penalty."""
    graph = exp.graph
    n = graph.n_edges
    rng = np.random.default_rng(seed)
    n_samples = (samples or grad_chunk_size(exp)) if hard_concrete else 1
    l0_shift = beta * np.log(-GAMMA / ZETA)
    opt, update = _adam(float(lr))
    losses, faiths = [], []
    with Timer() as t:
        scale = max(metric(exp, np.zeros(n, np.float32)), 1e-12)
        logits = jnp.full(n, init, jnp.float32)
        state = opt.init(logits)
        for _ in range(steps):
            a = np.asarray(logits, np.float64)
            if hard_concrete:
                u = rng.uniform(1e-6, 1 - 1e-6, size=(n_samples, n))
                s = _sigmoid((np.log(u) - np.log1p(-u) + a) / beta)
                stretched = s * (ZETA - GAMMA) + GAMMA
                masks = np.clip(stretched, 0.0, 1.0)
                dmask = (ZETA - GAMMA) * s * (1 - s) / beta * ((stretched > 0) & (stretched < 1))
                p_keep = _sigmoid(a - l0_shift)
            else:
                masks = _sigmoid(a)[None]
                dmask = masks * (1 - masks)
                p_keep = masks[0]
            values, grads = metric_values_and_grads(exp, masks, kind="distance")
            g_faith = (grads * dmask).mean(axis=0) / scale
            g_pen = penalty * p_keep * (1 - p_keep) / n
            faith = float(values.mean() / scale)
            losses.append(faith + penalty * float(p_keep.mean()))
            faiths.append(faith)
            logits, state = update(jnp.asarray(g_faith + g_pen, jnp.float32), state, logits)
        scores = np.asarray(logits, np.float64)
    if hard_concrete:
        deterministic = np.clip(_sigmoid(scores) * (ZETA - GAMMA) + GAMMA, 0, 1)
    else:
        deterministic = _sigmoid(scores)
    every = max(1, steps // 20)
    return MethodResult(
        method="sp", edge_scores=scores, node_scores=node_scores_from_edges(graph, scores),
        circuit=deterministic > 0.5, seconds=t.seconds,
        info={"steps": steps, "lr": lr, "penalty": penalty, "hard_concrete": hard_concrete,
              "samples_per_step": n_samples, "metric": "distance", "scale": scale,
              "final_loss": losses[-1] if losses else None,
              "final_faithfulness_loss": faiths[-1] if faiths else None,
              "loss_curve": losses[::every]},
    )
