"""A corpus of bad inputs: each must give its exit code and a message that says what is wrong.

Every case in :data:`CASES` runs ``bayescale.cli.main(argv)`` in-process and checks
the exit code and that a fragment of the expected message is on stderr.  In
``argv``, ``{dir}`` is the corpus folder (``tests/bad_inputs``) and ``{tmp}`` the
test's ``tmp_path``; ``setup`` names a function of :data:`SETUPS` that prepares
``{tmp}`` first (a copy of a saved fit, damaged in some way, or a huge file).

Errors (exit 2) are found before any sampling.  The few cases that are warnings,
not errors, say so with ``code=(0, 1)`` or ``0``; those that sample use one chain
of 50 + 50 draws.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayescale.cli.main import main
from bayescale.data.design import units_look_mixed
from bayescale.errors import DataError

CORPUS = Path(__file__).resolve().parents[1] / "bad_inputs"
SHORT = ["--chains", "1", "--warmup", "50", "--draws", "50", "--seed", "0", "--law-only"]


def fit_argv(data, *extra, law="power", y="loss", x=("x",), out="{tmp}/fit"):
    xs = [a for col in x for a in ("--x", col)]
    return ["fit", data, "--law", law, "--y", y, *xs, *SHORT, "--out", out, *extra]


def sweep_argv(data, by="family"):
    return ["sweep", data, "--law", "power", "--y", "loss", "--x", "x", "--by", by,
            *SHORT[:-1], "--serial", "--out", "{tmp}/sweep"]


@dataclass(frozen=True)
class Case:
    id: str
    argv: list
    code: int | tuple
    fragment: str
    setup: str | None = None


CASES = [
    # ---- the data file ------------------------------------------------------------------
    Case("missing_column", fit_argv("{dir}/missing_column.csv"), 2, "column 'loss' is not in the data"),
    Case("misspelled_y", fit_argv("{dir}/ok.csv", y="los"), 2, "Did you mean 'loss'?"),
    Case("misspelled_x", fit_argv("{dir}/ok.csv", x=("xx",)), 2, "Did you mean 'x'?"),
    Case("misspelled_group", fit_argv("{dir}/ok.csv", "--group", "famly"), 2, "Did you mean 'family'?"),
    Case("empty_file", fit_argv("{dir}/empty.csv"), 2, "is empty"),
    Case("header_only", fit_argv("{dir}/header_only.csv"), 2, "has a header but no rows"),
    Case("sizes_7B", fit_argv("{dir}/sizes_7B.csv"), 2, "column 'x' has non-numeric values: row 0 ('70M')"),
    Case("nan_loss", fit_argv("{dir}/nan_loss.csv"), 2, "column 'loss' has missing (NaN) or infinite values"),
    Case("inf_loss", fit_argv("{dir}/inf_loss.csv"), 2, "column 'loss' has missing (NaN) or infinite values"),
    Case("negative_loss", fit_argv("{dir}/negative_loss.csv"), 2,
         "column 'loss' has zero or negative values: row 1 (-2.6); law 'power' models a positive outcome"),
    Case("negative_loss_names_real", fit_argv("{dir}/negative_loss.csv"), 2,
         'needs a law with outcome = "real" (e.g. law=\'offset_power\''),
    Case("accuracy_percent", fit_argv("{dir}/accuracy_percent.csv", law="coverage", y="acc", x=("k",)), 2,
         "column 'acc' has values outside [0, 1]: row 1 (42.0)"),
    Case("accuracy_only_0_1", fit_argv("{dir}/accuracy_only_0_1.csv", law="coverage", y="acc", x=("k",)),
         2, "column 'acc' holds only exact 0 and 1"),
    Case("zero_loss", fit_argv("{dir}/zero_loss.csv"), 2, "column 'loss' has zero or negative values"),
    Case("negative_size", fit_argv("{dir}/negative_size.csv"), 2, "column 'x' has zero or negative values"),
    Case("zero_size", fit_argv("{dir}/zero_size.csv"), 2, "column 'x' has zero or negative values"),
    # rows repeating in every used column are replicates: kept, said once, dropped only when asked
    Case("duplicate_rows_warn", fit_argv("{dir}/duplicates.csv"), (0, 1),
         "bayescale: warning: [replicates] 1 row(s) repeat another row in every column the fit uses "
         "(e.g. rows [1, 2])"),
    Case("one_run_per_size_warns", fit_argv("{dir}/one_run_per_size.csv", "--run", "run"), (0, 1),
         "bayescale: warning: [run_confounded] each run (column 'run') is observed at a single x"),
    Case("one_row_per_run_warns", fit_argv("{dir}/one_row_per_seed.csv", "--run", "seed"), (0, 1),
         "bayescale: warning: [run_one_row] every run (column 'seed') has a single row"),
    Case("one_row_family", fit_argv("{dir}/one_row_family.csv", "--group", "family"), 2,
         "family 'f1' (1 row) in column 'family' has fewer than 2 rows"),
    Case("single_size_warns", fit_argv("{dir}/single_size.csv"), (0, 1),
         "bayescale: warning: [few_sizes] input x (column 'x') has only 1 distinct value(s)"),
    Case("mixed_units", fit_argv("{dir}/mixed_units.csv"), 2, "column 'x' looks like mixed units"),
    Case("mixed_units_in_family", fit_argv("{dir}/mixed_units.csv", "--group", "family"), 2,
         "in family 'f0' looks like mixed units"),
    Case("latin1", fit_argv("{dir}/latin1.csv"), 2, "is not UTF-8 text"),
    Case("utf16", fit_argv("{dir}/utf16.csv"), 2, "is not UTF-8 text"),
    Case("over_max_bytes", fit_argv("{tmp}/big.csv", "--max-bytes", "1k"), 2,
         "over the limit of 1 kB (1000 bytes)", setup="big"),
    Case("huge_sparse_file", fit_argv("{tmp}/huge.csv"), 2, "is 600 MB, over the limit of 500 MB",
         setup="huge"),
    Case("bad_max_bytes", fit_argv("{dir}/ok.csv", "--max-bytes", "lots"), 2,
         "'lots' is not a size in bytes"),
    Case("data_is_directory", fit_argv("{dir}"), 2, "is a directory; give a CSV or Parquet file"),
    Case("data_missing", fit_argv("{dir}/no_such_file.csv"), 2, "does not exist"),
    Case("out_is_a_file", fit_argv("{dir}/ok.csv", out="{dir}/ok.csv"), 2,
         "exists and is not a directory"),
    # ---- options of fit ---------------------------------------------------------------------
    Case("unknown_likelihood", fit_argv("{dir}/ok.csv", "--likelihood", "cauchy"), 2,
         "invalid choice: 'cauchy'"),
    Case("pool_unknown_parameter", fit_argv("{dir}/ok.csv", "--pool", "beta=partial"), 2,
         "pool names unknown parameter 'beta' of law 'power'"),
    Case("pool_bad_mode", fit_argv("{dir}/ok.csv", "--pool", "alpha=sometimes"), 2,
         "pool['alpha'] = 'sometimes'; choose one of"),
    Case("pool_without_mode", fit_argv("{dir}/ok.csv", "--pool", "alpha"), 2, "--pool expects NAME=VALUE"),
    Case("x_unknown_input", fit_argv("{dir}/ok.csv", x=("N=x",)), 2, "not inputs of law 'power'"),
    Case("x_missing_input", fit_argv("{dir}/ok.csv", law="chinchilla", x=("N=x",)), 2,
         "does not map law input(s) ['D']"),
    Case("chains_zero", fit_argv("{dir}/ok.csv", "--chains", "0"), 2, "'0' must be at least 1"),
    # ---- laws -------------------------------------------------------------------------------
    Case("unknown_law", fit_argv("{dir}/ok.csv", law="powr"), 2, "unknown law 'powr'. Did you mean 'power'?"),
    Case("unknown_law_laws", ["laws", "chinchila"], 2, "Did you mean 'chinchilla'?"),
    Case("law_toml_syntax", fit_argv("{dir}/ok.csv", law="{dir}/law_toml_syntax.toml"), 2,
         "is not valid TOML"),
    Case("law_missing_keys", ["laws", "{dir}/law_missing_keys.toml"], 2,
         "lacks required key(s) ['inputs', 'parameters']"),
    Case("law_formula_syntax", ["laws", "{dir}/law_formula_syntax.toml"], 2,
         "is not a valid expression: '(' was never closed"),
    Case("law_import_call", ["laws", "{dir}/law_import.toml"], 2, "call of '__import__' is not allowed"),
    Case("law_attribute_access", ["laws", "{dir}/law_attribute.toml"], 2, "'x.__class__' is not allowed"),
    Case("law_unknown_name", ["laws", "{dir}/law_unknown_name.toml"], 2, "uses unknown name(s) ['b']"),
    Case("law_prior_sigma_zero", ["laws", "{dir}/law_sigma_zero.toml"], 2,
         "the scale must be a positive finite number, got 0.0"),
    Case("law_prior_sigma_negative", fit_argv("{dir}/ok.csv", law="{dir}/law_sigma_negative.toml"), 2,
         "the scale must be a positive finite number, got -0.5"),
    Case("law_prior_unknown_kind", ["laws", "{dir}/law_prior_kind.toml"], 2,
         "unknown 'cauchy'; choose one of ['floor', 'logitnormal', 'lognormal', 'normal']"),
    Case("law_file_missing", ["laws", "{dir}/no_such_law.toml"], 2, "does not exist"),
    Case("law_scale_unknown_name", ["laws", "{dir}/law_scale_unknown.toml"], 2,
         "scale of law 'scale_unknown' '6 * N * T' uses unknown name(s) ['T']"),
    Case("law_scale_not_positive", ["backtest", "{dir}/mixture_zero_share.csv", "--law",
                                    "{dir}/law_scale_proportion.toml", "--y", "loss", "--x", "N=params",
                                    "--x", "p=code", "--split", "largest-compute", *SHORT[:-1]], 2,
         "the scale of law 'mixture_scaled_by_share' (N * p), which extrapolation distance is measured "
         "in, is not > 0 at row 0"),
    Case("proportion_with_zeros_fits", fit_argv("{dir}/mixture_zero_share.csv", law="{dir}/law_mixture.toml",
                                                x=("N=params", "p=code")), (0, 1),
         "[few_sizes] input p (column 'code') has only 2 distinct value(s)"),
    # ---- predict and report ---------------------------------------------------------------------
    Case("at_not_a_number", ["predict", "{tmp}/fit", "--at", "x=abc"], 2,
         "--at x value 'abc' is not a number", setup="fit"),
    Case("at_7B", ["predict", "{tmp}/fit", "--at", "x=7B"], 2, "(write e.g. 7e9, not 7B)", setup="fit"),
    Case("at_missing_value", ["predict", "{tmp}/fit", "--at"], 2, "expected one argument"),
    Case("at_empty_value", ["predict", "{tmp}/fit", "--at", "x="], 2, "--at expects NAME=VALUE",
         setup="fit"),
    Case("at_negative", ["predict", "{tmp}/fit", "--at", "x=-5"], 2, "must be > 0", setup="fit"),
    Case("at_unknown_input", ["predict", "{tmp}/fit", "--at", "N=1e9"], 2,
         "'N', which is not an input of law 'power'. Its inputs are x", setup="fit"),
    Case("at_far_outside_warns", ["predict", "{tmp}/fit", "--at", "x=1e15"], 0,
         "bayescale: warning: 1 forecast(s) lie more than 2 decades outside the data", setup="fit"),
    Case("family_without_group", ["predict", "{tmp}/fit", "--at", "x=1e9", "--family", "f1"], 2,
         "no group column", setup="fit"),
    Case("levels_1.5", ["predict", "{tmp}/fit", "--at", "x=1e9", "--levels", "1.5"], 2,
         "--levels value '1.5' must lie strictly between 0 and 1"),
    Case("kind_banana", ["predict", "{tmp}/fit", "--at", "x=1e9", "--kind", "banana"], 2,
         "invalid choice: 'banana'"),
    Case("not_a_fit_dir", ["predict", "{tmp}/nofit", "--at", "x=1e9"], 2, "is not a fit directory"),
    Case("fit_dir_missing_file", ["predict", "{tmp}/fit", "--at", "x=1e9"], 2, "lacks ['data.csv']",
         setup="fit_without_data"),
    Case("fit_dir_format_version", ["predict", "{tmp}/fit", "--at", "x=1e9"], 2,
         "was written in fit format 99", setup="fit_format_99"),
    Case("fit_dir_edited_data", ["predict", "{tmp}/fit", "--at", "x=1e9"], 2,
         "data.csv does not match its checksum", setup="fit_edited_data"),
    Case("fit_dir_bad_json", ["report", "{tmp}/fit"], 2, "fit.json is not valid JSON", setup="fit_bad_json"),
    Case("report_bad_at", ["report", "{tmp}/fit", "--at", "x=abc"], 2, "--at x value 'abc' is not a number",
         setup="fit"),
    Case("report_out_is_directory", ["report", "{tmp}/fit", "--out", "{tmp}"], 2,
         "is a directory; give a file name"),
    Case("report_kind_banana", ["report", "{tmp}/fit", "--kind", "banana"], 2, "invalid choice: 'banana'"),
    Case("report_levels_1.5", ["report", "{tmp}/fit", "--at", "x=1e9", "--levels", "1.5"], 2,
         "--levels value '1.5' must lie strictly between 0 and 1"),
    # ---- sweep: refused before any fit ------------------------------------------------------
    Case("sweep_extrapolation_and_law_only", [*sweep_argv("{dir}/ok.csv"), "--extrapolation", "--law-only"],
         2, "argument --law-only: not allowed with argument --extrapolation"),
    Case("sweep_extrapolation_value", [*sweep_argv("{dir}/ok.csv"), "--extrapolation", "maybe"], 2,
         "unrecognized arguments: maybe"),
    Case("sweep_by_unknown_column", sweep_argv("{dir}/ok.csv", by="stage"), 2, "'stage'"),
]


# ---- setups ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_fit(tmp_path_factory) -> Path:
    """One short fit of the corpus' ok.csv, saved; copied and damaged by the setups."""
    out = tmp_path_factory.mktemp("saved") / "fit"
    code = main(fit_argv(str(CORPUS / "ok.csv"), out=str(out)))
    assert code in (0, 1)
    return out


