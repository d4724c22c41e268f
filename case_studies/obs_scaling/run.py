"""Observational scaling (Ruan et al. 2024): benchmark accuracy against compute, with family effects.

One command::

    python case_studies/obs_scaling/run.py [--quick] [--out DIR]

Writes RESULTS.md, heldout.csv, fit.png and heldout.png into DIR (default: this folder).
The data are read from the shared data folder through ``bayescale.datasets``.

Main experiment: leave one family out, keeping its smallest-compute model (k = 1), and
forecast the family's other models; against the population forecast (k = 0) and a fit
of the family alone on its two smallest models.  Second: the paper's FLOPs cutoff.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bayescale.viz.report import markdown_table

HERE = Path(__file__).resolve().parent
LAW_FILE = HERE / "law.toml"

# column -> (name, chance level).  MMLU, ARC-Challenge and HellaSwag are 4-way multiple
# choice (ARC has a few 3- and 5-way questions; 1/4 is the usual chance line);
# Winogrande (column "winograd" in the Open LLM Leaderboard v1 table) is 2-way.
# GSM8K is left out: it is generative (chance 0) and has exact zeros, which a logit
# likelihood cannot take without an arbitrary nudge.
BENCHMARKS = {"mmlu": ("MMLU", 0.25), "arc_c": ("ARC-C", 0.25), "hellaswag": ("HellaSwag", 0.25),
              "winograd": ("Winogrande", 0.5)}
DEFAULT_BENCHMARKS = ("mmlu",)
CUTOFF = 8.4e22  # the paper's cutoff: Llama-2-7B's 6ND; models above are forecast from those below
MIN_FAMILY = 3  # held-out families need >= 3 models: 2 to fit the family alone, >= 1 to forecast
FAMILY_ALONE = 2  # models the family-alone baseline is fitted on (its smallest by compute)
LEVELS = (0.5, 0.9)
KINDS = ("new_run", "mean")
METHODS = {  # key -> label, in the order of the tables
    "k1": "pooled, k=1",
    "k2": "pooled, k=2",
    "k0": "population, k=0",
    "alone": "family alone, 2 smallest",
}
FIGURE_FAMILIES = ("Qwen1.5", "Llama", "Falcon", "CodeLlama", "Pythia")
QUICK_FAMILIES = ("Qwen1.5",)
SHOWCASE = "Qwen1.5"  # the held-out family drawn with every method's band in fit.png

FULL = {"chains": 4, "warmup": 500, "draws": 500}
QUICK = {"chains": 2, "warmup": 200, "draws": 200}


def law_for(chance: float, text: str | None = None):
    """The law of a benchmark with chance level ``chance``, from ``law.toml`` (written for 0.25).

    Parameters
    ----------
    chance : float
        Random-guess accuracy g in [0, 1).
    text : str, optional
        TOML text of the template law (default: ``law.toml`` beside this script).

    Returns
    -------
    bayescale.Law
        ``g + (1 - g) * sigmoid(w * log(C) + b)`` with g a constant of the formula.
    """
    from bayescale import Law

    if not 0 <= chance < 1:
        raise ValueError(f"chance level {chance} must lie in [0, 1).")
    text = LAW_FILE.read_text(encoding="utf-8") if text is None else text
    head = "0.25 + 0.75 * "
    formula = tomllib.loads(text)["formula"]
    if not formula.startswith(head):
        raise ValueError(f"law.toml's formula {formula!r} must start with {head!r} to take a chance level.")
    if chance == 0.25:
        return Law.from_toml(text, origin=str(LAW_FILE))
    new = f"{chance!r} + {1 - chance!r} * " + formula[len(head):]
    text = text.replace(f'formula = "{formula}"', f'formula = "{new}"', 1)
    text = text.replace('name = "obs_sigmoid"', f'name = "obs_sigmoid_g{round(100 * chance)}"', 1)
    return Law.from_toml(text, origin=f"{LAW_FILE} with chance {chance}")


def load_data(bs) -> tuple[pd.DataFrame, list[str]]:
    """The models with a known 6ND, and notes on what was left out."""
    df = bs.datasets.load("obs_scaling")
    notes = []
    missing = df["flops"].isna()
    fams = df.loc[missing, "family"].value_counts()
    notes.append(f"{int(missing.sum())} models without pretraining tokens (so no 6ND) are left out: "
                 + ", ".join(f"{f} ({n})" for f, n in fams.items()) + ".")
    # BTLM-3B-8k lists 627 *trillion* tokens, 1000x any other model and its FLOPs (1.1e25)
    # above Llama-3-70B's: a unit slip in the source table; left out, not corrected.
    odd = df["tokens"] > 1e14
    for _, r in df[odd].iterrows():
        notes.append(f"{r['model']} is left out: {r['tokens']:.3g} tokens ({r['flops']:.3g} FLOPs) "
                     f"is 1000x any other model, a unit slip in the source table.")
    df = df[~missing & ~odd].copy()
    return df, notes


def _rank_in_family(df: pd.DataFrame) -> pd.Series:
    """1 for the smallest-compute model of its family, 2 for the next, ... (stable, as backtest)."""
    return df.groupby("family")["flops"].rank(method="first").astype(int)


def _fit_kwargs(bench: str, sampler: dict) -> dict:
    return dict(y=bench, x={"C": "flops"}, min_rows_per_family=1, seed=0, progress=False, **sampler)


def _collect(bt, df: pd.DataFrame, bench: str, method: str, family: str | None, seconds: float):
    """Per-target rows of a backtest, labelled, with the model name and its rank in its family."""
    p = bt.per_target.copy()
    p.insert(0, "benchmark", bench)
    p.insert(1, "method", method)
    p["held_out_family"] = family
    p["model"] = df.loc[p["row"], "model"].to_numpy()
    p["rank"] = df.loc[p["row"], "rank"].to_numpy()
    p["abs_err_pts"] = 100 * p["error"].abs()
    p["fit_ok"] = bool(bt.fit.ok)
    p["fit_seconds"] = seconds
    return p


def _backtest(bs, d, law, split, sampler, bench, group="family"):
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gate results are kept in fit.ok and reported
        bt = bs.backtest(d, law, split=split, kind=KINDS, levels=LEVELS, group=group,
                         **_fit_kwargs(bench, sampler))
    return bt, time.perf_counter() - t


def leave_family_out(bs, d: pd.DataFrame, law, bench: str, family: str, sampler: dict,
                     methods=("k1", "k0", "alone"), cache: Path | None = None) -> tuple[list, dict]:
    """Forecasts of one held-out family's models by each method: per-target rows, and the fits.

    With ``cache``, each method's rows are read from ``cache`` when there and written there
    when fitted (the fit itself is then not returned), so a long run can be resumed.
    """
    out, fits = [], {}
    for m in methods:
        path = None if cache is None else cache / f"{bench}__{family.replace('/', '_')}__{m}.csv"
        if path is not None and path.exists():
            out.append(pd.read_csv(path).assign(from_cache=True))
            continue
        if m in ("k0", "k1", "k2"):
            k = int(m[1])
            bt, sec = _backtest(bs, d, law, ("leave-family-out", family, k), sampler, bench)
        else:  # the family alone, fitted on its FAMILY_ALONE smallest-compute models
            sub = d[d["family"] == family]
            bt, sec = _backtest(bs, sub, law, lambda f: (f["rank"] > FAMILY_ALONE).to_numpy(),
                                sampler, bench, group=None)
        rows = _collect(bt, d, bench, m, family, sec)
        if path is not None:
            rows.to_csv(path, index=False)
        out.append(rows)
        fits[m] = bt.fit
    return out, fits


def cutoff(bs, d: pd.DataFrame, law, bench: str, sampler: dict):
    """The paper's protocol: models above CUTOFF forecast from those at or below it."""
    out, fits = [], {}
    split = lambda f: (f["flops"] > CUTOFF).to_numpy()  # noqa: E731
    for method, group in (("families", "family"), ("one curve", None)):
        bt, sec = _backtest(bs, d, law, split, sampler, bench, group=group)
        p = _collect(bt, d, bench, method, None, sec)
        seen = set(d.loc[d["flops"] <= CUTOFF, "family"])
        p["family_seen"] = d.loc[p["row"], "family"].isin(seen).to_numpy()
        out.append(p)
        fits[method] = bt.fit
    return pd.concat(out, ignore_index=True), fits


