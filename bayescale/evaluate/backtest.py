"""Backtests: hold out the runs a forecast is for, refit, and score the forecast.

A scaling law is used to forecast beyond the data (a larger model, more
compute, a new family).  :func:`backtest` reproduces that on data already in
hand: it holds out the largest size, the largest compute, the later runs of one
family or any rows the caller chooses, fits on the rest and reports the error
and the coverage of the credible bands on the held-out rows.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..data.design import input_mapping, require_column, scale_values
from ..errors import DataError
from ..inference.progress import current
from ..laws.spec import resolve
from ..result.predictive import KINDS, check_levels, level_label, terms

LEVELS = (0.5, 0.8, 0.9, 0.95)
SPLITS = ("largest-size", "largest-compute", "('leave-family-out', family, k)", "rolling",
          "callable(df) -> mask")
ROLLING = (0.3, 0.8)  # the rolling origins lie at these quantiles of the data's log compute, and between
DISTANCE_BINS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, np.inf)  # decades of compute beyond the training frontier


@dataclass
class Backtest:
    """Result of :func:`backtest`.

    Attributes
    ----------
    per_target : DataFrame
        One row per held-out row and kind: ``row`` (index in the data), the input
        columns, ``family``, ``kind``, ``truth`` (observed outcome), ``median``,
        ``lo<pct>``/``hi<pct>``, ``error`` (median - truth), ``abs_rel_error``
        (|error| / truth) and ``in_<pct>`` (truth inside the central band).
    aggregate : DataFrame
        One row per kind: ``n``, ``median_abs_rel_error``, ``mean_abs_rel_error``
        and ``coverage_<pct>`` (share of held-out rows inside each band; a
        calibrated forecast covers about the nominal level).
    fit : Fit
        The fit on the training rows.
    held_out : ndarray of bool
        Mask of the held-out rows of the data (for ``"rolling"``: held out at some origin).
    split : str
        What was held out.
    by_distance : DataFrame or None
        ``"rolling"`` only: per kind and bin of distance beyond the training
        frontier (decades of compute), ``n``, the errors and each band's coverage.
    fits : list of Fit
        ``"rolling"`` only: the fit at each origin (``fit`` is the last).
    calibrations : list
        ``"rolling"`` only: the discrepancy each origin's forecasts used, a
        :class:`~bayescale.Calibration` from its own training rows
        with ``discrepancy="calibrate"`` (0.0 where those rows allow none).
    """

    per_target: pd.DataFrame
    aggregate: pd.DataFrame
    fit: object = field(repr=False)
    held_out: np.ndarray = field(repr=False)
    split: str = ""
    by_distance: pd.DataFrame | None = field(default=None, repr=False)
    fits: list = field(default_factory=list, repr=False)
    calibrations: list = field(default_factory=list, repr=False)

    def __getitem__(self, key):  # dict-style access: result["aggregate"]
        return getattr(self, key)

    def __repr__(self) -> str:
        return (f"<Backtest {self.split}: {int(self.held_out.sum())} held-out rows, "
                f"{int((~self.held_out).sum())} training rows>\n{self.aggregate.to_string()}")


def _columns(df: pd.DataFrame, req) -> tuple[dict, str | None, str | None]:
    """Input columns (law input -> column), group and run columns of the call."""
    xmap = input_mapping(resolve(req.law), req.cols["x"])
    for col in xmap.values():
        require_column(df, col)
    group, run = req.cols["group"], req.cols["run"]
    for col in (group, run):
        if col is not None:
            require_column(df, col)
    return xmap, group, run


def _size_column(xmap: dict) -> str:
    if "N" in xmap:
        return xmap["N"]
    if len(xmap) == 1:
        return next(iter(xmap.values()))
    raise DataError(f"the law's inputs {list(xmap)} include no 'N' (model size); pass size='<column>' "
                    f"or a callable split.")


def _compute(df: pd.DataFrame, law, xmap: dict, group=None, run=None) -> np.ndarray:
    """The law's scale of each row (:attr:`~bayescale.Law.scale`: compute 6·N·D for N and D)."""
    return scale_values(law, df, xmap, group if group in df else None, run if run in df else None)


