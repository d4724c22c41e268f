"""``bs.fit``: data -> law -> hierarchical model -> NUTS -> diagnostics gate -> :class:`Fit`.

:class:`Fit` is the front end the user holds: ``summary``, ``predict``,
``plot`` and ``save`` read like the questions they answer.
"""

from __future__ import annotations

import os
import time
import warnings

import arviz_base as azb
import numpy as np
import pandas as pd

from . import diagnostics, inference, io
from .compare import contrast, contrast_prediction, rank_families
from .data import Design, prepare
from .errors import DataError, DesignWarning, FitWarning
from .law import Law, resolve
from .model import RUN, Structure, build, choose_centring, dims, model_data, partial_names, structure
from .predict import predict


class Fit:
    """A fitted scaling law: posterior, diagnostics, forecasts.

    Attributes
    ----------
    ok : bool
        True only if the diagnostics gate passed (R-hat, ESS, divergences, E-BFMI).
    warnings : list of FitWarning
        Design and diagnostics warnings (also emitted through :mod:`warnings`).
    idata : xarray.DataTree
        ArviZ 1.x DataTree: posterior, sample_stats, log_likelihood, observed_data,
        constant_data.
    law : Law
        The law with the pooling used.
    design : Design
        The validated data.
    """

    def __init__(self, law: Law, design: Design, s: Structure, idata, settings: dict,
                 warnings_: list, diag: pd.DataFrame):
        self.law, self.design, self.structure = law, design, s
        self.idata, self.settings = idata, settings
        self.warnings, self.diagnostics = warnings_, diag

    @property
    def ok(self) -> bool:
        return not any(w.kind in GATE_KINDS for w in self.warnings)

    def __repr__(self) -> str:
        verdict = "passed" if self.ok else "FAILED"
        return (f"<Fit {self.law.name}: {len(self.design.y)} rows, {self.design.n_families} "
                f"famil{'y' if self.design.n_families == 1 else 'ies'}, diagnostics {verdict}>")

    # ---- results ------------------------------------------------------------------
    def summary(self) -> pd.DataFrame:
        """Each parameter (per family where it varies): mean, sd, 90% interval, r_hat, ESS.

        Parameters shared across families appear once; the paper-convention
        values from the law's ``[report]`` table (e.g. ``A``, ``B``) are included.
        """
        rows = []
        names = [*self.law.parameters, *self.law.report]
        diag = diagnostics.table(self.idata, names)
        for name in names:
            shared = self.design.n_families == 1 or (
                name in self.law.parameters and self.structure.pool(name) == "shared")
            for family in self.design.families[:1] if shared else self.design.families:
                row = diag.loc[f"{name}[{family}]"]
                rows.append({"parameter": name, "family": None if shared else family,
                             **row[["mean", "sd", "q5", "q95", "r_hat", "ess_bulk", "ess_tail"]]})
        for name in self.hyperparameters():
            rows.append({"parameter": name, "family": None,
                         **self.diagnostics.loc[name][["mean", "sd", "q5", "q95", "r_hat",
                                                       "ess_bulk", "ess_tail"]]})
        return pd.DataFrame(rows)

    def hyperparameters(self) -> list[str]:
        """Population, noise and run-effect parameters of the model."""
        names = [f"{n}{k}" for n in partial_names(self.structure) for k in ("_pop_z", "_tau")]
        names.append("sigma")
        if self.structure.n_runs:
            names.append("sigma_run")
        if self.structure.likelihood == "student_t":
            names.append("nu")
        return names

    def predict(self, new, kind: str = "mean", levels=(0.5, 0.9), seed: int = 0,
                discrepancy=None, extrapolation: bool = True) -> pd.DataFrame:
        """Posterior forecasts at the rows of ``new``.

        Parameters
        ----------
        new : DataFrame or dict
            Input columns as named in the fit (e.g. ``params``, ``tokens``) and
            optionally the group column; a family absent from the data is forecast
            from the population.  Without a group column, every family is forecast.
        kind : {"mean", "new_run"}
            ``"mean"``: the law itself (credible band of the curve).  ``"new_run"``:
            where one new training run lands (adds a run effect and observation noise).
        levels : sequence of float
            Central credible levels; each gives columns ``lo<pct>`` and ``hi<pct>``.
        discrepancy : float or Calibration, optional
            Rate at which the law's own error grows beyond the data (link-scale sd
            per decade of extrapolation), or a :func:`bayescale.calibrate` result,
            which also widens it by its ``curvature`` per squared decade, with
            Student-t tails of its ``dof``, and shifts it by its ``bias`` per decade
            (``bias=True``); overrides the fit's own calibration.  0 trusts the law's form exactly.
        extrapolation : bool
            Widen the band beyond the data by the fit's own calibration (which
            ``bs.fit`` makes by default); ``False`` gives the law-only band.  A fit
            without a calibration gives the law-only band.

        Returns
        -------
        DataFrame
            The inputs, ``family``, ``mean``, ``median``, ``lo50``/``hi50``, ...,
            ``distance`` (decades of compute beyond the family's data, or of the
            farthest input when compute is unknown) and ``extrap_<input>`` (decades
            outside the family's observed range; also ``extrap_C`` for N*D).
            A forecast beyond the calibration's ``reach`` warns
            (:class:`~bayescale.errors.ExtrapolationWarning`).
        """
        own = self.settings.get("extrapolation") if extrapolation else None
        if discrepancy is None:  # a fit whose calibration was skipped keeps the law-only band
            discrepancy = own if own and "rate" in own else 0.0
        return predict(self.idata.posterior, self.structure, self.design, new, kind, levels, seed,
                       discrepancy=discrepancy)

    def contrast(self, param: str, a: str, b: str, level: float = 0.9):
        """Posterior of ``param`` in family ``a`` minus (and over) family ``b``; see
        :func:`bayescale.compare.contrast`."""
        return contrast(self, param, a, b, level)

    def contrast_prediction(self, at, a: str, b: str, kind: str = "mean", level: float = 0.9,
                            seed: int = 0):
        """Paired posterior of the forecast of ``a`` minus ``b`` at ``at``; see
        :func:`bayescale.compare.contrast_prediction`."""
        return contrast_prediction(self, at, a, b, kind, level, seed)

    def rank_families(self, at, lower_is_better: bool = True, kind: str = "mean", seed: int = 0):
        """Probability of each family being best at ``at``; see :func:`bayescale.compare.rank_families`."""
        return rank_families(self, at, lower_is_better, kind, seed)

    def allocate(self, budgets, flops=None, family=None, inputs=("N", "D"), levels=(0.5, 0.9),
                 seed: int = 0):
        """Posterior of N*, D*, D*/N* and L* at each compute budget; see
        :func:`bayescale.allocate.allocate` (``flops`` defaults to 6·N·D)."""
        from .allocate import allocate, six_nd

        return allocate(self, budgets, flops or six_nd, family, inputs, levels, seed)

    def ppc(self, summary: bool = False, seed: int = 0):
        """Posterior predictive check: a figure of observed vs replicated data per family and
        LOO-PIT calibration, or with ``summary=True`` its numbers; see :mod:`bayescale.ppc`."""
        from .ppc import ppc

        return ppc(self, summary, seed)

    def plot(self, **kwargs):
        """Data, posterior median and credible bands per family (log-log); a Figure."""
        from .plot import plot_fit

        return plot_fit(self, **kwargs)

    def save(self, path):
        """Write the fit to a directory (netCDF + CSV + TOML + JSON; no pickle)."""
        return io.save(self, path)

    @classmethod
    def load(cls, path) -> Fit:
        """Read a fit written by :meth:`save`."""
        parts = io.read(path)
        meta, cols = parts["meta"], parts["meta"]["columns"]
        law = Law.from_toml(parts["law_text"], origin=f"{path}/law.toml")
        st = meta["settings"]
        design = prepare(parts["frame"], law, cols["y"], cols["x"], cols["group"], cols["run"],
                         cols["se"], min_rows_per_family=st["min_rows_per_family"],
                         check_units=False)  # checked, or knowingly skipped, when fitted
        s = structure(law, design, st["likelihood"], st["parameterization"])
        diag, found = diagnostics.gate(parts["idata"], _gate_names(s), st["chains"])
        return cls(law, design, s, parts["idata"], st, design.warnings + found, diag)


