"""What the outcome is, and the scale its noise lives on.

A law's ``outcome`` says which values the outcome can take, and so the link
scale on which the model compares the law's mean with the data:

============  ==================  ===========  =========================================
outcome       values              link         use for
============  ==================  ===========  =========================================
``positive``  y > 0               log y        losses, perplexities, errors, optima
``unit``      0 < y < 1           logit y      accuracies, coverage, rewards in [0, 1]
============  ==================  ===========  =========================================

The noise is normal (or Student-t) on the link scale: log-normal for a
positive outcome, logit-normal for a bounded one, so a forecast band never
leaves the outcome's range.  A known standard error ``se`` of y becomes
``se * |d link / dy|`` (the delta method): ``se / y`` on the log scale,
``se / (y (1 - y))`` on the logit scale.

Examples
--------
>>> import numpy as np
>>> o = Outcome.named("unit")
>>> float(o.inverse(o.forward(np.array(0.8))))
0.8
>>> float(o.se(np.array(0.01), np.array(0.5)))
0.04
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import LawError

KINDS = ("positive", "unit")


@dataclass(frozen=True)
class Outcome:
    """The outcome's range and its link scale."""

    kind: str = "positive"

    @classmethod
    def named(cls, kind: str) -> Outcome:
        if kind not in KINDS:
            raise LawError(f"outcome = {kind!r}; choose 'positive' (losses: log-normal noise) or "
                           f"'unit' (accuracies in (0, 1): logit-normal noise).")
        return cls(kind)

    @property
    def link_name(self) -> str:
        return "log" if self.kind == "positive" else "logit"

    def forward(self, y, xp=np):
        """The link: log y, or logit y."""
        return xp.log(y) if self.kind == "positive" else xp.log(y) - xp.log1p(-y)

    def inverse(self, t, xp=np):
        """Back from the link scale: exp t, or the logistic function of t."""
        return xp.exp(t) if self.kind == "positive" else 1.0 / (1.0 + xp.exp(-t))

    def clip(self, mu, xp=np):
        """Keep a law's mean inside the outcome's range so the link stays finite."""
        tiny = xp.finfo(xp.result_type(float)).tiny
        if self.kind == "positive":
            return xp.maximum(mu, tiny)
        eps = xp.finfo(xp.result_type(float)).eps
        return xp.clip(mu, tiny, 1.0 - eps)

    def se(self, se, y):
        """A known standard error of y on the link scale (delta method)."""
        return se / y if self.kind == "positive" else se / (y * (1.0 - y))

    def valid(self, y) -> np.ndarray:
        """Mask of values inside the outcome's range."""
        return y > 0 if self.kind == "positive" else (y > 0) & (y < 1)

    @property
    def range_text(self) -> str:
        return "> 0" if self.kind == "positive" else "strictly between 0 and 1"