def heldout_mask(df: pd.DataFrame, split, xmap: dict, group: str | None, run: str | None,
                 size: str | None = None, frac: float = 0.2, law=None) -> tuple[np.ndarray, str, dict]:
    """The rows ``split`` holds out, a description, and extra ``bs.fit`` settings it needs.

    ``law`` (a :class:`~bayescale.Law`) says what compute is (its scale); the splits that
    need compute require it.
    """
    extra = {}
    if callable(split):
        mask = np.asarray(split(df))
        if mask.shape != (len(df),) or mask.dtype != bool:
            raise DataError(f"a callable split must return a boolean mask of {len(df)} rows "
                            f"(True = held out); got shape {mask.shape}, dtype {mask.dtype}.")
        what = f"callable {getattr(split, '__name__', 'split')}"
    elif isinstance(split, str) and split == "largest-size":
        col = size or _size_column(xmap)
        require_column(df, col)
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        mask = values == np.nanmax(values)
        what = f"largest-size ({col} = {np.nanmax(values):.3g})"
    elif isinstance(split, str) and split == "largest-compute":
        if not 0 < frac < 1:
            raise DataError(f"frac={frac}: the share of rows held out must lie strictly between 0 and 1.")
        compute = _compute(df, law, xmap, group, run)
        cut = np.quantile(compute, 1 - frac)
        mask = compute >= cut
        what = f"largest-compute (top {frac:.0%} of rows by {law.scale.text}, >= {cut:.3g})"
    elif isinstance(split, tuple) and len(split) == 3 and split[0] == "leave-family-out":
        _, family, k = split
        if group is None:
            raise DataError("leave-family-out needs a group column; pass group='<column>'.")
        if not isinstance(k, int | np.integer) or k < 0:
            raise DataError(f"leave-family-out keeps k >= 0 runs of the family in training; got k={k!r}.")
        rows = (df[group].astype(str) == str(family)).to_numpy()
        if not rows.any():
            names = ", ".join(map(str, pd.unique(df[group].astype(str))))
            raise DataError(f"family {family!r} is not in column '{group}'; families are {names}.")
        # a run's compute is that of its last (largest-compute) row; rows are runs without a run column
        sub = df.loc[rows]
        runs = sub[run].astype(str).to_numpy() if run is not None else np.arange(len(sub)).astype(str)
        compute = pd.Series(_compute(sub, law, xmap, group, run)).groupby(runs).max()
        compute = compute.sort_values(kind="stable")
        keep = set(compute.index[:k])
        mask = rows.copy()
        mask[np.flatnonzero(rows)[np.isin(runs, list(keep))]] = False
        if k == 1:
            extra["min_rows_per_family"] = 1
        what = f"leave-family-out ({family!r}, keeping its {k} smallest-compute run(s))"
    else:
        raise DataError(f"split={split!r}; choose one of {', '.join(SPLITS)}.")
    if not mask.any():
        raise DataError(f"split {what} holds out no rows.")
    if mask.all():
        raise DataError(f"split {what} holds out every row; nothing is left to fit.")
    return mask, what, extra


def score(fit, test: pd.DataFrame, kinds=("mean",), levels=LEVELS, seed: int = 0,
          discrepancy=0.0) -> pd.DataFrame:
    """Forecast the rows of ``test`` from ``fit`` and score them against their outcomes."""
    y = fit.design.columns["y"]
    require_column(test, y)
    truth = pd.to_numeric(test[y], errors="coerce").to_numpy(dtype=float)
    inputs = list(fit.design.columns["x"].values())
    group, run, se = (fit.design.columns[k] for k in ("group", "run", "se"))
    # the run column orders derived inputs; a known se widens the new-run band of a measured target
    keys = [c for c in (group, run, se) if c and c in test.columns]
    new = test[[*inputs, *keys]].reset_index(drop=True)
    parts = []
    for kind in kinds:
        out = fit.predict(new, kind, levels, seed, discrepancy=discrepancy)
        part = pd.DataFrame({"row": test.index})
        for col in inputs:
            part[col] = new[col].to_numpy()
        part["family"] = out["family"].to_numpy()
        part["kind"] = kind
        part["truth"] = truth
        part["median"] = out["median"].to_numpy()
        for level in levels:
            pct = level_label(level)
            part[f"lo{pct}"], part[f"hi{pct}"] = out[f"lo{pct}"].to_numpy(), out[f"hi{pct}"].to_numpy()
        part["error"] = part["median"] - truth
        part["abs_rel_error"] = np.abs(part["error"]) / truth
        for level in levels:
            pct = level_label(level)
            part[f"in_{pct}"] = (truth >= part[f"lo{pct}"]) & (truth <= part[f"hi{pct}"])
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def summarise(per_target: pd.DataFrame, levels=LEVELS, by=("kind",)) -> pd.DataFrame:
    """Median and mean |relative error| and the coverage of each band, per kind (or ``by``)."""
    grouped = per_target.groupby(list(by), sort=False, observed=True)
    out = pd.DataFrame({"n": grouped.size(),
                        "median_abs_rel_error": grouped["abs_rel_error"].median(),
                        "mean_abs_rel_error": grouped["abs_rel_error"].mean()})
    for level in levels:
        pct = level_label(level)
        out[f"coverage_{pct}"] = grouped[f"in_{pct}"].mean().astype(float)
    return out


