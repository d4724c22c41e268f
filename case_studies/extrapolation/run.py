"""Calibrated extrapolation: rolling-origin backtests of plain and calibrated forecast bands.

One command::

    python case_studies/extrapolation/run.py [--quick] [--datasets a,b] [--cuts 4] [--out DIR]

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
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bayescale.report import markdown_table

HERE = Path(__file__).resolve().parent
LEVELS = (0.5, 0.8, 0.9, 0.95)
BINS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, np.inf)  # decades of compute beyond the origin
FULL = {"chains": 2, "warmup": 400, "draws": 400}
QUICK = {"chains": 1, "warmup": 150, "draws": 150}
NN_DD = {"N": "params", "D": "tokens"}


def datasets(bs) -> dict:
    """Data set -> (frame, fit arguments): the training rows only, never a separate target set."""
    load = bs.datasets.load
    l2l = load("loss_to_loss", split="sweep")
    gadre = load("gadre_overtrain")
    porian = load("porian_isoflop", table="optima").dropna(subset=["loss_opt", "loss_star_std"])
    porian = porian.assign(loss_se=porian["loss_star_std"] * porian["loss_opt"])  # as in porian_isoflop/
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
    }


def backtest_one(bs, df, kw: dict, cuts: int, sampler: dict, seed: int = 0) -> pd.DataFrame:
    """Per-target scores of one data set, plain and calibrated, from the same rolling fits."""
    from bayescale.backtest import score

    bt = bs.backtest(df, split="rolling", cuts=cuts, kind="new_run", levels=LEVELS, seed=seed,
                     discrepancy="calibrate", progress=False, **sampler, **kw)
    calibrated = bt.per_target.assign(method="calibrated")
    parts = [calibrated]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cut, fitted in enumerate(bt.fits):
            rows = calibrated[calibrated["cut"] == cut]
            plain = score(fitted, df.loc[rows["row"].to_numpy()], ("new_run",), LEVELS, seed, 0.0)
            plain.insert(1, "cut", cut)
            for col in ("frontier", "distance", "distance_bin"):
                plain[col] = rows[col].to_numpy()
            parts.append(plain.assign(rate=0.0, method="plain"))
    out = pd.concat(parts, ignore_index=True)
    out["rel_error"] = out["error"] / out["truth"]
    out["interval_score_90"] = interval_score(out, 0.9) / out["truth"]
    out["ok"] = np.array([f.ok for f in bt.fits])[out["cut"].to_numpy()]
    return out


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
                        "interval score 90 %": 100 * g["interval_score_90"].mean()})
    for level in LEVELS:
        pct = f"{round(level * 100)}"
        out[f"cov{pct}"] = 100 * g[f"in_{pct}"].mean()
    return out.round(2).reset_index()


def figures(t: pd.DataFrame, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(LEVELS), figsize=(3.2 * len(LEVELS), 3.0), sharey=True)
    for ax, level in zip(axes, LEVELS):
        pct = f"{round(level * 100)}"
        for method, style in (("plain", "o--"), ("calibrated", "s-")):
            part = t[t["method"] == method]
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
    args = parser.parse_args(argv)
    import bayescale as bs

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sampler = QUICK if args.quick else FULL
    table = datasets(bs)
    names = args.datasets.split(",") if args.datasets else list(table)
    parts, seconds = [], {}
    for name in names:
        df, kw = table[name]
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scored = backtest_one(bs, df.reset_index(drop=True), kw, args.cuts, sampler)
        parts.append(scored.assign(dataset=name))
        seconds[name] = time.perf_counter() - started
        print(f"{name}: {seconds[name]:.0f} s", file=sys.stderr)
    t = pd.concat(parts, ignore_index=True)
    t["distance_bin"] = pd.cut(t["distance"], BINS)
    figures(t, out)
    (out / "RESULTS.md").write_text(report(t, table, names, seconds, sampler, args))
    return 0


def report(t, table, names, seconds, sampler, args) -> str:
    import bayescale as bs

    per_set = summary(t, ["dataset", "method"])
    per_bin = summary(t, ["method", "distance_bin"])
    per_set_bin = summary(t[t["distance"] <= 1.5], ["dataset", "method"])
    rates = (t[t["method"] == "calibrated"].groupby(["dataset", "cut"])
             .agg(frontier=("frontier", "first"), rate=("rate", "first"), gate_passed=("ok", "first"),
                  targets=("row", "size")).reset_index())
    rates["frontier"] = rates["frontier"].map(lambda v: f"{v:.3g}")
    rates["rate"] = rates["rate"].round(4)
    setup = "\n".join(f"- `{n}`: {len(table[n][0])} rows, law `{table[n][1]['law']}`, "
                      f"y `{table[n][1]['y']}`, group `{table[n][1].get('group')}`; {seconds[n]:.0f} s"
                      for n in names)
    return f"""# Calibrated extrapolation: rolling-origin backtests

`python case_studies/extrapolation/run.py{' --quick' if args.quick else ''}` on {_dt.date.today()}
(bayescale {bs.__version__}); {args.cuts} rolling origins per data set (quantiles 0.3-0.8 of log
compute), {sampler['chains']} chains x ({sampler['warmup']} + {sampler['draws']}) per fit, band of
one new run (`kind="new_run"`).

Each origin's fit forecasts every run beyond it; each forecast is scored twice from the
same fit: **plain** (law-only band) and **calibrated** (widened at the rate measured by a
rolling backtest nested inside that origin's training rows, 3 inner origins: what
`bs.fit(..., extrapolation=True)` does). Nothing beyond an origin is used for its
forecast. Distance: decades of compute beyond the origin (the rate itself is applied
per family, by `predict`'s `distance`). Interval score of the
90% band (Gneiting & Raftery 2007) as % of the truth: width plus 20x the miss, lower is
better. Only aggregates are reported (two of these data sets have no license).

{setup}

## Pooled coverage by distance (all data sets)

{markdown_table(per_bin)}

![coverage](coverage.png)

## Per data set, all distances

{markdown_table(per_set)}

## Per data set, up to 1.5 decades

{markdown_table(per_set_bin)}

## Signed error of the plain median against distance

![error](error.png)

## The rate each origin measured inside its own training rows

{markdown_table(rates)}
"""


if __name__ == "__main__":
    sys.exit(main())
