"""The extrapolation case study runs end to end in quick mode on the OLMo ladder."""

from __future__ import annotations

import pytest

import bayescale as bs

pytestmark = pytest.mark.slow  # runs a case study end to end on real data


def _row(text: str, start: str) -> list[str]:
    """The first table row that starts with ``start`` (the all-distances table comes first)."""
    line = next(line for line in text.splitlines() if line.startswith(start))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_extrapolation_quick_on_the_olmo_ladder(tmp_path, case_study):
    try:
        bs.datasets.load("olmo_ladder")
    except bs.DataError as err:
        pytest.skip(f"olmo_ladder data set unavailable: {err}")
    module = case_study("extrapolation")
    assert module.main(["--quick", "--datasets", "olmo_ladder", "--cuts", "3", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    for png in ("coverage.png", "error.png"):
        assert (tmp_path / png).stat().st_size > 1000
    # per data set, all distances: dataset | method | n | median | signed | score | CRPS | cov50..cov95
    plain = _row(text, "| olmo_ladder | plain |")
    calibrated = _row(text, "| olmo_ladder | calibrated |")
    biased = _row(text, "| olmo_ladder | with bias |")
    assert plain[2] == calibrated[2] == biased[2] and int(plain[2]) > 10  # the same forecasts
    # the calibrated bands are the plain ones widened where an origin measured a positive
    # rate, so no band covers fewer targets (up to the widening's Monte Carlo noise: one target)
    n = int(plain[2])
    for k in range(7, 11):  # cov50 ... cov95, after the CRPS column
        assert float(calibrated[k]) >= float(plain[k]) - 100 / n, (plain, calibrated)
    assert "## The rate each origin measured inside its own training rows" in text
    assert "Target: every band within 10 points" in text and "- calibrated: " in text
    # the bands that come from the same origins, and the stack refitted at each origin, score
    # the same targets
    for method in ("shrunk bias", "conformal", "conformal, calibrated scale", "stacked"):
        row = _row(text, f"| olmo_ladder | {method} |")
        assert row[2] == plain[2] and all(0.0 <= float(v) <= 100.0 for v in row[7:11]), row
    assert "## Stacking weight of each data set's own law, per origin" in text


def test_bootstrap_baseline_scores_the_same_origins(tmp_path, case_study):
    try:
        bs.datasets.load("olmo_ladder")
    except bs.DataError as err:
        pytest.skip(f"olmo_ladder data set unavailable: {err}")
    module = case_study("extrapolation")
    args = ["--bootstrap", "5", "--datasets", "olmo_ladder", "--cuts", "2", "--out", str(tmp_path)]
    assert module.main(args) == 0
    text = (tmp_path / "BOOTSTRAP.md").read_text(encoding="utf-8")
    row = _row(text, "| olmo_ladder | bootstrap |")
    # 30 runs, 2 origins at quantiles 0.3 and 0.8 of log compute: every run beyond them is forecast
    assert int(row[2]) > 10, row
    assert all(0.0 <= float(v) <= 100.0 for v in row[7:11]), row
