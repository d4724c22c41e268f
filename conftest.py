"""Test-suite settings that must be in place before bayescale is imported."""

import os

# Writing JAX's persistent compilation cache has aborted a test process on a 2-core
# CPU machine (inside executable.serialize(), not reproducibly); the suite runs without it.
os.environ.setdefault("BAYESCALE_JAX_CACHE", "0")