GATE_KINDS = {"rhat", "ess_bulk", "ess_tail", "divergences", "bfmi"}


def _gate_names(s: Structure) -> list[str]:
    names = [*s.law.parameters]
    names += [f"{n}{k}" for n in partial_names(s) for k in ("_pop_z", "_tau")]
    names += ["sigma"] + (["sigma_run"] if s.n_runs else []) + (["nu"] if s.likelihood == "student_t" else [])
    return names


MIN_POOL_FAMILIES = 5


def _pool_few_families(law: Law, n_families: int, chosen: set) -> tuple[Law, list]:
    """Fit default-partial parameters per family when there are too few families.

    With 2-4 families the between-family spread is hardly identified, and its
    funnel defeated NUTS on both the demo ladder and Gadre et al.'s 3 corpora
    (50-700 divergent transitions centred or non-centred, against none fitted
    per family).  Parameters the caller pooled explicitly are left as asked.
    """
    demote = [n for n, p in law.parameters.items() if p.pool == "partial" and n not in chosen]
    if n_families == 1 or n_families >= MIN_POOL_FAMILIES or not demote:
        return law, []
    note = FitWarning("few_families", (
        f"{n_families} families are too few to learn how {', '.join(demote)} vary between families, "
        f"so they are fitted per family (pool='none'); a family absent from the data cannot be "
        f"forecast. Pass pool={{'{demote[0]}': 'partial'}} to pool them anyway."), DesignWarning)
    return law.with_pooling(dict.fromkeys(demote, "none")), [note]


