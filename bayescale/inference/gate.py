"""The diagnostics gate: ArviZ's R-hat, bulk/tail ESS and E-BFMI, plus divergences.

Thresholds follow Vehtari et al. (2021), *Rank-normalization, folding, and
localization: an improved R-hat*, Bayesian Analysis 16(2), and Betancourt
(2016), arXiv:1604.00695 (E-BFMI).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from ..errors import DiagnosticsWarning, FitWarning

RHAT_MAX = 1.01
ESS_MIN = 400
BFMI_MIN = 0.3
GATE_KINDS = frozenset({"rhat", "ess_bulk", "ess_tail", "divergences", "bfmi"})  # failures


def table(idata, var_names) -> pd.DataFrame:
    """ArviZ summary of ``var_names``: mean, sd, 90% equal-tailed interval, ESS, R-hat."""
    import arviz_stats as azs  # here, not above: the command line reads GATE_KINDS without ArviZ

    out = azs.summary(idata, var_names=list(var_names), ci_prob=0.9, ci_kind="eti", round_to="none")
    return out.rename(columns={"eti90_lb": "q5", "eti90_ub": "q95"}).astype(float)


def gate(idata, var_names, chains: int) -> tuple[pd.DataFrame, list[FitWarning]]:
    """Run every check; returns the per-parameter table and the failures found."""
    diag = table(idata, var_names)
    found = []
    bad = diag[~(diag["r_hat"] <= RHAT_MAX)] if chains > 1 else diag.iloc[:0]
    if len(bad):
        found.append(FitWarning("rhat", (
            f"R-hat above {RHAT_MAX} for {_names(bad)} (worst {bad['r_hat'].max():.3f}): the chains "
            f"disagree. Run more warmup and draws, or simplify the law (share an exponent, "
            f"tighten a prior)."), DiagnosticsWarning))
    for kind in ("bulk", "tail"):
        low = diag[~(diag[f"ess_{kind}"] >= ESS_MIN)]
        if len(low):
            found.append(FitWarning(f"ess_{kind}", (
                f"{kind} effective sample size below {ESS_MIN} for {_names(low)} (lowest "
                f"{low[f'ess_{kind}'].min():.0f}): intervals are imprecise. Increase draws."),
                DiagnosticsWarning))
    diverging = int(np.asarray(idata.sample_stats["diverging"]).sum())
    if diverging:
        found.append(FitWarning("divergences", (
            f"{diverging} divergent transition(s): the sampler met curvature it could not follow and "
            f"the posterior may be biased. Try target_accept=0.99 (or closer to 1), "
            f"parameterization='noncentred' (few rows per family) or 'centred' (many), or tighter "
            f"priors."), DiagnosticsWarning))
    import arviz_stats as azs

    bfmi = np.atleast_1d(np.asarray(azs.bfmi(idata)["energy"]))
    if (bfmi < BFMI_MIN).any():
        found.append(FitWarning("bfmi", (
            f"E-BFMI {np.round(bfmi, 2).tolist()} below {BFMI_MIN} in some chain: the sampler explores "
            f"the energy poorly (often heavy tails or a funnel). Try another parameterization."),
            DiagnosticsWarning))
    return diag, found


def _names(frame: pd.DataFrame, show: int = 6) -> str:
    names = list(frame.index)
    return ", ".join(names[:show]) + (f" and {len(names) - show} more" if len(names) > show else "")
