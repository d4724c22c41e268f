"""Outcome ranges and link scales (bayescale.outcome)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayescale.data.design import prepare
from bayescale.errors import DataError, LawError
from bayescale.laws.outcome import Outcome
from bayescale.laws.spec import Law

UNIT_LAW = """
name = "toy_unit"
outcome = "unit"
formula = "sigmoid(k * (x - x0))"
[inputs]
x = { description = "a loss", scale = "none" }
[parameters]
k = "normal(0, 2)"
x0 = "normal(0, 2)"
"""


REAL_LAW = """
name = "toy_real"
outcome = "real"
formula = "E - a * x**(-alpha)"
[inputs]
x = "size"
[parameters]
E = "normal(0, 2)"
a = "lognormal(0, 1)"
alpha = "lognormal(log(0.3), 0.5)"
"""


@pytest.mark.parametrize("kind", ["positive", "unit", "real"])
def test_link_round_trips(kind):
    o = Outcome.named(kind)
    y = np.array([0.01, 0.3, 0.5, 0.97])
    np.testing.assert_allclose(o.inverse(o.forward(y)), y, rtol=1e-12)


def test_delta_method_matches_finite_difference():
    o, y, h = Outcome.named("unit"), np.array([0.2, 0.6]), 1e-6
    slope = (o.forward(y + h) - o.forward(y - h)) / (2 * h)
    np.testing.assert_allclose(o.se(np.full(2, 0.01), y), 0.01 * slope, rtol=1e-6)


def test_clip_keeps_link_finite():
    o = Outcome.named("unit")
    assert np.all(np.isfinite(o.forward(o.clip(np.array([-0.5, 0.0, 1.0, 2.0])))))


def test_unknown_outcome_is_a_law_error():
    with pytest.raises(LawError, match="outcome = 'bounded'"):
        Law.from_toml(UNIT_LAW.replace('"unit"', '"bounded"'))


def test_unit_law_round_trips_through_toml():
    law = Law.from_toml(UNIT_LAW)
    again = Law.from_toml(law.to_toml())
    assert again.outcome.kind == "unit"
    assert again.input_specs["x"].scale == "none"


def test_unit_outcome_refuses_percentages_naming_rows():
    law = Law.from_toml(UNIT_LAW)
    df = pd.DataFrame({"x": [2.0, 2.5, 3.0], "acc": [0.4, 42.0, 0.7]})
    with pytest.raises(DataError, match=r"column 'acc' has values outside \[0, 1\]: row 1 \(42.0\)"):
        prepare(df, law, "acc", "x")


# ---- the real outcome -----------------------------------------------------------------------
def test_real_outcome_is_the_identity():
    o = Outcome.named("real")
    y = np.array([-3.5, -0.2, 0.0, 4.0])
    assert o.link_name == "identity"
    np.testing.assert_array_equal(o.forward(y), y)
    np.testing.assert_array_equal(o.inverse(y), y)
    np.testing.assert_array_equal(o.clip(y), y)  # no range to keep the mean inside
    np.testing.assert_array_equal(o.se(np.full(4, 0.3), y), np.full(4, 0.3))  # used as is
    assert o.valid(y).all() and not o.valid(np.array([np.inf, np.nan])).any()


def test_real_law_round_trips_through_toml():
    law = Law.from_toml(REAL_LAW)
    assert law.outcome.kind == "real"
    assert Law.from_toml(law.to_toml()).outcome.kind == "real"


def test_real_outcome_takes_negative_values_and_se_as_is():
    law = Law.from_toml(REAL_LAW)
    df = pd.DataFrame({"x": [1e6, 1e7, 1e8, 1e9], "logp": [-2.1, -1.4, -0.9, 0.3],
                       "se": [0.1, 0.1, 0.2, 0.2]})
    d = prepare(df, law, "logp", "x", se="se")
    np.testing.assert_array_equal(d.y, df["logp"])
    np.testing.assert_array_equal(d.se_log, df["se"])
    assert d.noise_unit() == pytest.approx(np.std(df["logp"]))  # noise priors in units of sd(y)
    assert not d.censored


def test_real_outcome_refuses_a_floor_prior_below_zero():
    law = Law.from_toml(REAL_LAW.replace('E = "normal(0, 2)"', 'E = "floor(1, 1)"'))
    df = pd.DataFrame({"x": [1e6, 1e7, 1e8], "y": [-2.0, -1.0, -0.5]})
    with pytest.raises(DataError, match=r"\['E'\] .*floor\(\) prior.*normal\(\) prior"):
        prepare(df, law, "y", "x")


def test_positive_law_given_negative_values_names_column_row_value_and_real():
    df = pd.DataFrame({"x": [1e6, 1e7, 1e8, 1e9], "score": [2.0, 1.5, -0.25, 0.8]},
                      index=["a", "b", "c", "d"])
    with pytest.raises(DataError) as err:
        prepare(df, Law.named("power"), "score", "x")
    text = str(err.value)
    assert "column 'score' has zero or negative values: row c (-0.25)" in text
    assert 'outcome = "real"' in text and "offset_power" in text
    assert "check the units" not in text


def test_positive_law_given_zero_says_drop_or_real():
    df = pd.DataFrame({"x": [1e6, 1e7, 1e8], "loss": [2.0, 0.0, 1.5]})
    with pytest.raises(DataError, match=r"row 1 \(0.0\).*logging error.*outcome = \"real\""):
        prepare(df, Law.named("power"), "loss", "x")


def test_zero_input_message_says_why_not_units():
    df = pd.DataFrame({"x": [0.0, 1e7, 1e8], "loss": [2.0, 1.8, 1.5]})
    with pytest.raises(DataError, match=r"column 'x' has zero or negative values: row 0 \(0.0\); "
                                        r"input x is divided by its reference") as err:
        prepare(df, Law.named("power"), "loss", "x")
    assert "check the units" not in str(err.value)


# ---- exact 0 and 1 of a bounded outcome: censored -------------------------------------------
def test_unit_outcome_observes_exact_zero_and_one():
    o = Outcome.named("unit")
    y = np.array([0.0, 0.5, 1.0, -0.1, 1.1])
    np.testing.assert_array_equal(o.observable(y), [True, True, True, False, False])
    np.testing.assert_array_equal(o.valid(y), [False, True, False, False, False])  # a mean must not


def test_exact_zero_and_one_get_a_resolution_per_family():
    law = Law.from_toml(UNIT_LAW)
    df = pd.DataFrame({"x": [1.0, 2, 3, 4, 1, 2, 3, 4], "g": list("aaaabbbb"),
                       "acc": [0.0, 0.04, 0.5, 1.0, 0.2, 0.3, 0.4, 0.9],
                       "se": [0.01] * 8})
    d = prepare(df, law, "acc", "x", group="g", se="se")
    # half the smallest distance from 0 or 1 among each family's values inside (0, 1)
    np.testing.assert_allclose(d.resolution, [0.02, 0.05])
    lo, hi = d.bounds()
    np.testing.assert_allclose(d.resolved()[[0, 3]], [0.02, 0.98])
    assert np.isfinite(d.y_link()).all()
    assert d.y[0] == 0.0 and d.y[3] == 1.0  # the data are kept, not clipped
    # the se of a censored value is taken at its bound (delta method)
    np.testing.assert_allclose(d.se_log[0], 0.01 / (0.02 * 0.98))
    np.testing.assert_allclose(d.floor(), [0.02, 0.2])  # a floor() prior stays above 0


def test_held_out_exact_zero_and_one_take_their_family_bound():
    law = Law.from_toml(UNIT_LAW)
    df = pd.DataFrame({"x": [1.0, 2, 1, 2], "g": list("aabb"), "acc": [0.0, 0.1, 0.4, 0.6]})
    d = prepare(df, law, "acc", "x", group="g")
    logit = d.outcome.forward
    got = d.link_of([0.0, 1.0, 0.3, 0.0], ["a", "b", "a", "new"])
    np.testing.assert_allclose(got, logit(np.array([0.05, 0.8, 0.3, 0.05])))
    plain = prepare(df.assign(acc=[0.2, 0.1, 0.4, 0.6]), law, "acc", "x", group="g")
    np.testing.assert_allclose(plain.link_of([1.0]), logit(np.array([0.95])))  # from its own y
    assert prepare(pd.DataFrame({"x": [1.0, 2.0], "y": [-1.0, 2.0]}), Law.from_toml(REAL_LAW), "y",
                   "x").link_of([-3.0])[0] == -3.0


def test_family_of_only_zeros_takes_the_overall_resolution():
    law = Law.from_toml(UNIT_LAW)
    df = pd.DataFrame({"x": [1.0, 2, 1, 2], "g": list("aabb"), "acc": [0.0, 0.0, 0.1, 0.6]})
    np.testing.assert_allclose(prepare(df, law, "acc", "x", group="g").resolution, [0.05, 0.05])


def test_only_zeros_and_ones_is_refused():
    law = Law.from_toml(UNIT_LAW)
    df = pd.DataFrame({"x": [1.0, 2, 3], "acc": [0.0, 1.0, 1.0]})
    with pytest.raises(DataError, match="only exact 0 and 1"):
        prepare(df, law, "acc", "x")


def test_unit_outcome_se_on_logit_scale_and_unscaled_input():
    law = Law.from_toml(UNIT_LAW)
    df = pd.DataFrame({"x": [-1.0, 0.0, 3.0], "acc": [0.2, 0.5, 0.8], "se": [0.01, 0.01, 0.02]})
    d = prepare(df, law, "acc", "x", se="se")
    np.testing.assert_allclose(d.se_log, df["se"] / (df["acc"] * (1 - df["acc"])))
    assert d.refs == {"x": 1.0}  # passed as is, negative values allowed


# ---- tiny fits ------------------------------------------------------------------------------
TINY = {"chains": 2, "warmup": 200, "draws": 200, "seed": 0, "extrapolation": False, "progress": False}


@pytest.mark.slow  # one fit, about 10 s with its compilation on 2 cores
def test_real_law_recovers_known_parameters_with_negative_values():
    import bayescale as bs
    from bayescale.result.predictive import draws

    rng = np.random.default_rng(0)
    x = np.repeat(np.geomspace(1e6, 1e9, 10), 3)
    truth = {"E": -0.8, "a": 0.9, "alpha": 0.35}
    xs = x / np.exp(np.log(x).mean())  # the reference the law divides x by
    y = truth["E"] - truth["a"] * xs ** -truth["alpha"] + rng.normal(0, 0.05, x.size)
    assert (y < 0).all()
    fit = bs.fit(pd.DataFrame({"x": x, "logp": y}), law="offset_power", y="logp", x="x", **TINY)
    for name, value in truth.items():
        d = draws(fit.idata.posterior, name).ravel()
        assert abs(d.mean() - value) < 4 * d.std(), (name, d.mean(), d.std())
    band = fit.predict({"x": [1e10]}, kind="new_run")
    assert band.loc[0, "lo90"] < band.loc[0, "median"] < band.loc[0, "hi90"] < 0  # natural scale


@pytest.mark.slow  # one fit, about 6 s with its compilation on 2 cores
def test_accuracies_with_exact_zero_and_one_fit_and_stay_in_range(tmp_path):
    import bayescale as bs

    k = np.geomspace(1, 64, 7)
    df = pd.DataFrame({"task": np.repeat(["t0", "t1", "t2"], 7), "k": np.tile(k, 3),
                       "acc": [0.0, 0.0, 0.05, 0.2, 0.5, 0.8, 1.0, 0.0, 0.03, 0.1, 0.3, 0.6, 0.9, 1.0,
                               0.0, 0.02, 0.1, 0.35, 0.55, 0.85, 0.97]})
    fit = bs.fit(df, law="coverage", y="acc", x="k", group="task", **TINY)
    ll = fit.idata.log_likelihood["y_link"].values
    assert np.isfinite(ll).all() and (ll[..., df["acc"].isin([0.0, 1.0]).to_numpy()] <= 0).all()
    pred = fit.predict({"k": [0.5, 2.0, 500.0], "task": ["t0", "t1", "t2"]}, kind="new_run")
    assert ((pred[["lo90", "median", "hi90"]] >= 0) & (pred[["lo90", "median", "hi90"]] <= 1)).all().all()
    # the predictive check sees each exact 0 or 1 at its censoring bound, not at an infinite logit
    assert np.isfinite(bs.ppc(fit, summary=True)["mean_std_resid"]).all()
    again = bs.load(fit.save(tmp_path / "fit"))
    np.testing.assert_array_equal(again.design.resolution, fit.design.resolution)
