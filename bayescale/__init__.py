"""bayescale: hierarchical Bayesian scaling laws with honest uncertainty."""

from . import _runtime

_runtime.configure()

from . import datasets  # noqa: E402
from .allocate import allocate  # noqa: E402
from .backtest import backtest  # noqa: E402
from .batch import fit_many  # noqa: E402
from .calibrate import calibrate  # noqa: E402
from .chain import chain  # noqa: E402
from .compare import average, compare, loso  # noqa: E402
from .errors import (  # noqa: E402
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
from .fit import Fit, fit, load  # noqa: E402
from .law import Law, laws  # noqa: E402
from .sweep import Sweep, sweep  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "BayescaleError", "DataError", "DesignWarning", "DiagnosticsWarning",
    "ExtrapolationWarning", "Fit", "FitError", "FitWarning", "Law", "LawError", "LooWarning",
    "allocate", "average", "backtest", "calibrate", "chain", "compare", "datasets", "fit", "laws",
    "fit_many", "load", "loso", "Sweep", "sweep",
]
