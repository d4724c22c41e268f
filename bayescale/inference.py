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

For many fits of one model shape (:func:`bayescale.fit_many`, SBC replicates)
:func:`map_program` and :func:`nuts_program` compile the MAP search and a whole
NUTS run once, with the data as arguments, so later data sets of the same
shape only run; :func:`chain_program` runs the single chains of several such
fits side by side, one per device.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from arviz_base.io_numpyro import NumPyroInferenceAdapter
from jax.flatten_util import ravel_pytree
from numpyro.infer import MCMC, NUTS, init_to_sample, init_to_value
from numpyro.infer.util import initialize_model, unconstrain_fn
from numpyro.optim import Adam

from .errors import FitError

N_STARTS = 8
MAP_STEPS = 2000
MAP_RATE = 0.02
JITTER = 0.1  # sd of the per-chain jitter around the MAP point, unconstrained scale
STATS = ("diverging", "energy", "num_steps", "potential_energy")  # kept in sample_stats
NUTS_MAX_TREE_DEPTH = 10  # NumPyro's default, which every sampler here keeps


def _map_search(model, key, data: dict):
    """Best of :data:`N_STARTS` Adam runs: (constrained values of every site, potential there)."""
    keys = jax.random.split(key, N_STARTS)
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
    best = jnp.argmin(jnp.where(jnp.isfinite(fs), fs, jnp.inf))
    return info.postprocess_fn(unravel(xs[best])), fs[best]


def map_program(model):
    """:func:`find_map` for ``model`` as one compiled program: ``program(key, data) -> (mode, potential)``.

    The data are arguments, so every data set of the same shapes reuses the program.
    """
    return jax.jit(lambda key, data: _map_search(model, key, data))


def checked_mode(mode: dict, potential) -> dict:
    """The mode as NumPy arrays, or a :class:`FitError` when no start reached a finite density."""
    if not np.isfinite(float(potential)):
        raise FitError(
            "no finite starting point was found: the law cannot produce the data under its priors. "
            "Check the units of the inputs and the outcome, and the law's priors."
        )
    return {k: np.asarray(v) for k, v in mode.items()}


def find_map(model, data: dict, seed: int) -> dict:
    """Posterior mode of the non-centred ``model`` from :data:`N_STARTS` random starts.

    Returns the constrained values of every site at the mode.  The set-up runs
    eagerly and only the Adam runs are compiled, as they always were for single
    fits: compiling the whole search (:func:`map_program`) moves the mode in its
    fourth digit, which is enough to change a fit's draws.
    """
    return checked_mode(*_map_search(model, jax.random.PRNGKey(seed), data))


def jitter(z: dict, key, chains: int) -> dict:
    """Per-chain starting points: ``z`` (unconstrained) plus N(0, :data:`JITTER`) noise.

    Chains that start apart make R-hat meaningful; one chain starts at ``z`` itself.
    """
    if chains == 1:
        return z
    keys = jax.random.split(key, len(z))
    return {k: v + JITTER * jax.random.normal(kk, (chains, *jnp.shape(v)))
            for kk, (k, v) in zip(keys, sorted(z.items()))}


def latent_sites(model, data: dict) -> list:
    """Names of the sampled, unobserved sites, found by tracing shapes only (nothing compiles)."""
    def sites(key):
        tr = numpyro.handlers.trace(numpyro.handlers.seed(model, key)).get_trace(**data)
        return {name: site["value"] for name, site in tr.items()
                if site["type"] == "sample" and not site["is_observed"]}

    return sorted(jax.eval_shape(sites, jax.random.PRNGKey(0)))


def nuts_program(model, latent, *, chains: int, warmup: int, draws: int, target_accept: float,
                 dense: tuple = ()):
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
    kernel = NUTS(model, dense_mass=[block] if block else False, target_accept_prob=target_accept)
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=chains,
                chain_method="vectorized", progress_bar=False, jit_model_args=True)

    def run(key, init, data):
        k_init, k_run = jax.random.split(key)
        z = unconstrain_fn(model, (), data, {k: init[k] for k in latent})
        mcmc.run(k_run, init_params=jitter(z, k_init, chains), extra_fields=STATS, **data)
        return mcmc.get_samples(group_by_chain=True), mcmc.get_extra_fields(group_by_chain=True)

    return jax.jit(run)


