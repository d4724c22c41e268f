"""JAX settings applied once when bayescale is imported.

- float64: the scaling-law likelihood differences are tiny relative to the loss.
- Host devices: NUMPYRO runs chains in parallel only with one device per chain; on
  CPU we ask XLA for at least 4 (measured 13 s parallel vs 31 s sequential for 4
  chains on 2 cores).  Only possible before JAX initialises its backends.
- Persistent compilation cache: repeated fits of the same shapes skip the ~13 s compile.
  ``BAYESCALE_JAX_CACHE`` names another folder, or turns it off with ``0``: writing an
  entry serialises the compiled program, and that call (``executable.serialize()``)
  has aborted a test-suite process on a 2-core CPU machine, not reproducibly, so the
  test suite runs without the cache.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

MIN_HOST_DEVICES = 4


def configure() -> None:
    flags = os.environ.get("XLA_FLAGS", "")
    if "jax" not in sys.modules and "xla_force_host_platform_device_count" not in flags:
        count = max(MIN_HOST_DEVICES, min(os.cpu_count() or 1, 16))
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()
    import jax

    if os.environ.get("BAYESCALE_X64", "1") != "0":
        jax.config.update("jax_enable_x64", True)
    cache = cache_dir(os.environ)
    if cache is not None and not jax.config.jax_compilation_cache_dir:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            jax.config.update("jax_compilation_cache_dir", str(cache))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        except OSError:
            pass  # a read-only home only loses the cache


OFF = ("0", "off", "false", "no")


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