def _copy_fit(tmp: Path, request) -> Path:
    target = tmp / "fit"
    shutil.copytree(request.getfixturevalue("saved_fit"), target)
    return target


def _no_read_csv(monkeypatch):
    """Fail the test if the data file is read at all (the size check must come first)."""
    def refuse(*args, **kwargs):
        raise AssertionError("read_csv was called on a file over --max-bytes")

    monkeypatch.setattr(pd, "read_csv", refuse)


def setup_fit(tmp, request, monkeypatch):
    _copy_fit(tmp, request)


def setup_fit_without_data(tmp, request, monkeypatch):
    (_copy_fit(tmp, request) / "data.csv").unlink()


def setup_fit_format_99(tmp, request, monkeypatch):
    meta_path = _copy_fit(tmp, request) / "fit.json"
    meta = json.loads(meta_path.read_text())
    meta["format"] = 99
    meta_path.write_text(json.dumps(meta))


def setup_fit_edited_data(tmp, request, monkeypatch):
    data = _copy_fit(tmp, request) / "data.csv"
    lines = data.read_text().splitlines()
    lines[1] = lines[1].replace("3.1", "3.2")
    data.write_text("\n".join(lines) + "\n")


def setup_fit_bad_json(tmp, request, monkeypatch):
    (_copy_fit(tmp, request) / "fit.json").write_text("{not json")


