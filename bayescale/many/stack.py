"""Forecasts stacked over laws by leave-future-out: :func:`forecast` (``bs.forecast``).

Which law to extrapolate with is rarely settled by the data in hand: Chinchilla's surface,
a variant with an irreducible or a data-repetition term, a broken power law, a power law in
compute all fit a ladder about equally well and part beyond it.  Rather than pick one,
:func:`forecast` weights them by how well each forecast *the future* inside the data:

1. every candidate law is fitted at the rolling origins of its calibration
   (:mod:`bayescale.evaluate.calibration`: the data up to a compute cut, at quantiles 0.3-0.8
   of log compute), the fits that also measure how fast its error grows beyond the data;
2. the runs between one origin and the next (beyond the last: all the rest) are forecast from
   the fit at the earlier origin, and scored by their log predictive density
   (:func:`bayescale.evaluate.compare.heldout_log_density`), so each row is scored once, by a
   fit that has not seen it and that extrapolates as far as the data allow
   (leave-future-out: Bürkner, Gabry and Vehtari 2020, "Approximate leave-future-out
   cross-validation for Bayesian time series models");
3. the stacking weights maximise the summed log score of the weighted mixture of those
   densities (Yao, Vehtari, Simpson and Gelman 2018, "Using stacking to average Bayesian
   predictive distributions"), over the laws whose fit to all the data passes the gate;
4. the forecast is that mixture of the laws' *calibrated* predictive draws
   (:func:`bayescale.evaluate.compare.average`), each law's shifted by the bias its origins
   measured, shrunk towards 0 by its own uncertainty (:data:`STACK_CALIBRATION`).

The scores are those of the plain (law-only) bands: calibrating each origin would take a
rolling backtest inside every origin.  The weights therefore favour a law whose plain bands
are honest over one that needs its calibration to cover.

The calibration fits are run once per law and used twice (scores and calibration), so a
stacked forecast of ``k`` laws costs ``k`` fits plus ``k`` x ``cuts`` short fits, as ``k``
calibrated ``bs.fit`` calls do.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax

from ..errors import DataError, DiagnosticsWarning
from ..evaluate.backtest import run_backtest
from ..evaluate.calibration import CalibrationConfig, failure, from_backtest
from ..evaluate.compare import average, heldout_log_density
from ..evaluate.extrapolation import keep, nested_request
from ..laws.spec import Law
from ..result.fitting import request

# The stack's default calibration: each law's bias shrunk by its own uncertainty.  On the rolling
# origins of case_studies/extrapolation (6 sets, up to 1.5 decades) it gave the stack's smallest
# interval score (14.7 against 17.5 without the bias, 24.0 for one law's calibrated fit), its
# worst mean signed error 0.6% against 1.3%, and 90% coverage 91-99% (87-99%).
STACK_CALIBRATION = CalibrationConfig(bias="shrunk")


@dataclass
class Stacked:
    """Result of :func:`forecast`.

    Attributes
    ----------
    table : DataFrame
        The stacked forecast at ``at``, as :meth:`bayescale.Fit.predict` returns it (``mean``,
        ``median``, one band per level, ``distance``, ...), from the mixture of the laws'
        calibrated predictive draws.
    weights : Series
        Stacking weight of each law (sum 1; 0 for a law whose fit failed the gate).
    laws : dict of str -> DataFrame
        Each law's own calibrated forecast at ``at``.
    fits : dict of str -> Fit
        Each law's fit to all the data, with its calibration.
    scores : DataFrame
        The leave-future-out scores: ``law``, ``origin``, ``row`` (index in the data),
        ``distance`` (decades of compute beyond the origin) and ``lpd`` (log predictive
        density of the row's outcome).
    gates : DataFrame
        The diagnostics gate of every fit: ``law``, ``fit`` (``"all data"`` or the calibration
        fit at an origin), ``verdict`` and ``reason``.
    calibrations : dict of str -> Calibration
        Each law's calibration, measured at its rolling origins: its held-out errors (``rows``)
        let a caller re-estimate it another way (:func:`bayescale.evaluate.calibration.estimate`).
    """

    table: pd.DataFrame
    weights: pd.Series
    laws: dict = field(repr=False)
    fits: dict = field(repr=False)
    scores: pd.DataFrame = field(repr=False)
    gates: pd.DataFrame = field(repr=False)
    calibrations: dict = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        """Whether the fit to all the data of every law with a weight passed the gate."""
        return all(self.fits[name].ok for name, w in self.weights.items() if w > 0)

    def elpd(self) -> pd.Series:
        """Summed leave-future-out log score per law and of the stacked mixture (``stacked``)."""
        wide = self.scores.pivot_table(index="row", columns="law", values="lpd")[list(self.weights.index)]
        wide = wide.dropna()  # the rows every law scored, on which the weights were fitted
        out = wide.sum()
        out["stacked"] = _mixture_score(wide.to_numpy(), self.weights.to_numpy())
        return out

    def __repr__(self) -> str:
        verdict = "passed" if self.ok else "FAILED"
        weights = ", ".join(f"{k} {w:.2f}" for k, w in self.weights.items())
        return (f"<Stacked forecast of {len(self.table)} point(s) over {len(self.weights)} laws "
                f"(weights {weights}); diagnostics {verdict}>")


def _candidates(laws, shared: dict) -> dict:
    """Name -> ``bs.fit`` keywords of each candidate law."""
    if isinstance(laws, str | Law) or not isinstance(laws, Mapping | Sequence) or len(laws) < 2:
        raise DataError(f"laws={laws!r}: give at least two laws to stack, as a list of catalogue names "
                        f"(or bayescale.Law objects), or a dict name -> law or name -> dict of bs.fit "
                        f"keywords (law=..., x=...) for laws with other inputs.")
    items = laws.items() if isinstance(laws, Mapping) else ((_name(law), law) for law in laws)
    out = {}
    for name, spec in items:
        kw = dict(shared)
        kw.update(spec if isinstance(spec, Mapping) else {"law": spec})
        if "law" not in kw:
            raise DataError(f"laws[{name!r}] names no law; give law=<catalogue name or bayescale.Law>.")
        if str(name) in out:
            raise DataError(f"law {name!r} is given twice; name each candidate once (a dict names them).")
        out[str(name)] = kw
    return out


def _name(law) -> str:
    return law.name if isinstance(law, Law) else str(law)


def stacking_weights(lpd: np.ndarray) -> np.ndarray:
    """Weights on the simplex that maximise ``sum_i log sum_k w_k exp(lpd[i, k])``.

    ``lpd`` holds one row per scored observation and one column per candidate.  The problem is
    convex in ``w``; it is solved over ``w = softmax(z)``, unconstrained.  (ArviZ's ``compare``
    solves the same problem, but only for its own PSIS-LOO objects.)

    Examples
    --------
    >>> lpd = np.log([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]])
    >>> stacking_weights(lpd).round(2)
    array([0.68, 0.32])
    """
    lpd = np.asarray(lpd, dtype=float)
    if lpd.ndim != 2 or lpd.shape[1] < 1 or not np.isfinite(lpd).all():
        raise DataError("stacking needs a finite matrix of log scores, one column per law.")
    k = lpd.shape[1]
    if k == 1:
        return np.ones(1)

    def loss(z):
        logw = z - logsumexp(z)
        total = logsumexp(lpd + logw, axis=1)
        # gradient of -sum log(mixture) through the softmax
        resp = np.exp(lpd + logw - total[:, None])
        grad_w = resp.sum(0)
        return -total.sum(), -(grad_w - len(lpd) * np.exp(logw))

    res = minimize(loss, np.zeros(k), jac=True, method="L-BFGS-B")
    # a softmax never reaches a vertex, where the optimum lies when one law dominates: keep a
    # single law if it scores higher
    options = [softmax(res.x), *np.eye(k)]
    return max(options, key=lambda w: _mixture_score(lpd, w))


def _mixture_score(lpd: np.ndarray, w: np.ndarray) -> float:
    with np.errstate(divide="ignore"):
        return float(logsumexp(lpd + np.log(w), axis=1).sum())


def lfo_scores(bt, df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Leave-future-out log scores of the rolling backtest ``bt``: each origin's fit scores the
    rows between its origin and the next (beyond the last origin: all the rows)."""
    held = bt.per_target.drop_duplicates(["cut", "row"])
    # keyed by origin: an origin whose fit could forecast none of the rows beyond it has none
    frontiers = np.log10(held.groupby("cut")["frontier"].first().sort_index())
    parts = []
    for k, fitted in enumerate(bt.fits):
        if k not in frontiers.index:
            continue
        rows = held[held["cut"] == k]
        later = frontiers[frontiers.index > k]
        if len(later):
            rows = rows[rows["distance"] <= later.iloc[0] - frontiers[k]]
        if rows.empty:
            continue
        lpd = heldout_log_density(fitted, df.loc[rows["row"]], seed=seed)
        parts.append(pd.DataFrame({"origin": k, "row": rows["row"].to_numpy(),
                                   "distance": rows["distance"].to_numpy(), "lpd": lpd}))
    return pd.concat(parts, ignore_index=True)


