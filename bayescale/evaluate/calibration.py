"""How fast a law's own error grows beyond the data, measured out of sample.

A plain fit trusts the law's functional form exactly, so its band beyond the
data holds only parameter uncertainty and noise; on real ladders the form is an
approximation and its bias grows with the distance extrapolated (Epoch's
Chinchilla points: 1.2% median error but 4% coverage of the 90% band at 1-2.5
decades of compute beyond the data, ``case_studies/chinchilla_epoch``).

:func:`calibrate` measures that growth on the data already in hand, by a
backtest nested inside the training data: at rolling origins it fits the runs
up to the origin, forecasts every run beyond it, and compares the forecast
errors with the bands on the link scale (``split="largest-compute"`` uses one
origin instead).  The law's error at ``d`` decades of extrapolation is modelled
on the link scale as ``delta = bias * d + scale(d) * t`` with
``scale(d)^2 = scatter^2 d^2 + curvature^2 d^4``: a misfit exponent makes a
log-scale error that grows linearly in log compute, an exponent that drifts with
scale one that grows with its square.  ``scatter`` and ``curvature`` (and
``bias``, when asked for) are maximum-likelihood estimates pooling the held-out
rows ``i`` with error ``e_i``, band variance ``s_i^2`` and distance ``d_i``::

    e_i ~ Normal(bias * d_i, s_i^2 + scatter^2 d_i^2 + curvature^2 d_i^4)

so a forecast from few runs, whose band is already wide, says little, and one
from many runs, whose band is narrow, says much.  (A method-of-moments
estimate, ``sum(e_i^2 - s_i^2) / sum(d_i^2)``, is dominated by the earliest
origins' wide bands and gave 0.014 per decade on a law without misfit, where
this gives about 0.)

``t`` is a Student-t with as many degrees of freedom as origins (at least 2):
the rows of one origin share one fit's misfit, so the scale is learned from
about that many independent errors, and a scale estimated from ``k`` normal
errors makes the next one Student-t with ``k`` degrees of freedom.  On the six
real data sets of ``case_studies/extrapolation`` the normal band, with the linear
term alone, held 76% of the runs 1-1.5 decades beyond the data in its 90% band,
and 82-83% closer in; with both (the default), 85-96% in every bin up to 1.5
decades.  ``curvature=False`` and ``tails="normal"`` give the former back.

``bias`` is 0 unless ``bias=True``.  All six real data sets of
``case_studies/extrapolation`` over-predict the loss more the farther they
reach, so a bias looks supported; but learned inside the training rows it did
not carry over to the larger scales beyond them: on ``loss_to_loss`` its sign
flips between the inner and the outer origins, on ``gadre_overtrain`` it
overshoots (median error 4.1% plain, 9.8% with the bias), and pooled over the
six sets, it raised both the interval score and the CRPS beyond a quarter decade.  With
``bias=True``, rows of one origin share one fit's misfit, so ``bias`` is taken
to be as uncertain as if each origin were a single observation, and that
uncertainty joins ``scatter`` in quadrature as the ``rate`` of the band.

Forecasts then add ``delta`` draw by draw: ``bs.fit`` (by default, or with
``extrapolation=True``) measures these terms and keeps them with the fit, so that
``fit.predict`` widens its bands (``extrapolation=False`` gives the
law-only band); ``fit.predict(new, discrepancy=cal)`` applies a calibration measured
separately (also in :func:`bayescale.backtest`).  Beyond ``reach``, the
farthest distance the backtests held out, the rate is extrapolated too, and a
forecast there says so.  This is a check
against the future run from the past, in the spirit of leave-future-out
validation (Bürkner, Gabry & Vehtari 2020, arXiv:1902.06281); the rate it finds
assumes the law errs beyond the full data as it erred beyond the part held in.

Distances are decades of the law's scale (:attr:`bayescale.Law.scale`: compute
``6 * N * D`` for a law of N and D, the input of a one-input law, or what the
law's spec declares), never of inputs that are proportions or counts.

A nested fit that diverges, explores the energy poorly (E-BFMI) or whose chains
disagree grossly (R-hat above :data:`NESTED_RHAT_MAX`) is left out (verdict
``"failed"``): the rate is measured from the other origins.  One that misses the
gate only by an effective sample size below 400 or an R-hat up to
:data:`NESTED_RHAT_MAX` is kept (verdict ``"imprecise"``): the nested fits are short
on purpose (2 chains of 500 draws), and the bands' widths, all the calibration
takes from them, are then imprecise by a few percent, not biased (on the
well-specified ladder of the tests every nested fit of 2 x 300 draws had R-hat
1.01-1.06 and ESS 50-160, and only the smallest, with divergences, missed by far).
When fewer than
:data:`MIN_ORIGINS` remain (and some were left out), too few are left to measure
the rate, so the calibration falls back to a wider band: the rate estimated from
every origin but
at least :data:`FALLBACK_RATE` per decade (about 5% of the outcome per decade on
the log link), with Student-t tails of 2 degrees of freedom.  Leaving fits out never
narrows the band: when every origin together measures a wider one, every origin is kept
(``"wider"``).  ``basis`` says which happened (``"all"``, ``"passed"``, ``"wider"`` or
``"fallback"``), a
:class:`~bayescale.errors.DiagnosticsWarning` says why, and ``nested_table()``
lists every nested fit (origin, fit, rows, verdict, reason, used, seconds); a fit
keeps the same table as ``fit.settings.nested_table()``.  Warnings raised inside a
nested fit are re-emitted naming it ("calibration fit at origin 1 (20 rows, up to
6 * N * D = 3.2e+19)"), parameters fitted per family named as such.

Examples
--------
>>> import bayescale as bs
>>> df = bs.datasets.load("chinchilla_epoch", drop_highest_loss=5)  # doctest: +SKIP
>>> cal = bs.calibrate(df, "chinchilla", y="loss", x={"N": "params", "D": "tokens"})  # doctest: +SKIP
>>> fit = bs.fit(df, "chinchilla", y="loss", x={"N": "params", "D": "tokens"})  # doctest: +SKIP
>>> fit.predict({"params": 70e9, "tokens": 1.4e12}, discrepancy=cal)  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize, minimize_scalar

from ..errors import DataError, DiagnosticsWarning, FitWarning
from ..inference.gate import ESS_MIN, GATE_KINDS, RHAT_MAX
from ..laws.spec import resolve
from ..result.fitting import request
from ..result.settings import nested_table

TAILS = ("student", "normal")
BASES = ("all", "passed", "wider", "fallback")
MIN_ORIGINS = 2  # passing nested fits needed to measure the rate from them alone
FALLBACK_RATE = 0.05  # link-scale sd per decade of the fallback band (about 5% per decade on a log link)
FALLBACK_DOF = 2.0  # Student-t degrees of freedom of the fallback band (the heaviest used)
UNUSABLE = frozenset({"divergences", "bfmi"})  # gate failures that leave a nested fit out
NESTED_RHAT_MAX = 1.05  # ... as does an R-hat above this (the gate's own limit is 1.01)


@dataclass(frozen=True)
class CalibrationConfig:
    """How ``bs.fit`` measures the law's error beyond the data (its nested rolling backtest).

    Parameters
    ----------
    cuts : int
        Rolling origins inside the data, one nested fit each.
    chains, draws : int
        At most this many chains, and warm-up iterations and draws per chain, for the
        nested fits (they only need the bands' width); never more than the fit's own.
    kind, bias, curvature, tails
        As for :func:`calibrate`.
    required : bool
        Raise when the data are too few or too narrow in compute for a rolling
        backtest; by default the fit falls back to law-only bands and says why.
    """

    cuts: int = 3
    chains: int = 2
    draws: int = 500
    kind: str = "new_run"
    bias: bool | str = False
    curvature: bool = True
    tails: str = "student"
    required: bool = False

    def __post_init__(self):
        if self.tails not in TAILS:
            raise DataError(f"CalibrationConfig: tails={self.tails!r}; choose one of {TAILS}.")
        check_bias(self.bias)
        for name in ("cuts", "chains", "draws"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DataError(f"CalibrationConfig: {name}={value!r} must be a whole number >= 1.")


@dataclass
class Calibration:
    """Result of :func:`calibrate`.

    Attributes
    ----------
    rate : float
        Link-scale scale of the law's error per decade of extrapolation (its sd with
        normal tails): its scatter and the uncertainty of ``bias``, in quadrature.
    reach : float
        The farthest extrapolation (decades) among the held-out rows: the
        distance up to which the rate was measured rather than assumed.
    rows : DataFrame
        Per held-out row and origin: ``decades``, ``error`` and ``band_sd`` on the
        link scale, and ``origin`` (0 for a single split).
    fit : Fit
        The fit on the rows held in (the last origin's, for ``"rolling"``).
    bias : float
        Link-scale mean error per decade of extrapolation (truth minus forecast;
        negative: the law over-predicts a loss more the farther it reaches).
    scatter : float
        The maximum-likelihood sd per decade alone, before ``bias``'s uncertainty joins it.
    curvature : float
        Link-scale scale per squared decade: the part of the law's error that grows
        with the square of the distance, as an exponent that drifts with scale makes it
        (0 with ``curvature=False``).
    dof : float or None
        Degrees of freedom of the Student-t that the error is drawn from: the number
        of origins (at least 2), since the rate is learned from that many misfits;
        None for normal tails.
    nested : tuple of dict
        One row per nested fit: ``origin``, ``fit`` (which nested fit: origin, rows,
        frontier), ``rows``, ``verdict`` (``"passed"``, ``"imprecise"`` or ``"failed"``:
        see the module docstring), ``reason`` (what
        failed, parameters fitted per family named as such), ``used`` (whether its
        forecasts entered the calibration) and ``seconds``; see :meth:`nested_table`.
    basis : {"all", "passed", "wider", "fallback"}
        What the rate was measured from: every origin; the origins whose nested fits
        passed the gate (the others dropped); every origin although some failed, as
        leaving them out would narrow the band; or, with fewer than :data:`MIN_ORIGINS`
        passing, the fallback band (see the module docstring).
    notes : tuple of FitWarning
        What a fit keeps and says about the nested fits (dropped or fallback).
    """

    rate: float
    rows: pd.DataFrame = field(repr=False)
    fit: object = field(repr=False)
    reach: float = 0.0
    bias: float = 0.0
    scatter: float | None = None
    curvature: float = 0.0
    dof: float | None = None
    nested: tuple = field(default=(), repr=False)
    basis: str = "all"
    notes: tuple = field(default=(), repr=False)

    def __repr__(self) -> str:
        curve = f" curvature={self.curvature:.4g} per decade^2" if self.curvature else ""
        tails = f" t({self.dof:g})" if self.dof else ""
        return (f"<Calibration rate={self.rate:.4g} bias={self.bias:+.4g} per decade{curve}{tails} from "
                f"{len(self.rows)} held-out rows at {self.rows['decades'].min():.2f}-{self.reach:.2f} "
                f"decades>")

    def record(self) -> dict:
        """What a fit keeps of the calibration (plain numbers, saved with the fit)."""
        return {"rate": self.rate, "bias": self.bias, "curvature": self.curvature, "dof": self.dof,
                "reach": self.reach, "rows": int(len(self.rows)),
                "origins": int(self.rows["origin"].nunique()), "basis": self.basis}

    def failed_nested(self) -> list:
        """The nested fits (rows of ``nested``) that did not pass the diagnostics gate (those kept
        as ``"imprecise"`` included)."""
        return [row for row in self.nested if row["verdict"] != "passed"]

    def nested_table(self) -> pd.DataFrame:
        """The nested fits as a table: origin, fit, rows, verdict, reason, used, seconds."""
        return nested_table(self.nested)


def errors(fit, rows: pd.DataFrame, kind: str = "new_run", seed: int = 0) -> pd.DataFrame:
    """Link-scale error, band sd and extrapolation distance of ``fit``'s forecasts of ``rows``."""
    cols = fit.design.columns
    y = pd.to_numeric(rows[cols["y"]], errors="coerce").to_numpy(dtype=float)
    link = fit.design.outcome
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # extrapolating is the point
        table, draws = fit.predict(rows.reset_index(drop=True), kind, (0.9,), seed, discrepancy=0.0,
                                   draws=True)
    t = link.forward(draws)
    # an exact 0 or 1 of a bounded outcome is taken at its censoring bound, where its link is finite
    observed = fit.design.link_of(y, table["family"].to_numpy())
    return pd.DataFrame({"decades": table["distance"].to_numpy(), "error": observed - t.mean(0),
                         "band_sd": t.std(0)})


def check_bias(bias) -> None:
    if not (bias is False or bias is True or bias == "shrunk"):
        raise DataError(f"bias={bias!r}; choose False (none), True (the measured mean error per "
                        f"decade) or 'shrunk' (that, shrunk towards 0 by its own uncertainty).")


def estimate(rows: pd.DataFrame, fit, bias: bool | str = False, curvature: bool = True,
             tails: str = "student") -> Calibration:
    """Maximum-likelihood rate, curvature (and bias) from the rows beyond the data, and the
    tails of the error they imply (see the module docstring)."""
    if tails not in TAILS:
        raise DataError(f"tails={tails!r}; choose one of {TAILS}.")
    check_bias(bias)
    beyond = rows[rows["decades"] > 0]
    if beyond.empty:
        raise DataError("none of the held-out rows lies beyond the fitted data; hold out the "
                        "largest-compute rows to measure extrapolation error.")
    e, s, d = (beyond[c].to_numpy(dtype=float) for c in ("error", "band_sd", "decades"))

    def shift(rate, curve=0.0):  # the bias that maximises the likelihood here: weighted least squares
        w = 1 / (s**2 + (rate * d) ** 2 + (curve * d**2) ** 2)
        return (np.sum(w * e * d) / np.sum(w * d**2) if bias else 0.0), w

    def nll(rate, curve=0.0):
        b, w = shift(rate, curve)
        return 0.5 * np.sum(-np.log(w) + w * (e - b * d) ** 2)

    # log grids bracket the optimum (or show it at 0), a local search refines it
    def grid(power):
        top = max(2 * np.max(np.abs(e) / d**power), 2e-5)
        return np.concatenate([[0.0], np.geomspace(1e-5, top, 60)])

    curve = 0.0
    if curvature:
        pairs = [(r, c) for r in grid(1) for c in grid(2)]
        start = pairs[int(np.argmin([nll(r, c) for r, c in pairs]))]
        best = minimize(lambda p: nll(*np.abs(p)), np.asarray(start), method="Nelder-Mead",
                        options={"xatol": 1e-7, "fatol": 1e-9})
        rate, curve = (np.abs(best.x) if best.fun <= nll(*start) else start)
    else:
        rates = grid(1)
        k = int(np.argmin([nll(r) for r in rates]))
        rate = rates[k]
        if k > 0:
            hi = rates[min(k + 1, len(rates) - 1)]
            rate = minimize_scalar(nll, bounds=(rates[k - 1], hi), method="bounded").x
    b, w = shift(rate, curve)
    # the bias is as uncertain as if each origin were one observation (its rows share one fit's
    # misfit), and that uncertainty joins the spread: the band is not narrowed by a guess
    origins = max(int(beyond["origin"].nunique()), 1) if "origin" in beyond else 1
    bias_var = len(e) / origins / np.sum(w * d**2) if bias else 0.0
    if bias == "shrunk":  # positive-part James-Stein: kept only where it stands out of its own sd
        b *= max(0.0, 1.0 - bias_var / b**2) if b else 0.0
    dof = float(max(origins, 2)) if tails == "student" else None
    return Calibration(float(np.sqrt(rate**2 + bias_var)), rows, fit, float(d.max()), float(b),
                       float(rate), float(curve), dof)


def discrepancy_rate(fit, rows: pd.DataFrame, kind: str = "new_run", seed: int = 0,
                     bias: bool | str = False, curvature: bool = True, tails: str = "student") -> Calibration:
    """Estimate the rate from ``fit``'s forecasts of ``rows`` (which lie beyond its data)."""
    return estimate(errors(fit, rows, kind, seed).assign(origin=0), fit, bias, curvature, tails)


def calibrate(df: pd.DataFrame, law="chinchilla", split="rolling", cuts: int = 3, frac: float = 0.2,
              kind: str = "new_run", seed: int = 0, executor=None, bias: bool | str = False,
              curvature: bool = True, tails: str = "student", **fit_kwargs) -> Calibration:
    """Measure how fast the law's error grows beyond the data, by forecasting its own largest runs.

    Parameters
    ----------
    df : DataFrame
        The training data (never the targets to be forecast).
    law, seed, **fit_kwargs
        As for :func:`bayescale.fit`.
    split : {"rolling", "largest-compute"}
        ``"rolling"`` (the default): ``cuts`` rolling origins inside the data
        (:func:`bayescale.backtest`), each fitted on the rows up to it and
        forecasting every row beyond, all pooled into one rate; the fits run
        through ``executor``.  ``"largest-compute"``: one split holding out the
        share ``frac`` of rows with the largest compute.
    cuts, frac, executor
        As for :func:`bayescale.backtest`.
    kind : {"new_run", "mean"}
        Band the excess error is measured against; ``"new_run"`` (the default)
        counts observation and run noise as explained, not as law error.
    bias : {False, True, "shrunk"}
        Also estimate a mean error per decade (see the module docstring); off by
        default, as a bias learned this way did not carry over to larger scales
        on the real data sets of ``case_studies/extrapolation``.  ``"shrunk"``
        shrinks it towards 0 by its own uncertainty ``v`` (positive-part
        James-Stein, ``bias * max(0, 1 - v / bias^2)``), so it moves the centre only
        where the backtests support it; the band widens as with ``True``.
    curvature : bool
        Also estimate a term that grows with the square of the distance (see the
        module docstring); ``False`` keeps the growth linear.
    tails : {"student", "normal"}
        ``"student"`` (the default) draws the error from a Student-t with as many
        degrees of freedom as origins (see the module docstring).

    Returns
    -------
    Calibration
        ``rate`` to pass as ``discrepancy=`` to :meth:`~bayescale.Fit.predict`
        (or the whole result, which also warns beyond ``reach``), or as
        ``extrapolation=`` to :func:`bayescale.fit`.
    """
    return measure(df, request(law, seed=seed, **fit_kwargs), split, cuts, frac, kind, seed, executor,
                   bias, curvature, tails)


def measure(df: pd.DataFrame, req, split="rolling", cuts: int = 3, frac: float = 0.2,
            kind: str = "new_run", seed: int = 0, executor=None, bias: bool | str = False,
            curvature: bool = True, tails: str = "student", emit: bool = True) -> Calibration:
    """:func:`calibrate` with the fits that ``req`` (a :class:`~bayescale.result.fitting.Request`) makes.

    Nested fits that fail the diagnostics gate are left out, or the fallback band is
    used (see the module docstring); ``emit`` re-emits the nested fits' warnings, each
    naming its fit, and the note on what was left out.
    """
    from .backtest import run_backtest

    if split != "rolling":
        bt = run_backtest(df, req, split=split, kind=kind, frac=frac, seed=seed)
        return discrepancy_rate(bt.fit, df.loc[bt.held_out], kind, seed, bias, curvature, tails)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # re-emitted below, each naming its nested fit
        bt = run_backtest(df, req, split="rolling", kind=kind, cuts=cuts, seed=seed, executor=executor)
    calibration = from_backtest(bt, df, req.law, kind, seed, bias, curvature, tails)
    if emit:
        _reemit(caught, bt.fits, list(calibration.nested))
        for note in calibration.notes:
            warnings.warn(note.category(str(note)), stacklevel=2)
    return calibration


def from_backtest(bt, df: pd.DataFrame, law, kind: str = "new_run", seed: int = 0, bias: bool | str = False,
                  curvature: bool = True, tails: str = "student") -> Calibration:
    """The calibration that the rolling backtest ``bt`` of ``law`` on ``df`` measures (the
    body of :func:`measure`, for callers that use the backtest's fits for more)."""
    scale = resolve(law).scale
    frontiers = bt.per_target.groupby("cut")["frontier"].first()
    nested = [nested_record(k, f, frontiers.get(k), scale.text if scale is not None else "compute")
              for k, f in enumerate(bt.fits)]
    parts = []
    for origin, fitted in enumerate(bt.fits):
        rows = bt.per_target.loc[bt.per_target["cut"] == origin, "row"].unique()
        # an origin whose fit could forecast none of the rows beyond it (see
        # bayescale.evaluate.backtest.forecastable) adds no errors
        parts.append(errors(fitted, df.loc[rows], kind, seed).assign(origin=origin) if len(rows)
                     else pd.DataFrame({"decades": [], "error": [], "band_sd": [], "origin": []}))
    passed = [k for k, f in enumerate(bt.fits) if usable(f)]
    failed = [row for row in nested if row["verdict"] == "failed"]
    if not failed:
        basis, used = "all", list(range(len(parts)))
    elif len(passed) >= MIN_ORIGINS:
        basis, used = "passed", passed
    else:
        basis, used = "fallback", list(range(len(parts)))
    calibration = estimate(pd.concat([parts[k] for k in used], ignore_index=True), bt.fit, bias,
                           curvature, tails)
    if basis == "passed":
        # Leaving a fit out must never narrow the band: the earliest origin, the one most often
        # failing (fewest rows), is also the one that reaches farthest, and on a law whose
        # exponent drifts with scale it alone saw the error grow (measured: rate 0 from the
        # other two origins, 3 of 9 held-out runs covered, against 9 of 9 with all three).
        every = estimate(pd.concat(parts, ignore_index=True), bt.fit, bias, curvature, tails)
        if (every.rate, every.curvature or 0.0) > (calibration.rate, calibration.curvature or 0.0):
            basis, used, calibration = "all", list(range(len(parts))), every
    if basis == "fallback":
        calibration.rate = max(calibration.rate, FALLBACK_RATE)
        calibration.dof = FALLBACK_DOF if tails == "student" else None
    for row in nested:
        row["used"] = basis != "passed" or row["origin"] in passed
    if failed and basis == "all":
        basis = "wider"  # every origin kept, as leaving the failed ones out would narrow the band
    calibration.nested, calibration.basis = tuple(nested), basis
    calibration.notes = tuple(_notes(nested, basis, len(passed)))
    return calibration


def _notes(nested: list, basis: str, passed: int) -> list[FitWarning]:
    """What the calibration says of its failed nested fits: left out, or the fallback band used."""
    failed = [row for row in nested if row["verdict"] == "failed"]
    if not failed:
        return []
    which = "; ".join(f"origin {row['origin']}: {row['reason']}" for row in failed)
    where = "(fit.settings.nested_table())"
    if basis == "passed":
        return [FitWarning("calibration_dropped", (
            f"{len(failed)} of {len(nested)} calibration fits failed the diagnostics gate ({which}); "
            f"they are left out and the widening of the bands beyond the data is measured from the "
            f"other {passed} {where}."), DiagnosticsWarning)]
    if basis == "wider":
        return [FitWarning("calibration_kept", (
            f"{len(failed)} of {len(nested)} calibration fits failed the diagnostics gate ({which}); "
            f"they are kept, because without them the bands beyond the data would be narrower "
            f"{where}."), DiagnosticsWarning)]
    return [FitWarning("calibration_fallback", (
        f"{len(failed)} of {len(nested)} calibration fits failed the diagnostics gate ({which}), "
        f"leaving {passed}, too few to measure the law's error beyond the data; the bands are widened "
        f"by the fallback instead: at least {FALLBACK_RATE:g} per decade on the link scale, with "
        f"Student-t tails of {FALLBACK_DOF:g} degrees of freedom {where}. More warm-up and draws for "
        f"the nested fits (CalibrationConfig(draws=...)) may let them pass."), DiagnosticsWarning)]


def _reemit(caught: list, fits: list, nested: list) -> None:
    """Re-emit the warnings of the nested fits, each naming the fit(s) it comes from."""
    own = {}
    for row, fitted in zip(nested, fits):
        for w in fitted.warnings:
            text = row["reason"] if w.kind in GATE_KINDS else w.message
            key = (w.category, f"[{w.kind}] failed the diagnostics gate: {text}" if w.kind in GATE_KINDS
                   else str(w))
            own.setdefault(key, []).append(row)
    known = {str(w) for f in fits for w in f.warnings}
    for (category, text), rows in own.items():
        names = rows[0]["fit"] if len(rows) == 1 else (
            f"calibration fits at origins {', '.join(str(r['origin']) for r in rows)}")
        warnings.warn(category(f"{names}: {text}"), stacklevel=3)
    for w in caught:  # anything else raised while the nested fits ran (e.g. a schedule note)
        if str(w.message) not in known:
            warnings.warn(w.category(f"calibration fits: {w.message}"), stacklevel=3)


def nested_record(origin: int, fit, frontier=None, scale: str = "compute") -> dict:
    """One row of the table of nested fits a calibration keeps: origin, fit, rows, verdict, reason,
    seconds (``used`` is added by :func:`measure`)."""
    rows = int(len(fit.design.y))
    upto = f", up to {scale} = {frontier:.3g}" if frontier is not None else ""
    return {"origin": origin, "fit": f"calibration fit at origin {origin} ({rows} rows{upto})",
            "rows": rows, "verdict": "passed" if fit.ok else "imprecise" if usable(fit) else "failed",
            "reason": failure(fit), "seconds": fit.settings.seconds}


def usable(fit) -> bool:
    """Whether a nested fit's forecasts may enter the calibration (see the module docstring)."""
    if any(w.kind in UNUSABLE for w in fit.warnings):
        return False
    return not (fit.diagnostics["r_hat"] > NESTED_RHAT_MAX).any()  # NaN with one chain: not checked


def failure(fit) -> str:
    """What failed the gate in ``fit``, in words, naming shared and per-family parameters as such."""
    parts = []
    for w in fit.warnings:
        if w.kind not in GATE_KINDS:
            continue
        diag = fit.diagnostics
        if w.kind == "rhat":
            bad = diag.index[~(diag["r_hat"] <= RHAT_MAX)]
            parts.append(f"R-hat up to {diag['r_hat'].max():.3g} for {_parameters(fit, bad)}")
        elif w.kind.startswith("ess_"):
            col = w.kind
            bad = diag.index[~(diag[col] >= ESS_MIN)]
            parts.append(f"{col.replace('_', ' ')} down to {diag[col].min():.0f} for {_parameters(fit, bad)}")
        else:
            parts.append(w.kind)
    return "; ".join(parts)


def _parameters(fit, names) -> str:
    """Gate table names (``E[f0]``, ``alpha[f0]``, ``sigma``) as parameters: shared ones once, the
    ones fitted per family with their families."""
    families = {}
    for name in names:
        base, _, family = str(name).partition("[")
        families.setdefault(base, []).append(family.rstrip("]"))
    out = []
    for base, where in families.items():
        if base not in fit.law.parameters:
            out.append(base)  # a population, noise or run-effect scale
        elif fit.design.n_families > 1 and fit.structure.pool(base) != "shared":
            out.append(f"per-family {base} ({', '.join(where)})")
        else:
            out.append(f"shared {base}" if fit.design.n_families > 1 else base)
    return ", ".join(out)


__all__ = ["Calibration", "CalibrationConfig", "calibrate", "discrepancy_rate", "errors", "estimate",
           "failure", "from_backtest", "measure", "nested_record"]
