"""JAX settings that sampling needs, applied when the first posterior is sampled, never on import.

- float64: the scaling-law likelihood differences are tiny relative to the loss.
- Host devices: chains run in parallel only with one device per chain; on CPU we
  ask XLA for at least 4 (measured 13 s parallel vs 31 s sequential for 4 chains
  on 2 cores).  Only possible before JAX initialises its backends: a process
  that ran JAX computations before its first fit keeps one CPU device, and its
  chains run one after another (same draws in distribution).
- Persistent compilation cache: repeated fits of the same shapes skip the compile.
  The cache folder is the one setting read from the environment
  (``BAYESCALE_JAX_CACHE``: another folder, or ``0`` to turn it off); it changes
  no result, only how long compiling takes.
- One BLAS thread while a sampling program runs (:func:`one_blas_thread`), restored after.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

MIN_HOST_DEVICES = 4
OFF = ("0", "off", "false", "no")
_ready = False


def _backends_started() -> bool:
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # a JAX without the probe: assume started, change nothing
        return True


def ensure() -> None:
    """Apply the settings above once per process (idempotent, cheap after the first call)."""
    global _ready
    if _ready:
        return
    import jax

    flags = os.environ.get("XLA_FLAGS", "")  # a device count set by the user (or a worker's) is kept
    if not _backends_started() and "xla_force_host_platform_device_count" not in flags:
        count = max(MIN_HOST_DEVICES, min(os.cpu_count() or 1, 16))
        jax.config.update("jax_num_cpu_devices", count)
    jax.config.update("jax_enable_x64", True)
    cache = cache_dir(os.environ)
    if cache is not None and not jax.config.jax_compilation_cache_dir:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            jax.config.update("jax_compilation_cache_dir", str(cache))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        except OSError:
            pass  # a read-only home only loses the cache
    _ready = True


def cache_dir(env) -> Path | None:
    """Folder of JAX's persistent compilation cache, or None when ``BAYESCALE_JAX_CACHE`` turns it off.

    Examples
    --------
    >>> cache_dir({"BAYESCALE_JAX_CACHE": "0"}) is None
    True
    >>> cache_dir({"BAYESCALE_JAX_CACHE": "/tmp/jc"}).as_posix()
    '/tmp/jc'
    >>> cache_dir({"XDG_CACHE_HOME": "/x"}).as_posix()
    '/x/bayescale/jax'
    """
    setting = env.get("BAYESCALE_JAX_CACHE", "").strip()
    if setting.lower() in OFF:
        return None
    if setting:
        return Path(setting).expanduser()
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bayescale" / "jax"


@contextmanager
def one_blas_thread():
    """BLAS libraries (OpenBLAS and others) held to one thread inside the block.

    JAX's CPU kernels for ``eigh``, ``qr`` and ``cholesky`` call the LAPACK that SciPy ships
    (OpenBLAS).  After each call OpenBLAS's idle threads spin, and they took the cores from
    the chains that run side by side on the host devices: the ``"lowrank"`` warm-up
    decomposes its metric every ten draws, and 4 chains on 2 cores took 16.5-17.4 s on 30
    simulated families and 6.3-6.6 s on ``loss_to_loss`` with OpenBLAS's default threads,
    8.5-8.7 s and 2.5-2.6 s with one (``benchmarks/RESULTS.md``).  The matrices are at most
    a few hundred wide, where a second BLAS thread gains nothing.  The block must wait for
    its results (asynchronous dispatch would run them after the limit is lifted).

    Examples
    --------
    >>> from threadpoolctl import threadpool_info
    >>> with one_blas_thread():
    ...     all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
    True
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


MAX_MAPS = 30_000  # of Linux's default 65,530 memory maps per process


def bound_memory() -> int | None:
    """Drop JAX's in-memory compiled programs once the process holds more than :data:`MAX_MAPS`
    memory maps; returns the count measured (None where /proc is absent).

    Every compiled program keeps about 700 memory maps for the life of the process;
    a process that fits ~90 different shapes (a backtest, a test suite) reached
    Linux's limit and aborted ("LLVM ERROR: Unable to allocate section memory").
    Clearing after every fit threw away programs that the next fit of the same
    shape would reuse, so it happens only near the limit.
    """
    try:
        with open("/proc/self/maps", "rb") as maps:
            count = sum(1 for _ in maps)
    except OSError:
        return None
    if count > MAX_MAPS:
        import jax

        jax.clear_caches()
    return count
