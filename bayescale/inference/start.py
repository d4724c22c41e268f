"""The chains' starting point: the posterior mode from several random starts, no grid.

:func:`find_map` maximises the (non-centred) posterior density in the
unconstrained space with Adam from several valid prior draws at once (vmapped,
one compiled scan), and keeps the best.  Adam rather than BFGS: BFGS's line
search stalls on the steep walls of saturating laws.  The non-centred form has
no degenerate mode at zero family spread, unlike the centred one.
:func:`map_program` compiles the whole search once per model shape, with the
data as arguments, for many fits of one shape.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer import init_to_sample
from numpyro.infer.util import constrain_fn, initialize_model, potential_energy, unconstrain_fn
from numpyro.optim import Adam

from ..errors import FitError
from ..laws.anchor import WEAK, clear, weakness
from ..model import ANCHOR, amplitude_candidates

N_STARTS = 8
MAP_STEPS = 2000
MAP_RATE = 0.02


def _solver(model, unravel):
    """``solve(starts, data) -> (xs, potentials)``: Adam from each start (flat, unconstrained)
    on ``model``'s potential energy, the starts vectorised, the data an argument."""

    def solve(z, data):
        def loss(flat):
            value = potential_energy(model, (), data, unravel(flat))
            return jnp.where(jnp.isfinite(value), value, jnp.inf)

        grad = jax.value_and_grad(loss)
        adam = Adam(MAP_RATE)

        def step(state, _):
            value, g = grad(adam.get_params(state))
            g = jnp.where(jnp.isfinite(g), g, 0.0)
            return adam.update(g, state), value

        state, _ = jax.lax.scan(step, adam.init(z), None, length=MAP_STEPS)
        x = adam.get_params(state)
        return x, loss(x)

    return jax.jit(jax.vmap(solve, in_axes=(0, None)))


def _map_search(model, key, data: dict, shape=None):
    """Best of :data:`N_STARTS` Adam runs: (constrained values of every site, potential there).

    ``shape`` names the model's shape (:func:`bayescale.inference.sample.program_shape`):
    fits of one shape share the compiled Adam runs (tracing them took 0.3-0.5 s of the
    search's 1.0-1.3 s per fit on ``loss_to_loss``); the starts are drawn anew, eagerly,
    for every fit.
    """
    keys = jax.random.split(key, N_STARTS)
    info = initialize_model(keys, model, model_kwargs=data, init_strategy=init_to_sample)
    starts = info.param_info.z
    _, unravel = ravel_pytree(jax.tree.map(lambda v: v[0], starts))
    solve = _compiled(None if shape is None else ("map", shape), lambda: _solver(model, unravel))
    xs, fs = solve(jax.vmap(lambda z: ravel_pytree(z)[0])(starts), data)
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


def find_map(model, data: dict, seed: int, shape=None) -> dict:
    """Posterior mode of the non-centred ``model`` from :data:`N_STARTS` random starts.

    Returns the constrained values of every site at the mode.  The starts are drawn eagerly
    and the Adam runs compiled, once per ``shape`` (as :func:`_map_search`): compiling the
    whole search (:func:`map_program`) cost 6 s for a new shape on ``loss_to_loss``, against
    1.4 s.
    """
    return checked_mode(*_map_search(model, jax.random.PRNGKey(seed), data, shape))


PROGRAMS: dict = {}  # compiled searches, Hessians and anchors by model shape, for the many fits of one shape
KEEP = 16  # programs kept, the most recently used (a sweep over many shapes would grow it)


def _compiled(key, make):
    if key is None:
        return make()
    program = PROGRAMS.pop(key, None) or make()
    PROGRAMS[key] = program  # most recent last
    while len(PROGRAMS) > KEEP:
        PROGRAMS.pop(next(iter(PROGRAMS)))
    return program


def _by_site(unravel, flat) -> dict:
    """Site name -> list of values, from a flat vector over the unconstrained sites."""
    return {k: np.atleast_1d(np.asarray(v)).ravel().tolist() for k, v in unravel(jnp.asarray(flat)).items()}


