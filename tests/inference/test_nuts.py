"""Tests for bayescale.inference.nuts: per-chain starts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from bayescale.inference.nuts import JITTER, jitter


def _wall(z):
    """Potential energy of N(0, 1) on x > 0.05: infinite below (as a sampled value at the
    reference has where the amplitude reaches 0)."""
    x = z["x"]
    return jnp.where(x > 0.05, 0.5 * x**2, jnp.inf)


def test_starts_with_zero_density_are_pulled_back_and_the_others_kept():
    z, key = {"x": jnp.asarray(0.06)}, jax.random.PRNGKey(0)
    free = jitter(z, key, 64)
    walled = jitter(z, key, 64, _wall)
    outside = np.asarray(free["x"]) <= 0.05
    assert outside.any() and (~outside).any()  # with sd 0.1 around 0.06, some starts fall outside
    assert np.all(np.isfinite(np.asarray(jax.vmap(lambda v: _wall({"x": v}))(walled["x"]))))
    # the same seed gives the same starts wherever the density is positive
    np.testing.assert_array_equal(np.asarray(walled["x"])[~outside], np.asarray(free["x"])[~outside])
    # pulled towards z, never past it
    moved = np.asarray(walled["x"])[outside]
    assert np.all((moved > 0.05) & (moved <= 0.06 + 1e-12))


def test_one_chain_starts_at_z():
    z = {"x": jnp.asarray(0.3)}
    assert jitter(z, jax.random.PRNGKey(1), 1, _wall) is z
    assert JITTER > 0


def test_starts_are_checked_only_where_a_wall_exists():
    """Only a model that samples an amplitude at its reference point has points of zero density."""
    from bayescale.inference.nuts import energy_of
    from bayescale.model import build
    from tests.test_model import _power_design

    s, data = _power_design(1)
    assert energy_of(build(s, {}, anchor=True), data) is None  # nothing anchored
    walled = build(s, {}, anchor=True, weak="a")
    assert walled.walled and np.isfinite(float(energy_of(walled, data)(
        {k: jnp.asarray(0.0) for k in ("E_z", "alpha_z", "sigma")} | {"a_at_ref": jnp.asarray(1.2)})))
