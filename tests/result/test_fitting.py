"""Tests for bayescale.result.fitting: ``request`` (keywords into typed configs), ``Request.with_``,
pooling with few families, a plain fit's recorded settings, and the ``Job`` sent to workers."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

import bayescale as bs
from bayescale.errors import BayescaleError, DesignWarning
from bayescale.inference.config import SamplerConfig
from bayescale.laws.spec import Law, resolve
from bayescale.model import ModelConfig
from bayescale.result.fit import Fit
from bayescale.result.fitting import (
    MIN_POOL_FAMILIES,
    Job,
    Request,
    columns,
    fit_plain,
    pool_few_families,
    request,
)
from bayescale.result.settings import Settings


# ---- request ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["chain", "num_draws", "group_by"])
def test_request_unknown_keyword_is_named(bad):
    with pytest.raises(BayescaleError, match=f"unknown fit keyword\\(s\\) \\['{bad}'\\]"):
        request("power", **{bad: 2})


def test_request_names_every_unknown_keyword():
    with pytest.raises(BayescaleError) as info:
        request("power", zeta=1, alpha=2, chains=2)
    assert "['alpha', 'zeta']" in str(info.value)


def test_request_defaults():
    r = request("power", y="acc", x="x", group="family")
    assert r == Request("power", columns("acc", "x", "family"), None, ModelConfig(), SamplerConfig())
    assert r.cols == {"y": "acc", "x": "x", "group": "family", "run": None, "se": None, "weight": None}


def test_request_keywords_override_the_configs():
    sampler = SamplerConfig(chains=2, seed=5, draws=300)
    model = ModelConfig(likelihood="student_t", min_rows_per_family=3)
    r = request("power", sampler=sampler, model=model, draws=40, target_accept=0.9, check_units=False,
                parameterization="centred", pool={"E": "none"})
    assert r.sampler == SamplerConfig(chains=2, seed=5, draws=40, target_accept=0.9)
    assert r.model == ModelConfig(likelihood="student_t", min_rows_per_family=3, check_units=False,
                                  parameterization="centred")
    assert r.pool == {"E": "none"}
    assert sampler.draws == 300 and model.check_units  # the configs passed in are unchanged


def test_request_none_keywords_leave_the_configs():
    sampler = SamplerConfig(chains=3)
    r = request("power", sampler=sampler, chains=None, likelihood=None, seed=None)
    assert r.sampler == sampler and r.model == ModelConfig()


def test_request_validates_values_and_types():
    with pytest.raises(BayescaleError, match="chains=0"):
        request("power", chains=0)
    with pytest.raises(BayescaleError, match="likelihood='cauchy'"):
        request("power", likelihood="cauchy")
    with pytest.raises(BayescaleError, match="sampler= takes a bayescale.SamplerConfig"):
        request("power", sampler={"chains": 2})
    with pytest.raises(BayescaleError, match="model= a bayescale.ModelConfig"):
        request("power", model=SamplerConfig())


def test_request_with_dict_updates():
    r = request("power", chains=2, likelihood="student_t")
    changed = r.with_(sampler={"draws": 10, "seed": 4}, model={"check_units": False}, pool={"a": "none"})
    assert changed.sampler == SamplerConfig(chains=2, draws=10, seed=4)
    assert changed.model == ModelConfig(likelihood="student_t", check_units=False)
    assert changed.pool == {"a": "none"} and changed.law == "power" and changed.cols == r.cols
    assert r.sampler == SamplerConfig(chains=2) and r.pool is None  # the original is unchanged
    whole = r.with_(sampler=SamplerConfig(seed=1))
    assert whole.sampler == SamplerConfig(seed=1)  # a config replaces, a dict updates
    with pytest.raises(BayescaleError, match="draws=0"):
        r.with_(sampler={"draws": 0})


# ---- pool_few_families -----------------------------------------------------------------------
POWER = resolve("power")  # E and a partially pooled, alpha shared


@pytest.mark.parametrize("families", [2, 3, MIN_POOL_FAMILIES - 1])
def test_few_families_demote_partial_parameters(families):
    law, notes = pool_few_families(POWER, families, set())
    assert {n: p.pool for n, p in law.parameters.items()} == {"E": "none", "a": "none", "alpha": "shared"}
    assert len(notes) == 1
    note = notes[0]
    assert note.kind == "few_families" and note.category is DesignWarning
    assert f"{families} families" in note.message and "E, a" in note.message
    assert POWER.parameters["E"].pool == "partial"  # the law passed in is unchanged


@pytest.mark.parametrize("families", [1, MIN_POOL_FAMILIES, 12])
def test_enough_families_or_one_keep_the_pooling(families):
    law, notes = pool_few_families(POWER, families, set())
    assert law is POWER and notes == []


def test_explicit_choices_are_left_as_asked():
    law, notes = pool_few_families(POWER, 3, {"E"})
    assert law.parameters["E"].pool == "partial" and law.parameters["a"].pool == "none"
    assert len(notes) == 1 and "how a vary" in notes[0].message
    law, notes = pool_few_families(POWER, 3, {"E", "a"})
    assert law is POWER and notes == []


def test_a_law_without_partial_parameters_is_unchanged():
    shared = POWER.with_pooling({"E": "shared", "a": "none"})
    law, notes = pool_few_families(shared, 3, set())
    assert law is shared and notes == []


# ---- fit_plain -------------------------------------------------------------------------------
SAMPLER = SamplerConfig(chains=2, warmup=100, draws=100, seed=0, progress=False)


@pytest.fixture(scope="module")
def plain():
    df = bs.datasets.simulate("power", families=1, seeds=1, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.DiagnosticsWarning)  # 100 draws: ESS is below the gate's
        return fit_plain(df, "power", columns("loss", "x"), None, ModelConfig(), SAMPLER)


def test_fit_plain_returns_a_fit_with_its_settings(plain):
    assert isinstance(plain, Fit)
    s = plain.settings
    assert isinstance(s, Settings)
    assert s.sampler == SAMPLER.with_(device="cpu")
    assert (s.law, s.likelihood, s.parameterization, s.min_rows_per_family, s.check_units) == (
        "power", "normal", "auto", 2, True)
    assert s.target_accept == 0.95 and s.centring == {}
    assert isinstance(s.seconds, float) and s.seconds >= 0
    assert (s.batched, s.data_set, s.attempts, s.extrapolation, s.nested) == (None, None, None, None, ())


def test_fit_plain_posterior_and_gate(plain):
    post = plain.idata.posterior
    assert (post.sizes["chain"], post.sizes["draw"]) == (2, 100)
    assert len(plain.design.y) == 25 and plain.design.families == ["all"]
    # the gate ran: its table covers the law's parameters and the noise
    assert {"E[all]", "a[all]", "alpha[all]", "sigma"} <= set(plain.diagnostics.index)
    assert (plain.verdict() == "passed") == plain.ok  # whichever way the gate went
    assert plain.ok or plain.verdict().startswith("FAILED: ")
    assert np.isfinite(plain.diagnostics["mean"]).all()


def test_fit_plain_refuses_an_unknown_law():
    df = bs.datasets.simulate("power", families=1, seeds=1, seed=0)
    with pytest.raises(bs.LawError, match="unknown law 'pwer'"):
        fit_plain(df, "pwer", columns("loss", "x"))


# ---- Job -------------------------------------------------------------------------------------
def test_job_pickles_with_the_law_as_toml():
    law = POWER.with_pooling({"alpha": "partial", "E": "none"})
    job = Job(law, columns("loss", "x", "family"), {"alpha": "partial"}, ModelConfig(likelihood="student_t"),
              SamplerConfig(chains=2, seed=9), vectorize=False, pad=True)
    state = job.__getstate__()
    assert isinstance(state["base"], str) and state["base"] == law.to_toml()
    assert job.base is law  # taking the state leaves the job as it was
    data = pickle.dumps(job)
    assert b"bayescale.laws" not in data  # no Law object travels, only its text
    back = pickle.loads(data)
    assert isinstance(back.base, Law)
    assert back.base.name == "power" and back.base.formula.text == law.formula.text
    assert {n: p.pool for n, p in back.base.parameters.items()} == {"E": "none", "a": "partial",
                                                                     "alpha": "partial"}
    assert back.base.to_toml() == law.to_toml()
    assert (back.cols, back.pool, back.model, back.sampler, back.vectorize, back.pad) == (
        job.cols, job.pool, job.model, job.sampler, job.vectorize, job.pad)


def test_job_prepare_groups_data_sets_by_shape():
    frames = {0: bs.datasets.simulate("power", families=1, seeds=1, seed=0),
              1: bs.datasets.simulate("power", families=1, seeds=1, seed=1),
              2: bs.datasets.simulate("power", families=1, seeds=1, seed=2, sizes=(2e7, 5e7, 1.2e8))}
    job = Job(POWER, columns("loss", "x"), None, ModelConfig(), SAMPLER)
    prepared, groups = job.prepare(frames)
    assert sorted(prepared) == [0, 1, 2]
    assert sorted(sorted(members) for members in groups.values()) == [[0, 1], [2]]
    padded = Job(POWER, columns("loss", "x"), None, ModelConfig(), SAMPLER, pad=True)
    _, groups = padded.prepare(frames)
    assert list(groups.values()) == [[0, 1, 2]]


def test_job_prepare_names_the_failing_data_set():
    bad = bs.datasets.simulate("power", families=1, seeds=1, seed=0).drop(columns="loss")
    job = Job(POWER, columns("loss", "x"), None, ModelConfig(), SAMPLER)
    with pytest.raises(bs.DataError, match="data set 'b'"):
        job.prepare({0: bad}, names=["b"])
