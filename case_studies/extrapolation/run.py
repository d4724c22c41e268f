"""Calibrated extrapolation: rolling-origin backtests of plain and calibrated forecast bands.

One command::

    python case_studies/extrapolation/run.py [--quick] [--datasets a,b] [--cuts 4] [--out DIR]
    python case_studies/extrapolation/run.py --targets    # the held-out targets, once (TARGETS.md)

For each data set with a scale axis, ``bs.backtest(split="rolling",
discrepancy="calibrate")`` fits the law at ``cuts`` rolling origins and
forecasts every run beyond each origin.  Each forecast is scored twice from
the same fit: plain (the law-only band, ``discrepancy=0``) and calibrated (the
band widened by the rate that a backtest nested inside that origin's own
training rows measured, as ``bs.fit(..., extrapolation=True)`` does).  Nothing
beyond an origin is used to calibrate its forecasts.

Writes RESULTS.md, coverage.png and error.png into DIR (default: this folder).
Only aggregates are written: two of these data sets carry no license, so no row
of them is copied here.  The data are read from the shared data folder through
``bayescale.datasets``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bayescale.viz.report import markdown_table

HERE = Path(__file__).resolve().parent
LEVELS = (0.5, 0.8, 0.9, 0.95)
BINS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, np.inf)  # decades of compute beyond the origin
FULL = {"chains": 2, "warmup": 400, "draws": 400}
QUICK = {"chains": 1, "warmup": 150, "draws": 150}
NN_DD = {"N": "params", "D": "tokens"}
CHINCHILLA_SETS = ["loss_to_loss", "gadre_overtrain", "olmo_ladder", "chinchilla_epoch"]
HUBER = "Huber + bootstrap"  # the field's practice, the baseline of the targets


def datasets(bs) -> dict:
    """Data set -> (frame, fit arguments): the training rows only, never a separate target set."""
    load = bs.datasets.load
    l2l = load("loss_to_loss", split="sweep")
    gadre = load("gadre_overtrain")
    porian = load("porian_isoflop", table="optima").dropna(subset=["loss_opt", "loss_star_std"])
    porian = porian.assign(loss_se=porian["loss_star_std"] * porian["loss_opt"])  # as in porian_isoflop/
    nsl = load("revisiting_nsl")
    return {
        "loss_to_loss": (l2l, dict(law="chinchilla", y="loss_c4_val", x=NN_DD, group="corpus")),
        "gadre_overtrain": (gadre[~gadre["gadre_target"]],
                            dict(law="chinchilla_shared", y="loss", x=NN_DD, se="loss_se",
                                 group="dataset")),
        "olmo_ladder": (load("olmo_ladder"), dict(law="chinchilla", y="loss", x=NN_DD)),
        "chinchilla_epoch": (load("chinchilla_epoch", drop_highest_loss=5),
                             dict(law="chinchilla", y="loss", x=NN_DD)),
        "porian_isoflop": (porian, dict(law="compute", y="loss_opt", x="flops", group="setting",
                                        se="loss_se")),
        # the benchmark's fitting points of its 5 translation curves, which share one grid of
        # examples seen (the LM curves start at a loss capped at 0.999, BIG-bench is a metric mix)
        "revisiting_nsl": (nsl[(nsl["domain"] == "NMT") & nsl["train"]],
                           dict(law="power", y="loss", x="x", group="curve")),
    }


def held_out_targets(bs) -> dict:
    """Data set -> (training rows, target rows, fit arguments): the separate targets, used once."""
    load = bs.datasets.load
    gadre = load("gadre_overtrain")
    return {
        "loss_to_loss": (load("loss_to_loss", split="sweep"), load("loss_to_loss", split="extrapolation"),
                         dict(law="chinchilla", y="loss_c4_val", x=NN_DD, group="corpus")),
        "gadre_overtrain": (gadre[~gadre["gadre_target"]], gadre[gadre["gadre_target"]],
                            dict(law="chinchilla_shared", y="loss", x=NN_DD, se="loss_se",
                                 group="dataset")),
        "olmo_ladder": (load("olmo_ladder"), load("olmo_ladder", targets=True),
                        dict(law="chinchilla", y="loss", x=NN_DD)),
    }


def forecast_targets(bs, out: Path) -> None:
    """Fit each training set with the defaults (calibrated extrapolation) and forecast its targets,
    plain and calibrated; writes TARGETS.md.  Run once, after the method was chosen."""
    rows = []
    for name, (train, target, kw) in held_out_targets(bs).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = bs.fit(train.reset_index(drop=True), extrapolation=True, progress=False, seed=0, **kw)
            cols = [*kw["x"].values(), *[kw[k] for k in ("group", "se") if k in kw]]
            new = target[cols].reset_index(drop=True)
            truth = target[kw["y"]].to_numpy(dtype=float)
            for method, extra in (("plain", False), ("calibrated", True)):
                p = fit.predict(new, kind="new_run", levels=(0.5, 0.9), extrapolation=extra)
                for i in range(len(p)):
                    rows.append({"dataset": name, "target": f"{p['family'].iloc[i]} "
                                 f"N={new[kw['x']['N']].iloc[i]:.3g} D={new[kw['x']['D']].iloc[i]:.3g}",
                                 "method": method, "decades": round(float(p["distance"].iloc[i]), 2),
                                 "truth": round(truth[i], 4), "median": round(float(p["median"].iloc[i]), 4),
                                 "rel err %": round(100 * (p["median"].iloc[i] - truth[i]) / truth[i], 2),
                                 "90% band": f"{p['lo90'].iloc[i]:.4f}-{p['hi90'].iloc[i]:.4f}",
                                 "in 50%": bool(p["lo50"].iloc[i] <= truth[i] <= p["hi50"].iloc[i]),
                                 "in 90%": bool(p["lo90"].iloc[i] <= truth[i] <= p["hi90"].iloc[i])})
        kept = fit.settings.extrapolation
        rows.append({"dataset": name, "target": f"(calibration: bias {kept['bias']:+.4f}, rate "
                     f"{kept['rate']:.4f} per decade, reach {kept['reach']:.2f}; gate "
                     f"{'passed' if fit.ok else 'FAILED'})"})
        print(f"{name}: targets forecast", file=sys.stderr)
    t = pd.DataFrame(rows)
    scored = t.dropna(subset=["method"])
    agg = scored.groupby(["dataset", "method"], sort=False).agg(
        n=("truth", "size"), median_abs_rel_err=("rel err %", lambda v: v.abs().median()),
        cov50=("in 50%", "mean"), cov90=("in 90%", "mean")).round(3).reset_index()
    (out / "TARGETS.md").write_text(f"""# Held-out targets, forecast once

