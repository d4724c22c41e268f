"""Measuring how fast a law's error grows beyond the data (bayescale.calibrate)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.calibrate import discrepancy_rate
from bayescale.errors import DataError
from bayescale.outcome import Outcome
from bayescale.predict import widen

KW = dict(y="loss", x="x", chains=2, warmup=300, draws=300, seed=0, progress=False)


def _ladder(bend: bool, seed: int = 0) -> pd.DataFrame:
    """A power law in x; with ``bend`` its exponent steepens smoothly over the upper decades.

    The bent ladder is what a single power law misfits more and more beyond the data.
    """
    rng = np.random.default_rng(seed)
    x = np.repeat(np.logspace(6, 10, 17), 2)
    alpha = 0.3 + (0.08 * np.clip(np.log10(x) - 7, 0, None) if bend else 0.0)
    loss = (1.8 + 5.0 * (x / 1e6) ** -alpha) * np.exp(0.003 * rng.standard_normal(len(x)))
    return pd.DataFrame({"x": x, "loss": loss, "run": np.arange(len(x))})


def _coverage(fit, test, rate):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = fit.predict(test, kind="new_run", discrepancy=rate)
    y = test["loss"].to_numpy()
    return float(np.mean((p["lo90"] <= y) & (y <= p["hi90"])))


@pytest.fixture(scope="module")
def bent():
    df = _ladder(bend=True)
    train, test = df[df["x"] <= 1e9], df[df["x"] > 1e9]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = bs.calibrate(train, "power", **KW)
        fit = bs.fit(train, "power", **KW)
    return cal, fit, test


def test_misfit_law_gets_a_positive_rate_that_restores_coverage(bent):
    cal, fit, test = bent
    assert cal.rate > 0.005, cal
    assert (cal.rows["decades"] > 0).all()
    plain, widened = _coverage(fit, test, 0.0), _coverage(fit, test, cal.rate)
    assert plain < 0.5  # the plain band misses the bent upper decade ...
    assert widened >= 0.75, (plain, widened)  # ... the widened one covers most (6 rows; nominal 0.9)


def test_well_specified_law_gets_a_small_rate():
    df = _ladder(bend=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = bs.calibrate(df, "power", **KW)
    # the band already explains the held-out errors: the excess is of the order of the noise
    assert cal.rate < 0.005, cal


def test_widen_is_identity_at_rate_zero_and_grows_with_distance():
    rng = np.random.default_rng(0)
    draws = np.full((4000, 3), 2.0)
    out = widen(draws, np.array([0.0, 1.0, 2.0]), 0.05, Outcome.named("positive"), rng)
    assert np.all(out[:, 0] == 2.0)
    sd = np.log(out).std(0)
    np.testing.assert_allclose(sd[1:], [0.05, 0.10], rtol=0.05)  # 4000 draws: sd known to ~1.2%
    with pytest.raises(DataError, match="discrepancy"):
        widen(draws, np.ones(3), -1.0, Outcome.named("positive"), rng)


def test_rows_inside_the_data_are_refused(bent):
    _, fit, _ = bent
    inside = pd.DataFrame({"x": [1e7, 1e8], "loss": [3.0, 2.5]})
    with pytest.raises(DataError, match="none of the held-out rows lies beyond"):
        discrepancy_rate(fit, inside)
