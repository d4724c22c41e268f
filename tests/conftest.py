"""Fixtures shared by the test modules."""

from __future__ import annotations

import importlib.util
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
