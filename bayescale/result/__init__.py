"""The result of a fit: :class:`Fit`, its :class:`Settings`, how plain fits are made, saved fits."""

from .fit import Fit, load
from .settings import Settings

__all__ = ["Fit", "Settings", "load"]
