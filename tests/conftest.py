"""Fixtures shared by the test modules."""

from __future__ import annotations

import importlib.util
import os
import signal
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sampled_well():
    """``check(fit)``: NUTS explored the posterior, judged with margins far from the gate's thresholds.

    The gate (R-hat <= 1.01, bulk and tail ESS >= 400, no divergence, E-BFMI >= 0.3) decides
    whether a fit is trusted; a real fit that sits near one of those lines passes on one CPU and
    fails on another, so tests never assert that it passes.  This asks only what a sampling
    failure would break: R-hat below 1.05, bulk ESS above 100 and divergences under 1% of draws.
    """
    def check(fit):
        diag, stats = fit.diagnostics, fit.idata.sample_stats
        draws = int(stats.sizes["chain"] * stats.sizes["draw"])
        divergences = int(stats["diverging"].sum())
        problems = []
        if fit.settings.chains > 1 and not diag["r_hat"].max() < 1.05:
            problems.append(f"R-hat {diag['r_hat'].max():.3f}")
        if not diag["ess_bulk"].min() > 100:
            problems.append(f"bulk ESS {diag['ess_bulk'].min():.0f}")
        if divergences > 0.01 * draws:
            problems.append(f"{divergences} divergences in {draws} draws")
        assert not problems, (problems, fit.verdict())

    return check


@pytest.fixture(scope="session")
def case_study():
    """Load ``case_studies/<name>/run.py`` as a module: ``case_study("obs_scaling").main([...])``."""
    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"case_study_{name}",
                                                      ROOT / "case_studies" / name / "run.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def kill_a_worker():
    """``kill(folder, pids, killed)``: wait for the first result file in ``folder``, then SIGKILL the
    first process of ``pids()`` (mid-fit for the other workers) and append its pid to ``killed``."""
    def kill(folder, pids, killed):
        deadline = time.time() + 300
        while time.time() < deadline and not list(folder.glob("*.json")):
            time.sleep(0.05)
        victims = pids()
        if victims:
            os.kill(victims[0], signal.SIGKILL)
            killed.append(victims[0])

    return kill


@pytest.fixture(scope="session")
def mixture_toml():
    """``mixture_toml(scale_line)``: the text of ``tests/fixtures/mixture.toml``, a law with a
    proportion input, with ``scale_line`` (e.g. ``'scale = "N"'``, or ``""``) as its scale key."""
    template = (ROOT / "tests" / "fixtures" / "mixture.toml").read_text(encoding="utf-8")
    return lambda scale_line="": template.format(scale=scale_line)
