"""Comparing families and laws: contrasts, rankings, LOO, leave-one-size-out, model averaging.

Every function takes a fitted :class:`~bayescale.Fit` (or a dict of them)
first, so each can be exposed as a ``Fit`` method.

* :func:`contrast` -- posterior of the difference and ratio of one law
  parameter between two families (e.g. "is corpus B's exponent larger?").
* :func:`contrast_prediction` -- paired posterior of the difference in the
  predicted outcome of two families at a target (same posterior draw for both).
* :func:`rank_families` -- probability that each family is best at a target.
* :func:`compare` -- PSIS-LOO (ArviZ 1.x) table of several laws on the same data.
* :func:`loso` -- leave-one-size-out cross-validation: refit without each model
  size and score the held-out rows; a harder, extrapolating check than LOO.
* :func:`average` -- forecast mixing the posterior draws of several fits.
"""

from __future__ import annotations

import warnings

import arviz_stats as azs
import numpy as np
import pandas as pd

from ..data.design import require_column
from ..errors import DataError, DiagnosticsWarning, LooWarning
from ..model import OBS
from ..result.fitting import request
from ..result.predictive import check_levels, draws, level_label
from ..result.predictive import targets as target_rows

LEVEL = 0.9  # central interval reported by contrasts
PARETO_K_MAX = 0.7  # PSIS-LOO is unreliable for observations above this (Vehtari et al. 2024)


# ---- helpers ----------------------------------------------------------------------
def _family_index(fit, family) -> int:
    families = fit.design.families
    if str(family) not in families:
        raise DataError(f"family {family!r} is not in the fit; its families are {', '.join(families)}.")
    return families.index(str(family))


def _two_families(fit, a, b) -> tuple[int, int]:
    if str(a) == str(b):
        raise DataError(f"a and b are the same family ({a!r}); name two different families.")
    return _family_index(fit, a), _family_index(fit, b)


def _posterior_draws(fit, new: pd.DataFrame, kind: str, seed: int):
    # a contrast between families of one fit: the law's own error beyond the data is shared
    return fit.predict(new, kind, (LEVEL,), seed, extrapolation=False, draws=True)


def _interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return lo, hi


def _log_mean_exp(x: np.ndarray, axis: int = 0) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.mean(np.exp(x - top), axis=axis))


# ---- contrasts --------------------------------------------------------------------
def contrast(fit, param: str, a, b, level: float = LEVEL) -> pd.Series:
    """Posterior of the difference ``a - b`` and the ratio ``a / b`` of ``param`` between families.

    Parameters
    ----------
    fit : Fit
    param : str
        A law parameter (e.g. ``"alpha"``) or a reported one (e.g. ``"A"``).
    a, b : str
        Two families of the fit.
    level : float
        Central credible level of the intervals (default 0.9).

    Returns
    -------
    Series
        ``param``, ``a``, ``b``; ``diff_mean``, ``diff_median``, ``diff_sd``,
        ``diff_lo<pct>``, ``diff_hi<pct>``; the same with ``ratio_``; and
        ``p_greater`` = P(param_a > param_b) under the posterior.

    Raises
    ------
    DataError
        Unknown family or parameter, or a parameter shared by all families
        (pool ``"shared"``: its difference is identically 0).
    """
    (level,) = check_levels(level)
    law = fit.law
    known = [*law.parameters, *law.report]
    if param not in known:
        raise DataError(f"'{param}' is not a parameter of law '{law.name}'; "
                        f"choose one of {', '.join(known)}.")
    if param in law.parameters and fit.structure.pool(param) == "shared":
        raise DataError(
            f"parameter '{param}' is shared by all families in this fit (pool='shared'), so its "
            f"difference between families is identically 0. Refit with pool={{'{param}': 'partial'}} "
            f"(or 'none') to compare it between families.")
    ia, ib = _two_families(fit, a, b)
    values = draws(fit.idata.posterior, param)
    va, vb = values[:, ia], values[:, ib]
    if np.array_equal(va, vb):
        raise DataError(f"'{param}' takes the same value in every draw for families {a!r} and {b!r} "
                        f"(it depends only on shared parameters), so the contrast is identically 0.")
    pct = level_label(level)
    out = {"param": param, "a": str(a), "b": str(b)}
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, v in (("diff", va - vb), ("ratio", va / vb)):
            lo, hi = _interval(v, level)
            out |= {f"{name}_mean": float(np.mean(v)), f"{name}_median": float(np.median(v)),
                    f"{name}_sd": float(np.std(v, ddof=1)), f"{name}_lo{pct}": float(lo),
                    f"{name}_hi{pct}": float(hi)}
    out["p_greater"] = float(np.mean(va > vb))
    return pd.Series(out, name=f"{param}[{a}] vs {param}[{b}]")


