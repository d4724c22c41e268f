"""Tests for bayescale.inference.start: the MAP search finds known modes, refuses a non-finite
potential, and is deterministic in its seed."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
import pytest
from numpyro.infer.util import potential_energy, unconstrain_fn
from scipy.optimize import brentq

import bayescale as bs
from bayescale.errors import FitError
from bayescale.inference import start
from bayescale.inference.start import _map_search, checked_mode, find_map
from bayescale.model import NOISE_SCALE, ModelConfig, build, law_mean
from bayescale.result.fitting import columns, setup

PRIOR_SD = 10.0
Y = np.random.default_rng(0).normal(3.0, 1.0, 20)


def conjugate(y=None):
    """mu ~ N(0, 10), y_i ~ N(mu, 1); s ~ LogNormal(0, 1) apart from the data."""
    mu = numpyro.sample("mu", dist.Normal(0.0, PRIOR_SD))
    numpyro.sample("s", dist.LogNormal(0.0, 1.0))
    with numpyro.plate("obs", y.shape[0]):
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def test_find_map_recovers_a_conjugate_mode():
    """The posterior of mu is normal with mean sum(y) / (n + 1/10^2); the mode of log s (the search runs
    on the unconstrained scale) is 0. Tolerance: a thousandth of mu's posterior sd."""
    mode = find_map(conjugate, {"y": jnp.asarray(Y)}, seed=0)
    n = len(Y)
    exact = Y.sum() / (n + PRIOR_SD**-2)
    post_sd = (n + PRIOR_SD**-2) ** -0.5
    assert set(mode) == {"mu", "s"}
    assert all(isinstance(v, np.ndarray) for v in mode.values())
    assert abs(float(mode["mu"]) - exact) < 1e-3 * post_sd
    assert abs(np.log(float(mode["s"]))) < 1e-3  # log s ~ N(0, 1): a thousandth of its sd


@pytest.fixture(scope="module")
def ladder():
    df = bs.datasets.simulate("power", families=1, seeds=1, seed=0)
    law, design, s, data = setup(df, "power", columns(y="loss", x="x"), None, ModelConfig())
    return law, s, data


@pytest.fixture(scope="module")
def ladder_search(ladder):
    """The search's raw result with seed 0: (mode, potential)."""
    _, s, data = ladder
    return _map_search(build(s, {}), jax.random.PRNGKey(0), data)


@pytest.fixture(scope="module")
def ladder_mode(ladder_search):
    return checked_mode(*ladder_search)


def test_power_ladder_mode_is_finite_with_positive_noise(ladder, ladder_search, ladder_mode):
    law, s, data = ladder
    potential = ladder_search[1]
    assert np.isfinite(float(potential))
    assert float(ladder_mode["sigma"]) > 0
    for name in law.parameters:  # natural-scale values per family, finite
        assert np.shape(ladder_mode[name]) == (1,)
        assert np.isfinite(ladder_mode[name]).all()
    # the potential returned is the model's at the mode, and no step away from it lowers it
    model = build(s, {})
    z = unconstrain_fn(model, (), data, {k: ladder_mode[k] for k in ("E_z", "a_z", "alpha_z", "sigma")})
    at_mode = float(potential_energy(model, (), data, z))
    assert at_mode == pytest.approx(float(potential), rel=1e-9)
    for name in z:
        for step in (-1e-2, 1e-2):
            moved = dict(z, **{name: z[name] + step})
            assert float(potential_energy(model, (), data, moved)) > at_mode, (name, step)


def test_power_ladder_noise_at_the_mode_solves_its_own_equation(ladder, ladder_mode):
    """Given the law's parameters at the mode, the unconstrained log density in sigma is
    -(n - 1) log sigma - RSS / (2 sigma^2) - sigma^2 / (2 * 0.1^2), stationary where
    -(n - 1) / sigma + RSS / sigma^3 - sigma / 0.1^2 = 0. The mode's sigma must solve it to a
    thousandth of sigma's own posterior sd (about sigma / sqrt(2 (n - 1)))."""
    law, s, data = ladder
    values = {k: jnp.asarray(ladder_mode[k]) for k in law.parameters}
    mu = law_mean(law, {k: v[data["family_idx"]] for k, v in values.items()}, data["inputs"])
    residual = np.asarray(data["y_link"] - jnp.log(mu))
    n, rss = residual.size, float((residual**2).sum())

    def slope(sigma):
        return -(n - 1) / sigma + rss / sigma**3 - sigma / NOISE_SCALE**2

    exact = brentq(slope, 1e-6, 1.0, xtol=1e-14)
    sigma = float(ladder_mode["sigma"])
    assert abs(sigma - exact) < 1e-3 * exact / np.sqrt(2 * (n - 1))


