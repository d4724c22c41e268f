"""The result of a fit: :class:`Fit`, its :class:`Settings`, how plain fits are made, saved fits.

The names below are loaded on first use: :class:`Fit` brings ArviZ and JAX with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .fit import Fit, load
    from .settings import Settings

_LAZY = {"Fit": ".fit", "load": ".fit", "Settings": ".settings"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'bayescale.result' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name], __name__), name)


__all__ = ["Fit", "Settings", "load"]
