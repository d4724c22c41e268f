"""Synthetic model ladders from known parameters, for demos and calibration tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import LawError
from ..laws.spec import resolve

# Per-family truths on the paper's scale (inputs not rescaled): ``a`` is the paper's A.
DEFAULT_TRUTH = {
    "chinchilla": {"E": [1.80, 1.95, 2.10], "a": [480.0, 420.0, 560.0],
                   "b": [2000.0, 2400.0, 1700.0], "alpha": 0.34, "beta": 0.36},
    "chinchilla_shared": {"E": [1.80, 1.95, 2.10], "a": [480.0, 420.0, 560.0],
                          "b": [1400.0, 1700.0, 1200.0], "eta": 0.34},
    "power": {"E": [1.80, 1.95, 2.10], "a": [480.0, 420.0, 560.0], "alpha": 0.34},
}
INPUT_NAMES = {"N": "params", "D": "tokens", "x": "x"}


def simulate(law="chinchilla", truth: dict | None = None, families: int = 3,
             sizes=(2e7, 5e7, 1.2e8, 3e8, 7e8), tokens_per_param=(5, 10, 20, 40, 80),
             seeds: int = 2, noise: float = 0.01, run_sd: float = 0.01,
             seed: int = 0) -> pd.DataFrame:
    """A multi-family ladder with seeds, drawn from a law with known parameters.

    Each family trains every size in ``sizes`` ``seeds`` times; each run is
    evaluated at every ratio in ``tokens_per_param`` (inputs ``N`` and ``D``; a
    one-input law uses ``x`` = tokens).  Each run gets a log-scale offset with sd
    ``run_sd`` shared by its evaluations, and each evaluation log-normal noise
    with sd ``noise``: several rows per run are what separate the two.

    Parameters
    ----------
    truth : dict, optional
        Parameter name -> scalar (shared) or list (one value per family), on the
        paper's scale (``a`` and ``b`` are the paper's A and B).  Defaults to
        :data:`DEFAULT_TRUTH` for the law.

    Returns
    -------
    DataFrame
        Columns ``family``, ``run``, ``seed``, the input columns (``params``,
        ``tokens`` or ``x``) and ``loss``; ``df.attrs["truth"]`` holds the true
        values per family, ``df.attrs["law"]`` the law's name.

    Examples
    --------
    >>> df = simulate("chinchilla", seed=1)
    >>> sorted(df["family"].unique())
    ['f0', 'f1', 'f2']
    >>> len(df)
    150
    """
    law = resolve(law)
    truth = dict(truth or DEFAULT_TRUTH.get(law.name) or {})
    missing = sorted(set(law.parameters) - set(truth))
    if missing:
        raise LawError(f"simulate needs true values for {missing} of law '{law.name}'.")
    names = [f"f{k}" for k in range(families)]
    per_family = {}
    for k, v in truth.items():
        v = np.atleast_1d(np.asarray(v, dtype=float))
        if v.size not in (1, families) and not (v.size > families and k in DEFAULT_TRUTH.get(law.name, {})):
            raise LawError(f"truth['{k}'] has {v.size} values for {families} families; "
                           f"give one value or one per family.")
        per_family[k] = np.broadcast_to(v[:families] if v.size > 1 else v, (families,))
    rng = np.random.default_rng(seed)
    rows = []
    for k, fam in enumerate(names):
        values = {p: per_family[p][k] for p in law.parameters}
        for n in sizes:
            for s in range(seeds):
                run, offset = f"{fam}-{n:.0e}-s{s}", rng.normal(0, run_sd)
                for m in tokens_per_param:
                    inputs = {"N": n, "D": m * n, "x": m * n}
                    mean = float(law.formula(values | inputs, np))
                    loss = mean * np.exp(offset + rng.normal(0, noise))
                    row = {"family": fam, "run": run, "seed": s, "loss": loss}
                    row |= {INPUT_NAMES[i]: inputs[i] for i in law.inputs}
                    rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["truth"] = {p: dict(zip(names, per_family[p].tolist())) for p in law.parameters}
    df.attrs["law"] = law.name
    return df
