"""Tests for bayescale.inference.stacked: which data sets share a compiled program (``shape_key``),
and ``Group``: one DataTree per member, whose draws do not depend on the other members."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.inference.config import SamplerConfig
from bayescale.inference.stacked import Group, shape_key
from bayescale.model import ModelConfig, pad_rows
from bayescale.result.fitting import columns, setup

CONFIG = SamplerConfig(chains=2, warmup=50, draws=50, seed=3, progress=False)
COLS = columns(y="loss", x="x")


def _setup(seed, **simulate):
    df = bs.datasets.simulate("power", families=1, seeds=1, seed=seed, **simulate)
    return setup(df, "power", COLS, None, ModelConfig())


def _key(prepared):
    law, _, s, data = prepared
    return shape_key(law, s, data)


@pytest.fixture(scope="module")
def prepared():
    return {0: _setup(0), 1: _setup(1)}


def test_shape_key_equal_for_equal_shapes(prepared):
    # seeds 0 and 1: other noise, so other outcomes, in arrays of the same shapes
    assert not np.array_equal(prepared[0][1].y, prepared[1][1].y)
    assert _key(prepared[0]) == _key(prepared[1])


def test_shape_key_differs_with_the_number_of_rows(prepared):
    fewer = _setup(0, sizes=(2e7, 5e7, 1.2e8, 3e8))
    assert len(fewer[1].y) == 20 != len(prepared[0][1].y)
    assert _key(fewer) != _key(prepared[0])


def test_shape_key_equal_for_padded_data_sets(prepared):
    """Padding to one size (``fit_many(pad=True)``) is what lets data sets of other sizes share."""
    law, _, s, data = _setup(0, sizes=(2e7, 5e7, 1.2e8, 3e8))
    rows = len(prepared[0][1].y)
    padded = pad_rows(data, rows)
    full = pad_rows(prepared[0][3], rows)
    assert shape_key(law, s, padded) == shape_key(prepared[0][0], prepared[0][2], full)


def test_shape_key_differs_with_pooling_and_likelihood(prepared):
    student = setup(bs.datasets.simulate("power", families=1, seeds=1, seed=0), "power", COLS, None,
                    ModelConfig(likelihood="student_t"))
    assert _key(student) != _key(prepared[0])
    alone = setup(bs.datasets.simulate("power", families=1, seeds=1, seed=0), "power", COLS,
                  {"alpha": "none"}, ModelConfig())
    assert _key(alone) != _key(prepared[0])


@pytest.fixture(scope="module")
def both(prepared):
    return {i: (idata, chosen) for i, idata, chosen in Group(prepared, CONFIG, vectorize=False)([0, 1])}


def test_group_yields_one_datatree_per_member(prepared, both):
    assert sorted(both) == [0, 1]
    for i, (idata, chosen) in both.items():
        post = idata.posterior
        assert (post.sizes["chain"], post.sizes["draw"]) == (CONFIG.chains, CONFIG.draws)
        assert idata.log_likelihood["y_link"].sizes["obs"] == len(prepared[i][1].y)
        stats = idata.sample_stats
        assert (stats["diverging"].sizes["chain"], stats["diverging"].sizes["draw"]) == (2, 50)
        assert chosen["centring"] == {} and chosen["target_accept"] == 0.95
        assert chosen["seconds"] >= 0
    # each data set keeps its own observations
    for i in (0, 1):
        np.testing.assert_allclose(np.asarray(both[i][0].observed_data["y_link"]),
                                   np.log(prepared[i][1].y), rtol=1e-12)
    assert not np.array_equal(np.asarray(both[0][0].posterior["E"]), np.asarray(both[1][0].posterior["E"]))


def test_draws_do_not_depend_on_the_other_members(prepared, both):
    alone = {i: idata for i, idata, _ in Group(prepared, CONFIG, vectorize=False)([1])}
    assert list(alone) == [1]
    shared = both[1][0]
    for name in shared.posterior.data_vars:
        np.testing.assert_array_equal(np.asarray(alone[1].posterior[name]),
                                      np.asarray(shared.posterior[name]), err_msg=name)
    np.testing.assert_array_equal(np.asarray(alone[1].sample_stats["n_steps"]),
                                  np.asarray(shared.sample_stats["n_steps"]))


@pytest.mark.slow  # two stacked groups compiled
def test_each_stacked_fit_chooses_its_own_anchor():
    """A curve over four decades at 0.3% noise fixes its exponent; one over one decade at 1% does
    not: in one call, only the second samples its amplitude at the reference point, as a single
    fit of it would."""
    rng = np.random.default_rng(0)

    def curve(decades, noise, alpha):
        x = np.geomspace(1e6, 1e6 * 10**decades, 15)
        ref = 1e6 * 10 ** (decades / 2)
        return pd.DataFrame({"x": x, "loss": (2.0 + (x / ref) ** -alpha) * np.exp(rng.normal(0, noise, 15))})

    frames = [curve(4, 0.003, 0.3), curve(1, 0.01, 0.1)]
    fits = bs.fit_many(frames, law="power", y="loss", x="x", progress=False,
                       sampler=SamplerConfig(chains=2, warmup=200, draws=200))
    assert [f.settings.anchored for f in fits] == [None, "a"]
    assert bs.fit(frames[1], law="power", y="loss", x="x", extrapolation=False, progress=False,
                  chains=2, warmup=200, draws=200).settings.anchored == "a"
