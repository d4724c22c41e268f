"""Test-suite settings that must be in place before JAX starts."""

import os

# Writing JAX's persistent compilation cache has aborted a test process on a 2-core
# CPU machine (inside executable.serialize(), not reproducibly); the suite runs without it.
os.environ.setdefault("BAYESCALE_JAX_CACHE", "0")

# bayescale applies its JAX settings (host devices, float64) when it first samples, and the host
# device count only takes before JAX starts its backends; a test module that computes with JAX
# before its first fit would leave every later fit with one device (sequential chains, other
# draws), so the suite applies them first, as a fit would.
from bayescale.inference import runtime  # noqa: E402

runtime.ensure()
