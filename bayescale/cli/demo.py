"""``bayescale demo``: fit a simulated ladder, forecast a held-out larger model, check the truth.

A 3-family Chinchilla ladder with two seeds per size is simulated from known
parameters (:func:`bayescale.datasets.simulate`).  The largest model size of
every family (all its rows: both seeds, every token count) is held out as the
"larger model" the ladder is meant to forecast.  The remaining rows are fitted
with the hierarchical Chinchilla law; the held-out runs are then forecast as new
runs (``kind="new_run"``: law + seed effect + observation noise) and each
observed held-out loss is checked against the 90% band.  The noise-free loss of
the true law is shown beside it.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

LAW = "chinchilla"
LEVELS = (0.5, 0.9)
COLUMNS = {"N": "params", "D": "tokens"}


def split_largest(df: pd.DataFrame, size: str = "params", group: str = "family"):
    """(train, held_out): held_out holds every row of each family's largest ``size``."""
    largest = df.groupby(group)[size].transform("max")
    held = df[size] == largest
    return df[~held].copy(), df[held].copy()


def true_loss(df: pd.DataFrame, truth: dict, law) -> np.ndarray:
    """Noise-free loss of the true law at the rows of ``df`` (``truth`` on the paper scale)."""
    out = np.empty(len(df))
    for i, (_, row) in enumerate(df.iterrows()):
        values = {p: truth[p][row["family"]] for p in law.parameters}
        inputs = {k: float(row[col]) for k, col in COLUMNS.items()}
        out[i] = float(law.formula(values | inputs, np))
    return out


def mark_held_out(fig, fit, held: pd.DataFrame) -> None:
    """Add the held-out rows to ``bs.plot(fit)``'s panels as crosses, coloured by their D/N curve."""
    design = fit.design
    curves = np.unique(np.round(np.log10(design.inputs["D"] / design.inputs["N"]), 2))
    for k, family in enumerate(design.families):
        rows = held[held["family"] == family]
        if k >= len(fig.axes) or rows.empty:
            continue
        ratio = np.round(np.log10(rows["tokens"].to_numpy() / rows["params"].to_numpy()), 2)
        index = np.clip(np.searchsorted(curves, ratio), 0, len(curves) - 1)
        fig.axes[k].scatter(rows["params"], rows["loss"], marker="x", s=24, zorder=4,
                            c=[f"C{i % 10}" for i in index], label="held out")
    fig.suptitle(f"{fig.get_suptitle()}; crosses: held-out runs (not fitted)", fontsize=10)


def run_demo(out_dir="bayescale-demo", chains: int = 4, warmup: int = 1000, draws: int = 1000,
             seed: int = 0, echo=print, progress: bool | None = None) -> dict:
    """Simulate, fit, forecast the held-out larger model and report its coverage.

    Parameters
    ----------
    out_dir : path
        Folder for ``demo_fit.png`` (created).
    chains, warmup, draws, seed : int
        NUTS settings passed to :func:`bayescale.fit`.
    echo : callable
        Called with each line of the report (``print`` by default; a no-op to silence).
    progress : bool, optional
        Progress bar of the sampler; by default only when stderr is a terminal.

    Returns
    -------
    dict
        ``ok`` (diagnostics gate passed), ``coverage90`` (share of held-out losses inside
        their 90% band), ``coverage90_law`` (the same for the noise-free true loss),
        ``n_heldout``, ``png`` (path of the figure), ``seconds``, ``warnings`` and the
        per-row ``forecast`` DataFrame.
    """
    import bayescale as bs

    from .format import format_calibration, format_summary, format_verdict

    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = bs.datasets.simulate(LAW, seed=seed)
    truth = df.attrs["truth"]
    train, held = split_largest(df)
    echo(f"Simulated a {LAW} ladder: {df['family'].nunique()} families, "
         f"{df['params'].nunique()} sizes ({df['params'].min():.2g} to {df['params'].max():.2g} "
         f"parameters), {df['seed'].nunique()} seeds per size, {len(df)} rows.")
    echo(f"Holding out the largest size of each family ({len(held)} rows); fitting {len(train)} rows "
         f"with {chains} chain(s) x {draws} draws after {warmup} warmup ...")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.errors.BayescaleWarning)
        fit = bs.fit(train, law=LAW, y="loss", x=dict(COLUMNS), group="family", run="run",
                     chains=chains, warmup=warmup, draws=draws, seed=seed, progress=progress)
    echo(f"Fitted in {fit.settings.seconds:.1f} s.")
    echo(format_calibration(fit.settings.extrapolation))
    echo("")
    echo("Posterior summary (mean, sd, 90% interval, R-hat, effective sample sizes):")
    echo(format_summary(fit.summary()))
    echo("")
    for line in format_verdict(fit):
        echo(line)
    echo("")
    echo("True values (paper scale): " + "; ".join(
        f"{p} " + ", ".join(f"{f}={v:.4g}" for f, v in values.items()) if len(set(values.values())) > 1
        else f"{p}={next(iter(values.values())):.4g}" for p, values in truth.items()))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.errors.BayescaleWarning)
        pred = fit.predict(held[["family", "params", "tokens"]], kind="new_run", levels=LEVELS, seed=seed)
    observed = held["loss"].to_numpy()
    law_truth = true_loss(held, truth, fit.law)
    inside = (pred["lo90"].to_numpy() <= observed) & (observed <= pred["hi90"].to_numpy())
    inside_law = (pred["lo90"].to_numpy() <= law_truth) & (law_truth <= pred["hi90"].to_numpy())
    table = pd.DataFrame({
        "family": held["family"].to_numpy(), "run": held["run"].to_numpy(),
        "params": held["params"].to_numpy(), "tokens": held["tokens"].to_numpy(),
        "observed": observed, "true_law": law_truth, "median": pred["median"].to_numpy(),
        "lo90": pred["lo90"].to_numpy(), "hi90": pred["hi90"].to_numpy(), "inside90": inside,
    })
    coverage = float(inside.mean())
    coverage_law = float(inside_law.mean())
    echo("")
    echo(f"Forecast of the held-out larger model (new runs, kind='new_run'; held-out size "
         f"{float(held['params'].max()):.2g} parameters, largest fitted "
         f"{float(train['params'].max()):.2g}):")
    echo(table.to_string(index=False, formatters={
        "params": "{:.3g}".format, "tokens": "{:.3g}".format, "observed": "{:.4f}".format,
        "true_law": "{:.4f}".format, "median": "{:.4f}".format, "lo90": "{:.4f}".format,
        "hi90": "{:.4f}".format, "inside90": lambda v: "yes" if v else "NO"}))
    echo("")
    echo(f"Coverage: {inside.sum()}/{len(inside)} held-out losses ({100 * coverage:.0f}%) lie inside "
         f"their 90% band (expected about 90%); the noise-free true loss lies inside in "
         f"{inside_law.sum()}/{len(inside_law)}.")

    import matplotlib.pyplot as plt

    fig = bs.plot(fit)
    mark_held_out(fig, fit, held)
    png = out / "demo_fit.png"
    fig.savefig(png, dpi=120)
    plt.close(fig)
    echo(f"Figure written to {png}")
    seconds = round(time.perf_counter() - started, 2)
    echo(f"Demo finished in {seconds:.1f} s.")
    return {"ok": bool(fit.ok), "coverage90": coverage, "coverage90_law": coverage_law,
            "n_heldout": int(len(held)), "png": str(png), "seconds": seconds,
            "warnings": [str(w) for w in fit.warnings], "forecast": table}


__all__ = ["run_demo", "split_largest", "true_loss"]