`python case_studies/extrapolation/run.py --targets` on {_dt.date.today()}: each data set's
separate targets, never used to choose the method or its settings (chosen on the
rolling-origin backtests of RESULTS.md). `bs.fit` defaults (4 chains x (1000 + 1000)) with
`extrapolation=True` on the training rows; band of one new run, plain (`extrapolation=False`)
and calibrated (the default). Values are losses as published in each data set.

{markdown_table(agg)}

{markdown_table(t.astype(object).where(t.notna(), ""))}
""")


def huber_power(theta, log_x, log_l):
    """Epoch's Huber loss (delta 1e-3) on log L of the one-input law L = exp(a) x^-alpha + exp(e),
    and its gradient; theta = (a, e, alpha)."""
    from scipy.special import logsumexp, softmax

    delta = 1e-3
    a, e, alpha = theta
    terms = np.stack([a - alpha * log_x, np.full_like(log_x, e)])
    r = logsumexp(terms, axis=0) - log_l
    small = np.abs(r) <= delta
    loss = np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta)).sum()
    w = softmax(terms, axis=0) * np.where(small, r, delta * np.sign(r))
    return loss, np.array([w[0].sum(), w[1].sum(), -(w[0] * log_x).sum()])


def _power_from(starts, log_x, log_l):
    from scipy.optimize import minimize

    fits = [minimize(huber_power, x0, args=(log_x, log_l), jac=True, method="L-BFGS-B",
                     options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 20000}) for x0 in starts]
    return min(fits, key=lambda r: r.fun).x


def bootstrap_one(df, kw: dict, cuts: int, resamples: int, seed: int = 0) -> pd.DataFrame:
    """The field's practice at the same rolling origins: per family, the law fitted by Epoch's
    Huber loss on log L from a grid of starts (Chinchilla's five parameters, or a power law with
    an offset, ``E + A x^-alpha``, for a law of one input), then refitted to ``resamples``
    bootstrap resamples of the runs (warm-started at the full fit); percentile bands of the law's
    forecast."""
    from scipy.special import logsumexp

    from bayescale.evaluate.backtest import origins

    benchmarks = str(HERE.parents[1] / "benchmarks")
    if benchmarks not in sys.path:
        sys.path.insert(0, benchmarks)
    from bench_bootstrap import GRID, fit_from  # Epoch's objective, shared with the benchmark

    xmap = _xmap(kw)
    two = set(xmap) == {"N", "D"}
    inputs = [df[xmap[k]].to_numpy(dtype=float) for k in (("N", "D") if two else list(xmap)[:1])]
    y = df[kw["y"]].to_numpy(dtype=float)
    compute = df_compute(df, kw).to_numpy()
    logc = np.log10(compute)
    families = df[kw["group"]].astype(str).to_numpy() if kw.get("group") else np.full(len(df), "all")
    if two:  # 32 of its 4,500 starts
        starts, fit, least = list(itertools.product(*(g[1::3] for g in GRID))), fit_from, 6
    else:
        starts = list(itertools.product(range(0, 30, 5), (-1.0, 0.0, 1.0), (0.1, 0.5, 1.0)))
        fit, least = _power_from, 4
    rng = np.random.default_rng(seed)
    parts = []
    for cut, edge in enumerate(origins(compute, cuts)):
        for fam in dict.fromkeys(families):
            train = np.flatnonzero((logc <= edge) & (families == fam))
            test = np.flatnonzero((logc > edge) & (families == fam))
            if len(train) < least or not len(test):  # more runs than the law has parameters
                continue
            args = [np.log(v[train]) for v in (*inputs, y)]
            thetas = [fit(starts, *args)]
            for _ in range(resamples - 1):
                pick = rng.integers(0, len(train), len(train))
                thetas.append(fit([thetas[0]], *(a[pick] for a in args)))
            t = np.asarray(thetas)
            logs = [np.log(v[test]) for v in inputs]
            if two:
                terms = [t[:, [0]] - t[:, [3]] * logs[0], t[:, [1]] - t[:, [4]] * logs[1], t[:, [2]]]
            else:
                terms = [t[:, [0]] - t[:, [2]] * logs[0], t[:, [1]]]
            draws = np.exp(logsumexp(np.stack(np.broadcast_arrays(*terms)), axis=0))
            part = pd.DataFrame({"row": test, "cut": cut, "truth": y[test], "median": np.median(draws, 0),
                                 "distance": logc[test] - edge, "crps": _crps(draws, y[test])})
            for level in LEVELS:
                pct = f"{round(level * 100)}"
                lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
                part[f"lo{pct}"], part[f"hi{pct}"] = lo, hi
                part[f"in_{pct}"] = (lo <= y[test]) & (y[test] <= hi)
            parts.append(part)
    out = pd.concat(parts, ignore_index=True).assign(method=HUBER)
    out["rel_error"] = (out["median"] - out["truth"]) / out["truth"]
    out["interval_score_90"] = interval_score(out, 0.9) / out["truth"]
    out["crps"] = out["crps"] / out["truth"]
    return out


def bootstrap_report(bs, out: Path, args) -> None:
    """BOOTSTRAP.md: the bootstrap's scores by distance and per data set, as in RESULTS.md."""
    table, parts, seconds = datasets(bs), [], {}
    names = args.datasets.split(",") if args.datasets else CHINCHILLA_SETS
    for name in names:
        df, kw = table[name]
        started = time.perf_counter()
        parts.append(bootstrap_one(df.reset_index(drop=True), kw, args.cuts, args.bootstrap)
                     .assign(dataset=name))
        seconds[name] = time.perf_counter() - started
        print(f"{name}: {seconds[name]:.0f} s", file=sys.stderr)
    t = pd.concat(parts, ignore_index=True)
    t["distance_bin"] = pd.cut(t["distance"], BINS)
    per_bin = summary(t, ["method", "distance_bin"])
    (out / "BOOTSTRAP.md").write_text(f"""# The bootstrap of the point fit at the same rolling origins

`python case_studies/extrapolation/run.py --bootstrap {args.bootstrap}` on {_dt.date.today()}:
the field's practice as a baseline for RESULTS.md, on the data sets fitted with Chinchilla
there ({", ".join(f"`{n}` {seconds[n]:.0f} s" for n in names)}). At the same {args.cuts}
rolling origins, per family (each corpus or dataset alone: the practice has no pooling),
L = E + A/N^alpha + B/D^beta is fitted by Epoch's Huber loss (delta 1e-3) on log L with
L-BFGS-B from 32 starts of its grid (`benchmarks/bench_bootstrap.py`), then refitted to
{args.bootstrap - 1} bootstrap resamples of the runs from the full fit; bands are percentiles
of the law's forecast, as practised (no run noise added). Families with fewer than 6 runs
up to an origin are not forecast, so `n` differs from RESULTS.md. Same columns as there.

## Pooled by distance

{markdown_table(per_bin)}

Target: every band within 10 points of nominal in every bin up to 1.5 decades.
{targets(per_bin)}

## Per data set, all distances

{markdown_table(summary(t, ["dataset", "method"]))}

## Per data set, up to 1.5 decades

{markdown_table(summary(t[t["distance"] <= 1.5], ["dataset", "method"]))}
""")


