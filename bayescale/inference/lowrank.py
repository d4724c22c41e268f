"""The ``"lowrank"`` backend: BlackJAX's NUTS with a mass matrix adapted by Fisher divergence.

One chain is a pure function compiled whole (:func:`chain`): warm-up and sampling in two
``jax.lax.scan`` loops, no Python per gradient, so chains vectorise (``jax.vmap``), spread over
devices (``jax.pmap``) and batch over data sets like the ``"numpyro"`` backend's.

The warm-up follows nutpie's (nuts-rs ``adapt_strategy.rs``), with two changes measured on
these posteriors.  Every draw's position and gradient join a buffer, and the metric is
re-estimated from it (:func:`bayescale.inference.fisher.estimate`) every :data:`UPDATE_EVERY`
draws; the buffer switches windows (dropping the draws of the older one) after windows of
:data:`EARLY_SWITCH` draws that double in the first :data:`EARLY` of the warm-up, then every
:data:`LATE_SWITCH` draws (:func:`schedule`); the last :data:`FINAL` of the warm-up only tunes
the step size, by dual averaging towards ``target_accept``, restarted when the metric first
changes.  The changes, measured as leapfrog steps per warm-up draw (4 chains x 1000 warm-up
draws, target 0.8, ``loss_to_loss`` / 30 simulated families): windows of a fixed 10 draws
early left 10-20 draws in each estimate (17-50 steps per draw until the late windows;
doubling: 14.1 -> 11.3 and 27.1 -> 17.1 over the whole warm-up); and the first metric comes
from the curvature at the start (:func:`bayescale.inference.fisher.from_curvature`), not the
gradient, since chains start next to the mode (11.3 -> 8.9 and 17.1 -> 12.9).  (nutpie
re-estimates after every draw; every tenth costs a tenth and reached the same steps per draw.)
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
from .nuts import Draws, energy_of, jitter, latent_sites

EARLY, FINAL = 0.3, 0.15  # shares of the warm-up: early windows, final step-size-only window
EARLY_SWITCH, LATE_SWITCH = 10, 80  # draws per metric window, early and later
UPDATE_EVERY = 10  # draws between metric updates inside a window
BUFFER = 256  # draws and gradients kept for the estimate (two late windows and more)
MAX_RANK = 256  # columns of the low-rank correction (30 families kept 79; each costs O(dim) per step)
FIRST_STEP = 0.1


class Warm(NamedTuple):
    state: hmc.HMCState
    metric: object
    buffer: fisher.Buffer
    step: object  # dual averaging state
    changed: jax.Array  # the metric has been estimated from draws at least once


def _rank(dim: int) -> int:
    return min(MAX_RANK, dim)


def schedule(warmup: int) -> tuple[list, int]:
    """The metric windows of a warm-up of ``warmup`` draws: ``(ends, final)``.

    ``ends`` lists, per window of :data:`UPDATE_EVERY` draws, whether the buffer switches at its
    end (after windows of :data:`EARLY_SWITCH` draws that double in the first :data:`EARLY` of
    the warm-up, every :data:`LATE_SWITCH` after, none that would leave fewer draws than that
    before the final window); ``final`` is the number of draws of the final, step-size-only
    window.  The schedule depends on the draw count alone, the same for every chain, so
    vectorised chains share it.

    Examples
    --------
    >>> ends, final = schedule(200)
    >>> len(ends), final, ends[:4]
    (17, 30, [True, False, True, False])
    """
    windows = (warmup - int(FINAL * warmup)) // UPDATE_EVERY
    final = warmup - windows * UPDATE_EVERY
    early_end, adapt_end = int(EARLY * warmup), windows * UPDATE_EVERY
    ends, since, length = [], 0, EARLY_SWITCH
    for w in range(windows):
        end = (w + 1) * UPDATE_EVERY
        since += UPDATE_EVERY
        every = min(length, LATE_SWITCH) if end <= early_end else LATE_SWITCH
        switch = since >= every and end + every <= adapt_end
        if switch:
            since, length = 0, 2 * length
        ends.append(switch)
    return ends, final


def chain(logdensity, x0: jax.Array, key, *, warmup: int, draws: int, target_accept: float,
          max_tree_depth: int = 10, cutoff: float = fisher.CUTOFF):
    """Warm-up then sampling of one chain from ``x0`` (flat, unconstrained).

    Returns the draws (``draws`` x dim), the per-draw statistics (``diverging``, ``energy``,
    ``num_steps``, ``potential_energy``), the adapted step size, the metric and the leapfrog
    steps of each warm-up draw.
    """
    kernel = bj_nuts.build_kernel()
    da_init, da_update, da_final = dual_averaging_adaptation(target_accept)
    dim = x0.shape[0]
    state = hmc.init(x0, logdensity)
    ends, final = schedule(warmup)
    start = Warm(state, fisher.from_curvature(logdensity, x0, _rank(dim)),
                 fisher.buffer_init(BUFFER, dim), da_init(FIRST_STEP), jnp.bool_(False))

    def step(carry: Warm, k, adapting: bool):
        size = jnp.exp(carry.step.log_step_size)
        state, info = kernel(k, carry.state, logdensity, size, carry.metric, max_tree_depth)
        buffer = fisher.buffer_add(carry.buffer, state.position, state.logdensity_grad,
                                   ~info.is_divergent) if adapting else carry.buffer
        # a trajectory that reached a non-finite energy has acceptance NaN: count it as a rejection,
        # or one NaN makes the step size NaN for the rest of the chain (measured: a chain started
        # at log density -3e4 on loss_to_loss diverged on all of its 1000 draws)
        accept = jnp.where(jnp.isfinite(info.acceptance_rate), info.acceptance_rate, 0.0)
        return (carry._replace(state=state, buffer=buffer, step=da_update(carry.step, accept)),
                info.num_integration_steps)

    def window(carry: Warm, inputs):
        keys, switch = inputs
        carry, steps = jax.lax.scan(lambda c, k: step(c, k, True), carry, keys)
        buffer = jax.tree.map(lambda a, b: jnp.where(switch, a, b), fisher.buffer_switch(carry.buffer),
                              carry.buffer)
        # unconditional: a batched condition would run both branches under vmap anyway
        estimated = fisher.estimate(buffer, _rank(dim), cutoff=cutoff)
        enough = (buffer.count >= 3) & fisher.finite(estimated)
        metric = jax.tree.map(lambda a, b: jnp.where(enough, a, b), estimated, carry.metric)
        first = enough & ~carry.changed  # the step size restarts when the metric first changes
        restarted = da_init(jnp.exp(carry.step.log_step_size))
        tuned = jax.tree.map(lambda a, b: jnp.where(first, a, b), restarted, carry.step)
        return Warm(carry.state, metric, buffer, tuned, carry.changed | enough), steps

    keys = jax.random.split(key, warmup + draws)
    adapt = len(ends) * UPDATE_EVERY
    warmed, warm_steps = start, [jnp.zeros(0, jnp.int32)]
    if ends:
        warmed, steps = jax.lax.scan(window, start, (keys[:adapt].reshape(len(ends), UPDATE_EVERY, -1),
                                                     jnp.asarray(ends)))
        warm_steps.append(steps.reshape(-1))
    if final:
        warmed, steps = jax.lax.scan(lambda c, k: step(c, k, False), warmed, keys[adapt:warmup])
        warm_steps.append(steps)
    step_size = da_final(warmed.step) if warmup else FIRST_STEP

    def draw(state, k):
        state, info = kernel(k, state, logdensity, step_size, warmed.metric, max_tree_depth)
        return state, (state.position, state.logdensity, info.is_divergent, info.energy,
                       info.num_integration_steps)

    _, (xs, logp, diverging, energy, steps) = jax.lax.scan(draw, warmed.state, keys[warmup:])
    stats = {"diverging": diverging, "energy": energy, "num_steps": steps, "potential_energy": -logp}
    return xs, stats, step_size, warmed.metric, jnp.concatenate(warm_steps)


def _runner(model, latent, chains: int, warmup: int, draws: int, target_accept: float,
            max_tree_depth: int):
    """``run(key, init, data, chain)``: chain ``chain`` of the fit with key ``key``; its start is
    ``init`` (constrained values of the ``latent`` sites) with the jitter of
    :func:`bayescale.inference.nuts.jitter` and its key the chain's share of ``key``, as in
    :func:`bayescale.inference.nuts.chain_program`, so a chain is the same whichever runs share
    a call."""

    def run(key, init, data, chain_id):
        k_init, k_run = jax.random.split(key)
        info = initialize_model(k_init, model, model_kwargs=data, dynamic_args=False)
        z = jitter(unconstrain_fn(model, (), data, {k: init[k] for k in latent}), k_init, chains,
                   energy_of(model, data))
        start = jax.tree.map(lambda v: v[chain_id], z) if chains > 1 else z
        x0, unravel = ravel_pytree(start)

        def logdensity(x):
            return -info.potential_fn(unravel(x))

        xs, stats, _, _, _ = chain(logdensity, x0, jax.random.split(k_run, chains)[chain_id],
                                warmup=warmup, draws=draws, target_accept=target_accept,
                                max_tree_depth=max_tree_depth)
        return jax.vmap(lambda x: info.postprocess_fn(unravel(x)))(xs), stats

    return run


def nuts_program(model, latent, *, chains: int, warmup: int, draws: int, target_accept: float,
                 dense: tuple = (), max_tree_depth: int = 10):
    """A whole run of ``model`` as one compiled program, like
    :func:`bayescale.inference.nuts.nuts_program`: ``program(key, init, data) -> (samples,
    extra)`` grouped by chain, the chains vectorised.  ``dense`` is unused: the metric finds
    its own correlated directions."""
    run = _runner(model, latent, chains, warmup, draws, target_accept, max_tree_depth)
    return jax.jit(lambda key, init, data: jax.vmap(lambda c: run(key, init, data, c))(jnp.arange(chains)))


def chain_program(model, latent, *, chains: int, warmup: int, draws: int, target_accept: float,
                  dense: tuple = (), backend: str = "cpu", max_tree_depth: int = 10):
    """Single chains of many fits side by side, one per device, like
    :func:`bayescale.inference.nuts.chain_program`: ``program(keys, chain, init, data)``."""
    run = _runner(model, latent, chains, warmup, draws, target_accept, max_tree_depth)
    return jax.pmap(lambda key, c, init, data: run(key, init, data, c), backend=backend)


# Programs kept for the next fit of the same model shape: tracing a whole run (the Hessian,
# NUTS, the metric estimate) took 2-3 s of Python per fit, half the set-up of a 1,500-row fit
# of 30 families.  Keyed like the programs that stacked fits share, so the data are arguments.
PROGRAMS: dict = {}
KEEP = 16


def _program(shape, make):
    if shape is None:
        return make()
    if shape not in PROGRAMS:
        while len(PROGRAMS) >= KEEP:
            PROGRAMS.pop(next(iter(PROGRAMS)))  # the oldest first
        PROGRAMS[shape] = make()
    return PROGRAMS[shape]


def sample(model, data: dict, init: dict, config: SamplerConfig, target_accept: float,
           dense: tuple = (), shape=None) -> Draws:
    """Run the chains of one fit from ``init`` (constrained values of the latent sites): one
    chain per host device when there are enough, else vectorised; the draws in the form
    :func:`bayescale.inference.sample.to_datatree` converts.  ``shape`` (hashable) says which
    models compile to the same program (:func:`bayescale.inference.sample.program_shape`): a
    fit of a shape seen before reuses its traced program; ``None`` traces anew."""
    name, dev = resolve_device(config.device)
    latent = latent_sites(model, data)
    options = {"chains": config.chains, "warmup": config.warmup, "draws": config.draws,
               "target_accept": target_accept, "max_tree_depth": config.max_tree_depth}
    key = jax.random.PRNGKey(config.seed)
    init = {k: jnp.asarray(init[k]) for k in latent}
    with jax.default_device(dev):
        if name == "cpu" and 1 < config.chains <= len(jax.local_devices(backend="cpu")):
            program = _program(None if shape is None else ("chains", shape, tuple(latent), str(dev),
                                                           tuple(sorted(options.items()))),
                               lambda: chain_program(model, latent, **options))
            n = config.chains
            samples, extra = program(jnp.stack([key] * n), jnp.arange(n),
                                     jax.tree.map(lambda v: jnp.stack([v] * n), init),
                                     jax.tree.map(lambda v: jnp.stack([jnp.asarray(v)] * n), data))
        else:
            program = _program(None if shape is None else ("vectorised", shape, tuple(latent), str(dev),
                                                           tuple(sorted(options.items()))),
                               lambda: nuts_program(model, latent, **options))
            samples, extra = program(key, init, data)
    return Draws(model, data, samples, extra, max_tree_depth=config.max_tree_depth)
