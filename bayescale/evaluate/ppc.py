"""Posterior predictive checks: does data replicated from the fit look like the data?

For every posterior draw, :func:`replicate` simulates log y at the observed
rows from the model itself (the law's mean from that draw's family parameters,
plus that draw's run effect, plus noise of scale ``sqrt(sigma^2 + se_log^2)``,
Student-t when the fit used it).  :func:`ppc_summary` scores calibration per
family: the share of observations inside their 50% and 90% posterior
predictive intervals, the mean standardized residual, and the uniformity of
the LOO-PIT values (PSIS-LOO, :func:`arviz_stats.loo_pit`), which under a
calibrated model are close to uniform on (0, 1).  :func:`ppc_figure` draws both.

The in-sample intervals use every observation twice (to fit and to check), so
they are slightly optimistic; the LOO-PIT values leave each observation out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..model import OBS, RUN, law_mean
from ..result.predictive import draws, family_parameters

LEVELS = (0.5, 0.9)
KS_95 = 1.36  # asymptotic 5% Kolmogorov critical value times sqrt(n)


def replicate(fit, seed: int = 0) -> np.ndarray:
    """Replicated y on the link scale (log or logit), shape (draws, observations).

    Draws are stacked chain by chain.

    Row ``d`` is one dataset simulated from posterior draw ``d`` at the observed
    inputs, families and runs (the same order as ``fit.idata`` ``(chain, draw)``
    flattened).
    """
    post, s, design = fit.idata.posterior, fit.structure, fit.design
    rng = np.random.default_rng(seed)
    sigma = draws(post, "sigma")
    n_draws, n_obs = sigma.shape[0], len(design.y)
    scaled = design.scaled(design.inputs)
    mean_log = np.empty((n_draws, n_obs))
    for k, family in enumerate(design.families):
        rows = design.family_idx == k
        if not rows.any():
            continue
        params = family_parameters(post, s, design, family, rng)
        env = {name: v[:, None] for name, v in params.items()}
        mu = law_mean(s.law, env, {name: v[None, rows] for name, v in scaled.items()}, np)
        mean_log[:, rows] = design.outcome.forward(np.asarray(mu))
    if s.n_runs:
        effect = draws(post, RUN)
        has_run = design.run_idx >= 0
        mean_log[:, has_run] += effect[:, design.run_idx[has_run]]
    scale = np.sqrt(sigma[:, None] ** 2 + design.se_log[None, :] ** 2)
    if s.likelihood == "student_t":
        z = rng.standard_t(draws(post, "nu")[:, None], size=(n_draws, n_obs))
    else:
        z = rng.standard_normal((n_draws, n_obs))
    return mean_log + scale * z


def loo_pit_values(fit, reps: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """LOO-PIT of each observation (PSIS-LOO, :func:`arviz_stats.loo_pit`).

    The replicates go into a ``posterior_predictive`` group of a copy of
    ``fit.idata``; ``fit.idata`` itself is left untouched.
    """
    from arviz_stats import loo_pit

    reps = replicate(fit, seed) if reps is None else reps
    obs = fit.idata.observed_data[OBS]
    n_chain, n_draw = fit.idata.posterior.sizes["chain"], fit.idata.posterior.sizes["draw"]
    pp = xr.Dataset({OBS: (("chain", "draw", "obs"), reps.reshape(n_chain, n_draw, -1))},
                    coords={"chain": fit.idata.posterior["chain"].values,
                            "draw": fit.idata.posterior["draw"].values,
                            "obs": obs["obs"].values})
    tree = xr.DataTree.from_dict({
        "posterior": fit.idata.posterior.to_dataset(),
        "log_likelihood": fit.idata.log_likelihood.to_dataset()[[OBS]],
        "observed_data": fit.idata.observed_data.to_dataset()[[OBS]],
        "posterior_predictive": pp,
    })
    pit = loo_pit(tree, var_names=OBS)
    pit = pit[OBS] if isinstance(pit, (xr.Dataset, xr.DataTree)) else pit
    return np.asarray(pit, dtype=float).reshape(-1)


def uniformity_distance(u) -> float:
    """Kolmogorov distance sup |ECDF(u) - u| of values on (0, 1) from the uniform."""
    u = np.sort(np.asarray(u, dtype=float))
    n = len(u)
    if n == 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - u), np.max(u - (i - 1) / n)))


def _scores(log_y, reps, pit) -> dict:
    out = {"n": len(log_y)}
    for level in LEVELS:
        lo, hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2], axis=0)
        out[f"coverage{100 * level:g}"] = float(np.mean((log_y >= lo) & (log_y <= hi)))
    z = (log_y - reps.mean(0)) / reps.std(0)
    out["mean_std_resid"] = float(np.mean(z))
    out["pit_ks"] = uniformity_distance(pit)
    out["pit_ks_crit95"] = KS_95 / np.sqrt(len(log_y))
    return out


def ppc_summary(fit, seed: int = 0) -> pd.DataFrame:
    """Calibration per family and over ``"all"`` rows.

    Columns: ``family``, ``n``, ``coverage50`` and ``coverage90`` (share of
    observations inside their central 50% / 90% posterior predictive interval;
    about 0.5 and 0.9 when calibrated), ``mean_std_resid`` (mean of
    (log y - replicate mean) / replicate sd; near 0 unless the law is biased),
    ``pit_ks`` (Kolmogorov distance of the LOO-PIT values from uniform) and
    ``pit_ks_crit95`` (its asymptotic 5% critical value ``1.36 / sqrt(n)``).

    These are marginal checks: a law whose misfit the noise scale ``sigma``
    can absorb (e.g. a one-input power law on a Chinchilla ladder) can pass
    them; look at the residual pattern in ``bs.ppc(fit)``'s figure too.
    """
    reps = replicate(fit, seed)
    pit = loo_pit_values(fit, reps, seed)
    log_y = fit.design.y_link()  # an exact 0 or 1 at its censoring bound
    rows = []
    for k, family in enumerate(fit.design.families):
        if fit.design.n_families == 1 and family == "all":
            continue  # one unnamed family: its row is the "all" row
        m = fit.design.family_idx == k
        rows.append({"family": family, **_scores(log_y[m], reps[:, m], pit[m])})
    rows.append({"family": "all", **_scores(log_y, reps, pit)})
    return pd.DataFrame(rows)


__all__ = ["loo_pit_values", "ppc_summary", "replicate", "uniformity_distance"]