EXTRAPOLATION_ENV = "BAYESCALE_EXTRAPOLATION"  # "off" makes extrapolation="auto" mean False
CALIBRATION_CHAINS = (2, 500)  # chains and warm-up/draws (at most) of the nested calibration fits


def fit(df, law="chinchilla", y: str = "loss", x=None, group=None, run=None, se=None,
        pool=None, likelihood: str = "normal", chains: int = 4, warmup: int = 1000,
        draws: int = 1000, seed: int = 0, device=None, parameterization: str = "auto",
        progress=None, min_rows_per_family: int = 2, check_units: bool = True,
        target_accept: float | None = None, extrapolation="auto") -> Fit:
    """Fit a hierarchical scaling law by NUTS and gate it on its diagnostics.

    Parameters
    ----------
    df : DataFrame
        One row per observation (final loss of a run, or a checkpoint).
    law : str, Law or path
        Catalogue name (see :func:`bayescale.laws`), a :class:`Law`, or a ``.toml`` file.
    y : str
        Outcome column (positive; modelled on the log scale).
    x : dict or str
        Law input -> column, e.g. ``{"N": "params", "D": "tokens"}``; a string for
        one-input laws.
    group : str, optional
        Family column (corpus, architecture, recipe, ...).
    run : str, optional
        Run/seed column: each run gets a log-scale offset (seed-level noise),
        separate from observation noise.  Needs several rows per run to separate them.
    se : str, optional
        Column of known measurement standard errors of ``y``.
    pool : dict, optional
        Parameter -> ``"shared"``, ``"partial"`` or ``"none"``, overriding the law's
        defaults.  With fewer than :data:`MIN_POOL_FAMILIES` families, parameters the
        law pools partially by default are fitted per family instead (with a warning).
    likelihood : {"normal", "student_t"}
        Noise on log y; ``student_t`` is robust to outlying runs.
    chains, warmup, draws, seed : int
        NUTS settings.  The same seed gives identical draws.
    device : {"cpu", "gpu", "auto"}, optional
        Where to sample.  By default (``None`` or ``"auto"``) the CPU, unless JAX
        sees a GPU and the data have at least
        :data:`bayescale.inference.GPU_MIN_ROWS` rows.
    parameterization : {"auto", "centred", "noncentred"}
        How family effects are sampled (see :mod:`bayescale.model`).
    progress : bool, optional
        Progress bar; by default only when stderr is a terminal.
    min_rows_per_family : int
        Families with fewer rows are a :class:`~bayescale.errors.DataError`;
        set 1 to forecast a family from one run plus what the others teach.
    check_units : bool
        Refuse an input that looks like mixed units within a family (7 and 7e9).
    target_accept : float, optional
        NUTS target acceptance probability.  By default 0.99 when the model has
        random effects (run effects or partially pooled parameters), whose funnels
        otherwise cost an occasional divergent transition (1 in 4000 draws on the
        demo ladder at 0.95, none at 0.99 over three seeds, for about 1.6x the
        leapfrog steps), and 0.95 otherwise.
    extrapolation : {"auto", True, False} or Calibration
        How far to trust the law beyond the data.  ``"auto"`` (the default) and
        ``True`` also measure how fast the law's own error grows beyond the data
        (:func:`bayescale.calibrate`: 3 rolling origins inside these data, each
        one more fit with these settings but at most 2 chains x (500 + 500)
        draws, all three through one compiled program, their chains side by side
        over the host devices: about 2.3x a plain fit's wall time on
        ``loss_to_loss``, 2 cores) and keep its terms (a
        rate per decade, a curvature per squared decade, Student-t tails) with the
        fit, so that :meth:`Fit.predict` widens its bands with extrapolation
        distance.  When the data are too few or too narrow in compute for a
        rolling backtest, ``"auto"`` falls back to law-only bands and says why
        in ``fit.settings["extrapolation"]["skipped"]``, where ``True`` raises.  A
        :class:`~bayescale.calibrate.Calibration` is kept as given; ``False``
        gives law-only bands.  The environment variable
        ``BAYESCALE_EXTRAPOLATION=off`` turns ``"auto"`` into ``False`` (for
        pipelines that never forecast beyond their data).

    Returns
    -------
    Fit

    Examples
    --------
    >>> import bayescale as bs
    >>> df = bs.datasets.simulate("power", families=1, seeds=1, seed=0)
    >>> f = bs.fit(df, law="power", y="loss", x="x", chains=1, warmup=200, draws=200)  # doctest: +SKIP
    >>> f.predict({"x": [1e12]})[["median", "lo90", "hi90"]]  # doctest: +SKIP
    """
    extrapolation = _extrapolation(extrapolation)
    started, requested = time.perf_counter(), law
    law, design, s, data = setup(df, law, y, x, group, run, se, pool, likelihood, parameterization,
                                 min_rows_per_family, check_units)
    # the all-non-centred mode holds both forms of every effect, so it starts either
    mode = inference.find_map(build(s, {}), data, seed)
    centring = choose_centring(s, design, float(mode["sigma"]))
    target_accept = default_target_accept(s, target_accept)
    device = inference.choose_device(device, rows=len(design.y))
    mcmc = inference.sample(build(s, centring), data, mode, chains=chains, warmup=warmup, draws=draws,
                            seed=seed, device=device, progress=progress, dense=dense_sites(mode),
                            target_accept=target_accept)
    settings = {"law": law.name, "likelihood": likelihood, "chains": chains, "warmup": warmup,
                "draws": draws, "seed": seed, "device": device,
                "parameterization": parameterization, "min_rows_per_family": min_rows_per_family,
                "check_units": check_units, "target_accept": target_accept,
                "centring": centring}
    result = finish(law, design, s, mcmc, settings, started)
    inference.release_programs()
    if extrapolation is True or isinstance(extrapolation, str):  # True or "auto"
        from .calibrate import calibrate

        # the nested fits only need the bands' width: shorter chains keep the cost near 2 fits
        short = {"chains": min(chains, CALIBRATION_CHAINS[0]), "warmup": min(warmup, CALIBRATION_CHAINS[1]),
                 "draws": min(draws, CALIBRATION_CHAINS[1])}
        try:
            extrapolation = calibrate(df, requested, y=y, x=x, group=group, run=run, se=se, pool=pool,
                                      likelihood=likelihood, **short, seed=seed,
                                      parameterization=parameterization,
                                      min_rows_per_family=min_rows_per_family,
                                      check_units=check_units, target_accept=target_accept,
                                      device=device)
        except DataError as err:
            if extrapolation is True:
                raise DataError(f"extrapolation=True: {err}") from None
            result.settings["extrapolation"] = {"skipped": str(err)}
            return result
    if extrapolation is not False:
        result.settings["extrapolation"] = extrapolation.record()
    return result


