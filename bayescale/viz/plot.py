"""Figures: fits (data, median and bands per family), allocation frontiers, posterior
predictive checks, SBC rank histograms, and the sampler's rank and trace plots (ArviZ).
The only module (with the report) that draws.

:func:`plot` draws whatever it is given: a :class:`~bayescale.result.fit.Fit`, an
:class:`~bayescale.forecast.allocate.Allocation` or an SBC result.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import BayescaleError
from ..evaluate.ppc import KS_95, loo_pit_values, ppc_summary, replicate
from ..evaluate.sbc import SBCResult
from ..forecast.allocate import Allocation

MAX_CURVES = 8  # draw curves along fixed input ratios when there are at most this many
MAX_SAMPLER_VARS = 6  # rank and trace plots: a handful of panels stays readable


def plot_fit(fit, level: float = 0.9, extend: float = 1.0, ax=None, cols: int = 3,
             panel: tuple = (4.5, 3.6)):
    """Plot ``fit``: one panel per family, outcome against the law's first input.

    Along each distinct ratio of the other inputs to the first (e.g. tokens per
    parameter), the posterior median of the law and its ``level`` band are drawn
    from the smallest observed value to ``extend`` decades beyond the largest.

    Parameters
    ----------
    fit : Fit
    level : float
        Central credible level of the band.
    extend : float
        Decades drawn beyond the largest observed value of the first input.
    ax : matplotlib Axes or array of Axes, optional
        Where to draw; by default a new figure with one panel per family.
    cols : int
        Panels per row of a new figure.
    panel : (float, float)
        Width and height of one panel of a new figure, in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    design = fit.design
    xmap, ycol = design.columns["x"], design.columns["y"]
    first = list(xmap)[0]
    n = design.n_families
    if ax is None:
        cols = max(1, min(n, int(cols)))
        rows = (n + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(panel[0] * cols, panel[1] * rows), squeeze=False)
        axes = axes.ravel()
    else:
        fig, axes = ax.figure, np.atleast_1d(ax)
    for k, family in enumerate(design.families):
        a = axes[k % len(axes)]
        rows = design.family_idx == k
        curves = _curves(design, rows, first, extend) if set(xmap) == set(design.inputs) else []
        for i, (ratio, grid) in enumerate(curves):
            frame = pd.DataFrame({xmap[name]: values for name, values in grid.items()})
            if design.columns["group"] is not None:
                frame[design.columns["group"]] = family
            pred = fit.predict(frame, kind="mean", levels=(level,))
            x = grid[first]
            color = f"C{i % 10}"
            a.fill_between(x, pred[f"lo{100 * level:g}"], pred[f"hi{100 * level:g}"], color=color, alpha=0.2)
            a.plot(x, pred["median"], color=color, lw=1.2, label=ratio)
            mask = rows & _on_ratio(design, first, ratio)
            a.scatter(design.inputs[first][mask], design.y[mask], s=12, color=color, zorder=3)
        x = design.frame[xmap[first]].to_numpy(dtype=float)
        if not curves:  # no few fixed ratios to draw as curves: bands at the observed rows
            pred = fit.predict(design.frame[rows], kind="mean", levels=(level,))
            med = pred["median"].to_numpy()
            band = [med - pred[f"lo{100 * level:g}"].to_numpy(), pred[f"hi{100 * level:g}"].to_numpy() - med]
            a.errorbar(x[rows], med, yerr=band, fmt="none", color="C0", alpha=0.5, lw=1)
            a.scatter(x[rows], design.y[rows], s=10, color="k", zorder=3)
        positive = design.outcome.kind == "positive"
        a.set(xscale="log" if (x > 0).all() else "linear", yscale="log" if positive else "linear",
              xlabel=xmap[first], ylabel=ycol,
              title=family if n > 1 else "")  # one family: the figure's title names the law
        if positive:
            _plain_log_ticks(a.yaxis)
        if len(a.get_legend_handles_labels()[0]) > 1:
            a.legend(fontsize="small", title_fontsize="small", title=_ratio_title(design, first))
    for a in axes[n:]:
        a.set_visible(False)
    fig.suptitle(f"{fit.law.name}: posterior median and {100 * level:g}% band", fontsize="medium")
    fig.tight_layout()
    return fig


def _plain_log_ticks(axis) -> None:
    """Plain numbers (2, 3, 4) rather than 3 x 10^0 on a log axis that spans about a decade."""
    from matplotlib.ticker import LogFormatter

    axis.set_major_formatter(LogFormatter())
    axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4)))


def _ratios(design, first):
    others = [k for k in design.inputs if k != first]
    if not others:
        return np.zeros(len(design.y))
    return np.round(np.log10(design.inputs[others[0]] / design.inputs[first]), 2)


def _on_ratio(design, first, label):
    if not label:
        return np.ones(len(design.y), bool)
    return np.array([_label(r) == label for r in _ratios(design, first)])


