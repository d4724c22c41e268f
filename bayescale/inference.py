"""NUTS through NumPyro, started from a MAP point so no grid of starting points is needed.

1. :func:`find_map` maximises the (non-centred) posterior density in the
   unconstrained space with Adam from several valid prior draws at once
   (vmapped, one compiled scan), and keeps the best.  Adam rather than BFGS:
   BFGS's line search stalls on the steep walls of saturating laws.  The
   non-centred form has no degenerate mode at zero family spread, unlike the
   centred one.
2. :func:`sample` starts each chain from that point plus a small jitter, and runs
   NUTS with a dense mass matrix over the law's parameters (diagonal over run
   effects, which may be many).
3. :func:`release_programs` drops the compiled programs once a fit is done.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer import MCMC, NUTS, init_to_sample, init_to_value
from numpyro.infer.util import initialize_model
from numpyro.optim import Adam

from .errors import FitError

N_STARTS = 8
MAP_STEPS = 2000
MAP_RATE = 0.02
JITTER = 0.1  # sd of the per-chain jitter around the MAP point, unconstrained scale
STATS = ("diverging", "energy", "num_steps", "potential_energy")  # kept in sample_stats


def find_map(model, data: dict, seed: int) -> dict:
    """Posterior mode of the non-centred ``model`` from :data:`N_STARTS` random starts.

    Returns the constrained values of every site at the mode.
    """
    keys = jax.random.split(jax.random.PRNGKey(seed), N_STARTS)
    info = initialize_model(keys, model, model_kwargs=data, init_strategy=init_to_sample)
    starts = info.param_info.z
    _, unravel = ravel_pytree(jax.tree.map(lambda v: v[0], starts))

    def loss(flat):
        value = info.potential_fn(unravel(flat))
        return jnp.where(jnp.isfinite(value), value, jnp.inf)

    grad = jax.value_and_grad(loss)
    adam = Adam(MAP_RATE)

    def solve(z):
        def step(state, _):
            value, g = grad(adam.get_params(state))
            g = jnp.where(jnp.isfinite(g), g, 0.0)
            return adam.update(g, state), value

        state, _ = jax.lax.scan(step, adam.init(ravel_pytree(z)[0]), None, length=MAP_STEPS)
        x = adam.get_params(state)
        return x, loss(x)

    xs, fs = jax.jit(jax.vmap(solve))(starts)
    fs = np.asarray(fs)
    if not np.isfinite(fs).any():
        raise FitError(
            "no finite starting point was found: the law cannot produce the data under its priors. "
            "Check the units of the inputs and the outcome, and the law's priors."
        )
    flat = xs[int(np.nanargmin(np.where(np.isfinite(fs), fs, np.nan)))]
    return info.postprocess_fn(unravel(flat))


def chain_method(device: str, chains: int) -> str:
    """Vectorized on GPU; parallel over host devices on CPU when there are enough."""
    if device == "gpu":
        return "vectorized"
    return "parallel" if chains > 1 and len(jax.devices("cpu")) >= chains else "sequential"


def resolve_device(device: str | None):
    """The JAX device to sample on; ``None`` means CPU (the default)."""
    device = (device or "cpu").lower()
    if device not in ("cpu", "gpu"):
        raise FitError(f"device={device!r}; choose 'cpu' or 'gpu'.")
    try:
        return device, jax.devices(device)[0]
    except RuntimeError:
        raise FitError(
            "device='gpu' was requested but JAX sees no GPU; install the CUDA build "
            "(pip install 'bayescale[cuda]') or use device='cpu'."
        ) from None


def sample(model, data: dict, init: dict, *, chains: int, warmup: int, draws: int, seed: int,
           device: str | None = None, progress: bool | None = None, dense: tuple = (),
           target_accept: float = 0.95) -> MCMC:
    """Run NUTS; returns the NumPyro :class:`~numpyro.infer.MCMC` object."""
    name, dev = resolve_device(device)
    if progress is None:
        progress = sys.stderr.isatty() and not os.environ.get("CI")
    key_init, key_run = jax.random.split(jax.random.PRNGKey(seed))
    with jax.default_device(dev):
        info = initialize_model(key_init, model, model_kwargs=data,
                                init_strategy=init_to_value(values=init))
        z0 = info.param_info.z
        keys = jax.random.split(key_init, len(z0))
        jittered = {
            k: v + JITTER * jax.random.normal(kk, (chains, *jnp.shape(v)))
            for kk, (k, v) in zip(keys, sorted(z0.items()))
        }
        dense_mass = [tuple(k for k in dense if k in z0)] if dense else False
        kernel = NUTS(model, dense_mass=dense_mass or False, target_accept_prob=target_accept)
        mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=chains,
                    chain_method=chain_method(name, chains), progress_bar=progress,
                    jit_model_args=True)
        mcmc.run(key_run, init_params=jittered if chains > 1 else z0, extra_fields=STATS, **data)
    return mcmc


def release_programs() -> None:
    """Drop the programs JAX compiled and keeps in memory.

    Every fit compiles programs for its own model and data shapes, which no later
    fit reuses, yet JAX keeps them for the life of the process: about 700 memory
    maps per fit, so a process that fits ~90 times (a backtest, a test suite)
    reaches Linux's default limit of 65,530 maps and aborts with "LLVM ERROR:
    Unable to allocate section memory".  The on-disk compilation cache, when on
    (see ``bayescale._runtime``), keeps the programs, so an identical later fit
    still compiles fast.
    """
    jax.clear_caches()
