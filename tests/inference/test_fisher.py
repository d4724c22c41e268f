"""Fisher-divergence metric estimation (bayescale.inference.fisher) on Gaussians whose answer is known.

For a Gaussian with covariance S, draws have covariance S and log-density gradients S^-1; the
Fisher-optimal metric is S itself.  Draws are exact (no sampler), so every check is deterministic.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayescale.inference import fisher


def gaussian(cov: np.ndarray, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.multivariate_normal(np.zeros(len(cov)), cov, size=n)
    return x, -np.linalg.solve(cov, x.T).T


def fill(x, g, size=256):
    buffer = fisher.buffer_init(size, x.shape[1])
    for xi, gi in zip(x, g):
        buffer = fisher.buffer_add(buffer, jnp.asarray(xi), jnp.asarray(gi), True)
    return buffer


def dense(metric) -> np.ndarray:
    u, lam, sigma = (np.asarray(v) for v in (metric.U, metric.lam, metric.sigma))
    return np.diag(sigma) @ (np.eye(len(sigma)) + u @ np.diag(lam - 1) @ u.T) @ np.diag(sigma)


def preconditioned_condition(cov, metric) -> float:
    root = np.linalg.cholesky(np.linalg.inv(dense(metric)))
    return float(np.linalg.cond(root.T @ cov @ root))


def test_spd_mean_solves_x_b_x_equals_a():
    rng = np.random.default_rng(1)
    m1, m2 = rng.normal(size=(2, 5, 5))
    a, b = m1 @ m1.T + np.eye(5), m2 @ m2.T + np.eye(5)
    x = np.asarray(fisher.spd_mean(jnp.asarray(a), jnp.asarray(b)))
    np.testing.assert_allclose(x @ b @ x, a, rtol=1e-8, atol=1e-8)
    assert np.all(np.linalg.eigvalsh((x + x.T) / 2) > 0)


def test_diagonal_scales_are_exact_for_independent_coordinates():
    scales = np.geomspace(1e-3, 1e3, 6)
    x, g = gaussian(np.diag(scales**2), 400)
    metric = fisher.estimate(fill(x, g), rank=6)
    # sd(x)/sd(g) = scale^2 exactly up to sampling noise of two sd estimates from 400 draws
    np.testing.assert_allclose(np.asarray(metric.sigma) / scales, 1.0, rtol=0.1)
    assert np.all(np.asarray(metric.lam) == 1.0)  # nothing left for the low-rank part


def test_strong_correlations_enter_the_low_rank_part():
    scales = np.array([0.01, 10.0, 1.0, 1.0, 5.0])
    corr = np.eye(5)
    corr[0, 1] = corr[1, 0] = 0.999  # an amplitude and its exponent
    cov = np.diag(scales) @ corr @ np.diag(scales)
    x, g = gaussian(cov, 200)
    metric = fisher.estimate(fill(x, g), rank=5)
    kept = np.asarray(metric.lam) != 1.0
    assert kept.sum() >= 1
    # the diagonal alone leaves a condition number of about 2000; the estimate brings it near 1
    diag_only = metric._replace(lam=jnp.ones(5))
    assert preconditioned_condition(cov, diag_only) > 500
    assert preconditioned_condition(cov, metric) < 3


def test_unused_rank_columns_are_zero_with_eigenvalue_one():
    x, g = gaussian(np.eye(3), 50)
    metric = fisher.estimate(fill(x, g), rank=3, cutoff=1e6)
    assert np.all(np.asarray(metric.lam) == 1.0) and np.all(np.asarray(metric.U) == 0.0)


def test_the_buffer_keeps_the_last_rows_and_switches_windows():
    buffer = fisher.buffer_init(4, 1)
    for k in range(6):  # more rows than it holds: the oldest are overwritten
        buffer = fisher.buffer_add(buffer, jnp.asarray([float(k)]), jnp.asarray([0.0]), True)
    assert int(buffer.count) == 4 and int(buffer.background) == 6
    kept = sorted(np.asarray(buffer.draws)[np.asarray(fisher._mask(buffer))].ravel())
    assert kept == [2.0, 3.0, 4.0, 5.0]
    buffer = fisher.buffer_switch(fisher.buffer_switch(buffer))
    assert int(buffer.count) == 0 and int(buffer.background) == 0  # nothing arrived in between


@pytest.mark.parametrize("draw, keep", [([np.nan], True), ([1.0], False)])
def test_divergent_or_non_finite_points_are_not_kept(draw, keep):
    buffer = fisher.buffer_add(fisher.buffer_init(4, 1), jnp.asarray(draw), jnp.asarray([1.0]), keep)
    assert int(buffer.count) == 0


def test_estimate_compiles_once_for_any_fill():
    traced = jax.jit(lambda b: fisher.estimate(b, rank=2))
    for n in (3, 10, 30):
        x, g = gaussian(np.eye(2), n)
        assert np.isfinite(np.asarray(traced(fill(x, g, size=32)).sigma)).all()
    assert traced._cache_size() == 1


def test_a_transient_with_huge_gradients_gives_a_bounded_metric():
    """Draws of a chain sliding in from far out: gradients of 1e12 along a direction in which
    the draws do not spread.  Unbounded, its eigenvalues are 2e-8 and 9e7 (a nearly singular
    metric); bounded, the metric stays usable until the next update replaces it."""
    rng = np.random.default_rng(1)
    x, g = rng.normal(size=(20, 4)), rng.normal(size=(20, 4))
    d = np.array([1.0, -1.0, 0.0, 0.0]) / np.sqrt(2)
    x = x - np.outer(x @ d, d)
    g = g + np.outer(rng.normal(size=20) * 1e12, d)
    metric = fisher.estimate(fill(x, g), rank=4, cutoff=2.0)
    lam = np.asarray(metric.lam)
    assert bool(fisher.finite(metric))
    np.testing.assert_allclose(sorted(lam), [fisher.EIGEN_BOUNDS[0], 1.0, 1.0, fisher.EIGEN_BOUNDS[1]])


def test_a_metric_with_a_non_finite_entry_is_recognised():
    good = fisher.estimate(fill(*gaussian(np.eye(3), 50)), rank=2)
    assert bool(fisher.finite(good))
    assert not bool(fisher.finite(good._replace(sigma=good.sigma.at[0].set(np.nan))))