def _label(r) -> str:
    return f"{10 ** r:.3g}"


def _ratio_title(design, first) -> str:
    others = [k for k in design.inputs if k != first]
    return f"{others[0]}/{first}" if others else ""


def _curves(design, rows, first, extend):
    """(label, inputs) per curve; empty when the other inputs do not form few fixed ratios."""
    ratios = _ratios(design, first)
    distinct = np.unique(ratios[rows])
    if len(distinct) > MAX_CURVES or len(design.inputs) > 2:
        return []
    out = []
    for r in distinct:
        on = rows & (ratios == r)
        lo, hi = design.inputs[first][on].min(), design.inputs[first][on].max()
        x = np.logspace(np.log10(lo), np.log10(hi) + extend, 60)
        grid = {first: x}
        others = [k for k in design.inputs if k != first]
        if others:
            grid[others[0]] = x * 10 ** r
        out.append((_label(r) if others else "", grid))
    return out


def plot_allocation(allocation, ax=None):
    """Compute-optimal N* and tokens per parameter against compute, median and widest band."""
    import matplotlib.pyplot as plt

    table, level = allocation.table, max(allocation.columns["levels"])
    if ax is None:
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
    fig = np.atleast_1d(ax)[0].figure
    left, right = np.atleast_1d(ax)[:2]
    for i, (family, rows) in enumerate(table.groupby("family", sort=False)):
        color = f"C{i % 10}"
        for a, key in ((left, "N"), (right, "tokens_per_param")):
            a.fill_between(rows["C"], rows[f"{key}_lo{100 * level:g}"], rows[f"{key}_hi{100 * level:g}"],
                           color=color, alpha=0.2)
            a.plot(rows["C"], rows[f"{key}_median"], color=color, marker="o", ms=3, label=family)
    left.set(xscale="log", yscale="log", xlabel="compute C", ylabel=f"N* ({allocation.columns['N']})",
             title="Compute-optimal size")
    right.set(xscale="log", yscale="log", xlabel="compute C", ylabel="D*/N*", title="Tokens per parameter")
    if table["family"].nunique() > 1:
        left.legend(fontsize=7)
    fig.suptitle(f"median and {100 * level:g}% band", fontsize=10)
    fig.tight_layout()
    return fig


def ppc_figure(fit, seed: int = 0, figsize: tuple = (10, 4.2)):
    """Two panels: observed against replicated y, and the LOO-PIT ECDF minus uniform.

    Left: per family, observed y against the posterior predictive median with
    90% interval bars, log-log, with the line y = x.  Right: ECDF of the LOO-PIT
    values minus the uniform CDF, per family and over all rows, with the band
    ``+-1.36 / sqrt(n)`` (5% Kolmogorov, all rows).
    """
    import matplotlib.pyplot as plt

    reps = replicate(fit, seed)
    pit = loo_pit_values(fit, reps, seed)
    y = fit.design.y
    back = fit.design.outcome.inverse
    med = back(np.median(reps, 0))
    lo, hi = back(np.quantile(reps, [0.05, 0.95], axis=0))
    fig, (left, right) = plt.subplots(1, 2, figsize=figsize)
    for k, family in enumerate(fit.design.families):
        m = fit.design.family_idx == k
        left.errorbar(y[m], med[m], yerr=[med[m] - lo[m], hi[m] - med[m]], fmt="o", ms=3,
                      capsize=2, label=family)
    span = [min(y.min(), lo.min()), max(y.max(), hi.max())]
    left.plot(span, span, "k--", lw=1, label="y = x")
    scale = "log" if fit.design.outcome.kind == "positive" else "linear"
    left.set(xscale=scale, yscale=scale, xlabel="observed y",
             ylabel="replicated y: median, 90% interval", title="Observed vs replicated")
    if scale == "log":
        _plain_log_ticks(left.xaxis)
        _plain_log_ticks(left.yaxis)
    left.legend(fontsize="small")
    grid = np.linspace(0, 1, 201)
    groups = [(f, fit.design.family_idx == k) for k, f in enumerate(fit.design.families)]
    if len(groups) > 1:
        groups.append(("all", np.ones(len(y), bool)))
    for name, m in groups:
        u = np.sort(pit[m])
        right.step(grid, np.searchsorted(u, grid, side="right") / len(u) - grid, where="post",
                   label=name, lw=2 if name == "all" or len(groups) == 1 else 1)
    band = KS_95 / np.sqrt(len(y))
    right.fill_between(grid, -band, band, color="grey", alpha=0.2, label="95% band")
    right.axhline(0, color="k", lw=0.8)
    right.set(xlabel="LOO-PIT", ylabel="ECDF - uniform", xlim=(0, 1), title="LOO-PIT calibration")
    right.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    return fig


