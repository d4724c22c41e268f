"""The "lowrank" backend (bayescale.inference.lowrank): its warm-up schedule, one chain on a known
Gaussian, and a fit through the one sampling interface."""

from __future__ import annotations

import arviz_base as azb
import arviz_stats as azs
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayescale as bs
from bayescale.inference import fisher, lowrank


def test_schedule_windows_double_early_then_stay_long():
    ends, final = lowrank.schedule(1000)
    assert final == 150 and len(ends) == 85  # 850 adaptation draws in windows of 10
    switches = [10 * (k + 1) for k, s in enumerate(ends) if s]
    assert switches[:4] == [10, 30, 70, 150]  # windows of 10, 20, 40, 80 draws in the first 30%
    assert np.all(np.diff(switches[3:]) == 80)  # then every 80
    assert switches[-1] + 80 <= 850  # none that leaves less than a window before the final one


def test_first_metric_reads_the_curvature_at_the_start():
    scales = jnp.array([0.01, 0.5, 1.0, 30.0])
    metric = fisher.from_curvature(lambda x: -0.5 * jnp.sum((x / scales) ** 2), jnp.ones(4), 2)
    # conditional sds of a Gaussian are its scales; the flat-ish direction is capped at 1
    np.testing.assert_allclose(metric.sigma, [0.01, 0.5, 1.0, 1.0], rtol=1e-9)
    saddle = fisher.from_curvature(lambda x: 0.5 * jnp.sum(x**2), jnp.ones(3), 1)
    np.testing.assert_array_equal(saddle.sigma, np.ones(3))  # no positive curvature: variance 1


def test_one_chain_samples_a_correlated_gaussian():
    scales = np.array([0.01, 1.0, 100.0, 1.0])
    corr = np.eye(4)
    corr[0, 1] = corr[1, 0] = 0.99
    cov = np.diag(scales) @ corr @ np.diag(scales)
    precision = jnp.asarray(np.linalg.inv(cov))
    run = jax.jit(lambda k: lowrank.chain(lambda x: -0.5 * x @ precision @ x, jnp.ones(4) * scales, k,
                                          warmup=500, draws=1000, target_accept=0.8))
    xs, stats, step_size, metric, _ = run(jax.random.PRNGKey(0))
    xs = np.asarray(xs)
    assert int(stats["diverging"].sum()) == 0
    # the means within 4 Monte Carlo standard errors of 0 (sd / sqrt(ESS), from the draws' own
    # autocorrelation), the sds within 15% of the truth
    ess = np.asarray(azs.ess(azb.from_dict({"posterior": {"x": xs[None]}}), method="mean")["x"])
    mcse = xs.std(0) / np.sqrt(ess)
    assert np.all(np.abs(xs.mean(0)) < 4 * mcse), (xs.mean(0), mcse)
    np.testing.assert_allclose(xs.std(0) / scales, 1.0, rtol=0.15)
    # the metric found the scales and the correlation: few leapfrog steps per draw
    assert float(stats["num_steps"].mean()) < 8


@pytest.mark.slow  # two fits, each traced (14 s on 2 cores)
def test_a_fit_through_the_sampling_interface_records_the_backend():
    df = bs.datasets.simulate("power", families=1, seeds=1, seed=0)
    kwargs = dict(y="loss", x="x", chains=2, warmup=200, draws=200, backend="lowrank",
                  extrapolation=False, progress=False)
    a = bs.fit(df, "power", seed=3, **kwargs)
    b = bs.fit(df, "power", seed=3, **kwargs)
    assert a.settings.sampler.backend == "lowrank"
    assert a.idata.posterior.sizes == {"chain": 2, "draw": 200, "family": 1}
    np.testing.assert_array_equal(a.idata.posterior["alpha"], b.idata.posterior["alpha"])
    assert {"diverging", "energy", "n_steps", "lp"} <= set(a.idata.sample_stats.data_vars)


@pytest.mark.slow  # three fits
def test_a_fit_of_a_shape_seen_before_reuses_its_program_on_its_own_data():
    kwargs = dict(y="loss", x="x", chains=2, warmup=150, draws=150, backend="lowrank",
                  extrapolation=False, progress=False, seed=1)
    first, second = (bs.datasets.simulate("power", families=1, seeds=1, seed=k) for k in (0, 1))
    lowrank.PROGRAMS.clear()
    a = bs.fit(first, "power", **kwargs)
    kept = dict(lowrank.PROGRAMS)
    b = bs.fit(second, "power", **kwargs)
    assert lowrank.PROGRAMS == kept  # one program, traced once, serves both data sets
    lowrank.PROGRAMS.clear()
    fresh = bs.fit(second, "power", **kwargs)  # traced anew: the same draws
    np.testing.assert_array_equal(b.idata.posterior["alpha"], fresh.idata.posterior["alpha"])
    assert not np.array_equal(a.idata.posterior["alpha"], b.idata.posterior["alpha"])
