"""The calls users make, composed from the layers below: ``bs.fit`` is a plain fit, then calibration.

``bs.fit`` = :func:`bayescale.result.fitting.fit_plain` (data -> model -> NUTS -> gated
:class:`~bayescale.result.fit.Fit`), then, by default, the law's error beyond the data
measured by a rolling backtest nested inside the same data
(:func:`bayescale.evaluate.calibration.measure`, whose nested fits are plain fits too)
and kept with the fit.  Nothing below this module knows that composition.
"""

from __future__ import annotations

import warnings

import pandas as pd

from .errors import DataError, DiagnosticsWarning
from .evaluate.backtest import LEVELS, Backtest, run_backtest
from .evaluate.calibration import CalibrationConfig, measure
from .evaluate.extrapolation import calibrate, failed_nested, option
from .inference.config import SamplerConfig
from .inference.progress import current, reporting
from .model import ModelConfig
from .result.fit import Fit
from .result.fitting import CHUNK, request


def fit(df, law="chinchilla", y: str = "loss", x=None, group=None, run=None, se=None, pool=None,
        sampler: SamplerConfig | None = None, model: ModelConfig | None = None,
        extrapolation="auto", weight: str | None = None, **settings) -> Fit:
    """Fit a hierarchical scaling law by NUTS, gate it on its diagnostics, calibrate its forecasts.

    Parameters
    ----------
    df : DataFrame
        One row per observation (final loss of a run, or a checkpoint).
    law : str, Law or path
        Catalogue name (see :func:`bayescale.laws`), a :class:`~bayescale.Law`, or a ``.toml`` file.
    y : str
        Outcome column, in the range of the law's outcome: > 0 (losses), [0, 1] (accuracies;
        an exact 0 or 1 is fitted as censored) or any value (``outcome = "real"``); modelled
        on the law's link scale.
    x : dict or str
        Law input -> column, e.g. ``{"N": "params", "D": "tokens"}``; a string for one-input laws.
    group : str, optional
        Family column (corpus, architecture, recipe, ...).
    run : str, optional
        Run/seed column: each run gets a link-scale offset (seed-level noise), separate from
        observation noise.  Needs several rows per run to separate them.
    se : str, optional
        Column of known measurement standard errors of ``y``.
    pool : dict, optional
        Parameter -> ``"shared"``, ``"partial"`` or ``"none"``, overriding the law's defaults.
        With fewer than 5 families, parameters the law pools partially by default are
        fitted per family instead (with a warning).
    weight : str, optional
        Column of likelihood weights (> 0): a row's log-likelihood counts that many times,
        the weights scaled to average 1 over the rows fitted.  Weights that grow with
        compute let the larger runs pull the fit (``case_studies/extrapolation`` measures
        compute to the power 1/4).  LOO (:func:`bayescale.compare`) still reads each
        row's own density.
    sampler : SamplerConfig, optional
        Chains, warm-up, draws, seed, target acceptance, tree depth, device, progress.
    model : ModelConfig, optional
        Likelihood (``"student_t"`` is robust to outlying runs), parameterisation, the
        smallest family and the unit check.
    extrapolation : {"auto", True, False}, CalibrationConfig or Calibration
        How far to trust the law beyond the data.  ``"auto"`` (the default) and ``True``
        also measure how fast the law's own error grows beyond the data (a rolling
        backtest of 3 origins inside these data, each one more plain fit with at most
        2 chains x (500 + 500) draws, all through one compiled program: about 2.3x a
        plain fit's wall time on ``loss_to_loss``, 2 cores) and keep its terms with the fit,
        so that :meth:`Fit.predict` widens its bands with extrapolation distance.  When
        the data are too few or too narrow in compute, ``"auto"`` falls back to law-only
        bands and says why in ``fit.settings.extrapolation["skipped"]``, where ``True``
        raises.  A :class:`CalibrationConfig` sets the nested backtest; a
        :class:`Calibration` is kept as given; ``False`` gives law-only bands.  The
        nested fits' verdicts are in ``fit.settings.nested_table()``; a nested fit that
        fails the diagnostics gate is left out of the calibration unless that would narrow
        the bands, or with fewer than two passing the bands fall back to a wider default
        (:mod:`bayescale.evaluate.calibration`); ``fit.settings.extrapolation["basis"]``
        says which, and a :class:`~bayescale.errors.DiagnosticsWarning` kept in ``fit.warnings`` says why.
    **settings
        Any field of :class:`SamplerConfig` (``chains``, ``warmup``, ``draws``, ``seed``,
        ``target_accept``, ...) or of :class:`ModelConfig` (``likelihood``, ...), applied
        over ``sampler`` and ``model``.

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
    chosen = option(extrapolation)  # an unknown value fails before any fit
    req = request(law, y, x, group, run, se, pool, sampler, model, weight=weight, **settings)
    shown = current(req.sampler.progress)  # the nested fits report to it too, one line per origin
    with reporting(reporter=shown):
        result = req.fit(df)
    if not isinstance(chosen, CalibrationConfig):  # law-only bands, or a calibration given
        return calibrate(result, df, req, chosen)
    shown.line(f"calibrating forecasts beyond the data: {chosen.cuts} nested fits of a rolling backtest")
    before = len(result.warnings)
    with reporting(reporter=shown):
        calibrate(result, df, req, chosen)
    for note in result.warnings[before:]:  # said once, and kept with the fit
        warnings.warn(note.category(str(note)), stacklevel=2)
    kept, nested = result.settings.extrapolation, result.settings.nested or ()
    if "rate" in kept:
        passed = sum(row.get("verdict") == "passed" for row in nested)
        shown.line(f"calibrated: rate {kept['rate']:.4g} per decade, reach {kept['reach']:.2f} decades; "
                   f"nested fits {passed} of {len(nested)} passed")
    return result


def fit_many(frames, law="chinchilla", y: str = "loss", x=None, group=None, run=None, se=None, pool=None,
             sampler: SamplerConfig | None = None, model: ModelConfig | None = None, *,
             vectorize: bool | None = None, executor=None, chunk: int = CHUNK, pad: bool = False,
             extrapolation=False, weight: str | None = None, **settings):
    """Fit ``law`` to each data set of ``frames``, compiling once per model shape.

    Plain fits by default (no calibration beyond the data): for simulation-based
    calibration replicates, backtest folds and bootstrap resamples;
    ``extrapolation`` calibrates each fit's forecasts beyond its data as
    :func:`fit` does.

    Parameters
    ----------
    frames : sequence or mapping of DataFrame
        The data sets, all with the columns named by ``y``, ``x``, ``group``, ``run`` and ``se``.
    law, y, x, group, run, se, pool, sampler, model, weight, **settings
        As in :func:`fit`, the same for every data set.  Data set ``i`` (in order) is fitted
        with the key ``fold_in(PRNGKey(seed), i)``; the same seed gives the same draws.
    vectorize : bool, optional
        Run the data sets of one shape, and their chains, in one vectorised program
        (``jax.vmap``) instead of running every chain on its own, as many at once as
        there are devices.  Default: on GPU only; on a CPU every NUTS iteration of a
        vectorised batch waits for the longest trajectory in it.
    executor : {None, "serial", "local"} or concurrent.futures.Executor, optional
        Run the fits as tasks of ``chunk`` data sets of one shape on this executor
        (``"local"``: spawned processes, one XLA thread each; or a Dask
        ``Client.get_executor()``; see :mod:`bayescale.inference.executor`).  Data set
        ``i`` gets the same keys as without an executor.
    chunk : int
        Data sets per task on an executor: each task compiles once.
    pad : bool
        Pad every data set to the largest one's row count, the padding masked out of the
        likelihood, so that data sets that differ only in their number of rows share one
        compiled program (nested subsets of one data set, where compiling dominates).
    extrapolation : {False, "auto", True}, CalibrationConfig or Calibration
        The values of :func:`fit`'s ``extrapolation``, with the same meaning, applied to
        each data set after all are fitted: ``"auto"`` and ``True`` measure how fast the
        law's own error grows beyond that data set by a rolling backtest nested inside it
        (3 more fits of at most 2 chains x (500 + 500) draws, on ``executor``, seeded by
        ``seed`` as :func:`fit` would seed them), so that its :meth:`Fit.predict` widens
        its bands with extrapolation distance; ``"auto"`` falls back to law-only bands
        where the data are too few or too narrow (``settings.extrapolation["skipped"]``
        says why), ``True`` raises there.  The default is ``False``, unlike :func:`fit`:
        the many-fit workloads this call serves (replicates, folds, resamples) measure the
        plain fit, and calibration would add about 2.3x each fit's time to every data set.

    Returns
    -------
    list of Fit, or dict of Fit
        One gated :class:`Fit` per data set, in the order (or with the keys) of ``frames``;
        ``settings.batched`` says how it ran (``"parallel"`` or ``"vectorized"``).

    Examples
    --------
    >>> import bayescale as bs
    >>> frames = [bs.datasets.simulate("power", families=1, seeds=1, seed=k) for k in range(3)]
    >>> fits = bs.fit_many(frames, law="power", y="loss", x="x", chains=2,
    ...                    warmup=300, draws=300)  # doctest: +SKIP
    """
    chosen = option(extrapolation)  # an unknown value fails before any fit
    req = request(law, y, x, group, run, se, pool, sampler, model, weight=weight, **settings)
    fits = req.fit_many(frames, vectorize=vectorize, executor=executor, chunk=chunk, pad=pad)
    if chosen is None:
        return fits
    keys = list(fits) if isinstance(fits, dict) else range(len(fits))
    data = frames if isinstance(fits, dict) else list(frames)
    for key in keys:
        try:
            calibrate(fits[key], data[key], req, chosen, executor=executor)
        except DataError as err:
            raise DataError(f"data set {key!r}: {err}") from None
    failed = [key for key in keys if failed_nested(fits[key])]
    if failed:
        warnings.warn(DiagnosticsWarning(
            f"nested calibration fits failed the diagnostics gate for {len(failed)} data set(s) "
            f"({', '.join(map(repr, failed[:5]))}{', ...' if len(failed) > 5 else ''}): the widening "
            f"of their bands beyond the data rests partly on them (settings.nested)."), stacklevel=2)
    return fits


def backtest(df: pd.DataFrame, law="chinchilla", split="largest-size", kind="mean",
             levels=LEVELS, size: str | None = None, frac: float = 0.2, seed: int = 0,
             discrepancy=0.0, cuts: int = 5, executor=None, **fit_kwargs) -> Backtest:
    """Hold out rows, fit the law on the rest, and score the forecasts of the held-out rows.

    Parameters
    ----------
    df : DataFrame
        The data, as for :func:`bayescale.fit`.
    law : str, Law or path
        The law to fit.
    split : str, tuple or callable
        What to hold out:

        - ``"largest-size"``: every row at the largest model size (the column of
          input ``N``, the only input of a one-input law, or ``size``).
        - ``"largest-compute"``: the share ``frac`` of rows with the largest
          compute (the law's scale, :attr:`bayescale.Law.scale`: 6·N·D for N and D).
        - ``("leave-family-out", family, k)``: every run of ``family`` except its
          ``k`` smallest-compute runs (a run is a value of the ``run`` column, or a
          row without one); ``k = 1`` passes ``min_rows_per_family=1`` to the fit,
          ``k = 0`` forecasts the family from the population alone.  With fewer
          than 5 families :func:`bayescale.fit` fits ``E`` and the amplitudes per
          family unless ``pool={"E": "partial", ...}`` is passed; without partial
          pooling little is learned about the held-out family from the others.
        - ``"rolling"``: rolling origins.  At each of ``cuts`` origins (quantiles
          0.3 ... 0.8 of the rows' log compute) fit on the rows up to it and
          forecast every row beyond it; ``per_target`` gains ``cut``,
          ``frontier`` (the origin's compute) and ``distance`` (decades of
          compute beyond it), and ``by_distance`` scores them by distance.  The
          fits run through :func:`bayescale.fit_many` (``executor``), so on a
          cluster too, with the same results.  Families with too few rows up to
          an origin are left out of its fit (forecast from the population).
        - a callable ``split(df)`` returning a boolean mask (True = held out).
    kind : {"mean", "new_run"} or a sequence of both
        Which forecast to score.  The outcome of a held-out run is one new run,
        so ``"new_run"`` is the band whose coverage should be nominal; ``"mean"``
        shows how well the law itself is pinned.
    levels : sequence of float
        Central credible levels scored (default 0.5, 0.8, 0.9, 0.95).
    size : str, optional
        Column of the model size for ``"largest-size"``.
    frac : float
        Share of rows held out by ``"largest-compute"``.
    seed : int
        Seed of the fit (unless given in ``fit_kwargs``) and of the forecasts.
    discrepancy : float, Calibration or "calibrate"
        Widen the forecasts by the law's own error beyond the data, at this rate
        or by this calibration (see :func:`bayescale.calibrate`); 0 scores the plain bands.
        ``"calibrate"`` (``"rolling"`` only) measures the rate inside each
        origin's training rows by a nested rolling backtest, as
        ``bs.fit(..., extrapolation=True)`` does, so the score is that of the
        calibrated forecast; ``per_target`` gains ``rate`` and ``bias``.
    cuts : int
        Number of origins of ``"rolling"``.
    executor : optional
        Where the fits of ``"rolling"`` run (see :func:`bayescale.fit_many`).
    **fit_kwargs
        Passed to :func:`bayescale.fit` (``y``, ``x``, ``group``, ``run``, ``pool``,
        ``chains``, ...).

    Returns
    -------
    Backtest
        ``per_target``, ``aggregate``, ``fit``, ``held_out``, ``split``.

    Raises
    ------
    DataError
        An unknown split, or one that holds out no rows or every row.
    """
    req = request(law, seed=seed, **fit_kwargs)
    if isinstance(discrepancy, str):
        if discrepancy != "calibrate" or split != "rolling":
            raise DataError(f"discrepancy={discrepancy!r}: a rate >= 0, or 'calibrate' with split='rolling'.")
        discrepancy = _nested(req.with_(sampler={"progress": False}), seed, executor)
    with reporting(req.sampler.progress):
        return run_backtest(df, req, split, kind, levels, size, frac, seed, discrepancy, cuts, executor)


def _nested(req, seed: int, executor):
    """The calibration measured inside one origin's training rows alone (0.0 if it cannot be)."""
    def measure_inside(frame):
        try:
            return measure(frame, req, seed=seed, executor=executor)
        except DataError:  # too few rows or too little spread of compute for origins of its own
            return 0.0

    return measure_inside


load = Fit.load

__all__ = ["backtest", "fit", "fit_many", "load"]
