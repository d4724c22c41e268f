"""Tests for bayescale.inference.progress: which form progress takes (terminal, Jupyter, log, off),
what each form writes, the steps of nested fits, and that a real fit's draws do not depend on it."""

from __future__ import annotations

import io
import logging
import sys
import types

import numpy as np
import pytest

from bayescale.inference import progress
from bayescale.inference.progress import Chains, Reporter, choose_form, current, in_jupyter, reporting


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _fake_ipython(monkeypatch, shell_class: str | None):
    shell = None if shell_class is None else type(shell_class, (), {})()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))


def test_the_form_follows_the_setting_and_the_stream(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert choose_form(False, Terminal()) == "off"
    assert choose_form(None, Terminal()) == "bar"
    assert choose_form(True, Terminal()) == "bar"
    assert choose_form(None, io.StringIO()) == "log"  # a file or a pipe: a log
    assert choose_form(True, io.StringIO()) == "log"


@pytest.mark.parametrize(("shell", "jupyter"), [
    ("ZMQInteractiveShell", True),  # a Jupyter kernel
    ("TerminalInteractiveShell", False),  # IPython in a terminal: stderr decides
    (None, False),  # IPython imported, no shell running
])
def test_jupyter_is_detected_from_the_running_shell(monkeypatch, shell, jupyter):
    _fake_ipython(monkeypatch, shell)
    assert in_jupyter() is jupyter
    assert choose_form(None, io.StringIO()) == ("notebook" if jupyter else "log")
    assert choose_form(False, io.StringIO()) == "off"


def test_no_ipython_means_no_jupyter(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not in_jupyter()


def test_a_notebook_without_widgets_gets_a_text_bar(monkeypatch):
    monkeypatch.setattr(progress.importlib.util, "find_spec", lambda name: None)
    stream = io.StringIO()
    bar = Reporter("notebook", stream).bar(10, "NUTS")
    bar.update(5)
    bar.close()
    assert "NUTS" in stream.getvalue() and "5/10" in stream.getvalue()


def _run_chains(reporter, divergent_at=(150, 260)):
    """What the compiled sampler would call: 2 chains x (100 warm-up + 200 draws)."""
    with Chains(reporter, chains=2, warmup=100, draws=200) as shown:
        for i in range(1, 301):
            for _ in range(2):
                if i % shown.every == 0 or i in divergent_at:
                    shown.tick(np.int32(i), np.bool_(i in divergent_at))
    return shown


def test_a_log_gets_one_line_per_phase():
    stream = io.StringIO()
    shown = _run_chains(Reporter("log", stream))
    lines = stream.getvalue().splitlines()
    assert "compiling 2 chain(s) x (100 warm-up + 200 draws)" in lines[0]
    assert len(lines) == 4 and all(line.startswith("[bayescale] NUTS: ") for line in lines)
    assert "warm-up: 2 chain(s) x 100 iterations" in lines[1]
    assert "sampling: 2 chain(s) x 200 draws" in lines[2]
    assert "done, 400 draws, 4 divergent transition(s)" in lines[3]  # both chains' two, sampling only
    assert shown.done == 2 * 300


def test_a_terminal_gets_a_bar_with_divergences_and_time_left():
    stream = Terminal()
    shown = _run_chains(Reporter("bar", stream), divergent_at=(50, 150))
    text = stream.getvalue()
    assert "600/600" in text and "<" in text  # tqdm's elapsed<remaining
    assert "2 divergent" in text and "2 chains" in text  # the warm-up's divergence is not counted
    assert "(sampling)" in text
    assert shown.divergences == 2


def test_a_handler_on_the_bayescale_logger_takes_the_lines():
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("bayescale")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    stream = io.StringIO()
    try:
        Reporter("log", stream).line("warm-up")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    assert [r.getMessage() for r in records] == ["warm-up"] and stream.getvalue() == ""


def test_off_writes_nothing(capsys):
    reporter = current(False)
    assert not reporter.enabled
    _run_chains(reporter)
    with reporter.steps("rolling origin", 3, per_fit=True):
        reporter.fitted(0, 10, 1.0)
    reporter.line("anything")
    assert capsys.readouterr() == ("", "")


def test_nested_fits_are_one_line_per_calibration_origin():
    stream = io.StringIO()
    recorder = Reporter("log", stream)
    with reporting(reporter=recorder):
        current().fitted("outside any steps", 5, 1.0)  # a fit of many with nobody counting: silent
        with current().steps("sweep group", 2):  # counts its own steps, not fits
            with current().steps("rolling origin", 3, per_fit=True):
                for k in range(3):
                    current().fitted(k, 10 + k, 1.5)
    lines = stream.getvalue().splitlines()
    assert lines == [f"[bayescale] rolling origin {k + 1} of 3: {10 + k} rows, 1.5 s" for k in range(3)]


def test_inner_calls_report_to_the_outer_reporter_unless_silenced():
    outer = Reporter("log", io.StringIO())
    with reporting(reporter=outer):
        assert current() is outer and current(None) is outer
        with reporting(None) as inner:
            assert inner is outer
        with reporting(False) as inner:
            assert not inner.enabled and current() is inner
        assert current(False) is not outer
    assert progress._active.get() is None


def test_steps_start_from_work_already_done():
    stream = Terminal()
    steps = Reporter("bar", stream).steps("sweep group", 4, done=3).open()
    steps.advance("task=a: ok")
    steps.close()
    assert "4/4" in stream.getvalue()


def test_the_rolling_backtest_counts_its_origins(monkeypatch):
    """The backtest opens per-fit steps around its fits: each fit that ends is one origin."""
    import bayescale as bs
    from bayescale.evaluate.backtest import run_backtest
    from bayescale.result.fitting import Request, request

    class Stop(Exception):
        pass

    def fit_many(self, frames, **options):
        for k, frame in enumerate(frames):
            current().fitted(k, len(frame), 0.5)
        raise Stop

    monkeypatch.setattr(Request, "fit_many", fit_many)
    df = bs.datasets.simulate("power", families=1, seeds=1, seed=0)
    stream = io.StringIO()
    with reporting(reporter=Reporter("log", stream)), pytest.raises(Stop):
        run_backtest(df, request("power", y="loss", x="x"), split="rolling", cuts=3)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and lines[-1].startswith("[bayescale] rolling origin 3 of 3: ")


def _stub_fit(monkeypatch, origins: int):
    """bs.fit without sampling: a plain fit and a calibration that report like real ones."""
    from bayescale.evaluate import extrapolation
    from bayescale.result.fitting import Request

    class Settings:
        extrapolation, nested = None, ()

        def with_(self, **changes):
            new = Settings()
            new.__dict__.update(self.__dict__ | changes)
            return new

    class Result:
        settings = Settings()
        warnings = []

    class Cal:
        rate, reach, nested = 0.01, 1.5, tuple({"origin": k} for k in range(origins))
        notes = []

        def record(self):
            return {"rate": self.rate, "reach": self.reach}

        def failed_nested(self):
            return []

    def measure(df, req, **options):
        with current().steps("rolling origin", origins, per_fit=True):
            for k in range(origins):
                current().fitted(k, 20, 0.5)
        return Cal()

    monkeypatch.setattr(Request, "fit", lambda self, df: Result())
    monkeypatch.setattr(extrapolation, "measure", measure)


def test_bs_fit_reports_each_calibration_origin(monkeypatch):
    import bayescale as bs

    _stub_fit(monkeypatch, origins=3)
    stream = io.StringIO()
    with reporting(reporter=Reporter("log", stream)):
        bs.fit(None, law="power", y="loss", x="x")
    lines = [line.removeprefix("[bayescale] ") for line in stream.getvalue().splitlines()]
    assert lines[0].startswith("calibrating forecasts beyond the data: 3 nested fits")
    assert lines[1:4] == [f"rolling origin {k} of 3: 20 rows, 0.5 s" for k in (1, 2, 3)]
    assert lines[4].startswith("calibrated: rate 0.01 per decade") and len(lines) == 5


def test_bs_fit_with_progress_off_is_silent(monkeypatch, capsys):
    import bayescale as bs

    _stub_fit(monkeypatch, origins=3)
    bs.fit(None, law="power", y="loss", x="x", progress=False)
    assert capsys.readouterr() == ("", "")


@pytest.mark.slow  # two NUTS compilations: about 30 s on 2 cores
def test_draws_are_the_same_with_progress_on_and_off():
    """The host callback reads the sampler's state only: same seed, same draws, bit for bit."""
    import bayescale as bs
    from bayescale.inference.config import SamplerConfig
    from bayescale.inference.sample import run_design
    from bayescale.model import ModelConfig
    from bayescale.result.fitting import columns, setup

    df = bs.datasets.simulate("power", families=1, seeds=1, seed=0)
    _, design, s, data = setup(df, "power", columns(y="loss", x="x"), None, ModelConfig())
    config = SamplerConfig(chains=2, warmup=100, draws=100, seed=4, device="cpu")
    quiet, _ = run_design(s, design, data, config.with_(progress=False))
    stream = io.StringIO()
    with reporting(reporter=Reporter("log", stream)):
        shown, _ = run_design(s, design, data, config.with_(progress=True))
    for name in quiet.posterior.data_vars:
        assert np.array_equal(quiet.posterior[name].values, shown.posterior[name].values), name
    lines = stream.getvalue().splitlines()
    assert [line.split(": ")[1] for line in lines[1:3]] == ["warm-up", "sampling"]
    assert "done, 200 draws" in lines[-1]
