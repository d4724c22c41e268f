"""A fit as one self-contained HTML page: data, law, posterior, diagnostics, plot, forecasts.

:func:`render` returns the page as text; :func:`write` saves it.  The page loads
nothing from outside: the figure is an inline base64 PNG and the style sheet is
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

from .plot import plot_fit

MAX_ROWS = 200  # rows of the data table shown

SECTIONS = ("Data", "Law", "Posterior summary", "Diagnostics", "Fit plot", "Forecasts", "Warnings")

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
img { max-width: 100%; }
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
    mapping += [(role, cols[role]) for role in ("group", "run", "se") if cols.get(role)]
    parts = [f"<p>{n} row{'s' if n != 1 else ''} used, {fit.design.n_families} "
             f"famil{'y' if fit.design.n_families == 1 else 'ies'} "
             f"({_e(', '.join(map(str, fit.design.families)))}).</p>",
             _pairs_table(mapping, ("role", "column"))]
    if n > MAX_ROWS:
        parts.append(f'<p class="note">Showing the first {MAX_ROWS} of {n} rows '
                     f"(the full data is data.csv in the fit directory).</p>")
    parts.append(_table(shown))
    return "\n".join(parts)


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


def figure_png(fit) -> bytes:
    """The fit's figure (:func:`bayescale.viz.plot.plot_fit`) as PNG bytes; the figure is closed.

    The matplotlib backend is left as the user set it: saving to PNG needs no display.
    """
    import matplotlib.pyplot as plt

    fig = plot_fit(fit)
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
    finally:
        plt.close(fig)
    return buf.getvalue()


def _plot_section(fit) -> str:
    try:
        png = figure_png(fit)
    except Exception as exc:  # noqa: BLE001 - a failed figure must not cost the whole report
        return f'<p class="fail">The figure could not be drawn: {_e(type(exc).__name__)}: {_e(exc)}</p>'
    data = base64.b64encode(png).decode("ascii")
    return (f'<img src="data:image/png;base64,{data}" alt="{_e(fit.law.name)}: data, posterior '
            f'median and 90% band per family">')


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
    """
    if extra_warnings is None:
        extra_warnings = extrapolation_warnings(forecasts)
    title = f"bayescale report: {fit.law.name}"
    verdict = "passed" if fit.ok else "FAILED"
    sections = [
        ("Data", _data_section(fit)),
        ("Law", _law_section(fit)),
        ("Posterior summary", _summary_section(fit)),
        ("Diagnostics", _diagnostics_section(fit)),
        ("Fit plot", _plot_section(fit)),
    ]
    if forecasts is not None:
        sections.append(("Forecasts", _forecast_section(forecasts)))
    sections.append(("Warnings", _warnings_section(fit, list(extra_warnings))))
    nav = " | ".join(f'<a href="#{_anchor(name)}">{_e(name)}</a>' for name, _ in sections)
    body = "\n".join(f'<section id="{_anchor(name)}">\n<h2>{_e(name)}</h2>\n{content}\n</section>'
                     for name, content in sections)
    __version__ = _version()

    n_warn = len(fit.warnings) + len(extra_warnings)
    families = "y" if fit.design.n_families == 1 else "ies"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{_e(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{_e(title)}</h1>
<p>{_e(len(fit.design.y))} rows, {_e(fit.design.n_families)} famil{families};
diagnostics <span class="{'pass' if fit.ok else 'fail'}">{verdict}</span>; {n_warn} warning(s).
Written by bayescale {_e(__version__)}.</p>
<p>{nav}</p>
{body}
</body>
</html>
"""


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
