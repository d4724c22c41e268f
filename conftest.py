"""Test-suite settings that must be in place before bayescale is imported."""

import os

# Writing JAX's persistent compilation cache has aborted a test process on a 2-core
# CPU machine (inside executable.serialize(), not reproducibly); the suite runs without it.
os.environ.setdefault("BAYESCALE_JAX_CACHE", "0")

# bayescale asks XLA for one CPU device per chain, which only works before JAX starts: import it
# first, whatever order the test modules import things in (a test module that imported jax
# first left every later fit with one device, sequential chains and other draws).
import bayescale  # noqa: E402, F401
