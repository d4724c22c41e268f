"""Priors of law parameters.

Every prior is a normal distribution on the parameter's *unconstrained* scale
``z`` followed by a fixed map to the natural scale.  This one convention makes
partial pooling uniform across parameters (families share a normal population
on ``z``) and keeps the sampled space well conditioned.

=====================  ===========================  ==================================
prior                  natural value                use for
=====================  ===========================  ==================================
``normal(m, s)``       ``z``                        unbounded values, log-amplitudes
``lognormal(m, s)``    ``exp(z)``                   exponents, amplitudes, scales
``logitnormal(m, s)``  ``sigmoid(z)``               fractions in (0, 1)
``floor(m, s)``        ``min(y) * sigmoid(z)``      irreducible loss, below the
                                                    family's smallest observed value
=====================  ===========================  ==================================

Examples
--------
>>> p = Prior.parse("lognormal(log(0.3), 0.5)")
>>> p.kind, round(p.loc, 3), p.scale
('lognormal', -1.204, 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LawError
from .formula import parse_call

KINDS = {"normal": 2, "lognormal": 2, "logitnormal": 2, "floor": 2}


@dataclass(frozen=True)
class Prior:
    """Normal(loc, scale) on the unconstrained scale, mapped by ``kind``."""

    kind: str
    loc: float
    scale: float

    @classmethod
    def parse(cls, text: str, what: str = "prior") -> Prior:
        """Parse e.g. ``"lognormal(-1.2, 0.5)"``; invalid parameters raise :class:`LawError`."""
        kind, (loc, scale) = parse_call(text, KINDS, what)
        if not scale > 0 or scale != scale or abs(scale) == float("inf"):
            raise LawError(f"{what} {text!r}: the scale must be a positive finite number, got {scale}.")
        if loc != loc or abs(loc) == float("inf"):
            raise LawError(f"{what} {text!r}: the location must be a finite number, got {loc}.")
        return cls(kind, loc, scale)

    def __str__(self) -> str:
        return f"{self.kind}({self.loc!r}, {self.scale!r})"

    def to_natural(self, z, floor=None, xp=None):
        """Map unconstrained ``z`` to the natural scale (``floor`` = min y for ``floor``)."""
        if xp is None:
            import jax.numpy as xp
        if self.kind == "normal":
            return z
        if self.kind == "lognormal":
            return xp.exp(z)
        sig = 1.0 / (1.0 + xp.exp(-z))
        return sig if self.kind == "logitnormal" else floor * sig

    def to_unconstrained(self, x, floor=None, xp=None):
        """Inverse of :meth:`to_natural`."""
        if xp is None:
            import jax.numpy as xp
        if self.kind == "normal":
            return x
        if self.kind == "lognormal":
            return xp.log(x)
        frac = x if self.kind == "logitnormal" else x / floor
        return xp.log(frac) - xp.log1p(-frac)
