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


@pytest.mark.parametrize("kind", ["positive", "unit"])
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
    with pytest.raises(DataError, match=r"column 'acc' has values outside \(0, 1\): row 1 \(42.0\)"):
        prepare(df, law, "acc", "x")


def test_unit_outcome_se_on_logit_scale_and_unscaled_input():
    law = Law.from_toml(UNIT_LAW)
    df = pd.DataFrame({"x": [-1.0, 0.0, 3.0], "acc": [0.2, 0.5, 0.8], "se": [0.01, 0.01, 0.02]})
    d = prepare(df, law, "acc", "x", se="se")
    np.testing.assert_allclose(d.se_log, df["se"] / (df["acc"] * (1 - df["acc"])))
    assert d.refs == {"x": 1.0}  # passed as is, negative values allowed
