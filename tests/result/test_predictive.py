"""Tests for bayescale.predict (and the seed contract of bayescale.fit) on one tiny real fit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.errors import DataError, ExtrapolationWarning
from bayescale.result.predictive import FAR_DECADES, draws
from bayescale.result.predictive import predict as predict_fn

# two families: pool explicitly, so a family absent from the data can be forecast
POOL = {"E": "partial", "a": "partial"}

# Two families need an explicit truth: simulate's default truths have three families.
TRUTH = {"E": [1.80, 1.95], "a": [480.0, 420.0], "alpha": 0.34}
BANDS = ["lo90", "lo50", "median", "hi50", "hi90"]


def ladder() -> pd.DataFrame:
    return bs.datasets.simulate("power", truth=TRUTH, families=2, seeds=1, sizes=(1e7, 1e8, 1e9), seed=0)


def tiny_fit(df, **settings):
    kwargs = dict(law="power", y="loss", x="x", group="family", pool=POOL, chains=2, warmup=200,
                  draws=200, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fit this small fails the diagnostics gate on purpose
        return bs.fit(df, **(kwargs | settings), extrapolation=False)


@pytest.fixture(scope="module")
def fitted():
    df = ladder()
    return tiny_fit(df), df


def test_fixture_data(fitted):
    fit, df = fitted
    assert set(df.columns) == {"family", "run", "seed", "x", "loss"}
    assert fit.design.families == ["f0", "f1"]
    assert len(fit.design.y) == len(df) == 30


def test_output_columns(fitted):
    fit, _ = fitted
    out = fit.predict(pd.DataFrame({"x": [1e8, 1e9], "family": ["f0", "f1"]}))
    assert list(out.columns) == ["x", "family", "mean", "median", "lo50", "hi50", "lo90", "hi90", "distance",
                                 "extrap_x"]
    assert list(out["family"]) == ["f0", "f1"]
    assert len(out) == 2


@pytest.mark.parametrize("kind", ["mean", "new_run"])
@pytest.mark.parametrize("family", ["f0", "f1", "new"])
def test_bands_are_ordered(fitted, kind, family):
    fit, _ = fitted
    x = np.geomspace(1e6, 1e12, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        out = fit.predict(pd.DataFrame({"x": x, "family": family}), kind=kind)
    bands = out[BANDS].to_numpy()
    assert np.isfinite(bands).all() and (bands > 0).all()
    assert (np.diff(bands, axis=1) >= 0).all()
    assert (bands[:, 0] < bands[:, -1]).all()  # a band, not a point
    assert ((out["mean"] > out["lo90"]) & (out["mean"] < out["hi90"])).all()


def test_mean_curve_decreases_with_x(fitted):
    fit, _ = fitted
    out = fit.predict({"x": np.geomspace(1e7, 1e10, 6), "family": ["f0"] * 6})
    assert (np.diff(out["median"]) < 0).all()


def test_median_tracks_the_data(fitted):
    fit, df = fitted
    out = fit.predict(df[["x", "family"]])
    rel = out["median"].to_numpy() / df["loss"].to_numpy() - 1
    assert np.abs(rel).max() < 0.05


def test_new_run_is_wider_than_mean(fitted):
    fit, _ = fitted
    new = pd.DataFrame({"x": [1e8, 1e9, 1e10], "family": ["f0", "f1", "f0"]})
    mean, run = fit.predict(new, kind="mean"), fit.predict(new, kind="new_run")
    assert ((run["hi90"] - run["lo90"]) > (mean["hi90"] - mean["lo90"])).all()
    assert ((run["hi50"] - run["lo50"]) > (mean["hi50"] - mean["lo50"])).all()


def test_new_family_is_wider_than_fitted_family(fitted):
    fit, _ = fitted
    new = pd.DataFrame({"x": [1e8, 1e8, 1e8], "family": ["f0", "f1", "new"]})
    out = fit.predict(new)
    width = (out["hi90"] - out["lo90"]).to_numpy()
    assert width[2] > width[0] and width[2] > width[1]
    assert list(out["family"]) == ["f0", "f1", "new"]


def test_missing_group_column_predicts_every_family(fitted):
    fit, _ = fitted
    out = fit.predict({"x": [1e8, 1e9, 3e9]})
    assert len(out) == 3 * 2
    assert list(out["family"]) == ["f0", "f1"] * 3
    np.testing.assert_array_equal(out["x"], np.repeat([1e8, 1e9, 3e9], 2))
    by_family = fit.predict({"x": [1e8, 1e9, 3e9], "family": ["f1"] * 3})
    np.testing.assert_allclose(out.loc[out["family"] == "f1", "median"].to_numpy(), by_family["median"])


def test_extrapolation_column(fitted):
    fit, df = fitted
    lo, hi = df["x"].min(), df["x"].max()
    new = pd.DataFrame({"x": [lo, np.sqrt(lo * hi), hi, 10 * hi, 50 * hi, lo / 10], "family": "f0"})
    out = fit.predict(new)
    np.testing.assert_allclose(out["extrap_x"][:3], 0.0)
    assert out["extrap_x"][3] == pytest.approx(1.0)
    assert out["extrap_x"][4] == pytest.approx(np.log10(50))
    assert out["extrap_x"][5] == pytest.approx(1.0)


def test_far_extrapolation_warns(fitted):
    fit, df = fitted
    far = df["x"].max() * 10 ** (FAR_DECADES + 1)
    with pytest.warns(ExtrapolationWarning, match="1 forecast"):
        out = fit.predict({"x": [1e8, far], "family": ["f0", "f0"]})
    assert out["extrap_x"][1] == pytest.approx(FAR_DECADES + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        fit.predict({"x": [1e8], "family": ["f0"]})


def test_custom_levels(fitted):
    fit, _ = fitted
    out = fit.predict({"x": [1e8], "family": ["f0"]}, levels=(0.8, 0.95, 0.99))
    assert {"lo80", "hi80", "lo95", "hi95", "lo99", "hi99"} <= set(out.columns)
    assert "lo90" not in out.columns
    assert out["lo99"][0] <= out["lo95"][0] <= out["lo80"][0] <= out["hi80"][0] <= out["hi95"][0]
    single = fit.predict({"x": [1e8], "family": ["f0"]}, levels=0.9)
    assert {"lo90", "hi90"} <= set(single.columns) and "lo50" not in single.columns


@pytest.mark.parametrize("levels", [1.5, (0.5, 1.0), 0.0, -0.2, (0.9, np.nan)])
def test_bad_levels(fitted, levels):
    fit, _ = fitted
    with pytest.raises(DataError, match="must lie strictly between 0 and 1"):
        fit.predict({"x": [1e8]}, levels=levels)


@pytest.mark.parametrize("kind", ["median", "posterior", None])
def test_bad_kind(fitted, kind):
    fit, _ = fitted
    with pytest.raises(DataError, match="choose 'mean'"):
        fit.predict({"x": [1e8]}, kind=kind)


@pytest.mark.parametrize("value", [0.0, -1e8, np.nan])
def test_bad_x(fitted, value):
    fit, _ = fitted
    with pytest.raises(DataError, match="column 'x' has"):
        fit.predict({"x": [1e8, value]})


def test_missing_x_column(fitted):
    fit, _ = fitted
    with pytest.raises(DataError, match="column 'x' is not in the data"):
        fit.predict({"size": [1e8]})


def test_mean_of_fitted_family_does_not_depend_on_seed(fitted):
    fit, _ = fitted
    new = {"x": [1e8, 1e9], "family": ["f0", "f1"]}
    pd.testing.assert_frame_equal(fit.predict(new, seed=0), fit.predict(new, seed=1))


def test_random_forecasts_follow_the_seed(fitted):
    fit, _ = fitted
    new = {"x": [1e8, 1e9], "family": ["new", "f0"]}
    for kind in ("mean", "new_run"):
        a, b = fit.predict(new, kind=kind, seed=3), fit.predict(new, kind=kind, seed=3)
        pd.testing.assert_frame_equal(a, b)
    c = fit.predict(new, kind="new_run", seed=4)
    assert not np.array_equal(c["median"], b["median"])


def test_samples_are_returned_on_request(fitted):
    fit, _ = fitted
    new = pd.DataFrame({"x": [1e8, 1e9], "family": ["f0", "f1"]})
    out, samples = predict_fn(fit.idata.posterior, fit.structure, fit.design, new, samples=True)
    assert samples.shape == (2 * 200, 2)
    np.testing.assert_allclose(np.median(samples, 0), out["median"])
    assert draws(fit.idata.posterior, "sigma").shape == (400,)


def test_same_seed_gives_identical_fits(fitted):
    # the module fit is the first of the two: refitting with its settings reuses its compiled
    # sampler, which is cheaper than two fresh fits with other settings
    fit, df = fitted
    again = tiny_fit(df.copy())
    post_a, post_b = fit.idata.posterior, again.idata.posterior
    assert set(post_a.data_vars) == set(post_b.data_vars)
    assert post_a["alpha"].shape == (2, 200, 2)
    for name in post_a.data_vars:
        np.testing.assert_array_equal(post_a[name].values, post_b[name].values, err_msg=name)
    for name in ("diverging", "energy"):
        np.testing.assert_array_equal(fit.idata.sample_stats[name].values,
                                      again.idata.sample_stats[name].values, err_msg=name)
    pd.testing.assert_frame_equal(fit.predict({"x": [1e8, 1e12]}), again.predict({"x": [1e8, 1e12]}))


@pytest.mark.slow  # its own fit with known errors (11 s)
def test_new_run_band_adds_the_targets_known_standard_error():
    df = ladder()
    fit = tiny_fit(df.assign(se=0.002 * df["loss"]), se="se")
    at = pd.DataFrame({"x": [1e9, 1e9], "family": ["f0", "f0"], "se": [0.0, 0.1]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = fit.predict(at, kind="new_run", levels=(0.9,))
        mean = fit.predict(at, kind="mean", levels=(0.9,))
    width = (run["hi90"] - run["lo90"]).to_numpy()
    # an se of 0.1 on a loss near 2 is about 0.05 on log y: far wider than the fitted noise
    assert width[1] > 2 * width[0]
    np.testing.assert_allclose(mean["lo90"].iloc[0], mean["lo90"].iloc[1])  # the law itself: unchanged
    with pytest.raises(DataError, match="standard errors >= 0"):
        fit.predict(at.assign(se=[-1.0, 0.1]), kind="new_run")


# ---- distance in the law's scale, not in every input -----------------------------------------
def test_proportion_input_with_zeros_validates_and_stays_out_of_the_distance(mixture_toml):
    """No sampling: a fixed 'posterior' of four draws is enough to measure the distance."""
    from bayescale.data.design import prepare
    from bayescale.model import structure

    df = pd.DataFrame({"params": [1e7, 1e7, 1e8, 1e8, 1e9, 1e9], "code": [0.0, 0.2, 0.0, 0.2, 0.0, 0.2],
                       "loss": [3.2, 3.3, 2.8, 2.9, 2.5, 2.55]})
    mixture = bs.Law.from_toml(mixture_toml(""))
    design = prepare(df, mixture, "loss", {"N": "params", "p": "code"})  # zeros are fine
    s = structure(mixture, design)
    posterior = {"E": np.full((1, 4, 1), 1.8), "a": np.full((1, 4, 1), 1.0),
                 "alpha": np.full((1, 4, 1), 0.3), "k": np.full((1, 4, 1), 0.1),
                 "sigma": np.full((1, 4), 0.01)}
    new = pd.DataFrame({"params": [1e9, 1e9, 1e12], "code": [0.0, 0.9, 0.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)  # a share 4.5x the data's is not far
        out = predict_fn(posterior, s, design, new.iloc[:2])
    np.testing.assert_allclose(out["distance"], [0.0, 0.0])  # p = 0.9 is beyond the data, N is not
    assert "extrap_p" not in out  # a zero share has no decades
    with pytest.warns(ExtrapolationWarning, match="1 forecast"):
        out = predict_fn(posterior, s, design, new)
    np.testing.assert_allclose(out["distance"], [0.0, 0.0, 3.0])  # decades of N, the law's scale


def test_distance_is_in_compute_for_chinchilla():
    from bayescale.data.design import prepare
    from bayescale.result.predictive import distance, extrapolation

    law = bs.Law.named("chinchilla")
    df = pd.DataFrame({"params": [1e7, 1e8, 1e9], "tokens": [1e9, 1e10, 1e11], "loss": [3.0, 2.7, 2.5]})
    design = prepare(df, law, "loss", {"N": "params", "D": "tokens"})
    # ten times the largest N on a tenth of its tokens: no compute beyond the data
    extra = extrapolation(design, {"N": np.array([1e10]), "D": np.array([1e10])}, "all", law)
    np.testing.assert_allclose(extra["extrap_N"], [1.0])
    np.testing.assert_allclose(distance(extra, law.scale_input), [0.0])
