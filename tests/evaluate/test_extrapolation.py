"""The ``extrapolation`` option of the many-fit calls: the values and meaning of ``bs.fit``'s.

The nested backtest is replaced by a recorder and the fits by stand-ins carrying a real
:class:`Settings`, so these tests check what is asked and what is kept, without a fit.
"""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

import bayescale as bs
from bayescale import api
from bayescale.evaluate import extrapolation
from bayescale.evaluate.calibration import Calibration, CalibrationConfig
from bayescale.inference.config import SamplerConfig
from bayescale.laws.spec import resolve
from bayescale.model import ModelConfig
from bayescale.result.fitting import request, settings_of


def calibration(nested=()):
    rows = pd.DataFrame({"decades": [0.5, 1.0], "error": [0.0, 0.01], "band_sd": [0.01, 0.02],
                         "origin": [0, 1]})
    return Calibration(rate=0.02, rows=rows, fit=None, reach=1.0, curvature=0.001, dof=2.0,
                       nested=tuple(nested))


def stand_in():
    """What ``calibrate`` touches of a fit: its settings and warnings."""
    return SimpleNamespace(settings=settings_of(resolve("power"), ModelConfig(), SamplerConfig()),
                           warnings=[])


@pytest.fixture
def recorder(monkeypatch):
    calls, outcome = [], {"result": calibration()}

    def measure(df, req, **options):
        calls.append((df, req, options))
        if isinstance(outcome["result"], Exception):
            raise outcome["result"]
        return outcome["result"]

    monkeypatch.setattr(extrapolation, "measure", measure)
    return calls, outcome


@pytest.mark.parametrize("value, expected", [
    ("auto", CalibrationConfig()), (True, CalibrationConfig(required=True)), (False, None),
    (CalibrationConfig(cuts=4, draws=200), CalibrationConfig(cuts=4, draws=200))])
def test_the_option_values_and_what_they_ask_for(value, expected):
    assert extrapolation.option(value) == expected


def test_fit_sweep_and_fit_many_read_the_option_with_one_function():
    from bayescale.many import sweep

    assert api.option is extrapolation.option and sweep.calibration.option is extrapolation.option


def test_a_calibration_given_is_kept_and_anything_else_is_refused():
    cal = calibration()
    assert extrapolation.option(cal) is cal
    for bad in ("yes", "Auto", 1, None, 0.5):
        with pytest.raises(bs.DataError, match=rf"extrapolation={bad!r}: pass 'auto', True, False"):
            extrapolation.option(bad)


def test_nested_fits_are_the_request_shortened_and_silent(recorder):
    calls, _ = recorder
    req = request("power", y="loss", x="x", chains=4, warmup=800, draws=900, seed=7, progress=True)
    frame = pd.DataFrame({"x": [1.0], "loss": [2.0]})
    fit = extrapolation.calibrate(stand_in(), frame, req, extrapolation.option("auto"), executor="serial")
    (df, short, options), = calls
    assert df is frame
    assert (short.sampler.chains, short.sampler.warmup, short.sampler.draws) == (2, 500, 500)
    assert short.sampler.seed == 7 and short.sampler.progress is False
    assert options["cuts"] == 3 and options["seed"] == 7 and options["executor"] == "serial"
    assert fit.settings.extrapolation == calibration().record()
    assert extrapolation.describe(fit) == "measured"


def test_too_narrow_data_skip_on_auto_and_raise_on_true(recorder):
    calls, outcome = recorder
    outcome["result"] = bs.DataError("too few rows for 3 origins")
    req = request("power", y="loss", x="x")
    fit = extrapolation.calibrate(stand_in(), None, req, extrapolation.option("auto"))
    assert fit.settings.extrapolation == {"skipped": "too few rows for 3 origins"}
    assert extrapolation.describe(fit) == "skipped: too few rows for 3 origins"
    with pytest.raises(bs.DataError, match="extrapolation=True: too few rows"):
        extrapolation.calibrate(stand_in(), None, req, extrapolation.option(True))


