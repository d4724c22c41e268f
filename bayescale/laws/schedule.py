"""Inputs derived per run from its training schedule.

Some laws take inputs that are not columns of the data but functions of a
run's whole history up to the row, e.g. the forward and annealing areas of the
learning-rate schedule in the learning-rate annealing law (Tissue et al. 2024,
arXiv:2408.11029).  A law declares such an input with a ``derived`` expression
over its ``[schedule]`` columns; this module evaluates it for every run.

How: the rows of one run are ordered by ``step``; each schedule column is
linearly interpolated to every integer step from 0 to the run's last row (held
at its first recorded value before it), the expression is evaluated on that
per-step grid, and read back at the rows' steps.  So rows may be sparse
evaluation points while the sums run over every optimiser step.

Functions, besides those of :mod:`bayescale.laws.formula`:

==========================  ==============================================
``cumsum(x)``               running sum over steps, sum of x_0 ... x_s
``diff(x)``                 x_s - x_{s-1} (0 at step 0)
``decay_sum(x, lam)``       m_s = lam * m_{s-1} + x_s, a sum with momentum
==========================  ==============================================

Examples
--------
>>> import numpy as np
>>> from bayescale.laws.formula import parse
>>> f = parse("cumsum(lr)", {"lr"}, extra=FUNCTIONS)
>>> derive({"S1": f}, {"step": np.array([1.0, 3.0]), "lr": np.array([1.0, 1.0])},
...        np.array([0, 0]))["S1"].tolist()
[2.0, 4.0]
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

MAX_STEPS = 50_000_000  # per run; beyond this the per-step grid would not fit in memory


def _decay_sum(xp, x, lam):
    lam = float(np.asarray(lam))
    if not 0.0 <= lam < 1.0:
        raise DataError(f"decay_sum(x, lam) needs 0 <= lam < 1, got {lam}.")
    from scipy.signal import lfilter  # here: SciPy's signal module takes 0.7 s to import

    return lfilter([1.0], [1.0, -lam], np.asarray(x, dtype=float))


def _diff(xp, x):
    x = np.asarray(x, dtype=float)
    return np.concatenate([[0.0], np.diff(x)])


FUNCTIONS = {
    "cumsum": (1, lambda xp, x: np.cumsum(np.asarray(x, dtype=float))),
    "diff": (1, _diff),
    "decay_sum": (2, _decay_sum),
}


def derive(formulas: dict, columns: dict, run_codes: np.ndarray) -> dict:
    """Evaluate each derived input for every row.

    Parameters
    ----------
    formulas : dict
        Derived input name -> parsed formula over schedule columns.
    columns : dict
        Schedule column name -> values per row; must include ``step``.
    run_codes : ndarray of int
        Which run each row belongs to (rows of a run share a schedule).

    Returns
    -------
    dict
        Derived input name -> values per row.
    """
    steps = np.asarray(columns["step"], dtype=float)
    out = {name: np.empty(len(steps)) for name in formulas}
    for code in np.unique(run_codes):
        rows = np.flatnonzero(run_codes == code)
        order = rows[np.argsort(steps[rows], kind="stable")]
        at = steps[order]
        last = int(np.ceil(at[-1]))
        if last + 1 > MAX_STEPS:
            raise DataError(f"a run reaches step {last}; derived inputs are computed on a per-step "
                            f"grid of at most {MAX_STEPS} steps.")
        grid = np.arange(last + 1, dtype=float)
        env = {k: np.interp(grid, at, np.asarray(v, dtype=float)[order])
               for k, v in columns.items() if k != "step"}
        env["step"] = grid
        index = np.clip(np.round(at).astype(int), 0, last)
        for name, formula in formulas.items():
            values = np.broadcast_to(np.asarray(formula(env, np), dtype=float), grid.shape)
            out[name][order] = values[index]
    return out