def contrast_prediction(fit, at, a, b, kind: str = "mean", level: float = LEVEL,
                        seed: int = 0) -> pd.DataFrame:
    """Paired posterior of the difference in predicted outcome, family ``a`` minus ``b``.

    Both families are forecast from the *same* posterior draw, so what they have
    in common (shared exponents, the noise scale, correlated parameters) cancels
    and the difference is known more precisely than the two separate bands suggest.

    Parameters
    ----------
    fit : Fit
    at : dict, Series or DataFrame
        Target(s): the input columns of the fit, e.g. ``{"params": 7e9, "tokens": 1.4e11}``.
        A group column, if present, is ignored.
    a, b : str
        Two families of the fit.
    kind : {"mean", "new_run"}
        ``"mean"``: the laws; ``"new_run"``: one new run of each family (each with
        its own run effect and noise).
    level : float
        Central credible level (default 0.9).

    Returns
    -------
    DataFrame
        One row per target: the inputs, ``a``, ``b``, ``median_a``, ``median_b``,
        ``diff_mean``, ``diff_median``, ``diff_lo<pct>``, ``diff_hi<pct>`` (of a - b)
        and ``p_a_lower`` = P(y_a < y_b) (a lower loss is better).
    """
    (level,) = check_levels(level)
    group = fit.design.columns["group"]
    if group is None:
        raise DataError("this fit has one family (no group column); there is nothing to contrast.")
    _two_families(fit, a, b)
    targets = target_rows(at).drop(columns=[group], errors="ignore")
    n = len(targets)
    new = pd.concat([targets.assign(**{group: str(a)}), targets.assign(**{group: str(b)})],
                    ignore_index=True)
    _, values = _posterior_draws(fit, new, kind, seed)
    ya, yb = values[:, :n], values[:, n:]
    diff = ya - yb
    lo, hi = _interval(diff, level)
    pct = level_label(level)
    out = targets.copy()
    out["a"], out["b"] = str(a), str(b)
    out["median_a"], out["median_b"] = np.median(ya, 0), np.median(yb, 0)
    out["diff_mean"], out["diff_median"] = diff.mean(0), np.median(diff, 0)
    out[f"diff_lo{pct}"], out[f"diff_hi{pct}"] = lo, hi
    out["p_a_lower"] = np.mean(ya < yb, axis=0)
    return out


def rank_families(fit, at, lower_is_better: bool = True, kind: str = "mean",
                  seed: int = 0) -> pd.DataFrame:
    """Probability that each family is best at one target, and its expected rank.

    Ranks are computed draw by draw (1 = best; lowest outcome when
    ``lower_is_better``), so they carry the posterior correlation between families.

    Returns
    -------
    DataFrame
        One row per family, best expected rank first: ``family``, ``median``,
        ``p_best``, ``expected_rank``.
    """
    group = fit.design.columns["group"]
    targets = target_rows(at)
    if len(targets) != 1:
        raise DataError(f"rank_families ranks at one target; got {len(targets)} rows.")
    if group is not None:
        targets = targets.drop(columns=[group], errors="ignore")
    families = fit.design.families
    new = targets.loc[targets.index.repeat(len(families))].reset_index(drop=True)
    if group is not None:
        new[group] = families
    _, values = _posterior_draws(fit, new, kind, seed)
    score = values if lower_is_better else -values
    ranks = np.argsort(np.argsort(score, axis=1), axis=1) + 1
    out = pd.DataFrame({"family": families, "median": np.median(values, 0),
                        "p_best": np.mean(ranks == 1, axis=0), "expected_rank": ranks.mean(0)})
    return out.sort_values("expected_rank", kind="stable").reset_index(drop=True)


# ---- comparing laws ---------------------------------------------------------------
def _same_data(fits: dict) -> None:
    names = list(fits)
    first = fits[names[0]].design
    for name in names[1:]:
        other = fits[name].design
        same = (len(other.y) == len(first.y) and np.array_equal(other.y, first.y)
                and np.array_equal(np.asarray(other.frame.index), np.asarray(first.frame.index)))
        if not same:
            raise DataError(
                f"fits '{names[0]}' ({len(first.y)} rows) and '{name}' ({len(other.y)} rows) are not "
                f"fitted to the same outcome rows; LOO comparisons need the same data in the same order.")


