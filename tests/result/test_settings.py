"""Tests for bayescale.result.settings: the typed, immutable record of how a fit was made, its JSON
record, and reading back both this format and the flat dictionaries of format 1 artifacts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bayescale.inference.config import SamplerConfig
from bayescale.result.settings import ModelOptions, Settings

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "fit_format1" / "fit.json"


@pytest.fixture
def settings():
    return Settings(
        law="power", likelihood="student_t", parameterization="centred", min_rows_per_family=3,
        check_units=False,
        sampler=SamplerConfig(chains=2, warmup=100, draws=50, seed=7, device="cpu", target_accept=0.9),
        target_accept=0.9, centring={"E": 1.0, "run_effect": 0.0}, seconds=3.25, batched="parallel",
        data_set=4, attempts=2,
        extrapolation={"rate": 0.012, "curvature": 0.0, "dof": 5.0, "reach": 1.5, "origins": 3},
        nested=({"origin": 1e9, "verdict": "passed", "reason": "", "seconds": 1.0},
                {"origin": 3e9, "verdict": "FAILED: rhat", "reason": "rhat", "seconds": 2.0}),
    )


def test_record_is_json_and_round_trips(settings):
    record = settings.record()
    text = json.dumps(record)
    assert Settings.from_record(record) == settings
    assert Settings.from_record(json.loads(text)) == settings  # through JSON too: lists back to tuples
    assert record["sampler"] == settings.sampler.record()
    assert isinstance(record["nested"], list) and record["nested"][1]["verdict"] == "FAILED: rhat"


def test_default_record_round_trips():
    s = Settings(law="chinchilla")
    assert Settings.from_record(json.loads(json.dumps(s.record()))) == s
    assert s.sampler == SamplerConfig() and s.nested == () and s.batched is None


def test_record_does_not_share_the_nested_rows(settings):
    record = settings.record()
    record["nested"][0]["verdict"] = "changed"
    assert settings.nested[0]["verdict"] == "passed"


FLAT = {"law": "power", "likelihood": "normal", "chains": 2, "warmup": 100, "draws": 50, "seed": 0,
        "device": "cpu", "parameterization": "auto", "min_rows_per_family": 2, "check_units": True,
        "target_accept": 0.95, "centring": {}, "seconds": 10.12,
        "extrapolation": {"skipped": "too few sizes"}}


def test_from_record_reads_the_flat_format_1_dict():
    s = Settings.from_record(FLAT)
    assert s.sampler == SamplerConfig(chains=2, warmup=100, draws=50, seed=0, device="cpu",
                                      target_accept=0.95)
    assert (s.law, s.likelihood, s.parameterization, s.min_rows_per_family, s.check_units) == (
        "power", "normal", "auto", 2, True)
    assert (s.target_accept, s.centring, s.seconds) == (0.95, {}, 10.12)
    assert s.extrapolation == {"skipped": "too few sizes"}
    assert (s.batched, s.data_set, s.attempts, s.nested) == (None, None, None, ())
    assert FLAT["chains"] == 2 and "sampler" not in FLAT  # the caller's dict is left as it was


def test_from_record_reads_the_saved_format_1_fixture():
    meta = json.loads(FIXTURE.read_text())
    assert meta["format"] == 1
    s = Settings.from_record(meta["settings"])
    flat = meta["settings"]
    assert (s.chains, s.warmup, s.draws, s.seed, s.device) == (
        flat["chains"], flat["warmup"], flat["draws"], flat["seed"], flat["device"])
    assert s.sampler.target_accept == s.target_accept == flat["target_accept"]
    assert s.extrapolation is None
    # and written in this format, it reads back the same
    assert Settings.from_record(json.loads(json.dumps(s.record()))) == s


def test_from_record_ignores_unknown_keys():
    s = Settings.from_record({**FLAT, "format": 1, "versions": {"jax": "0"}})
    assert s == Settings.from_record(FLAT)


def test_frozen(settings):
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.seconds = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.sampler.chains = 8
    with pytest.raises(dataclasses.FrozenInstanceError):
        ModelOptions().y = "acc"


def test_with_returns_a_copy(settings):
    copy = settings.with_(attempts=3, seconds=9.0)
    assert (copy.attempts, copy.seconds) == (3, 9.0)
    assert (settings.attempts, settings.seconds) == (2, 3.25)
    assert copy.with_(attempts=2, seconds=3.25) == settings
    with pytest.raises(TypeError):
        settings.with_(not_a_field=1)


def test_properties_read_the_sampler(settings):
    assert (settings.chains, settings.draws, settings.warmup, settings.seed, settings.device) == (
        2, 50, 100, 7, "cpu")
    other = settings.with_(sampler=settings.sampler.with_(chains=4, draws=10, warmup=5, seed=1, device="gpu"))
    assert (other.chains, other.draws, other.warmup, other.seed, other.device) == (4, 10, 5, 1, "gpu")


def test_nested_table_lists_the_nested_fits_in_a_fixed_column_order(settings):
    table = settings.nested_table()
    assert list(table.columns) == ["origin", "fit", "rows", "verdict", "reason", "used", "seconds"]
    assert table["verdict"].tolist() == ["passed", "FAILED: rhat"]
    assert table["fit"].isna().all()  # rows saved before the fit and used columns: left empty
    assert Settings(law="power").nested_table().empty


def test_duplicates_option_round_trips():
    s = Settings(law="power", duplicates="drop")
    assert Settings.from_record(json.loads(json.dumps(s.record()))).duplicates == "drop"
    assert Settings(law="power").duplicates == "keep" == ModelOptions().duplicates
