"""Text forms of fits for the terminal: summary table, calibration line, diagnostics verdict."""

from __future__ import annotations

import math

from ..inference.gate import GATE_KINDS


def _num(value, digits: int = 4) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(value):
        return "-"
    return f"{value:.{digits}g}"


def format_summary(summary) -> str:
    """``Fit.summary()`` as an aligned text table (``-`` in ``family``: one value for all families)."""
    table = summary.copy()
    table["family"] = [("-" if f is None or f != f else str(f)) for f in table["family"]]
    table = table.rename(columns={"q5": "5%", "q95": "95%"})
    formatters = {c: _num for c in ("mean", "sd", "5%", "95%")}
    formatters["r_hat"] = lambda v: f"{float(v):.3f}" if v == v else "-"
    formatters["ess_bulk"] = formatters["ess_tail"] = lambda v: "-" if v != v else f"{float(v):.0f}"
    return table.to_string(index=False, formatters=formatters, justify="right", na_rep="-")


def format_calibration(kept: dict | None) -> str:
    """One line on how the fit's forecasts beyond its data are calibrated (``fit.settings``)."""
    if not kept:
        return "Forecasts beyond the data carry the law-only band (no calibration was asked for)."
    if "skipped" in kept:
        return f"Forecasts beyond the data carry the law-only band: no calibration ({kept['skipped']})."
    bias, curve, dof = kept.get("bias", 0.0), kept.get("curvature") or 0.0, kept.get("dof")
    return (f"Extrapolation calibrated by {kept['origins']} rolling origins inside the data: the "
            f"law's own error grows by {f'{bias:+.4f} ' if bias else ''}+- {kept['rate']:.4f} (link "
            f"scale) per decade{f' and {curve:.4f} per squared decade' if curve else ''} beyond the "
            f"data{f', Student-t tails ({dof:g} dof)' if dof else ''}, measured up to "
            f"{kept['reach']:.2f} decades.")


def format_verdict(fit) -> list[str]:
    """Lines giving the diagnostics verdict and every warning of ``fit``."""
    chains = fit.settings.chains
    if fit.ok:
        checks = "ESS, divergences, E-BFMI" + ("" if chains == 1 else ", R-hat")
        note = " R-hat needs 2+ chains: not checked." if chains == 1 else ""
        lines = [f"Diagnostics: passed ({checks}).{note}"]
    else:
        lines = ["Diagnostics: FAILED - do not trust this fit as it is:"]
    lines += [f"  - {w}" for w in fit.warnings if w.kind in GATE_KINDS]
    design = [w for w in fit.warnings if w.kind not in GATE_KINDS]
    if design:
        lines.append("Design notes:")
        lines += [f"  - {w}" for w in design]
    return lines
