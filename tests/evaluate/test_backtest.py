"""Tests for bayescale.backtest on a tiny simulated one-family Chinchilla ladder."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.api import backtest
from bayescale.errors import DataError
from bayescale.evaluate.backtest import heldout_mask, score
from bayescale.result.predictive import terms

X = {"N": "params", "D": "tokens"}
SETTINGS = dict(law="chinchilla_shared", y="loss", x=X, chains=2, warmup=200, draws=200, seed=0)
LEVEL_COLS = ["in_50", "in_80", "in_90", "in_95"]


def ladder() -> pd.DataFrame:
    return bs.datasets.simulate("chinchilla_shared", families=1, seeds=1, run_sd=0.0, seed=3)


def run(df, split, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fits this small fail the ESS gate on purpose
        return backtest(df, split=split, **(SETTINGS | kwargs))


@pytest.fixture(scope="module")
def largest():
    df = ladder()
    return run(df, "largest-size", kind=("mean", "new_run")), df


def test_largest_size_holds_out_the_largest_size(largest):
    result, df = largest
    pt = result.per_target
    top = df["params"].max()
    assert (pt["params"] == top).all()
    assert len(pt) == 2 * int((df["params"] == top).sum())  # one row per target and kind
    assert set(pt["kind"]) == {"mean", "new_run"}
    assert set(pt["row"]) == set(df.index[df["params"] == top])
    assert len(result.fit.design.y) == int((df["params"] < top).sum())
    for col in ["params", "tokens", "family", "truth", "median", "error", "abs_rel_error", *LEVEL_COLS]:
        assert col in pt.columns
    np.testing.assert_allclose(pt["truth"], np.tile(df.loc[df["params"] == top, "loss"], 2))
    np.testing.assert_allclose(pt["error"], pt["median"] - pt["truth"])
    assert (pt["abs_rel_error"] < 0.1).all()  # the truth is the fitted law; 1% noise


def test_aggregate(largest):
    result, _ = largest
    agg = result.aggregate
    assert list(agg.index) == ["mean", "new_run"]
    cover = agg[["coverage_50", "coverage_80", "coverage_90", "coverage_95"]]
    assert ((cover >= 0) & (cover <= 1)).all().all()
    # wider bands cover at least as much
    assert (np.diff(cover.to_numpy(), axis=1) >= 0).all()
    # a new run adds the noise: its bands contain the mean's
    assert (cover.loc["new_run"] >= cover.loc["mean"]).all()
    assert (agg["median_abs_rel_error"] >= 0).all()
    assert result["aggregate"] is agg and "largest-size" in result.split


def test_callable_split_matches_largest_size(largest):
    result, df = largest
    same = run(df, lambda d: (d["params"] == d["params"].max()).to_numpy(), kind=("mean", "new_run"))
    pd.testing.assert_frame_equal(same.per_target, result.per_target)


def test_bad_splits_raise_before_fitting():
    df = ladder()
    with pytest.raises(DataError, match="split="):
        run(df, "largest-flops")
    with pytest.raises(DataError, match="boolean mask"):
        run(df, lambda d: np.ones(3, dtype=bool))
    with pytest.raises(DataError, match="holds out no rows"):
        run(df, lambda d: np.zeros(len(d), dtype=bool))
    with pytest.raises(DataError, match="every row"):
        run(df, lambda d: np.ones(len(d), dtype=bool))
    with pytest.raises(DataError, match="group column"):
        run(df, ("leave-family-out", "f0", 1))
    with pytest.raises(DataError, match="kind="):
        run(df, "largest-size", kind="median")


def test_split_masks():
    df = bs.datasets.simulate("chinchilla_shared", families=3, seeds=2, seed=0)
    compute = df["params"] * df["tokens"]
    law = bs.Law.named("chinchilla_shared")
    mask, what, extra = heldout_mask(df, "largest-compute", X, "family", "run", frac=0.2, law=law)
    assert mask.sum() >= 0.2 * len(df) and compute[mask].min() >= compute[~mask].max()
    mask, what, extra = heldout_mask(df, ("leave-family-out", "f1", 2), X, "family", "run", law=law)
    assert set(df.loc[mask, "family"]) == {"f1"}
    kept = df[(df["family"] == "f1") & ~mask]
    assert kept["run"].nunique() == 2 and set(kept["params"]) == {df["params"].min()}
    assert extra == {}
    mask, _, extra = heldout_mask(df, ("leave-family-out", "f1", 1), X, "family", "run", law=law)
    assert extra == {"min_rows_per_family": 1}
    with pytest.raises(DataError, match="not in column"):
        heldout_mask(df, ("leave-family-out", "f9", 1), X, "family", "run", law=law)


def test_leave_family_out_keeps_one_run():
    """k = 1 with one row per run: the held-out family keeps a single row, which
    needs min_rows_per_family=1 (passed by backtest); E and a are shared, so the
    family's other runs are forecast from them and its one run."""
    df = bs.datasets.simulate("power", truth={"E": 1.8, "a": 400.0, "alpha": [0.3, 0.3]}, families=2,
                              seeds=1, tokens_per_param=(20,), run_sd=0.0, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = backtest(df, law="power", split=("leave-family-out", "f1", 1), y="loss", x="x",
                          group="family", pool={"E": "shared", "a": "shared", "alpha": "none"},
                          chains=2, warmup=100, draws=100, seed=0)
    pt = result.per_target
    assert set(pt["family"]) == {"f1"} and len(pt) == 4
    assert df.loc[~result.held_out & (df["family"] == "f1"), "x"].tolist() == [df["x"].min()]
    assert result.fit.settings.min_rows_per_family == 1
    assert ((result.aggregate["coverage_90"] >= 0) & (result.aggregate["coverage_90"] <= 1)).all()


@pytest.mark.slow  # a fit at every rolling origin: 21 s
def test_rolling_origins_fit_up_to_each_origin_and_score_by_distance():
    df = ladder()
    result = run(df, "rolling", cuts=3, kind=("mean", "new_run"))
    compute = 6 * df["params"] * df["tokens"]  # the law's scale
    assert len(result.fits) == 3 and result.fit is result.fits[-1]
    pt = result.per_target
    for k, fit in enumerate(result.fits):
        rows = pt[(pt["cut"] == k) & (pt["kind"] == "mean")]
        frontier = rows["frontier"].iloc[0]
        # the fit saw exactly the rows up to its origin, and forecast exactly those beyond it
        assert len(fit.design.y) == int((compute <= frontier * (1 + 1e-12)).sum())
        assert sorted(rows["row"]) == sorted(df.index[compute > frontier * (1 + 1e-12)])
        np.testing.assert_allclose(rows["distance"], np.log10(compute[rows["row"]] / frontier))
    assert (pt["distance"] > 0).all()
    # every scored forecast falls in one distance bin; the bins' counts add up to the whole
    by = result.by_distance
    assert by.loc["mean", "n"].sum() == (pt["kind"] == "mean").sum()
    assert set(by.columns) >= {"coverage_90", "median_abs_rel_error"}


@pytest.mark.slow  # three fits of three families: 21 s
def test_rolling_origins_score_only_the_families_their_fit_can_forecast():
    """Three families fit E and the amplitudes per family (fewer than 5); one starts late, so the
    first origin has none of its rows, and nothing is known of it there."""
    df = bs.datasets.simulate("chinchilla_shared", families=3, seeds=1, run_sd=0.0, seed=3)
    compute = 6 * df["params"] * df["tokens"]
    late = (df["family"] == "f2") & (compute < compute.quantile(0.5))
    df = df[~late].reset_index(drop=True)
    result = run(df, "rolling", cuts=3, kind="new_run", group="family", chains=1, warmup=100, draws=100)
    pt = result.per_target
    for k, fit in enumerate(result.fits):
        scored = set(df.loc[pt.loc[pt["cut"] == k, "row"], "family"])
        assert scored == set(fit.design.families), (k, scored)
    assert "f2" not in result.fits[0].design.families and "f2" in result.fits[-1].design.families


def test_rolling_needs_a_positive_number_of_origins():
    with pytest.raises(DataError, match="cuts=0"):
        run(ladder(), "rolling", cuts=0)


@pytest.mark.slow  # nested calibration inside every origin
def test_rolling_with_nested_calibration_widens_each_origin_by_its_own_rate():
    df = ladder()
    result = run(df, "rolling", cuts=2, kind="new_run", discrepancy="calibrate")
    pt = result.per_target
    assert (pt.groupby("cut")["rate"].nunique() == 1).all() and (pt["rate"] >= 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = pd.concat([score(fit, df.loc[pt.loc[pt["cut"] == k, "row"]], ("new_run",))
                          for k, fit in enumerate(result.fits)], ignore_index=True)
    assert len(result.calibrations) == len(result.fits)
    assert (pt.groupby("cut")["bias"].nunique() == 1).all()
    # the same fits scored plain: a band widened by a rate >= 0 is never narrower on the log
    # scale, where the bias only moves it (up to the widening's own Monte Carlo noise), and
    # wider wherever the discrepancy's own scale exceeds the band's (a scale far below the
    # band's widens it by less than that noise)
    widths = np.log(pt["hi90"] / pt["lo90"]) / np.log(base["hi90"] / base["lo90"])
    assert (widths > 0.95).all(), widths.min()
    clear = pd.Series(False, index=pt.index)
    for cut, cal in enumerate(result.calibrations):
        t, rows = terms(cal), pt["cut"] == cut
        d = pt["distance"].where(rows, 0.0)
        clear |= rows & (d * np.hypot(t.rate, t.curvature * d) > np.log(base["hi90"] / base["lo90"]) / 3.29)
    assert clear.any()  # the ladder's misfit shows somewhere
    assert (widths[clear] > 1.0).all(), widths[clear].min()


@pytest.mark.parametrize("discrepancy, split", [("calibrated", "rolling"), ("calibrate", "largest-size")])
def test_nested_calibration_is_only_for_rolling_origins(discrepancy, split):
    with pytest.raises(DataError, match="'calibrate' with split='rolling'"):
        run(ladder(), split, discrepancy=discrepancy)


def mixture_data() -> pd.DataFrame:
    n = np.repeat([1e7, 1e8, 1e9, 1e10], 2)
    return pd.DataFrame({"params": n, "code": np.tile([0.0, 0.3], 4), "loss": 1.8 + 400 * n**-0.34})


def test_compute_splits_use_the_law_scale_so_a_zero_share_is_fine(mixture_toml):
    law = bs.Law.from_toml(mixture_toml(""))
    df = mixture_data()
    mask, what, _ = heldout_mask(df, "largest-compute", {"N": "params", "p": "code"}, None, None,
                                 frac=0.25, law=law)
    assert df.loc[mask, "params"].tolist() == [1e10, 1e10] and "by N" in what


def test_a_scale_that_is_not_positive_is_named_before_any_fit(mixture_toml):
    law = bs.Law.from_toml(mixture_toml('scale = "N * p"'))
    with pytest.raises(DataError, match=r"rolling backtest: the scale of law 'mixture' \(N \* p\).*row 0"):
        backtest(mixture_data(), law=law, split="rolling", y="loss", x={"N": "params", "p": "code"})