def plot_sbc(result, bins: int = 10):
    """Rank histograms, one panel per quantity, with the 99% band of a uniform histogram."""
    import matplotlib.pyplot as plt

    n = len(result.quantities)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.2 * rows), squeeze=False)
    reps = len(result.ranks)
    lo, hi = stats.binom.ppf([0.005, 0.995], reps, 1 / bins)
    for ax, q in zip(axes.flat, result.quantities):
        u = result.ranks[q].to_numpy() / (result.draws + 1)
        ax.hist(u, bins=bins, range=(0, 1), color="C0", edgecolor="white")
        ax.axhspan(lo, hi, color="0.85", zorder=0)
        ax.set_title(q, fontsize=9)
        ax.set_yticks([])
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(f"{result.law}: SBC rank histograms ({reps} replicates)", fontsize=10)
    fig.tight_layout()
    return fig


def sampler_variables(fit, limit: int = MAX_SAMPLER_VARS) -> list[str]:
    """The few quantities whose chains the rank and trace plots show.

    The law's parameters that take one value for every family (all of them for a
    single family), then ``sigma``, at most ``limit`` in all: per-family and
    non-centred auxiliary quantities would multiply the panels past reading.
    """
    post = fit.idata.posterior
    one = [name for name in fit.law.parameters
           if fit.design.n_families == 1 or fit.structure.pool(name) == "shared"]
    names = [n for n in one if n in post.data_vars]
    if "sigma" in post.data_vars:
        names = names[:max(0, limit - 1)] + ["sigma"]
    return names[:limit]


def _sampler_dataset(fit, var_names):
    """The posterior of ``var_names``, a shared parameter's copy per family reduced to one."""
    import xarray as xr

    post = fit.idata.posterior
    names = sampler_variables(fit) if var_names is None else list(var_names)
    missing = [n for n in names if n not in post.data_vars]
    if missing or not names:
        raise BayescaleError(f"no posterior quantity {missing[0] if missing else '(none given)'!r}; "
                         f"the posterior has {', '.join(post.data_vars)}.")
    data = {}
    for name in names:
        values = post[name]
        if "family" in values.dims and (fit.design.n_families == 1 or name in fit.law.parameters
                                        and fit.structure.pool(name) == "shared"):
            values = values.isel(family=0, drop=True)  # one value repeated for every family
        data[name] = values
    return xr.Dataset(data)


def _arviz_figure(draw, fit, var_names, height: float):
    """Run an ``arviz_plots`` function on the chosen quantities; returns its matplotlib Figure."""
    data = _sampler_dataset(fit, var_names)
    n = sum(int(np.prod([data[v].sizes[d] for d in data[v].dims if d not in ("chain", "draw")]))
            for v in data.data_vars)
    cols = min(2, max(1, n))
    rows = -(-n // cols)
    pc = draw(data, backend="matplotlib", col_wrap=cols,
              figure_kwargs={"figsize": (5.6 * cols, height * rows)})
    fig = pc.viz.ds["figure"].item()
    fig.tight_layout()
    return fig


def rank_figure(fit, var_names=None):
    """ArviZ rank plot of each chain (``arviz_plots.plot_rank``) for a few quantities.

    Each line is one chain's ECDF of its fractional ranks minus the uniform one;
    chains that explored the same posterior stay inside the simultaneous band
    around zero.  ``var_names`` defaults to :func:`sampler_variables`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import arviz_plots as azp

    return _arviz_figure(azp.plot_rank, fit, var_names, 2.8)


def trace_figure(fit, var_names=None):
    """ArviZ trace plot (``arviz_plots.plot_trace``): each chain's draws in order.

    Well-mixed chains overlap as stationary noise; a drift or a chain stuck
    apart shows a sampler that has not converged.  ``var_names`` defaults to
    :func:`sampler_variables`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import arviz_plots as azp

    return _arviz_figure(azp.plot_trace, fit, var_names, 2.6)


def plot(obj, **kwargs):
    """A Figure of ``obj``: a fit (:func:`plot_fit`), an allocation (:func:`plot_allocation`) or an
    SBC result (:func:`plot_sbc`); ``kwargs`` go to that function."""
    if isinstance(obj, Allocation):
        return plot_allocation(obj, **kwargs)
    if isinstance(obj, SBCResult):
        return plot_sbc(obj, **kwargs)
    if hasattr(obj, "idata") and hasattr(obj, "design"):
        return plot_fit(obj, **kwargs)
    raise TypeError(f"bs.plot draws a Fit, an Allocation or an SBC result, not {type(obj).__name__}.")


def ppc(fit, summary: bool = False, seed: int = 0):
    """Posterior predictive check of ``fit``: :func:`ppc_figure`, or with ``summary=True`` its
    numbers (:func:`bayescale.evaluate.ppc.ppc_summary`)."""
    return ppc_summary(fit, seed) if summary else ppc_figure(fit, seed)
