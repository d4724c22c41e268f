"""The ``"lowrank"`` backend: BlackJAX's NUTS with a mass matrix adapted by Fisher divergence.

One chain is a pure function compiled whole (:func:`chain`): warm-up and sampling in two
``jax.lax.scan`` loops, no Python per gradient, so chains vectorise (``jax.vmap``), spread over
devices (``jax.pmap``) and batch over data sets like the ``"numpyro"`` backend's.

The warm-up follows nutpie's schedule (nuts-rs ``adapt_strategy.rs``): the metric starts from
the gradient at the starting point (:func:`bayescale.inference.fisher.from_gradient`); every
draw's position and gradient join a buffer, and the metric is re-estimated from it
(:func:`bayescale.inference.fisher.estimate`) every :data:`UPDATE_EVERY` draws and whenever the
buffer switches windows, every :data:`EARLY_SWITCH` draws in the first :data:`EARLY` of the
warm-up and every :data:`LATE_SWITCH` after, dropping the draws of the older window; the last
:data:`FINAL` of the warm-up only tunes the step size.  The step size is tuned by dual
averaging towards ``target_accept``, restarted when the metric first changes.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from blackjax.adaptation.step_size import dual_averaging_adaptation
from blackjax.mcmc import hmc
from blackjax.mcmc import nuts as bj_nuts
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import initialize_model, unconstrain_fn

from . import fisher
from .config import SamplerConfig
from .device import resolve_device
from .nuts import Draws, jitter

EARLY, FINAL = 0.3, 0.15  # shares of the warm-up: early windows, final step-size-only window
EARLY_SWITCH, LATE_SWITCH = 10, 80  # draws per metric window, early and later
UPDATE_EVERY = 10  # draws between metric updates inside a window
BUFFER = 256  # draws and gradients kept for the estimate (two late windows and more)
MAX_RANK = 32  # columns of the low-rank correction
FIRST_STEP = 0.1


class Warm(NamedTuple):
    state: hmc.HMCState
    metric: object
    buffer: fisher.Buffer
    step: object  # dual averaging state
    changed: jax.Array  # the metric has left its starting form


def _rank(dim: int) -> int:
    return min(MAX_RANK, dim)


def chain(logdensity, x0: jax.Array, key, *, warmup: int, draws: int, target_accept: float,
          max_tree_depth: int = 10, cutoff: float = fisher.CUTOFF):
    """Warm-up then sampling of one chain from ``x0`` (flat, unconstrained).

    Returns the draws (``draws`` x dim), their log densities and the per-draw statistics
    (``diverging``, ``energy``, ``num_steps``), plus the adapted step size and metric.
    """
    kernel = bj_nuts.build_kernel()
    da_init, da_update, da_final = dual_averaging_adaptation(target_accept)
    dim = x0.shape[0]
    state = hmc.init(x0, logdensity)
    early_end, final_start = int(EARLY * warmup), warmup - int(FINAL * warmup)
    start = Warm(state, fisher.from_gradient(state.logdensity_grad, _rank(dim)),
                 fisher.buffer_init(BUFFER, dim), da_init(FIRST_STEP), jnp.bool_(False))

    def warm(carry: Warm, inputs):
        i, k = inputs
        step_size = jnp.exp(carry.step.log_step_size)
        state, info = kernel(k, carry.state, logdensity, step_size, carry.metric, max_tree_depth)
        adapting = i < final_start
        buffer = fisher.buffer_add(carry.buffer, state.position, state.logdensity_grad,
                                   adapting & ~info.is_divergent)
        every = jnp.where(i < early_end, EARLY_SWITCH, LATE_SWITCH)
        switch = adapting & (buffer.background >= every) & (i + every <= final_start)
        buffer = jax.lax.cond(switch, fisher.buffer_switch, lambda b: b, buffer)
        update = adapting & (switch | ((i + 1) % UPDATE_EVERY == 0)) & (buffer.count >= 3)
        metric = jax.lax.cond(update, lambda b: fisher.estimate(b, _rank(dim), cutoff=cutoff),
                              lambda b: carry.metric, buffer)
        first = update & ~carry.changed
        tuned = da_update(carry.step, info.acceptance_rate)
        step = jax.tree.map(lambda restart, keep: jnp.where(first, restart, keep),
                            da_init(step_size), tuned)
        return Warm(state, metric, buffer, step, carry.changed | update), None

    keys = jax.random.split(key, warmup + draws)
    warmed, _ = jax.lax.scan(warm, start, (jnp.arange(warmup), keys[:warmup]))
    step_size = da_final(warmed.step) if warmup else FIRST_STEP

    def draw(state, k):
        state, info = kernel(k, state, logdensity, step_size, warmed.metric, max_tree_depth)
        return state, (state.position, state.logdensity, info.is_divergent, info.energy,
                       info.num_integration_steps)

    _, (xs, logp, diverging, energy, steps) = jax.lax.scan(draw, warmed.state, keys[warmup:])
    stats = {"diverging": diverging, "energy": energy, "num_steps": steps, "potential_energy": -logp}
    return xs, stats, step_size, warmed.metric


def program(model, latent, *, chains: int, warmup: int, draws: int, target_accept: float,
            max_tree_depth: int = 10):
    """A whole run of ``model``'s chains as one function of ``(key, init, data)``, like
    :func:`bayescale.inference.nuts.nuts_program`: ``init`` holds constrained values of the
    ``latent`` sites, jittered per chain; returns ``(samples, extra)`` grouped by chain."""

    def run(key, init, data, chain_ids=None):
        k_init, k_run = jax.random.split(key)
        info = initialize_model(k_init, model, model_kwargs=data, dynamic_args=False)
        z = unconstrain_fn(model, (), data, {k: init[k] for k in latent})
        starts = jitter(z, k_init, chains)
        flat0, unravel = ravel_pytree(jax.tree.map(lambda v: v[0] if chains > 1 else v, starts))

        def logdensity(x):
            return -info.potential_fn(unravel(x))

        def one(k, start):
            x0 = ravel_pytree(start)[0]
            xs, stats, _, _ = chain(logdensity, x0, k, warmup=warmup, draws=draws,
                                    target_accept=target_accept, max_tree_depth=max_tree_depth)
            samples = jax.vmap(lambda x: info.postprocess_fn(unravel(x)))(xs)
            return samples, stats

        keys = jax.random.split(k_run, chains)
        if chain_ids is not None:  # one chain of several, chosen by index (side-by-side runs)
            start = jax.tree.map(lambda v: v[chain_ids], starts) if chains > 1 else starts
            return one(keys[chain_ids], start)
        per_chain = starts if chains > 1 else jax.tree.map(lambda v: v[None], starts)
        return jax.vmap(one)(keys, per_chain)

    return run


def sample(model, data: dict, init: dict, config: SamplerConfig, target_accept: float,
           dense: tuple = ()) -> Draws:
    """Run the chains of one fit from ``init`` (constrained values of the latent sites); the
    draws in the form :func:`bayescale.inference.sample.to_datatree` converts.  ``dense`` is
    unused: the metric finds its own correlated directions."""
    from .nuts import latent_sites

    name, dev = resolve_device(config.device)
    latent = latent_sites(model, data)
    run = program(model, latent, chains=config.chains, warmup=config.warmup, draws=config.draws,
                  target_accept=target_accept, max_tree_depth=config.max_tree_depth)
    key = jax.random.PRNGKey(config.seed)
    init = {k: jnp.asarray(init[k]) for k in latent}
    parallel = name == "cpu" and 1 < config.chains <= len(jax.local_devices(backend="cpu"))
    with jax.default_device(dev):
        if parallel:  # one chain per host device, each on its own trajectory
            ids = jnp.arange(config.chains)
            samples, extra = jax.pmap(lambda c: run(key, init, data, c))(ids)
        else:
            samples, extra = jax.jit(run)(key, init, data)
    return Draws(model, data, samples, extra, max_tree_depth=config.max_tree_depth)