def backtest_one(bs, df, kw: dict, cuts: int, sampler: dict, seed: int = 0, laws=None,
                 upper: bool = True) -> pd.DataFrame:
    """Per-target scores of one data set by every method, from the same rolling fits; with
    ``laws``, also the forecast stacked over them at each origin (its own fits); with ``upper``,
    the law fitted to the upper half of the range at each origin (its own fits)."""
    from bayescale.evaluate.backtest import score
    from bayescale.evaluate.calibration import Calibration, estimate
    from bayescale.result.predictive import terms

    bt = bs.backtest(df, split="rolling", cuts=cuts, kind="new_run", levels=LEVELS, seed=seed,
                     discrepancy="calibrate", progress=False, **sampler, **kw)
    calibrated = bt.per_target.assign(method="calibrated")
    parts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cut, (fitted, cal) in enumerate(zip(bt.fits, bt.calibrations)):
            rows = calibrated[calibrated["cut"] == cut]
            test = df.loc[rows["row"].to_numpy()]
            measured = isinstance(cal, Calibration)
            linear = estimate(cal.rows, cal.fit, curvature=False, tails="normal") if measured else 0.0
            biased = estimate(cal.rows, cal.fit, bias=True) if measured else 0.0
            shrunk = estimate(cal.rows, cal.fit, bias="shrunk") if measured else 0.0
            for method, discrepancy in methods(cal, linear, biased, shrunk):
                part = score(fitted, test, ("new_run",), LEVELS, seed, discrepancy)
                part.insert(1, "cut", cut)
                for col in ("frontier", "distance", "distance_bin"):
                    part[col] = rows[col].to_numpy()
                part["rate"], part["bias"], _, part["curvature"], part["dof"] = terms(discrepancy)
                part["crps"] = crps(fitted, test, discrepancy, seed)
                parts.append(part.assign(method=method))
            parts.append(_banded(rows, conformal(fitted, test, cal, seed), "conformal"))
            parts.append(_banded(rows, conformal(fitted, test, cal, seed, scaled=True),
                                 "conformal, calibrated scale"))
            if laws is not None:
                parts.extend(stacked_one(bs, df, kw, laws, rows, sampler, seed))
            if upper:
                parts.append(upper_one(bs, df, kw, rows, cut, sampler, seed))
    out = _scored(pd.concat([p for p in parts if p is not None], ignore_index=True))
    out["ok"] = np.array([f.ok for f in bt.fits])[out["cut"].to_numpy()]
    if "ok_own" in out:  # the methods with their own fits
        out["ok"] = out["ok_own"].where(out["ok_own"].notna(), out["ok"]).astype(bool)
    return out


# Candidate laws stacked at each origin (``bs.forecast``): the data set's own law and the
# closest alternative a user would try; each pair shares its inputs, so compute agrees.
CANDIDATES = {
    "loss_to_loss": ["chinchilla", "chinchilla_shared"],
    "gadre_overtrain": ["chinchilla_shared", "chinchilla"],
    "olmo_ladder": ["chinchilla", "chinchilla_shared"],
    "chinchilla_epoch": ["chinchilla", "chinchilla_shared"],
    "porian_isoflop": {"compute": {"law": "compute"}, "loglinear": {"law": "loglinear"}},
    "revisiting_nsl": ["power", "loglinear"],
}