def compare(fits: dict, method: str = "stacking") -> pd.DataFrame:
    """Compare laws fitted to the same data by PSIS-LOO (``arviz_stats.loo`` / ``compare``).

    The pointwise log-likelihood is that of log y, so laws are compared on the
    same scale whatever their formula.  Observations with Pareto k above 0.7 make
    a fit's estimate unreliable; they are counted in ``n_bad_k`` and reported
    with a :class:`LooWarning` naming the fit (refit with more draws, or use
    :func:`loso` / exact refits).

    Parameters
    ----------
    fits : dict of str -> Fit
        At least two fits of the same outcome rows.
    method : {"stacking", "BB-pseudo-BMA", "pseudo-BMA"}
        How ArviZ computes the weights.

    Returns
    -------
    DataFrame
        Indexed by fit name, best first: ``rank``, ``elpd_loo``, ``se``, ``p_loo``,
        ``elpd_diff`` (to the best), ``dse`` (its standard error), ``weight``
        (sum to 1), ``n_bad_k``.
    """
    if not isinstance(fits, dict) or len(fits) < 2:
        raise DataError("compare needs a dict of at least two fits, e.g. {'chinchilla': f1, 'power': f2}.")
    for name, f in fits.items():
        if not hasattr(f, "idata") or "log_likelihood" not in f.idata.children:
            raise DataError(f"'{name}' is not a fit with a log_likelihood group.")
    _same_data(fits)
    loos, bad = {}, {}
    for name, f in fits.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ArviZ's own k warning; ours names the fit
            loos[name] = azs.loo(f.idata, pointwise=True, var_name=OBS)
        k = np.asarray(loos[name].pareto_k)
        bad[name] = int(np.sum(k > PARETO_K_MAX))
        if bad[name]:
            warnings.warn(LooWarning(
                f"fit '{name}': {bad[name]} of {k.size} observations have Pareto k > {PARETO_K_MAX}, so "
                f"its PSIS-LOO estimate is unreliable; refit with more draws or compare by exact "
                f"refits (bayescale.loso)."), stacklevel=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = azs.compare(loos, method=method, round_to="none")
    out = pd.DataFrame({
        "rank": table["rank"].astype(int), "elpd_loo": table["elpd"], "se": table["se"],
        "p_loo": table["p"], "elpd_diff": table["elpd_diff"], "dse": table["dse"],
        "weight": table["weight"]}, index=table.index)
    out["n_bad_k"] = [bad[name] for name in out.index]
    out.index.name = "fit"
    return out


# ---- leave-one-size-out -----------------------------------------------------------
def heldout_log_density(fit, rows: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """Log predictive density of each row of ``rows`` (observed outcomes) under ``fit``.

    For each posterior draw *s*: ``log N(log y | log mu_s, sqrt(sigma_s^2 +
    sigma_run_s^2 + se^2))`` with ``mu_s`` the law's mean for the row's family
    (the run effect of a held-out run is unknown, so it is integrated out, which
    adds ``sigma_run^2``); then the log of the mean over draws.  Rows are scored
    one by one, ignoring that rows of one held-out run share its effect.  With
    ``likelihood="student_t"`` the Student-t with that combined scale is used
    (an approximation: a t plus a normal is not a t).
    """
    cols = fit.design.columns
    require_column(rows, cols["y"])
    y = pd.to_numeric(rows[cols["y"]], errors="coerce").to_numpy(dtype=float)
    link = fit.design.outcome
    if not np.all(np.isfinite(y) & link.valid(y)):
        raise DataError(f"held-out outcome column '{cols['y']}' must be finite and {link.range_text}.")
    new = rows.reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # extrapolation is the point of a held-out size
        _, mu = fit.predict(new, "mean", (LEVEL,), seed, extrapolation=False, draws=True)
    post = fit.idata.posterior
    var = draws(post, "sigma")[:, None] ** 2
    if fit.structure.n_runs:
        var = var + draws(post, "sigma_run")[:, None] ** 2
    if cols["se"] is not None:
        se = pd.to_numeric(new[cols["se"]]).to_numpy(dtype=float)
        var = var + link.se(se, y)[None, :] ** 2
    scale = np.sqrt(var)
    z = (link.forward(y)[None, :] - link.forward(mu)) / scale
    if fit.structure.likelihood == "student_t":
        from scipy.special import gammaln

        nu = draws(post, "nu")[:, None]
        ll = (gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi) - np.log(scale)
              - (nu + 1) / 2 * np.log1p(z**2 / nu))
    else:
        ll = -0.5 * z**2 - np.log(scale) - 0.5 * np.log(2 * np.pi)
    return _log_mean_exp(ll, axis=0)


class Loso:
    """Result of :func:`loso`: ``table`` (one row per law) and ``pointwise`` (one row per held-out row)."""

    def __init__(self, table: pd.DataFrame, pointwise: pd.DataFrame, by: str):
        self.table, self.pointwise, self.by = table, pointwise, by

    def __repr__(self) -> str:
        return f"<Loso by '{self.by}': {len(self.table)} laws>\n{self.table.to_string()}"


def loso(df: pd.DataFrame, fits_kwargs: dict, by: str = "params", holdout=None,
         seed: int = 0) -> Loso:
    """Leave-one-size-out cross-validation of one or more laws.

    For each distinct value of ``by`` (a model size) each law is refit without
    the rows at that size, and the held-out rows are scored by their log
    predictive density (:func:`heldout_log_density`).  This is grouped K-fold
    with one fold per size: it asks how well a law forecasts a size it has not
    seen, which PSIS-LOO (one row out) does not.  It costs one fit per law and
    size, so keep ``holdout`` short or the fits small.

    Parameters
    ----------
    df : DataFrame
        The data.
    fits_kwargs : dict of str -> dict
        Name -> keyword arguments of :func:`bayescale.fit` (``law``, ``y``, ``x``,
        ``group``, ... and the NUTS settings).
    by : str
        Column whose distinct values are the folds (default ``"params"``).
    holdout : sequence, optional
        The values of ``by`` to hold out (default: every distinct value).

    Returns
    -------
    Loso
        ``table``: per law, ``elpd`` (sum over held-out rows), ``se``
        (sqrt(n) x sd of the pointwise values), ``elpd_diff`` to the best and
        its ``dse`` (paired over rows), ``n_rows``, ``n_folds``, ``failed_gate``
        (folds whose fit failed the diagnostics gate).  ``pointwise``: law,
        fold value, original row index and ``elpd_i``.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, not {type(df).__name__}.")
    if not isinstance(fits_kwargs, dict) or not fits_kwargs:
        raise DataError("fits_kwargs must be a dict of name -> bs.fit keyword arguments, "
                        "e.g. {'chinchilla': {'law': 'chinchilla', 'x': {...}, 'group': 'family'}}.")
    require_column(df, by)
    values = np.unique(df[by].to_numpy())
    folds = values if holdout is None else np.atleast_1d(np.asarray(holdout))
    missing = [v for v in folds if v not in set(values.tolist())]
    if missing:
        raise DataError(f"holdout values {missing} are not values of column '{by}'.")
    if len(values) < 2:
        raise DataError(f"column '{by}' has one distinct value; leave-one-size-out needs several.")
    rows, failed = [], {}
    for name, kwargs in fits_kwargs.items():
        failed[name] = 0
        for value in folds:
            test = (df[by] == value).to_numpy()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # each fold's warnings are summarised below
                f = request(**{k: v for k, v in kwargs.items() if k != "extrapolation"}).fit(
                    df.loc[~test])  # plain fits: scored in-range
            failed[name] += not f.ok
            ll = heldout_log_density(f, df.loc[test], seed=seed)
            rows.append(pd.DataFrame({"law": name, "fold": value, "row": df.index[test], "elpd_i": ll}))
    pointwise = pd.concat(rows, ignore_index=True)
    wide = pointwise.pivot_table(index=["fold", "row"], columns="law", values="elpd_i")
    n = len(wide)
    elpd = wide.sum()
    best = elpd.idxmax()
    table = pd.DataFrame({
        "elpd": elpd, "se": np.sqrt(n) * wide.std(ddof=1),
        "elpd_diff": elpd - elpd[best],
        "dse": np.sqrt(n) * wide.sub(wide[best], axis=0).std(ddof=1),
        "n_rows": n, "n_folds": len(folds), "failed_gate": pd.Series(failed)})
    table = table.sort_values("elpd", ascending=False)
    table.index.name = "law"
    if table["failed_gate"].any():
        warnings.warn(DiagnosticsWarning(
            f"some leave-one-size-out fits failed the diagnostics gate "
            f"({table['failed_gate'].to_dict()}); run more warmup/draws before trusting the table."),
            stacklevel=2)
    return Loso(table, pointwise, by)


# ---- model averaging ----------------------------------------------------------------
def _weights(fits: dict, weights) -> dict:
    if isinstance(weights, pd.DataFrame):
        if "weight" not in weights.columns:
            raise DataError("a weights table needs a 'weight' column (as returned by compare).")
        weights = weights["weight"]
    if isinstance(weights, pd.Series):
        weights = weights.to_dict()
    if not isinstance(weights, dict):
        weights = list(np.atleast_1d(weights))
        if len(weights) != len(fits):
            raise DataError(f"{len(weights)} weights for {len(fits)} fits; give one per fit.")
        weights = dict(zip(fits, weights))
    unknown = sorted(set(map(str, weights)) - set(fits))
    if unknown:
        raise DataError(f"weights name {unknown}, which are not among the fits ({', '.join(fits)}).")
    w = {name: float(weights.get(name, 0.0)) for name in fits}
    if any(not np.isfinite(v) or v < 0 for v in w.values()) or sum(w.values()) <= 0:
        raise DataError(f"weights must be finite, >= 0 and not all 0; got {w}.")
    total = sum(w.values())
    return {k: v / total for k, v in w.items()}


def average(fits: dict, weights, new, kind: str = "mean", levels=(0.5, 0.9),
            seed: int = 0) -> pd.DataFrame:
    """Model-averaged forecast: a mixture of the fits' posterior predictive draws.

    Parameters
    ----------
    fits : dict of str -> Fit
    weights : dict, Series, sequence or DataFrame
        Weight of each fit (normalised to sum 1); a :func:`compare` table uses its
        ``weight`` column.
    new, kind, levels, seed
        As for :meth:`bayescale.Fit.predict`.

    Returns
    -------
    DataFrame
        As :meth:`~bayescale.Fit.predict` (inputs, ``family``, ``mean``,
        ``median``, bands, ``distance``, ``extrap_*`` of the first fit), from a pool of draws
        with ``round(weight x n)`` draws of each fit (``n`` the largest number of
        posterior draws among the fits, resampled with replacement).
    """
    if not isinstance(fits, dict) or not fits:
        raise DataError("average needs a dict of name -> Fit.")
    levels = check_levels(levels)
    w = _weights(fits, weights)
    rng = np.random.default_rng(seed)
    outs, samples = {}, {}
    for k, (name, f) in enumerate(fits.items()):
        if w[name] == 0:
            continue
        outs[name], samples[name] = f.predict(new, kind, levels, seed + k, draws=True)
    first = next(iter(outs.values()))
    for name, out in outs.items():
        if len(out) != len(first) or list(out["family"]) != list(first["family"]):
            raise DataError(f"fit '{name}' forecasts other rows or families than "
                            f"'{next(iter(outs))}'; average fits of the same families.")
    n = max(s.shape[0] for s in samples.values())
    counts = _largest_remainder({k: w[k] for k in samples}, n)
    pool = np.concatenate([s[rng.integers(0, s.shape[0], counts[k])] for k, s in samples.items()])
    out = first.drop(columns=[c for c in first.columns if c.startswith(("lo", "hi"))
                              and c[2:].replace(".", "").isdigit()])
    out["mean"], out["median"] = pool.mean(0), np.median(pool, 0)
    extras = [c for c in out.columns if c == "distance" or c.startswith("extrap_")]
    body = out.drop(columns=extras)
    for level in levels:
        lo, hi = np.quantile(pool, [(1 - level) / 2, (1 + level) / 2], axis=0)
        body[f"lo{level_label(level)}"], body[f"hi{level_label(level)}"] = lo, hi
    return pd.concat([body, out[extras]], axis=1)


def _largest_remainder(w: dict, n: int) -> dict:
    raw = {k: v * n for k, v in w.items()}
    counts = {k: int(np.floor(v)) for k, v in raw.items()}
    left = n - sum(counts.values())
    for k in sorted(raw, key=lambda k: raw[k] - counts[k], reverse=True)[:left]:
        counts[k] += 1
    return counts


__all__ = ["LooWarning", "Loso", "average", "compare", "contrast", "contrast_prediction",
           "heldout_log_density", "loso", "rank_families"]
