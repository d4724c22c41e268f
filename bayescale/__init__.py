"""bayescale: hierarchical Bayesian scaling laws with honest uncertainty.

Importing bayescale configures nothing: JAX's settings (float64, host devices, the
compilation cache) are applied when the first posterior is sampled
(:mod:`bayescale.inference.runtime`).
"""

from .api import backtest, fit, fit_many, load
from .data import datasets
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
from .evaluate.calibration import Calibration, CalibrationConfig, calibrate
from .evaluate.compare import average, compare, contrast, contrast_prediction, loso, rank_families
from .forecast.allocate import allocate
from .forecast.chain import chain
from .inference.config import SamplerConfig
from .laws.spec import Law, laws
from .many.sweep import Sweep, SweepConfig, sweep
from .model import ModelConfig
from .result.fit import Fit
from .result.settings import Settings
from .viz.plot import plot, ppc

__version__ = "0.2.0"

__all__ = [
    "allocate", "average", "backtest", "BayescaleError", "calibrate", "Calibration",
    "CalibrationConfig", "chain", "compare", "contrast", "contrast_prediction", "DataError",
    "datasets", "DesignWarning", "DiagnosticsWarning", "ExtrapolationWarning", "Fit", "fit",
    "fit_many", "FitError", "FitWarning", "Law", "LawError", "laws", "load", "LooWarning", "loso",
    "ModelConfig", "plot", "ppc", "rank_families", "SamplerConfig", "Settings", "Sweep", "sweep",
    "SweepConfig",
]
