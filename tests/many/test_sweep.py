"""``bs.sweep``: every group fitted or recorded as failed, results written as fits end, reruns resume."""

import multiprocessing
import threading
import warnings
from concurrent.futures import Executor

import pandas as pd
import pytest

import bayescale as bs

TINY = {"law": "power", "by": "task", "y": "loss", "x": "x", "chains": 1, "warmup": 150, "draws": 150,
        "progress": False, "extrapolation": False}


def _table(tasks, bad=None):
    """One simulated power-law ladder (25 rows) per task; ``bad`` gets a negative loss."""
    frames = [bs.datasets.simulate("power", families=1, seeds=1, seed=k).assign(task=t)
              for k, t in enumerate(tasks)]
    df = pd.concat(frames, ignore_index=True)
    if bad is not None:
        df.loc[df.index[df["task"] == bad][3], "loss"] = -1.0
    return df


class _Refuse(Executor):
    """An executor that fails the test if anything is submitted to it."""

    def submit(self, fn, /, *args, **kwargs):
        raise AssertionError("the sweep submitted a fit")


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    df = _table(["a", "b", "c"], bad="b")
    return df, out, bs.sweep(df, out=out, executor="serial", at={"x": [1e10, 1e11]}, **TINY)


def test_each_group_is_fitted_or_recorded_with_its_error(done):
    df, out, result = done
    groups = result.groups.set_index("task")
    assert list(groups.index) == ["a", "b", "c"]
    assert groups.loc["b", "status"] == "error"
    assert "'loss'" in groups.loc["b", "message"] and "row 3" in groups.loc["b", "message"]
    assert set(groups.loc[["a", "c"], "status"]) <= {"ok", "gate"}
    not_ok = ["b"] + [t for t in "ac" if groups.loc[t, "status"] != "ok"]
    assert sorted(result.failed["task"]) == sorted(not_ok)
    # parameters and forecasts of the fitted groups only
    assert set(result.parameters["task"]) == {"a", "c"}
    assert set(result.parameters["parameter"]) >= {"E", "alpha", "sigma"}
    assert len(result.forecasts) == 2 * 2 and (result.forecasts["hi90"] > result.forecasts["lo90"]).all()
    for name in ("groups", "parameters", "forecasts"):
        assert len(pd.read_csv(out / f"{name}.csv")) == len(getattr(result, name))
    assert len(list((out / "groups").glob("*.json"))) == 3


def test_rerun_fits_nothing_and_other_settings_are_refused(done):
    df, out, result = done
    again = bs.sweep(df, out=out, executor=_Refuse(), at={"x": [1e10, 1e11]}, **TINY)
    pd.testing.assert_frame_equal(again.parameters, result.parameters)
    pd.testing.assert_frame_equal(again.groups, result.groups)
    with pytest.raises(bs.BayescaleError, match="other settings.*options"):
        bs.sweep(df, out=out, executor=_Refuse(), at={"x": [1e10, 1e11]}, **TINY | {"draws": 151})
    with pytest.raises(bs.BayescaleError, match="other settings.*extrapolation"):
        bs.sweep(df, out=out, executor=_Refuse(), at={"x": [1e10, 1e11]}, **TINY | {"extrapolation": "auto"})


def test_a_groups_draws_depend_on_its_own_values_only(done):
    df, out, result = done
    alone = bs.sweep(df[df["task"] == "c"], executor="serial", **TINY)
    pd.testing.assert_frame_equal(alone.parameters.reset_index(drop=True),
                                  result.parameters[result.parameters["task"] == "c"].reset_index(drop=True))


def test_bad_arguments_are_named():
    df = _table(["a"])
    with pytest.raises(bs.DataError, match="'stage'"):
        bs.sweep(df, **TINY | {"by": "stage"})
    with pytest.raises(bs.DataError, match="column 'task' is missing in 1 row"):
        bs.sweep(df.assign(task=[None] + ["a"] * (len(df) - 1)), **TINY)
    with pytest.raises(bs.BayescaleError, match="by="):
        bs.sweep(df, **TINY | {"by": []})
    with pytest.raises(bs.BayescaleError, match="executor='gpu'"):
        bs.sweep(df, executor="gpu", **TINY)
    with pytest.raises(bs.DataError, match="extrapolation='yes': pass 'auto', True, False"):
        bs.sweep(df, executor=_Refuse(), **TINY | {"extrapolation": "yes"})


@pytest.fixture
def recorder(monkeypatch):
    """The nested calibration of each group replaced by a recorder: a wide rate for task c,
    data too narrow for any other task."""
    from bayescale.evaluate import extrapolation
    from bayescale.evaluate.calibration import Calibration

    calls = []

    def measure(df, req, **options):
        calls.append((sorted(df["task"].unique()), len(df), req.sampler, options))
        if df["task"].iloc[0] != "c":
            raise bs.DataError("too narrow in compute for 3 origins")
        rows = pd.DataFrame({"decades": [0.5, 1.0], "error": [0.0, 0.1], "band_sd": [0.01, 0.02],
                             "origin": [0, 1]})
        return Calibration(rate=0.5, rows=rows, fit=None, reach=1.0, curvature=0.0, dof=3.0)

    monkeypatch.setattr(extrapolation, "measure", measure)
    return calls


