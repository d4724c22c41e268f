"""Simulation-based calibration (SBC) of a law's fitted model.

SBC (Talts et al. 2018, arXiv:1804.06788; Modrák et al. 2023, arXiv:2211.02383)
checks the whole inference pipeline on one design: draw parameters from the
prior, draw a data set from the model given them, fit the model to that data
set, and record the *rank* of the true value among the posterior draws.  If the
posterior is computed correctly, the rank of every quantity is uniform over
``0..L`` (``L`` posterior draws), whatever the design; a posterior that is too
narrow puts the ranks at both ends, a biased one piles them at one end.

The generative model is the fitted model itself: the structure comes from
:func:`bayescale.model.structure` and :func:`bayescale.model.build` on a
:class:`~bayescale.data.design.Design` from :func:`bayescale.data.design.prepare`, with the
pooling :func:`bayescale.fit` would use; the data set is the observation site
:data:`bayescale.model.OBS` sampled from the prior predictive and fed back as
the observation.

Two deliberate differences from :func:`bayescale.fit`:

- **The floor reference is a constant.**  A ``floor(m, s)`` prior puts a
  parameter below ``min(y)`` of its family, which makes the prior depend on the
  data; SBC needs a prior fixed before the data exist.  Here the reference is
  the constant ``floor`` (default :data:`FLOOR`) for every family, in the
  simulation and in the fit alike.
- **So is the noise unit of a real outcome.**  The noise priors of an outcome
  with the identity link are in units of the data's standard deviation
  (:mod:`bayescale.model`); here that unit is the constant 1 (:data:`NOISE_UNIT`).
- **Chains start at the true parameters** (plus a small jitter) instead of a
  MAP point: the truth is a draw from the prior, so starting there is a valid
  start for the posterior of its data set, and it is cheaper.  Warm-up then
  adapts step size and mass matrix as usual; divergences, R-hat and ESS are
  recorded per replicate so that a sampler that fails is seen.

A bounded outcome's censoring of exact 0 and 1 (:class:`bayescale.model.Censored`)
is calibrated by passing ``resolution=r``: every simulated value below ``r`` (above
``1 - r``) is then recorded at the bound, as a benchmark records an accuracy of 0
or 1, and fitted with the censored likelihood.

One compiled program serves all replicates of a law: a replicate's whole NUTS
fit is jitted with its data as arguments, so each replicate costs only its
sampling (see :class:`_Sampler`).  The parameterisation of random effects is chosen
per replicate by :func:`bayescale.model.choose_centring` from the true noise
level (the fit chooses it from the noise at the posterior mode), so at most one
program per parameterisation is compiled.

Examples
--------
>>> import bayescale as bs
>>> from bayescale.evaluate.sbc import design, sbc
>>> df = design("power", families=1, sizes=8, ratios=1)
>>> res = sbc("power", df, reps=20, draws=50, seed=0)  # doctest: +SKIP
>>> res.uniformity()[["parameter", "p_value", "p_holm"]]  # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pandas as pd
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
from numpyro.infer import Predictive
from numpyro.infer.util import log_likelihood
from scipy import stats

from ..data.design import Design, prepare
from ..errors import BayescaleError, LawError
from ..inference import executor as runner
from ..inference import runtime
from ..inference.config import SamplerConfig, take
from ..inference.nuts import latent_sites, nuts_program
from ..inference.progress import current
from ..inference.stacked import shape_key
from ..inference.start import weak_amplitude
from ..laws.spec import Law, resolve
from ..model import (
    OBS,
    RUN,
    ModelConfig,
    Structure,
    build,
    choose_centring,
    in_centring,
    model_data,
    partial_names,
    structure,
)
from ..result.fitting import pool_few_families

FLOOR = 2.0  # reference of floor() priors in SBC: a typical language-model loss in nats
NOISE_UNIT = 1.0  # unit of the noise priors of a real outcome in SBC (the fit uses sd(y))
PLACEHOLDER_Y = 0.5  # outcome column of a design without one; replaced by the simulated data
LOG_LIK = "log_lik"  # the data-dependent test quantity: log-likelihood of the whole data set
RHAT_FAIL = 1.05  # a replicate with a larger R-hat (short chains: looser than the fit's 1.01) failed
TESTS = ("ks", "chi2")
CORRECTIONS = ("holm", "bonferroni")


# ---- designs -----------------------------------------------------------------------
SIZE_RANGE = (2e7, 7e8)  # parameters of the smallest and largest model of a default ladder
RATIOS = (5, 10, 20, 40, 80)  # tokens per parameter, the checkpoints of each run
LATIN_RANGE = (1.0, 100.0)  # range of any other input (its scale does not matter: divided by its reference)
EPOCHS = (1.0, 2.0, 4.0, 8.0, 16.0)  # repetitions of the unique data, for an input named U


def _known_inputs(n: float, m: float, level: int) -> dict:
    """Realistic values of the inputs the catalogue names conventionally, at one row of the ladder.

    ``n`` parameters trained on ``m * n`` tokens; ``level`` (0-4) is the row's
    Latin-square level for inputs that vary independently of size and tokens.
    """
    d = m * n
    return {
        "N": n, "D": d, "C": 6.0 * n * d,  # compute of a dense transformer, FLOPs
        "U": d / EPOCHS[level],  # unique tokens, repeated for 1-16 epochs (U <= D)
        "P": 2.0 ** (level % 4),  # parallel streams 1-8
        "L": 1.8 + 3.0 * (d / 1e8) ** -0.2,  # a validation loss in nats, 4.8 down to 2.6
    }


def design(law, families: int = 3, sizes: int = 5, ratios: int = 5, seeds: int = 1,
           runs: bool = True) -> pd.DataFrame:
    """A realistic default design (no outcome) for ``law``: a ladder of sizes, families and seeds.

    Every family trains ``sizes`` model sizes (geometric from 2e7 to 7e8
    parameters) ``seeds`` times, and each run is evaluated at ``ratios`` token
    budgets (5 to 80 tokens per parameter), as in
    :func:`bayescale.datasets.simulate`.  Inputs get values by their
    conventional names: ``N`` parameters, ``D`` tokens, ``C`` = 6ND FLOPs,
    ``U`` unique tokens (D over 1-16 epochs), ``P`` parallel streams (1-8),
    ``L`` a validation loss (4.8 down to 2.6 nats as tokens grow).  Any other
    input gets the token counts if it is the law's first (a one-input law thus
    sees a ladder in ``x`` of sizes x ratios values spanning 2.7 decades), else 5
    geometric levels over two decades in a Latin square over (size, ratio), so no
    two inputs are collinear.  Inputs computed from other columns (a learning-rate
    schedule) need a design of their own.

    Parameters
    ----------
    law : str or Law
        The law (its inputs name the columns).
    families, sizes, ratios, seeds : int
        Shape of the ladder.
    runs : bool
        With ``ratios > 1`` each run has several rows, and a ``run`` column
        identifies it, so the model has run effects; ``runs=False`` (or
        ``ratios == 1``) leaves the column out and the model without them.

    Returns
    -------
    DataFrame
        Columns ``family``, the law's inputs (named as the law names them) and,
        with run effects, ``run``.  ``df.attrs["mapping"]`` holds the keyword
        arguments ``x``, ``group`` and ``run`` for :func:`sbc`.

    Examples
    --------
    >>> df = design("chinchilla")
    >>> len(df), df["run"].nunique(), sorted(df.columns)
    (75, 15, ['D', 'N', 'family', 'run'])
    >>> len(design("power", families=1, sizes=8, ratios=1))
    8
    """
    law = resolve(law)
    for name, value in (("families", families), ("sizes", sizes), ("ratios", ratios), ("seeds", seeds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BayescaleError(f"design: {name} must be a positive integer, got {value!r}.")
    schedule = dict(getattr(law, "schedule", {}) or {})
    if schedule:
        return _schedule_design(law, schedule, families, 2 * sizes, seeds, runs)
    ns = np.geomspace(*SIZE_RANGE, sizes)
    ms = np.geomspace(RATIOS[0], RATIOS[-1], ratios) if ratios > 1 else np.array([20.0])
    levels = np.geomspace(*LATIN_RANGE, 5)
    known = set(_known_inputs(1.0, 1.0, 0))
    others = [k for k in law.inputs if k not in known]
    first = others.pop(0) if others and others[0] == law.inputs[0] else None
    rows = []
    for f in range(families):
        for i, n in enumerate(ns):
            for s in range(seeds):
                for j, m in enumerate(ms):
                    level = (i + 2 * j) % 5  # a Latin square over (size, ratio): 5 levels each
                    values = _known_inputs(n, m, level)
                    if first is not None:
                        values[first] = m * n
                    for k, name in enumerate(others):
                        values[name] = levels[(i + (k + 2) * j + k) % len(levels)]
                    row = {"family": f"f{f}", "run": f"f{f}-n{i}-s{s}"}
                    rows.append(row | {k: float(values[k]) for k in law.inputs})
    df = pd.DataFrame(rows)
    run = "run" if ratios > 1 and runs else None
    if run is None:
        df = df.drop(columns="run")
    df.attrs["mapping"] = {"x": {k: k for k in law.inputs}, "group": "family", "run": run}
    return df


SCHEDULE_STEPS = 20_000  # length of a default training run, optimiser steps
PEAK_LR, MIN_LR = 1e-3, 1e-4


def _learning_rate(kind: str, step: np.ndarray) -> np.ndarray:
    """Constant, cosine, or warmup-stable-decay (last 20% linear) schedules from PEAK_LR to MIN_LR."""
    frac = step / SCHEDULE_STEPS
    if kind == "constant":
        return np.full_like(frac, PEAK_LR)
    if kind == "cosine":
        return MIN_LR + 0.5 * (PEAK_LR - MIN_LR) * (1 + np.cos(np.pi * frac))
    return np.where(frac < 0.8, PEAK_LR, PEAK_LR - (PEAK_LR - MIN_LR) * (frac - 0.8) / 0.2)


def _schedule_design(law, schedule: dict, families: int, checkpoints: int, seeds: int,
                     runs: bool) -> pd.DataFrame:
    """Learning curves under three schedules (constant, cosine, warmup-stable-decay) per family."""
    unknown = sorted(set(schedule) - {"step", "lr"})
    plain = [k for k in law.columns if k not in schedule]
    if unknown or plain:
        raise BayescaleError(f"design: law '{law.name}' needs schedule column(s) {unknown + plain} that "
                             f"the default design does not know; pass a design_df of your own.")
    steps = np.unique(np.geomspace(SCHEDULE_STEPS / 40, SCHEDULE_STEPS, checkpoints).round())
    rows = []
    for f in range(families):
        for kind in ("constant", "cosine", "wsd"):
            for s in range(seeds):
                lr = _learning_rate(kind, steps)
                rows += [{"family": f"f{f}", "run": f"f{f}-{kind}-s{s}", "step": float(st), "lr": float(v)}
                         for st, v in zip(steps, lr)]
    df = pd.DataFrame(rows)
    # the run column also tells the derived inputs which rows form one schedule
    df.attrs["mapping"] = {"x": {k: k for k in law.columns}, "group": "family", "run": "run"}
    if not runs:
        df.attrs["mapping"]["run"] = None
        df = df[df["run"].str.endswith("-s0") & df["run"].str.contains("-cosine-")].reset_index(drop=True)
        df = df.drop(columns="run")
    return df


# ---- ranks and uniformity ----------------------------------------------------------
def rank(draws, truth) -> int:
    """Rank of ``truth`` among ``draws``: how many draws are below it (0 to ``len(draws)``).

    Ties (which a continuous posterior has with probability zero) count half,
    rounded down, so that a point mass does not push the ranks to one end.

    Examples
    --------
    >>> rank([0.1, 0.5, 0.9], 0.6)
    2
    """
    draws = np.asarray(draws, dtype=float).ravel()
    below = int(np.sum(draws < truth))
    return below + int(np.sum(draws == truth)) // 2


def fractional(ranks, n_draws: int, seed: int = 0) -> np.ndarray:
    """Map integer ranks in ``0..n_draws`` to values that are exactly Uniform(0, 1) under calibration.

    ``u = (r + v) / (n_draws + 1)`` with ``v ~ Uniform(0, 1)``: a uniform
    discrete rank plus an independent uniform jitter is continuous uniform, so
    continuous tests (Kolmogorov-Smirnov) apply with their exact null distribution.
    """
    r = np.asarray(ranks, dtype=float)
    if r.size and (r.min() < 0 or r.max() > n_draws):
        raise BayescaleError(f"ranks must lie in 0..{n_draws}, got {r.min():g}..{r.max():g}.")
    v = np.random.default_rng(seed).uniform(size=r.shape)
    return (r + v) / (n_draws + 1)


def uniformity_test(ranks, n_draws: int, test: str = "ks", bins: int | None = None,
                    seed: int = 0) -> tuple[float, float]:
    """Test that integer ranks in ``0..n_draws`` are uniform; returns ``(statistic, p_value)``.

    Parameters
    ----------
    ranks : array of int
        One rank per replicate.
    n_draws : int
        Number of posterior draws each rank was computed among.
    test : {"ks", "chi2"}
        ``"ks"``: Kolmogorov-Smirnov test of the jittered fractional ranks (see
        :func:`fractional`) against Uniform(0, 1), exact for any number of
        replicates.  ``"chi2"``: Pearson's chi-square test of the counts in
        ``bins`` equal-width bins of the fractional ranks (Talts et al.'s
        histogram as a test); by default as many bins as keep at least 5
        expected replicates per bin, at most 20.
    seed : int
        Seed of the jitter.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> stat, p = uniformity_test(rng.integers(0, 101, 200), 100)
    >>> p > 0.01
    True
    >>> uniformity_test(np.zeros(50, int), 100)[1] < 1e-6
    True
    """
    u = fractional(ranks, n_draws, seed)
    if u.size < 2:
        return float("nan"), float("nan")
    if test == "ks":
        res = stats.kstest(u, "uniform")
        return float(res.statistic), float(res.pvalue)
    if test == "chi2":
        bins = bins or int(np.clip(u.size // 5, 2, 20))
        counts = np.bincount(np.minimum((u * bins).astype(int), bins - 1), minlength=bins)
        res = stats.chisquare(counts)
        return float(res.statistic), float(res.pvalue)
    raise BayescaleError(f"test={test!r}; choose one of {TESTS}.")


def adjust(p_values, method: str = "holm") -> np.ndarray:
    """Family-wise error correction of p-values (Holm's step-down, or Bonferroni).

    Examples
    --------
    >>> adjust([0.01, 0.04, 0.03]).round(2).tolist()
    [0.03, 0.06, 0.06]
    >>> adjust([0.01, 0.04, 0.03], "bonferroni").round(2).tolist()
    [0.03, 0.12, 0.09]
    """
    p = np.asarray(p_values, dtype=float)
    m = int(np.sum(~np.isnan(p)))
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    if method != "holm":
        raise BayescaleError(f"correction={method!r}; choose one of {CORRECTIONS}.")
    out = np.full_like(p, np.nan)
    order = [i for i in np.argsort(p) if not np.isnan(p[i])]
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[i]))
        out[i] = running
    return out


# ---- result ------------------------------------------------------------------------
@dataclass
class SBCResult:
    """Ranks of every replicate of an SBC run.

    Attributes
    ----------
    law : str
        Name of the fitted law.
    ranks : DataFrame
        One row per replicate: ``replicate``, one column of ranks per quantity
        (see :attr:`quantities`), and the replicate's sampler record:
        ``divergences``, ``min_ess`` (smallest bulk ESS of the ranked
        quantities over the full chains), ``max_rhat``, ``steps`` (mean leapfrog
        steps per draw), ``seconds`` (wall time of the replicate), ``compiled``
        (the replicate that compiled its parameterisation's program, whose time
        includes the compilation), ``centring`` and
        ``failed`` (any divergence, ``min_ess`` below ``draws``, or R-hat above
        :data:`RHAT_FAIL`).
    quantities : list of str
        Ranked quantities: law parameters on the natural scale (``alpha``;
        per family ``E[f0]``), population and noise parameters (``E_pop_z``,
        ``E_tau``, ``sigma``, ``sigma_run``, ``nu``), and :data:`LOG_LIK`, the
        log-likelihood of the replicate's data set (a data-dependent test
        quantity, Modrák et al. 2023).
    draws : int
        Number of posterior draws each rank is computed among (ranks lie in ``0..draws``).
    settings : dict
        The call's settings, the design's size, the floor reference, and
        ``prior_redrawn``: the share of prior draws drawn again because the law
        was non-finite or left the outcome's range on the design.
    """

    law: str
    ranks: pd.DataFrame
    quantities: list
    draws: int
    settings: dict = field(default_factory=dict)

    @property
    def replications(self) -> int:
        return len(self.ranks)

    @property
    def failed_share(self) -> float:
        """Share of replicates whose sampler failed (see :attr:`ranks`)."""
        return float(self.ranks["failed"].mean()) if len(self.ranks) else float("nan")

    def uniformity(self, test: str = "ks", correction: str = "holm", bins: int | None = None,
                   drop_failed: bool = False) -> pd.DataFrame:
        """Uniformity test of the ranks of each quantity, corrected for testing many.

        Parameters
        ----------
        test : {"ks", "chi2"}
            See :func:`uniformity_test`.
        correction : {"holm", "bonferroni"}
            Family-wise correction across the quantities of this law:
            ``p_holm`` (or ``p_bonferroni``) below a level rejects calibration at
            that family-wise level.
        bins : int, optional
            Bins of the chi-square test.
        drop_failed : bool
            Test only replicates whose sampler did not fail.  Off by default:
            dropping them conditions on the data sets the sampler handles, which
            can itself break uniformity.

        Returns
        -------
        DataFrame
            Columns ``law``, ``parameter``, ``test``, ``statistic``, ``p_value``,
            ``p_<correction>``, ``replications``, ``failed``.
        """
        table = self.ranks[~self.ranks["failed"]] if drop_failed else self.ranks
        rows = []
        for k, q in enumerate(self.quantities):
            seed = int(self.settings.get("seed", 0)) * 1000 + k
            stat, p = uniformity_test(table[q].to_numpy(), self.draws, test, bins, seed)
            rows.append({"law": self.law, "parameter": q, "test": test, "statistic": stat,
                         "p_value": p, "replications": len(table),
                         "failed": int(table["failed"].sum())})
        out = pd.DataFrame(rows)
        if correction not in CORRECTIONS:
            raise BayescaleError(f"correction={correction!r}; choose one of {CORRECTIONS}.")
        out.insert(5, f"p_{correction}", adjust(out["p_value"], correction))
        return out

    def timing(self) -> dict:
        """Wall time (s): ``first_s``, replicates that compiled their program (one per
        parameterisation), ``median_s``, the median replicate of the others, and ``total_s``."""
        t = self.ranks["seconds"].to_numpy()
        first = self.ranks["compiled"].to_numpy(dtype=bool)
        return {"first_s": float(t[first].sum()),
                "median_s": float(np.median(t[~first])) if (~first).any() else float("nan"),
                "total_s": float(t.sum())}


def combine(results) -> SBCResult:
    """One :class:`SBCResult` from several runs of the same law on parts of the replicates."""
    results = list(results)
    if not results:
        raise BayescaleError("combine needs at least one SBC result.")
    first = results[0]
    for r in results[1:]:
        if r.law != first.law or r.quantities != first.quantities or r.draws != first.draws:
            raise BayescaleError(f"cannot combine SBC results of {first.law!r} and {r.law!r}: "
                                 f"laws, quantities or draws differ.")
    ranks = pd.concat([r.ranks for r in results], ignore_index=True).sort_values("replicate")
    if ranks["replicate"].duplicated().any():
        raise BayescaleError("combine: the same replicate appears in several results.")
    return SBCResult(first.law, ranks.reset_index(drop=True), list(first.quantities), first.draws,
                     dict(first.settings))


# ---- the run -----------------------------------------------------------------------
@dataclass
class _Setup:
    law: Law
    design: Design
    s: Structure
    data: dict  # model arguments without the observation
    names: list  # ranked quantities


def setup(law, design_df=None, x=None, group=None, run=None, pool=None, likelihood="normal",
          floor: float = FLOOR, resolution: float | None = None) -> _Setup:
    """Law (with the pooling :func:`bayescale.fit` would use), design and model arguments."""
    runtime.ensure()  # before any array reaches JAX: float64 and host devices apply only then
    law = resolve(law).with_pooling(pool)
    if design_df is None:
        design_df = design(law)
    mapping = dict(design_df.attrs.get("mapping", {}))
    x = x if x is not None else mapping.get("x", {k: k for k in getattr(law, "columns", law.inputs)})
    group = group if group is not None else mapping.get("group")
    run = run if run is not None else mapping.get("run")
    df = design_df.copy()
    y = "__y__"
    df[y] = PLACEHOLDER_Y  # prepare() needs an outcome; every replicate replaces it
    d = prepare(df, law, y, x, group, run, check_units=False)
    law, _ = pool_few_families(law, d.n_families, set(pool or {}))
    s = structure(law, d, likelihood)
    data = model_data(d)
    if OBS not in data:
        raise BayescaleError(f"model_data() has no observation argument {OBS!r}; sbc cannot feed "
                             f"the simulated data back.")
    data.pop(OBS)
    if not (np.isfinite(floor) and floor > 0):
        raise BayescaleError(f"floor must be a positive number, got {floor!r}.")
    if "floor" in data:
        data["floor"] = jnp.full(d.n_families, float(floor))
    if "noise_unit" in data:
        data["noise_unit"] = jnp.asarray(NOISE_UNIT)
    if resolution is not None:
        if law.outcome.kind != "unit":
            raise BayescaleError(f"resolution={resolution!r} censors a bounded outcome; law "
                                 f"'{law.name}' has outcome '{law.outcome.kind}'.")
        if not 0 < resolution < 0.5:
            raise BayescaleError(f"resolution must lie strictly between 0 and 0.5, got {resolution!r}.")
        rows = len(d.y)
        data["y_lo"] = jnp.full(rows, float(law.outcome.forward(np.float64(resolution))))
        data["y_hi"] = jnp.full(rows, float(law.outcome.forward(np.float64(1.0 - resolution))))
    names = []
    for p in law.parameters:
        if s.pool(p) == "shared" or d.n_families == 1:
            names.append(p)
        else:
            names += [f"{p}[{f}]" for f in d.families]
    names += [f"{p}{k}" for p in partial_names(s) for k in ("_pop_z", "_tau")]
    names += ["sigma"] + (["sigma_run"] if s.n_runs else []) + (["nu"] if likelihood == "student_t" else [])
    names.append(LOG_LIK)
    return _Setup(law, d, s, data, names)


def _value(samples: dict, name: str, st: _Setup):
    """Values of quantity ``name`` (``alpha``, ``E[f1]``, ``sigma``) from a dict of sample arrays.

    Law parameters are deterministic sites with a last axis over families (a
    shared one repeats its value); the others have no family axis.
    """
    if name.endswith("]"):
        base, fam = name[:-1].split("[")
        return samples[base][..., st.design.families.index(fam)]
    return samples[name][..., 0] if name in st.law.parameters else samples[name]


@dataclass(frozen=True)
class SBCConfig:
    """What an SBC run draws and ranks, and where it runs (see :func:`sbc` for each field)."""

    reps: int = 100
    draws: int = 100
    thin: int = 4
    floor: float = FLOOR
    resolution: float | None = None
    generating_law: object = None
    replicates: tuple | None = None
    executor: object = None
    chunk: int = 25
    progress: bool | None = None


SBC_SAMPLER = SamplerConfig(chains=2, warmup=500)  # each replicate's NUTS run, unless told otherwise


def sbc(law, design_df=None, x=None, group=None, run=None, pool=None, *,
        sampler: SamplerConfig | None = None, model: ModelConfig | None = None,
        config: SBCConfig | None = None, **settings) -> SBCResult:
    """Simulation-based calibration of ``law`` fitted by NUTS on one design.

    For each replicate: draw every parameter and a data set from the prior
    predictive of the model (the observation site :data:`bayescale.model.OBS`
    sampled, not observed), fit the same model to that data set, keep
    ``draws`` posterior draws evenly thinned from the chains and record the
    rank of the true value of each quantity among them.

    Parameters
    ----------
    law : str, Law or path
        The law fitted (and, unless ``generating_law`` is given, simulated from).
    design_df : DataFrame, optional
        The design: input columns, and optionally family and run columns; no
        outcome is needed.  Default: :func:`design` of the law.
    x, group, run : optional
        Column mapping as in :func:`bayescale.fit`; default from
        ``design_df.attrs["mapping"]`` (set by :func:`design`), else each input
        in a column of its own name.
    sampler : SamplerConfig, optional
        ``chains``, ``warmup``, ``seed`` and ``target_accept`` of each replicate's
        NUTS run (default 2 chains x 500 warm-up iterations; the draws come from
        ``draws`` and ``thin``).
    model : ModelConfig, optional
        The likelihood.
    config : SBCConfig, optional
        ``reps``, ``draws``, ``thin``, ``floor``, ``resolution``, ``generating_law``, ``replicates``,
        ``executor``, ``chunk`` and ``progress``, described below.
    **settings
        Fields of :class:`SBCConfig`, :class:`~bayescale.SamplerConfig` or
        :class:`~bayescale.ModelConfig`, applied over ``config``, ``sampler`` and ``model``.
    reps : int
        Number of replicates.
    draws : int
        Posterior draws each rank is computed among (ranks lie in ``0..draws``);
        must be a multiple of ``chains``.
    seed : int
        Seeds the prior draws and every chain; the same seed gives the same ranks.
    chains, warmup : int
        NUTS chains and warm-up iterations per replicate.
    thin : int
        Each chain runs ``thin * draws / chains`` iterations after warm-up and is
        thinned to ``draws / chains`` draws.  Talts et al. thin to near
        independence: a replicate whose smallest bulk ESS is below ``draws`` is
        marked failed.
    floor : float
        Reference of ``floor()`` priors (the fit uses each family's smallest
        observation, which would make the prior depend on the data).
    resolution : float, optional
        For a bounded outcome: record simulated values below ``resolution`` (above
        ``1 - resolution``) at that bound and fit them as censored, as a fit does
        exact 0 and 1.
    pool : dict, optional
        Pooling overrides, as in :func:`bayescale.fit` (which also fits
        parameters per family when there are fewer than 5 families; so does this).
    likelihood : {"normal", "student_t"}
    generating_law : str or Law, optional
        Simulate from this law instead (same parameters and pooling, other
        priors): a deliberately wrong fitting prior, which SBC should reject.
    target_accept : float, optional
        NUTS target acceptance; default as in :func:`bayescale.fit`.
    replicates : sequence of int, optional
        Run only these replicate indices out of ``range(reps)`` (for splitting
        one SBC across processes; merge with :func:`combine`).  Replicate ``i``
        is the same data set whichever subset it runs in.
    progress : bool, optional
        A bar over the replicates in a terminal or Jupyter, one line per replicate
        (per task on an executor) in a log (:mod:`bayescale.inference.progress`);
        ``None`` (the default) as ``True``; ``False``: nothing.
    executor : {None, "serial", "local"} or concurrent.futures.Executor, optional
        Run the replicates as tasks of ``chunk`` replicates on this executor
        (see :mod:`bayescale.inference.executor`; e.g. a Dask ``Client.get_executor()``);
        replicate ``i`` is the same whichever task runs it, so the ranks equal
        those of a run in this process.  A task whose worker died is run again once.
    chunk : int
        Replicates per task on an executor (each task compiles once).

    Returns
    -------
    SBCResult

    Examples
    --------
    >>> res = sbc("power", design("power", families=1, sizes=8, ratios=1), reps=20,
    ...           draws=50, seed=0)  # doctest: +SKIP
    >>> res.uniformity()["p_holm"].min() > 0.05  # doctest: +SKIP
    True
    """
    started = time.perf_counter()
    settings = dict(settings)
    c = take(settings, SBCConfig, config)  # first: its "draws" are the ranks' draws
    smp = take(settings, SamplerConfig, SBC_SAMPLER if sampler is None else sampler)
    likelihood = take(settings, ModelConfig, model).likelihood
    if settings:
        raise BayescaleError(f"sbc: unknown keyword(s) {sorted(settings)}; it takes the fields of "
                             f"SBCConfig, SamplerConfig and ModelConfig.")
    reps, draws, thin, floor, generating_law = c.reps, c.draws, c.thin, c.floor, c.generating_law
    resolution = c.resolution
    replicates, executor, chunk, progress = c.replicates, c.executor, c.chunk, c.progress
    seed, chains, warmup, target_accept = smp.seed, smp.chains, smp.warmup, smp.target_accept
    for name, value in (("reps", reps), ("draws", draws), ("chains", chains), ("warmup", warmup),
                        ("thin", thin)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BayescaleError(f"sbc: {name} must be a positive integer, got {value!r}.")
    if draws % chains:
        raise BayescaleError(f"sbc: draws={draws} must be a multiple of chains={chains}.")
    st = setup(law, design_df, x, group, run, pool, likelihood, floor, resolution)
    if executor is not None:
        options = {"design_df": design_df, "x": x, "group": group, "run": run, "reps": reps,
                   "draws": draws, "seed": seed, "chains": chains, "warmup": warmup, "thin": thin,
                   "floor": floor, "resolution": resolution, "pool": pool, "likelihood": likelihood,
                   "target_accept": target_accept, "progress": progress}
        gen_text = None if generating_law is None else resolve(generating_law).to_toml()
        return _fan_out(executor, chunk, st.law.to_toml(), gen_text, options, replicates)
    gen = st
    if generating_law is not None:
        gen_law = resolve(generating_law)
        gen_law = gen_law.with_pooling({p: st.law.parameters[p].pool for p in st.law.parameters
                                        if p in gen_law.parameters})
        if set(gen_law.parameters) != set(st.law.parameters) or gen_law.inputs != st.law.inputs:
            raise LawError(f"generating law '{gen_law.name}' must have the parameters and inputs of "
                           f"'{st.law.name}'.")
        gen = _Setup(gen_law, st.design, structure(gen_law, st.design, likelihood), st.data, st.names)
    s, d, data = st.s, st.design, st.data
    idx = list(range(reps)) if replicates is None else [int(i) for i in replicates]
    if any(not 0 <= i < reps for i in idx):
        raise BayescaleError(f"sbc: replicates must lie in 0..{reps - 1}.")

    cpu = jax.devices("cpu")[0]
    with jax.default_device(cpu):
        # the prior predictive of all replicates at once; a subset picks its own rows, so a
        # replicate is the same data set whichever process runs it
        prior, redrawn = _prior(build(gen.s, {}), data, reps, seed, partial(_in_range, gen))
        if target_accept is None:
            target_accept = 0.99 if (s.n_runs or partial_names(s)) else 0.95
        # replicate i's key depends on (seed, i) only, whichever subset runs it
        keys = np.asarray(jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 1), reps))
        groups: dict = {}  # parameterisation -> replicates: one compiled program each
        plain = build(s, {})
        latent = latent_sites(plain, data | {OBS: jnp.asarray(prior[OBS][0])})
        for i in idx:
            centring = choose_centring(s, d, float(prior["sigma"][i]))
            # the anchor is chosen as a fit chooses it, with the truth in place of the mode
            weak = weak_amplitude(s, centring, plain, data | {OBS: jnp.asarray(prior[OBS][i])},
                                  {k: v[i] for k, v in prior.items()}, latent,
                                  ("hessian", s.law.to_toml(), shape_key(s.law, s, data)))
            groups.setdefault((tuple(sorted(centring.items())), weak), []).append(i)
        rows = []
        steps = current(progress).steps(f"SBC {st.law.name} replicate", len(idx)).open()
        for (key, weak), members in groups.items():
            sampler = _Sampler(s, dict(key), data, prior[OBS][members[0]], chains, warmup,
                               draws // chains * thin, target_accept, weak)
            for i in members:
                t0 = time.perf_counter()
                truth = in_centring({name: v[i] for name, v in prior.items()}, dict(key))
                post, extra = sampler.run(keys[i], truth)
                row = _record(st, sampler, truth, post, extra, draws, thin, chains)
                row |= {"replicate": i, "seconds": time.perf_counter() - t0, "compiled": i == members[0],
                        "centring": ",".join(f"{name}:{_centring_label(v)}" for name, v in key),
                        "anchored": sampler.model.anchored}
                rows.append(row)
                steps.advance(f"#{i} {row['seconds']:.2f} s, {row['divergences']} divergent, "
                              f"min ESS {row['min_ess']:.0f}")
        steps.close()
    settings = {"law": st.law.name, "generating_law": gen.law.name, "reps": reps, "draws": draws,
                "seed": seed, "chains": chains, "warmup": warmup, "thin": thin, "floor": floor,
                "resolution": resolution,
                "likelihood": likelihood, "target_accept": target_accept,
                "pooling": {p: s.pool(p) for p in st.law.parameters},
                "rows": len(d.y), "families": d.n_families, "runs": len(d.runs),
                "prior_redrawn": redrawn,
                "seconds": round(time.perf_counter() - started, 2)}
    ranks = pd.DataFrame(rows, columns=["replicate", *st.names, "divergences", "min_ess", "max_rhat",
                                        "steps", "centring", "anchored", "failed", "seconds",
                                        "compiled"])
    ranks = ranks.sort_values("replicate").reset_index(drop=True)
    return SBCResult(st.law.name, ranks, list(st.names), draws, settings)


def _task(law_text: str, gen_text, options: dict, replicates: list) -> SBCResult:
    """One executor task: the replicates ``replicates`` of one SBC run."""
    law = Law.from_toml(law_text, origin="sbc task")
    gen = None if gen_text is None else Law.from_toml(gen_text, origin="sbc task")
    return sbc(law, generating_law=gen, replicates=replicates, **options)


def _fan_out(executor, chunk: int, law_text: str, gen_text, options: dict, replicates) -> SBCResult:
    runner.check_chunk(chunk, "sbc")
    reps = options["reps"]
    idx = list(range(reps)) if replicates is None else [int(i) for i in replicates]
    if any(not 0 <= i < reps for i in idx):
        raise BayescaleError(f"sbc: replicates must lie in 0..{reps - 1}.")
    quiet = {**options, "progress": False}  # the workers report nothing; this process counts tasks
    tasks = {k: (law_text, gen_text, quiet, idx[k:k + chunk]) for k in range(0, len(idx), chunk)}
    parts = {}

    def failed(key, exc, attempts):
        raise BayescaleError(f"sbc: replicates {tasks[key][3][0]}..{tasks[key][3][-1]} failed after "
                             f"{attempts} attempt(s): {type(exc).__name__}: {exc}") from exc

    steps = current(options["progress"]).steps("SBC replicate", len(idx)).open()

    def done(key, result, _):
        parts[key] = result
        steps.advance(f"task of {len(tasks[key][3])} replicate(s)", n=len(tasks[key][3]))

    started = time.perf_counter()
    pool, owned, restart = runner.resolve(executor, "sbc")
    try:
        runner.run_tasks(pool, _task, tasks, done, failed, restart=restart)
    finally:
        steps.close()
        if owned:
            pool.shutdown()
    result = combine(parts[k] for k in sorted(parts))
    result.settings["seconds"] = round(time.perf_counter() - started, 2)
    return result


MAX_PRIOR_ROUNDS = 20


def _in_range(st: _Setup, draws: dict) -> np.ndarray:
    """Mask of prior draws whose law mean, before clipping, is finite and inside the outcome's range
    at every row of the design."""
    inputs = {k: np.asarray(v) for k, v in st.data["inputs"].items()}
    idx = st.design.family_idx
    values = {p: np.asarray(draws[p])[:, idx] for p in st.law.parameters}
    with np.errstate(all="ignore"):
        mu = np.asarray(st.law.formula(values | inputs, np), dtype=float)
        mu = np.broadcast_to(mu, (len(draws[OBS]), len(idx)))
        return (np.isfinite(mu) & st.law.outcome.valid(mu)).all(axis=1)


def _prior(model, data: dict, reps: int, seed: int, valid=None) -> tuple[dict, float]:
    """``reps`` draws of every site from the prior predictive whose data set is usable.

    A law can be undefined (NaN) for some prior draws, or leave the outcome's
    range (a negative loss, an accuracy above 1), where the model clips its mean
    to the edge and the simulated outcome sits at the link of the clip
    (``log(1e-308) = -708``).  The fit gives such parameters no posterior mass
    for any data set of a law within its range (the likelihood of observed data
    under a mean of -708 underflows), so its effective prior is the law's prior
    restricted to draws that keep the law finite and in range on the design.
    Drawing again in place of the others simulates from that same restricted
    prior, which keeps SBC valid; the share redrawn is returned and reported.
    ``valid`` maps the draws to a mask of usable ones (default: finite data).
    Draws come in rounds of ``reps`` from keys fixed by ``seed``, so replicate
    ``i`` is the same in every process.
    """
    # one compiled program for all rounds (run eagerly, every operation would compile on its own);
    # numpyro's argument checks would raise on the NaN means those draws give
    with numpyro.validation_enabled(False):
        draw = jax.jit(lambda k: Predictive(model, num_samples=reps)(k, **data))
        parts, drawn, kept = [], 0, 0
        for attempt in range(MAX_PRIOR_ROUNDS):
            k = jax.random.fold_in(jax.random.PRNGKey(seed), attempt) if attempt else jax.random.PRNGKey(seed)
            out = {name: np.asarray(v) for name, v in draw(k).items()}
            finite = np.isfinite(out[OBS].reshape(reps, -1)).all(axis=1)
            if valid is not None:
                finite &= valid(out)
            parts.append({name: v[finite] for name, v in out.items()})
            drawn, kept = drawn + reps, kept + int(finite.sum())
            if kept >= reps:
                break
    if kept < reps:
        raise BayescaleError(
            f"the prior predictive gave finite data sets in only {kept} of {drawn} draws: the law is "
            f"undefined over most of its prior on this design. Check the priors and the design.")
    prior = {name: np.concatenate([p[name] for p in parts])[:reps] for name in parts[0]}
    return prior, round(1.0 - kept / drawn, 4)


def _record(st: _Setup, sampler, truth: dict, post: dict, extra: dict, draws: int, thin: int,
            chains: int) -> dict:
    """Ranks of one replicate and its sampler record."""
    post = {k: np.asarray(v) for k, v in post.items()}
    kept = {k: v[:, thin - 1::thin] for k, v in post.items()}  # evenly thinned, per chain
    both = {k: np.concatenate([truth[k][None], kept[k].reshape(-1, *kept[k].shape[2:])])
            for k in sampler.latent}
    ll = np.asarray(sampler.loglik(both, st.data | {OBS: jnp.asarray(truth[OBS])}))
    row, ess, rhat = {}, [], []
    for q in st.names:
        if q == LOG_LIK:
            row[q] = rank(ll[1:], ll[0])
            continue
        row[q] = rank(_value(kept, q, st), _value(truth, q, st))
        full = _value(post, q, st)
        ess.append(float(effective_sample_size(full)))
        if chains > 1:
            rhat.append(float(split_gelman_rubin(full)))
    row["divergences"] = int(np.asarray(extra["diverging"]).sum())
    row["min_ess"] = float(np.nanmin(ess)) if ess else float("nan")
    row["max_rhat"] = float(np.nanmax(rhat)) if rhat else float("nan")
    row["steps"] = float(np.asarray(extra["num_steps"]).mean())
    row["failed"] = bool(row["divergences"] > 0 or not row["min_ess"] >= draws
                         or row["max_rhat"] > RHAT_FAIL)
    return row


class _Sampler:
    """One compiled NUTS program for a parameterisation, reused by every replicate that needs it.

    A replicate's whole fit -- starting point, warm-up, sampling -- is one run of
    :func:`bayescale.inference.nuts.nuts_program`, started at the true draw; see
    there why it is one program and why replicates are not batched with
    ``jax.vmap`` (parallelism is left to processes, ``benchmarks/sbc_full.py
    --workers``).
    """

    def __init__(self, s: Structure, centring: dict, data: dict, y0, chains: int, warmup: int,
                 samples: int, target_accept: float, weak: str | None = None):
        runtime.ensure()
        self.model = model = build(s, centring, anchor=True, weak=weak)
        self.data = data
        self.latent = latent_sites(model, data | {OBS: jnp.asarray(y0)})
        # dense mass matrix over the law's parameters, diagonal over the (many) run effects, as in fit
        dense = tuple(k for k in self.latent if not k.startswith(RUN))
        self._fit = nuts_program(model, self.latent, chains=chains, warmup=warmup, draws=samples,
                                 target_accept=target_accept, dense=dense)
        self.loglik = jax.jit(lambda values, kw: log_likelihood(model, values, **kw)[OBS].sum(-1))

    def run(self, key, truth: dict) -> tuple[dict, dict]:
        """Posterior samples and extra fields, grouped by chain, of one replicate."""
        latent = {k: jnp.asarray(truth[k]) for k in self.latent}
        kw = self.data | {OBS: jnp.asarray(truth[OBS])}
        with runtime.one_blas_thread():
            return jax.tree.map(np.asarray, self._fit(jnp.asarray(key), latent, kw))


def _centring_label(value) -> str:
    """``c`` (centred), ``nc`` (non-centred) or ``c/nc`` per family, as the table records it."""
    if np.ndim(value) == 0:
        return "c" if value == 1.0 else "nc"
    return "/".join("c" if v == 1.0 else "nc" for v in value)


__all__ = ["FLOOR", "LOG_LIK", "SBCResult", "adjust", "combine", "design", "fractional", "rank",
           "sbc", "setup", "uniformity_test"]
