"""The stacked-forecast case study runs from Python and from the command line alike."""

from __future__ import annotations

import pytest

import bayescale as bs


@pytest.mark.slow  # runs the case study end to end on real data
def test_stacked_forecast_quick_on_the_olmo_ladder(tmp_path, case_study):
    try:
        bs.datasets.load("olmo_ladder")
    except bs.DataError as err:
        pytest.skip(f"olmo_ladder data set unavailable: {err}")
    module = case_study("stacked_forecast")
    assert module.main(["--quick", "--datasets", "olmo_ladder", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    info = next(line for line in text.splitlines() if line.startswith("| olmo_ladder | 2"))
    cells = [c.strip() for c in info.strip("|").split("|")]
    held = int(cells[2])
    assert held > 0 and int(cells[1]) + held == 30  # every run of the ladder, trained on or forecast
    weights = [float(part.split()[-1]) for part in cells[3].split(",")]
    assert sum(weights) == pytest.approx(1.0, abs=0.011)  # two decimals each
    # the command line makes the same fits with the same seed: the same weights
    assert cells[7] in ("0", "1") and float(cells[8]) < 1e-9, cells
    rows = [line for line in text.splitlines() if line.startswith("| olmo_ladder | ")][1:]
    assert [r.split("|")[2].strip() for r in rows] == ["stacked", "chinchilla", "chinchilla_shared"]


def test_the_shared_slope_law_shares_only_the_slope(case_study):
    module = case_study("stacked_forecast")
    obs = case_study("obs_scaling")
    text = obs.LAW_FILE.read_text(encoding="utf-8")
    own, shared = bs.Law.from_toml(text), bs.Law.from_toml(module.shared_slope(text))
    assert {n: p.pool for n, p in own.parameters.items()} == {"b": "partial", "w": "partial"}
    assert {n: p.pool for n, p in shared.parameters.items()} == {"b": "partial", "w": "shared"}
    assert shared.formula.text == own.formula.text and shared.name != own.name
