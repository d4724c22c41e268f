"""The new-family case study runs end to end in quick mode on Gadre's three corpora."""

from __future__ import annotations

import pytest

import bayescale as bs

pytestmark = pytest.mark.slow  # runs a case study end to end on real data


def test_new_family_quick_on_gadre(tmp_path, case_study):
    try:
        df = bs.datasets.load("gadre_overtrain")
    except bs.DataError as err:
        pytest.skip(f"gadre_overtrain data set unavailable: {err}")
    module = case_study("new_family")
    args = ["--quick", "--datasets", "gadre_overtrain", "--keep", "1", "--out", str(tmp_path)]
    assert module.main(args) == 0
    text = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 10 and cells[0] == "gadre_overtrain":
            rows[cells[2]] = cells
    assert set(rows) == {"partial", "partial, tight amplitudes", "unpooled", "offset only"}
    # every variant forecasts the same held-out runs: all of each corpus but its smallest run
    runs = df[~df["gadre_target"]]
    held = len(runs) - runs["dataset"].nunique()
    assert {int(r[3]) for r in rows.values()} == {held}
    assert all(0.0 <= float(r[k]) <= 100.0 for r in rows.values() for k in (6, 7))
    assert "`gadre_overtrain`, 1 run(s) kept: smallest interval score" in text


def test_the_variants_differ_only_in_what_families_share(case_study):
    module = case_study("new_family")
    pools = module.pools(bs.Law.named("chinchilla"))
    assert pools["partial"] == {"E": "partial", "a": "partial", "b": "partial"}
    assert pools["unpooled"] == {"E": "none", "a": "none", "b": "none"}
    assert pools["offset only"] == {"E": "none", "a": "shared", "b": "shared"}
    tight = module.variant_law(bs, bs.Law.named("chinchilla"), "partial, tight amplitudes")
    assert {n: p.tau for n, p in tight.parameters.items() if p.pool == "partial"} == {
        "E": 0.5, "a": module.TIGHT, "b": module.TIGHT}
    assert tight.formula.text == bs.Law.named("chinchilla").formula.text
