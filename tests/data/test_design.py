"""Tests for bayescale.data: validation of a user's DataFrame into a Design, and design warnings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayescale
from bayescale import Law
from bayescale.data.design import ALL, Design, input_mapping, prepare
from bayescale.errors import DataError, DesignWarning

POWER = Law.named("power")
CHIN = Law.named("chinchilla")


def ladder() -> pd.DataFrame:
    """Two families, three sizes, one row per (family, size)."""
    return pd.DataFrame({
        "family": ["a", "a", "a", "b", "b", "b"],
        "run": ["a1", "a2", "a3", "b1", "b2", "b3"],
        "x": [1e7, 1e8, 1e9, 1e7, 1e8, 1e9],
        "loss": [3.2, 2.8, 2.5, 3.4, 3.0, 2.6],
        "se": [0.01, 0.02, 0.01, 0.01, 0.03, 0.01],
    })


def chin_ladder() -> pd.DataFrame:
    """N and D varied independently, one family."""
    n = np.array([1e7, 1e7, 1e8, 1e8, 1e9, 1e9])
    d = np.array([2e8, 8e8, 1e9, 4e9, 1e10, 5e10])
    return pd.DataFrame({"params": n, "tokens": d, "loss": [3.5, 3.3, 3.0, 2.8, 2.6, 2.45]})


def _raises(df, *fragments, law=POWER, y="loss", x="x", **kwargs) -> str:
    with pytest.raises(DataError) as info:
        prepare(df, law, y, x, **kwargs)
    msg = str(info.value)
    for fragment in fragments:
        assert fragment in msg, (fragment, msg)
    return msg


# ---- a valid design ---------------------------------------------------------------------------
def test_prepare_valid_design():
    df = ladder()
    d = prepare(df, POWER, "loss", "x", group="family", run="run", se="se")
    assert isinstance(d, Design)
    np.testing.assert_array_equal(d.y, df["loss"].to_numpy())
    np.testing.assert_array_equal(d.inputs["x"], df["x"].to_numpy())
    assert d.families == ["a", "b"] and d.n_families == 2
    np.testing.assert_array_equal(d.family_idx, [0, 0, 0, 1, 1, 1])
    assert d.runs == ["a1", "a2", "a3", "b1", "b2", "b3"]
    np.testing.assert_array_equal(d.run_idx, np.arange(6))
    np.testing.assert_allclose(d.se_log, df["se"] / df["loss"])
    assert d.columns == {"y": "loss", "x": {"x": "x"}, "group": "family", "run": "run", "se": "se",
                         "weight": None}
    assert list(d.frame.columns) == ["loss", "x", "family", "run", "se"]
    # one row per run: a run's offset is noise (see the identifiability tests below)
    assert [w.kind for w in d.warnings] == ["run_one_row"]
    assert prepare(df, POWER, "loss", "x", group="family", se="se").warnings == []


def test_prepare_does_not_modify_input():
    df = ladder()
    before = df.copy()
    prepare(df, POWER, "loss", "x", group="family")
    pd.testing.assert_frame_equal(df, before)


def test_frame_keeps_original_index_and_only_mapped_columns():
    df = ladder()
    df.index = [10, 11, 12, 20, 21, 22]
    d = prepare(df, POWER, "loss", "x", group="family")
    assert list(d.frame.index) == [10, 11, 12, 20, 21, 22]
    assert list(d.frame.columns) == ["loss", "x", "family"]


def test_without_group_or_run():
    d = prepare(ladder().iloc[:3], POWER, "loss", "x")
    assert d.families == [ALL] and d.n_families == 1
    np.testing.assert_array_equal(d.family_idx, [0, 0, 0])
    assert d.runs == []
    np.testing.assert_array_equal(d.run_idx, [-1, -1, -1])
    np.testing.assert_array_equal(d.se_log, np.zeros(3))


def test_references_are_geometric_means():
    d = prepare(chin_ladder(), CHIN, "loss", {"N": "params", "D": "tokens"})
    df = chin_ladder()
    assert d.refs["N"] == pytest.approx(np.exp(np.mean(np.log(df["params"]))), rel=1e-12)
    assert d.refs["D"] == pytest.approx(np.exp(np.mean(np.log(df["tokens"]))), rel=1e-12)
    assert d.refs["N"] == pytest.approx(1e8)
    scaled = d.scaled({"N": [1e8, 1e9], "D": d.refs["D"]})
    np.testing.assert_allclose(scaled["N"], [1.0, 10.0])
    np.testing.assert_allclose(scaled["D"], 1.0)


def test_floor_is_min_per_family():
    df = ladder()
    df.loc[1, "loss"] = 2.4  # family a's minimum is not its largest size
    d = prepare(df, POWER, "loss", "x", group="family")
    np.testing.assert_array_equal(d.floor(), [2.4, 2.6])


def test_group_labels_are_sorted_strings():
    df = ladder()
    df["family"] = [2, 2, 2, 1, 1, 1]
    d = prepare(df, POWER, "loss", "x", group="family")
    assert d.families == ["1", "2"]
    np.testing.assert_array_equal(d.family_idx, [1, 1, 1, 0, 0, 0])


def test_numeric_strings_are_accepted():
    df = ladder()
    df["x"] = df["x"].map(lambda v: f"{v:.0e}")
    d = prepare(df, POWER, "loss", "x", group="family")
    np.testing.assert_array_equal(d.inputs["x"], ladder()["x"].to_numpy())


# ---- bad data -------------------------------------------------------------------------------------
def test_not_a_dataframe():
    _raises({"x": [1.0], "loss": [1.0]}, "data must be a pandas DataFrame, not dict")


def test_empty_dataframe():
    _raises(pd.DataFrame(), "the data has no rows")
    _raises(ladder().iloc[:0], "the data has no rows")


def test_missing_column_suggests_typo():
    msg = _raises(ladder(), "column 'lsos' is not in the data. Did you mean 'loss'?", y="lsos")
    assert "Columns are: family, run, x, loss, se" in msg


@pytest.mark.parametrize("role", ["x", "group", "run", "se"])
def test_missing_column_in_every_role(role):
    kwargs = {"x": "x", "group": None, "run": None, "se": None} | {role: "nope"}
    _raises(ladder(), "column 'nope' is not in the data.", **kwargs)


def test_missing_column_without_close_match():
    msg = _raises(ladder(), "column 'perplexity' is not in the data.", y="perplexity")
    assert "Did you mean" not in msg


def test_non_numeric_value():
    df = ladder()
    df["x"] = df["x"].astype(object)
    df.loc[2, "x"] = "7B"
    _raises(df, "column 'x' has non-numeric values: row 2 ('7B')", "7e9", group="family")


def test_nan_outcome():
    df = ladder()
    df.loc[[1, 4], "loss"] = np.nan
    _raises(df, "column 'loss' has missing (NaN) or infinite values: row 1 (", "row 4 (", "crashed runs",
            group="family")


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_input(value):
    df = ladder()
    df.loc[3, "x"] = value
    _raises(df, "column 'x' has missing (NaN) or infinite values: row 3 (", group="family")


@pytest.mark.parametrize("value", [0.0, -1.5])
def test_zero_or_negative_outcome(value):
    df = ladder()
    df.loc[5, "loss"] = value
    msg = _raises(df, "column 'loss' has zero or negative values: row 5 (",
                  "law 'power'", 'outcome = "real"', group="family")
    assert f"{value})" in msg and "row 4" not in msg


def test_negative_size():
    df = ladder()
    df.loc[0, "x"] = -1e7
    msg = _raises(df, "column 'x' has zero or negative values: row 0 (", "-10000000.0)",
                  "input x is divided by its reference and raised to powers, so it must be > 0",
                  group="family")
    assert "row 1" not in msg


def test_many_bad_rows_are_abbreviated():
    df = pd.concat([ladder()] * 2, ignore_index=True)
    df["loss"] = -1.0
    msg = _raises(df, "row 0 (", "row 4 (", " and 7 more;", group="family", run="run")
    assert "row 5" not in msg


def test_rows_named_by_original_index():
    df = ladder()
    df.index = [100, 101, 102, 103, 104, 105]
    df.loc[104, "loss"] = 0.0
    msg = _raises(df, "row 104 (", group="family")
    assert "row 4 " not in msg


def test_family_with_a_single_row():
    df = ladder()
    df.loc[5, "family"] = "c"
    msg = _raises(df, "family 'c' (1 row) in column 'family' has fewer than 2 rows",
                  "min_rows_per_family=1", group="family")
    assert "'a'" not in msg and "'b'" not in msg
    d = prepare(df, POWER, "loss", "x", group="family", min_rows_per_family=1)
    assert d.families == ["a", "b", "c"]


def test_min_rows_per_family_is_honoured():
    _raises(ladder(), "families 'a' (3 rows), 'b' (3 rows) in column 'family' have fewer than 4 rows",
            group="family", min_rows_per_family=4)


def test_single_row_without_group():
    _raises(ladder().iloc[:1], "family 'all' (1 row) in column 'the data'", "min_rows_per_family")


def test_rows_repeating_in_every_used_column_are_kept_as_replicates():
    df = ladder()
    df.loc[2, ["x", "loss"]] = df.loc[1, ["x", "loss"]].to_numpy()
    d = prepare(df, POWER, "loss", "x", group="family")
    assert len(d.y) == 6  # never refused, never dropped unasked
    (note,) = [w for w in d.warnings if w.kind == "replicates"]
    assert note.category is DesignWarning
    assert "1 row(s) repeat another row" in note.message and "rows [1, 2]" in note.message
    assert "duplicates='drop'" in note.message


def test_replicates_are_dropped_only_when_asked():
    df = ladder()
    df.loc[2, ["x", "loss"]] = df.loc[1, ["x", "loss"]].to_numpy()
    d = prepare(df, POWER, "loss", "x", group="family", duplicates="drop")
    assert list(d.frame.index) == [0, 1, 3, 4, 5] and len(d.y) == 5
    assert not [w for w in d.warnings if w.kind == "replicates"]
    with pytest.raises(DataError, match="duplicates='twice'; choose 'keep'"):
        prepare(df, POWER, "loss", "x", duplicates="twice")


def test_rows_differing_in_a_used_column_are_not_replicates():
    df = ladder()
    df.loc[2, ["x", "loss"]] = df.loc[1, ["x", "loss"]].to_numpy()
    # the se column, or the run column, tells them apart
    for kwargs in ({"se": "se"}, {"run": "run"}):
        d = prepare(df, POWER, "loss", "x", group="family", **kwargs)
        assert "replicates" not in [w.kind for w in d.warnings], kwargs
    # a column the fit does not use does not
    df["note"] = range(6)
    assert "replicates" in [w.kind for w in prepare(df, POWER, "loss", "x").warnings]


def test_ties_between_distinct_models_are_replicates():
    """A base model and its fine-tune with the same benchmark score, two data mixes with the
    same loss at the same N and D: kept, with no run column needed."""
    df = chin_ladder()
    df = pd.concat([df, df.iloc[[2, 4]]], ignore_index=True)
    d = prepare(df, CHIN, "loss", {"N": "params", "D": "tokens"})
    assert len(d.y) == 8 and [w.kind for w in d.warnings] == ["replicates"]
    assert "2 row(s) repeat" in d.warnings[0].message


def test_same_values_in_different_families_are_not_duplicates():
    df = ladder()
    df.loc[3:5, ["x", "loss"]] = df.loc[0:2, ["x", "loss"]].to_numpy()
    assert len(prepare(df, POWER, "loss", "x", group="family").y) == 6


def test_x_string_for_two_input_law():
    _raises(chin_ladder(), "law 'chinchilla' has inputs ['N', 'D']; pass x as a dict", law=CHIN, x="params")


def test_x_mapping_missing_an_input():
    _raises(chin_ladder(), "x does not map law input(s) ['D'] of law 'chinchilla'", "x={'D': '<column>'}",
            law=CHIN, x={"N": "params"})


def test_x_mapping_with_unknown_input():
    _raises(chin_ladder(), "x names ['C'], which are not inputs of law 'chinchilla'", "['N', 'D']",
            law=CHIN, x={"N": "params", "D": "tokens", "C": "params"})


def test_x_of_wrong_type():
    _raises(ladder(), "x must be a dict of law input -> column, not list", x=["x"])


def test_input_mapping():
    assert input_mapping(POWER, "steps") == {"x": "steps"}
    assert input_mapping(CHIN, {"D": "t", "N": "p"}) == {"D": "t", "N": "p"}
    with pytest.raises(DataError, match=r"x does not map law input\(s\) \['x'\]"):
        input_mapping(POWER, None)


def test_negative_standard_error():
    df = ladder()
    df.loc[4, "se"] = -0.01
    _raises(df, "column 'se' has a negative value: row 4 (", "-0.01)", "standard errors must be >= 0",
            group="family", se="se")


def test_nan_standard_error():
    df = ladder()
    df.loc[0, "se"] = np.nan
    _raises(df, "column 'se' has missing (NaN) or infinite values: row 0", group="family", se="se")


def test_missing_group_labels():
    df = ladder()
    df.loc[[2, 3], "family"] = None
    msg = _raises(df, "column 'family' has missing labels: row 2 (", "row 3 (", group="family")
    assert "row 1" not in msg


def test_missing_run_labels():
    df = ladder()
    df.loc[1, "run"] = np.nan
    _raises(df, "column 'run' has missing labels: row 1", group="family", run="run")


def test_data_error_is_a_value_error():
    assert issubclass(bayescale.DataError, ValueError)
    with pytest.raises(ValueError):
        prepare(ladder(), POWER, "nope", "x")


def test_nullable_dtypes():
    df = ladder().convert_dtypes()
    df.loc[2, "loss"] = pd.NA
    _raises(df, "column 'loss' has missing (NaN) or infinite values: row 2", group="family")
    ok = ladder().convert_dtypes()
    assert prepare(ok, POWER, "loss", "x", group="family").families == ["a", "b"]


def test_bad_value_is_shown_plainly():
    df = ladder()
    df.loc[5, "loss"] = -1.5
    msg = _raises(df, "row 5 (", group="family")
    assert "row 5 (-1.5)" in msg


def test_message_with_duplicate_index_labels():
    df = pd.concat([ladder(), ladder()])
    df.iloc[7, df.columns.get_loc("loss")] = np.nan
    msg = _raises(df, "column 'loss' has missing (NaN) or infinite values", group="family", run="run")
    assert "dtype" not in msg and "Name:" not in msg


# ---- design warnings --------------------------------------------------------------------------------
def test_few_sizes_warning():
    df = ladder()
    df["x"] = [1e7, 1e8, 1e8, 1e7, 1e8, 1e8]
    df["loss"] = [3.2, 2.8, 2.7, 3.4, 3.0, 2.9]
    d = prepare(df, POWER, "loss", "x", group="family")
    kinds = [w.kind for w in d.warnings]
    assert kinds == ["few_sizes"]
    w = d.warnings[0]
    assert w.category is DesignWarning
    assert "input x (column 'x') has only 2 distinct value(s)" in w.message
    assert str(w).startswith("[few_sizes] ")


def test_three_sizes_do_not_warn():
    assert prepare(ladder(), POWER, "loss", "x", group="family").warnings == []


def test_collinear_warning_for_fixed_tokens_per_parameter():
    n = np.array([1e7, 2e7, 5e7, 1e8, 3e8])
    df = pd.DataFrame({"params": n, "tokens": 20 * n, "loss": [3.5, 3.3, 3.1, 2.9, 2.7]})
    d = prepare(df, CHIN, "loss", {"N": "params", "D": "tokens"})
    kinds = [w.kind for w in d.warnings]
    assert kinds == ["collinear"]
    assert "D/N is the same in every row" in d.warnings[0].message
    assert d.warnings[0].category is DesignWarning


def test_varied_ratio_is_not_collinear():
    d = prepare(chin_ladder(), CHIN, "loss", {"N": "params", "D": "tokens"})
    assert "collinear" not in [w.kind for w in d.warnings]
    assert [w.kind for w in d.warnings] == []


def test_few_sizes_and_collinear_together():
    df = pd.DataFrame({"params": [1e7, 1e7, 1e8, 1e8], "tokens": [2e8, 2e8, 2e9, 2e9],
                       "loss": [3.5, 3.45, 3.0, 2.95], "seed": [0, 1, 0, 1]})
    d = prepare(df, CHIN, "loss", {"N": "params", "D": "tokens"}, run="seed")
    assert sorted(w.kind for w in d.warnings) == ["collinear", "few_sizes", "few_sizes"]


def test_small_family_warning():
    df = ladder()
    df.loc[len(df)] = {"family": "c", "run": "c1", "x": 1e7, "loss": 3.1, "se": 0.01}
    df.loc[len(df)] = {"family": "c", "run": "c2", "x": 1e8, "loss": 2.9, "se": 0.01}
    d = prepare(df, POWER, "loss", "x", group="family")
    small = [w for w in d.warnings if w.kind == "small_family"]
    assert len(small) == 1
    assert "['c']" in small[0].message and "2 family-level parameter(s)" in small[0].message


# ---- identifiability of run and family effects ----------------------------------------------
def checkpoints(runs_per_size: int = 1) -> pd.DataFrame:
    """Checkpoint data: each run trains one model size and is evaluated at four token counts."""
    rows = []
    for n in (1e7, 1e8, 1e9):
        for seed in range(runs_per_size):
            for d in (1e8, 1e9, 1e10, 1e11):
                rows.append({"run": f"{n:.0e}-{seed}", "params": n, "tokens": d,
                             "loss": 1.7 + 400 * n**-0.34 + 410 * d**-0.28 + 0.01 * seed})
    return pd.DataFrame(rows)


def test_run_effect_confounded_with_size_warns():
    d = prepare(checkpoints(), CHIN, "loss", {"N": "params", "D": "tokens"}, run="run")
    (w,) = [w for w in d.warnings if w.kind == "run_confounded"]
    assert w.category is DesignWarning
    assert "each run (column 'run') is observed at a single N (column 'params')" in w.message
    assert "Drop run=" in w.message
    # without run= nothing is confounded
    plain = prepare(checkpoints(), CHIN, "loss", {"N": "params", "D": "tokens"})
    assert plain.warnings == []


def test_seeds_at_each_size_separate_the_run_effect():
    d = prepare(checkpoints(runs_per_size=2), CHIN, "loss", {"N": "params", "D": "tokens"}, run="run")
    assert "run_confounded" not in [w.kind for w in d.warnings]


def test_the_demo_ladder_is_identifiable():
    df = bayescale.datasets.simulate("chinchilla", seed=0)
    d = prepare(df, CHIN, "loss", {"N": "params", "D": "tokens"}, group="family", run="run")
    assert not {"run_confounded", "run_one_row", "group_confounded", "group_one_row"} & {
        w.kind for w in d.warnings}


def test_one_row_per_run_warns():
    d = prepare(ladder(), POWER, "loss", "x", run="run")
    (w,) = d.warnings
    assert w.kind == "run_one_row" and "cannot be told from observation noise" in w.message
    assert "Drop run=" in w.message


def test_group_equal_to_an_input_warns():
    df = checkpoints()
    df["size"] = df["params"].map(lambda n: f"{n:.0e}")  # the grouping is the model size
    d = prepare(df, CHIN, "loss", {"N": "params", "D": "tokens"}, group="size")
    (w,) = [w for w in d.warnings if w.kind == "group_confounded"]
    assert "column 'size' fixes input N (column 'params')" in w.message
    assert "Use a different grouping" in w.message and "E, a, b" in w.message
    # shared parameters leave nothing per family to absorb the effect
    shared = CHIN.with_pooling({"E": "shared", "a": "shared", "b": "shared"})
    d = prepare(df, shared, "loss", {"N": "params", "D": "tokens"}, group="size")
    assert "group_confounded" not in [w.kind for w in d.warnings]


def test_one_row_per_family_warns():
    df = ladder()
    df["family"] = ["a", "b", "c", "d", "e", "f"]
    d = prepare(df, POWER, "loss", "x", group="family", min_rows_per_family=1)
    assert "group_one_row" in [w.kind for w in d.warnings]
    assert "Use a different grouping" in [w for w in d.warnings if w.kind == "group_one_row"][0].message


@pytest.mark.slow  # two tiny fits (2 chains x (200 + 200) draws on 20 rows)
def test_run_effect_confounded_with_size_trades_off_against_the_size_exponent():
    """The failure mode the run_confounded warning prevents: with one run per size, the run
    effects absorb the size effect and the size exponent is pinned only by the run-effect prior."""
    import warnings

    rng = np.random.default_rng(0)
    rows = [{"run": f"r{i}", "x1": n, "x2": d} for i, n in enumerate((1e7, 1e8, 1e9, 1e10))
            for d in np.logspace(8, 10, 5)]
    df = pd.DataFrame(rows)
    df["y"] = 50 * df["x1"] ** -0.1 * df["x2"] ** -0.05 * np.exp(0.005 * rng.standard_normal(len(df)))
    kw = dict(law="loglinear2", y="y", x={"x1": "x1", "x2": "x2"}, chains=2, warmup=200, draws=200,
              seed=0, progress=False, extrapolation=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        confounded = bayescale.fit(df, run="run", **kw)
        plain = bayescale.fit(df, **kw)
    assert any("run_confounded" in str(w.message) for w in caught)
    post = confounded.idata.posterior
    a1 = np.asarray(post["a1"]).reshape(-1)  # shared: one family
    effects = np.asarray(post["run_effect"]).reshape(-1, 4)
    logx = np.log(confounded.design.inputs["x1"][[0, 5, 10, 15]])
    slope = np.polyfit(logx - logx.mean(), effects.T, 1)[0]  # run effects' trend in log size, per draw
    assert np.corrcoef(a1, slope)[0, 1] < -0.9  # the two trade off, draw by draw
    a1_plain = np.asarray(plain.idata.posterior["a1"]).ravel()
    assert a1.std() > 5 * a1_plain.std()  # and the exponent is far less certain than the data allow


# ---- likelihood weights ------------------------------------------------------------------------
def test_weights_are_scaled_to_average_one():
    df = ladder().assign(w=[1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    design = prepare(df, POWER, "loss", "x", group="family", weight="w")
    np.testing.assert_allclose(design.weight, [0.5, 1.0, 1.5, 0.5, 1.0, 1.5])
    assert design.columns["weight"] == "w" and "w" in design.frame
    assert prepare(ladder(), POWER, "loss", "x").weight is None


@pytest.mark.parametrize(("value", "fragment"), [
    (0.0, "column 'w' has zero or negative values: row 4"),
    (-1.0, "column 'w' has zero or negative values: row 4"),
    (np.nan, "column 'w' has missing (NaN) or infinite values: row 4"),
    ("heavy", "column 'w' has non-numeric values: row 4"),
])
def test_bad_weights_are_named(value, fragment):
    df = ladder().assign(w=1.0).astype({"w": object})
    df.loc[4, "w"] = value
    _raises(df, fragment, group="family", weight="w")


def test_a_missing_weight_column_is_named():
    _raises(ladder(), "'weights'", group="family", weight="weights")
