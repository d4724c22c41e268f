"""Tests for bayescale.inference.sample: the default target acceptance, the dense block of the mass
matrix, and ``run_design`` (one whole fit of a design: its DataTree, what it chose, its seed)."""

from __future__ import annotations

import numpy as np
import pytest

import bayescale as bs
from bayescale.inference.config import SamplerConfig
from bayescale.inference.sample import default_target_accept, dense_sites, run_design
from bayescale.laws.spec import Law
from bayescale.model import ModelConfig, Structure
from bayescale.result.fitting import columns, setup

SMALL = SamplerConfig(chains=2, warmup=100, draws=100, seed=0, progress=False)


def _structure(n_families: int, n_runs: int, pool=None) -> Structure:
    law = Law.named("power").with_pooling(pool)
    return Structure(law, n_families, n_runs, "normal", None, (("x", 1.0),))


@pytest.mark.parametrize(("families", "runs", "pool", "expected"), [
    (1, 0, None, 0.95),  # one family: partial parameters are shared
    (3, 0, {"E": "none", "a": "none"}, 0.95),  # no random effects
    (3, 0, {"E": "shared", "a": "shared"}, 0.95),
    (3, 0, None, 0.99),  # partially pooled E and a
    (3, 0, {"E": "none"}, 0.99),  # a still partial
    (1, 4, None, 0.99),  # run effects
    (3, 4, {"E": "none", "a": "none"}, 0.99),
])
def test_default_target_accept_rules(families, runs, pool, expected):
    assert default_target_accept(_structure(families, runs, pool), None) == expected


@pytest.mark.parametrize("given", [0.8, 0.9, 0.999])
def test_an_explicit_target_accept_is_kept(given):
    assert default_target_accept(_structure(3, 4), given) == given
    assert default_target_accept(_structure(1, 0), given) == given


def test_dense_sites_exclude_run_effects_in_order():
    mode = dict.fromkeys(["E_z", "run_effect", "a_z", "sigma_run", "run_effect_decentered", "sigma"], 0.0)
    assert dense_sites(mode) == ("E_z", "a_z", "sigma_run", "sigma")
    assert dense_sites({"run_effect": 0.0}) == ()


def _setup(run=None, seed=0):
    df = bs.datasets.simulate("power", families=1, seeds=1, seed=seed)
    return setup(df, "power", columns(y="loss", x="x", run=run), None, ModelConfig())


@pytest.fixture(scope="module")
def prepared():
    """One family, five runs of five rows each, with run effects."""
    return _setup(run="run")


@pytest.fixture(scope="module")
def first(prepared):
    _, design, s, data = prepared
    return run_design(s, design, data, SMALL)


def test_run_design_returns_a_datatree_with_every_group(prepared, first):
    _, design, s, _ = prepared
    idata, _ = first
    groups = set(idata.children)
    assert {"posterior", "sample_stats", "log_likelihood", "observed_data", "constant_data"} <= groups
    post = idata.posterior
    assert (post.sizes["chain"], post.sizes["draw"], post.sizes["family"]) == (2, 100, 1)
    assert {"E", "a", "alpha", "A", "sigma", "E_z", "a_z", "alpha_z", "sigma_run", "run_effect"} <= set(
        post.data_vars)
    assert list(post["E"].dims) == ["chain", "draw", "family"]
    assert list(post["run_effect"].dims) == ["chain", "draw", "run"]
    assert list(post["run"].values) == design.runs and post.sizes["run"] == 5
    assert (np.asarray(post["sigma"]) > 0).all() and (np.asarray(post["sigma_run"]) > 0).all()


def test_run_design_keeps_the_sampler_statistics(first):
    stats = first[0].sample_stats
    # ArviZ renames NumPyro's num_steps to n_steps and potential_energy to lp
    for name in ("diverging", "energy", "n_steps", "lp"):
        assert name in stats.data_vars, name
        assert (stats[name].sizes["chain"], stats[name].sizes["draw"]) == (2, 100)
    assert stats["diverging"].dtype == bool
    assert (np.asarray(stats["n_steps"]) >= 1).all()
    assert np.isfinite(np.asarray(stats["energy"])).all()


def test_run_design_log_likelihood_and_data(prepared, first):
    _, design, _, _ = prepared
    idata = first[0]
    ll = idata.log_likelihood["y_link"]
    assert (ll.sizes["chain"], ll.sizes["draw"], ll.sizes["obs"]) == (2, 100, len(design.y))
    assert np.isfinite(np.asarray(ll)).all()
    np.testing.assert_allclose(np.asarray(idata.observed_data["y_link"]), np.log(design.y), rtol=1e-12)
    const = idata.constant_data
    np.testing.assert_array_equal(np.asarray(const["family_idx"]), design.family_idx)
    np.testing.assert_array_equal(np.asarray(const["run_idx"]), design.run_idx)
    np.testing.assert_array_equal(np.asarray(const["input_x"]), design.inputs["x"])
    np.testing.assert_array_equal(np.asarray(const["se_log"]), design.se_log)


def test_run_design_reports_what_it_chose(first):
    """Runs of 5 rows with noise ~0.01 pin each run's offset to ~0.0045, well inside the run prior's
    0.05, so the run effects are centred; random effects raise the target acceptance to 0.99."""
    idata, chosen = first
    assert chosen == {"centring": {"run_effect": 1.0}, "target_accept": 0.99, "device": "cpu",
                      "anchored": None}
    assert "run_effect_decentered" not in idata.posterior.data_vars


def test_same_seed_identical_draws(prepared, first):
    _, design, s, data = prepared
    again, chosen = run_design(s, design, data, SMALL)
    assert chosen == first[1]
    for name in first[0].posterior.data_vars:
        np.testing.assert_array_equal(np.asarray(again.posterior[name]), np.asarray(first[0].posterior[name]))
    np.testing.assert_array_equal(np.asarray(again.sample_stats["n_steps"]),
                                  np.asarray(first[0].sample_stats["n_steps"]))


def test_a_backend_without_progress_of_its_own_gets_a_line_at_start_and_end(monkeypatch):
    """The lowrank backend runs whole chains in one program: progress is its start and its end."""
    import io
    import types

    from bayescale.inference import sample as sampling
    from bayescale.inference.progress import Reporter, reporting

    class Draws:
        def get_sample_stats(self):
            return {"diverging": np.array([[0, 1, 0], [1, 1, 0]])}

    engine = types.SimpleNamespace(sample=lambda *a, **k: Draws())
    monkeypatch.setattr(sampling, "backend", lambda name: engine)
    monkeypatch.setattr(sampling, "to_datatree", lambda draws, design, s: draws)
    stream = io.StringIO()
    config = SamplerConfig(backend="lowrank", chains=2, warmup=5, draws=3)
    with reporting(reporter=Reporter("log", stream)):
        sampling.sample(None, {}, config, init={}, target_accept=0.9, design=None, structure=None)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "compiling 2 chain(s) x (5 warm-up + 3 draws)" in lines[0]
    assert "done, 6 draws, 3 divergent transition(s)" in lines[1]
    stream.truncate(0)
    sampling.sample(None, {}, config.with_(progress=False), init={}, target_accept=0.9, design=None,
                    structure=None)
    assert stream.getvalue() == ""

