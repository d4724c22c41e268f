"""Errors and warnings raised by bayescale.

Every problem a user can fix is a :class:`BayescaleError` whose message names
the column, row, value or file at fault and says what to do.  Warnings are
both emitted through :mod:`warnings` and kept on the fit as
:class:`FitWarning` records, so scripts can inspect them.
"""

from __future__ import annotations

from dataclasses import dataclass


class BayescaleError(Exception):
    """Base class of every error bayescale raises on purpose."""


class DataError(BayescaleError, ValueError):
    """The data cannot be fitted as given (missing column, NaN, negative size, ...)."""


class LawError(BayescaleError, ValueError):
    """A law spec or formula is invalid (syntax, unknown name, forbidden call, bad prior)."""


class FitError(BayescaleError, RuntimeError):
    """Inference could not run (e.g. no finite starting point) or a saved fit is unusable."""


class BayescaleWarning(UserWarning):
    """Base class of bayescale warnings."""


class DesignWarning(BayescaleWarning):
    """The data design limits what can be learned (few sizes, collinear N and D, ...)."""


class DiagnosticsWarning(BayescaleWarning):
    """The sampler's diagnostics failed the gate: do not trust this fit as it is."""


class LooWarning(DiagnosticsWarning):
    """PSIS-LOO is unreliable for some observations (Pareto k above 0.7)."""


class ExtrapolationWarning(BayescaleWarning):
    """A forecast lies far outside the range of the data."""


@dataclass(frozen=True)
class FitWarning:
    """One structured warning attached to a fit.

    Attributes
    ----------
    kind : str
        Short machine-readable tag, e.g. ``"rhat"``, ``"divergences"``,
        ``"few_sizes"``, ``"collinear"``.
    message : str
        Plain-language explanation with what to try.
    category : type
        The :class:`warnings` category it was emitted with.
    """

    kind: str
    message: str
    category: type = BayescaleWarning

    def __str__(self) -> str:
        return f"[{self.kind}] {self.message}"
