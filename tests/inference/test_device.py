"""Tests for bayescale.inference.device: where work goes (thresholds, with and without a GPU),
and the JAX device a name resolves to."""

from __future__ import annotations

import jax
import pytest

from bayescale.errors import FitError
from bayescale.inference import device
from bayescale.inference.device import GPU_MIN_FITS, GPU_MIN_ROWS, choose_device, resolve_device


@pytest.mark.parametrize(("rows", "fits", "expected"), [
    (10, 1, "cpu"),
    (GPU_MIN_ROWS - 1, 1, "cpu"),
    (GPU_MIN_ROWS, 1, "gpu"),
    (10, GPU_MIN_FITS - 1, "cpu"),
    (10, GPU_MIN_FITS, "gpu"),
    (GPU_MIN_ROWS - 1, GPU_MIN_FITS - 1, "cpu"),
])
@pytest.mark.parametrize("auto", [None, "auto", "AUTO"])
def test_auto_uses_the_gpu_only_for_large_work(rows, fits, expected, auto):
    assert choose_device(auto, rows=rows, fits=fits, gpu=True) == expected


@pytest.mark.parametrize(("rows", "fits"), [(10, 1), (GPU_MIN_ROWS, 1), (10, GPU_MIN_FITS), (10**8, 10**5)])
def test_auto_without_a_gpu_is_always_the_cpu(rows, fits):
    assert choose_device(None, rows=rows, fits=fits, gpu=False) == "cpu"


@pytest.mark.parametrize(("given", "gpu"), [("cpu", True), ("CPU", True), ("gpu", False), ("GPU", False)])
def test_an_explicit_device_wins(given, gpu):
    assert choose_device(given, rows=GPU_MIN_ROWS, gpu=gpu) == given.lower()
    assert choose_device(given, rows=1, gpu=not gpu) == given.lower()


@pytest.mark.parametrize("seen", [True, False])
def test_auto_asks_jax_when_gpu_is_not_given(seen, monkeypatch):
    monkeypatch.setattr(device, "gpu_available", lambda: seen)
    assert choose_device(None, rows=GPU_MIN_ROWS) == ("gpu" if seen else "cpu")
    assert choose_device(None, rows=10) == "cpu"


def test_gpu_available_is_false_when_jax_has_no_gpu_backend(monkeypatch):
    def no_gpu(backend=None):
        raise RuntimeError(f"Unknown backend {backend}")

    monkeypatch.setattr(jax, "devices", no_gpu)
    assert device.gpu_available() is False


@pytest.mark.parametrize("name", [None, "cpu", "CPU"])
def test_resolve_cpu(name):
    kind, dev = resolve_device(name)
    assert kind == "cpu"
    assert dev.platform == "cpu"
    assert dev == jax.devices("cpu")[0]


def _no_gpu(monkeypatch):
    real = jax.devices

    def devices(backend=None):
        if backend == "gpu":
            raise RuntimeError("Unknown backend gpu")
        return real(backend)

    monkeypatch.setattr(jax, "devices", devices)


@pytest.mark.parametrize("name", ["gpu", "GPU"])
def test_resolve_gpu_without_a_gpu_gives_an_install_hint(name, monkeypatch):
    _no_gpu(monkeypatch)
    with pytest.raises(FitError, match="JAX sees no GPU") as info:
        resolve_device(name)
    assert "pip install 'bayescale[cuda]'" in str(info.value)
    assert "device='cpu'" in str(info.value)


@pytest.mark.skipif(device.gpu_available(), reason="this machine has a GPU")
def test_resolve_gpu_on_this_cpu_only_machine_raises():
    with pytest.raises(FitError, match=r"bayescale\[cuda\]"):
        resolve_device("gpu")


@pytest.mark.parametrize("name", ["tpu", "auto", "cuda"])
def test_resolve_refuses_other_names(name):
    with pytest.raises(FitError, match=f"device='{name}'; choose 'cpu' or 'gpu'"):
        resolve_device(name)
