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
