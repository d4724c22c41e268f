"""Tests for bayescale.ppc on one tiny well-specified fit (and one misspecified one)."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import bayescale as bs
from bayescale.evaluate.ppc import ppc_summary, replicate, uniformity_distance
from bayescale.viz.plot import ppc, ppc_figure

SETTINGS = dict(chains=2, warmup=300, draws=300, seed=0, progress=False)


def _fit(df, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fits this small may fail the diagnostics gate
        return bs.fit(df, **kwargs, **SETTINGS, extrapolation=False)


@pytest.fixture(scope="module")
def good():
    df = bs.datasets.simulate("power", families=1, seeds=1, sizes=(1e7, 1e8, 1e9), seed=0)
    return _fit(df, law="power", y="loss", x="x")


@pytest.fixture(scope="module")
def good_summary(good):
    return ppc_summary(good)


def test_replicate_shape_and_finite(good):
    reps = replicate(good)
    n_draws = good.idata.posterior.sizes["chain"] * good.idata.posterior.sizes["draw"]
    assert reps.shape == (n_draws, len(good.design.y))
    assert np.isfinite(reps).all()
    np.testing.assert_array_equal(reps, replicate(good, seed=0))  # seeded


def test_coverage_within_binomial_tolerance(good_summary):
    """Coverage of the 90% interval on data simulated from the model.

    If the model is calibrated, each of the n observations falls inside its
    90% posterior predictive interval with probability about 0.9, so the share
    inside is roughly Binomial(n, 0.9) / n with sd sqrt(0.9 * 0.1 / n); we allow
    3 sd (about 0.23 for n = 15).  Rows are not quite independent (the intervals
    share the posterior) and the check is in-sample, so this is a loose, not an
    exact, tolerance.
    """
    row = good_summary.set_index("family").loc["all"]
    n = int(row["n"])
    tol = 3 * np.sqrt(0.9 * 0.1 / n)
    assert abs(row["coverage90"] - 0.9) <= tol
    assert abs(row["coverage50"] - 0.5) <= 3 * np.sqrt(0.25 / n)


def test_loo_pit_uniform(good_summary):
    """LOO-PIT values of a well-specified fit pass the 1% Kolmogorov test (1.63 / sqrt(n))."""
    row = good_summary.set_index("family").loc["all"]
    assert row["pit_ks"] < 1.63 / np.sqrt(row["n"])


def test_summary_rows(good, good_summary):
    families = [f for f in good.design.families if f != "all"]
    assert list(good_summary["family"]) == [*families, "all"]
    assert {"n", "coverage50", "coverage90", "mean_std_resid", "pit_ks"} <= set(good_summary)
    assert good_summary["n"].iloc[-1] == len(good.design.y)


def test_ppc_dispatch_and_figure(good):
    import matplotlib.pyplot as plt

    groups = set(good.idata.children)
    fig = ppc(good)
    assert len(fig.axes) == 2
    plt.close(fig)
    assert ppc(good, summary=True).equals(ppc_summary(good))
    assert set(good.idata.children) == groups  # fit.idata is not mutated
    assert "posterior_predictive" not in good.idata.children
    plt.close(ppc_figure(good, seed=1))


def test_uniformity_distance():
    assert uniformity_distance((np.arange(100) + 0.5) / 100) == pytest.approx(0.005)
    assert uniformity_distance(np.full(10, 0.99)) == pytest.approx(0.99)


@pytest.mark.slow  # a documented limitation that fits a misspecified law (13 s)
@pytest.mark.xfail(strict=True, reason=(
    "marginal PIT/coverage checks do not detect this misfit: sigma absorbs it "
    "(LOO-PIT distance 0.117 misspecified vs 0.134 well-specified, coverage90 0.96 vs 1.0)"))
def test_misspecified_is_worse_calibrated(good_summary):
    df = bs.datasets.simulate("chinchilla", families=1, seeds=1, seed=0)
    bad = _fit(df, law="power", y="loss", x="tokens")
    row_bad = ppc_summary(bad).set_index("family").loc["all"]
    row_good = good_summary.set_index("family").loc["all"]
    assert row_bad["pit_ks"] > row_good["pit_ks"]
