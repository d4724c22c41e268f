"""Tests for bayescale.cli.format: the summary table, the calibration line and the diagnostics
verdict as the terminal shows them (built from stand-in objects with the attributes used)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from bayescale.cli.format import format_calibration, format_summary, format_verdict
from bayescale.errors import DesignWarning, DiagnosticsWarning, FitWarning


def _summary():
    return pd.DataFrame([
        {"parameter": "E", "family": "f0", "mean": 1.823456, "sd": 0.0123456, "q5": 1.8, "q95": 1.85,
         "r_hat": 1.0012, "ess_bulk": 812.4, "ess_tail": 640.6},
        {"parameter": "alpha", "family": None, "mean": 0.34, "sd": 0.02, "q5": 0.3, "q95": 0.38,
         "r_hat": 1.0, "ess_bulk": 1500.0, "ess_tail": 700.0},
    ])


def test_format_summary():
    table = _summary()
    before = table.copy()
    text = format_summary(table)
    lines = text.splitlines()
    assert len(lines) == 3
    assert lines[0].split() == ["parameter", "family", "mean", "sd", "5%", "95%", "r_hat", "ess_bulk",
                                "ess_tail"]
    assert lines[1].split() == ["E", "f0", "1.823", "0.01235", "1.8", "1.85", "1.001", "812", "641"]
    assert lines[2].split() == ["alpha", "-", "0.34", "0.02", "0.3", "0.38", "1.000", "1500", "700"]
    assert len({len(line) for line in lines}) == 1  # aligned columns
    pd.testing.assert_frame_equal(table, before)  # the caller's table is not changed


def test_format_summary_nan_family_is_a_dash():
    table = _summary()
    table["family"] = [np.nan, "f1"]
    assert [line.split()[1] for line in format_summary(table).splitlines()[1:]] == ["-", "f1"]


def test_format_summary_missing_values_are_dashes():
    table = _summary()
    table.loc[1, ["sd", "r_hat", "ess_bulk"]] = np.nan  # e.g. R-hat of a single chain
    assert format_summary(table).splitlines()[2].split() == [
        "alpha", "-", "0.34", "-", "0.3", "0.38", "-", "-", "700"]


def test_format_calibration_without_one():
    for kept in (None, {}):
        assert format_calibration(kept) == (
            "Forecasts beyond the data carry the law-only band (no calibration was asked for).")


def test_format_calibration_skipped():
    assert format_calibration({"skipped": "fewer than 4 sizes"}) == (
        "Forecasts beyond the data carry the law-only band: no calibration (fewer than 4 sizes).")


def test_format_calibration_kept():
    line = format_calibration({"origins": 3, "rate": 0.01234, "reach": 1.5})
    assert line == ("Extrapolation calibrated by 3 rolling origins inside the data: the law's own error "
                    "grows by +- 0.0123 (link scale) per decade beyond the data, measured up to "
                    "1.50 decades.")


def test_format_calibration_kept_with_bias_curvature_and_tails():
    line = format_calibration({"origins": 4, "rate": 0.02, "reach": 2.0, "bias": -0.005, "curvature": 0.003,
                               "dof": 4.0})
    assert "grows by -0.0050 +- 0.0200 (link scale) per decade and 0.0030 per squared decade" in line
    assert "Student-t tails (4 dof)" in line and line.endswith("measured up to 2.00 decades.")


def _fit(ok, warnings, chains=4):
    return SimpleNamespace(ok=ok, warnings=warnings, settings=SimpleNamespace(chains=chains))


def test_format_verdict_passed():
    assert format_verdict(_fit(True, [])) == ["Diagnostics: passed (ESS, divergences, E-BFMI, R-hat)."]


def test_format_verdict_passed_with_one_chain_and_design_notes():
    note = FitWarning("few_sizes", "only 3 sizes.", DesignWarning)
    assert format_verdict(_fit(True, [note], chains=1)) == [
        "Diagnostics: passed (ESS, divergences, E-BFMI). R-hat needs 2+ chains: not checked.",
        "Design notes:",
        "  - [few_sizes] only 3 sizes.",
    ]


def test_format_verdict_failed():
    rhat = FitWarning("rhat", "R-hat above 1.01.", DiagnosticsWarning)
    div = FitWarning("divergences", "2 divergent transitions.", DiagnosticsWarning)
    note = FitWarning("few_families", "3 families are too few.", DesignWarning)
    assert format_verdict(_fit(False, [note, rhat, div])) == [
        "Diagnostics: FAILED - do not trust this fit as it is:",
        "  - [rhat] R-hat above 1.01.",
        "  - [divergences] 2 divergent transitions.",
        "Design notes:",
        "  - [few_families] 3 families are too few.",
    ]