def run_backtest(df: pd.DataFrame, req, split="largest-size", kind="mean", levels=LEVELS, size=None,
        frac: float = 0.2, seed: int = 0, discrepancy=0.0, cuts: int = 5, executor=None) -> Backtest:
    """:func:`bayescale.backtest` of the fits that ``req`` makes (a
    :class:`~bayescale.result.fitting.Request`)."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, not {type(df).__name__}.")
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise DataError(f"kind={kind!r}; choose 'mean', 'new_run' or both, e.g. kind=('mean', 'new_run').")
    levels = check_levels(levels)
    xmap, group, run = _columns(df, req)
    if callable(discrepancy) and split != "rolling":
        raise DataError("a discrepancy measured per origin needs split='rolling'.")
    if isinstance(split, str) and split == "rolling":
        return _rolling(df, req, cuts, kinds, levels, seed, discrepancy, executor, xmap, group, run)
    mask, what, extra = heldout_mask(df, split, xmap, group, run, size, frac, resolve(req.law))
    if "min_rows_per_family" in extra:
        req = req.with_(model={"min_rows_per_family": min(req.model.min_rows_per_family,
                                                          extra["min_rows_per_family"])})
    fitted = req.fit(df.loc[~mask])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # extrapolating is what a backtest does
        per_target = score(fitted, df.loc[mask], kinds, levels, seed, discrepancy)
    return Backtest(per_target, summarise(per_target, levels), fitted, mask, what)


def forecastable(fit, rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``rows`` that ``fit`` can forecast: all, unless a parameter is fitted per family
    (``pool="none"``, as with 2-4 families by default); then those of the families it fitted.  At
    an early origin a family may have too few rows to be fitted, and with nothing pooled nothing
    is known of it there."""
    group = fit.design.columns["group"]
    if group is None or group not in rows or all(fit.structure.pool(n) != "none" for n in fit.law.parameters):
        return rows
    return rows[rows[group].astype(str).isin(fit.design.families)]


def origins(compute: np.ndarray, cuts: int) -> np.ndarray:
    """The ``cuts`` rolling origins: distinct compute values at quantiles 0.3 ... 0.8 of log compute."""
    if isinstance(cuts, bool) or not isinstance(cuts, int | np.integer) or cuts < 1:
        raise DataError(f"cuts={cuts!r}: the number of rolling origins must be a positive integer.")
    logc = np.log10(compute)
    return np.unique(np.quantile(logc, np.linspace(*ROLLING, cuts), method="lower"))


def _rolling(df, req, cuts, kinds, levels, seed, discrepancy, executor, xmap, group, run=None):
    try:
        compute = _compute(df, resolve(req.law), xmap, group, run)
    except DataError as err:
        raise DataError(f"rolling backtest: {err}") from None
    logc = np.log10(compute)
    least = req.model.min_rows_per_family
    frames, tests, edges = [], [], []
    for edge in origins(compute, cuts):
        train = logc <= edge
        if group is not None:  # families with too few rows up to this origin: forecast, not fitted
            rows = df.loc[train, group].value_counts()
            train &= df[group].map(rows).fillna(0).to_numpy() >= least
        if train.sum() < 3 or train.all():
            continue
        frames.append(df.loc[train])
        tests.append(df.loc[logc > edge])
        edges.append(edge)
    if not frames:
        raise DataError("rolling backtest: no origin leaves rows to fit and rows to forecast; "
                        "the data need a spread of compute.")
    # one step per origin as its fit ends (in this process; on an executor, when all have)
    with current().steps("rolling origin", len(frames), per_fit=True):
        fits = req.fit_many(frames, executor=executor, pad=True)
    # a callable measures the calibration inside each origin's own training rows
    rates = [discrepancy(frame) for frame in frames] if callable(discrepancy) \
        else [discrepancy] * len(frames)
    parts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # extrapolating is what a backtest does
        for k, (fitted, test, edge, rate) in enumerate(zip(fits, tests, edges, rates)):
            test = forecastable(fitted, test)
            if test.empty:
                continue
            part = score(fitted, test, kinds, levels, seed, rate)
            part.insert(1, "cut", k)
            part["rate"], part["bias"] = terms(rate)[:2]
            part.insert(2, "frontier", 10.0 ** edge)
            part.insert(3, "distance", logc[df.index.get_indexer(part["row"])] - edge)
            parts.append(part)
    if not parts:
        raise DataError("rolling backtest: no origin's fit can forecast the rows beyond it (their "
                        "families were not fitted there, and a parameter is fitted per family); pool "
                        "the law's parameters (pool={'E': 'partial', ...}) or add rows.")
    per_target = pd.concat(parts, ignore_index=True)
    per_target["distance_bin"] = pd.cut(per_target["distance"], DISTANCE_BINS, right=True)
    held = np.zeros(len(df), bool)
    held[df.index.get_indexer(per_target["row"].unique())] = True
    what = f"rolling ({len(edges)} origins at quantiles {ROLLING[0]}-{ROLLING[1]} of log compute)"
    return Backtest(per_target, summarise(per_target, levels), fits[-1], held, what,
                    summarise(per_target, levels, by=("kind", "distance_bin")).sort_index(), list(fits),
                    list(rates))


__all__ = ["Backtest", "forecastable", "run_backtest", "heldout_mask", "origins", "score", "summarise"]
