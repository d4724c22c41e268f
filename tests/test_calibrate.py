"""Measuring how fast a law's error grows beyond the data (bayescale.calibrate)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.calibrate import discrepancy_rate, errors
from bayescale.errors import DataError, ExtrapolationWarning
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
        fit = bs.fit(train, "power", extrapolation=cal, **KW)
    return cal, fit, test


def test_misfit_law_gets_a_positive_rate_that_restores_coverage(bent):
    cal, fit, test = bent
    assert cal.rate > 0.005, cal
    assert (cal.rows["decades"] > 0).all() and set(cal.rows["origin"]) == {0, 1, 2}
    assert cal.reach == pytest.approx(cal.rows["decades"].max())
    assert _coverage(fit, test, 0.0) < 0.5  # the plain band misses the bent upper decade
    # The 8 held-out rows share one systematic error, so their coverage is all or nothing
    # around one z-score: check that z.  Plain, the error is many band sds out; widened by
    # the rate measured inside the training data, it lies inside the central 95% band.
    e = errors(fit, test)
    plain = np.abs(e["error"]) / e["band_sd"]
    widened = np.abs(e["error"]) / np.sqrt(e["band_sd"] ** 2 + (cal.rate * e["decades"]) ** 2)
    assert plain.min() > 2.0, plain.to_numpy()
    assert widened.max() < 1.96, widened.to_numpy()


def test_well_specified_law_gets_a_small_rate_kept_with_the_fit():
    df = _ladder(bend=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.fit(df, "power", extrapolation=True, **KW)
    kept = fit.settings["extrapolation"]
    # the bands already explain the held-out errors: the excess is of the order of the noise
    assert kept["rate"] < 0.005, kept
    assert kept["origins"] == 3 and kept["reach"] > 2.0, kept


def test_fit_predicts_with_its_calibration_unless_told_not_to(bent, tmp_path):
    cal, fit, test = bent
    assert fit.settings["extrapolation"] == cal.record()
    far = test.iloc[[-1]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = fit.predict(far, kind="new_run", levels=(0.9,))
        law_only = fit.predict(far, kind="new_run", levels=(0.9,), extrapolation=False)
        explicit = fit.predict(far, kind="new_run", levels=(0.9,), discrepancy=cal.rate)
    width = lambda p: float(p["hi90"].iloc[0] - p["lo90"].iloc[0])  # noqa: E731
    assert width(default) == width(explicit) > 2 * width(law_only)
    assert default["distance"].iloc[0] == pytest.approx(1.0)  # 1e10 is one decade beyond 1e9
    fit.save(tmp_path / "fit")
    again = bs.Fit.load(tmp_path / "fit")
    assert again.settings["extrapolation"] == cal.record()


def test_forecast_beyond_the_backtests_reach_warns(bent):
    cal, fit, _ = bent
    inside = 10 ** (9 + 0.5 * cal.reach)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        fit.predict({"x": [inside]})
    with pytest.warns(ExtrapolationWarning, match="farthest that the data's own backtests reached"):
        fit.predict({"x": [10 ** (9 + cal.reach + 0.5)]})


def test_extrapolation_argument_is_checked():
    with pytest.raises(DataError, match="extrapolation="):
        bs.fit(_ladder(bend=False), "power", extrapolation="yes", **KW)


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
