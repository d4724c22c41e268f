"""Forecasts stacked over laws by leave-future-out (bayescale.many.stack)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.evaluate.calibration import estimate
from bayescale.evaluate.compare import average
from bayescale.many.stack import stacking_weights


# ---- the weights ---------------------------------------------------------------------
def test_stacking_weights_match_the_optimum_found_by_grid():
    lpd = np.log([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]])
    w = np.linspace(0, 1, 100_001)
    score = sum(np.log(w * np.exp(a) + (1 - w) * np.exp(b)) for a, b in lpd)
    best = w[np.argmax(score)]  # 0.6776
    got = stacking_weights(lpd)
    assert got.sum() == pytest.approx(1.0)
    assert got[0] == pytest.approx(best, abs=1e-3)


def test_stacking_weights_give_a_dominated_law_nothing_and_split_equal_laws():
    rng = np.random.default_rng(0)
    good = rng.normal(-1.0, 0.3, 50)
    w = stacking_weights(np.column_stack([good, good - 3.0]))
    assert w[1] < 1e-3
    same = stacking_weights(np.column_stack([good, good, good]))
    assert np.allclose(same, 1 / 3, atol=1e-6)
    # the stack never scores below its best single law (the weights (1, 0, ...) are feasible)
    lpd = rng.normal(-1.0, 1.0, (40, 3))
    weights = stacking_weights(lpd)
    mixed = np.log(np.exp(lpd) @ weights).sum()
    assert mixed >= lpd.sum(0).max() - 1e-8


def test_stacking_weights_refuse_non_finite_scores():
    with pytest.raises(bs.DataError, match="finite matrix"):
        stacking_weights(np.array([[0.0, np.nan]]))


# ---- the forecast ----------------------------------------------------------------------
def _ladder(seed: int = 0) -> pd.DataFrame:
    """A power law with a floor (E = 1.8), two noisy runs per size over four decades."""
    rng = np.random.default_rng(seed)
    x = np.repeat(np.logspace(6, 10, 13), 2)
    loss = (1.8 + 5.0 * (x / 1e6) ** -0.3) * np.exp(0.005 * rng.standard_normal(len(x)))
    return pd.DataFrame({"x": x, "loss": loss})


KW = dict(y="loss", x="x", chains=2, warmup=300, draws=300, seed=0, progress=False)


@pytest.fixture(scope="module")
def stacked():  # 8 fits: 25-40 s on 2 cores, so the tests that use it are in the slow tier
    df = _ladder()
    at = pd.DataFrame({"x": [1e11]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bs.forecast(df, ["power", "loglinear"], at, **KW)
    return df, at, res


@pytest.mark.slow  # the 8 fits of ``stacked``
def test_each_row_beyond_the_first_origin_is_scored_once_per_law(stacked):
    df, _, res = stacked
    per_law = res.scores.groupby("law")["row"]
    assert set(per_law.nunique()) == {per_law.size().iloc[0]}  # no row twice
    rows = {law: set(r) for law, r in per_law}
    assert rows["power"] == rows["loglinear"]
    scored = df.loc[sorted(rows["power"])]
    frontier = res.fits["power"].settings.nested[0]["fit"]
    assert "origin 0" in frontier
    assert scored["x"].min() > df["x"].min() and (res.scores["distance"] > 0).all()
    assert np.isfinite(res.scores["lpd"]).all()


@pytest.mark.slow  # the 8 fits of ``stacked``
def test_weights_favour_the_law_that_forecast_the_future(stacked):
    _, _, res = stacked
    assert res.weights.sum() == pytest.approx(1.0)
    # a pure power law has no floor: beyond each origin it keeps falling where the data level off
    elpd = res.elpd()
    assert elpd["power"] > elpd["loglinear"]
    assert res.weights["power"] > 0.5
    assert elpd["stacked"] >= max(elpd["power"], elpd["loglinear"]) - 1e-6


@pytest.mark.slow  # the 8 fits of ``stacked``
def test_stacked_table_is_the_weighted_mixture_of_the_calibrated_fits(stacked):
    _, at, res = stacked
    used = {k: res.fits[k] for k, w in res.weights.items() if w > 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = average(used, res.weights[list(used)].to_dict(), at, "new_run", (0.5, 0.9))
    pd.testing.assert_frame_equal(again, res.table)
    for name, fit in res.fits.items():
        assert "rate" in fit.settings.extrapolation, name  # calibrated from the scored origins
        assert res.calibrations[name].record() == fit.settings.extrapolation, name
        # by default each law's bias is the one its origins measured, shrunk by its uncertainty
        cal = res.calibrations[name]
        assert cal.bias == pytest.approx(estimate(cal.rows, cal.fit, bias="shrunk").bias, abs=1e-12)
        assert len(fit.settings.nested) == len(res.gates[res.gates["law"] == name]) - 1
        assert list(res.laws[name].columns[:2]) == ["x", "family"]
    t = res.table
    assert ((t["lo90"] <= t["median"]) & (t["median"] <= t["hi90"])).all()


@pytest.mark.slow  # the 8 fits of ``stacked``
def test_gates_list_every_fit_and_a_failed_law_is_named(stacked):
    _, _, res = stacked
    assert set(res.gates["fit"].str.startswith(("all data", "calibration fit at origin"))) == {True}
    assert list(res.gates.groupby("law").size()) == [4, 4]  # all data + 3 origins, each law
    assert res.ok == all(res.fits[k].ok for k, w in res.weights.items() if w > 0)
    assert ("FAILED" in repr(res)) == (not res.ok)


def test_bad_arguments_are_named():
    df = _ladder()
    with pytest.raises(bs.DataError, match="at least two laws"):
        bs.forecast(df, ["power"], {"x": [1e11]}, **KW)
    with pytest.raises(bs.DataError, match="drop extrapolation"):
        bs.forecast(df, ["power", "loglinear"], {"x": [1e11]}, extrapolation=False, **KW)
    with pytest.raises(bs.DataError, match="CalibrationConfig"):
        bs.forecast(df, ["power", "loglinear"], {"x": [1e11]}, calibration={"cuts": 2}, **KW)
    with pytest.raises(bs.DataError, match="names no law"):
        bs.forecast(df, {"a": "power", "b": {"x": "x"}}, {"x": [1e11]}, **KW)