def conformal(fitted, test: pd.DataFrame, cal, seed: int, scaled: bool = False) -> pd.DataFrame:
    """Split-conformal bands (Lei et al. 2018, locally weighted): the score of an inner held-out
    row is its link-scale error over a scale, from the same nested backtest that calibrates;
    each band is the plain median on the link scale plus or minus the score's conformal
    quantile times the row's own scale.  The scale is the plain band's sd, or with ``scaled``
    the calibrated one (``sqrt(sd^2 + d^2 (rate^2 + curvature^2 d^2))`` at ``d`` decades), so
    that the empirical quantile replaces the calibration's Student-t.  Where the origin's rows
    allowed no nested backtest, the plain band."""
    from bayescale.evaluate.calibration import Calibration, errors

    link = fitted.design.outcome
    own = errors(fitted, test, "new_run", seed)
    center = fitted.design.link_of(pd.to_numeric(test[fitted.design.columns["y"]]).to_numpy(dtype=float),
                                   None if fitted.design.columns["group"] is None
                                   else test[fitted.design.columns["group"]].astype(str).to_numpy())
    center = center - own["error"].to_numpy()
    measured = isinstance(cal, Calibration)

    def scale(rows):
        d = rows["decades"].to_numpy().clip(0, None)
        extra = d**2 * (cal.rate**2 + (cal.curvature * d) ** 2) if scaled and measured else 0.0
        return np.sqrt(rows["band_sd"].to_numpy() ** 2 + extra)

    sd = scale(own)
    scores = None
    if measured:
        inner = cal.rows[cal.rows["decades"] > 0]
        scores = np.sort(np.abs(inner["error"].to_numpy()) / scale(inner))
    out = {"median": link.inverse(center)}
    for level in LEVELS:
        pct = f"{round(level * 100)}"
        if scores is None or len(scores) == 0:
            from scipy.stats import norm

            q = norm.ppf((1 + level) / 2)
        else:  # the ceil((n + 1) level)-th smallest score; beyond n, the largest
            k = min(int(np.ceil((len(scores) + 1) * level)), len(scores)) - 1
            q = scores[k]
        out[f"lo{pct}"], out[f"hi{pct}"] = link.inverse(center - q * sd), link.inverse(center + q * sd)
    return pd.DataFrame(out)


def _xmap(kw: dict) -> dict:
    from bayescale.laws.spec import resolve

    return kw["x"] if isinstance(kw["x"], dict) else {resolve(kw["law"]).inputs[0]: kw["x"]}


def df_compute(df, kw: dict) -> pd.Series:
    """Each row's compute (its scale), as the rolling backtest defines it for the law."""
    from bayescale.evaluate.backtest import _compute
    from bayescale.laws.spec import resolve

    return pd.Series(_compute(df, resolve(kw["law"]), _xmap(kw), kw.get("group")), index=df.index)


def training_rows(df, kw: dict, frontier: float) -> pd.DataFrame:
    """The rows up to an origin, as the rolling backtest keeps them: compute at most ``frontier``;
    with families, those with at least two rows there."""
    compute = df_compute(df, kw)
    return _families_with(df[compute <= frontier * (1 + 1e-9)].assign(_compute=compute), kw, 2)


def _families_with(train: pd.DataFrame, kw: dict, least: int) -> pd.DataFrame:
    if kw.get("group"):
        counts = train[kw["group"]].value_counts()
        train = train[train[kw["group"]].map(counts) >= least]
    return train


def _keys(kw: dict) -> list:
    return [c for c in (*_xmap(kw).values(), kw.get("group"), kw.get("se")) if c]


def stacked_one(bs, df, kw: dict, laws, rows: pd.DataFrame, sampler: dict, seed: int = 0) -> list:
    """Scores of the stacked forecast (``bs.forecast``) from the training rows of one origin, and of
    the same stack with each law's bias shrunk by its own uncertainty (the same fits, each law's
    calibration re-estimated with ``bias="shrunk"`` from its held-out errors)."""
    import copy

    from bayescale.evaluate.calibration import Calibration, estimate
    from bayescale.evaluate.compare import average

    train = training_rows(df, kw, rows["frontier"].iloc[0]).drop(columns="_compute")
    test = df.loc[rows["row"].to_numpy()]
    shared = {k: v for k, v in kw.items() if k != "law"}
    at = test[_keys(kw)].reset_index(drop=True)
    res = bs.forecast(train, laws, at, kind="new_run", levels=LEVELS,
                      seed=seed, progress=False, **sampler, **shared)
    shrunk = {}
    for name, fitted in res.fits.items():
        cal = res.calibrations[name]
        shrunk[name] = copy.copy(fitted)
        if isinstance(cal, Calibration):
            again = estimate(cal.rows, cal.fit, bias="shrunk")
            shrunk[name].settings = fitted.settings.with_(extrapolation=again.record())
    used = [k for k, w in res.weights.items() if w > 0]
    table = average({k: shrunk[k] for k in used}, res.weights[used].to_dict(), at, "new_run", LEVELS)
    parts = [_banded(rows, res.table, "stacked"), _banded(rows, table, "stacked, shrunk bias")]
    for part in parts:
        part["weight"] = float(res.weights.iloc[0])  # of the data set's own law
        part["stack_ok"] = res.ok
    return parts


WEIGHT_POWER = 0.25  # compute-weighted likelihood: weights compute^0.25, a 10x range over 4 decades


def weighted_one(bs, df, kw: dict, cuts: int, sampler: dict, seed: int = 0) -> pd.DataFrame:
    """Scores of the law fitted with a likelihood weighted by compute (``weight=``, each run's
    weight ``compute ** WEIGHT_POWER``, scaled to average 1 in every fit), calibrated as
    ``bs.fit`` does, at the same rolling origins (its own fits, nested ones weighted too)."""
    weighted = df.assign(_weight=df_compute(df, kw) ** WEIGHT_POWER)
    bt = bs.backtest(weighted, split="rolling", cuts=cuts, kind="new_run", levels=LEVELS, seed=seed,
                     discrepancy="calibrate", progress=False, weight="_weight", **sampler, **kw)
    out = bt.per_target.assign(method="compute-weighted", crps=np.nan)
    out["ok"] = np.array([f.ok for f in bt.fits])[out["cut"].to_numpy()]
    return _scored(out)


