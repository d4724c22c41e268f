"""The extrapolation case study runs end to end in quick mode on the OLMo ladder."""

from __future__ import annotations

import pytest

import bayescale as bs


def _row(text: str, start: str) -> list[str]:
    """The first table row that starts with ``start`` (the all-distances table comes first)."""
    line = next(line for line in text.splitlines() if line.startswith(start))
    return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.mark.slow  # runs the case study end to end on real data
def test_extrapolation_quick_on_the_olmo_ladder(tmp_path, case_study):
    try:
        bs.datasets.load("olmo_ladder")
    except bs.DataError as err:
        pytest.skip(f"olmo_ladder data set unavailable: {err}")
    module = case_study("extrapolation")
    table = tmp_path / "scores.csv"
    args = ["--quick", "--datasets", "olmo_ladder", "--cuts", "3", "--huber", "5", "--out", str(tmp_path),
            "--table", str(table)]
    assert module.main(args) == 0
    text = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    for png in ("coverage.png", "error.png", "accuracy.png"):
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
    for method in ("shrunk bias", "conformal", "conformal, calibrated scale", "stacked",
                   "stacked, shrunk bias"):
        row = _row(text, f"| olmo_ladder | {method} |")
        assert row[2] == plain[2] and all(0.0 <= float(v) <= 100.0 for v in row[7:11]), row
    # the fits to the upper half and the Huber fits forecast some of those targets (an origin
    # or a family may have too few runs for them)
    for method in ("upper half", "Huber + bootstrap", "compute-weighted"):
        row = _row(text, f"| olmo_ladder | {method} |")
        assert 0 < int(row[2]) <= int(plain[2]), row
    assert "## Stacking weight of each data set's own law, per origin" in text
    assert "## The targets, up to 1.5 decades" in text
    targets = _row(text, "| calibrated | ")
    assert targets[2].replace(".", "").isdigit() and "runs)" in targets[3], targets
    # the report rendered again from the saved scores, without fitting, is the same
    again = tmp_path / "again"
    assert module.main(["--render", str(table), "--cuts", "3", "--huber", "5", "--out", str(again)]) == 0
    rendered = (again / "RESULTS.md").read_text(encoding="utf-8")
    assert rendered.split("## The targets")[1] == text.split("## The targets")[1]


@pytest.mark.slow  # runs the case study end to end on real data
def test_bootstrap_baseline_scores_the_same_origins(tmp_path, case_study):
    try:
        bs.datasets.load("olmo_ladder")
    except bs.DataError as err:
        pytest.skip(f"olmo_ladder data set unavailable: {err}")
    module = case_study("extrapolation")
    args = ["--bootstrap", "5", "--datasets", "olmo_ladder", "--cuts", "2", "--out", str(tmp_path)]
    assert module.main(args) == 0
    text = (tmp_path / "BOOTSTRAP.md").read_text(encoding="utf-8")
    row = _row(text, "| olmo_ladder | Huber + bootstrap |")
    # 30 runs, 2 origins at quantiles 0.3 and 0.8 of log compute: every run beyond them is forecast
    assert int(row[2]) > 10, row
    assert all(0.0 <= float(v) <= 100.0 for v in row[7:11]), row


def test_huber_fit_of_one_input_recovers_an_exact_power_law(case_study):
    import numpy as np
    from scipy.optimize import check_grad

    module = case_study("extrapolation")
    log_x = np.log(np.geomspace(1e18, 1e22, 12))
    truth = np.array([9.0, 0.5, 0.2])  # (log A, log E, alpha)
    log_l = np.logaddexp(truth[0] - truth[2] * log_x, truth[1])
    theta = np.array([8.0, 0.3, 0.25])
    gap = check_grad(lambda t: module.huber_power(t, log_x, log_l)[0],
                     lambda t: module.huber_power(t, log_x, log_l)[1], theta)
    assert gap < 1e-6 * np.linalg.norm(module.huber_power(theta, log_x, log_l)[1]) + 1e-9
    starts = [(a, e, alpha) for a in (0.0, 10.0) for e in (-1.0, 1.0) for alpha in (0.1, 0.5)]
    np.testing.assert_allclose(module._power_from(starts, log_x, log_l), truth, atol=1e-3)


def test_the_targets_table_names_each_miss(case_study):
    import numpy as np
    import pandas as pd

    module = case_study("extrapolation")
    rows = []
    for method, err in (("Huber + bootstrap", 0.02), ("sharp", 0.01)):
        for d in (0.1, 0.4, 0.8, 1.2):
            for row in range(10):
                rows.append({"dataset": "s", "cut": 0, "row": row + 100 * d, "method": method,
                             "distance": d, "rel_error": err * (1 if row % 2 else -1) + 0.005,
                             "in_90": row < 9, "interval_score_90": 0.1})
    t = pd.DataFrame(rows)
    t["distance_bin"] = pd.cut(t["distance"], module.BINS)
    goals = module.goals(t).set_index("method")
    # mean signed error +0.5% in every bin: misses +-0.3 by 0.2; coverage 90% everywhere
    assert goals.loc["sharp", "signed: misses +-0.3 by"] == "0.20"
    assert goals.loc["sharp", "cov90: misses 85-95 by"] == "0"
    # |errors| 1.5% and 0.5% (median 1%) against Huber's 2.5% and 1.5% (2%) on the same 10
    # runs: ratio 0.5, no miss
    assert goals.loc["sharp", "median err 1-1.5 dec / Huber's"] == "0.50 (10 runs)"
    assert goals.loc["sharp", "error: misses 0.90 by"] == "0.00"
    assert goals.loc["Huber + bootstrap", "error: misses 0.90 by"] == "0.10"
    assert np.isclose(goals.loc["sharp", "interval score 90 % (<=1.5 dec)"], 10.0)
