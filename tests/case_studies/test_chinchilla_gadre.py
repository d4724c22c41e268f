"""The Chinchilla (Epoch AI) case study runs end to end in quick mode and recovers Epoch's estimates."""

from __future__ import annotations

import pytest

import bayescale as bs

pytestmark = pytest.mark.slow  # runs a case study end to end on real data


def test_chinchilla_epoch_quick(tmp_path, case_study):
    try:
        bs.datasets.load("chinchilla_epoch", drop_highest_loss=5)
    except bs.DataError as err:
        pytest.skip(f"chinchilla_epoch data set unavailable: {err}")
    module = case_study("chinchilla_epoch")
    assert module.main(["--quick", "--out", str(tmp_path)]) == 0

    results = tmp_path / "RESULTS.md"
    assert results.exists()
    text = results.read_text(encoding="utf-8")
    assert "| param | posterior median | posterior 95% (equal-tailed) | Epoch Huber estimate" in text
    for symbol in ("| A |", "| B |", "| E |", "| α |", "| β |"):
        assert symbol in text
    assert "Tokens per parameter: posterior median" in text
    assert "| D*/N* (tokens per parameter) |" in text
    assert "coverage 95%" in text
    assert "### 3b. The same forecasts with the law's error rate" in text
    assert "## 4. Which law to trust out of sample" in text and "| stacking average |" in text
    # the new-run 90% band widened by the rate measured on the training part covers at least as
    # many held-out runs as the plain band (columns: kind, n, coverage 50/80/90/95, ...)
    plain, widened = (float(line.split("|")[5]) for line in text.splitlines()
                      if line.startswith("| new_run |"))
    assert widened >= plain, (plain, widened)
    for png in ("fit.png", "allocation.png"):
        assert (tmp_path / png).stat().st_size > 1000

    # posterior medians of E, alpha, beta (2nd column of the parameter table) lie inside
    # Epoch's bootstrap 95% intervals
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip()
            for line in text.splitlines() if line.startswith("| ") and line.count("|") > 3}
    for symbol, name in (("E", "E"), ("α", "alpha"), ("β", "beta")):
        lo, hi = module.EPOCH[name][1:]
        median = float(rows[symbol])
        assert lo <= median <= hi, (name, median, lo, hi)


def test_gadre_overtrain_quick(tmp_path, case_study):
    import math

    try:
        bs.datasets.load("gadre_overtrain")
    except bs.DataError as err:
        pytest.skip(f"gadre_overtrain data set unavailable: {err}")
    module = case_study("gadre_overtrain")
    assert module.main(["--quick", "--out", str(tmp_path)]) == 0

    text = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    assert "| approach | kind | corpus | N | M | observed | median | 90% band |" in text
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines()
            if line.startswith("| hierarchical |") or line.startswith("| per-corpus |")]
    for approach in ("hierarchical", "per-corpus"):
        for kind in ("new_run", "mean"):
            sel = [r for r in rows if r[0] == approach and r[1] == kind]
            assert len(sel) == 4, (approach, kind, len(sel))
            for r in sel:
                median = float(r[6])
                lo, hi = (float(v) for v in r[7].split("–"))
                assert all(math.isfinite(v) for v in (median, lo, hi))
                assert lo <= median <= hi
                assert math.isfinite(float(r[8]))
    assert "P(lowest loss)" in text
    assert (tmp_path / "fit.png").stat().st_size > 1000

    # the two-stage downstream forecast: 4 targets per kind, bands inside (0, 1); with calibrated
    # new-run bands, 2 or fewer of 4 targets inside the 90% band has probability 0.052
    assert "## 3. Downstream: 17-task average top-1 error, two stages" in text
    down = [[c.strip() for c in line.split("|")[1:-1]] for line in text.split("## 3. Downstream")[1]
            .splitlines() if line.startswith(("| mean |", "| new_run |"))]
    for kind in ("mean", "new_run"):
        sel = [r for r in down if r[0] == kind]
        assert len(sel) == 4, (kind, sel)
        for r in sel:
            lo, hi = (float(v) for v in r[6].split("–"))
            assert 0 < lo <= float(r[5]) <= hi < 1
    assert sum(r[10] == "yes" for r in down if r[0] == "new_run") >= 3
