"""The NumPyro NUTS backend: chains started from the MAP point plus a small jitter.

:func:`sample` runs NUTS with a dense mass matrix over the law's parameters
(diagonal over run effects, which may be many).  For many fits of one model
shape (stacked fits, SBC replicates) :func:`nuts_program` compiles a whole
NUTS run once, with the data as arguments, so later data sets of the same
shape only run; :func:`chain_program` runs the single chains of several such
fits side by side, one per device.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from arviz_base.io_numpyro import NumPyroInferenceAdapter
from numpyro.infer import MCMC, NUTS, init_to_value
from numpyro.infer.util import initialize_model, potential_energy, unconstrain_fn

from .config import SamplerConfig
from .device import resolve_device
from .progress import Chains, current

JITTER = 0.1  # sd of the per-chain jitter around the MAP point, unconstrained scale
REPORTS = True  # sample() reports its own progress (bayescale.inference.sample)
STATS = ("diverging", "energy", "num_steps", "potential_energy")  # kept in sample_stats


SHRINK = (1.0, 0.5, 0.25, 0.125, 0.0)  # jitter scales tried in turn for a start with zero density


def jitter(z: dict, key, chains: int, potential=None) -> dict:
    """Per-chain starting points: ``z`` (unconstrained) plus N(0, :data:`JITTER`) noise.

    Chains that start apart make R-hat meaningful; one chain starts at ``z`` itself.
    With ``potential`` (unconstrained values -> potential energy), a chain whose
    jittered start has zero density (a law's value at the reference sampled in place
    of an amplitude has a wall where the amplitude reaches 0,
    :mod:`bayescale.laws.anchor`) has its jitter shrunk by :data:`SHRINK` until the
    density is positive; NUTS would otherwise hold it there.  Starts with positive
    density are unchanged, so the same seed gives the same draws.
    """
    if chains == 1:
        return z
    keys = jax.random.split(key, len(z))
    noise = {k: JITTER * jax.random.normal(kk, (chains, *jnp.shape(v)))
             for kk, (k, v) in zip(keys, sorted(z.items()))}
    if potential is None:
        return {k: z[k] + noise[k] for k in noise}

    def finite(scale):
        energy = jax.vmap(lambda c: potential({k: z[k] + scale * noise[k][c] for k in noise}))
        return jnp.isfinite(energy(jnp.arange(chains)))

    ok = jnp.stack([finite(s) for s in SHRINK])
    scale = jnp.asarray(SHRINK)[jnp.argmax(ok, axis=0)]  # the first finite one (none: 1.0, as before)
    return {k: z[k] + scale.reshape(chains, *([1] * jnp.ndim(z[k]))) * noise[k] for k in noise}


def energy_of(model, data: dict):
    """Unconstrained values -> potential energy of ``model`` on ``data``, for :func:`jitter`;
    ``None`` where every point has positive density (the model is not ``walled``,
    :func:`bayescale.model.build`), so no start needs checking: evaluated eagerly, the
    check cost 0.85 s per fit of ``loss_to_loss``."""
    if not getattr(model, "walled", False):
        return None
    return lambda params: potential_energy(model, (), data, params)


def latent_sites(model, data: dict) -> list:
    """Names of the sampled, unobserved sites, found by tracing shapes only (nothing compiles)."""
    def sites(key):
        tr = numpyro.handlers.trace(numpyro.handlers.seed(model, key)).get_trace(**data)
        return {name: site["value"] for name, site in tr.items()
                if site["type"] == "sample" and not site["is_observed"]}

    return sorted(jax.eval_shape(sites, jax.random.PRNGKey(0)))


def nuts_program(model, latent, *, chains: int, warmup: int, draws: int, target_accept: float,
                 dense: tuple = (), max_tree_depth: int = 10):
    """A whole NUTS run of ``model`` as one compiled program, reused by every data set of its shape.

    ``program(key, init, data) -> (samples, extra)``, both grouped by chain:
    ``init`` holds constrained values of the ``latent`` sites (a MAP point, or
    SBC's true draw), jittered per chain (:func:`jitter`).  Chains are
    vectorised inside the program: "parallel" (pmap) would compile again on
    every run.  Calling ``MCMC.run`` per data set from Python also reuses the
    compiled sampler but re-runs the model set-up eagerly, op by op: 1.9 s per
    data set of a 12-row power law on the 2-core development machine, against
    0.1 s jitted whole.  Batching data sets with ``jax.vmap`` was slower still
    on that CPU (1.7 s per data set): every NUTS iteration waits for the longest
    trajectory of the batch.
    """
    block = tuple(k for k in latent if k in dense)
    kernel = NUTS(model, dense_mass=[block] if block else False, target_accept_prob=target_accept,
                  max_tree_depth=max_tree_depth)
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=chains,
                chain_method="vectorized", progress_bar=False, jit_model_args=True)

    def run(key, init, data):
        k_init, k_run = jax.random.split(key)
        z = unconstrain_fn(model, (), data, {k: init[k] for k in latent})
        start = jitter(z, k_init, chains, energy_of(model, data))
        mcmc.run(k_run, init_params=start, extra_fields=STATS, **data)
        return mcmc.get_samples(group_by_chain=True), mcmc.get_extra_fields(group_by_chain=True)

    return jax.jit(run)


def chain_program(model, latent, *, chains: int, warmup: int, draws: int, target_accept: float,
                  dense: tuple = (), backend: str = "cpu", max_tree_depth: int = 10):
    """Single NUTS chains of many fits of ``model``, side by side, one chain per device.

    ``program(keys, chain, init, data) -> (samples, extra)``: run ``r`` is chain
    ``chain[r]`` (of ``chains``) of the fit with key ``keys[r]``, started from its
    ``init`` (constrained MAP values of the ``latent`` sites) with the jitter of
    :func:`jitter`, so a fit's chains are the same whichever runs share a call;
    every argument and result has a leading axis of runs, at most as long as
    ``backend`` has devices.  Through ``jax.pmap`` each device follows its own
    trajectory, where :func:`nuts_program`'s vectorised chains wait for the longest
    one at every iteration on one core; on CPU, JAX's host devices
    (``bayescale._runtime``) spread the runs over the cores.  One compiled program
    per number of runs.
    """
    block = tuple(k for k in latent if k in dense)
    kernel = NUTS(model, dense_mass=[block] if block else False, target_accept_prob=target_accept,
                  max_tree_depth=max_tree_depth)
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=1, progress_bar=False,
                jit_model_args=True)

    def run(key, chain, init, data):
        k_init, k_run = jax.random.split(key)
        z = jitter(unconstrain_fn(model, (), data, {k: init[k] for k in latent}), k_init, chains,
                   energy_of(model, data))
        start = jax.tree.map(lambda v: v[chain], z) if chains > 1 else z
        mcmc.run(jax.random.split(k_run, chains)[chain], init_params=start, extra_fields=STATS, **data)
        return mcmc.get_samples(), mcmc.get_extra_fields()

    return jax.pmap(run, backend=backend)


def side_by_side(backend: str = "cpu") -> int:
    """How many runs :func:`chain_program` can place on separate devices of ``backend``."""
    return len(jax.local_devices(backend=backend))


def chain_method(device: str, chains: int) -> str:
    """Vectorized on GPU; parallel over host devices on CPU when there are enough."""
    if device == "gpu":
        return "vectorized"
    return "parallel" if chains > 1 and len(jax.devices("cpu")) >= chains else "sequential"


class Reporting(NUTS):
    """NUTS that tells the host how far its chain is: every ``every`` iterations and at every
    divergent transition it calls ``tick(i, diverging)`` (:meth:`bayescale.inference.progress.Chains.tick`).

    The callback only reads the new state, so the draws are those of plain NUTS.  Not for
    vectorised chains: under ``jax.vmap`` the condition would be batched and the callback
    would run at every iteration.
    """

    def __init__(self, *args, tick, every: int, **kwargs):
        super().__init__(*args, **kwargs)
        self._tick, self._every = tick, every

    def sample(self, state, model_args, model_kwargs):
        state = super().sample(state, model_args, model_kwargs)
        due = (state.i % self._every == 0) | state.diverging
        # only the two scalars the host needs enter the branch
        jax.lax.cond(due, lambda i, d: jax.debug.callback(self._tick, i, d), lambda i, d: None,
                     state.i, state.diverging)
        return state


def sample(model, data: dict, init: dict, config: SamplerConfig, target_accept: float,
           dense: tuple = ()) -> MCMC:
    """Run NUTS from ``init`` (constrained values of the latent sites); returns the NumPyro
    :class:`~numpyro.infer.MCMC` object.  Progress (``config.progress``) goes to the reporter of
    :func:`bayescale.inference.progress.current`: a bar per iteration, or a line per phase."""
    name, dev = resolve_device(config.device)
    method = chain_method(name, config.chains)
    reporter = current(config.progress)
    key_init, key_run = jax.random.split(jax.random.PRNGKey(config.seed))
    with jax.default_device(dev), Chains(reporter, config.chains, config.warmup, config.draws) as shown:
        info = initialize_model(key_init, model, model_kwargs=data,
                                init_strategy=init_to_value(values=init))
        z0 = info.param_info.z
        jittered = jitter(z0, key_init, config.chains, energy_of(model, data))
        dense_mass = [tuple(k for k in dense if k in z0)] if dense else False
        # NUTS looks for a valid point with its init strategy even when given starts: from the
        # start's own values, so a law sampled at its reference point (whose amplitude has a
        # wall, where random points often fall) finds one
        options = {"dense_mass": dense_mass or False, "target_accept_prob": target_accept,
                   "max_tree_depth": config.max_tree_depth, "init_strategy": init_to_value(values=init)}
        if reporter.enabled and method != "vectorized":
            kernel = Reporting(model, tick=shown.tick, every=shown.every, **options)
        else:  # vectorised chains: the lines of the start and the end only
            kernel = NUTS(model, **options)
        mcmc = MCMC(kernel, num_warmup=config.warmup, num_samples=config.draws, num_chains=config.chains,
                    chain_method=method, progress_bar=False, jit_model_args=True)
        mcmc.run(key_run, init_params=jittered, extra_fields=STATS, **data)
        shown.divergences = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    return mcmc


class Draws(NumPyroInferenceAdapter):
    """Draws of one :func:`nuts_program` run, in the form ``arviz_base.from_numpyro`` converts.

    ArviZ's own adapter wraps an :class:`~numpyro.infer.MCMC` object; a compiled
    program returns plain arrays, so this adapter hands them over instead and
    the DataTree is the same as a single fit's.
    """

    def __init__(self, model, data: dict, samples: dict, extra: dict, max_tree_depth: int = 10):
        self._samples, self._extra = samples, extra
        self._max_tree_depth = max_tree_depth
        chains, draws = np.shape(next(iter(samples.values())))[:2]
        super().__init__(None, model, (), data, (chains, draws))

    @property
    def sample_dims(self) -> list[str]:
        return ["chain", "draw"]

    def get_samples(self, seed=None, **kwargs) -> dict:
        return self._samples

    def get_sample_stats(self, **kwargs) -> dict:
        return self._extra
