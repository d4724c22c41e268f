"""Tests for bayescale.inference.runtime: the compilation-cache folder, ``ensure()`` (float64 and the
host devices it leaves), and ``bound_memory()``'s two branches.

The root conftest.py calls ``ensure()`` before any test, as a fit would; these tests check the
state it leaves rather than starting JAX afresh.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from bayescale.inference import runtime


@pytest.mark.parametrize("off", ["0", "off", "OFF", "False", " no ", "no"])
def test_cache_dir_turned_off(off):
    assert runtime.cache_dir({"BAYESCALE_JAX_CACHE": off}) is None


def test_cache_dir_setting_wins_over_xdg_and_expands_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    env = {"BAYESCALE_JAX_CACHE": "~/compiled", "XDG_CACHE_HOME": "/elsewhere"}
    assert runtime.cache_dir(env) == tmp_path / "compiled"
    assert runtime.cache_dir({"BAYESCALE_JAX_CACHE": " /tmp/jc "}) == Path("/tmp/jc")


@pytest.mark.parametrize("env", [{}, {"BAYESCALE_JAX_CACHE": ""}, {"BAYESCALE_JAX_CACHE": "   "},
                                 {"XDG_CACHE_HOME": ""}])
def test_cache_dir_default_is_under_home(env, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert runtime.cache_dir(env) == tmp_path / ".cache" / "bayescale" / "jax"


def test_cache_dir_follows_xdg_cache_home(tmp_path):
    assert runtime.cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "bayescale" / "jax"


def test_ensure_leaves_float64_on():
    runtime.ensure()
    assert jax.config.jax_enable_x64
    assert jnp.asarray(1.0).dtype == jnp.float64


@pytest.mark.skipif("xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""),
                    reason="a device count set in XLA_FLAGS is kept")
def test_ensure_leaves_at_least_min_host_devices():
    """The root conftest.py calls ensure() before anything starts JAX's backends, as a fit would."""
    runtime.ensure()
    assert runtime.MIN_HOST_DEVICES >= 4
    assert len(jax.devices("cpu")) >= runtime.MIN_HOST_DEVICES


def test_ensure_is_idempotent(monkeypatch):
    runtime.ensure()
    assert runtime._ready
    calls = []
    monkeypatch.setattr(jax.config, "update", lambda *a, **k: calls.append(a))
    runtime.ensure()
    runtime.ensure()
    assert calls == []  # a second call changes no setting
    assert jax.config.jax_enable_x64


linux = pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux's /proc")


@linux
def test_bound_memory_counts_maps_and_keeps_caches_below_the_limit(monkeypatch):
    cleared = []
    monkeypatch.setattr(jax, "clear_caches", lambda: cleared.append(1))
    monkeypatch.setattr(runtime, "MAX_MAPS", 10**9)
    count = runtime.bound_memory()
    assert isinstance(count, int) and count > 0
    assert cleared == []


@linux
def test_bound_memory_clears_caches_above_the_limit(monkeypatch):
    cleared = []
    monkeypatch.setattr(jax, "clear_caches", lambda: cleared.append(1))
    monkeypatch.setattr(runtime, "MAX_MAPS", 0)
    count = runtime.bound_memory()
    assert isinstance(count, int) and count > 0
    assert cleared == [1]


def test_bound_memory_without_proc_returns_none(monkeypatch):
    def absent(*args, **kwargs):
        raise FileNotFoundError("/proc/self/maps")

    cleared = []
    monkeypatch.setattr(jax, "clear_caches", lambda: cleared.append(1))
    monkeypatch.setattr("builtins.open", absent)
    assert runtime.bound_memory() is None
    assert cleared == []


def test_one_blas_thread_holds_blas_to_one_thread_and_restores_it():
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    jnp.linalg.eigh(jnp.eye(3))  # JAX's LAPACK kernels load SciPy's BLAS
    assert blas_threads(), "no BLAS library is loaded to limit"
    with threadpool_limits(limits=2, user_api="blas"):
        with runtime.one_blas_thread():
            assert set(blas_threads()) == {1}
        assert set(blas_threads()) == {2}
