"""How fast a law's own error grows beyond the data, measured out of sample.

A plain fit trusts the law's functional form exactly, so its band beyond the
data holds only parameter uncertainty and noise; on real ladders the form is an
approximation and its bias grows with the distance extrapolated (Epoch's
Chinchilla points: 1.2% median error but 4% coverage of the 90% band at 1-2.5
decades of compute beyond the data, ``case_studies/chinchilla_epoch``).

:func:`calibrate` measures that growth on the data already in hand: it holds
out the largest-compute part of the training data, fits the rest, and compares
the forecast errors with the bands on the link scale.  The law's error at
``d`` decades of extrapolation is modelled as ``delta ~ Normal(0, (rate * d)^2)``
on the link scale: linear in ``d`` because a misfit exponent makes a log-scale
bias that grows linearly in log compute.  The method-of-moments estimate,
pooling the held-out rows ``i`` with error ``e_i``, band variance ``s_i^2`` and
distance ``d_i``::

    rate^2 = max(0, sum(e_i^2 - s_i^2) / sum(d_i^2))

Forecasts then add ``delta`` draw by draw: ``fit.predict(new,
discrepancy=rate)`` (also in :func:`bayescale.backtest`).  This is a check
against the future run from the past, in the spirit of leave-future-out
validation (Bürkner, Gabry & Vehtari 2020, arXiv:1902.06281); the rate it finds
assumes the law errs beyond the full data as it erred beyond the part held in.

Examples
--------
>>> import bayescale as bs
>>> df = bs.datasets.load("chinchilla_epoch", drop_highest_loss=5)  # doctest: +SKIP
>>> cal = bs.calibrate(df, "chinchilla", y="loss", x={"N": "params", "D": "tokens"})  # doctest: +SKIP
>>> fit = bs.fit(df, "chinchilla", y="loss", x={"N": "params", "D": "tokens"})  # doctest: +SKIP
>>> fit.predict({"params": 70e9, "tokens": 1.4e12}, discrepancy=cal.rate)  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import DataError
from .predict import distance, predict


@dataclass
class Calibration:
    """Result of :func:`calibrate`.

    Attributes
    ----------
    rate : float
        Link-scale sd of the law's error per decade of extrapolation.
    rows : DataFrame
        Per held-out row: ``decades``, ``error`` and ``band_sd`` on the link scale.
    fit : Fit
        The fit on the rows held in.
    """

    rate: float
    rows: pd.DataFrame = field(repr=False)
    fit: object = field(repr=False)

    def __repr__(self) -> str:
        return (f"<Calibration rate={self.rate:.4g} per decade from {len(self.rows)} held-out rows "
                f"at {self.rows['decades'].min():.2f}-{self.rows['decades'].max():.2f} decades>")


def discrepancy_rate(fit, rows: pd.DataFrame, kind: str = "new_run", seed: int = 0) -> Calibration:
    """Estimate the rate from ``fit``'s forecasts of ``rows`` (which lie beyond its data)."""
    cols = fit.design.columns
    y = pd.to_numeric(rows[cols["y"]], errors="coerce").to_numpy(dtype=float)
    link = fit.design.outcome
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # extrapolating is the point
        table, draws = predict(fit.idata.posterior, fit.structure, fit.design,
                               rows.reset_index(drop=True), kind, (0.9,), seed, samples=True)
    extra = {c: table[c].to_numpy() for c in table.columns if c.startswith("extrap_")}
    d = np.asarray(distance(extra), dtype=float)
    t = link.forward(draws)
    error = link.forward(y) - t.mean(0)
    band = t.std(0)
    beyond = d > 0
    if not beyond.any():
        raise DataError("none of the held-out rows lies beyond the fitted data; hold out the "
                        "largest-compute rows to measure extrapolation error.")
    rate2 = np.sum(error[beyond] ** 2 - band[beyond] ** 2) / np.sum(d[beyond] ** 2)
    out = pd.DataFrame({"decades": d, "error": error, "band_sd": band})
    return Calibration(float(np.sqrt(max(rate2, 0.0))), out, fit)


def calibrate(df: pd.DataFrame, law="chinchilla", split="largest-compute", frac: float = 0.2,
              kind: str = "new_run", seed: int = 0, **fit_kwargs) -> Calibration:
    """Measure how fast the law's error grows beyond the data, by holding out its largest runs.

    Parameters
    ----------
    df : DataFrame
        The training data (never the targets to be forecast).
    law, split, frac, seed, **fit_kwargs
        As for :func:`bayescale.backtest`; the default holds out the 20% of rows
        with the largest compute.
    kind : {"new_run", "mean"}
        Band the excess error is measured against; ``"new_run"`` (the default)
        counts observation and run noise as explained, not as law error.

    Returns
    -------
    Calibration
        ``rate`` to pass as ``discrepancy=`` to :meth:`~bayescale.fit.Fit.predict`.
    """
    from .backtest import backtest

    bt = backtest(df, law=law, split=split, kind=kind, frac=frac, seed=seed, **fit_kwargs)
    return discrepancy_rate(bt.fit, df.loc[bt.held_out], kind, seed)


__all__ = ["Calibration", "calibrate", "discrepancy_rate"]
