"""Pythia and Pythia-deduped LAMBADA forecasts: fit models ≤ 1.4B over their checkpoints, forecast 2.8B-12B.

One command::

    python case_studies/pythia_evals/run.py [--quick] [--out DIR]

Writes RESULTS.md, lambada_loss.png, lambada_acc.png and contrast.png into DIR
(default: this folder).  The data are read from the shared data folder through
``bayescale.datasets``; they are never copied here.
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
ACC_LAW = HERE / "logit_chinchilla.toml"

FAMILIES = ("pythia", "pythia-deduped")
DEDUP, STANDARD = "pythia-deduped", "pythia"
TOKENS_PER_STEP = 2_097_152  # 1024 sequences x 2048 tokens
FINAL_STEP = 143_000
# The LR warms up over the first 1% of the 143,000 steps ("warmup": 0.01 in the Pythia configs),
# i.e. until step 1,430; step 3,000 is the first checkpoint after it.  At step 1,000 LAMBADA
# accuracy is 3-9% and perplexity is in the thousands for every size: not yet the power-law regime.
MIN_STEP = 3_000
FIT_MAX_PARAMS = 2e9  # fit on 70M-1.4B; 2.8B, 6.9B and 12B are held out
AT_SCALE = {"params": 12e9, "tokens": 300e9}  # the contrast target: 12B parameters, 300B tokens
# --quick keeps 5 of the 15 checkpoints at or after MIN_STEP
QUICK_STEPS = (3_000, 23_000, 63_000, 103_000, 143_000)
LEVELS = (0.5, 0.8, 0.9, 0.95)
KINDS = ("mean", "new_run")

# target_accept=0.995: see _fit_kwargs.  --quick keeps the engine's default (0.99 with run effects),
# which needs fewer leapfrog steps; its short chains are not meant to pass the gate anyway.
FULL = {"chains": 4, "warmup": 1000, "draws": 2000, "target_accept": 0.995}
QUICK = {"chains": 2, "warmup": 200, "draws": 200}

# The two outcomes: LAMBADA loss (ln perplexity; log-normal noise, Chinchilla law) and
# LAMBADA accuracy (logit-normal noise, the logit_chinchilla law beside this script).
OUTCOMES = {
    "loss": {"metric": "ppl", "law": "chinchilla", "label": "LAMBADA loss = ln(perplexity)",
             "lower_is_better": True, "params": ("E", "a", "b")},
    "acc": {"metric": "acc", "law": str(ACC_LAW), "label": "LAMBADA accuracy",
            "lower_is_better": False, "params": ("c", "a", "b", "ceiling")},
}
# Checkpoints of one model are one training run: run effects (a log- or logit-scale offset per
# model) say so; "independent rows" treats the 150 checkpoints as 150 independent observations.
VARIANTS = {"run effects": "model", "independent rows": None}
PRIMARY = "run effects"
# Sensitivity of the loss backtest to the first checkpoint kept (full run only): from step 13,000
# (27B tokens), the models are well past the warm-up transient.
SENSITIVITY_STEP = 13_000
SENSITIVITY = f"{PRIMARY}, step ≥ {SENSITIVITY_STEP:,}"


def _yn(v: bool) -> str:
    return "yes" if v else "no"


def _size(params: float) -> str:
    return f"{params / 1e9:.2f}B" if params >= 1e9 else f"{params / 1e6:.0f}M"


def load_lambada(bs, metric: str, quick: bool = False, min_step: int = MIN_STEP) -> pd.DataFrame:
    """Zero-shot LAMBADA (OpenAI) rows of both Pythia suites at steps ≥ ``min_step``.

    Returns the columns ``family``, ``model``, ``params``, ``tokens``, ``step``,
    ``y`` (loss = ln perplexity, or accuracy) and ``y_se`` (its harness standard
    error; for the loss ``stderr / ppl``, the delta method).
    """
    df = bs.datasets.load("pythia_evals", task="lambada_openai", metric=metric, num_fewshot=0)
    df = df[df["family"].isin(FAMILIES) & (df["step"] >= min_step)]
    if quick:
        df = df[df["step"].isin(QUICK_STEPS)]
    df = df.reset_index(drop=True)
    value, se = df["value"].to_numpy(float), df["stderr"].to_numpy(float)
    y, y_se = (np.log(value), se / value) if metric == "ppl" else (value, se)
    return pd.DataFrame({"family": df["family"], "model": df["model"], "params": df["params"],
                         "tokens": df["tokens"], "step": df["step"].astype(int), "y": y, "y_se": y_se})


def suite_agreement(bs) -> pd.DataFrame:
    """How far apart the two suites' evaluations are, per size, over every zero-shot task and metric.

    For each (step ≥ MIN_STEP, task, metric) cell: |deduped − standard| / (√2 · stderr).  If the two
    evaluations differed only by independent evaluation-set noise, its median would be 0.67 (the
    median of |N(0, 1)|); both suites are scored on the same items, so part of their noise is
    shared and the median is somewhat lower.  A size whose two suites agree far more closely than
    the others, with many identical values, looks like the same weights evaluated twice.
    """
    df = bs.datasets.load("pythia_evals", num_fewshot=0)
    df = df[df["family"].isin(FAMILIES) & (df["step"] >= MIN_STEP)]
    rows = []
    for n, d in df.groupby("params"):
        v = d.pivot_table(index=["step", "task", "metric"], columns="family", values="value").dropna()
        se = d.pivot_table(index=["step", "task", "metric"], columns="family", values="stderr").loc[v.index]
        z = (v[DEDUP] - v[STANDARD]).abs() / (np.sqrt(2) * se.mean(axis=1))
        rows.append({"N": _size(n), "cells": len(v), "median abs(Δ) / (√2 se)": f"{z.median():.2f}",
                     "identical values": f"{(v[DEDUP] == v[STANDARD]).mean():.0%}"})
    return pd.DataFrame(rows)


def held_out(df: pd.DataFrame) -> np.ndarray:
    """The 2.8B, 6.9B and 12B models (every checkpoint of them)."""
    return (df["params"] > FIT_MAX_PARAMS).to_numpy()


def _fit_kwargs(outcome: str, run, sampler: dict) -> dict:
    # With one run per size, run effects trade off against the law's N-curve.  Sampled centred (the
    # default here, as 15 rows pin each run's offset) sigma_run mixed poorly (R-hat up to 1.018, bulk
    # ESS 268-338 in 4 x 1000 draws, or a few divergences); non-centred at the default
    # target_accept=0.99 some fits still diverged (up to 40 times).  Non-centred at 0.995 passes the
    # gate; the fits without random effects (default 0.95) had 3-8 divergences, so every full fit
    # uses 0.995.
    par = "noncentred" if run is not None else "auto"
    return dict(law=OUTCOMES[outcome]["law"], y="y", x={"N": "params", "D": "tokens"}, group="family",
                run=run, se="y_se", parameterization=par, seed=0, progress=False, **sampler)


def _gate(fit) -> str:
    s = fit.summary()
    div = int(np.asarray(fit.idata.sample_stats["diverging"]).sum())
    post = fit.idata.posterior
    noise = ", ".join(f"{name} {float(np.median(np.asarray(post[name]))):.3f}"
                      for name in ("sigma", "sigma_run") if name in post)
    return (f"ok={fit.ok}, max R-hat {float(s['r_hat'].max()):.4f}, "
            f"min bulk ESS {float(s['ess_bulk'].min()):.0f}, {div} divergences, "
            f"{fit.settings.seconds:.0f} s; posterior median {noise}")


def _warns(fit) -> str:
    return "\n".join(f"  - `{w.kind}`: {w.message}" for w in fit.warnings) or "  - none"


# ---- tables ---------------------------------------------------------------------------------
def aggregate_table(bts: dict) -> pd.DataFrame:
    """Median |relative error| and band coverage per outcome, variant and forecast kind."""
    rows = []
    for (outcome, variant), bt in bts.items():
        for kind, a in bt.aggregate.iterrows():
            rows.append({"outcome": outcome, "variant": variant, "kind": kind, "n": int(a["n"]),
                         "median abs rel error %": f"{100 * a['median_abs_rel_error']:.2f}",
                         **{f"coverage {p}%": f"{a[f'coverage_{p}']:.2f}" for p in ("50", "80", "90", "95")}})
    return pd.DataFrame(rows)


def by_size_table(bts: dict) -> pd.DataFrame:
    """The same per held-out model size (30 rows each in the full run: 15 checkpoints x 2 suites)."""
    rows = []
    for (outcome, variant), bt in bts.items():
        pt = bt.per_target
        for (kind, n), g in pt.groupby(["kind", "params"], sort=True):
            signed = float(np.median(g["error"] / g["truth"]))
            rows.append({"outcome": outcome, "variant": variant, "kind": kind, "N": _size(n), "n": len(g),
                         "median rel error %": f"{100 * signed:+.2f}",
                         "median abs rel error %": f"{100 * g['abs_rel_error'].median():.2f}",
                         "coverage 50%": f"{g['in_50'].mean():.2f}",
                         "coverage 90%": f"{g['in_90'].mean():.2f}"})
    return pd.DataFrame(rows)


def final_table(bts: dict) -> pd.DataFrame:
    """Forecasts of the final checkpoint (step 143,000, ~300B tokens) of the 6 held-out models."""
    rows = []
    for (outcome, variant), bt in bts.items():
        pt = bt.per_target
        pt = pt[(pt["kind"] == "new_run") & (pt["tokens"] == FINAL_STEP * TOKENS_PER_STEP)]
        for _, r in pt.sort_values(["params", "family"]).iterrows():
            row = {"outcome": outcome, "variant": variant, "suite": r["family"], "N": _size(r["params"]),
                   "observed": f"{r['truth']:.4f}", "median": f"{r['median']:.4f}",
                   "90% band": f"{r['lo90']:.4f} – {r['hi90']:.4f}",
                   "rel error %": f"{100 * r['error'] / r['truth']:+.2f}"}
            if outcome == "loss":  # quantiles of ln(ppl) map to quantiles of ppl
                row["ppl observed → median"] = f"{np.exp(r['truth']):.2f} → {np.exp(r['median']):.2f}"
            else:
                row["ppl observed → median"] = "–"
            row |= {"in 50%": _yn(r["in_50"]), "in 90%": _yn(r["in_90"])}
            rows.append(row)
    return pd.DataFrame(rows)


def residual_table(bts: dict, data: dict, variant: str = PRIMARY) -> pd.DataFrame:
    """Median relative residual per checkpoint: in-sample (≤1.4B, the law's mean) and held out.

    A law of the final loss of a run fitted to mid-run checkpoints of a cosine schedule leaves a
    pattern over steps here: mid-run checkpoints sit above the curve the law draws through
    annealed end points, and the end of the schedule below it.
    """
    rows = {}
    for outcome in OUTCOMES:
        bt, df = bts[(outcome, variant)], data[outcome]  # the rows this backtest was run on
        train = df.loc[~bt.held_out]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = bt.fit.predict(train[["params", "tokens", "family"]], kind="mean", levels=(0.9,))
        r_in = pd.Series(train["y"].to_numpy() / pred["median"].to_numpy() - 1).groupby(
            train["step"].to_numpy()).median()
        pt = bt.per_target[bt.per_target["kind"] == "new_run"]
        r_out = pd.Series((-pt["error"] / pt["median"]).to_numpy()).groupby(
            (pt["tokens"] / TOKENS_PER_STEP).round().astype(int).to_numpy()).median()
        rows[f"{outcome}: fitted ≤1.4B %"] = (100 * r_in).map(lambda v: f"{v:+.2f}")
        rows[f"{outcome}: held-out 2.8-12B %"] = (100 * r_out).map(lambda v: f"{v:+.2f}")
    out = pd.DataFrame(rows)
    out.index.name = "step"
    return out.reset_index()


def param_contrast_table(fits: dict) -> pd.DataFrame:
    """Per-family law parameters: deduped minus standard (posterior median, 90%, P(deduped larger))."""
    rows = []
    for (outcome, label), fit in fits.items():
        for p in OUTCOMES[outcome]["params"]:
            c = bs.contrast(fit, p, DEDUP, STANDARD)
            rows.append({"outcome": outcome, "fit": label, "parameter": p,
                         "deduped": f"{np.median(_family_draws(fit, p, DEDUP)):.4g}",
                         "standard": f"{np.median(_family_draws(fit, p, STANDARD)):.4g}",
                         "deduped − standard": f"{c['diff_median']:+.4g}",
                         "90%": f"{c['diff_lo90']:+.4g} – {c['diff_hi90']:+.4g}",
                         "P(deduped > standard)": f"{c['p_greater']:.2f}"})
    return pd.DataFrame(rows)


def _family_draws(fit, param: str, family: str) -> np.ndarray:
    from bayescale.result.predictive import draws

    return draws(fit.idata.posterior, param)[:, fit.design.families.index(family)]


def observed_difference(df: pd.DataFrame, params: float) -> tuple[float, float]:
    """Deduped minus standard at one size: at the final checkpoint, and the median over checkpoints."""
    d = df[np.isclose(df["params"], params)].pivot_table(index="step", columns="family", values="y")
    diff = d[DEDUP] - d[STANDARD]
    return float(diff.loc[FINAL_STEP]), float(diff.median())


def observed_difference_table(data: dict) -> pd.DataFrame:
    """Observed deduped − standard per size: at the final checkpoint and the median over checkpoints."""
    rows = []
    for n in np.sort(data["loss"]["params"].unique()):
        row = {"N": _size(n)}
        for outcome, df in data.items():
            final, med = observed_difference(df, n)
            row[f"{outcome}: step 143k"] = f"{final:+.4f}"
            row[f"{outcome}: median over steps"] = f"{med:+.4f}"
        rows.append(row)
    return pd.DataFrame(rows)


def run_effect_table(fits: dict) -> pd.DataFrame:
    """Posterior median run effect (link scale) per model in the all-size run-effect fits.

    With one run per size and suite, a run effect cannot be told apart from a deviation of that
    size from the law; a trend of the effects with N is misfit of the law's N-curve.
    """
    from bayescale.result.predictive import draws

    cols, size = {}, {}
    for (outcome, label), fit in fits.items():
        if label != f"all sizes, {PRIMARY}":
            continue
        effect = np.median(draws(fit.idata.posterior, "run_effect"), axis=0)
        cols[f"{outcome} ({'log' if outcome == 'loss' else 'logit'} scale)"] = pd.Series(
            effect, index=fit.design.runs)
        size |= fit.design.frame.groupby("model")["params"].first().to_dict()
    table = pd.DataFrame(cols)
    order = sorted(table.index, key=lambda m: (size[m], m))
    table = table.loc[order].map(lambda v: f"{v:+.3f}")
    table.insert(0, "N", [_size(size[m]) for m in order])
    return table.reset_index(names="model")


def prediction_contrast_table(fits: dict, data: dict) -> tuple[pd.DataFrame, dict]:
    """P(deduped better) at 12B parameters and 300B tokens, against the observed 12B difference."""
    from bayescale.result.predictive import predict

    rows, draws_out = [], {}
    for (outcome, label), fit in fits.items():
        spec = OUTCOMES[outcome]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an extrapolation, on purpose
            c = bs.contrast_prediction(fit, AT_SCALE, DEDUP, STANDARD).iloc[0]
            # the same paired draws as contrast_prediction, kept for the figure
            new = pd.DataFrame({**{k: [v, v] for k, v in AT_SCALE.items()}, "family": [DEDUP, STANDARD]})
            _, values = predict(fit.idata.posterior, fit.structure, fit.design, new, "mean", (0.9,), 0,
                                samples=True)
        draws_out[(outcome, label)] = values[:, 0] - values[:, 1]
        p_better = c["p_a_lower"] if spec["lower_is_better"] else 1 - c["p_a_lower"]
        n12 = float(data[outcome]["params"].max())
        final, med = observed_difference(data[outcome], n12)
        rows.append({"outcome": outcome, "fit": label,
                     "deduped": f"{c['median_a']:.4f}", "standard": f"{c['median_b']:.4f}",
                     "deduped − standard": f"{c['diff_median']:+.4f}",
                     "90%": f"{c['diff_lo90']:+.4f} – {c['diff_hi90']:+.4f}",
                     "P(deduped better)": f"{p_better:.2f}",
                     "observed 12B, step 143k": f"{final:+.4f}",
                     "observed 12B, median over steps": f"{med:+.4f}"})
    return pd.DataFrame(rows), draws_out


# ---- figures --------------------------------------------------------------------------------
def plot_curves(bs_fit, df: pd.DataFrame, outcome: str, path: Path) -> None:
    """Per suite: observed checkpoints (filled: fitted; open: held out) and the forecast per size.

    Top row: every size; bottom row: the held-out sizes alone, where the forecast is tested.
    """
    import matplotlib.pyplot as plt

    sizes = np.sort(df["params"].unique())
    grid = np.geomspace(df["tokens"].min(), df["tokens"].max(), 40)
    loss = outcome == "loss"
    tr = np.exp if loss else np.asarray  # plot perplexity, the quantity people quote
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    for col, family in enumerate(FAMILIES):
        frame = pd.DataFrame([(n, t, family) for n in sizes for t in grid],
                             columns=["params", "tokens", "family"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = bs_fit.predict(frame, kind="new_run", levels=(0.9,))
        for row, shown in enumerate((sizes, sizes[sizes > FIT_MAX_PARAMS])):
            ax = axes[row, col]
            for n in shown:
                color = plt.cm.viridis(float(np.flatnonzero(sizes == n)[0]) / max(len(sizes) - 1, 1))
                p = pred[np.isclose(pred["params"], n)]
                fitted = n <= FIT_MAX_PARAMS
                ax.fill_between(p["tokens"], tr(p["lo90"]), tr(p["hi90"]), color=color,
                                alpha=0.12 if fitted else 0.2)
                ax.plot(p["tokens"], tr(p["median"]), color=color, lw=1.2, ls="-" if fitted else "--",
                        label=_size(n) + ("" if fitted else " (held out)"))
                rows = (df["family"] == family).to_numpy() & np.isclose(df["params"], n)
                ax.scatter(df.loc[rows, "tokens"], tr(df.loc[rows, "y"]), s=14, zorder=3,
                           facecolors=color if fitted else "none", edgecolors=color)
            ax.set(xscale="log", yscale="log" if loss else "linear",
                   title=family if row == 0 else f"{family}: held-out sizes")
            ax.set_ylabel("LAMBADA perplexity" if loss else "LAMBADA accuracy")
        axes[1, col].set_xlabel("tokens seen (checkpoint)")
    axes[0, 1].legend(fontsize=7, ncol=2)
    fig.suptitle(f"{OUTCOMES[outcome]['label']}: fitted on ≤1.4B (filled), forecast 2.8–12B (open); "
                 f"median and 90% new-run band", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_contrast(draws_out: dict, data: dict, path: Path) -> None:
    """Posterior of deduped − standard at 12B / 300B, with the observed 12B differences."""
    import matplotlib.pyplot as plt

    outcomes = list(OUTCOMES)
    labels = list(dict.fromkeys(label for _, label in draws_out))  # one colour per fit in both panels
    fig, axes = plt.subplots(1, len(outcomes), figsize=(5.2 * len(outcomes), 3.6))
    for ax, outcome in zip(np.atleast_1d(axes), outcomes):
        for (o, label), d in draws_out.items():
            if o == outcome:
                ax.hist(d, bins=80, histtype="step", color=f"C{labels.index(label)}", density=True,
                        label=label)
        final, med = observed_difference(data[outcome], float(data[outcome]["params"].max()))
        ax.axvline(final, color="k", lw=1.5, label="observed 12B, step 143k")
        ax.axvline(med, color="k", ls=":", lw=1.5, label="observed 12B, median over steps")
        ax.axvline(0, color="0.6", lw=0.8)
        better = "lower" if OUTCOMES[outcome]["lower_is_better"] else "higher"
        ax.set(xlabel=f"deduped − standard, {OUTCOMES[outcome]['label']} ({better} is better)",
               ylabel="posterior density")
        ax.legend(fontsize=7)
    fig.suptitle("Is deduplication better at 12B parameters, 300B tokens? (law mean)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


# ---- main ----------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"chains=2, warmup=draws=200, default target_accept, {len(QUICK_STEPS)} checkpoints,"
                         f" the {PRIMARY} variant only, no all-size fit (for tests)")
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: this folder)")
    args = ap.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")

    import bayescale as bs
    from bayescale.result.io import versions

    t0 = time.perf_counter()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    sampler = QUICK if args.quick else FULL
    data = {o: load_lambada(bs, spec["metric"], args.quick) for o, spec in OUTCOMES.items()}

    # 1-2. backtests: fit ≤1.4B, forecast every checkpoint of 2.8B, 6.9B and 12B
    bts, seconds = {}, {}
    variants = {PRIMARY: VARIANTS[PRIMARY]} if args.quick else VARIANTS
    for outcome in OUTCOMES:
        for variant, run in variants.items():
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # recorded in fit.warnings and written to RESULTS.md
                bts[(outcome, variant)] = bs.backtest(data[outcome], split=held_out, kind=KINDS,
                                                      levels=LEVELS, **_fit_kwargs(outcome, run, sampler))
            seconds[(outcome, variant)] = time.perf_counter() - t
    if not args.quick:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bts[("loss", SENSITIVITY)] = bs.backtest(
                load_lambada(bs, "ppl", min_step=SENSITIVITY_STEP), split=held_out, kind=KINDS,
                levels=LEVELS, **_fit_kwargs("loss", VARIANTS[PRIMARY], sampler))
        seconds[("loss", SENSITIVITY)] = time.perf_counter() - t

    # 3. family contrasts: from the ≤1.4B fits (a forecast) and, in the full run, from all 8 sizes
    fits = {(o, f"≤1.4B, {v}"): bts[(o, v)].fit for o in OUTCOMES for v in variants}
    if not args.quick:
        for outcome in OUTCOMES:
            for variant, run in VARIANTS.items():
                t = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fits[(outcome, f"all sizes, {variant}")] = bs.fit(
                        data[outcome], **_fit_kwargs(outcome, run, sampler), extrapolation=False)
                seconds[(outcome, f"all sizes, {variant}")] = time.perf_counter() - t
    ptab = param_contrast_table(fits)
    otab = observed_difference_table(data)
    rtab = run_effect_table(fits) if not args.quick else None
    ctab, cdraws = prediction_contrast_table(fits, data)

    # 4. figures
    for outcome in OUTCOMES:
        bt = bts[(outcome, PRIMARY)]
        plot_curves(bt.fit, data[outcome], outcome, out / f"lambada_{outcome}.png")
    plot_contrast(cdraws, data, out / "contrast.png")
    wall = time.perf_counter() - t0

    n_train = {o: int((~bts[(o, PRIMARY)].held_out).sum()) for o in OUTCOMES}
    n_test = {o: int(bts[(o, PRIMARY)].held_out.sum()) for o in OUTCOMES}
    steps = sorted(data["loss"]["step"].unique())
    gates = "\n".join(f"  - {o}, {v}: {_gate(bt.fit)}" for (o, v), bt in bts.items())
    gates += "".join(f"\n  - {o}, {label}: {_gate(f)}" for (o, label), f in fits.items()
                     if "all sizes" in label)
    warn_text = "\n".join(f"- {o}, {v}:\n{_warns(bt.fit)}" for (o, v), bt in bts.items())
    quick_note = ("**QUICK MODE** (5 checkpoints, short chains, run-effects variant only, no all-size fit; "
                  "for tests only, do not quote these numbers)." if args.quick else "")
    run_effect_text = "" if rtab is None else f"""
Run effects of the all-size fits (posterior median per model; one run per size and suite, so an
effect is that model's deviation from its suite's law):

{markdown_table(rtab)}
"""
    vers = versions()
    timing = ", ".join(f"{o}/{v} {s:.0f} s" for (o, v), s in seconds.items())
    text = f"""# Pythia / Pythia-deduped LAMBADA forecasts from ≤1.4B checkpoints — results

Generated {_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} by
`python case_studies/pythia_evals/run.py{' --quick' if args.quick else ''}`.
{quick_note}

## Settings
- Data: `bs.datasets.load("pythia_evals", task="lambada_openai", metric=..., num_fewshot=0)`, suites
  `pythia` and `pythia-deduped` (the groups), checkpoints with step ≥ {MIN_STEP:,} ({len(steps)} steps:
  {', '.join(f'{s:,}' for s in steps)}); D = tokens seen = step × 2,097,152.
- Fit on 70M, 160M, 410M, 1B, 1.4B ({n_train['loss']} rows per outcome); forecast every checkpoint of
  2.8B, 6.9B and 12B ({n_test['loss']} rows), `bs.backtest(split=params > 2e9, kind=("mean", "new_run"))`.
- Outcomes: LAMBADA loss = ln(perplexity), law `chinchilla` (E + a N^-α + b D^-β), known noise
  `se = stderr / ppl`; LAMBADA accuracy, law `logit_chinchilla.toml` (sigmoid(c − a N^-α − b D^-β),
  `outcome = "unit"`), known noise `se = stderr`.
- Families: with two suites bayescale fits E, a, b (loss) and c, a, b (accuracy) per suite (`few_families`,
  pool none); α and β are shared.
- Variants: **run effects** (`run="model"`: one offset per model, its checkpoints are one training run)
  and **independent rows** (no run effect).
- Sampler: NUTS, chains={sampler['chains']}, warmup={sampler['warmup']}, draws={sampler['draws']}, seed=0,
  `target_accept={sampler.get('target_accept', 'default')}`; run effects sampled non-centred
  (`parameterization="noncentred"`).
- Gates:
{gates}
  (sigma: extra observation noise; sigma_run: spread of the run effects; link scale, log or logit.)
- Versions: {', '.join(f'{k} {v}' for k, v in vers.items() if v)}; Python {sys.version.split()[0]}.
- Wall time: total {wall:.1f} s ({timing}).

Fit warnings (≤1.4B fits):
{warn_text}

## 0. Data check: how far apart are the two suites?

Per size, over every zero-shot task and metric at step ≥ {MIN_STEP:,}: the median of
|deduped − standard| / (√2 · stderr), and the share of cells with identical values. Independent
evaluation noise alone would give a median of 0.67.

{markdown_table(suite_agreement(bs))}

## 1. Held-out forecasts, all checkpoints of 2.8B, 6.9B and 12B

Relative error = (posterior median − observed) / observed; coverage = share of held-out rows inside the
central band. The rows are {len(steps)} checkpoints of 6 models, so they are far from independent: the
coverages are not binomial counts of {n_test['loss']} trials.

{markdown_table(aggregate_table(bts))}

Per held-out size:

{markdown_table(by_size_table(bts))}

## 2. Final checkpoints (step 143,000, ≈ 300B tokens), `kind="new_run"`

{markdown_table(final_table(bts))}

## 3. Checkpoints against a law of final losses (variant: {PRIMARY})

Median relative residual (observed / law − 1) per checkpoint: in-sample for the fitted models (the law's
mean, no run effect), and (observed − forecast median) / forecast median for the held-out ones.

{markdown_table(residual_table(bts, data))}

## 4. Is deduplication better at scale?

Per-suite law parameters, deduped minus standard (`fit.contrast`):

{markdown_table(ptab)}

Paired forecast at N = 12B, D = 300B (`fit.contrast_prediction`, law mean); observed deduped − standard
at 12B for comparison:

{markdown_table(ctab)}

Observed deduped − standard per size (loss: negative favours deduped; accuracy: positive does):

{markdown_table(otab)}
{run_effect_text}
## Figures
- `lambada_loss.png`, `lambada_acc.png` — per suite, observed checkpoints (filled: fitted ≤1.4B; open:
  held out) and the {PRIMARY} fit's forecast per size (median, 90% new-run band).
- `contrast.png` — posterior of deduped − standard at 12B / 300B, with the observed 12B differences.
"""
    (out / "RESULTS.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
