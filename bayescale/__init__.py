"""bayescale: hierarchical Bayesian scaling laws with honest uncertainty.

Importing bayescale configures nothing: JAX's settings (float64, host devices, the
compilation cache) are applied when the first posterior is sampled
(:mod:`bayescale.inference.runtime`).  Importing it is also cheap: the public names
below are loaded on first use (PEP 562), so ``import bayescale`` and the command
line's ``--help`` and ``laws`` do not import JAX, NumPyro, ArviZ or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import (
    BayescaleError,
    DataError,
    DesignWarning,
    DiagnosticsWarning,
    ExtrapolationWarning,
    FitError,
    FitWarning,
    LawError,
    LooWarning,
)

# not lazy: the name ``laws`` is also the subpackage bayescale.laws, which importing it binds
# here first; the function must win, as it always did (cheap: NumPy and the TOML parser)
from .laws.spec import Law, laws

# ``forecast`` is both the subpackage bayescale.forecast (one step of the flow) and the public
# function of bayescale.many.stack.  Importing a subpackage binds its name here, over any function
# bound before, so the subpackage (one line, cheap) is imported now and the name then bound to a
# function that imports the real one (JAX, NumPyro) only when called.
importlib.import_module(".forecast", __name__)


def forecast(df, laws, at, **options):
    """Forecast ``at`` from several laws stacked by leave-future-out: see
    :func:`bayescale.many.stack.forecast` for the arguments and the method."""
    from .many.stack import forecast as stacked

    return stacked(df, laws, at, **options)


if TYPE_CHECKING:  # the same names, for type checkers and the layer checks of the test suite
    from .api import backtest, fit, fit_many, load
    from .data import datasets
    from .evaluate.calibration import Calibration, CalibrationConfig, calibrate
    from .evaluate.compare import average, compare, contrast, contrast_prediction, loso, rank_families
    from .forecast.allocate import allocate
    from .forecast.chain import chain
    from .inference.config import SamplerConfig
    from .many.stack import Stacked
    from .many.sweep import Sweep, SweepConfig, sweep
    from .model import ModelConfig
    from .result.fit import Fit
    from .result.settings import Settings
    from .viz.plot import plot, ppc

__version__ = "0.2.0"

# public name -> module that defines it, imported on first access
_LAZY = {
    **dict.fromkeys(("backtest", "fit", "fit_many", "load"), ".api"),
    "datasets": ".data.datasets",
    **dict.fromkeys(("Calibration", "CalibrationConfig", "calibrate"), ".evaluate.calibration"),
    **dict.fromkeys(("average", "compare", "contrast", "contrast_prediction", "loso", "rank_families"),
                    ".evaluate.compare"),
    "allocate": ".forecast.allocate",
    "chain": ".forecast.chain",
    "SamplerConfig": ".inference.config",
    "Stacked": ".many.stack",
    **dict.fromkeys(("Sweep", "SweepConfig", "sweep"), ".many.sweep"),
    "ModelConfig": ".model",
    "Fit": ".result.fit",
    "Settings": ".result.settings",
    **dict.fromkeys(("plot", "ppc"), ".viz.plot"),
}


def __getattr__(name: str):
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'bayescale' has no attribute {name!r}")
    module = importlib.import_module(where, __name__)
    value = module if where == ".data.datasets" else getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "allocate", "average", "backtest", "BayescaleError", "calibrate", "Calibration",
    "CalibrationConfig", "chain", "compare", "contrast", "contrast_prediction", "DataError",
    "datasets", "DesignWarning", "DiagnosticsWarning", "ExtrapolationWarning", "Fit", "fit",
    "fit_many", "FitError", "FitWarning", "forecast", "Law", "LawError", "laws", "load", "LooWarning", "loso",
    "ModelConfig", "plot", "ppc", "rank_families", "SamplerConfig", "Settings", "Stacked", "Sweep", "sweep",
    "SweepConfig",
]
