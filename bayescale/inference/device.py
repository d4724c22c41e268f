"""Where to sample: the CPU by default, a GPU only where it was measured to pay."""

from __future__ import annotations

import jax

from ..errors import FitError

# When device=None sends work to a GPU (if JAX sees one).  Measured (benchmarks/RESULTS.md,
# sections 5 and 5b): a fit of hundreds of rows took 2x the CPU's wall time on an H200, one of
# 1,000 rows 7x on an H100, and 100 stacked fits ran at 1.4x a 2-core CPU, slower than a
# many-core CPU's process pool.  So the GPU is chosen only where the CPU's cost per gradient
# makes a fit take hours (10^6 rows: 38 ms per gradient on 2 cores) or a stack is large enough
# to fill the device; both thresholds are beyond what has been measured on a GPU.
GPU_MIN_ROWS = 1_000_000
GPU_MIN_FITS = 1_000


def gpu_available() -> bool:
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:  # a CPU-only JAX has no GPU backend
        return False


def choose_device(device: str | None, rows: int, fits: int = 1, gpu: bool | None = None) -> str:
    """``device``, or for ``None`` (``"auto"``) the GPU when JAX sees one and the work is large.

    Large means at least :data:`GPU_MIN_ROWS` rows in a fit, or at least
    :data:`GPU_MIN_FITS` fits in one batch; everything else runs on the CPU.

    Examples
    --------
    >>> choose_device(None, rows=200_000, gpu=True), choose_device(None, rows=2_000_000, gpu=True)
    ('cpu', 'gpu')
    >>> choose_device(None, rows=500, fits=1280, gpu=True), choose_device(None, rows=10**7, gpu=False)
    ('gpu', 'cpu')
    >>> choose_device("gpu", rows=10, gpu=True)
    'gpu'
    """
    if device is not None and str(device).lower() != "auto":
        return str(device).lower()
    large = rows >= GPU_MIN_ROWS or fits >= GPU_MIN_FITS
    return "gpu" if large and (gpu_available() if gpu is None else gpu) else "cpu"


def resolve_device(device: str | None):
    """The JAX device to sample on; ``None`` means CPU (see :func:`choose_device` for "auto")."""
    device = (device or "cpu").lower()
    if device not in ("cpu", "gpu"):
        raise FitError(f"device={device!r}; choose 'cpu' or 'gpu'.")
    try:
        return device, jax.devices(device)[0]
    except RuntimeError:
        raise FitError(
            "device='gpu' was requested but JAX sees no GPU; install the CUDA build "
            "(pip install 'bayescale[cuda]') or use device='cpu'."
        ) from None