def _gates(name: str, full, nested) -> list[dict]:
    rows = [{"law": name, "fit": "all data", "verdict": full.verdict(), "reason": failure(full)}]
    rows += [{"law": name, "fit": row["fit"], "verdict": row["verdict"], "reason": row["reason"]}
             for row in nested]
    return rows


def forecast(df: pd.DataFrame, laws, at, *, kind: str = "new_run", levels=(0.5, 0.9),
             calibration: CalibrationConfig | None = None, **fit_kwargs) -> Stacked:
    """Forecast ``at`` from several laws, stacked by how well each forecast the future in ``df``.

    Parameters
    ----------
    df : DataFrame
        The data.
    laws : list or dict
        At least two candidate laws: catalogue names or :class:`bayescale.Law` objects, or a dict
        name -> law, or name -> dict of :func:`bayescale.fit` keywords for a law that needs its
        own (``{"power_C": {"law": "power", "x": "compute"}}``).  Every law must define compute
        (its scale) alike, since they are scored on the same rows.
    at : DataFrame or dict
        Where to forecast, in the data's column names (as :meth:`bayescale.Fit.predict`).
    kind : {"new_run", "mean"}
        Forecast one new training run (default), or the law's mean.
    levels : tuple of float
        Central credible levels of the bands.
    calibration : CalibrationConfig, optional
        The rolling origins (``cuts``) and the short fits at them, which score the laws and
        calibrate their bands beyond the data.  Default: :data:`STACK_CALIBRATION`, which
        shifts each law's forecast by the bias its rolling origins measured, shrunk towards 0
        by its own uncertainty (``bias="shrunk"``); ``CalibrationConfig()`` leaves the bias out,
        as ``bs.fit`` does.
    **fit_kwargs
        Keywords of :func:`bayescale.fit` shared by every law (``y``, ``x``, ``group``, ``run``,
        ``se``, ``sampler``, ``seed``, ``chains``, ...); ``extrapolation`` is not one (the
        calibration is part of the stacking).

    Returns
    -------
    Stacked
        The stacked forecast, the weights, each law's forecast and fit, the scores and the gate
        of every fit.  A law whose fit to all the data fails the gate gets weight 0, with a
        :class:`~bayescale.errors.DiagnosticsWarning`; when every law fails, the weights are
        computed over all of them and the result says FAILED.

    Examples
    --------
    >>> import bayescale as bs
    >>> df = bs.datasets.simulate("chinchilla", families=1, seed=0)
    >>> res = bs.forecast(df, ["chinchilla", "chinchilla_shared"], at={"N": [7e9], "D": [1.4e11]},
    ...                   x={"N": "N", "D": "D"})  # doctest: +SKIP
    >>> res.weights, res.table[["median", "lo90", "hi90"]]  # doctest: +SKIP
    """
    if "extrapolation" in fit_kwargs:
        raise DataError("bs.forecast calibrates every law itself (calibration=CalibrationConfig(...)); "
                        "drop extrapolation=.")
    config = calibration if calibration is not None else STACK_CALIBRATION
    if not isinstance(config, CalibrationConfig):
        raise DataError(f"calibration={calibration!r}: pass a bayescale.CalibrationConfig.")
    candidates = _candidates(laws, fit_kwargs)
    fits, cals, scores, gates = {}, {}, [], []
    for name, kw in candidates.items():
        req = request(**kw)
        seed = req.sampler.seed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # each fit's verdict is kept in ``gates``
            try:
                bt = run_backtest(df, nested_request(req, config), split="rolling", kind=config.kind,
                                  cuts=config.cuts, seed=seed)
            except DataError as err:
                raise DataError(f"law '{name}': {err}") from None
            cal = from_backtest(bt, df, req.law, config.kind, seed, config.bias, config.curvature,
                                config.tails)
            fits[name], cals[name] = keep(req.fit(df), cal), cal
        scores.append(lfo_scores(bt, df, seed).assign(law=name))
        gates += _gates(name, fits[name], cal.nested)
    scores = pd.concat(scores, ignore_index=True)[["law", "origin", "row", "distance", "lpd"]]
    # the weights compare the laws on the rows every one of them scored (a law that fits some
    # parameter per family cannot forecast a family before its origin fits it)
    wide = scores.pivot_table(index="row", columns="law", values="lpd")[list(fits)].dropna()
    if wide.empty:
        raise DataError("the laws scored no row in common beyond their rolling origins: they define "
                        "compute differently, so their origins differ. Stack laws of one scale.")
    passing = [name for name, f in fits.items() if f.ok]
    chosen = passing or list(fits)
    for name in fits:
        if not fits[name].ok:
            warnings.warn(DiagnosticsWarning(
                f"law '{name}': its fit to all the data failed the diagnostics gate "
                f"({fits[name].verdict()}), so it " + ("gets weight 0 in the stack." if passing else
                "is stacked only because every law failed: the stacked forecast is not an answer.")),
                stacklevel=2)
    w = pd.Series(0.0, index=list(fits), name="weight")
    w[chosen] = stacking_weights(wide[chosen].to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # forecasting beyond the data is the point
        own = {name: f.predict(at, kind, levels) for name, f in fits.items()}
        table = average({k: fits[k] for k in chosen}, w[chosen].to_dict(), at, kind, levels)
    return Stacked(table, w, own, fits, scores, pd.DataFrame(gates), cals)


__all__ = ["STACK_CALIBRATION", "Stacked", "forecast", "lfo_scores", "stacking_weights"]