def _scored(out: pd.DataFrame) -> pd.DataFrame:
    """``out`` with the relative error and the 90% interval score (and CRPS) as fractions of the truth."""
    out["rel_error"] = out["error"] / out["truth"]
    out["interval_score_90"] = interval_score(out, 0.9) / out["truth"]
    out["crps"] = out["crps"] / out["truth"]
    return out


def upper_one(bs, df, kw: dict, rows: pd.DataFrame, cut: int, sampler: dict, seed: int = 0):
    """Scores of the law fitted to the upper half of the range only: at the origin, the rows whose
    log compute lies in the upper half between the smallest run and the origin, calibrated as
    ``bs.fit`` does (its nested origins inside those rows).  None where too few rows remain."""
    from bayescale.evaluate.backtest import forecastable, score

    train = training_rows(df, kw, rows["frontier"].iloc[0])
    logc = np.log10(train["_compute"])
    half = (np.log10(df_compute(df, kw).min()) + np.log10(rows["frontier"].iloc[0])) / 2
    train = _families_with(train[logc >= half], kw, 3).drop(columns="_compute")
    try:
        fitted = bs.fit(train.reset_index(drop=True), progress=False, seed=seed, **sampler, **kw)
    except bs.DataError as err:
        print(f"  upper half at origin {cut}: not fitted ({err})", file=sys.stderr)
        return None
    test = forecastable(fitted, df.loc[rows["row"].to_numpy()])
    if test.empty:
        return None
    part = score(fitted, test, ("new_run",), LEVELS, seed)
    keep = rows.set_index("row").loc[part["row"]]
    part.insert(1, "cut", cut)
    for col in ("frontier", "distance", "distance_bin"):
        part[col] = keep[col].to_numpy()
    part["crps"], part["ok_own"] = np.nan, fitted.ok
    return part.assign(method="upper half")


def _banded(rows: pd.DataFrame, table: pd.DataFrame, method: str) -> pd.DataFrame:
    """Scores of the bands in ``table`` (``median``, ``lo<pct>``, ``hi<pct>``, one row per row of
    ``rows``) for a method that gives bands, not draws (no CRPS)."""
    part = rows[["row", "cut", "frontier", "distance", "distance_bin", "truth"]].reset_index(drop=True)
    for col in ["median", *(f"{side}{round(100 * lv)}" for lv in LEVELS for side in ("lo", "hi"))]:
        part[col] = table[col].to_numpy()
    for level in LEVELS:
        pct = f"{round(level * 100)}"
        part[f"in_{pct}"] = (part[f"lo{pct}"] <= part["truth"]) & (part["truth"] <= part[f"hi{pct}"])
    part["error"], part["crps"] = part["median"] - part["truth"], np.nan
    return part.assign(method=method)


def methods(cal, linear, biased, shrunk):
    """(name, discrepancy) of each method scored at one origin: the law-only band; an error
    growing linearly with normal tails (``curvature=False, tails="normal"``); the calibration
    of ``bs.fit`` (by default); the same with a bias (``bias=True``) and with that bias shrunk
    by its own uncertainty (``bias="shrunk"``)."""
    return (("plain", 0.0), ("linear, normal", linear), ("calibrated", cal), ("with bias", biased),
            ("shrunk bias", shrunk))


def crps(fitted, test: pd.DataFrame, discrepancy, seed: int) -> np.ndarray:
    """Continuous ranked probability score of each forecast, from its draws (lower is better):
    E|X - y| - E|X - X'| / 2 (Gneiting & Raftery 2007), the latter by the sorted-draws identity."""
    from bayescale.result.predictive import predict

    cols = fitted.design.columns
    keys = [c for c in (*cols["x"].values(), cols["group"], cols["run"], cols["se"]) if c and c in test]
    _, draws = predict(fitted.idata.posterior, fitted.structure, fitted.design,
                       test[keys].reset_index(drop=True), "new_run", (0.9,), seed, samples=True,
                       discrepancy=discrepancy)
    return _crps(draws, pd.to_numeric(test[cols["y"]], errors="coerce").to_numpy(dtype=float))


