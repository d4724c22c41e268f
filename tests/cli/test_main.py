"""The ``bayescale`` command line: subcommands, JSON output, error messages and exit codes.

Everything runs ``bayescale.cli.main`` in-process (it returns the exit code),
except one subprocess test of the installed ``bayescale`` entry point.  Fits
are tiny (one chain, a 15-row one-family ladder), so their diagnostics gate
fails on ESS by design: that is exit code 1 with the fit still written.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import bayescale as bs
import bayescale.cli.main as cli
from bayescale.cli.main import UsageError, main, read_data

TINY = ["--chains", "1", "--warmup", "150", "--draws", "150", "--seed", "0"]


def run(argv) -> tuple[int, str, str]:
    """``main(argv)`` with stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("bayescale: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def power_csv(tmp_path_factory) -> Path:
    df = bs.datasets.simulate("power", families=1, seeds=1, sizes=(1e7, 1e8, 1e9), seed=0)
    path = tmp_path_factory.mktemp("data") / "power.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def fitted(power_csv, tmp_path_factory):
    """One tiny fit shared by the predict tests: (exit code, fit dir, stdout, stderr)."""
    out = tmp_path_factory.mktemp("fit") / "power-fit"
    code, stdout, stderr = run(["fit", power_csv, "--law", "power", "--y", "loss", "--x", "x",
                                *TINY, "--law-only", "--out", out])
    return code, out, stdout, stderr


def fit_args(data, out, *extra):
    """A tiny ``bayescale fit``; law-only bands unless ``extra`` asks for the calibration."""
    how = [] if {"--extrapolation", "--law-only"} & set(extra) else ["--law-only"]
    return ["fit", data, "--law", "power", "--y", "loss", "--x", "x", *TINY, *how, "--out", out, *extra]


# ---- laws --------------------------------------------------------------------------------
def test_laws_lists_the_catalogue():
    code, out, _ = run(["laws"])
    assert code == 0
    assert "chinchilla" in out and "power" in out
    assert "E + a * N**(-alpha) + b * D**(-beta)" in out


def test_laws_one_law_json_has_formula_and_parameters():
    code, out, _ = run(["laws", "chinchilla", "--json"])
    assert code == 0
    law = json.loads(out)
    assert law["name"] == "chinchilla"
    assert law["formula"] == "E + a * N**(-alpha) + b * D**(-beta)"
    assert set(law["inputs"]) == {"N", "D"}
    assert law["parameters"]["alpha"]["pool"] == "shared"
    assert law["parameters"]["E"]["prior"].startswith("floor(")
    assert set(law["report"]) == {"A", "B"}
    assert "Hoffmann" in law["citation"]


def test_laws_one_law_text_and_catalogue_json():
    code, out, _ = run(["laws", "power"])
    assert code == 0
    for text in ("y = E + a * x**(-alpha)", "Parameters:", "alpha", "A = a * x_ref**alpha", "Citation:"):
        assert text in out
    code, out, _ = run(["laws", "--json"])
    assert code == 0
    assert "chinchilla" in [row["name"] for row in json.loads(out)]


def test_laws_reads_a_toml_file(tmp_path):
    spec = tmp_path / "mylaw.toml"
    spec.write_text(bs.Law.named("power").to_toml().replace('name = "power"', 'name = "mylaw"'))
    code, out, _ = run(["laws", spec, "--json"])
    assert code == 0 and json.loads(out)["name"] == "mylaw"
    code, _, err = run(["laws", tmp_path / "missing.toml"])
    assert code == 2 and "does not exist" in error_line(err)


def test_unknown_law_suggests_the_closest():
    code, out, err = run(["laws", "chinchila"])
    assert code == 2 and out == ""
    assert "unknown law 'chinchila'" in error_line(err)
    assert "Did you mean 'chinchilla'?" in error_line(err)


def test_installed_entry_point_lists_laws():
    exe = shutil.which("bayescale", path=str(Path(sys.executable).parent)) or shutil.which("bayescale")
    if exe is None:
        pytest.skip("the bayescale console script is not installed (pip install -e .)")
    done = subprocess.run([exe, "laws"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "chinchilla" in done.stdout and "power" in done.stdout


def test_a_reader_that_stops_early_is_not_an_error():
    exe = shutil.which("bayescale", path=str(Path(sys.executable).parent)) or shutil.which("bayescale")
    if exe is None:
        pytest.skip("the bayescale console script is not installed (pip install -e .)")
    proc = subprocess.Popen([exe, "laws", "--markdown"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the command writes (it is still importing)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and "error" not in err, err


# ---- usage and input errors (all raised before any sampling) -------------------------------
def test_no_command_and_bad_flags_are_usage_errors():
    code, _, err = run([])
    assert code == 2 and "choose a command" in error_line(err)
    code, _, err = run(["fit", "data.csv"])
    assert code == 2 and "required" in error_line(err)
    code, _, err = run(["fit", "data.csv", "--law", "power", "--y", "loss", "--x", "x", "--out", "o",
                        "--chains", "two"])
    assert code == 2 and "'two' is not a whole number" in error_line(err)
    assert run(["--help"])[0] == 0


def test_missing_data_file(tmp_path):
    missing = tmp_path / "nope.csv"
    code, _, err = run(fit_args(missing, tmp_path / "fit"))
    assert code == 2
    assert f"data file {missing} does not exist" in error_line(err)
    assert "Traceback" not in err
    assert not (tmp_path / "fit").exists()


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty"),
    (b"x,loss\n", "has a header but no rows"),
    ("x,loss\n1e7,2.5\n1e8,caf\xe9\n".encode("latin-1"), "is not UTF-8"),
])
def test_unreadable_data_files(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    code, _, err = run(fit_args(path, tmp_path / "fit"))
    assert code == 2
    assert message in error_line(err)


def test_read_data_parquet_and_corrupt_parquet(power_csv, tmp_path):
    pytest.importorskip("pyarrow")
    import pandas as pd

    path = tmp_path / "power.parquet"
    pd.read_csv(power_csv).to_parquet(path)
    assert read_data(path).shape == (15, 5)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(UsageError, match="not a readable Parquet file"):
        read_data(bad)


def test_internal_errors_exit_3(monkeypatch):
    def boom(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "cmd_laws", boom)
    code, _, err = run(["laws"])
    assert code == 3
    assert "internal error: RuntimeError: boom" in error_line(err) and "Traceback" not in err


def test_misspelled_column_suggests_the_right_one(power_csv, tmp_path):
    args = ["fit", power_csv, "--law", "power", "--y", "los", "--x", "x", *TINY, "--out", tmp_path / "f"]
    code, _, err = run(args)
    assert code == 2
    line = error_line(err)
    assert "column 'los' is not in the data" in line and "Did you mean 'loss'?" in line


def test_unknown_law_in_fit(power_csv, tmp_path):
    args = ["fit", power_csv, "--law", "powr", "--y", "loss", "--x", "x", "--out", tmp_path / "f"]
    code, _, err = run(args)
    assert code == 2
    assert "Did you mean 'power'?" in error_line(err)


def test_x_mapping_errors(power_csv, tmp_path):
    base = ["fit", power_csv, "--law", "power", "--y", "loss", "--out", tmp_path / "f"]
    code, _, err = run([*base, "--x", "N=x"])
    assert code == 2 and "not inputs of law 'power'" in error_line(err)
    code, _, err = run([*base, "--x", "x", "--x", "x=x"])
    assert code == 2 and "INPUT=COLUMN" in error_line(err)
    code, _, err = run([*base, "--x", "x", "--pool", "alpha=sometimes"])
    assert code == 2 and "alpha" in error_line(err)


def test_debug_shows_the_traceback(tmp_path):
    code, _, err = run(["--debug", "fit", tmp_path / "nope.csv", "--law", "power", "--y", "loss",
                        "--x", "x", "--out", tmp_path / "f"])
    assert code == 2
    assert "Traceback" in err and "does not exist" in error_line(err)


# ---- fit and predict ---------------------------------------------------------------------
def test_fit_writes_the_fit_and_prints_the_verdict(fitted):
    code, out, stdout, stderr = fitted
    assert code in (0, 1), stderr
    assert (out / "fit.json").is_file() and (out / "posterior.nc").is_file()
    assert "alpha" in stdout and "ess_bulk" in stdout
    assert "Diagnostics: passed" in stdout or "Diagnostics: FAILED" in stdout
    if code == 1:
        assert "DIAGNOSTICS FAILED" in stderr
    assert bs.load(out).law.name == "power"


def test_predict_json_bands_are_finite_and_ordered(fitted, tmp_path):
    _, out, _, _ = fitted
    csv = tmp_path / "pred.csv"
    code, stdout, err = run(["predict", out, "--at", "x=1e12", "--at", "3e9", "--json", "--csv", csv])
    assert code == 0, err
    rows = json.loads(stdout)
    assert len(rows) == 2
    assert [r["x"] for r in rows] == [1e12, 3e9]
    for r in rows:
        values = [r[k] for k in ("lo90", "lo50", "median", "hi50", "hi90")]
        assert all(isinstance(v, float) and math.isfinite(v) for v in values)
        assert r["lo90"] <= r["lo50"] <= r["median"] <= r["hi50"] <= r["hi90"]
    assert csv.read_text().startswith("x,family,mean,median")


@pytest.mark.slow  # a calibrated fit from the command line (its nested fits)
def test_fit_with_extrapolation_keeps_a_rate_and_predict_can_drop_it(power_csv, tmp_path):
    out = tmp_path / "fit-x"
    code, stdout, err = run(fit_args(power_csv, out, "--extrapolation", "--json"))
    assert code in (0, 1), err  # tiny chains: the gate may fail, the fit is written either way
    kept = json.loads(stdout)["settings"]["extrapolation"]
    assert kept["rate"] >= 0 and kept["origins"] >= 1 and kept["reach"] > 0, kept
    top = float(read_data(power_csv)["x"].max())
    far = ["predict", out, "--at", f"x={100 * top:.6g}", "--json", "--levels", "0.9"]
    _, default, _ = run(far)
    _, law_only, _ = run([*far, "--law-only"])
    (d,), (lo,) = json.loads(default), json.loads(law_only)
    assert d["distance"] == pytest.approx(2.0, abs=1e-5) == lo["distance"]  # two decades beyond
    width = lambda r: r["hi90"] - r["lo90"]  # noqa: E731
    # the widened band holds the law-only one's spread plus rate x distance on the log scale
    assert width(d) >= width(lo) if kept["rate"] == 0 else width(d) > width(lo)


@pytest.mark.slow  # 8 tiny fits
def test_forecast_stacks_laws_and_reports_weights_and_gates(power_csv, tmp_path):
    csv = tmp_path / "stacked.csv"
    code, stdout, err = run(["forecast", power_csv, "--laws", "power,loglinear", "--y", "loss",
                             "--x", "x", *TINY, "--at", "x=1e11", "--json", "--csv", csv])
    assert code in (0, 1), err  # tiny chains: the gates may fail, and then the exit code says so
    got = json.loads(stdout)
    assert set(got["weights"]) == {"power", "loglinear"}
    assert sum(got["weights"].values()) == pytest.approx(1.0)
    assert set(got["elpd_lfo"]) == {"power", "loglinear", "stacked"}
    (row,) = got["forecast"]
    assert row["lo90"] <= row["median"] <= row["hi90"] and row["x"] == 1e11
    assert len(got["gates"]) == 8  # each law: all data and 3 origins
    assert (code == 1) == (not got["ok"]) and (code == 0 or "DIAGNOSTICS FAILED" in err)
    assert read_data(csv)["median"].iloc[0] == pytest.approx(row["median"])


def test_forecast_needs_two_laws(power_csv):
    code, _, err = run(["forecast", power_csv, "--laws", "power", "--y", "loss", "--x", "x",
                        "--at", "x=1e11"])
    assert code == 2 and "at least two laws" in error_line(err)


def test_fit_takes_either_extrapolation_or_law_only(power_csv, tmp_path):
    code, _, err = run(fit_args(power_csv, tmp_path / "f", "--extrapolation", "--law-only"))
    assert code == 2 and "not allowed with argument" in err


def test_predict_new_run_and_levels(fitted):
    _, out, _, _ = fitted
    code, stdout, _ = run(["predict", out, "--at", "x=1e10", "--kind", "new_run", "--levels", "0.8",
                           "--json"])
    assert code == 0
    (row,) = json.loads(stdout)
    assert row["lo80"] <= row["median"] <= row["hi80"] and "lo90" not in row
    code, stdout, _ = run(["predict", out, "--at", "x=1e10"])
    assert code == 0 and "median" in stdout and "hi90" in stdout


@pytest.mark.parametrize(("at", "message"), [
    ("x=abc", "--at x value 'abc' is not a number"),
    ("x=7B", "--at x value '7B' is not a number"),
    ("x=-5", "must be > 0"),
    ("N=1e9", "'N', which is not an input of law 'power'"),
    ("x=", "expects NAME=VALUE"),
])
def test_predict_bad_at_values(fitted, at, message):
    _, out, _, _ = fitted
    code, stdout, err = run(["predict", out, "--at", at, "--json"])
    assert code == 2 and stdout == ""
    assert message in error_line(err)


def test_predict_bad_fit_dir_and_family(fitted, tmp_path):
    code, _, err = run(["predict", tmp_path / "nofit", "--at", "x=1e9"])
    assert code == 2 and "is not a fit directory" in error_line(err)
    code, _, err = run(["predict", fitted[1], "--at", "x=1e9", "--family", "f1"])
    assert code == 2 and "no group column" in error_line(err)
    code, _, err = run(["predict", fitted[1], "--at", "x=1e9", "--levels", "0.5,90"])
    assert code == 2 and "strictly between 0 and 1" in error_line(err)


def test_gate_failure_exits_1_and_keeps_the_fit(power_csv, tmp_path):
    out = tmp_path / "gate-fit"
    args = ["fit", power_csv, "--law", "power", "--y", "loss", "--x", "x", "--chains", "1",
            "--warmup", "150", "--draws", "20", "--law-only", "--out", out, "--json"]
    code, stdout, err = run(args)
    assert code == 1
    assert "DIAGNOSTICS FAILED" in err
    assert (out / "fit.json").is_file()
    result = json.loads(stdout)
    assert result["ok"] is False
    assert {"ess_bulk", "ess_tail"} & {w["kind"] for w in result["warnings"]}
    assert {r["parameter"] for r in result["summary"]} >= {"E", "a", "alpha", "A", "sigma"}


# ---- demo --------------------------------------------------------------------------------
@pytest.mark.slow  # full-size fits from the command line
def test_demo_writes_png_and_coverage(tmp_path):
    from bayescale.cli.demo import run_demo

    lines = []
    result = run_demo(tmp_path, chains=2, warmup=300, draws=300, echo=lines.append, progress=False)
    png = Path(result["png"])
    assert png == tmp_path / "demo_fit.png" and png.stat().st_size > 10_000
    assert 0.0 <= result["coverage90"] <= 1.0
    assert result["n_heldout"] == 30
    assert isinstance(result["ok"], bool) and result["seconds"] > 0
    text = "\n".join(lines)
    assert "Diagnostics:" in text and "Coverage:" in text
    assert "Extrapolation calibrated by 3 rolling origins" in text


@pytest.mark.slow  # compiles the demo's fit and its calibration's nested programs (60 s)
def test_demo_runs_end_to_end_with_tiny_chains(tmp_path):
    """The fast tier's pass through the demo: every step runs and reports (too few draws to judge)."""
    from bayescale.cli.demo import run_demo

    lines = []
    result = run_demo(tmp_path, chains=1, warmup=40, draws=40, echo=lines.append, progress=False)
    assert Path(result["png"]).stat().st_size > 10_000 and result["n_heldout"] == 30
    text = "\n".join(lines)
    assert "Diagnostics:" in text and "Coverage:" in text and "Extrapolation" in text


# ---- real data end to end ------------------------------------------------------------------
@pytest.mark.slow  # full-size fits from the command line
def test_fit_predict_report_on_gadre_overtrain(tmp_path):
    """The command line end to end on a real ladder: Gadre et al.'s 5 runs per corpus."""
    try:
        df = bs.datasets.load("gadre_overtrain")
    except bs.DataError as exc:
        pytest.skip(str(exc))
    data = tmp_path / "gadre.csv"
    df[df["gadre_fit_split"]].to_csv(data, index=False)
    out = tmp_path / "gadre-fit"
    code, _, err = run(["fit", data, "--law", "chinchilla_shared", "--y", "loss", "--x", "N=params",
                        "--x", "D=tokens", "--group", "dataset", "--se", "loss_se", "--chains", "2",
                        "--warmup", "300", "--draws", "300", "--out", out, "--quiet"])
    assert code in (0, 1), err  # 600 draws may fall short of ESS 400: the gate, not an error
    assert (out / "fit.json").is_file()
    code, stdout, err = run(["predict", out, "--at", "N=6.9e9,D=1.38e11", "--family", "rpj",
                             "--kind", "new_run", "--json"])
    assert code == 0, err
    (row,) = json.loads(stdout)
    assert row["lo90"] <= row["median"] <= row["hi90"]
    assert 2.0 < row["median"] < 3.0  # the 6.9B RedPajama run lands at 2.43 nats
    assert row["extrap_C"] > 2  # about 300x the fitting compute
    code, _, err = run(["report", out, "--at", "N=6.9e9,D=1.38e11"])
    assert code in (0, 1), err
    page = (out / "report.html").read_text()
    assert "<html" in page and "</html>" in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert images and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)

    # compute-optimal allocation from the saved fit, in JSON and as a table with a plot
    code, stdout, err = run(["allocate", out, "--budget", "1e21,1e23", "--family", "rpj", "--json"])
    assert code == 0, err
    rows = json.loads(stdout)
    assert [r["C"] for r in rows] == [1e21, 1e23] and rows[0]["method"] == "closed form"
    assert rows[0]["N_median"] < rows[1]["N_median"]  # a larger budget buys a larger model
    for r in rows:
        assert r["N_lo90"] < r["N_median"] < r["N_hi90"]
        # D* = C / (6 N*) draw by draw, a decreasing map, so the medians satisfy it too
        assert abs(6 * r["N_median"] * r["D_median"] / r["C"] - 1) < 1e-2
    png = tmp_path / "frontier.png"
    code, stdout, err = run(["allocate", out, "--budget", "1e22", "--plot", png])
    assert code == 0, err
    assert "D*/N*" in stdout and png.read_bytes().startswith(b"\x89PNG")
    code, _, err = run(["allocate", out, "--budget", "-3"])
    assert code == 2 and "budgets must be positive" in err

    # the same data through compare (two laws) and backtest (largest size held out)
    other = tmp_path / "gadre-chinchilla"
    code, _, err = run(["fit", data, "--law", "chinchilla", "--y", "loss", "--x", "N=params",
                        "--x", "D=tokens", "--group", "dataset", "--se", "loss_se", "--chains", "2",
                        "--warmup", "300", "--draws", "300", "--law-only", "--out", other, "--quiet"])
    assert code in (0, 1), err
    code, stdout, err = run(["compare", out, other, "--json"])
    assert code == 0, err
    table = json.loads(stdout)
    assert len(table) == 2 and abs(sum(r["weight"] for r in table) - 1) < 1e-6
    code, stdout, err = run(["backtest", data, "--law", "chinchilla_shared", "--y", "loss",
                             "--x", "N=params", "--x", "D=tokens", "--group", "dataset",
                             "--se", "loss_se", "--chains", "2", "--warmup", "300", "--draws", "300",
                             "--split", "largest-size", "--json", "--quiet"])
    assert code in (0, 1), err
    result = json.loads(stdout)
    assert {r["params"] for r in result["per_target"]} == {float(df["params"][df["gadre_fit_split"]].max())}
    assert all(0 <= r["coverage_90"] <= 1 for r in result["aggregate"])


# ---- compare and backtest ------------------------------------------------------------------
@pytest.fixture(scope="module")
def second_fit(power_csv, tmp_path_factory) -> Path:
    """A second tiny fit of the same data as ``fitted``, with another sampler seed."""
    out = tmp_path_factory.mktemp("fit2") / "power-fit-seed1"
    code, _, err = run([*fit_args(power_csv, out), "--seed", "1", "--quiet"])
    assert code in (0, 1), err
    return out


def test_compare_two_fits_of_the_same_data(fitted, second_fit):
    _, first, _, _ = fitted
    code, stdout, err = run(["compare", first, second_fit, "--json"])
    assert code == 0, err
    rows = json.loads(stdout)
    assert {r["fit"] for r in rows} == {"power-fit", "power-fit-seed1"}
    assert math.isclose(sum(r["weight"] for r in rows), 1.0, abs_tol=1e-6)
    assert all(set(r) >= {"elpd_loo", "se", "p_loo", "elpd_diff", "dse", "n_bad_k"} for r in rows)
    assert all(line.startswith("bayescale: warning:") for line in err.splitlines())
    code, stdout, _ = run(["compare", first, second_fit, "--name", "a", "--name", "b"])
    assert code == 0
    table = [line.split()[0] for line in stdout.splitlines()[1:] if line.split()[:1] in (["a"], ["b"])]
    assert sorted(table) == ["a", "b"] and "elpd_loo" in stdout and "weight" in stdout


def test_compare_needs_two_fits_and_one_name_each(fitted):
    _, first, _, _ = fitted
    code, stdout, err = run(["compare", first])
    assert code == 2 and stdout == ""
    assert "at least two fit directories" in error_line(err)
    code, _, err = run(["compare", first, first, "--name", "only-one"])
    assert code == 2 and "one --name per FITDIR" in error_line(err)
    code, _, err = run(["compare", first, first])
    assert code == 2 and "--name" in error_line(err)


def test_compare_fits_of_different_data(fitted, tmp_path):
    other = tmp_path / "other.csv"
    bs.datasets.simulate("power", families=1, seeds=1, sizes=(1e7, 1e8, 1e9), seed=1).to_csv(other,
                                                                                              index=False)
    out = tmp_path / "other-fit"
    code, _, err = run([*fit_args(other, out), "--quiet"])
    assert code in (0, 1), err
    code, stdout, err = run(["compare", fitted[1], out, "--json"])
    assert code == 2 and stdout == ""
    assert "not fitted to the same outcome rows" in error_line(err)


def test_backtest_largest_size_json_and_csv(power_csv, tmp_path):
    import pandas as pd

    csv = tmp_path / "per_target.csv"
    code, stdout, err = run(["backtest", power_csv, "--law", "power", "--y", "loss", "--x", "x", *TINY,
                             "--split", "largest-size", "--kind", "both", "--csv", csv, "--json"])
    assert code in (0, 1), err  # tiny fits fail the ESS gate by design: exit 1, results still printed
    result = json.loads(stdout)
    assert result["split"].startswith("largest-size")
    assert [r["kind"] for r in result["aggregate"]] == ["mean", "new_run"]
    for row in result["aggregate"]:
        coverage = [row[f"coverage_{p}"] for p in (50, 80, 90, 95)]
        assert all(0.0 <= c <= 1.0 for c in coverage)
    largest = pd.read_csv(power_csv)["x"].max()
    assert result["per_target"] and all(r["x"] == largest for r in result["per_target"])
    assert result["n_held_out"] == len(result["per_target"]) // 2
    assert pd.read_csv(csv)["x"].eq(largest).all()


@pytest.mark.parametrize(("split", "message"), [
    ("largest", "is not a split"),
    ("leave-family-out:f1", "leave-family-out:FAMILY:K"),
    ("leave-family-out:f1:-1", "K >= 0"),
    ("leave-family-out:f1:1", "needs a group column"),
])
def test_backtest_bad_split(power_csv, split, message):
    code, stdout, err = run(["backtest", power_csv, "--law", "power", "--y", "loss", "--x", "x", *TINY,
                             "--split", split, "--json"])
    assert code == 2 and stdout == ""
    assert message in error_line(err)


# ---- sweep -------------------------------------------------------------------------------
@pytest.mark.slow  # a sweep of several groups, run twice (10 s)
def test_sweep_records_each_group_and_resumes(tmp_path):
    import pandas as pd

    frames = [bs.datasets.simulate("power", families=1, seeds=1, seed=k).assign(task=t)
              for k, t in enumerate("ab")]
    frames[1].loc[2, "loss"] = 0.0  # task b: bad data, recorded, the sweep goes on
    data = tmp_path / "tasks.csv"
    pd.concat(frames).to_csv(data, index=False)
    argv = ["sweep", data, "--law", "power", "--y", "loss", "--x", "x", "--by", "task", *TINY,
            "--out", tmp_path / "out", "--at", "1e10", "--law-only", "--serial"]
    code, stdout, stderr = run(argv)
    assert code == 1, stderr  # a group did not pass
    groups = pd.read_csv(tmp_path / "out" / "groups.csv").set_index("task")
    assert groups.loc["b", "status"] == "error" and "'loss'" in groups.loc["b", "message"]
    assert groups.loc["a", "status"] in ("ok", "gate")
    assert len(pd.read_csv(tmp_path / "out" / "forecasts.csv")) == 1
    assert "sweep group 2 of 2" in stderr and "Groups that failed" in stdout
    code, _, stderr = run(argv)
    assert code == 1 and "2 of 2 groups already done; nothing left to fit" in stderr
    code, _, stderr = run([*argv[:-1], "--serial", "--scheduler", "local"])
    assert code == 2 and "not allowed with argument" in error_line(stderr)


def test_sweep_takes_the_extrapolation_flags_of_fit(tmp_path, monkeypatch):
    """Default: calibrate where the data allow; --extrapolation: require it; --law-only: skip it."""
    import pandas as pd

    from bayescale.many import sweep as sweep_module

    seen = []

    def sweep(df, **options):
        seen.append(options["extrapolation"])
        groups = pd.DataFrame({"task": ["a"], "status": ["ok"], "message": [""]})
        return sweep_module.Sweep(groups, pd.DataFrame(), pd.DataFrame(), {"law": "power"})

    monkeypatch.setattr(sweep_module, "sweep", sweep)
    data = tmp_path / "tasks.csv"
    bs.datasets.simulate("power", families=1, seeds=1, seed=0).assign(task="a").to_csv(data, index=False)
    argv = ["sweep", data, "--law", "power", "--y", "loss", "--x", "x", "--by", "task", *TINY,
            "--out", tmp_path / "out", "--serial"]
    for flags in ([], ["--extrapolation"], ["--law-only"]):
        code, _, stderr = run([*argv, *flags])
        assert code == 0, stderr
    assert seen == ["auto", True, False]


@pytest.mark.slow  # two fits through the command line (compile-dominated, about 15 s)
def test_fit_takes_likelihood_weights_and_names_a_bad_one(tmp_path):
    df = bs.datasets.simulate("power", families=1, seeds=1, sizes=(1e7, 1e8, 1e9), seed=0)
    df["w"] = np.sqrt(df["x"] / df["x"].min())
    path = tmp_path / "weighted.csv"
    df.to_csv(path, index=False)
    code, _, err = run(["fit", path, "--law", "power", "--y", "loss", "--x", "x", "--weight", "w",
                        *TINY, "--law-only", "--out", tmp_path / "fit"])
    assert code in (0, 1), err  # 1: this tiny fit may fail its gate
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.load(tmp_path / "fit")
    np.testing.assert_allclose(fit.design.weight, df["w"] / df["w"].mean())
    df.loc[2, "w"] = 0.0
    df.to_csv(path, index=False)
    code, _, err = run(["fit", path, "--law", "power", "--y", "loss", "--x", "x", "--weight", "w",
                        *TINY, "--law-only", "--out", tmp_path / "fit2"])
    assert code == 2 and "column 'w' has zero or negative values: row 2" in error_line(err)