def test_off_measures_nothing_and_a_given_calibration_is_kept(recorder):
    calls, _ = recorder
    req = request("power", y="loss", x="x")
    assert extrapolation.calibrate(stand_in(), None, req, None).settings.extrapolation is None
    kept = extrapolation.calibrate(stand_in(), None, req, calibration())
    assert kept.settings.extrapolation == calibration().record() and calls == []
    as_numbers = extrapolation.calibrate(stand_in(), None, req, calibration().record())  # in a worker
    assert as_numbers.settings.extrapolation == calibration().record() and calls == []
    assert extrapolation.describe(stand_in()) == "off"


def test_failed_nested_fits_are_counted(recorder):
    _, outcome = recorder
    outcome["result"] = calibration(nested=({"origin": 0, "verdict": "passed"},
                                            {"origin": 1, "verdict": "failed", "reason": "rhat"}))
    fit = extrapolation.calibrate(stand_in(), None, request("power", y="loss", x="x"),
                                  extrapolation.option("auto"))
    assert extrapolation.failed_nested(fit) == 1
    assert extrapolation.describe(fit) == "measured; 1 of 2 nested fits failed the gate"


# ---- bs.fit_many -------------------------------------------------------------------------
@pytest.fixture
def no_fits(monkeypatch):
    """``Request.fit_many`` answered by stand-ins: one per data set, list or dict as given."""
    from bayescale.result import fitting

    def fit_many(self, frames, **options):
        if isinstance(frames, dict):
            return {k: stand_in() for k in frames}
        return [stand_in() for _ in frames]

    monkeypatch.setattr(fitting.Request, "fit_many", fit_many)


def test_fit_many_is_plain_by_default_and_calibrates_each_data_set_when_asked(recorder, no_fits):
    calls, _ = recorder
    frames = [pd.DataFrame({"x": [1.0, 2.0], "loss": [2.0, 1.0]}), pd.DataFrame({"x": [3.0], "loss": [1.0]})]
    plain = bs.fit_many(frames, "power", y="loss", x="x")
    assert calls == [] and all(f.settings.extrapolation is None for f in plain)
    fits = bs.fit_many(frames, "power", y="loss", x="x", seed=3, extrapolation="auto")
    assert [df is frame for (df, _, _), frame in zip(calls, frames, strict=True)] == [True, True]
    assert all(options["seed"] == 3 for _, _, options in calls)
    assert all(f.settings.extrapolation == calibration().record() for f in fits)


def test_fit_many_names_the_data_set_that_cannot_be_calibrated(recorder, no_fits):
    _, outcome = recorder
    outcome["result"] = bs.DataError("too few rows for 3 origins")
    frames = {"small": pd.DataFrame({"x": [1.0], "loss": [2.0]})}
    with pytest.raises(bs.DataError, match="data set 'small': extrapolation=True: too few rows"):
        bs.fit_many(frames, "power", y="loss", x="x", extrapolation=True)
    fits = bs.fit_many(frames, "power", y="loss", x="x", extrapolation="auto")
    assert fits["small"].settings.extrapolation == {"skipped": "too few rows for 3 origins"}


def test_fit_many_warns_of_failed_nested_fits_and_refuses_an_unknown_value(recorder, no_fits):
    _, outcome = recorder
    outcome["result"] = calibration(nested=({"origin": 0, "verdict": "failed", "reason": "rhat"},))
    frames = [pd.DataFrame({"x": [1.0], "loss": [2.0]})]
    with pytest.warns(bs.DiagnosticsWarning, match="for 1 data set"):
        bs.fit_many(frames, "power", y="loss", x="x", extrapolation="auto")
    with pytest.raises(bs.DataError, match="extrapolation='on'"):
        bs.fit_many(frames, "power", y="loss", x="x", extrapolation="on")
