"""Tests for bayescale.data.simulate: the shape of a simulated ladder, its recorded truth, exact law
values without noise, and seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.data.simulate import DEFAULT_TRUTH, simulate
from bayescale.errors import LawError


def test_one_family_power_ladder():
    df = simulate("power", families=1, seeds=1, seed=0)
    assert len(df) == 5 * 5  # sizes x tokens per parameter
    assert list(df.columns) == ["family", "run", "seed", "loss", "x"]
    assert set(df["family"]) == {"f0"} and set(df["seed"]) == {0}
    assert df["run"].nunique() == 5 and (df.groupby("run").size() == 5).all()
    assert (df["loss"] > 0).all() and np.isfinite(df["loss"]).all()
    assert df.attrs["law"] == "power"
    assert df.attrs["truth"] == {"E": {"f0": 1.8}, "a": {"f0": 480.0}, "alpha": {"f0": 0.34}}


def test_default_chinchilla_ladder():
    df = simulate("chinchilla", seed=1)
    assert len(df) == 3 * 5 * 2 * 5  # families x sizes x seeds x ratios
    assert list(df.columns) == ["family", "run", "seed", "loss", "params", "tokens"]
    assert df["run"].nunique() == 3 * 5 * 2
    np.testing.assert_allclose(sorted(set(df["tokens"] / df["params"])), [5, 10, 20, 40, 80])
    truth = df.attrs["truth"]
    assert set(truth) == {"E", "a", "b", "alpha", "beta"}
    assert truth["E"] == dict(zip(["f0", "f1", "f2"], DEFAULT_TRUTH["chinchilla"]["E"]))
    assert truth["alpha"] == {"f0": 0.34, "f1": 0.34, "f2": 0.34}  # a scalar is shared


def test_sizes_tokens_and_seeds_set_the_shape():
    df = simulate("power", families=2, seeds=3, sizes=(1e7, 1e8), tokens_per_param=(10, 20, 40, 80), seed=0)
    assert len(df) == 2 * 3 * 2 * 4
    assert sorted(df["seed"].unique()) == [0, 1, 2]
    assert sorted(df["family"].unique()) == ["f0", "f1"]
    assert df.attrs["truth"]["E"] == {"f0": 1.8, "f1": 1.95}  # the first two default truths


def test_without_noise_the_loss_is_the_law():
    truth = {"E": [1.5, 2.0], "a": 300.0, "alpha": 0.3}
    df = simulate("power", truth=truth, families=2, seeds=1, noise=0.0, run_sd=0.0, seed=0)
    e = df["family"].map({"f0": 1.5, "f1": 2.0})
    np.testing.assert_allclose(df["loss"], e + 300.0 * df["x"] ** -0.3, rtol=1e-12)
    assert df.attrs["truth"] == {"E": {"f0": 1.5, "f1": 2.0}, "a": {"f0": 300.0, "f1": 300.0},
                                 "alpha": {"f0": 0.3, "f1": 0.3}}


def test_run_offsets_are_shared_by_a_runs_rows():
    """With no evaluation noise, the log-ratio to the law is constant within a run."""
    df = simulate("power", families=1, seeds=2, noise=0.0, run_sd=0.05, seed=3)
    offset = np.log(df["loss"] / (1.8 + 480.0 * df["x"] ** -0.34))
    spread = offset.groupby(df["run"]).agg(lambda v: v.max() - v.min())
    assert (spread < 1e-12).all()
    assert offset.groupby(df["run"]).first().std() > 0


def test_same_seed_same_data():
    a = simulate("power", families=2, truth={"E": 1.8, "a": 480.0, "alpha": 0.34}, seed=5)
    b = simulate("power", families=2, truth={"E": 1.8, "a": 480.0, "alpha": 0.34}, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs == b.attrs


def test_different_seeds_differ_only_in_the_outcome():
    a, b = simulate("power", seed=0), simulate("power", seed=1)
    assert not np.allclose(a["loss"], b["loss"])
    pd.testing.assert_frame_equal(a.drop(columns="loss"), b.drop(columns="loss"))


def test_takes_a_law_object():
    df = simulate(bs.Law.named("power"), families=1, seeds=1, seed=0)
    pd.testing.assert_frame_equal(df, simulate("power", families=1, seeds=1, seed=0))


def test_missing_truth_is_named():
    with pytest.raises(LawError, match=r"true values for \['alpha'\]"):
        simulate("power", truth={"E": 1.8, "a": 480.0})


def test_wrong_number_of_values_is_refused():
    with pytest.raises(LawError, match=r"truth\['E'\] has 2 values for 3 families"):
        simulate("power", truth={"E": [1.8, 1.9], "a": 480.0, "alpha": 0.34})
    with pytest.raises(LawError, match="has 3 values for 4 families"):
        simulate("power", families=4)  # three default truths cannot serve four families