def _crps(draws: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CRPS of each column of ``draws`` (draws x targets) against ``y``."""
    x = np.sort(draws, axis=0)
    m = len(x)
    spread = np.sum((2 * np.arange(1, m + 1) - m - 1)[:, None] * x, axis=0) / m**2
    return np.mean(np.abs(x - y), axis=0) - spread


def interval_score(t: pd.DataFrame, level: float) -> np.ndarray:
    """Gneiting & Raftery's interval score of the central ``level`` band (lower is better)."""
    a, pct = 1 - level, f"{round(level * 100)}"
    lo, hi, y = t[f"lo{pct}"], t[f"hi{pct}"], t["truth"]
    return ((hi - lo) + 2 / a * np.clip(lo - y, 0, None) + 2 / a * np.clip(y - hi, 0, None)).to_numpy()


def summary(t: pd.DataFrame, by: list) -> pd.DataFrame:
    g = t.groupby(by, observed=True, sort=True)
    out = pd.DataFrame({"n": g.size(),
                        "median |rel err| %": 100 * g["rel_error"].apply(lambda v: v.abs().median()),
                        "signed rel err %": 100 * g["rel_error"].median(),
                        "interval score 90 %": 100 * g["interval_score_90"].mean(),
                        "CRPS %": 100 * g["crps"].mean()})
    for level in LEVELS:
        pct = f"{round(level * 100)}"
        out[f"cov{pct}"] = 100 * g[f"in_{pct}"].mean()
    return out.round(2).reset_index()


STYLES = {"plain": "o--", "linear, normal": "d-.", "calibrated": "s-", "with bias": "^:",
          "shrunk bias": "<:", "conformal": "x-", "conformal, calibrated scale": "+-", "stacked": "v-",
          "stacked, shrunk bias": ">-", "upper half": "*--", "compute-weighted": "h--", HUBER: "k.-"}


def accuracy(t: pd.DataFrame, out: Path, plt) -> None:
    """accuracy.png: median absolute error, mean signed error and interval score of each method
    against the distance beyond the origin (all data sets pooled)."""
    panels = (("median |error| of the median, %", lambda g: 100 * g["rel_error"].apply(
                  lambda v: v.abs().median())),
              ("mean signed error of the median, %", lambda g: 100 * g["rel_error"].mean()),
              ("interval score of the 90% band, %", lambda g: 100 * g["interval_score_90"].mean()))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6))
    for ax, (label, stat) in zip(axes, panels):
        for method, style in STYLES.items():
            part = t[(t["method"] == method) & (t["distance"] <= 2.0)]
            if part.empty or (method == "conformal" and "interval" in label):  # off the scale
                continue
            values = stat(part.groupby("distance_bin", observed=True))
            mids = [(iv.left + iv.right) / 2 for iv in values.index]
            ax.plot(mids, values.to_numpy(), style, label=method, ms=4)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set(xlabel="decades of compute beyond the origin", ylabel=label)
    axes[1].axhspan(-0.3, 0.3, color="grey", alpha=0.15, lw=0)  # the target
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=120)
    plt.close(fig)