def setup_big(tmp, request, monkeypatch):
    rows = "".join(f"f0,{10 ** (7 + i % 4):g},{3 - 0.01 * i}\n" for i in range(200))
    (tmp / "big.csv").write_text("family,x,loss\n" + rows)
    _no_read_csv(monkeypatch)


def setup_huge(tmp, request, monkeypatch):
    with open(tmp / "huge.csv", "wb") as f:  # sparse: 600 MB on paper, a few bytes on disk
        f.write(b"family,x,loss\n")
        f.truncate(600_000_000)
    _no_read_csv(monkeypatch)


SETUPS = {name.removeprefix("setup_"): fn for name, fn in globals().items() if name.startswith("setup_")}


def _fill(arg: str, tmp: Path) -> str:
    return str(arg).replace("{dir}", str(CORPUS)).replace("{tmp}", str(tmp))


def test_the_corpus_is_complete():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 30
    for case in CASES:
        assert case.setup is None or case.setup in SETUPS, case.id
        for arg in case.argv:
            if str(arg).startswith("{dir}/"):
                name = str(arg).removeprefix("{dir}/")
                assert (CORPUS / name).exists() or name.startswith("no_such"), (case.id, name)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, request, monkeypatch, capsys):
    if case.setup:
        SETUPS[case.setup](tmp_path, request, monkeypatch)
    code = main([_fill(a, tmp_path) for a in case.argv])
    err = capsys.readouterr().err
    expected = case.code if isinstance(case.code, tuple) else (case.code,)
    assert code in expected, err
    assert case.fragment in err, err
    assert "Traceback" not in err and "internal error" not in err
    if expected == (2,):  # an error is one line, and nothing was written
        assert len([ln for ln in err.splitlines() if ln.startswith("bayescale: error:")]) == 1, err
        assert not (tmp_path / "fit" / "fit.json").exists() or case.setup, err


def test_unit_check_passes_wide_but_continuous_ladders():
    units_look_mixed(np.array([10.0 ** k for k in range(2, 11)]), "x")  # 8 decades, no gap: a real ladder
    units_look_mixed(np.array([7.0, 13.0]), "x", "a")  # each family in one unit
    units_look_mixed(np.array([7e9, 1.3e10]), "x", "b")
    with pytest.raises(DataError, match="mixed units"):
        units_look_mixed(np.array([7.0, 13.0, 7e9, 1.3e10]), "x")
