"""Tests for bayescale.inference.config: SamplerConfig validation (messages name the field and
value), copies and records of a config, and ``take``."""

from __future__ import annotations

import dataclasses

import pytest

from bayescale.errors import FitError
from bayescale.inference.config import SamplerConfig, take
from bayescale.model import ModelConfig


@pytest.mark.parametrize(("field", "value", "shown"), [
    ("chains", 0, "chains=0"),
    ("chains", 2.0, "chains=2.0"),
    ("chains", True, "chains=True"),
    ("warmup", -1, "warmup=-1"),
    ("draws", 0, "draws=0"),
    ("draws", "100", "draws='100'"),
    ("max_tree_depth", 0, "max_tree_depth=0"),
    ("target_accept", 1.0, "target_accept=1.0"),
    ("target_accept", 0, "target_accept=0"),
    ("target_accept", -0.5, "target_accept=-0.5"),
    ("backend", "stan", "backend='stan'"),
    ("device", "tpu", "device='tpu'"),
])
def test_invalid_field_raises_fit_error_naming_field_and_value(field, value, shown):
    with pytest.raises(FitError, match="SamplerConfig") as info:
        SamplerConfig(**{field: value})
    assert shown in str(info.value)


def test_boundary_values_are_accepted():
    c = SamplerConfig(chains=1, warmup=0, draws=1, max_tree_depth=1, target_accept=0.5)
    assert (c.chains, c.warmup, c.draws, c.max_tree_depth, c.target_accept) == (1, 0, 1, 1, 0.5)


@pytest.mark.parametrize(("given", "kept"), [(None, None), ("auto", "auto"), ("CPU", "cpu"), ("Gpu", "gpu")])
def test_device_is_normalised_to_lower_case(given, kept):
    assert SamplerConfig(device=given).device == kept


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SamplerConfig().chains = 2


def test_with_returns_a_validated_copy():
    base = SamplerConfig(chains=2, draws=50)
    copy = base.with_(seed=9, draws=70)
    assert (copy.chains, copy.draws, copy.seed) == (2, 70, 9)
    assert (base.draws, base.seed) == (50, 0)  # the original is unchanged
    with pytest.raises(FitError, match="draws=0"):
        base.with_(draws=0)


def test_record_round_trip():
    c = SamplerConfig(chains=3, warmup=20, draws=30, target_accept=0.9, max_tree_depth=7, seed=11,
                      device="cpu", progress=False)
    record = c.record()
    assert record == {"backend": "numpyro", "chains": 3, "warmup": 20, "draws": 30, "target_accept": 0.9,
                      "max_tree_depth": 7, "seed": 11, "device": "cpu", "progress": False}
    assert SamplerConfig.from_record(record) == c


def test_from_record_ignores_unknown_keys_and_fills_defaults():
    c = SamplerConfig.from_record({"chains": 2, "likelihood": "normal", "seconds": 1.5})
    assert c == SamplerConfig(chains=2)


def test_take_pops_only_the_config_fields():
    settings = {"chains": 3, "seed": 7, "likelihood": "student_t", "group": "family"}
    c = take(settings, SamplerConfig)
    assert (c.chains, c.seed) == (3, 7)
    assert c.draws == SamplerConfig().draws
    assert settings == {"likelihood": "student_t", "group": "family"}
    m = take(settings, ModelConfig)
    assert m.likelihood == "student_t"
    assert settings == {"group": "family"}


def test_take_applies_onto_the_base_and_returns_it_untouched_when_nothing_is_given():
    base = SamplerConfig(chains=2, draws=50)
    settings = {"draws": 60, "other": 1}
    assert take(settings, SamplerConfig, base) == SamplerConfig(chains=2, draws=60)
    assert take({"other": 1}, SamplerConfig, base) is base


def test_take_refuses_a_base_of_another_type():
    settings = {"chains": 2}
    with pytest.raises(FitError, match="expected a SamplerConfig, not ModelConfig"):
        take(settings, SamplerConfig, ModelConfig())
