"""Posterior forecasts: the law's curve (``kind="mean"``) or one new run (``kind="new_run"``).

A family seen in the data is forecast from its own posterior; a family absent
from the data from the population: for each posterior draw a fresh family
effect is drawn from the fitted population (partial pooling), so the band
carries the between-family spread.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from ..data.design import Design, law_inputs, require_column
from ..errors import DataError, ExtrapolationWarning
from ..model import Structure, law_mean

KINDS = ("mean", "new_run")
FAR_DECADES = 2.0  # warn beyond this many decades outside the data
TAIL = 0.001  # Student-t discrepancy draws are cut at this quantile each side (see widen)


def draws(posterior, name: str) -> np.ndarray:
    """Posterior draws of ``name`` stacked over chains: shape (draws, ...)."""
    values = np.asarray(posterior[name])
    return values.reshape(-1, *values.shape[2:])


def family_parameters(posterior, s: Structure, design: Design, family: str,
                      rng: np.random.Generator) -> dict:
    """Draws of every law parameter for ``family`` (seen or new), natural scale."""
    if family in design.families:
        k = design.families.index(family)
        return {name: draws(posterior, name)[:, k] for name in s.law.parameters}
    floor = float(design.y.min())
    out = {}
    for p in s.law.parameters.values():
        mode = s.pool(p.name)
        if mode == "none":
            raise DataError(
                f"family '{family}' is not in the data and parameter '{p.name}' is fitted "
                f"independently per family (pool='none'), so nothing is known about it for a new "
                f"family. Use pool={{'{p.name}': 'partial'}} or forecast a fitted family "
                f"({', '.join(design.families)})."
            )
        if mode == "shared":
            z = draws(posterior, f"{p.name}_z")
            z = z if z.ndim == 1 else z[:, 0]
        else:
            loc, tau = draws(posterior, f"{p.name}_pop_z"), draws(posterior, f"{p.name}_tau")
            z = loc + tau * rng.standard_normal(loc.shape)
        out[p.name] = p.prior.to_natural(z, floor, xp=np)
    return out


def extrapolation(design: Design, inputs: dict, family: str, law=None) -> dict:
    """Decades beyond the observed range of each input, and of the law's scale.

    The scale (:attr:`bayescale.Law.scale`, e.g. compute ``6 * N * D``) gets its own
    column ``extrap_C`` unless it is one input alone, whose column it then is.
    """
    rows = design.family_idx == design.families.index(family) if family in design.families else None
    def decades(new, seen):
        seen = seen if rows is None else seen[rows]
        return np.maximum.reduce([np.zeros_like(new), np.log10(new / seen.max()),
                                  np.log10(seen.min() / new)])
    # in decades, so only for inputs that are positive (an unscaled input may be 0)
    out = {f"extrap_{k}": decades(v, design.inputs[k]) for k, v in inputs.items()
           if np.all(design.inputs[k] > 0) and np.all(v > 0)}
    if law is not None and law.scale is not None and law.scale_input is None:
        new, seen = law.scale_of(inputs), law.scale_of(design.inputs)
        if np.all(new > 0) and np.all(seen > 0):
            out["extrap_C"] = decades(new, seen)
    return out


def predict(posterior, s: Structure, design: Design, new, kind="mean", levels=(0.5, 0.9),
            seed: int = 0, samples: bool = False, discrepancy=0.0):
    """Forecast the outcome at the rows of ``new``; see :meth:`bayescale.Fit.predict`.

    ``discrepancy`` is a rate (link-scale sd per decade) or a calibration with
    ``rate``, ``bias``, ``reach``, ``curvature`` and ``dof`` (:func:`terms`).
    """
    rate, bias, reach, curvature, dof = terms(discrepancy)
    if kind not in KINDS:
        raise DataError(f"kind={kind!r}; choose 'mean' (the law) or 'new_run' (one new run).")
    levels = check_levels(levels)
    if isinstance(new, dict) and all(np.ndim(v) == 0 for v in new.values()):
        new = {k: [v] for k, v in new.items()}
    new = pd.DataFrame(new).reset_index(drop=True)
    xmap, group = design.columns["x"], design.columns["group"]
    for col in xmap.values():
        require_column(new, col)
    inputs = law_inputs(s.law, new, xmap, group, design.columns["run"])
    if group is not None and group in new.columns:
        families = new[group].astype(str).to_numpy()
    elif design.n_families == 1:
        families = np.full(len(new), design.families[0])
    else:
        new = new.loc[new.index.repeat(design.n_families)].reset_index(drop=True)
        families = np.tile(np.asarray(design.families), len(new) // design.n_families)
        inputs = {k: np.repeat(v, design.n_families) for k, v in inputs.items()}
    rng = np.random.default_rng(seed)
    se = _target_se(new, design, len(families))
    scaled = design.scaled(inputs)
    result = np.empty((draws(posterior, "sigma").shape[0], len(new)))
    extra = {}
    for family in dict.fromkeys(families):
        rows = families == family
        params = family_parameters(posterior, s, design, family, rng)
        env = {k: v[:, None] for k, v in params.items()}
        mean = np.asarray(law_mean(s.law, env, {k: v[None, rows] for k, v in scaled.items()}, np))
        result[:, rows] = mean if kind == "mean" else new_run(posterior, s, mean, rng, se[rows])
        near = extrapolation(design, {k: v[rows] for k, v in inputs.items()}, family, s.law)
        for key, value in near.items():
            extra.setdefault(key, np.zeros(len(new)))[rows] = value
    dist = np.broadcast_to(np.asarray(distance(extra, s.law.scale_input), dtype=float), len(new))
    if rate or bias or curvature:
        result = widen(result, dist, rate, s.law.outcome, rng, bias, curvature, dof)
    out = new.copy()
    out["family"] = families
    out["mean"], out["median"] = result.mean(0), np.median(result, 0)
    for level in levels:
        lo, hi = np.quantile(result, [(1 - level) / 2, (1 + level) / 2], axis=0)
        out[f"lo{level_label(level)}"], out[f"hi{level_label(level)}"] = lo, hi
    out["distance"] = dist
    for key, value in extra.items():
        out[key] = value
    # unscaled inputs (proportions, counts) say nothing of scale: they never make a forecast far
    near = [k for k in extra if k == "extrap_C" or s.law.input_specs[k[len("extrap_"):]].scale == "reference"]
    far = (out[near].max(axis=1) if near else pd.Series(0.0, index=out.index)) > FAR_DECADES
    if far.any() and reach is None:  # with a calibration, its reach is the limit that counts
        warnings.warn(ExtrapolationWarning(
            f"{int(far.sum())} forecast(s) lie more than {FAR_DECADES:g} decades outside the data "
            f"(see the extrap_* columns); the band assumes the law holds that far."), stacklevel=3)
    beyond = out["distance"] > (np.inf if reach is None else reach)
    if beyond.any():
        warnings.warn(ExtrapolationWarning(
            f"{int(beyond.sum())} forecast(s) lie beyond {reach:.2f} decades, the farthest that the "
            f"data's own backtests reached (column distance, up to {out['distance'].max():.2f}); "
            f"there the widening of the band is extrapolated too."), stacklevel=3)
    return (out, result) if samples else out


def distance(extra: dict, scale_input: str | None = None) -> np.ndarray:
    """Extrapolation distance of each row in decades of the law's scale (:func:`extrapolation`):
    ``extrap_C``, or the column of the one input that is the scale; else the largest."""
    for key in ("extrap_C", f"extrap_{scale_input}"):
        if key in extra:
            return extra[key]
    return np.max(np.stack(list(extra.values())), axis=0) if extra else 0.0


class Terms(NamedTuple):
    """The law's own error beyond the data, per decade of extrapolation (link scale)."""

    rate: float
    bias: float = 0.0
    reach: float | None = None
    curvature: float = 0.0
    dof: float | None = None  # Student-t degrees of freedom; None: normal


