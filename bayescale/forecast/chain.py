"""Two-stage forecasts: a loss law, then a link law from loss to a downstream metric.

``chain(loss_fit, link_fit, at)`` forecasts the loss at the targets ``at`` from
``loss_fit``, then feeds each posterior draw of that loss through a posterior
draw of ``link_fit`` (the two fits' draws are paired at random, one to one), so
the accuracy band carries the uncertainty of both stages.  This is the
stacked prediction of Bhagia et al. (2024, arXiv:2412.04403) and Gadre et al.
(2024, arXiv:2403.08540), with the uncertainty neither of them propagates.

The link law must have exactly one input, the loss.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError
from ..model import law_mean
from ..result.predictive import KINDS, check_levels, family_parameters, level_label, new_run, targets


def _link_family(link_fit, family, loss_family: str) -> str:
    families = link_fit.design.families
    if family is not None:
        return str(family)
    if len(families) == 1:
        return families[0]
    if loss_family in families:
        return loss_family
    raise DataError(f"the link fit has families {families} and none is {loss_family!r}; "
                    f"pass link_family= to choose one (or a new family, drawn from the population).")


def chain(loss_fit, link_fit, at, loss_kind: str = "mean", kind: str = "mean", link_family=None,
          levels=(0.5, 0.9), seed: int = 0) -> pd.DataFrame:
    """Forecast a downstream metric at ``at`` through a loss fit and a link fit, draw by draw.

    Parameters
    ----------
    loss_fit : Fit
        Stage 1: loss against scale (e.g. ``chinchilla``).
    link_fit : Fit
        Stage 2: the metric against loss (e.g. ``exp_link``, ``sigmoid_link``).
    at : DataFrame or dict
        Targets in the loss fit's input columns (and optionally its group column).
    loss_kind : {"mean", "new_run"}
        Stage 1 forecast: the law's loss, or the loss of one new run.
    kind : {"mean", "new_run"}
        Stage 2: the link curve, or one evaluation of one run (adds the link fit's noise).
    link_family : str, optional
        Family of the link fit to use; by default its only family, or the loss row's family.
    levels : sequence of float
        Central credible levels: columns ``lo<pct>``/``hi<pct>``.

    Returns
    -------
    DataFrame
        The targets, ``family``, ``loss_median``, then the metric's ``mean``,
        ``median`` and intervals.
    """
    if len(link_fit.law.inputs) != 1:
        raise DataError(f"the link fit's law '{link_fit.law.name}' has inputs {list(link_fit.law.inputs)}; "
                        f"a link law takes one input, the loss.")
    if loss_kind not in KINDS or kind not in KINDS:
        raise DataError(f"loss_kind and kind must be one of {KINDS}.")
    levels = check_levels(levels)
    rows = targets(at)
    table, loss = loss_fit.predict(rows, loss_kind, levels, seed, draws=True)
    rng = np.random.default_rng(seed + 1)
    name = link_fit.law.inputs[0]
    ref = link_fit.design.refs[name]
    out = np.empty_like(loss)
    for family in dict.fromkeys(table["family"]):
        rows = (table["family"] == family).to_numpy()
        fam = _link_family(link_fit, link_family, family)
        params = family_parameters(link_fit.idata.posterior, link_fit.structure, link_fit.design, fam, rng)
        n_link = len(next(iter(params.values())))
        pick = rng.choice(n_link, size=loss.shape[0], replace=loss.shape[0] > n_link)
        env = {k: v[pick][:, None] for k, v in params.items()}
        mean = np.asarray(law_mean(link_fit.law, env, {name: loss[:, rows] / ref}, np))
        if kind == "new_run":
            mean = new_run(_subset(link_fit.idata.posterior, pick), link_fit.structure, mean, rng)
        out[:, rows] = mean
    result = table.drop(columns=[c for c in table.columns if c in ("mean", "median")
                                 or c.startswith(("lo", "hi"))]).copy()
    result["loss_median"] = np.median(loss, 0)
    result["mean"], result["median"] = out.mean(0), np.median(out, 0)
    for level in levels:
        lo, hi = np.quantile(out, [(1 - level) / 2, (1 + level) / 2], axis=0)
        result[f"lo{level_label(level)}"], result[f"hi{level_label(level)}"] = lo, hi
    return result


class _subset:
    """The posterior draws at ``pick`` (stacked over chains), as ``predict.draws`` reads them."""

    def __init__(self, posterior, pick):
        self.posterior, self.pick = posterior, pick

    def __getitem__(self, key):
        values = np.asarray(self.posterior[key])
        stacked = values.reshape(-1, *values.shape[2:])[self.pick]
        return stacked[None]  # one "chain"
