"""The Porian et al. (2024) IsoFLOP case study runs in quick mode and recovers the paper's exponents;
the `loglinear`, `loglinear2` and `compute` law specs read and evaluate as documented."""

from __future__ import annotations

import numpy as np
import pytest

import bayescale as bs
from bayescale.laws.spec import Law

pytestmark = pytest.mark.slow  # runs a case study end to end on real data


def _rows(text: str, first_cell: str) -> list[list[str]]:
    """Cells of the markdown table rows of ``text`` whose first cell starts with ``first_cell``."""
    return [[c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines()
            if line.startswith(f"| {first_cell}")]


def test_laws_read_and_evaluate():
    values = {"c": 2.0, "a": -0.5, "x": 4.0}
    law = Law.named("loglinear")
    assert law.inputs == ("x",) and set(law.parameters) == {"c", "a"}
    assert float(law.formula(values, np)) == pytest.approx(1.0)
    # the paper's coefficient G from the reference: y = G x^a at x = x_ref * x_scaled
    assert float(law.report["G"]({"c": 2.0, "a": 0.5, "x_ref": 4.0}, np)) == pytest.approx(1.0)
    law2 = Law.named("loglinear2")
    assert law2.inputs == ("x1", "x2")
    env = {"c": 3.0, "a1": 1.0, "a2": -1.0, "x1": 2.0, "x2": 6.0}
    assert float(law2.formula(env, np)) == pytest.approx(1.0)
    comp = Law.named("compute")
    assert comp.inputs == ("C",)
    assert float(comp.formula({"E": 1.5, "a": 1.0, "gamma": 0.5, "C": 4.0}, np)) == pytest.approx(2.0)
    assert {"loglinear", "loglinear2", "compute"} <= set(bs.laws()["name"])


def test_porian_isoflop_quick(tmp_path, case_study):
    try:
        bs.datasets.load("porian_isoflop", table="optima")
    except bs.DataError as err:
        pytest.skip(f"porian_isoflop data set unavailable: {err}")
    module = case_study("porian_isoflop")
    assert module.main(["--quick", "--out", str(tmp_path)]) == 0

    text = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    assert "| setting | budgets | posterior median | 90% interval | 95% interval | published basic |" in text
    for png in ("nstar.png", "exponents.png", "loss.png"):
        assert (tmp_path / png).stat().st_size > 1000

    # 1. each published (least-squares) exponent lies inside the fitted 95% interval, or the miss is
    #    reported in the row; the reported flag must agree with the numbers
    rows = {r[0]: r for r in _rows(text, "rw/") if len(r) == 11}
    assert set(rows) == set(module.QUICK_SETTINGS)
    for setting, r in rows.items():
        lo, hi = (float(v) for v in r[4].split("–"))
        published = float(r[5])
        inside = lo <= published <= hi
        assert r[9] == ("yes" if inside else "**no**"), (setting, r)
        if not inside:
            assert setting in text.split("outside the fitted 95% interval for:")[1].splitlines()[0]
    # the posterior tracks the least-squares fit to well within its own spread: |median - basic|
    # below 2 posterior sd (the fit shares a with the population, so it may shrink a little)
    for setting, r in rows.items():
        assert abs(float(r[10])) < 2.0, (setting, r[10])

    # 2. the recipe changes the exponent: the Kaplan-like baseline's a exceeds the tuned setting's
    p = float(text.split("Baseline vs tuned (rw): P = ")[1].split(".\n")[0].rstrip("."))
    assert p > 0.9
    end = _rows(text, "end to end (rw)")[0]
    lo, hi = (float(v) for v in end[5].split("–"))
    assert 0 < lo <= float(end[4]) <= hi

    # 3. the backtest scored the held-out optima and its errors are finite percentages
    back = {r[0]: r for r in _rows(text, "bayescale, ") + _rows(text, "least squares per setting")}
    assert len(back) == 4
    for r in back.values():
        assert int(r[1]) == 2 * len(module.QUICK_SETTINGS)
        assert 0 <= float(r[2].rstrip("%")) < 100
        assert all(0 <= float(v) <= 1 for v in r[4:8])

    # 4. the compute law gives a positive exponent gamma for the baseline and the tuned setting
    loss = _rows(text, f"{module.BASELINE} | all budgets") + _rows(text, f"{module.TUNED} | all budgets")
    assert len(loss) == 2
    for r in loss:
        gamma = float(r[3].split()[0])
        assert 0 < gamma < 1
