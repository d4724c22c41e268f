"""A fit as one self-contained HTML page that answers first.

The page opens with the answer: the forecasts with their bands (when asked
for), the law, and the diagnostics gate's verdict with its reasons.  Then the
figures, each large enough to read: the fitted curves per family, the posterior
predictive check, and ArviZ rank and trace plots of the few quantities shared
by every family.  Then the numbers behind them (posterior summary, diagnostics,
law, warnings), and last the raw data, folded away in a ``<details>`` element.

:func:`render` returns the page as text; :func:`write` saves it.  The page loads
nothing from outside: the figures are inline base64 PNGs and the style sheet is
inline, so the file can be mailed or archived as it is.  Every piece of text
(column names, family labels, law descriptions, warnings) is escaped.

Examples
--------
>>> from bayescale.viz.report import render  # doctest: +SKIP
>>> html_text = render(fit, forecasts=fit.predict({"x": [1e12]}))  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .plot import plot_fit, ppc_figure, rank_figure, sampler_variables, trace_figure

MAX_ROWS = 200  # rows of the data table shown

# in page order: the answer first, the raw data last
SECTIONS = ("Answer", "Fitted curves", "Posterior predictive check", "Rank and trace plots",
            "Posterior summary", "Diagnostics", "Law", "Warnings", "Data")
FIGURE_RC = {"font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12, "xtick.labelsize": 11,
             "ytick.labelsize": 11, "legend.fontsize": 11, "figure.titlesize": 14}

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 70em; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #bbb; margin-top: 1.8em; }
table { border-collapse: collapse; margin: .6em 0; font-size: 90%; }
th, td { border: 1px solid #ccc; padding: .2em .6em; text-align: right; }
th { background: #f0f0f0; }
td.text, th.text { text-align: left; }
code { background: #f4f4f4; padding: 0 .2em; }
.pass { color: #176117; font-weight: bold; }
.fail { color: #a31515; font-weight: bold; }
.skip { color: #666; font-weight: bold; }
.warnings { background: #fff4d6; border-left: 4px solid #e0a000; padding: .6em 1em .6em 2em; }
.none { color: #666; }
.note { color: #555; font-size: 90%; }
.answer { background: #f7f9fc; border: 1px solid #c9d3e3; border-radius: 4px; padding: .2em 1.2em 1em; }
.answer h2 { border: none; margin-top: .6em; }
.verdict { font-size: 115%; }
figure { margin: 1em 0 2em; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #e4e4e4; }
figcaption { color: #444; font-size: 95%; margin-top: .4em; }
details summary { cursor: pointer; font-weight: bold; margin: .5em 0; }
nav { font-size: 95%; }
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        value = float(value)
        return "-" if math.isnan(value) else f"{value:.{digits}g}"
    if value is pd.NA or value is pd.NaT:
        return "-"
    return str(value)


def _table(frame: pd.DataFrame, cls: str = "") -> str:
    """A DataFrame as an escaped HTML table (numbers right-aligned, text left-aligned)."""
    numeric = {c: pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns}
    cls_of = {c: "" if numeric[c] else ' class="text"' for c in frame.columns}
    head = "".join(f"<th{cls_of[c]}>{_e(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = "".join(f"<td{cls_of[c]}>{_e(_fmt(v))}</td>"
                        for c, v in zip(frame.columns, row, strict=True))
        body.append(f"<tr>{cells}</tr>")
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + \
        "\n</tbody>\n</table>"


def _pairs_table(rows, header=("name", "value")) -> str:
    return _table(pd.DataFrame(rows, columns=list(header)).astype(str))


# ---- sections ---------------------------------------------------------------------------
def _data_section(fit) -> str:
    frame = fit.design.frame
    n = len(frame)
    shown = frame.head(MAX_ROWS).reset_index(names="row")
    cols = fit.design.columns
    mapping = [("outcome (y)", cols["y"])]
    mapping += [(f"input {k}", v) for k, v in cols["x"].items()]
    mapping += [(role, cols[role]) for role in ("group", "run", "se", "weight") if cols.get(role)]
    parts = [f"<p>{n} row{'s' if n != 1 else ''} used, {fit.design.n_families} "
             f"famil{'y' if fit.design.n_families == 1 else 'ies'} "
             f"({_e(', '.join(map(str, fit.design.families)))}).</p>",
             _pairs_table(mapping, ("role", "column"))]
    if n > MAX_ROWS:
        parts.append(f'<p class="note">Showing the first {MAX_ROWS} of {n} rows '
                     f"(the full data is data.csv in the fit directory).</p>")
    parts.append(_table(shown, cls="data"))
    shown_n = min(n, MAX_ROWS)
    return (parts[0] + f"\n<details>\n<summary>Show the {shown_n} data row{'s' if shown_n != 1 else ''}"
            f" and the column roles</summary>\n" + "\n".join(parts[1:]) + "\n</details>")


def _law_section(fit) -> str:
    law = fit.law
    parts = [f"<p><b>{_e(law.name)}</b>{': ' + _e(law.title) if law.title else ''}</p>",
             f"<p>y = <code>{_e(law.formula.text)}</code></p>"]
    if law.description:
        parts.append(f"<p>{_e(law.description)}</p>")
    parts.append("<h3>Inputs</h3>")
    parts.append('<p class="note">Each input enters the formula divided by its reference '
                 "(the geometric mean of the data).</p>")
    refs = fit.design.refs
    parts.append(_pairs_table([(k, v, _fmt(refs.get(k))) for k, v in law.input_descriptions.items()],
                              ("input", "description", "reference")))
    parts.append("<h3>Parameters</h3>")
    rows = [(p.name, str(p.prior), p.pool, _fmt(p.tau) if p.pool == "partial" else "-", p.description)
            for p in law.parameters.values()]
    parts.append(_pairs_table(rows, ("parameter", "prior", "pool", "tau", "description")))
    if law.report:
        parts.append("<h3>Reported on the paper's scale</h3>")
        parts.append(_pairs_table([(k, f.text) for k, f in law.report.items()], ("name", "formula")))
    if law.notes:
        parts.append(f"<p><b>Notes:</b> {_e(law.notes)}</p>")
    if law.citation:
        parts.append(f"<p><b>Citation:</b> {_e(law.citation)}</p>")
    return "\n".join(parts)


def _summary_section(fit) -> str:
    table = fit.summary().copy()
    table["family"] = [("-" if f is None or f != f else str(f)) for f in table["family"]]
    table = table.rename(columns={"q5": "5%", "q95": "95%"})
    s = fit.settings
    run = (f"{s.chains} chain(s) x {s.draws} draws after {s.warmup} warmup, "
           f"seed {s.seed}, likelihood {s.likelihood}, parameterization {s.parameterization}")
    if s.seconds:
        run += f", {_fmt(s.seconds, 3)} s"
    return (f'<p class="note">Posterior mean, sd and 90% interval (5%-95%); "-" in family: one value '
            f"shared by all families. Sampling: {_e(run)}.</p>\n" + _table(table))


def checks(fit) -> list[dict]:
    """One record per diagnostics check: name, value, threshold, status and meaning."""
    from ..inference.gate import BFMI_MIN, ESS_MIN, RHAT_MAX

    diag = fit.diagnostics
    chains = fit.settings.chains
    out = []

    def add(name, value, rule, status, meaning):
        out.append({"check": name, "value": value, "rule": rule, "status": status, "meaning": meaning})

    rhat = float(np.nanmax(diag["r_hat"])) if len(diag) and diag["r_hat"].notna().any() else math.nan
    if chains < 2:
        add("R-hat", "-", f"<= {RHAT_MAX}", "not checked",
            "R-hat compares chains; this fit has one chain, so it could not be checked.")
    elif rhat <= RHAT_MAX:
        add("R-hat", f"{rhat:.3f} (worst)", f"<= {RHAT_MAX}", "passed",
            "The chains agree: they explored the same posterior.")
    else:
        add("R-hat", f"{rhat:.3f} (worst)", f"<= {RHAT_MAX}", "failed",
            "The chains disagree, so at least one has not converged; the numbers may be wrong. "
            "Run more warmup and draws or simplify the law.")
    for kind in ("bulk", "tail"):
        col = diag[f"ess_{kind}"]
        low = float(np.nanmin(col)) if len(col) and col.notna().any() else math.nan
        what = "means and medians" if kind == "bulk" else "the 5% and 95% interval ends"
        if low >= ESS_MIN:
            add(f"ESS {kind}", f"{low:.0f} (lowest)", f">= {ESS_MIN}", "passed",
                f"Enough effectively independent draws to pin down {what}.")
        else:
            add(f"ESS {kind}", "-" if math.isnan(low) else f"{low:.0f} (lowest)", f">= {ESS_MIN}", "failed",
                f"Too few effectively independent draws: {what} are imprecise. Increase draws.")
    try:
        diverging = int(np.asarray(fit.idata.sample_stats["diverging"]).sum())
    except (KeyError, AttributeError, TypeError):
        diverging = None
    if diverging is None:
        add("Divergences", "-", "= 0", "not checked", "The sampler statistics are not available.")
    elif diverging == 0:
        add("Divergences", "0", "= 0", "passed",
            "The sampler followed the posterior's curvature everywhere.")
    else:
        add("Divergences", str(diverging), "= 0", "failed",
            "The sampler met curvature it could not follow; the posterior may be biased. "
            "Try another parameterization or tighter priors.")
    try:
        import arviz_stats as azs

        bfmi = np.atleast_1d(np.asarray(azs.bfmi(fit.idata)["energy"], dtype=float))
    except Exception:  # noqa: BLE001 - a missing statistic is reported, not fatal
        bfmi = None
    if bfmi is None or not bfmi.size:
        add("E-BFMI", "-", f">= {BFMI_MIN}", "not checked", "The sampler energy is not available.")
    elif (bfmi >= BFMI_MIN).all():
        add("E-BFMI", f"{bfmi.min():.2f} (lowest chain)", f">= {BFMI_MIN}", "passed",
            "The sampler moved freely between energy levels (no sign of heavy tails or a funnel).")
    else:
        add("E-BFMI", f"{bfmi.min():.2f} (lowest chain)", f">= {BFMI_MIN}", "failed",
            "The sampler explored the energy poorly (often heavy tails or a funnel); "
            "try another parameterization.")
    return out


def _diagnostics_section(fit) -> str:
    rows = checks(fit)
    verdict = ('<p class="pass">Diagnostics passed: the fit can be trusted as far as the sampler '
               "can tell.</p>" if fit.ok else
               '<p class="fail">Diagnostics FAILED: do not trust this fit as it is.</p>')
    cls = {"passed": "pass", "failed": "fail", "not checked": "skip"}
    body = "\n".join(
        f'<tr><td class="text">{_e(r["check"])}</td><td>{_e(r["value"])}</td>'
        f'<td class="text">{_e(r["rule"])}</td>'
        f'<td class="text {cls[r["status"]]}">{_e(r["status"])}</td>'
        f'<td class="text">{_e(r["meaning"])}</td></tr>' for r in rows)
    table = ('<table>\n<thead><tr><th class="text">check</th><th>value</th><th class="text">rule'
             '</th><th class="text">verdict</th><th class="text">what it means</th></tr></thead>\n'
             f"<tbody>\n{body}\n</tbody>\n</table>")
    return verdict + "\n" + table


def _png(fig) -> bytes:
    """``fig`` as PNG bytes; the figure is closed."""
    import matplotlib.pyplot as plt

    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
    finally:
        plt.close(fig)
    return buf.getvalue()


def _curves(fit):
    """The fitted curves at report size: one wide panel, or two per row of 560 pixels each."""
    if fit.design.n_families == 1:
        return plot_fit(fit, cols=1, panel=(9.6, 5.6))
    return plot_fit(fit, cols=2, panel=(5.6, 4.4))


def figure_png(fit) -> bytes:
    """The fit's figure (:func:`bayescale.viz.plot.plot_fit`) as PNG bytes, drawn at report size.

    At 100 dpi with 12-point text, it fits the page's column (1120 pixels) without
    shrinking.  The matplotlib backend is left as the user set it: saving to PNG
    needs no display.
    """
    import matplotlib.pyplot as plt

    with plt.rc_context(FIGURE_RC):
        return _png(_curves(fit))


def _figure(kind: str, draw, alt: str, caption: str) -> str:
    """One figure as an inline PNG with its caption; a figure that cannot be drawn says why."""
    import matplotlib.pyplot as plt

    try:
        with plt.rc_context(FIGURE_RC):
            png = _png(draw())
    except Exception as exc:  # noqa: BLE001 - a failed figure must not cost the whole report
        return (f'<p class="fail" data-figure="{_e(kind)}">The {_e(kind)} figure could not be drawn: '
                f"{_e(type(exc).__name__)}: {_e(exc)}</p>")
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure data-figure="{_e(kind)}">\n<img src="data:image/png;base64,{data}" '
            f'alt="{_e(alt)}">\n<figcaption>{caption}</figcaption>\n</figure>')


def _curves_section(fit) -> str:
    caption = ("Observed rows (dots) and the law's posterior median (line) with its 90% band, one "
               "panel per family, drawn one decade beyond the largest observed value.")
    return _figure("curves", lambda: _curves(fit),
                   f"{fit.law.name}: data, posterior median and 90% band per family", caption)


def _ppc_section(fit) -> str:
    caption = ("Left: each observed outcome against the posterior predictive median with its 90% "
               "interval; points near the dashed line y = x are reproduced by the model. Right: the "
               "ECDF of the LOO-PIT values minus the uniform one; a calibrated model stays inside the "
               "grey 95% band.")
    return _figure("ppc", lambda: ppc_figure(fit, figsize=(11.2, 5.0)), "posterior predictive check",
                   caption)


def _sampler_section(fit) -> str:
    try:
        names = sampler_variables(fit)
    except Exception:  # noqa: BLE001 - drawn below, where the failure is reported
        names = []
    shown = ", ".join(names) if names else "none"
    note = (f'<p class="note">Shown for the quantities shared by every family and the noise scale '
            f"({_e(shown)}); per-family values are in the posterior summary.</p>")
    rank = _figure("rank", lambda: rank_figure(fit), "rank plot per chain",
                   "Rank plot: each chain's ECDF of its fractional ranks minus the uniform one. Chains "
                   "that explored the same posterior stay near zero; p is the test of uniform ranks, "
                   "a p below &alpha; flags chains that disagree.")
    trace = _figure("trace", lambda: trace_figure(fit), "trace plot per chain",
                    "Trace plot: each chain's draws in order. Well-mixed chains overlap as stationary "
                    "noise with no drift and no chain stuck apart.")
    return "\n".join((note, rank, trace))


def _verdict(fit) -> str:
    """The gate's verdict in one paragraph, with the failed checks' reasons."""
    from ..result.fit import GATE_KINDS

    if fit.ok:
        return ('<p class="verdict"><span class="pass">Diagnostics passed</span>: the sampler '
                "explored the posterior well enough to trust these numbers.</p>")
    reasons = [w for w in fit.warnings if w.kind in GATE_KINDS]
    failed = [r for r in checks(fit) if r["status"] == "failed"]
    items = [f"<li><b>{_e(w.kind)}</b>: {_e(w.message)}</li>" for w in reasons]
    if not items:
        items = [f"<li><b>{_e(r['check'])}</b> {_e(r['value'])} (rule {_e(r['rule'])}): "
                 f"{_e(r['meaning'])}</li>" for r in failed]
    why = f"\n<ul>\n{chr(10).join(items)}\n</ul>" if items else ""
    return ('<p class="verdict"><span class="fail">Diagnostics FAILED</span>: do not trust this fit '
            f"as it is. Why:</p>{why}")


def _bands_beyond(fit) -> str:
    """One sentence on how the bands widen beyond the data (the fit's own calibration)."""
    kept = fit.settings.extrapolation
    if kept and "rate" in kept:
        text = (f"Beyond the data the bands widen by the law's own error, measured by a rolling "
                f"backtest inside the data: {_fmt(kept['rate'], 3)} per decade (link scale), measured "
                f"up to {_fmt(kept['reach'], 3)} decades.")
    elif kept and "skipped" in kept:
        text = f"Law-only bands beyond the data: the calibration was skipped ({kept['skipped']})."
    else:
        text = "Law-only bands beyond the data: the fit was not calibrated (extrapolation=False)."
    return f'<p class="note">{_e(text)}</p>'


def _answer_section(fit, forecasts: pd.DataFrame | None) -> str:
    law = fit.law
    parts = [_verdict(fit),
             f"<p>Law <b>{_e(law.name)}</b>{': ' + _e(law.title) if law.title else ''}; "
             f"y = <code>{_e(law.formula.text)}</code>, fitted to {len(fit.design.y)} rows of "
             f"{fit.design.n_families} famil{'y' if fit.design.n_families == 1 else 'ies'}.</p>"]
    if forecasts is not None:
        parts += ["<h3>Forecasts</h3>", _forecast_section(forecasts), _bands_beyond(fit)]
    else:
        parts.append('<p class="note">No forecasts were asked for (with the command line: '
                     "<code>bayescale report FITDIR --at N=...</code>).</p>")
    return "\n".join(parts)


def _forecast_section(forecasts: pd.DataFrame) -> str:
    extrap = [c for c in forecasts.columns if str(c).startswith("extrap_")]
    note = ('<p class="note">Credible bands: lo&lt;level&gt; and hi&lt;level&gt; bound the central '
            "interval. extrap_&lt;input&gt;: decades outside the observed range of that input in the "
            "family (0 = inside the data).</p>") if extrap else ""
    return note + "\n" + _table(forecasts.reset_index(drop=True), cls="forecasts")


def extrapolation_warnings(forecasts: pd.DataFrame | None) -> list[str]:
    """Plain-language warnings for forecasts far outside the data."""
    from ..result.predictive import FAR_DECADES

    if forecasts is None or not len(forecasts):
        return []
    cols = [c for c in forecasts.columns if str(c).startswith("extrap_")]
    if not cols:
        return []
    far = forecasts[cols].max(axis=1) > FAR_DECADES
    if not far.any():
        return []
    worst = float(forecasts[cols].to_numpy().max())
    return [f"[extrapolation] {int(far.sum())} forecast(s) lie more than {FAR_DECADES:g} decades "
            f"outside the data (up to {worst:.2g} decades; see the extrap_* columns); the band "
            f"assumes the law holds that far."]


def _warnings_section(fit, extra: list[str]) -> str:
    from ..result.fit import GATE_KINDS

    items = [(f"{'diagnostics' if w.kind in GATE_KINDS else 'design'}", str(w)) for w in fit.warnings]
    items += [("extrapolation", text) for text in extra]
    if not items:
        return '<p class="none">No warnings.</p>'
    lis = "\n".join(f"<li><b>{_e(kind)}</b>: {_e(text)}</li>" for kind, text in items)
    return f'<ul class="warnings">\n{lis}\n</ul>'


def render(fit, forecasts: pd.DataFrame | None = None, extra_warnings: list[str] | None = None) -> str:
    """The report of ``fit`` as one self-contained HTML document.

    Parameters
    ----------
    fit : Fit
        A fitted or loaded fit.
    forecasts : DataFrame, optional
        Output of :meth:`Fit.predict`; shown as a table with its bands and
        extrapolation distances.
    extra_warnings : list of str, optional
        Further warnings to list (e.g. those caught while forecasting).  When
        ``None``, forecasts far outside the data are detected from the
        ``extrap_*`` columns.

    Returns
    -------
    str
        The page: the answer (forecasts, law, the diagnostics verdict and why), the
        figures (fitted curves, posterior predictive check, rank and trace plots),
        the posterior summary, diagnostics, law and warnings, and last the raw data,
        folded away.

    Raises
    ------
    BayescaleError
        ``fit`` is not a fit, ``forecasts`` not a table, or ``extra_warnings`` not a
        list of text.
    """
    _check_inputs(fit, forecasts, extra_warnings)
    if extra_warnings is None:
        extra_warnings = extrapolation_warnings(forecasts)
    title = f"bayescale report: {fit.law.name}"
    contents = {
        "Answer": _answer_section(fit, forecasts),
        "Fitted curves": _curves_section(fit),
        "Posterior predictive check": _ppc_section(fit),
        "Rank and trace plots": _sampler_section(fit),
        "Posterior summary": _summary_section(fit),
        "Diagnostics": _diagnostics_section(fit),
        "Law": _law_section(fit),
        "Warnings": _warnings_section(fit, list(extra_warnings)),
        "Data": _data_section(fit),
    }
    nav = " | ".join(f'<a href="#{_anchor(name)}">{_e(name)}</a>' for name in SECTIONS[1:])
    answer, *rest = (_section(name, contents[name]) for name in SECTIONS)
    __version__ = _version()
    n_warn = len(fit.warnings) + len(extra_warnings)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{_e(title)}</h1>
{answer}
<nav><p>Further down: {nav}. {n_warn} warning(s). Written by bayescale {_e(__version__)}.</p></nav>
{chr(10).join(rest)}
</body>
</html>
"""


def _check_inputs(fit, forecasts, extra_warnings) -> None:
    from ..errors import BayescaleError

    if not all(hasattr(fit, a) for a in ("idata", "design", "law", "settings")):
        raise BayescaleError(f"the report is of a fit (bs.fit or bs.load), not {type(fit).__name__}.")
    if forecasts is not None and not isinstance(forecasts, pd.DataFrame):
        raise BayescaleError(f"forecasts= takes the table of fit.predict(...) (a DataFrame), not "
                             f"{type(forecasts).__name__}.")
    if extra_warnings is not None and (isinstance(extra_warnings, str) or not all(
            isinstance(w, str) for w in extra_warnings)):
        raise BayescaleError("extra_warnings= takes a list of str, one warning each.")


def _section(name: str, content: str) -> str:
    cls = ' class="answer"' if name == "Answer" else ""
    return f'<section id="{_anchor(name)}"{cls}>\n<h2>{_e(name)}</h2>\n{content}\n</section>'


def _anchor(name: str) -> str:
    return name.lower().replace(" ", "-")


def write(fit, path, forecasts: pd.DataFrame | None = None,
          extra_warnings: list[str] | None = None) -> Path:
    """Render the report of ``fit`` and write it to ``path`` (UTF-8); returns the path."""
    path = Path(path)
    path.write_text(render(fit, forecasts, extra_warnings), encoding="utf-8")
    return path


def markdown_table(df: pd.DataFrame) -> str:
    """A table as GitHub-flavoured Markdown, every cell written with ``str``.

    Examples
    --------
    >>> print(markdown_table(pd.DataFrame({"law": ["power"], "p": [0.5]})))
    | law | p |
    |---|---|
    | power | 0.5 |
    """
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


__all__ = ["SECTIONS", "checks", "extrapolation_warnings", "figure_png", "markdown_table", "render",
           "write"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bayescale")
    except PackageNotFoundError:
        return "unknown"
