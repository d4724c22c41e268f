"""Compute-optimal allocation (bayescale.allocate) on Epoch's Chinchilla data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bayescale as bs
from bayescale.errors import DataError
from bayescale.forecast.allocate import _loss, _solve_d, six_nd
from bayescale.result.predictive import draws

C_CHINCHILLA = 5.76e23


@pytest.fixture(scope="module")
def fit():
    try:
        df = bs.datasets.load("chinchilla_epoch", drop_highest_loss=5)
    except bs.DataError as exc:
        pytest.skip(str(exc))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bs.fit(df, "chinchilla", y="loss", x={"N": "params", "D": "tokens"}, chains=2,
                      warmup=400, draws=400, seed=0, progress=False, extrapolation=False)


def test_closed_form_matches_hoffmann_eq4_on_the_paper_scale(fit):
    out = bs.allocate(fit, [C_CHINCHILLA])
    got = out.draws[(C_CHINCHILLA, fit.design.families[0])]
    post = fit.idata.posterior  # eq. 4 of Hoffmann et al. with the reported A and B
    A, B, a, b = (draws(post, k)[:, 0] for k in ("A", "B", "alpha", "beta"))
    n_opt = (a * A / (b * B)) ** (1 / (a + b)) * (C_CHINCHILLA / 6) ** (b / (a + b))
    np.testing.assert_allclose(got["N"], n_opt, rtol=1e-9)
    np.testing.assert_allclose(6 * got["N"] * got["D"], C_CHINCHILLA, rtol=1e-12)
    row = out.table.iloc[0]
    assert row["method"] == "closed form"
    assert row["N_lo90"] < row["N_median"] < row["N_hi90"]
    assert row["tokens_per_param_lo90"] < row["tokens_per_param_median"] < row["tokens_per_param_hi90"]


def test_numerical_optimum_agrees_with_closed_form(fit):
    closed = bs.allocate(fit, [1e21, C_CHINCHILLA]).draws
    numeric = bs.allocate(fit, [1e21, C_CHINCHILLA], flops=lambda N, D: 6.0 * N * D)
    assert set(numeric.table["method"]) == {"numerical"}
    for key, values in numeric.draws.items():
        np.testing.assert_allclose(values["N"], closed[key]["N"], rtol=1e-4)
        np.testing.assert_allclose(values["L"], closed[key]["L"], rtol=1e-9)


def test_numerical_optimum_under_another_cost_is_a_minimum(fit):
    # an extra cost per token growing only as sqrt(N): 6ND + 6*2048*D*sqrt(N)
    def flops(N, D):
        return 6.0 * N * D + 6 * 2048.0 * D * np.sqrt(N)

    out = bs.allocate(fit, [1e22], flops=flops)
    got = next(iter(out.draws.values()))
    np.testing.assert_allclose(flops(got["N"], got["D"]), 1e22, rtol=1e-9)
    params = {k: draws(fit.idata.posterior, k)[:, 0] for k in fit.law.parameters}
    for factor in (0.97, 1.03):  # moving along the budget curve only raises the loss
        N = got["N"] * factor
        worse = _loss(fit, params, "N", "D", N, _solve_d(flops, N, 1e22))
        assert np.all(worse >= got["L"] - 1e-12)
    # the overhead per token is relatively larger for small models, so the optimum moves to larger N
    assert out.table.iloc[0]["N_median"] > bs.allocate(fit, [1e22]).table.iloc[0]["N_median"]


def test_allocation_plot_and_bad_budget(fit):
    fig = bs.plot(bs.allocate(fit, np.logspace(20, 24, 5)))
    assert len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"
    with pytest.raises(DataError, match="budgets must be positive"):
        bs.allocate(fit, [-1.0])
    with pytest.raises(DataError, match="size and a data input"):
        bs.allocate(fit, [1e21], inputs=("params", "tokens"))
    assert six_nd(2.0, 3.0) == 36.0
