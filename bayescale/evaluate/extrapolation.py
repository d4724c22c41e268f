"""The ``extrapolation`` option of ``bs.fit``, ``bs.sweep`` and ``bs.fit_many``: one meaning for all.

Its values: ``"auto"`` and ``True``
measure how fast the law's own error grows beyond each data set, by a rolling
backtest nested inside it (:func:`bayescale.evaluate.calibration.measure`), and
keep the terms with that data set's fit, so its forecasts widen with the
distance extrapolated; ``"auto"`` falls back to law-only bands where the data are
too few or too narrow in compute (and says why), ``True`` raises there;
``False`` gives law-only bands; a
:class:`~bayescale.evaluate.calibration.CalibrationConfig` sets the nested
backtest; a :class:`~bayescale.evaluate.calibration.Calibration` is kept as
given.

Examples
--------
>>> option("auto").required, option(True).required, option(False)
(False, True, None)
"""

from __future__ import annotations

import warnings
from dataclasses import asdict

from ..errors import DataError
from .calibration import Calibration, CalibrationConfig, measure

CHOICES = "'auto', True, False, a CalibrationConfig or a result of bayescale.calibrate"


def option(extrapolation) -> CalibrationConfig | Calibration | None:
    """The nested backtest to run (a config), a calibration to keep, or None (law-only bands).

    Raises
    ------
    DataError
        Any other value, named, with the values allowed.
    """
    if isinstance(extrapolation, CalibrationConfig | Calibration):
        return extrapolation
    if isinstance(extrapolation, str) and extrapolation == "auto":
        return CalibrationConfig()
    if extrapolation is True:
        return CalibrationConfig(required=True)
    if extrapolation is False:
        return None
    raise DataError(f"extrapolation={extrapolation!r}: pass {CHOICES}.")


def record(extrapolation) -> object:
    """The option as plain data, for a sweep's settings file."""
    if isinstance(extrapolation, CalibrationConfig):
        return asdict(extrapolation)
    if isinstance(extrapolation, Calibration):
        return extrapolation.record()
    return extrapolation


def calibrate(fit, df, req, chosen, executor=None):
    """Keep the calibration beyond the data of ``fit`` (of ``df``, made by ``req``) with it.

    ``chosen`` is what :func:`option` returned (or a calibration's ``record()``, kept as
    given).  The nested fits are ``req``'s with at most the config's chains and draws,
    seeded by ``req``'s seed and silent; their verdicts go to ``fit.settings.nested``, and
    the calibration's notes (nested fits left out, or the fallback band) to
    ``fit.warnings``.  Returns ``fit``.

    Raises
    ------
    DataError
        ``extrapolation=True`` on data too few or too narrow in compute to measure it.
    """
    if chosen is None:
        return fit
    if isinstance(chosen, Calibration | dict):
        kept = chosen.record() if isinstance(chosen, Calibration) else dict(chosen)
        fit.settings = fit.settings.with_(extrapolation=kept)
        return fit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the nested fits' verdicts are recorded instead
            cal = measure(df, nested_request(req, chosen), cuts=chosen.cuts, kind=chosen.kind,
                          seed=req.sampler.seed, executor=executor, bias=chosen.bias,
                          curvature=chosen.curvature, tails=chosen.tails)
    except DataError as err:
        if chosen.required:
            raise DataError(f"extrapolation=True: {err}") from None
        fit.settings = fit.settings.with_(extrapolation={"skipped": str(err)})
        return fit
    return keep(fit, cal)


def nested_request(req, config: CalibrationConfig):
    """``req`` as the nested fits of ``config`` run it: at most its chains and draws, silent."""
    return req.with_(sampler={"chains": min(req.sampler.chains, config.chains),
                              "warmup": min(req.sampler.warmup, config.draws),
                              "draws": min(req.sampler.draws, config.draws), "progress": False})


def keep(fit, cal: Calibration):
    """``fit`` with the measured calibration ``cal``: its terms and nested fits' verdicts in the
    settings, its notes (failed nested fits left out, or the fallback band) in the warnings."""
    fit.settings = fit.settings.with_(extrapolation=cal.record(), nested=cal.nested)
    fit.warnings = [*fit.warnings, *cal.notes]
    return fit


def failed_nested(fit) -> int:
    """How many of the nested calibration fits kept with ``fit`` failed the diagnostics gate."""
    return sum(row.get("verdict") != "passed" for row in fit.settings.nested or ())


def describe(fit) -> str:
    """One short phrase on the calibration kept with ``fit``: off, skipped (why) or measured."""
    kept = fit.settings.extrapolation
    if not kept:
        return "off"
    if "skipped" in kept:
        return f"skipped: {kept['skipped']}"
    failed, total = failed_nested(fit), len(fit.settings.nested or ())
    return "measured" + (f"; {failed} of {total} nested fits failed the gate" if failed else "")


__all__ = ["CHOICES", "calibrate", "describe", "failed_nested", "keep", "nested_request", "option",
           "record"]
