"""Inputs derived per run from a training schedule (bayescale.schedule)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayescale.data.design import prepare
from bayescale.errors import DataError, LawError
from bayescale.laws.formula import parse
from bayescale.laws.schedule import FUNCTIONS, derive
from bayescale.laws.spec import Law

SPEC = """
name = "toy_schedule"
formula = "E + a * S1**(-alpha) - c * S2"
[inputs]
S1 = { description = "forward area", derived = "cumsum(lr)" }
S2 = { description = "annealing area", scale = "none", derived = "cumsum(decay_sum(-diff(lr), 0.9))" }
[schedule]
step = "optimiser step"
lr = "learning rate"
[parameters]
E = "lognormal(0, 1)"
a = "lognormal(0, 1)"
alpha = "lognormal(log(0.5), 0.5)"
c = "lognormal(0, 1)"
"""


def _f(text):
    return parse(text, {"lr", "step"}, extra=FUNCTIONS)


def test_cumsum_over_sparse_rows_counts_every_step():
    # constant lr 2 from step 0: the area at step s is 2 (s + 1)
    cols = {"step": np.array([0.0, 10.0, 100.0]), "lr": np.full(3, 2.0)}
    out = derive({"S": _f("cumsum(lr)")}, cols, np.zeros(3, int))
    np.testing.assert_allclose(out["S"], [2.0, 22.0, 202.0])


def test_interpolates_a_linear_decay_between_rows():
    # lr falls linearly from 1 at step 0 to 0 at step 10: the sum over steps 0..10 is 5.5
    cols = {"step": np.array([10.0, 0.0]), "lr": np.array([0.0, 1.0])}  # unordered rows
    out = derive({"S": _f("cumsum(lr)")}, cols, np.zeros(2, int))
    np.testing.assert_allclose(out["S"], [5.5, 1.0])


def test_decay_sum_is_the_momentum_recursion():
    cols = {"step": np.array([0.0, 1.0, 2.0, 3.0]), "lr": np.array([1.0, 0.5, 0.5, 0.0])}
    out = derive({"m": _f("decay_sum(-diff(lr), 0.5)")}, cols, np.zeros(4, int))
    # drops: 0, 0.5, 0, 0.5 -> m = 0, 0.5, 0.25, 0.625
    np.testing.assert_allclose(out["m"], [0.0, 0.5, 0.25, 0.625])


def test_runs_are_derived_separately():
    cols = {"step": np.array([5.0, 5.0]), "lr": np.array([1.0, 3.0])}
    out = derive({"S": _f("cumsum(lr)")}, cols, np.array([0, 1]))
    np.testing.assert_allclose(out["S"], [6.0, 18.0])


def test_law_with_schedule_maps_schedule_columns():
    law = Law.from_toml(SPEC)
    assert law.inputs == ("S1", "S2")
    assert law.columns == ("step", "lr")
    assert Law.from_toml(law.to_toml()).input_specs["S2"].derived.text.startswith("cumsum")
    steps = np.arange(100, 1100, 100.0)
    df = pd.DataFrame({"run": np.repeat(["r0", "r1"], 10), "step": np.tile(steps, 2),
                       "lr": np.concatenate([np.full(10, 1e-3), np.linspace(1e-3, 1e-4, 10)]),
                       "loss": np.linspace(4, 3, 20)})
    d = prepare(df, law, "loss", {"step": "step", "lr": "lr"}, run="run")
    np.testing.assert_allclose(d.inputs["S1"][:10], 1e-3 * (steps + 1))
    assert np.all(d.inputs["S2"][:10] == 0) and d.inputs["S2"][-1] > 0
    assert d.refs["S2"] == 1.0


def test_repeated_steps_without_runs_are_refused():
    law = Law.from_toml(SPEC)
    df = pd.DataFrame({"step": [10.0, 10.0, 20.0], "lr": [1.0, 1.0, 1.0], "loss": [3.0, 3.1, 2.9]})
    with pytest.raises(DataError, match="repeated steps within a run"):
        prepare(df, law, "loss", {"step": "step", "lr": "lr"})


def test_derived_inputs_need_a_step_column():
    with pytest.raises(LawError, match="lacks 'step'"):
        Law.from_toml(SPEC.replace('step = "optimiser step"\n', ""))


def test_derived_expression_is_parsed_not_evaluated():
    with pytest.raises(LawError, match="not allowed"):
        Law.from_toml(SPEC.replace('"cumsum(lr)"', '"__import__(lr)"'))


def test_a_run_with_too_few_rows_warns_that_its_schedule_is_interpolated():
    from bayescale.errors import DesignWarning

    law = Law.from_toml(SPEC)
    df = pd.DataFrame({"run": ["a", "b", "b", "b"], "step": [5000.0, 100.0, 200.0, 300.0],
                       "lr": [1e-4, 1e-3, 1e-3, 1e-3], "loss": [3.0, 4.0, 3.9, 3.8]})
    with pytest.warns(DesignWarning, match="only 1 row"):
        prepare(df, law, "loss", {"step": "step", "lr": "lr"}, run="run")