def chain_program(model, latent, *, chains: int, warmup: int, draws: int, target_accept: float,
                  dense: tuple = (), backend: str = "cpu"):
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
    kernel = NUTS(model, dense_mass=[block] if block else False, target_accept_prob=target_accept)
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=1, progress_bar=False,
                jit_model_args=True)

    def run(key, chain, init, data):
        k_init, k_run = jax.random.split(key)
        z = jitter(unconstrain_fn(model, (), data, {k: init[k] for k in latent}), k_init, chains)
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


# When device=None sends work to a GPU (if JAX sees one).  Measured (benchmarks/RESULTS.md,
# sections 5 and 5b): a fit of hundreds of rows took 2x the CPU's wall time on an H200, one of
# 1,000 rows 7x on an H100, and 100 stacked fits ran at 1.4x a 2-core CPU, slower than a
# many-core CPU's process pool.  So the GPU is chosen only where the CPU's cost per gradient
# makes a fit take hours (10^6 rows: 38 ms per gradient on 2 cores) or a stack is large enough
# to fill the device; both thresholds are beyond what has been measured on a GPU.
GPU_MIN_ROWS = 1_000_000
GPU_MIN_FITS = 1_000


def gpu_available() -> bool:
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:  # a CPU-only JAX has no GPU backend
        return False


def choose_device(device: str | None, rows: int, fits: int = 1, gpu: bool | None = None) -> str:
    """``device``, or for ``None`` (``"auto"``) the GPU when JAX sees one and the work is large.

    Large means at least :data:`GPU_MIN_ROWS` rows in a fit, or at least
    :data:`GPU_MIN_FITS` fits in one batch; everything else runs on the CPU.

    Examples
    --------
    >>> choose_device(None, rows=200_000, gpu=True), choose_device(None, rows=2_000_000, gpu=True)
    ('cpu', 'gpu')
    >>> choose_device(None, rows=500, fits=1280, gpu=True), choose_device(None, rows=10**7, gpu=False)
    ('gpu', 'cpu')
    >>> choose_device("gpu", rows=10, gpu=True)
    'gpu'
    """
    if device is not None and str(device).lower() != "auto":
        return str(device).lower()
    large = rows >= GPU_MIN_ROWS or fits >= GPU_MIN_FITS
    return "gpu" if large and (gpu_available() if gpu is None else gpu) else "cpu"


def resolve_device(device: str | None):
    """The JAX device to sample on; ``None`` means CPU (see :func:`choose_device` for "auto")."""
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
        jittered = jitter(z0, key_init, chains)
        dense_mass = [tuple(k for k in dense if k in z0)] if dense else False
        kernel = NUTS(model, dense_mass=dense_mass or False, target_accept_prob=target_accept)
        mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=chains,
                    chain_method=chain_method(name, chains), progress_bar=progress,
                    jit_model_args=True)
        mcmc.run(key_run, init_params=jittered, extra_fields=STATS, **data)
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


class Draws(NumPyroInferenceAdapter):
    """Draws of one :func:`nuts_program` run, in the form ``arviz_base.from_numpyro`` converts.

    ArviZ's own adapter wraps an :class:`~numpyro.infer.MCMC` object; a compiled
    program returns plain arrays, so this adapter hands them over instead and
    the DataTree is the same as a single fit's.
    """

    def __init__(self, model, data: dict, samples: dict, extra: dict):
        self._samples, self._extra = samples, extra
        self._max_tree_depth = NUTS_MAX_TREE_DEPTH
        chains, draws = np.shape(next(iter(samples.values())))[:2]
        super().__init__(None, model, (), data, (chains, draws))

    @property
    def sample_dims(self) -> list[str]:
        return ["chain", "draw"]

    def get_samples(self, seed=None, **kwargs) -> dict:
        return self._samples

    def get_sample_stats(self, **kwargs) -> dict:
        return self._extra