def laplace_covariance(model, data: dict, mode: dict, latent, key=None):
    """``(z, cov)``: ``mode``'s unconstrained ``latent`` values and their covariance in the
    Laplace approximation there (the inverse Hessian of the potential energy), ``cov``
    ``None`` where the Hessian is not positive definite (no proper curvature: as weak as
    it gets).  ``key`` names the model's shape: fits of one shape share one compiled program.
    """
    z = unconstrain_fn(model, (), data, {k: mode[k] for k in latent})
    flat, unravel = ravel_pytree(z)
    program = _compiled(None if key is None else ("hessian", key), lambda: jax.jit(
        lambda flat, data: jax.hessian(lambda f: potential_energy(model, (), data, unravel(f)))(flat)))
    hessian = np.asarray(program(flat, data))
    try:
        root = np.linalg.inv(np.linalg.cholesky(hessian))  # fails where not positive definite
    except np.linalg.LinAlgError:
        return z, None
    cov = root.T @ root
    return z, (cov if np.all(np.isfinite(cov)) else None)


def laplace_sd(model, data: dict, mode: dict, latent, key=None) -> dict:
    """Sd of each ``latent`` site (unconstrained) in the Laplace approximation at ``mode``
    (:func:`laplace_covariance`); ``inf`` everywhere where it has none."""
    z, cov = laplace_covariance(model, data, mode, latent, key)
    flat, unravel = ravel_pytree(z)
    return _by_site(unravel, np.full(flat.shape, np.inf) if cov is None else np.sqrt(np.diag(cov)))


def weak_amplitude(s, centring: dict, model, data: dict, mode: dict, latent, key=None) -> str | None:
    """The amplitude a fit samples at the reference point, or ``None``.

    Of the law's amplitudes (:func:`bayescale.model.amplitude_candidates`), the one whose
    exponent the data leave the most weakly identified, if above
    :data:`bayescale.laws.anchor.WEAK`, and only if its value at the reference stays
    clear of the wall where the amplitude reaches 0 (:func:`bayescale.laws.anchor.clear`),
    both in the Laplace approximation at ``mode`` (of the plain ``model``).  Costs one
    Hessian; ``key`` as for :func:`laplace_covariance`.
    """
    found = amplitude_candidates(s, centring)
    if not found:
        return None
    z, cov = laplace_covariance(model, data, mode, latent, key)
    if cov is None:
        return None  # no curvature to judge the wall by
    flat, unravel = ravel_pytree(z)
    sd_of = _by_site(unravel, np.sqrt(np.diag(cov)))
    scored = [(weakness(a, s.law, sd_of), a) for a in found]
    score, anchor = max(scored, key=lambda pair: pair[0])
    if not score > WEAK:
        return None
    site = anchor.parameter + ANCHOR
    values = _compiled(None if key is None else ("anchor", site, key), lambda: jax.jit(jax.value_and_grad(
        lambda f, data: jnp.sum(constrain_fn(model, (), data, unravel(f), return_deterministic=True)[site]),
        )))
    # the site is one value per family, each a function of its own family's parameters (and
    # shared ones): the sd of their sum bounds each's; their values, family by family
    m = np.atleast_1d(np.asarray(constrain_fn(model, (), data, z, return_deterministic=True)[site]))
    _, grad = values(flat, data)
    sd = float(np.sqrt(max(np.asarray(grad) @ cov @ np.asarray(grad), 0.0)))
    return anchor.parameter if clear(m, _wall(anchor, mode, s), sd) else None


def _wall(anchor, mode: dict, s) -> np.ndarray:
    """The site's value where the amplitude reaches 0: the log of the rest of the law at the
    reference, per family (``-inf`` where the rest is not positive: no wall)."""
    values = {p: np.broadcast_to(np.asarray(mode[p], dtype=float), (s.n_families,)) for p in s.law.parameters}
    ones = {k: np.ones(s.n_families) for k, _ in s.refs}
    rest = np.asarray(anchor.predictor(values | ones | {anchor.parameter: np.zeros(s.n_families)}, np))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rest > 0, np.log(np.where(rest > 0, rest, 1.0)), -np.inf)