def terms(discrepancy) -> Terms:
    """:class:`Terms` of a discrepancy: a plain rate (normal, no bias, reach or curvature) or an
    object with ``rate`` and optionally the other terms (a Calibration, or a fit's record)."""
    if isinstance(discrepancy, dict) or hasattr(discrepancy, "rate"):
        get = discrepancy.get if isinstance(discrepancy, dict) else partial(getattr, discrepancy)
        return Terms(float(get("rate")), float(get("bias", None) or 0.0), get("reach", None),
                     float(get("curvature", None) or 0.0), get("dof", None))
    try:
        return Terms(float(discrepancy))
    except (TypeError, ValueError):
        raise DataError(f"discrepancy={discrepancy!r}: pass a rate >= 0 or a bayescale.calibrate "
                        f"result.") from None


def widen(result: np.ndarray, decades, rate: float, outcome, rng, bias: float = 0.0,
          curvature: float = 0.0, dof: float | None = None) -> np.ndarray:
    """Add the law's own error beyond the data: a link-scale shift of ``bias * decades``
    and noise of scale ``sqrt(rate^2 decades^2 + curvature^2 decades^4)``, normal or, with
    ``dof``, Student-t cut at its :data:`TAIL` quantiles (on the outcome scale an uncut
    Student-t on the log link has no finite mean; no band up to 99.8% changes).

    See :mod:`bayescale.evaluate.calibration`, which measures both out of sample.
    """
    if not np.isfinite(rate) or rate < 0:
        raise DataError(f"discrepancy={rate!r} must be a rate >= 0 (link-scale sd per decade).")
    if not np.isfinite(bias):
        raise DataError(f"discrepancy bias={bias!r} must be a finite number (link scale per decade).")
    if not np.isfinite(curvature) or curvature < 0:
        raise DataError(f"discrepancy curvature={curvature!r} must be >= 0 (link-scale sd per squared "
                        f"decade).")
    if dof is not None and not (np.isfinite(dof) and dof > 0):
        raise DataError(f"discrepancy dof={dof!r} must be a positive number (or None for normal tails).")
    d = np.asarray(decades, dtype=float)
    scale = d * np.sqrt(rate**2 + (curvature * d) ** 2)
    if dof is None:
        noise = rng.standard_normal(result.shape)
    else:  # by its inverse CDF, cut at TAIL each side: exp() of a Student-t has no finite mean
        noise = stats.t.ppf(rng.uniform(TAIL, 1 - TAIL, result.shape), dof)
    return outcome.inverse(outcome.forward(result) + d * bias + scale * noise)