def summarise(per: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """n, mean and median |error| (accuracy points), coverage of the 50% and 90% bands."""
    g = per.groupby(by, sort=False)
    out = pd.DataFrame({
        "n": g.size(),
        "mean |err| (pts)": g["abs_err_pts"].mean(),
        "median |err| (pts)": g["abs_err_pts"].median(),
        "bias (pts)": g["error"].mean() * 100,
        "coverage 50%": g["in_50"].mean(),
        "coverage 90%": g["in_90"].mean(),
    })
    return out.reset_index()


def _fmt(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if out[c].dtype.kind == "f":
            out[c] = out[c].map(lambda v: f"{v:.2f}" if np.isfinite(v) else "–")
    return out



def binomial_floor(n: int, level: float, alpha: float = 0.01) -> int:
    """Largest count c with P(Binomial(n, level) < c) <= alpha: fewer hits than c is implausible."""
    from scipy.stats import binom

    return int(binom.ppf(alpha, n, level))  # the smallest c with P(X <= c) >= alpha


def plot_bands(fit, d: pd.DataFrame, bench: str, families, ax, cutoff_at=None, label_new=True):
    """Accuracy against compute: all models, the median and 90% new-model band (dotted) of a few
    families, and the band of a family absent from the fit (grey)."""
    grid = np.logspace(np.log10(d["flops"].min()) - 0.3, np.log10(d["flops"].max()) + 0.3, 80)
    ax.scatter(d["flops"], d[bench], s=8, color="0.75", zorder=1, label="other models")
    fams = [f for f in families if f in set(d["family"])]
    if label_new:
        fams = [*fams, "(new family)"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, fam in enumerate(fams):
            color = "k" if fam == "(new family)" else f"C{i}"
            pred = fit.predict(pd.DataFrame({"flops": grid, "family": fam}), kind="new_run", levels=(0.9,))
            if color == "k":  # a band per family would hide the others: the new family's only
                ax.fill_between(grid, pred["lo90"], pred["hi90"], color=color, alpha=0.12)
            else:
                ax.plot(grid, pred["lo90"], color=color, lw=0.6, ls=":")
                ax.plot(grid, pred["hi90"], color=color, lw=0.6, ls=":")
            ax.plot(grid, pred["median"], color=color, lw=1.3, ls="--" if color == "k" else "-", label=fam)
            if fam in set(d["family"]):
                rows = d[d["family"] == fam]
                ax.scatter(rows["flops"], rows[bench], s=22, color=color, edgecolor="k", lw=0.4, zorder=3)
    ax.axhline(BENCHMARKS[bench][1], color="0.4", lw=0.8, ls=":")
    if cutoff_at is not None:
        ax.axvline(cutoff_at, color="0.3", lw=0.8, ls="-.")
    ax.set(xscale="log", xlabel="training compute 6ND (FLOPs)", ylabel=f"{BENCHMARKS[bench][0]} accuracy",
           ylim=(0, 1))
    ax.legend(fontsize=7, loc="upper left")


def plot_showcase(fits: dict, d: pd.DataFrame, bench: str, family: str, ax) -> None:
    """One held-out family: its models and each method's 90% new-model band."""
    rows = d[d["family"] == family].sort_values("flops")
    grid = np.logspace(np.log10(rows["flops"].min()) - 0.5, np.log10(rows["flops"].max()) + 0.5, 60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, m in enumerate(m for m in METHODS if m in fits):
            new = pd.DataFrame({"flops": grid})
            if fits[m].design.columns["group"] is not None:
                new["family"] = family  # absent from the k=0 fit: forecast from the population
            pred = fits[m].predict(new, kind="new_run", levels=(0.9,))
            ax.fill_between(grid, pred["lo90"], pred["hi90"], color=f"C{i}", alpha=0.15)
            ax.plot(grid, pred["median"], color=f"C{i}", lw=1.4, label=METHODS[m])
    ax.scatter(rows["flops"], rows[bench], s=30, facecolor="white", edgecolor="k", zorder=3,
               label="held-out models")
    ax.scatter(rows["flops"].iloc[:FAMILY_ALONE], rows[bench].iloc[:FAMILY_ALONE], s=30, color="k", zorder=4,
               label=f"its {FAMILY_ALONE} smallest (k=1 keeps the first)")
    ax.axhline(BENCHMARKS[bench][1], color="0.4", lw=0.8, ls=":")
    ax.set(xscale="log", xlabel="training compute 6ND (FLOPs)", ylabel=f"{BENCHMARKS[bench][0]} accuracy",
           ylim=(0, 1))
    ax.set_title(f"{family} held out: 90% new-model bands by method", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")


def plot_heldout(summ: pd.DataFrame, per: pd.DataFrame, path: Path, plt) -> None:
    """|error| and coverage per method and benchmark; per-family errors k=1 against k=0."""
    benches = list(dict.fromkeys(summ["benchmark"]))
    methods = [m for m in METHODS if m in set(summ["method"])]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    width = 0.8 / len(methods)
    x = np.arange(len(benches))
    for j, m in enumerate(methods):
        s = summ[summ["method"] == m].set_index("benchmark").reindex(benches)
        axes[0].bar(x + j * width, s["mean |err| (pts)"], width, label=METHODS[m], color=f"C{j}")
        axes[1].bar(x + j * width, s["coverage 90%"], width, color=f"C{j}")
        axes[1].scatter(x + j * width, s["coverage 50%"], marker="_", s=120, color="k", zorder=3)
    for a in axes[:2]:
        a.set_xticks(x + width * (len(methods) - 1) / 2, [BENCHMARKS[b][0] for b in benches])
    axes[0].set(ylabel="mean |error| (accuracy points)", title="held-out models (common targets)")
    axes[0].legend(fontsize=8)
    axes[1].axhline(0.9, color="k", ls="--", lw=0.8)
    axes[1].axhline(0.5, color="k", ls=":", lw=0.8)
    axes[1].set(ylim=(0, 1.05), ylabel="coverage (bars 90%, ticks 50%)", title="band coverage (new_run)")
    both = per[(per["kind"] == "new_run") & (per["rank"] > 1)]  # the models k=1 and k=0 both forecast
    fam = both.groupby(["benchmark", "held_out_family", "method"])["abs_err_pts"].mean().unstack("method")
    if {"k1", "k0"} <= set(fam.columns):
        for i, b in enumerate(benches):
            f = fam.loc[b] if b in fam.index.get_level_values(0) else None
            if f is not None:
                axes[2].scatter(f["k0"].clip(lower=0.1), f["k1"].clip(lower=0.1), s=18, color=f"C{i}",
                                label=BENCHMARKS[b][0])
        vals = fam[["k0", "k1"]].to_numpy().clip(0.1)
        lo, hi = float(np.nanmin(vals)) / 1.3, float(np.nanmax(vals)) * 1.3
        axes[2].plot([lo, hi], [lo, hi], color="k", lw=0.8)
        axes[2].set(xlabel="population, k=0: mean |error| (pts)", ylabel="pooled, k=1: mean |error| (pts)",
                    title="per held-out family (its models of rank ≥ 2)", xscale="log", yscale="log")
        axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def _gate(fit) -> str:
    """The gate's verdict with the worst R-hat and bulk ESS and the parameters they belong to."""
    s = fit.summary()
    s["name"] = s["parameter"] + s["family"].map(lambda f: f"[{f}]" if isinstance(f, str) else "")
    hi, lo = s.loc[s["r_hat"].idxmax()], s.loc[s["ess_bulk"].idxmin()]
    return (f"ok={fit.ok}, max R-hat {hi['r_hat']:.3f} ({hi['name']}), "
            f"min bulk ESS {lo['ess_bulk']:.0f} ({lo['name']})")


def _label(s: pd.DataFrame) -> pd.DataFrame:
    s = s.copy()
    s["benchmark"] = s["benchmark"].map(lambda b: BENCHMARKS[b][0])
    s["method"] = s["method"].map(lambda m: METHODS.get(m, m))
    return s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"MMLU only, held-out {', '.join(QUICK_FAMILIES)}, k=1/k=0/alone, no cutoff, "
                         f"chains={QUICK['chains']} x {QUICK['warmup']}+{QUICK['draws']} (for tests)")
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: this folder)")
    ap.add_argument("--benchmarks", nargs="+", choices=list(BENCHMARKS), default=None,
                    help=f"benchmark columns (default: {' '.join(DEFAULT_BENCHMARKS)}; --quick: mmlu)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="folder keeping each held-out fit's forecasts, so a long run can be resumed")
    args = ap.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import bayescale as bs
    from bayescale.result.io import versions

    t0 = time.perf_counter()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.cache is not None:
        args.cache.mkdir(parents=True, exist_ok=True)
    sampler = QUICK if args.quick else FULL
    benches = args.benchmarks or (["mmlu"] if args.quick else list(DEFAULT_BENCHMARKS))
    methods = ("k1", "k0", "alone") if args.quick else tuple(METHODS)

    df, notes = load_data(bs)
    per_parts, cut_parts, cut_fits, timing, held, showcase = [], [], {}, {}, {}, None
    for bench in benches:
        d = df[df[bench].notna()].copy()
        d["rank"] = _rank_in_family(d)
        law = law_for(BENCHMARKS[bench][1])
        sizes = d["family"].value_counts()
        fams = sorted(sizes[sizes >= MIN_FAMILY].index)
        if args.quick:
            fams = [f for f in QUICK_FAMILIES if f in fams]
        held[bench] = (fams, d)
        n_before = len(per_parts)
        for fam in fams:
            # the showcase family's fits are drawn in fit.png, so they are never read from the cache
            cache = None if (bench == benches[0] and fam == SHOWCASE) else args.cache
            parts, fits = leave_family_out(bs, d, law, bench, fam, sampler, methods, cache)
            per_parts += parts
            if cache is None and bench == benches[0] and fam == SHOWCASE:
                showcase = (fits, d)
        # summed per fit, so that forecasts read back from --cache count with their original time
        secs = sum(float(p["fit_seconds"].iloc[0]) for p in per_parts[n_before:])
        timing[f"{BENCHMARKS[bench][0]} leave-family-out, {len(fams)} families x {len(methods)} fits"] = secs
        if not args.quick:
            t = time.perf_counter()
            p, fits = cutoff(bs, d, law, bench, sampler)
            cut_parts.append(p)
            cut_fits[bench] = fits
            timing[f"{BENCHMARKS[bench][0]} FLOPs cutoff, 2 fits"] = time.perf_counter() - t

    per = pd.concat(per_parts, ignore_index=True)
    nr = per[per["kind"] == "new_run"]
    # common targets: the models every method forecasts (rank > FAMILY_ALONE in the family)
    common = nr[nr["rank"] > FAMILY_ALONE]
    gate = per.drop_duplicates(["benchmark", "method", "held_out_family"]).groupby(
        ["benchmark", "method"], sort=False).agg(fits=("fit_ok", "size"), passed=("fit_ok", "sum"),
                                                 seconds=("fit_seconds", "mean")).reset_index()
    summ = summarise(common, ["benchmark", "method"]).merge(gate, on=["benchmark", "method"])
    summ_mean = summarise(per[(per["kind"] == "mean") & (per["rank"] > FAMILY_ALONE)],
                          ["benchmark", "method"])
    summ_k1 = summarise(nr[nr["method"].isin(["k1", "k0"]) & (nr["rank"] > 1)], ["benchmark", "method"])

    # per held-out family: mean |error| and 90% hits per method on the common targets
    pf = common.groupby(["benchmark", "held_out_family", "method"], sort=False).agg(
        n=("abs_err_pts", "size"), err=("abs_err_pts", "mean"), hit90=("in_90", "sum")).reset_index()
    fam_tabs = {}
    for bench, gb in pf.groupby("benchmark", sort=False):
        rows = []
        for fam, g in gb.groupby("held_out_family"):
            g = g.set_index("method")
            row = {"family": fam, "targets": int(g["n"].iloc[0])}
            for m in methods:
                if m in g.index:
                    row[METHODS[m]] = f"{g.loc[m, 'err']:.1f} ({int(g.loc[m, 'hit90'])})"
            rows.append(row)
        fam_tabs[bench] = pd.DataFrame(rows)
    # which method has the smallest mean |error| per held-out family
    wins = (pf.loc[pf.groupby(["benchmark", "held_out_family"])["err"].idxmin()]
            .groupby(["benchmark", "method"]).size().unstack(fill_value=0))

    # every held-out forecast (new_run), for re-analysis
    keep = ["benchmark", "method", "held_out_family", "model", "rank", "flops", "truth", "median",
            "lo50", "hi50", "lo90", "hi90", "in_50", "in_90", "abs_err_pts", "fit_ok"]
    csv = nr[keep]
    cut = pd.concat(cut_parts, ignore_index=True) if cut_parts else None
    if cut is not None:
        c = cut[cut["kind"] == "new_run"].copy()
        c["method"] = "cutoff, " + c["method"]
        c["held_out_family"] = df.loc[c["row"], "family"].to_numpy()
        csv = pd.concat([csv, c[keep]], ignore_index=True)
    csv.to_csv(out / "heldout.csv", index=False, float_format="%.5g")

    # figures
    panels = (showcase is not None) + bool(cut_fits)
    if panels:
        fig, axes = plt.subplots(1, panels, figsize=(7.5 * panels, 5.2), squeeze=False)
        axes = list(axes.ravel())
        if showcase is not None:
            plot_showcase(showcase[0], showcase[1], benches[0], SHOWCASE, axes.pop(0))
        if cut_fits:
            bench = benches[0]
            plot_bands(cut_fits[bench]["families"], held[bench][1], bench, FIGURE_FAMILIES, axes[0],
                       cutoff_at=CUTOFF)
            axes[0].set_title(f"{BENCHMARKS[bench][0]}: fitted on models ≤ {CUTOFF:.2g} FLOPs (dash-dot), "
                              f"medians and 90% new-model bands", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / "fit.png", dpi=120, bbox_inches="tight")
        plt.close(fig)
    plot_heldout(summ, per, out / "heldout.png", plt)
    wall = time.perf_counter() - t0
    cached = sum(bool(p.get("from_cache", pd.Series([False])).iloc[0]) for p in per_parts)

    # --- report -----------------------------------------------------------------------
    base = ["benchmark", "method", "n", "mean |err| (pts)", "median |err| (pts)", "bias (pts)",
            "coverage 50%", "coverage 90%"]
    k1 = summ[summ["method"] == "k1"].set_index("benchmark")
    floors = ", ".join(f"{BENCHMARKS[b][0]} {binomial_floor(int(r['n']), 0.9)} of {int(r['n'])}"
                       for b, r in k1.iterrows())
    cut_text = ""
    if cut is not None:
        cn = cut[cut["kind"] == "new_run"].copy()
        cn["targets"] = np.where(cn["family_seen"], "family seen below cutoff", "new family")
        cs = pd.concat([summarise(cn, ["benchmark", "method"]).assign(targets="all"),
                        summarise(cn, ["benchmark", "method", "targets"])], ignore_index=True)
        order = {b: i for i, b in enumerate(benches)}
        cs = cs.sort_values(["benchmark", "method", "targets"], key=lambda c: c.map(order)
                            if c.name == "benchmark" else c, kind="stable")
        gates = "\n".join(f"- {BENCHMARKS[b][0]}, {m}: {_gate(f)}" for b, fs in cut_fits.items()
                          for m, f in fs.items())
        cut_text = f"""
## 2. The paper's protocol: FLOPs cutoff at {CUTOFF:.2g}

The models with 6ND ≤ {CUTOFF:.2g} (Llama-2-7B) are the training set and every model above it is forecast
(`kind="new_run"`). "families": the hierarchical fit; a model of a family seen below the cutoff is forecast
from that family's posterior, one of a family entirely above it from the population. "one curve": the same
law with no family effects (`group=None`).

{markdown_table(_fmt(_label(cs)[["benchmark", "method", "targets", *base[2:]]]))}

{gates}
"""
    showcase_gates = "" if showcase is None else (
        f"The diagnostics gate of the {SHOWCASE} fits (held out from {BENCHMARKS[benches[0]][0]}):\n\n"
        + "\n".join(f"- {METHODS[m]}: {_gate(f)}" for m, f in showcase[0].items()) + "\n")
    fam_text = "\n\n".join(f"**{BENCHMARKS[b][0]}**\n\n{markdown_table(t)}" for b, t in fam_tabs.items())
    win_text = "; ".join(f"{BENCHMARKS[b][0]}: " + ", ".join(f"{METHODS[m]} {int(wins.loc[b, m])}"
                                                             for m in methods if m in wins.columns)
                         for b in benches if b in wins.index)
    quick_note = ("**QUICK MODE** (one benchmark, one held-out family, short chains; for tests only, "
                  "do not quote).") if args.quick else ""
    text = f"""# Observational scaling (Ruan et al. 2024): family effects — results

Generated {_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} by
`python case_studies/obs_scaling/run.py{' --quick' if args.quick else ''}`.
{quick_note}

## Settings
- Data: `bs.datasets.load("obs_scaling")`, {len(df)} models in {df['family'].nunique()} families after:
{chr(10).join('  - ' + n for n in notes)}
- Law: `case_studies/obs_scaling/law.toml`: accuracy = g + (1 − g)·sigmoid(w·log(C/C_ref) + b),
  `outcome = "unit"` (logit-normal noise), C = 6ND; b and w partially pooled across families.
  Chance level g: {', '.join(f'{BENCHMARKS[b][0]} {BENCHMARKS[b][1]}' for b in benches)}.
- Held-out families: every family with ≥ {MIN_FAMILY} models
  ({', '.join(f'{BENCHMARKS[b][0]} {len(v[0])}' for b, v in held.items())}). One fit per method and family:
  - **pooled, k=1**: `bs.backtest(split=("leave-family-out", family, 1))`: all other families and the
    family's smallest-compute model;
  - **pooled, k=2**: the same, keeping its two smallest models{' (not run in quick mode)' * args.quick};
  - **population, k=0**: the family left out entirely, forecast from the population of families;
  - **family alone, 2 smallest**: the law fitted to the family's two smallest-compute models alone
    (`group=None`, same priors): no pooling.
- Scored on the common targets, the models of rank ≥ {FAMILY_ALONE + 1} by compute in their family, which
  every method forecasts. Error = posterior median − observed, in accuracy points (×100); coverage = share of
  observed accuracies inside the central 50% / 90% band of `kind="new_run"` (one new model).
- Sampler: NUTS, chains={sampler['chains']}, warmup={sampler['warmup']}, draws={sampler['draws']}, seed=0.
- Versions: {', '.join(f'{k} {v}' for k, v in versions().items() if v)}; Python {sys.version.split()[0]}.
- Time: {'; '.join(f'{k}: {v:.0f} s' for k, v in timing.items())} (fits summed; on a shared 2-core CPU
  machine, so load from other work inflates them). This invocation: {wall:.0f} s wall{
    f', the forecasts of {cached} earlier fits read from --cache' if cached else ''}.

## 1. Leave one family out

Common targets, `kind="new_run"`. "fits" / "passed": fits run / fits passing the diagnostics gate;
"seconds": mean wall time of one fit.

{markdown_table(_fmt(_label(summ)[[*base, 'fits', 'passed', 'seconds']]))}

The same targets, `kind="mean"` (the band of the law alone, without the new model's noise):

{markdown_table(_fmt(_label(summ_mean)[base]))}

Every model the k=1 forecast covers (rank ≥ 2), k=1 against k=0:

{markdown_table(_fmt(_label(summ_k1)[base]))}

For a calibrated 90% band, fewer hits than {floors} would have probability below 0.01 (binomial; the
targets of one family are not independent, so this is only a rough yardstick).

Held-out families won (smallest mean |error| over the common targets; a tie counts for the first method
listed): {win_text}.

{showcase_gates}
Per held-out family: mean |error| in points over its common targets (in brackets: how many of them lie
inside the 90% band).

{fam_text}
{cut_text}
## Files
- `heldout.png`: mean |error| and coverage per method and benchmark (common targets), and per held-out family
  the pooled k=1 error against the population k=0 error.
- `fit.png`: {BENCHMARKS[benches[0]][0]}, the held-out {SHOWCASE} with each method's 90% new-model band{
    '' if not cut_fits else '; and the cutoff fit with the bands of a few families and of a new family'}.
- `heldout.csv`: every held-out forecast (`kind="new_run"`): method, family, model, observed, median, bands.
"""
    (out / "RESULTS.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
