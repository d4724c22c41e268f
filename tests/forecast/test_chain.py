"""Two-stage forecasts (bayescale.chain): loss law then link law, draw by draw."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.errors import DataError

LINK = bs.Law.from_toml("""
name = "toy_link"
outcome = "unit"
formula = "0.25 + 0.75 * sigmoid(-k * (L - L0))"
[inputs]
L = { description = "loss", scale = "none" }
[parameters]
k = "lognormal(log(3), 0.5)"
L0 = "normal(3, 1)"
""")
TRUE_K, TRUE_L0 = 4.0, 3.2


def _acc(loss):
    return 0.25 + 0.75 / (1 + np.exp(TRUE_K * (loss - TRUE_L0)))


@pytest.fixture(scope="module")
def fits():
    rng = np.random.default_rng(0)
    x = np.repeat(np.logspace(7, 9, 5), 2)
    loss = (2.0 + 30.0 * x**-0.2) * np.exp(0.005 * rng.standard_normal(len(x)))
    acc = 1 / (1 + np.exp(-(np.log(_acc(loss) / (1 - _acc(loss))) + 0.05 * rng.standard_normal(len(x)))))
    df = pd.DataFrame({"params": x, "loss": loss, "acc": acc})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = dict(chains=4, warmup=500, draws=500, seed=1, progress=False)
        loss_fit = bs.fit(df, "power", y="loss", x="params", **kw, extrapolation=False)
        link_fit = bs.fit(df, LINK, y="acc", x="loss", **kw, extrapolation=False)
    return loss_fit, link_fit


def test_chain_carries_both_stages(fits, sampled_well):
    loss_fit, link_fit = fits
    sampled_well(loss_fit)
    sampled_well(link_fit)
    at = pd.DataFrame({"params": [3e9, 1e10]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = bs.chain(loss_fit, link_fit, at)
        loss = loss_fit.predict(at)
    true_loss = 2.0 + 30.0 * at["params"] ** -0.2
    truth = _acc(true_loss)
    assert np.all((out["lo90"] <= truth) & (truth <= out["hi90"]))
    # stage-2 band alone, at the stage-1 median loss, is narrower than the chained band
    fixed = link_fit.predict(pd.DataFrame({"loss": loss["median"]}))
    assert np.all(out["hi90"] - out["lo90"] > fixed["hi90"] - fixed["lo90"])
    np.testing.assert_allclose(out["loss_median"], loss["median"], rtol=2e-3)
    assert np.all((out["lo90"] > 0.25) & (out["hi90"] < 1))  # the bounded outcome stays in range


def test_new_run_band_is_wider(fits):
    at = {"params": 3e9}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean = bs.chain(*fits, at)
        run = bs.chain(*fits, at, loss_kind="new_run", kind="new_run")
    def width(t):
        return float(t["hi90"].iloc[0] - t["lo90"].iloc[0])

    assert width(run) > width(mean)


def test_chain_refuses_a_link_with_two_inputs(fits):
    loss_fit, _ = fits
    with pytest.raises(DataError, match="a link law takes one input"):
        bs.chain(loss_fit, loss_fit if len(loss_fit.law.inputs) > 1 else _two_input(), {"params": 1e9})


def _two_input():
    class Fake:
        law = bs.Law.named("chinchilla")
    return Fake()