def figures(t: pd.DataFrame, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(LEVELS), figsize=(3.2 * len(LEVELS), 3.0), sharey=True)
    for ax, level in zip(axes, LEVELS):
        pct = f"{round(level * 100)}"
        for method, style in STYLES.items():
            part = t[t["method"] == method]
            if part.empty:
                continue
            cov = part.groupby("distance_bin", observed=True)[f"in_{pct}"].mean()
            mids = [(iv.left + iv.right) / 2 if np.isfinite(iv.right) else iv.left + 0.25
                    for iv in cov.index]
            ax.plot(mids, cov.to_numpy(), style, label=method)
        ax.axhline(level, color="grey", lw=0.8)
        ax.fill_between([0, 2.5], level - 0.1, level + 0.1, color="grey", alpha=0.15, lw=0)
        ax.set(title=f"{pct}% band", xlabel="decades of compute beyond the origin", ylim=(0, 1.02))
    axes[0].set_ylabel("empirical coverage (all data sets)")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "coverage.png", dpi=120)
    plt.close(fig)

    accuracy(t, out, plt)
    names = list(dict.fromkeys(t["dataset"]))
    fig, axes = plt.subplots(1, len(names), figsize=(3.0 * len(names), 3.0), squeeze=False)
    for ax, name in zip(axes[0], names):
        part = t[(t["dataset"] == name) & (t["method"] == "plain")]
        ax.scatter(part["distance"], 100 * part["rel_error"], s=6, alpha=0.5, c=part["cut"], cmap="viridis")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set(title=name, xlabel="decades beyond the origin")
    axes[0][0].set_ylabel("signed error of the median, % of truth")
    fig.tight_layout()
    fig.savefig(out / "error.png", dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short chains (smoke test)")
    parser.add_argument("--datasets", default=None, help="comma-separated subset")
    parser.add_argument("--cuts", type=int, default=4, help="rolling origins per data set")
    parser.add_argument("--out", default=str(HERE))
    parser.add_argument("--no-stack", action="store_true",
                        help="skip the forecasts stacked over two laws (twice the fits)")
    parser.add_argument("--no-upper", action="store_true",
                        help="skip the fits to the upper half of the range (a third more fits)")
    parser.add_argument("--no-weighted", action="store_true",
                        help="skip the fits with a likelihood weighted by compute (a third more fits)")
    parser.add_argument("--only", choices=("compute-weighted",), default=None,
                        help="score only this method (with --table, to --render it with others)")
    parser.add_argument("--render", default=None, metavar="FILE[,FILE]",
                        help="write RESULTS.md and the figures from per-target tables saved by --table, "
                             "without fitting")
    parser.add_argument("--huber", type=int, default=100, metavar="RESAMPLES",
                        help="bootstrap resamples of the Huber point fit scored beside (0: none)")
    parser.add_argument("--targets", action="store_true",
                        help="forecast the separate held-out targets once (TARGETS.md) instead")
    parser.add_argument("--bootstrap", type=int, default=0, metavar="RESAMPLES",
                        help="score the bootstrap of the Huber point fit instead, on the Chinchilla "
                             "data sets (BOOTSTRAP.md)")
    parser.add_argument("--table", default=None, metavar="FILE",
                        help="also write the per-target scores to FILE (csv; keep it outside the "
                             "project: two of the data sets have no license)")
    args = parser.parse_args(argv)
    if args.only and not args.table:
        parser.error("--only writes only the per-target table: give --table FILE")
    import bayescale as bs

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.targets:
        forecast_targets(bs, out)
        return 0
    if args.bootstrap:
        bootstrap_report(bs, out, args)
        return 0
    sampler = QUICK if args.quick else FULL
    table = datasets(bs)
    if args.render:
        t = pd.concat([pd.read_csv(f) for f in args.render.split(",")], ignore_index=True)
        names = list(dict.fromkeys(t["dataset"]))
        seconds = t.groupby("dataset")["seconds"].sum().to_dict() if "seconds" in t else {}
    else:
        names = args.datasets.split(",") if args.datasets else list(table)
        t, seconds = fit_all(bs, table, names, sampler, args)
    t["distance_bin"] = pd.cut(t["distance"], BINS)
    if args.table:
        t.to_csv(args.table, index=False)
    if args.only:  # one method's scores, for --render with the others
        return 0
    figures(t, out)
    (out / "RESULTS.md").write_text(report(t, table, names, seconds, sampler, args))
    return 0


NEAR = 1.5  # decades: the range of the targets


def goals(t: pd.DataFrame) -> pd.DataFrame:
    """Each method against the three targets over the bins up to ``NEAR`` decades: the mean signed
    error within +-0.3% in every bin; the median absolute error at 1-1.5 decades at least 10%
    below the Huber fit's, on the runs both forecast; 90% coverage in 85-95% in every bin."""
    near = t[t["distance"] <= NEAR]
    huber = near[(near["method"] == HUBER) & (near["distance"] > 1.0)]
    base = huber.set_index(["dataset", "cut", "row"])["rel_error"].abs()
    rows = []
    for method, part in near.groupby("method", sort=True):
        bins = part.groupby("distance_bin", observed=True)
        signed = 100 * bins["rel_error"].mean()
        cov = 100 * bins["in_90"].mean()
        far = part[part["distance"] > 1.0].set_index(["dataset", "cut", "row"])["rel_error"].abs()
        shared = far.index.intersection(base.index)
        ratio = far.loc[shared].median() / base.loc[shared].median() if len(shared) else np.nan
        worst = signed.abs().idxmax()
        rows.append({"method": method,
                     "worst mean signed err %": f"{signed[worst]:+.2f} at {worst}",
                     "signed: misses +-0.3 by": f"{max(abs(signed[worst]) - 0.3, 0):.2f}",
                     "median err 1-1.5 dec / Huber's": f"{ratio:.2f} ({len(shared)} runs)",
                     "error: misses 0.90 by": f"{max(ratio - 0.9, 0):.2f}" if np.isfinite(ratio) else "-",
                     "cov90 by bin %": "/".join(f"{v:.0f}" for v in cov),
                     "cov90: misses 85-95 by": f"{max(85 - cov.min(), cov.max() - 95, 0):.0f}",
                     "interval score 90 % (<=1.5 dec)": round(100 * part["interval_score_90"].mean(), 2)})
    return pd.DataFrame(rows)


def fit_all(bs, table: dict, names: list, sampler: dict, args) -> tuple[pd.DataFrame, dict]:
    """Per-target scores of every method on the data sets ``names``, and each set's seconds."""
    parts, seconds = [], {}
    for name in names:
        df, kw = table[name]
        df = df.reset_index(drop=True)
        started = time.perf_counter()
        own = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if args.only is None:
                own.append(backtest_one(bs, df, kw, args.cuts, sampler,
                                        laws=None if args.no_stack else CANDIDATES[name],
                                        upper=not args.no_upper))
                if args.huber:
                    own.append(bootstrap_one(df, kw, args.cuts, args.huber))
            if args.only == "compute-weighted" or (args.only is None and not args.no_weighted):
                own.append(weighted_one(bs, df, kw, args.cuts, sampler))
        seconds[name] = time.perf_counter() - started
        # the seconds of the set's methods in one column, so that --render can sum them over tables
        parts += [p.assign(dataset=name, seconds=seconds[name] if k == 0 else 0.0) for k, p in enumerate(own)]
        print(f"{name}: {seconds[name]:.0f} s", file=sys.stderr)
    return pd.concat(parts, ignore_index=True), seconds


def targets(per_bin: pd.DataFrame) -> str:
    """One line per method: the bins up to 1.5 decades where a band misses nominal by over 10."""
    lines = []
    for method, part in per_bin.groupby("method", sort=False):
        near = part[[iv.right <= 1.5 for iv in part["distance_bin"]]]
        misses = [f"{iv} cov{round(100 * lv)} {row[f'cov{round(100 * lv)}']:.0f}"
                  for iv, row in zip(near["distance_bin"], near.to_dict("records")) for lv in LEVELS
                  if abs(row[f"cov{round(100 * lv)}"] - 100 * lv) > 10]
        lines.append(f"- {method}: " + ("met" if not misses else "missed at " + "; ".join(misses)))
    return "\n".join(lines)


def new_family() -> str:
    """The leave-one-family-out summary of ``case_studies/new_family`` (its own run), as written."""
    path = HERE.parent / "new_family" / "RESULTS.md"
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8")
    table = text[text.index("## Per data set"):text.index("## Per family")].split("\n", 1)[1]
    return ("## New families (leave one family out; `case_studies/new_family`, its own run)\n\n"
            "Each family keeps its 1 or 2 smallest runs; the rest of it is forecast by four fits. "
            "From `case_studies/new_family/RESULTS.md`:\n" + table.rstrip() + "\n")


def report(t, table, names, seconds, sampler, args) -> str:
    import bayescale as bs

    per_set = summary(t, ["dataset", "method"])
    per_bin = summary(t, ["method", "distance_bin"])
    per_set_bin = summary(t[t["distance"] <= 1.5], ["dataset", "method"])
    rates = (t[t["method"] == "calibrated"].groupby(["dataset", "cut"])
             .agg(frontier=("frontier", "first"), rate=("rate", "first"),
                  curvature=("curvature", "first"), dof=("dof", "first"), gate_passed=("ok", "first"),
                  targets=("row", "size")).reset_index())
    biased = (t[t["method"] == "with bias"].groupby(["dataset", "cut"])
              .agg(rate_with_bias=("rate", "first"), bias=("bias", "first")).reset_index())
    shrunk = (t[t["method"] == "shrunk bias"].groupby(["dataset", "cut"])
              .agg(shrunk_bias=("bias", "first")).reset_index())
    linear = (t[t["method"] == "linear, normal"].groupby(["dataset", "cut"])
              .agg(linear_rate=("rate", "first")).reset_index())
    rates = (rates.merge(biased, on=["dataset", "cut"]).merge(shrunk, on=["dataset", "cut"])
             .merge(linear, on=["dataset", "cut"]))
    rates["frontier"] = rates["frontier"].map(lambda v: f"{v:.3g}")
    numbers = ["rate", "curvature", "rate_with_bias", "bias", "shrunk_bias", "linear_rate"]
    rates[numbers] = rates[numbers].round(4)
    stack_laws = "; ".join(f"`{n}`: " + ", ".join(f"`{law}`" for law in CANDIDATES[n]) for n in names)
    weights = ""
    if "stacked" in set(t["method"]):
        w = (t[t["method"] == "stacked"].groupby(["dataset", "cut"])
             .agg(own_law_weight=("weight", "first"), gate_passed=("stack_ok", "first")).reset_index())
        weights = ("\n## Stacking weight of each data set's own law, per origin\n\n"
                   + markdown_table(w.round(3)) + "\n")
    setup = "\n".join(f"- `{n}`: {len(table[n][0])} rows, law `{table[n][1]['law']}`, y "
                      f"`{table[n][1]['y']}`, group `{table[n][1].get('group')}`; "
                      f"{seconds.get(n, np.nan):.0f} s" for n in names)
    return f"""# Calibrated extrapolation: rolling-origin backtests

`python case_studies/extrapolation/run.py{' --quick' if args.quick else ''}` on {_dt.date.today()}
(bayescale {bs.__version__}); {args.cuts} rolling origins per data set (quantiles 0.3-0.8 of log
compute), {sampler['chains']} chains x ({sampler['warmup']} + {sampler['draws']}) per fit, band of
one new run (`kind="new_run"`).

Each origin's fit forecasts every run beyond it; each forecast is scored four times from
the same fit: **plain** (law-only band); **linear, normal** (widened by normal noise of
sd `rate * d` at `d` decades, the rate measured by a rolling backtest nested inside that
origin's training rows, 3 inner origins: `bs.calibrate(..., curvature=False,
tails="normal")`); **calibrated** (what `bs.fit` does by default: the same nested
errors fit a scale `d * sqrt(rate^2 + curvature^2 d^2)`, the second term growing as a
drifting exponent makes the error grow, and the noise is Student-t with as many degrees
of freedom as inner origins, since the scale is learned from that many misfits); **with
bias** (also shifted by the mean error per decade that the same nested backtest
measured, and widened by that bias's own uncertainty: `bs.calibrate(..., bias=True)`);
**shrunk bias** (the same bias shrunk towards 0 by its own uncertainty `v`, positive-part
James-Stein `bias * max(0, 1 - v / bias^2)`, the band as wide: `bias="shrunk"`);
**conformal** (split-conformal, locally weighted: the plain median plus or minus the
conformal quantile of |error| / plain band sd over the same nested backtest's held-out rows,
times the row's own plain sd, on the link scale; no CRPS, as it is a band, not draws);
**conformal, calibrated scale** (the same with the calibrated scale in place of the plain
sd, `sqrt(sd^2 + d^2 (rate^2 + curvature^2 d^2))`: the empirical quantile in place of the
calibration's Student-t);
**stacked** (`bs.forecast` on the origin's training rows over two laws, {stack_laws}: each
law fitted there and at 3 inner origins, weighted by stacking its leave-future-out scores, the
forecast the mixture of the calibrated draws; its own fits, so no CRPS is computed);
**stacked, shrunk bias** (the same stack, each law's calibration re-estimated from its own
held-out errors with `bias="shrunk"`);
**upper half** (the law fitted only to the runs in the upper half of the log-compute range
between the smallest run and the origin, calibrated as `bs.fit` does inside those runs; its
own fits; families with fewer than 3 such runs are not forecast);
**compute-weighted** (the law fitted with each run's log-likelihood weighted by its compute to
the power {WEIGHT_POWER} (a 10x range over 4 decades; `bs.fit(..., weight=)`, scaled to average
1 in each fit), calibrated as `bs.fit` does with its nested fits weighted alike; its own fits);
**{HUBER}** (the field's practice: per family, the law fitted by Epoch's Huber loss on log L
from a grid of starts, Chinchilla's five parameters or `E + A x^-alpha` for a law of one
input, refitted to {args.huber - 1} bootstrap resamples; percentile bands of the law, no run
noise; a family with fewer runs than 6 (Chinchilla) or 4 up to an origin is not forecast).
Nothing beyond an origin is used for its
forecast. Distance: decades of compute beyond the origin (of examples seen for
`revisiting_nsl`; the discrepancy itself is applied per family, by `predict`'s
`distance`). Interval score of the 90% band (Gneiting & Raftery 2007) and CRPS from the
draws, both as % of the truth, lower is better; the interval score is the width plus 20x
the miss. Only aggregates are reported (two of these data sets have no license).

{setup}

## The targets, up to 1.5 decades (pooled over the data sets)

Mean signed error within +-0.3% in every distance bin; median absolute error at 1-1.5
decades at least 10% below the Huber fit's (a ratio of at most 0.90, on the runs both
forecast); 90% coverage within 85-95% in every bin; and among those, the smallest interval
score. Bins: (0, 0.25], (0.25, 0.5], (0.5, 1], (1, 1.5] decades.

{markdown_table(goals(t))}

![accuracy](accuracy.png)

{new_family()}

## Pooled coverage by distance (all data sets)

{markdown_table(per_bin)}

Target: every band within 10 points of nominal in every bin up to 1.5 decades.
{targets(per_bin)}

![coverage](coverage.png)

## Per data set, all distances

{markdown_table(per_set)}

## Per data set, up to 1.5 decades

{markdown_table(per_set_bin)}

## Signed error of the plain median against distance

![error](error.png)

## The rate each origin measured inside its own training rows

{markdown_table(rates)}
{weights}"""


if __name__ == "__main__":
    sys.exit(main())
