"""The Pythia LAMBADA case study runs end to end in quick mode; its held-out bands are not overconfident."""

from __future__ import annotations

import math

import pytest
from scipy import stats

import bayescale as bs

pytestmark = pytest.mark.slow  # runs a case study end to end on real data

HELD_OUT_MODELS = 6  # 2.8B, 6.9B and 12B, standard and deduped
ALPHA = 0.01  # false-alarm rate of the coverage check for a calibrated 90% band


def _section(text: str, start: str, end: str) -> str:
    return text[text.index(start):text.index(end)]


def _table(section: str) -> list[dict]:
    """Rows of the first markdown table in ``section``, as header -> cell."""
    lines = []
    for line in section[section.index("\n|") + 1:].splitlines():
        if not line.startswith("|"):
            break
        lines.append(line)
    header = [c.strip() for c in lines[0].split("|")[1:-1]]
    return [dict(zip(header, (c.strip() for c in line.split("|")[1:-1]))) for line in lines[2:]]


def _min_hits(n: int, level: float, alpha: float = ALPHA) -> int:
    """Largest k with P(X < k) <= alpha for X ~ Binomial(n, level): fewer hits reject calibration."""
    k = 0
    while k < n and stats.binom.cdf(k, n, level) <= alpha:
        k += 1
    return k


def test_pythia_evals_quick(tmp_path, case_study):
    try:
        bs.datasets.load("pythia_evals", task="lambada_openai", metric="ppl", num_fewshot=0)
    except bs.DataError as err:
        pytest.skip(f"pythia_evals data set unavailable: {err}")
    module = case_study("pythia_evals")
    assert module.main(["--quick", "--out", str(tmp_path)]) == 0

    text = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    for heading in ("## 1. Held-out forecasts", "## 2. Final checkpoints", "## 3. Checkpoints against",
                    "## 4. Is deduplication better at scale?", "QUICK MODE"):
        assert heading in text, heading
    for png in ("lambada_loss.png", "lambada_acc.png", "contrast.png"):
        assert (tmp_path / png).stat().st_size > 1000, png

    # held-out aggregate: both forecast kinds of both outcomes, finite errors, coverages in [0, 1]
    agg = _table(_section(text, "## 1.", "Per held-out size"))
    expected = {(o, k) for o in ("loss", "acc") for k in ("mean", "new_run")}
    assert {(r["outcome"], r["kind"]) for r in agg} == expected
    for r in agg:
        assert math.isfinite(float(r["median abs rel error %"]))
        assert all(0 <= float(r[f"coverage {p}%"]) <= 1 for p in (50, 80, 90, 95))

    # final checkpoints of the 6 held-out models: the report is self-consistent, and the 90% new-run
    # band holds the observed value no less often than a calibrated band would at the 1% level
    final = _table(_section(text, "## 2.", "## 3."))
    need = _min_hits(HELD_OUT_MODELS, 0.9)
    assert need >= 3  # Binomial(6, 0.9): P(X <= 2) = 0.0013
    for outcome in ("loss", "acc"):
        rows = [r for r in final if r["outcome"] == outcome and r["variant"] == module.PRIMARY]
        assert len(rows) == HELD_OUT_MODELS, (outcome, len(rows))
        hits = 0
        for r in rows:
            obs, med = float(r["observed"]), float(r["median"])
            lo, hi = (float(v) for v in r["90% band"].split("–"))
            assert lo <= med <= hi, r
            assert r["in 90%"] == ("yes" if lo <= obs <= hi else "no"), r
            hits += lo <= obs <= hi
        assert hits >= need, (outcome, hits, need)

    # the paired 12B / 300B contrast: P(deduped better) agrees in side with the posterior median
    contrast = _table(text[text.index("Paired forecast at N = 12B"):])
    assert {r["outcome"] for r in contrast} == {"loss", "acc"}
    for r in contrast:
        p, diff = float(r["P(deduped better)"]), float(r["deduped − standard"])
        lower_better = module.OUTCOMES[r["outcome"]]["lower_is_better"]
        assert 0 <= p <= 1
        better = -diff if lower_better else diff
        if better > 0:
            assert p >= 0.5, r
        elif better < 0:
            assert p <= 0.5, r
