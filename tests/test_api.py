"""``bs.fit`` composed (bayescale.api): a plain fit, then the calibration of its bands beyond the data.

The calibration is replaced here by a recorder, so these tests check the composition itself -- what
the nested backtest is asked to do, what the fit keeps, what it says -- in seconds; the measurement
is tested in tests/evaluate, and the default end to end in tests/test_calibrate.py.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import pandas as pd
import pytest

import bayescale as bs
from bayescale.evaluate import extrapolation
from bayescale.evaluate.calibration import Calibration

TINY = dict(y="loss", x="x", chains=1, warmup=50, draws=50, progress=False)


@pytest.fixture(scope="module")
def df():
    return bs.datasets.simulate("power", families=1, seeds=1, seed=0)


def calibration(nested=()):
    rows = pd.DataFrame({"decades": [0.5, 1.0], "error": [0.0, 0.01], "band_sd": [0.01, 0.02],
                         "origin": [0, 1]})
    return Calibration(rate=0.02, rows=rows, fit=None, reach=1.0, curvature=0.001, dof=2.0,
                       nested=tuple(nested))


@pytest.fixture
def recorder(monkeypatch):
    calls = []

    def measure(df, req, **options):
        calls.append((req, options))
        return calibration(calls_nested[0])

    calls_nested = [()]
    monkeypatch.setattr(extrapolation, "measure", measure)
    return calls, calls_nested


def quiet_fit(df, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.DesignWarning)
        warnings.simplefilter("ignore", bs.DiagnosticsWarning)
        return bs.fit(df, "power", **(TINY | kw))


def test_default_calibrates_with_short_nested_fits_of_the_same_request(df, recorder):
    calls, _ = recorder
    fit = quiet_fit(df, chains=3, warmup=800, draws=900, seed=4)
    (req, options), = calls
    # the nested fits are plain fits of the same law and columns, shortened, and silent
    assert req.law == "power" and req.cols["x"] == "x"
    assert (req.sampler.chains, req.sampler.warmup, req.sampler.draws) == (2, 500, 500)
    assert req.sampler.seed == 4 and req.sampler.progress is False
    assert options["cuts"] == 3 and options["seed"] == 4
    assert fit.settings.extrapolation == calibration().record()
    assert fit.settings.sampler.chains == 3  # the fit itself keeps its own settings


def test_short_fits_never_exceed_the_fit_own_settings(df, recorder):
    calls, _ = recorder
    quiet_fit(df)  # 1 chain x (50 + 50)
    req = calls[0][0]
    assert (req.sampler.chains, req.sampler.warmup, req.sampler.draws) == (1, 50, 50)


def test_calibration_config_sets_the_nested_backtest(df, recorder):
    calls, _ = recorder
    quiet_fit(df, extrapolation=bs.CalibrationConfig(cuts=5, chains=1, draws=40, curvature=False))
    req, options = calls[0]
    assert options["cuts"] == 5 and options["curvature"] is False
    assert (req.sampler.chains, req.sampler.draws) == (1, 40)


def test_law_only_and_given_calibrations_run_no_backtest(df, recorder):
    calls, _ = recorder
    assert quiet_fit(df, extrapolation=False).settings.extrapolation is None
    given = calibration()
    assert quiet_fit(df, extrapolation=given).settings.extrapolation == given.record()
    assert calls == []


def test_failed_nested_fits_are_recorded_and_said(df, monkeypatch):
    """What the calibration says of its failed nested fits is kept on the fit and said once."""
    note = bs.FitWarning("calibration_dropped", "1 of 2 calibration fits failed the diagnostics gate "
                         "(origin 0: R-hat up to 1.9 for shared alpha)", bs.DiagnosticsWarning)
    nested = ({"origin": 0, "fit": "calibration fit at origin 0 (9 rows)", "rows": 9, "verdict": "failed",
               "reason": "R-hat up to 1.9 for shared alpha", "used": False, "seconds": 1.0},
              {"origin": 1, "fit": "calibration fit at origin 1 (14 rows)", "rows": 14, "verdict": "passed",
               "reason": "", "used": True, "seconds": 1.0})

    def measure(df, req, **options):
        cal = calibration(nested)
        cal.basis, cal.notes = "passed", (note,)
        return cal

    monkeypatch.setattr(extrapolation, "measure", measure)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = bs.fit(df, "power", **TINY)
    said = [str(w.message) for w in caught if issubclass(w.category, bs.DiagnosticsWarning)]
    assert said.count(str(note)) == 1
    assert note in fit.warnings and fit.settings.extrapolation["basis"] == "passed"
    assert fit.settings.nested == nested
    table = fit.settings.nested_table()
    assert table["used"].tolist() == [False, True] and table["verdict"][0] == "failed"


def test_data_too_narrow_fall_back_under_auto_and_raise_under_true(df, monkeypatch):
    def measure(*a, **k):
        raise bs.DataError("rolling backtest: no origin leaves rows to fit and rows to forecast")

    monkeypatch.setattr(extrapolation, "measure", measure)
    fit = quiet_fit(df)
    assert "no origin leaves rows" in fit.settings.extrapolation["skipped"]
    with pytest.raises(bs.DataError, match="extrapolation=True: rolling backtest"):
        quiet_fit(df, extrapolation=True)


def test_bad_arguments_are_named(df):
    with pytest.raises(bs.DataError, match="extrapolation='sometimes'"):
        bs.fit(df, "power", extrapolation="sometimes", **TINY)
    with pytest.raises(bs.BayescaleError, match=r"unknown fit keyword\(s\) \['chain'\]"):
        bs.fit(df, "power", chain=2, y="loss", x="x")
    with pytest.raises(bs.FitError, match="chains=0"):
        bs.fit(df, "power", y="loss", x="x", chains=0)


@pytest.mark.slow  # two stacked fits
def test_fit_many_and_backtest_take_the_same_keywords(df):
    fits = bs.fit_many([df, df.iloc[:20]], "power", sampler=bs.SamplerConfig(chains=1, warmup=30, draws=30),
                       y="loss", x="x", seed=2)
    assert [f.settings.data_set for f in fits] == [0, 1]
    assert all(f.settings.sampler.seed == 2 and f.settings.extrapolation is None for f in fits)
    with pytest.raises(bs.BayescaleError, match=r"unknown fit keyword\(s\) \['drws'\]"):
        bs.backtest(df, "power", y="loss", x="x", drws=10)


@pytest.mark.slow  # a fit in a fresh process: JAX starts and compiles anew (19 s)
def test_a_fresh_process_fits_in_float64_over_host_devices():
    """The runtime settings apply at the first fit, before any data reach JAX (not on import)."""
    code = """
import jax, bayescale as bs
from bayescale.result.fitting import columns, setup
from bayescale.model import ModelConfig
df = bs.datasets.simulate("power", families=1, seeds=1, seed=0)
_, _, _, data = setup(df, "power", columns("loss", "x"), None, ModelConfig())
fit = bs.fit(df, "power", y="loss", x="x", chains=2, warmup=20, draws=20, extrapolation=False)
print(data["y_link"].dtype, fit.idata.posterior["alpha"].dtype, len(jax.devices("cpu")) >= 4)
"""
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["float64", "float64", "True"]
