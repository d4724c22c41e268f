"""Tests for bayescale.errors: the hierarchy of errors and warnings, and FitWarning records."""

from __future__ import annotations

import dataclasses
import warnings

import pytest

import bayescale as bs
from bayescale import errors
from bayescale.errors import (
    BayescaleError,
    BayescaleWarning,
    DataError,
    DesignWarning,
    DiagnosticsWarning,
    ExtrapolationWarning,
    FitError,
    FitWarning,
    LawError,
    LooWarning,
)


@pytest.mark.parametrize(("error", "builtin"), [(DataError, ValueError), (LawError, ValueError),
                                                (FitError, RuntimeError)])
def test_errors_are_bayescale_errors_and_builtins(error, builtin):
    assert issubclass(error, BayescaleError) and issubclass(error, builtin)
    with pytest.raises(builtin, match="the message"):
        raise error("the message")
    with pytest.raises(BayescaleError):
        raise error("x")


def test_the_base_error_is_neither_value_nor_runtime_error():
    assert issubclass(BayescaleError, Exception)
    assert not issubclass(BayescaleError, ValueError | RuntimeError)
    assert not issubclass(DataError, RuntimeError) and not issubclass(FitError, ValueError)


@pytest.mark.parametrize("warning", [DesignWarning, DiagnosticsWarning, LooWarning, ExtrapolationWarning])
def test_warnings_are_bayescale_user_warnings(warning):
    assert issubclass(warning, BayescaleWarning) and issubclass(BayescaleWarning, UserWarning)
    assert not issubclass(warning, BayescaleError)
    with pytest.warns(BayescaleWarning, match="look"):
        warnings.warn(warning("look"), stacklevel=1)


def test_loo_warning_is_a_diagnostics_warning():
    assert issubclass(LooWarning, DiagnosticsWarning)
    assert not issubclass(DesignWarning, DiagnosticsWarning)
    assert not issubclass(ExtrapolationWarning, DiagnosticsWarning)


def test_fit_warning_record():
    w = FitWarning("divergences", "3 divergent transitions.", DiagnosticsWarning)
    assert (w.kind, w.message, w.category) == ("divergences", "3 divergent transitions.", DiagnosticsWarning)
    assert str(w) == "[divergences] 3 divergent transitions."
    assert issubclass(w.category, Warning)


def test_fit_warning_default_category_and_equality():
    w = FitWarning("few_sizes", "only 2 sizes")
    assert w.category is BayescaleWarning
    assert w == FitWarning("few_sizes", "only 2 sizes", BayescaleWarning)
    assert w != FitWarning("few_sizes", "only 2 sizes", DesignWarning)
    assert hash(w) == hash(FitWarning("few_sizes", "only 2 sizes"))


def test_fit_warning_is_frozen():
    w = FitWarning("rhat", "chains disagree")
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.kind = "ess_bulk"


def test_fit_warning_emits_as_its_category():
    w = FitWarning("collinear", "N and D move together", DesignWarning)
    with pytest.warns(DesignWarning, match=r"\[collinear\] N and D move together"):
        warnings.warn(w.category(str(w)), stacklevel=1)


def test_the_package_exports_the_same_classes():
    for name in ("BayescaleError", "DataError", "LawError", "FitError", "FitWarning", "DesignWarning",
                 "DiagnosticsWarning", "LooWarning", "ExtrapolationWarning"):
        assert getattr(bs, name) is getattr(errors, name)
