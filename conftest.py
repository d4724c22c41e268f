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


def pytest_addoption(parser):
    parser.addoption(
        "--sampler-backend", default="numpyro", choices=("numpyro", "lowrank"),
        help="the backend of every fit that leaves SamplerConfig.backend at its default "
             "(single, stacked and SBC fits): the statistical tests rerun with another backend")


def pytest_configure(config):
    name = config.getoption("--sampler-backend")
    if name == "numpyro":
        return
    import importlib

    from bayescale.evaluate import sbc
    from bayescale.inference import sample, stacked

    engine = importlib.import_module(f"bayescale.inference.{name}")
    default = sample.backend

    def backend(chosen):
        return engine if chosen == "numpyro" else default(chosen)

    sample.backend = stacked.backend = backend
    sbc.nuts_program = engine.nuts_program
