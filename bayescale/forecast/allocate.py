"""Compute-optimal allocation with uncertainty: N*, D*, D*/N* and L* at each budget.

For each posterior draw of a family's law, the loss ``L(N, D)`` is minimised
along the budget curve ``flops(N, D) = C``.  Every draw gives one optimum, so
the spread of N*, D* and L* over draws is their posterior.

* Chinchilla-type laws (``E + a n^-alpha + b d^-beta`` with one or two
  exponents) under ``flops = 6 N D`` have a closed form (Hoffmann et al. 2022,
  eq. 4): ``N* = G (C/6)^(beta/(alpha+beta))``.
* Any other law or cost: a vectorised numerical optimum.  Over a grid of
  :data:`GRID` values of log N spanning :data:`SPAN` decades either side of the
  balanced point sqrt(C/6), D is solved from the budget by bisection in log D
  (the cost must grow with D), the best grid point is refined by golden-section
  search, all draws at once.

Examples
--------
>>> import bayescale as bs
>>> df = bs.datasets.simulate("chinchilla", families=1, seeds=1, seed=0)
>>> f = bs.fit(df, "chinchilla", x={"N": "params", "D": "tokens"})  # doctest: +SKIP
>>> bs.allocate(f, [1e21, 1e23]).table[["C", "N_median", "tokens_per_param_median"]]  # doctest: +SKIP
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..errors import DataError
from ..model import law_mean
from ..result.predictive import check_levels, family_parameters, level_label

GRID = 241  # grid points in log N
SPAN = 6.0  # decades either side of sqrt(C/6) searched for N*
GOLDEN_STEPS = 60
BISECT_STEPS = 80
_PHI = (np.sqrt(5.0) - 1.0) / 2.0


def six_nd(N, D):
    """Training FLOPs of a dense transformer, 6·N·D (Kaplan et al. 2020)."""
    return 6.0 * N * D


class Allocation:
    """Result of :func:`allocate`.

    Attributes
    ----------
    table : DataFrame
        One row per budget and family: ``C``, ``family``, then for ``N``, ``D``,
        ``tokens_per_param`` and ``L`` their posterior ``_median`` and
        ``_lo<pct>``/``_hi<pct>`` columns; ``method`` (``closed form`` or ``numerical``).
    draws : dict
        ``(C, family)`` -> dict of arrays (one value per posterior draw) ``N``, ``D``, ``L``.
    """

    def __init__(self, table: pd.DataFrame, draws: dict, columns: dict):
        self.table, self.draws, self.columns = table, draws, columns

    def __repr__(self) -> str:
        return f"<Allocation: {len(self.table)} budget x family rows>"


def _inputs(fit, inputs) -> tuple[str, str]:
    n, d = inputs
    missing = [k for k in (n, d) if k not in fit.law.inputs]
    if missing:
        raise DataError(f"allocation needs a law with a size and a data input; law '{fit.law.name}' "
                        f"has inputs {list(fit.law.inputs)}, not {missing}. Pass inputs=(size, data) "
                        f"naming two of them.")
    return n, d


def _closed_form(fit, n: str, d: str, flops):
    """The two exponents' names if the law is Chinchilla-type under 6ND (analytic minimiser)."""
    text = fit.law.formula.text.replace(" ", "")
    match = re.fullmatch(rf"E\+a\*{n}\*\*\(-(\w+)\)\+b\*{d}\*\*\(-(\w+)\)", text)
    if flops is not six_nd or match is None or len(fit.law.inputs) != 2:
        return None
    return match.group(1), match.group(2)


def _loss(fit, params: dict, n_name: str, d_name: str, N, D):
    refs = fit.design.refs
    env = {n_name: N / refs[n_name], d_name: D / refs[d_name]}
    return np.asarray(law_mean(fit.law, params, env, np))


def _solve_d(flops, N, C):
    """D with flops(N, D) = C, by bisection in log D (flops increasing in D)."""
    lo, hi = np.full_like(N, -10.0), np.full_like(N, 40.0)  # 1e-10 .. 1e40 tokens
    for _ in range(BISECT_STEPS):
        mid = 0.5 * (lo + hi)
        over = np.asarray(flops(N, 10.0**mid)) > C
        hi, lo = np.where(over, mid, hi), np.where(over, lo, mid)
    return 10.0 ** (0.5 * (lo + hi))


