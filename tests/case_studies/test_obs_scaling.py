"""The observational-scaling case study: its per-benchmark law, and the quick leave-one-family-out run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayescale as bs

pytestmark = pytest.mark.slow  # runs a case study end to end on real data


def test_obs_scaling_law_has_the_chance_floor(case_study):
    module = case_study("obs_scaling")
    for chance in (0.25, 0.5):
        law = module.law_for(chance)
        assert law.outcome.kind == "unit"
        assert set(law.parameters) == {"b", "w"}
        assert all(p.pool == "partial" for p in law.parameters.values())
        c = np.array([1e-3, 1.0, 1e3])
        low = law.formula({"C": c, "b": -60.0, "w": 1.0}, np)  # far below: random guessing
        np.testing.assert_allclose(low, chance, atol=1e-12)
        mid = law.formula({"C": np.array(1.0), "b": 0.0, "w": 1.0}, np)  # halfway from chance to 1
        assert float(mid) == pytest.approx(chance + (1 - chance) / 2)
    with pytest.raises(ValueError, match="chance level"):
        module.law_for(1.0)


def test_obs_scaling_quick(tmp_path, case_study):
    try:
        bs.datasets.load("obs_scaling")
    except bs.DataError as err:
        pytest.skip(f"obs_scaling data set unavailable: {err}")
    module = case_study("obs_scaling")
    assert module.main(["--quick", "--out", str(tmp_path)]) == 0

    text = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    assert "## 1. Leave one family out" in text
    assert "| benchmark | method | n | mean |err| (pts) |" in text
    for method in ("pooled, k=1", "population, k=0", "family alone, 2 smallest"):
        assert f"| MMLU | {method} |" in text
    for png in ("fit.png", "heldout.png"):
        assert (tmp_path / png).stat().st_size > 1000

    fc = pd.read_csv(tmp_path / "heldout.csv")
    assert set(fc["method"]) == {"k1", "k0", "alone"}
    assert set(fc["held_out_family"]) == set(module.QUICK_FAMILIES)
    assert np.isfinite(fc[["median", "lo90", "hi90"]].to_numpy()).all()
    assert ((fc["lo90"] <= fc["median"]) & (fc["median"] <= fc["hi90"])).all()
    assert ((fc["lo50"] >= fc["lo90"]) & (fc["hi50"] <= fc["hi90"])).all()

    # On the models both forecast (all but the family's smallest), knowing that one model must
    # beat the population forecast: Qwen1.5 is far more compute-efficient than the average family.
    both = fc[fc["rank"] > 1]
    err = both.groupby("method")["abs_err_pts"].mean()
    assert err["k1"] < err["k0"], err.to_dict()
    # and the pooled 90% band holds no fewer observed accuracies than a calibrated band
    # plausibly would (binomial, P < 0.01).
    k1 = both[both["method"] == "k1"]
    hits = int(k1["in_90"].sum())
    assert hits >= module.binomial_floor(len(k1), 0.9), k1[["model", "truth", "lo90", "hi90"]]