@pytest.mark.slow  # a second real sweep (its nested calibration recorded, not run): 12 s
def test_each_group_is_calibrated_before_its_forecasts(done, recorder):
    df, _, plain = done
    both = df[df["task"].isin(["a", "c"])]
    result = bs.sweep(both, executor="serial", at={"x": [1e10, 1e11]}, **TINY | {"extrapolation": True})
    # each group's own rows, the nested fits shortened and silent, seeded by the sweep's seed
    assert [(tasks, n) for tasks, n, _, _ in recorder] == [(["a"], 25), (["c"], 25)]
    assert all(s.chains == 1 and s.draws == 150 and s.progress is False for _, _, s, _ in recorder)
    assert all(options["seed"] == 0 for _, _, _, options in recorder)
    groups = result.groups.set_index("task")
    # required but impossible: that group is an error, the sweep goes on
    assert groups.loc["a", "status"] == "error"
    assert "extrapolation=True: too narrow in compute" in groups.loc["a", "message"]
    assert groups.loc["c", "calibration"] == "measured" and groups.loc["c", "rate"] > 0.4
    fitted = plain.groups["status"] != "error"
    assert set(plain.groups.loc[fitted, "calibration"]) == {"off"}
    # the same draws as the plain sweep; the forecasts beyond c's data are wider
    pd.testing.assert_frame_equal(result.parameters[result.parameters["task"] == "c"].reset_index(drop=True),
                                  plain.parameters[plain.parameters["task"] == "c"].reset_index(drop=True))
    wide = result.forecasts[result.forecasts["task"] == "c"].reset_index(drop=True)
    narrow = plain.forecasts[plain.forecasts["task"] == "c"].reset_index(drop=True)
    beyond = narrow["distance"] > 0
    assert beyond.any()
    width = lambda t: t["hi90"] - t["lo90"]  # noqa: E731
    assert (width(wide)[beyond] > width(narrow)[beyond]).all()


def test_the_default_is_bs_fit_default():
    """``extrapolation`` defaults to "auto" in a sweep, as in ``bs.fit``."""
    import inspect

    assert inspect.signature(bs.sweep).parameters["extrapolation"].default == "auto"
    assert inspect.signature(bs.fit).parameters["extrapolation"].default == "auto"


@pytest.mark.slow  # kills a worker process mid-fit
def test_a_killed_local_worker_loses_only_its_fit(tmp_path, kill_a_worker):
    df = _table(["a", "b", "c", "d", "e"])
    serial = bs.sweep(df, executor="serial", **TINY)
    killed = []
    killer = threading.Thread(target=kill_a_worker, args=(
        tmp_path / "groups", lambda: [p.pid for p in multiprocessing.active_children()], killed))
    killer.start()
    result = bs.sweep(df, out=tmp_path, executor="local", chunk=1, **TINY)
    killer.join()
    assert killed, "no worker was killed"
    # every group is there; the tasks the dead pool lost ran again on a fresh pool
    assert list(result.groups["task"]) == list("abcde")
    assert result.groups["attempts"].max() == 2
    # and gave the draws they give anywhere else
    pd.testing.assert_frame_equal(result.parameters, serial.parameters)


@pytest.mark.slow  # the nested calibration runs for real: 3 more fits, twice
def test_a_group_is_calibrated_as_bs_fit_calibrates_its_rows():
    df = _table(["a"])
    short = {"chains": 2, "warmup": 200, "draws": 200}
    result = bs.sweep(df, executor="serial", at={"x": [1e12]}, **TINY | short | {"extrapolation": "auto"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.fit(df, "power", y="loss", x="x", progress=False, **short)  # extrapolation="auto"
    kept, row = fit.settings.extrapolation, result.groups.iloc[0]
    assert "rate" in kept, kept  # these rows are wide enough in compute to measure it
    assert row["calibration"] in ("measured", *(f"measured; {k} of 3 nested fits failed the gate"
                                                for k in (1, 2, 3)))
    assert row["rate"] == pytest.approx(kept["rate"]) and row["reach"] == pytest.approx(kept["reach"])


@pytest.mark.parametrize("setting", [None, True, False])
def test_progress_is_a_line_per_group_in_a_log_and_nothing_when_off(setting):
    """No fit: the reporter of a sweep counts groups, those already done included."""
    import io

    from bayescale.inference.progress import Reporter, reporting
    from bayescale.many.sweep import _Progress

    stream = io.StringIO()
    recorder = Reporter("log", stream)
    with reporting(reporter=recorder):
        report = _Progress(3, 1, setting, ["task"])
        report({"task": "b"}, {"status": "ok", "seconds": 2.25})
        report({"task": "c"}, {"status": "error", "message": "DataError: column 'loss' has a zero"})
        report.close()
    lines = stream.getvalue().splitlines()
    if setting is False:
        assert lines == []
    else:
        assert lines == ["[bayescale] sweep: 1 of 3 groups already done; fitting the rest",
                         "[bayescale] sweep group 2 of 3: task=b: ok, 2.2 s",
                         "[bayescale] sweep group 3 of 3: task=c: error: DataError: column 'loss' has a zero"]