def _numerical(fit, params, n_name, d_name, C, flops):
    """Minimise the loss along the budget curve for every draw; returns (N, D)."""
    k = len(next(iter(params.values())))
    centre = 0.5 * np.log10(C / 6.0)
    grid = np.linspace(centre - SPAN, centre + SPAN, GRID)
    cols = {name: v[:, None] for name, v in params.items()}

    def loss_at(log_n):  # log_n: (draws, m)
        N = 10.0**log_n
        return _loss(fit, cols, n_name, d_name, N, _solve_d(flops, N, C))

    values = loss_at(np.broadcast_to(grid, (k, GRID)))
    values = np.where(np.isfinite(values), values, np.inf)
    best = np.argmin(values, axis=1)
    step = grid[1] - grid[0]
    a, b = grid[best] - step, grid[best] + step
    for _ in range(GOLDEN_STEPS):  # golden-section search inside the bracketing grid cell
        c, e = b - _PHI * (b - a), a + _PHI * (b - a)
        fc, fe = loss_at(np.stack([c, e], 1)).T
        left = fc < fe
        a, b = np.where(left, a, c), np.where(left, e, b)
    N = 10.0 ** (0.5 * (a + b))
    return N, _solve_d(flops, N, C)


def _analytic(fit, params, n_name, d_name, C, exponents):
    refs = fit.design.refs
    alpha, beta = params[exponents[0]], params[exponents[1]]
    k = C / (6.0 * refs[n_name] * refs[d_name])
    n = (alpha * params["a"] / (beta * params["b"])) ** (1.0 / (alpha + beta)) * k ** (beta / (alpha + beta))
    N = n * refs[n_name]
    return N, C / (6.0 * N)


def allocate(fit, budgets, flops=six_nd, family=None, inputs=("N", "D"), levels=(0.5, 0.9),
             seed: int = 0) -> Allocation:
    """Posterior of the compute-optimal allocation at each budget.

    Parameters
    ----------
    fit : Fit
        A fitted law with a size input and a data input.
    budgets : float or sequence of float
        Training compute budgets C, in the units of ``flops`` (FLOPs for 6ND).
    flops : callable, default :func:`six_nd`
        Cost of a run, ``flops(N, D)`` on arrays, increasing in D.
    family : str or list, optional
        Families to allocate for; by default every fitted family.  A family
        absent from the data is drawn from the population (partial pooling).
    inputs : (str, str)
        The law's size and data inputs.
    levels : sequence of float
        Central credible levels of the reported intervals.

    Returns
    -------
    Allocation
    """
    n_name, d_name = _inputs(fit, inputs)
    budgets = np.atleast_1d(np.asarray(budgets, dtype=float))
    if not np.all(np.isfinite(budgets) & (budgets > 0)):
        raise DataError(f"budgets must be positive finite compute values, got {budgets.tolist()}.")
    if not callable(flops):
        raise DataError("flops must be a function flops(N, D) returning the cost of a run.")
    levels = check_levels(levels)
    families = fit.design.families if family is None else [str(f) for f in np.atleast_1d(family)]
    closed = _closed_form(fit, n_name, d_name, flops)
    rng = np.random.default_rng(seed)
    rows, store = [], {}
    for fam in families:
        params = family_parameters(fit.idata.posterior, fit.structure, fit.design, fam, rng)
        for C in budgets:
            if closed is not None:
                N, D = _analytic(fit, params, n_name, d_name, C, closed)
            else:
                N, D = _numerical(fit, params, n_name, d_name, C, flops)
            L = _loss(fit, params, n_name, d_name, N, D)
            values = {"N": N, "D": D, "tokens_per_param": D / N, "L": L}
            store[(float(C), fam)] = {"N": N, "D": D, "L": L}
            row = {"C": float(C), "family": fam}
            for key, v in values.items():
                row[f"{key}_median"] = float(np.median(v))
                for level in levels:
                    lo, hi = np.quantile(v, [(1 - level) / 2, (1 + level) / 2])
                    label = level_label(level)
                    row[f"{key}_lo{label}"], row[f"{key}_hi{label}"] = float(lo), float(hi)
            row["method"] = "numerical" if closed is None else "closed form"
            rows.append(row)
    return Allocation(pd.DataFrame(rows), store, {"N": n_name, "D": d_name, "levels": levels})
