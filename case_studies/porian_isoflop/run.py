"""Porian et al. (2024) IsoFLOP optima: the compute-optimal exponent per training recipe, as families.

One command::

    python case_studies/porian_isoflop/run.py [--quick] [--out DIR]

Writes RESULTS.md, nstar.png, exponents.png and loss.png into DIR (default: this folder).
The data are read from the shared data folder through ``bayescale.datasets``; they are never copied here.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayescale as bs
from bayescale.viz.report import markdown_table

HERE = Path(__file__).resolve().parent

BASELINE = "rw/base/long/kaplan/kaplan/train"
TUNED = "rw/tuned/short/const/standard/val"

# The paper's story read across settings, one chain per (dataset, parameter count); the first
# step changes the parameter count (and, for the standard count, the loss from train to val).
CHAINS = {
    "rw, standard count": [BASELINE, "rw/base/long/kaplan/standard/val", "rw/base/short/kaplan/standard/val",
                           "rw/base/short/chinchilla/standard/val", TUNED],
    "rw, attention count": [BASELINE, "rw/base/long/kaplan/attention/train",
                            "rw/base/short/kaplan/attention/train",
                            "rw/base/short/chinchilla/attention/train",
                            "rw/tuned/short/const/attention/train"],
    "owt2, standard count": ["owt2/base/long/kaplan/kaplan/train", "owt2/base/long/kaplan/standard/val",
                             "owt2/base/short/kaplan/standard/val", "owt2/base/short/chinchilla/standard/val",
                             "owt2/tuned/short/const/standard/val"],
}
STEP_NAMES = ["parameter count (+ val loss)", "short warmup", "chinchilla (cosine) decay",
              "tuned hparams, constant LR"]
EXTRA_CONTRASTS = [
    ("end to end (rw)", BASELINE, TUNED),
    ("end to end (owt2)", "owt2/base/long/kaplan/kaplan/train", "owt2/tuned/short/const/standard/val"),
    ("tuning alone, Kaplan count (rw)", BASELINE, "rw/tuned/long/const/kaplan/train"),
    ("dataset: owt2 − rw, baseline", "owt2/base/long/kaplan/kaplan/train", BASELINE),
    ("dataset: owt2 − rw, tuned", "owt2/tuned/short/const/standard/val", TUNED),
]
ORDER = [s for chain in CHAINS.values() for s in chain]
ORDER = list(dict.fromkeys(ORDER[:5] + ["rw/tuned/long/const/kaplan/train"] + ORDER[5:]))
QUICK_SETTINGS = CHAINS["rw, standard count"]
LOSS_SETTINGS = {"full": [BASELINE, TUNED, "owt2/base/long/kaplan/kaplan/train",
                          "owt2/tuned/short/const/standard/val"],
                 "quick": [BASELINE, TUNED]}
# Porian et al. fit L*(C) on 1e16 < C < 5e17 (fit_loss_with_saturation in their analysis.py).
LOSS_WINDOW = (1e16, 5e17)
HOLD_OUT = 2  # largest budgets held out per setting in the N* backtest
LEVELS = (0.5, 0.8, 0.9, 0.95)

FULL = {"chains": 4, "warmup": 1000, "draws": 1000}
QUICK = {"chains": 2, "warmup": 300, "draws": 300}


# ---- data ----------------------------------------------------------------------------
def load_optima(bs, settings) -> tuple[pd.DataFrame, int]:
    """The authors' per-budget optima of ``settings`` with known errors on the natural scale.

    ``n_star_std`` and ``loss_star_std`` are standard deviations of the natural log of the
    bootstrap optima (``np.std(np.log(...))`` in the authors' analysis.py); bayescale's ``se``
    is on the outcome's scale and divided by it internally (``se_log = se / y``), so the
    columns passed are std x value.  Budgets where no interior optimum was found are NaN
    upstream and are dropped.
    """
    raw = bs.datasets.load("porian_isoflop", table="optima")
    raw = raw[raw["setting"].isin(settings)]
    df = raw.dropna(subset=["n_opt", "n_star_std", "loss_opt"]).reset_index(drop=True)
    df["n_se"] = df["n_star_std"] * df["n_opt"]
    df["loss_se"] = df["loss_star_std"] * df["loss_opt"]
    return df, len(raw) - len(df)


def published(bs) -> pd.DataFrame:
    """The authors' fits per setting: N* exponent (basic, weighted, bs_median), coefficient, L*(C)."""
    fr = bs.datasets.load("porian_isoflop", table="fits")
    out = {}
    for variant in ("basic", "weighted", "bs_median"):
        sub = fr[fr["fit"] == variant].set_index("setting")
        out[f"a_{variant}"] = sub["n_exponent"]
    basic = fr[fr["fit"] == "basic"].set_index("setting")
    out |= {"G_basic": basic["n_coef"], "A": basic["A"], "E": basic["E"], "alpha": basic["alpha"]}
    return pd.DataFrame(out)


def held_out_largest(df: pd.DataFrame) -> np.ndarray:
    """Mask of each setting's ``HOLD_OUT`` largest compute budgets (True = held out)."""
    rank = df.groupby("setting")["flops"].rank(method="first", ascending=False)
    return (rank <= HOLD_OUT).to_numpy()


def above_loss_window(df: pd.DataFrame) -> np.ndarray:
    """Mask of the budgets above the authors' L*(C) fitting window."""
    return (df["flops"] >= LOSS_WINDOW[1]).to_numpy()


# ---- fits ------------------------------------------------------------------------------
def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # recorded in fit.warnings and written to RESULTS.md
        return fn(*args, **kwargs)


def fit_nstar(bs, df, sampler, pool=None, se="n_se"):
    """Hierarchical ``loglinear`` fit of N*(C), settings as families."""
    pool = {"a": "partial"} if pool is None else pool
    return _quiet(bs.fit, df, law="loglinear", y="n_opt", x="flops", group="setting", se=se,
                  pool=pool, seed=0, progress=False, **sampler)


LOSS_POOL = {"E": "none", "a": "none", "gamma": "none"}  # each setting its own L*(C)


def fit_loss(bs, df, sampler, **kw):
    """``compute`` law L*(C) per setting (one fit, parameters per family)."""
    return _quiet(bs.fit, df, law="compute", y="loss_opt", x="flops", group="setting", se="loss_se",
                  pool=LOSS_POOL, seed=0, progress=False, **sampler, **kw)


def gate(fit) -> str:
    d = fit.diagnostics
    div = int(np.asarray(fit.idata.sample_stats["diverging"]).sum())
    return (f"ok={fit.ok}, max R-hat {float(d['r_hat'].max()):.4f}, "
            f"min bulk ESS {float(d['ess_bulk'].min()):.0f}, divergences {div}")


def warn_lines(fit) -> list[str]:
    return [f"- `{w.kind}`: {w.message}" for w in fit.warnings] or ["- none"]


# ---- tables ----------------------------------------------------------------------------
def _yn(v: bool) -> str:
    return "yes" if v else "**no**"


def exponent_draws(fit) -> pd.DataFrame:
    """Posterior draws of the exponent a, one column per setting."""
    from bayescale.result.predictive import draws

    return pd.DataFrame(draws(fit.idata.posterior, "a"), columns=fit.design.families)


def exponent_table(fit, pub: pd.DataFrame, order) -> pd.DataFrame:
    """Per setting: posterior median and 90%/95% intervals of a next to the published fits."""
    a = exponent_draws(fit)
    rows = []
    for s in order:
        q = np.quantile(a[s], [0.025, 0.05, 0.5, 0.95, 0.975])
        p = pub.loc[s]
        rows.append({
            "setting": s, "budgets": int((fit.design.frame["setting"] == s).sum()),
            "posterior median": f"{q[2]:.3f}", "90% interval": f"{q[1]:.3f} – {q[3]:.3f}",
            "95% interval": f"{q[0]:.3f} – {q[4]:.3f}",
            "published basic": f"{p['a_basic']:.3f}", "published weighted": f"{p['a_weighted']:.3f}",
            "published bs_median": f"{p['a_bs_median']:.3f}",
            "basic in 90%": _yn(q[1] <= p["a_basic"] <= q[3]),
            "basic in 95%": _yn(q[0] <= p["a_basic"] <= q[4]),
            "(median − basic)/sd": f"{(q[2] - p['a_basic']) / a[s].std(ddof=1):+.2f}",
        })
    return pd.DataFrame(rows)


def contrast_rows(fit, pub: pd.DataFrame) -> pd.DataFrame:
    """``bs.contrast(fit, "a", s1, s2)`` for each step of each chain and a few end-to-end pairs."""
    families = set(fit.design.families)
    pairs = [(f"{chain}: {name}", s1, s2) for chain, path in CHAINS.items()
             for name, s1, s2 in zip(STEP_NAMES, path[:-1], path[1:])]
    pairs += EXTRA_CONTRASTS
    rows = []
    for name, s1, s2 in pairs:
        if s1 not in families or s2 not in families:
            continue
        c = bs.contrast(fit, "a", s1, s2)
        rows.append({
            "step": name, "s1": s1, "s2": s2,
            "P(a_s1 > a_s2)": f"{c['p_greater']:.3f}",
            "a_s1 − a_s2 median": f"{c['diff_median']:+.3f}",
            "90% interval": f"{c['diff_lo90']:+.3f} – {c['diff_hi90']:+.3f}",
            "published basic diff": f"{pub.loc[s1, 'a_basic'] - pub.loc[s2, 'a_basic']:+.3f}",
        })
    return pd.DataFrame(rows)


def sensitivity_table(fits: dict, order) -> pd.DataFrame:
    """Posterior median [90%] of a per setting under each model variant."""
    rows = []
    for s in order:
        row = {"setting": s}
        for name, fit in fits.items():
            a = exponent_draws(fit)[s]
            lo, med, hi = np.quantile(a, [0.05, 0.5, 0.95])
            row[name] = f"{med:.3f} [{lo:.3f} – {hi:.3f}]"
        rows.append(row)
    return pd.DataFrame(rows)


# ---- backtests -------------------------------------------------------------------------
def observed_band(fit, test: pd.DataFrame, se_log: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """Forecast of the *measured* optimum: a new run plus the held-out row's known error.

    ``kind="new_run"`` adds the fitted noise sigma but not the bootstrap error of the held-out
    optimum itself, which here is the larger part; this band adds it, draw by draw.
    """
    from bayescale.result.predictive import predict

    new = test[["flops", "setting"]].reset_index(drop=True)
    _, samples = _quiet(predict, fit.idata.posterior, fit.structure, fit.design, new, "new_run",
                        LEVELS, seed, samples=True)
    rng = np.random.default_rng(seed + 1)
    samples = samples * np.exp(se_log[None, :] * rng.standard_normal(samples.shape))
    out = pd.DataFrame({"median": np.median(samples, 0)})
    for level in LEVELS:
        lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
        out[f"lo{100 * level:g}"], out[f"hi{100 * level:g}"] = lo, hi
    return out


def ols_forecast(train: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """The paper's method on the training budgets: least squares of log N* on log C per setting,
    with classical prediction intervals (Student t, n − 2 degrees of freedom)."""
    from scipy import stats

    rows = []
    for _, t in test.iterrows():
        g = train[train["setting"] == t["setting"]]
        x, y = np.log(g["flops"].to_numpy()), np.log(g["n_opt"].to_numpy())
        slope, icept = np.polyfit(x, y, 1)
        resid = y - (icept + slope * x)
        n = len(x)
        s = np.sqrt(resid @ resid / (n - 2))
        x0 = np.log(t["flops"])
        spread = s * np.sqrt(1 + 1 / n + (x0 - x.mean()) ** 2 / ((x - x.mean()) ** 2).sum())
        mid = icept + slope * x0
        row = {"median": np.exp(mid)}
        for level in LEVELS:
            half = stats.t.ppf((1 + level) / 2, n - 2) * spread
            row[f"lo{100 * level:g}"], row[f"hi{100 * level:g}"] = np.exp(mid - half), np.exp(mid + half)
        rows.append(row)
    return pd.DataFrame(rows)


def nstar_backtest(bs, df, sampler) -> tuple[pd.DataFrame, pd.DataFrame, object]:
    """Hold out each setting's largest budgets; score bayescale and least squares on them."""
    bt = _quiet(bs.backtest, df, law="loglinear", split=held_out_largest, kind=("mean", "new_run"),
                levels=LEVELS, y="n_opt", x="flops", group="setting", se="n_se",
                pool={"a": "partial"}, progress=False, **sampler)
    train, test = df.loc[~bt.held_out], df.loc[bt.held_out].reset_index(drop=True)
    obs = observed_band(bt.fit, test, test["n_star_std"].to_numpy())
    ols = ols_forecast(train, test)
    truth = test["n_opt"].to_numpy()

    def score(name, band):
        err = np.abs(band["median"].to_numpy() - truth) / truth
        row = {"forecast": name, "n": len(truth), "median |rel err|": f"{100 * np.median(err):.1f}%",
               "mean |rel err|": f"{100 * np.mean(err):.1f}%"}
        for level in LEVELS:
            pct = f"{100 * level:g}"
            inside = (truth >= band[f"lo{pct}"].to_numpy()) & (truth <= band[f"hi{pct}"].to_numpy())
            row[f"coverage {pct}%"] = f"{inside.mean():.2f}"
        return row

    per = {k: bt.per_target[bt.per_target["kind"] == k].reset_index(drop=True) for k in ("mean", "new_run")}
    agg = pd.DataFrame([
        score("bayescale, kind=\"mean\" (the law)", per["mean"]),
        score("bayescale, kind=\"new_run\"", per["new_run"]),
        score("bayescale, new_run + held-out bootstrap error", obs),
        score("least squares per setting (paper's method), t interval", ols),
    ])
    detail = pd.DataFrame({
        "setting": test["setting"], "C": test["flops"].map(lambda v: f"{v:.3g}"),
        "observed N*": truth, "bootstrap sd (log)": test["n_star_std"].map(lambda v: f"{v:.3f}"),
        "bayescale median": per["mean"]["median"].to_numpy(),
        "90% (law)": [f"{lo:.3g} – {hi:.3g}" for lo, hi in zip(per["mean"]["lo90"], per["mean"]["hi90"])],
        "90% (observed)": [f"{lo:.3g} – {hi:.3g}" for lo, hi in zip(obs["lo90"], obs["hi90"])],
        "least squares": ols["median"].to_numpy(),
    })
    for col in ("observed N*", "bayescale median", "least squares"):
        detail[col] = detail[col].map(lambda v: f"{v:.3g}")
    detail["rel err bayescale"] = [f"{100 * (m - t) / t:+.1f}%" for m, t in
                                   zip(per["mean"]["median"], truth)]
    detail["rel err least squares"] = [f"{100 * (m - t) / t:+.1f}%" for m, t in zip(ols["median"], truth)]
    return agg, detail, bt


def loss_tables(fit, pub, bt=None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """γ and E per setting (all budgets, and the window fit of the backtest) against the paper."""
    from bayescale.result.predictive import draws

    rows = []
    fits = {"all budgets": fit} | ({f"C < {LOSS_WINDOW[1]:.0e} (paper's window)": bt.fit} if bt else {})
    for label, f in fits.items():
        gamma, e = draws(f.idata.posterior, "gamma"), draws(f.idata.posterior, "E")
        for k, s in enumerate(f.design.families):
            g = np.quantile(gamma[:, k], [0.05, 0.5, 0.95])
            ee = np.quantile(e[:, k], [0.05, 0.5, 0.95])
            rows.append({"setting": s, "fitted on": label,
                         "budgets": int((f.design.frame["setting"] == s).sum()),
                         "γ median [90%]": f"{g[1]:.3f} [{g[0]:.3f} – {g[2]:.3f}]",
                         "E median [90%]": f"{ee[1]:.2f} [{ee[0]:.2f} – {ee[2]:.2f}]",
                         "paper α (window)": f"{pub.loc[s, 'alpha']:.3f}",
                         "paper E (window)": f"{pub.loc[s, 'E']:.2f}",
                         "gate": "ok" if f.ok else "**failed**"})
    table = pd.DataFrame(rows)
    if bt is None:
        return table, None
    per = bt.per_target[bt.per_target["kind"] == "new_run"].reset_index(drop=True)
    frows = []
    for s in bt.fit.design.families:
        sel = per[per["family"] == s]
        truth, med = sel["truth"].to_numpy(), sel["median"].to_numpy()
        c = sel["flops"].to_numpy()
        paper = pub.loc[s, "E"] + pub.loc[s, "A"] * c ** (-pub.loc[s, "alpha"])
        frows.append({
            "setting": s, "held-out budgets": f"{len(sel)} ({c.min():.2g} – {c.max():.2g})",
            "bayescale median |rel err|": f"{100 * np.median(np.abs(med - truth) / truth):.2f}%",
            "at the largest C": f"{100 * (med[-1] - truth[-1]) / truth[-1]:+.2f}%",
            "coverage 90% (new_run)": f"{sel['in_90'].mean():.2f}",
            "paper's fit median |rel err|": f"{100 * np.median(np.abs(paper - truth) / truth):.2f}%",
            "paper at the largest C": f"{100 * (paper[-1] - truth[-1]) / truth[-1]:+.2f}%",
        })
    return table, pd.DataFrame(frows)


# ---- figures ---------------------------------------------------------------------------
def figure_nstar(fit, pub, order, path):
    import matplotlib.pyplot as plt

    order = [s for s in order if s in fit.design.families]
    ncol = min(5, len(order))
    nrow = int(np.ceil(len(order) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.3 * ncol, 2.9 * nrow), sharex=True, sharey=True,
                             squeeze=False)
    data = fit.design.frame
    grid = np.geomspace(8e15, 4e19, 40)
    for ax, s in zip(axes.ravel(), order):
        new = pd.DataFrame({"flops": grid, "setting": s})
        p = _quiet(fit.predict, new, kind="mean", levels=(0.9,))
        ax.fill_between(grid, p["lo90"], p["hi90"], color="C0", alpha=0.3, lw=0, label="90% band")
        ax.plot(grid, p["median"], color="C0", lw=1.2, label="posterior median")
        ax.plot(grid, pub.loc[s, "G_basic"] * grid ** pub.loc[s, "a_basic"], "k--", lw=0.8,
                label="published fit")
        d = data[data["setting"] == s]
        err = d["n_se"].to_numpy() / d["n_opt"].to_numpy()
        yerr = [d["n_opt"] * (1 - np.exp(-err)), d["n_opt"] * (np.exp(err) - 1)]
        ax.errorbar(d["flops"], d["n_opt"], yerr=yerr, fmt="o", ms=2.5, color="C3", lw=0.7,
                    label="optimum ± bootstrap sd")
        a = np.quantile(exponent_draws(fit)[s], [0.05, 0.5, 0.95])
        ax.set_title(f"{s}\na = {a[1]:.3f} [{a[0]:.3f}, {a[2]:.3f}]", fontsize=7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(order):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("compute C (FLOPs)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("N* (parameters)", fontsize=8)
    axes[0, 0].legend(fontsize=6, loc="upper left")
    fig.suptitle("Compute-optimal size N*(C) per setting: hierarchical loglinear fit (a partially pooled)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def figure_exponents(fit, pub, order, path):
    import matplotlib.pyplot as plt

    from bayescale.result.predictive import draws

    order = [s for s in order if s in fit.design.families]
    a = exponent_draws(fit)
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(order) + 1.2))
    y = np.arange(len(order))[::-1]
    for yi, s in zip(y, order):
        q = np.quantile(a[s], [0.05, 0.25, 0.5, 0.75, 0.95])
        ax.plot([q[0], q[4]], [yi, yi], color="C0", lw=1.2)
        ax.plot([q[1], q[3]], [yi, yi], color="C0", lw=4)
        ax.plot(q[2], yi, "o", color="white", mec="C0", ms=5)
    ax.plot(pub.loc[order, "a_basic"], y, "kx", ms=6, label="published (basic least squares)")
    ax.plot(pub.loc[order, "a_weighted"], y, "+", color="C3", ms=7, label="published (weighted)")
    pop = draws(fit.idata.posterior, "a_pop_z")
    ax.axvline(np.median(pop), color="grey", lw=0.8, ls=":", label="population mean (median)")
    ax.set_yticks(y)
    ax.set_yticklabels(order, fontsize=7)
    ax.set_xlabel("compute-optimal exponent a  (N* ∝ C^a)")
    ax.set_title("Posterior of a per setting: median, 50% and 90% intervals", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def figure_loss(fit, bt, pub, path):
    import matplotlib.pyplot as plt

    families = fit.design.families
    fig, axes = plt.subplots(1, len(families), figsize=(3.6 * len(families), 3.2), squeeze=False)
    grid = np.geomspace(1e16, 3e19, 40)
    for ax, s in zip(axes[0], families):
        new = pd.DataFrame({"flops": grid, "setting": s})
        p = _quiet(fit.predict, new, kind="mean", levels=(0.9,))
        ax.fill_between(grid, p["lo90"], p["hi90"], color="C0", alpha=0.3, lw=0)
        ax.plot(grid, p["median"], color="C0", lw=1.2, label="all budgets")
        if bt is not None:
            q = _quiet(bt.fit.predict, new, kind="mean", levels=(0.9,))
            ax.fill_between(grid, q["lo90"], q["hi90"], color="C2", alpha=0.2, lw=0)
            ax.plot(grid, q["median"], color="C2", lw=1.2, label=f"C < {LOSS_WINDOW[1]:.0e} only")
            ax.axvline(LOSS_WINDOW[1], color="grey", lw=0.6, ls=":")
        ax.plot(grid, pub.loc[s, "E"] + pub.loc[s, "A"] * grid ** (-pub.loc[s, "alpha"]), "k--", lw=0.8,
                label="published (window fit)")
        d = fit.design.frame[fit.design.frame["setting"] == s]
        ax.plot(d["flops"], d["loss_opt"], "o", color="C3", ms=3, label="L* at each budget")
        ax.set_xscale("log")
        ax.set_title(s, fontsize=7)
        ax.set_xlabel("compute C (FLOPs)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("loss at the optimum L*", fontsize=8)
    axes[0, 0].legend(fontsize=6)
    fig.suptitle("L*(C) = E + A·C^-γ (compute law): posterior median and 90% band", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


# ---- main ------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"{len(QUICK_SETTINGS)} settings, chains=2, warmup=300, draws=300 (for tests)")
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: this folder)")
    args = ap.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")

    import bayescale as bs
    from bayescale.result.io import versions

    t0, cpu0 = time.perf_counter(), time.process_time()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    quick = args.quick
    sampler = QUICK if quick else FULL
    settings = QUICK_SETTINGS if quick else ORDER
    order = [s for s in ORDER if s in settings]
    df, dropped = load_optima(bs, settings)
    pub = published(bs)
    timings = {}

    # 1. N*(C): hierarchical loglinear, a partially pooled, bootstrap sds as known errors
    t = time.perf_counter()
    main_fit = fit_nstar(bs, df, sampler)
    timings["N* fit"] = time.perf_counter() - t
    etab = exponent_table(main_fit, pub, order)
    ctab = contrast_rows(main_fit, pub)
    p_base_tuned = float(bs.contrast(main_fit, "a", BASELINE, TUNED)["p_greater"])
    s = main_fit.summary().set_index("parameter")
    pop = {k: s.loc[k] for k in ("a_pop_z", "a_tau", "sigma")}
    resid_ratio = _scatter_ratio(df)

    # sensitivity: no pooling of a, and no known errors (noise learned); full run only
    sens = None
    if not quick:
        t = time.perf_counter()
        variants = {"partial pooling, known se (main)": main_fit,
                    "no pooling of a, known se": fit_nstar(bs, df, sampler, pool={"a": "none"}),
                    "partial pooling, no se (σ learned)": fit_nstar(bs, df, sampler, se=None)}
        timings["sensitivity fits"] = time.perf_counter() - t
        sens = sensitivity_table(variants, order)
        sens_gates = {k: gate(v) for k, v in variants.items()}

    # 2. backtest: each setting's two largest budgets held out
    t = time.perf_counter()
    bt_agg, bt_detail, bt = nstar_backtest(bs, df, sampler)
    timings["N* backtest"] = time.perf_counter() - t

    # 3. L*(C): the compute law, all budgets; the paper's window as a backtest (full run)
    loss_settings = LOSS_SETTINGS["quick" if quick else "full"]
    ldf = df[df["setting"].isin(loss_settings)].reset_index(drop=True)
    t = time.perf_counter()
    loss_fit = fit_loss(bs, ldf, sampler)
    loss_bt = None
    if not quick:
        # 6 budgets for 3 parameters and the noise: a long warmup and small steps
        loss_bt = _quiet(bs.backtest, ldf, law="compute", split=above_loss_window, kind="new_run",
                         levels=LEVELS, y="loss_opt", x="flops", group="setting", se="loss_se",
                         pool=LOSS_POOL, progress=False, chains=sampler["chains"], warmup=2000,
                         draws=sampler["draws"], target_accept=0.99)
    timings["L* fits"] = time.perf_counter() - t
    ltab, lfore = loss_tables(loss_fit, pub, loss_bt)

    # 4. figures
    figure_nstar(main_fit, pub, order, out / "nstar.png")
    figure_exponents(main_fit, pub, order, out / "exponents.png")
    figure_loss(loss_fit, loss_bt, pub, out / "loss.png")
    wall = time.perf_counter() - t0
    timings["CPU time of the process, all threads"] = time.process_time() - cpu0

    text = _results(args, sampler, df, dropped, order, main_fit, etab, ctab, p_base_tuned, pop,
                    resid_ratio, sens, sens_gates if sens is not None else None, bt, bt_agg, bt_detail,
                    loss_fit, loss_bt, ltab, lfore, timings, wall, versions())
    (out / "RESULTS.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


def _scatter_ratio(df: pd.DataFrame) -> float:
    """RMS of least-squares residuals of log N* over the RMS bootstrap sd, pooled over settings."""
    res, sds = [], []
    for _, g in df.groupby("setting"):
        x, y = np.log(g["flops"]), np.log(g["n_opt"])
        fit = np.polyfit(x, y, 1)
        r = y - np.polyval(fit, x)
        res.append(r.to_numpy() * np.sqrt(len(g) / (len(g) - 2)))
        sds.append(g["n_star_std"].to_numpy())
    return float(np.sqrt(np.mean(np.concatenate(res) ** 2)) / np.sqrt(np.mean(np.concatenate(sds) ** 2)))


def _results(args, sampler, df, dropped, order, fit, etab, ctab, p_base_tuned, pop, resid_ratio, sens,
             sens_gates, bt, bt_agg, bt_detail, loss_fit, loss_bt, ltab, lfore, timings, wall, vers) -> str:
    quick = args.quick
    inside90 = int((etab["basic in 90%"] == "yes").sum())
    inside95 = int((etab["basic in 95%"] == "yes").sum())
    misses = etab.loc[etab["basic in 95%"] != "yes", "setting"].tolist()
    miss_line = ("every published basic exponent lies inside the fitted 95% interval." if not misses else
                 f"published basic exponent outside the fitted 95% interval for: {', '.join(misses)}.")
    scatter_note = ("the known errors are larger than the scatter they are meant to explain, so σ is pushed\n"
                    "  to ~0 and the intervals are conservative." if resid_ratio < 1 else
                    "the scatter exceeds the known errors, and σ takes up the rest.")
    sens_part = ""
    if sens is not None:
        sens_part = f"""
## 2b. Sensitivity: pooling and the known errors

Posterior median [90%] of a under three variants (same sampler). Gates:
{chr(10).join(f'- {k}: {v}' for k, v in sens_gates.items())}

{markdown_table(sens)}
"""
    loss_bt_part = ""
    if lfore is not None:
        loss_bt_part = f"""
Forecast of the held-out budgets C ≥ {LOSS_WINDOW[1]:.0e} from the fit on the paper's window (`bs.backtest`,
callable split), next to the paper's own window fit (A, E, α of `fit_results.csv`, basic). Gate of the window
fit: {gate(loss_bt.fit)}.

{markdown_table(lfore)}
"""
    return f"""# Porian et al. (2024) IsoFLOP optima — results

Generated {_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} by
`python case_studies/porian_isoflop/run.py{' --quick' if quick else ''}`.
{'**QUICK MODE** (5 settings, short chains, for tests only; do not quote these numbers).' if quick else ''}

## Settings
- Data: `bs.datasets.load("porian_isoflop", table="optima")`, {len(order)} settings, {len(df)} budgets
  ({dropped} budgets without an interior optimum, NaN upstream, dropped).
- Law: `loglinear`, N* = c·(C/C_ref)^a, y = `n_opt`, x = `flops`, `group="setting"`, `pool={{"a": "partial"}}`
  (c is partially pooled by default), known error `se = n_star_std · n_opt` (bootstrap sd of log N*).
- Sampler: NUTS, chains={sampler['chains']}, warmup={sampler['warmup']}, draws={sampler['draws']}, seed=0.
- Gate (N* fit): {gate(fit)}.
- Population: mean exponent a_pop {pop['a_pop_z']['mean']:.3f}
  (90% {pop['a_pop_z']['q5']:.3f} – {pop['a_pop_z']['q95']:.3f}),
  between-setting sd τ_a {pop['a_tau']['mean']:.3f} ({pop['a_tau']['q5']:.3f} – {pop['a_tau']['q95']:.3f}),
  extra noise σ {pop['sigma']['mean']:.4f} ({pop['sigma']['q5']:.4f} – {pop['sigma']['q95']:.4f}) on log N*.
- The least-squares residual scatter of log N* is {resid_ratio:.2f}× the RMS bootstrap sd: {scatter_note}
- Versions: {', '.join(f'{k} {v}' for k, v in vers.items() if v)}; Python {sys.version.split()[0]}.
- Wall time: total {wall:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in timings.items())}).

Warnings of the N* fit:
{chr(10).join(warn_lines(fit))}

## 1. Compute-optimal exponent a per setting

Published: the authors' least-squares fit of log N* on log C (`basic`), weighted by 1/sd² (`weighted`), and
on the bootstrap-median optima (`bs_median`, identical to `basic` here because the optima in the file are
already bootstrap medians). The authors' bootstrap samples (`fit="bootstrap"` rows) are truncated in the
flattened file, so no published interval is compared.

{markdown_table(etab)}

Published basic exponent inside the fitted 90% interval: {inside90}/{len(etab)}; inside the 95% interval:
{inside95}/{len(etab)}; {miss_line}

## 2. Contrasts between settings (`bs.contrast(fit, "a", s1, s2)`)

P(a_s1 > a_s2 | data) and the 90% interval of a_s1 − a_s2. Baseline vs tuned (rw): P = {p_base_tuned:.4f}.

{markdown_table(ctab)}
{sens_part}
## 3. Backtest: each setting's {HOLD_OUT} largest budgets held out

`bs.backtest(df, law="loglinear", split=held_out_largest, ...)`: {int(bt.held_out.sum())} held-out optima,
{int((~bt.held_out).sum())} training optima; gate of the training fit: {gate(bt.fit)}.
"observed" adds each held-out optimum's own bootstrap error to the `new_run` band (the truth is a noisy
measurement). Least squares: the paper's method refitted per setting on the same training budgets.

{markdown_table(bt_agg)}

Per held-out optimum:

{markdown_table(bt_detail)}

## 4. Loss at the optimum, L*(C) = E + A·C^-γ (`compute` law)

Each setting its own E, A, γ (`pool` none), y = `loss_opt`, known error `se = loss_star_std · loss_opt`.
Gate (all budgets): {gate(loss_fit)}.
The paper's E and α are its fit on {LOSS_WINDOW[0]:.0e} < C < {LOSS_WINDOW[1]:.0e}.

{markdown_table(ltab)}
{loss_bt_part}
## Figures
- `nstar.png` — N*(C) per setting: optima with bootstrap sd, posterior median and 90% band, published fit.
- `exponents.png` — forest plot of a per setting (median, 50%, 90%) with the published exponents.
- `loss.png` — L*(C) per setting{' (all budgets and the paper-window fit)' if loss_bt is not None else ''}.
"""


if __name__ == "__main__":
    raise SystemExit(main())