def _extrapolation(value):
    """The ``extrapolation`` argument checked, with ``"auto"`` turned off by the environment."""
    if isinstance(value, str) and value == "auto":
        setting = os.environ.get(EXTRAPOLATION_ENV, "auto").strip().lower()
        if setting not in ("auto", "off"):
            raise DataError(f"{EXTRAPOLATION_ENV}={setting!r}: set 'auto' (calibrated bands beyond "
                            f"the data, the default) or 'off' (law-only bands).")
        return value if setting == "auto" else False
    if isinstance(value, bool) or hasattr(value, "record"):
        return value
    raise DataError(f"extrapolation={value!r}: pass 'auto', True, False or a result of "
                    f"bayescale.calibrate.")


def setup(df, law, y, x, group, run, se, pool, likelihood, parameterization, min_rows_per_family,
          check_units) -> tuple[Law, Design, Structure, dict]:
    """Validated design, law with its pooling, model structure and model arguments of one data set."""
    law = resolve(law).with_pooling(pool)
    design = prepare(df, law, y, x, group, run, se, min_rows_per_family=min_rows_per_family,
                     check_units=check_units)
    law, few = _pool_few_families(law, design.n_families, set(pool or {}))
    design.warnings += few
    return law, design, structure(law, design, likelihood, parameterization), model_data(design)