def _target_se(new: pd.DataFrame, design: Design, n: int) -> np.ndarray:
    """Known measurement error of each target (outcome scale), when ``new`` has the se column.

    A new run's measured outcome carries its own measurement error; without the
    column it is taken as 0 (the forecast is of the run's true outcome).
    """
    col = design.columns["se"]
    if col is None or col not in new.columns:
        return np.zeros(n)
    se = pd.to_numeric(new[col], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(se) & (se >= 0)):
        raise DataError(f"column '{col}' of the forecast rows must hold standard errors >= 0.")
    return se


def new_run(posterior, s: Structure, mean: np.ndarray, rng, se=0.0) -> np.ndarray:
    """Add a fresh run effect, observation noise and the target's known measurement error
    (link scale) to each draw of the mean."""
    shape = mean.shape
    noise = draws(posterior, "sigma")[:, None] * (
        rng.standard_t(draws(posterior, "nu")[:, None], size=shape)
        if s.likelihood == "student_t" else rng.standard_normal(shape))
    if s.n_runs:
        noise = noise + draws(posterior, "sigma_run")[:, None] * rng.standard_normal(shape)
    link = s.law.outcome
    # the target's standard error moved to the link scale at each draw's mean (delta method)
    noise = noise + link.se(np.asarray(se, dtype=float), mean) * rng.standard_normal(shape)
    return link.inverse(link.forward(mean) + noise)


def check_levels(levels) -> tuple:
    levels = tuple(float(v) for v in np.atleast_1d(levels))
    bad = [v for v in levels if not 0 < v < 1]
    if bad:
        raise DataError(f"levels {bad} must lie strictly between 0 and 1, e.g. levels=(0.5, 0.9).")
    return levels


def level_label(level: float) -> str:
    return f"{100 * level:g}"


def targets(at) -> pd.DataFrame:
    """``at`` (dict of scalars or lists, Series, or DataFrame) as a DataFrame of targets."""
    if isinstance(at, pd.Series):
        at = at.to_frame().T
    if isinstance(at, dict) and all(np.ndim(v) == 0 for v in at.values()):
        at = {k: [v] for k, v in at.items()}
    try:
        frame = pd.DataFrame(at).reset_index(drop=True)
    except (TypeError, ValueError) as exc:
        raise DataError(f"cannot read the target {at!r} as rows of input columns: {exc}") from exc
    if len(frame) == 0:
        raise DataError("the target has no rows; pass e.g. {'params': 7e9, 'tokens': 1.4e11}.")
    return frame