def test_same_seed_same_mode(ladder, ladder_mode):
    """``find_map`` with seed 0 (a new model function, compiled again) gives the search's mode bit for bit."""
    _, s, data = ladder
    again = find_map(build(s, {}), data, seed=0)
    assert set(again) == set(ladder_mode)
    for k in ladder_mode:
        np.testing.assert_array_equal(again[k], ladder_mode[k])


@pytest.mark.parametrize("potential", [np.inf, -np.inf, np.nan, jnp.asarray(np.inf)])
def test_checked_mode_refuses_a_non_finite_potential(potential):
    with pytest.raises(FitError, match="no finite starting point"):
        checked_mode({"mu": jnp.zeros(2)}, potential)


def test_checked_mode_returns_numpy_arrays():
    mode = checked_mode({"mu": jnp.arange(3.0), "s": jnp.asarray(2.0)}, jnp.asarray(-1.5))
    assert all(type(v) is np.ndarray for v in mode.values())
    np.testing.assert_array_equal(mode["mu"], [0.0, 1.0, 2.0])
    assert float(mode["s"]) == 2.0



def test_laplace_sd_of_a_gaussian_posterior_is_exact():
    """Normal prior and likelihood: the Laplace approximation is the posterior itself."""
    from bayescale.inference.start import laplace_sd

    y = jnp.asarray(Y)
    mode = {"mu": float(Y.sum() / (len(Y) + PRIOR_SD**-2)), "s": 1.0}
    sd = laplace_sd(conjugate, {"y": y}, mode, ["mu", "s"])
    assert sd["mu"][0] == pytest.approx((len(Y) + PRIOR_SD**-2) ** -0.5, rel=1e-9)
    assert sd["s"][0] == pytest.approx(1.0, rel=1e-9)  # log s ~ N(0, 1), untouched by the data


def test_laplace_sd_is_infinite_without_curvature():
    from bayescale.inference.start import laplace_sd

    def flat(y=None):
        numpyro.sample("mu", dist.Normal(0.0, 1.0))
        numpyro.factor("saddle", numpyro.sample("v", dist.Normal(0.0, 1.0)) ** 2)  # cancels v's prior

    sd = laplace_sd(flat, {}, {"mu": 0.0, "v": 0.0}, ["mu", "v"])
    assert all(np.isinf(v) for vs in sd.values() for v in vs)


def _power_curve(decades: float, noise: float, alpha: float):
    from bayescale.inference.nuts import latent_sites
    from bayescale.model import choose_centring
    from bayescale.result.fitting import DEFAULT_MODEL

    rng = np.random.default_rng(0)
    x = np.geomspace(1e6, 1e6 * 10**decades, 15)
    y = (2.0 + (x / (1e6 * 10 ** (decades / 2))) ** -alpha) * np.exp(rng.normal(0, noise, 15))
    cols = {"y": "loss", "x": "x", "group": None, "run": None, "se": None}
    _, design, s, data = setup(pd.DataFrame({"x": x, "loss": y}), "power", cols, None,
                               DEFAULT_MODEL)
    plain = build(s, {})
    mode = find_map(plain, data, 0)
    return s, choose_centring(s, design, float(mode["sigma"])), plain, data, mode, latent_sites(plain, data)


def test_weak_amplitude_follows_how_well_the_data_fix_the_exponent():
    """Four decades at 0.3% noise fix alpha (Laplace sd of log alpha 0.006, prior 0.5); one
    decade at 1% leaves it to the prior (0.37): only there is the amplitude anchored."""
    from bayescale.inference.start import laplace_sd, weak_amplitude

    sharp = _power_curve(4, 0.003, 0.3)
    assert laplace_sd(*sharp[2:])["alpha_z"][0] < 0.05
    assert weak_amplitude(*sharp) is None
    loose = _power_curve(1, 0.01, 0.1)
    assert laplace_sd(*loose[2:])["alpha_z"][0] > 0.25
    assert weak_amplitude(*loose) == "a"


def test_fits_of_one_shape_share_the_compiled_search_and_find_the_same_mode(ladder, ladder_mode):
    """A search given a shape compiles its Adam runs once; the mode is the unshaped search's."""
    _, s, data = ladder
    key = ("test shape", id(data))
    first = find_map(build(s, {}), data, seed=0, shape=key)
    program = start.PROGRAMS[("map", key)]
    again = find_map(build(s, {}), data, seed=0, shape=key)
    assert start.PROGRAMS[("map", key)] is program
    for k in ladder_mode:
        np.testing.assert_array_equal(first[k], ladder_mode[k])
        np.testing.assert_array_equal(again[k], ladder_mode[k])