def dense_sites(mode: dict) -> tuple:
    """Sites in the dense block of the mass matrix: all but the run effects, which may be many.

    Putting a few run effects in was tried (lr_annealing, 6 runs): bulk ESS fell
    from 447 to 260, so it is not done.
    """
    return tuple(k for k in mode if not k.startswith(RUN))


def default_target_accept(s: Structure, target_accept: float | None) -> float:
    """0.99 with random effects (their funnels), 0.95 otherwise; see :func:`fit`."""
    if target_accept is not None:
        return target_accept
    return 0.99 if (s.n_runs or partial_names(s)) else 0.95


def finish(law: Law, design: Design, s: Structure, draws, settings: dict, started: float) -> Fit:
    """ArviZ DataTree, diagnostics gate and warnings of one fit; ``draws`` is a NumPyro
    :class:`~numpyro.infer.MCMC` or an ArviZ NumPyro adapter (:class:`bayescale.inference.Draws`)."""
    idata = azb.from_numpyro(
        draws, log_likelihood=True,
        coords={"family": design.families, "run": design.runs, "obs": np.arange(len(design.y))},
        dims=dims(s), pred_dims={},  # given, so ArviZ does not re-trace the model
        constant_data={"family_idx": design.family_idx, "run_idx": design.run_idx,
                       "se_log": design.se_log, **{f"input_{k}": v for k, v in design.inputs.items()}},
    )
    return gated(law, design, s, idata, settings | {"seconds": round(time.perf_counter() - started, 2)})


def gated(law: Law, design: Design, s: Structure, idata, settings: dict) -> Fit:
    """The diagnostics gate of a converted fit, its warnings emitted, as a :class:`Fit`."""
    diag, found = diagnostics.gate(idata, _gate_names(s), settings["chains"])
    for w in design.warnings + found:
        warnings.warn(w.category(str(w)), stacklevel=4)
    return Fit(law, design, s, idata, settings, design.warnings + found, diag)


load = Fit.load

__all__ = ["Fit", "FitWarning", "fit", "load"]
