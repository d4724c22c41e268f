"""The HTML report: one self-contained, well-formed page that answers first, and ``bayescale report``."""

from __future__ import annotations

import base64
import shutil
import subprocess
import warnings
from html.parser import HTMLParser

import pandas as pd
import pytest

import bayescale as bs
from bayescale.cli.main import main
from bayescale.result.fit import GATE_KINDS
from bayescale.viz import report

SECTION_TAGS = ("html", "head", "body", "table", "section", "ul", "p")


class _Page(HTMLParser):
    """Counts opening and closing tags and collects image sources, links and text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.opened, self.closed = {}, {}
        self.images, self.external, self.text = [], [], []
        self.headings, self._in_heading = [], False

    def handle_starttag(self, tag, attrs):
        self.opened[tag] = self.opened.get(tag, 0) + 1
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            if value and not value.startswith(("data:", "#")):
                self.external.append(value)
        if tag in ("link", "script"):
            self.external.append(tag)
        self._in_heading = tag in ("h1", "h2", "h3")

    def handle_endtag(self, tag):
        self.closed[tag] = self.closed.get(tag, 0) + 1
        if tag in ("h1", "h2", "h3"):
            self._in_heading = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_heading:
            self.headings.append(data.strip())


def parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


class _Outline(HTMLParser):
    """The page's top-level sections in order: id, text, figures with images, details elements."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections, self._figure, self._details = [], None, 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append({"id": attrs.get("id"), "text": [], "figures": {}, "details": [],
                                  "tables": [], "in_details": []})
        if not self.sections:
            return
        here = self.sections[-1]
        if tag == "figure":
            self._figure = attrs.get("data-figure")
        elif tag == "img" and self._figure is not None:
            here["figures"][self._figure] = attrs.get("src", "")
        elif tag == "details":
            self._details += 1
            here["details"].append("open" in attrs)
        elif tag == "table":
            here["tables"].append(attrs.get("class"))
            here["in_details"].append(self._details > 0)

    def handle_endtag(self, tag):
        if tag == "figure":
            self._figure = None
        elif tag == "details":
            self._details -= 1

    def handle_data(self, data):
        if self.sections:
            self.sections[-1]["text"].append(data)


def outline(text: str) -> list[dict]:
    parser = _Outline()
    parser.feed(text)
    parser.close()
    return parser.sections


@pytest.fixture(scope="module")
def tiny_fit():
    df = bs.datasets.simulate("power", families=1, seeds=1, sizes=(1e7, 1e8, 1e9), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return bs.fit(df, law="power", y="loss", x="x", chains=2, warmup=150, draws=150, seed=0,
                      progress=False, extrapolation=False)


@pytest.fixture(scope="module")
def forecasts(tiny_fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ExtrapolationWarning)
        return tiny_fit.predict(pd.DataFrame({"x": [3e10, 1e14]}), levels=(0.5, 0.9))


@pytest.fixture(scope="module")
def page(tiny_fit, forecasts):
    text = report.render(tiny_fit, forecasts)
    return text, parse(text)


@pytest.fixture
def stub_figures(monkeypatch):
    """Every figure of the report drawn as one small empty plot: for tests of the text only."""
    import matplotlib.pyplot as plt

    def small(*args, **kwargs):
        return plt.figure(figsize=(1, 1))

    for name in ("plot_fit", "ppc_figure", "rank_figure", "trace_figure"):
        monkeypatch.setattr(report, name, small)


def test_report_is_well_formed_and_self_contained(page):
    text, p = page
    assert text.startswith("<!DOCTYPE html>")
    for tag in SECTION_TAGS:
        assert p.opened.get(tag, 0) == p.closed.get(tag, 0), tag
    assert p.opened["html"] == p.opened["body"] == 1
    assert p.opened["table"] >= 5  # data, columns, inputs, parameters, summary, diagnostics, forecasts
    assert p.opened["details"] == p.closed["details"] == 1
    assert p.external == []  # no external resources


def test_report_answers_first_and_keeps_the_raw_data_last_and_folded(page, tiny_fit):
    text, _ = page
    sections = outline(text)
    assert [s["id"] for s in sections] == [report._anchor(name) for name in report.SECTIONS]
    first = sections[0]
    body = " ".join(first["text"])
    assert first["id"] == "answer" and "forecasts" in first["tables"]
    assert ("Diagnostics passed" if tiny_fit.ok else "Diagnostics FAILED") in body
    assert "E + a * x**(-alpha)" in body
    if not tiny_fit.ok:  # the reasons, by the gate's own words
        for w in tiny_fit.warnings:
            if w.kind in GATE_KINDS:
                assert w.message in body
    figures = {kind: src for s in sections for kind, src in s["figures"].items()}
    assert set(figures) == {"curves", "ppc", "rank", "trace"}
    assert all(src.startswith("data:image/png;base64,") for src in figures.values())
    last = sections[-1]
    assert last["id"] == "data" and last["details"] == [False]  # one details element, closed
    assert last["tables"] and all(last["in_details"])  # every data table inside it
    assert not any(s["details"] for s in sections[:-1])


def test_report_embeds_the_figures_as_png(page):
    _, p = page
    assert len(p.images) == 4  # curves, ppc, rank, trace
    for src in p.images:
        head, _, data = src.partition(",")
        assert head == "data:image/png;base64"
        png = base64.b64decode(data, validate=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000


def test_report_has_every_section_and_the_law(page, tiny_fit):
    text, p = page
    for name in report.SECTIONS:
        assert name in p.headings, name
    assert "bayescale report: power" in p.headings
    assert "E + a * x**(-alpha)" in text
    body = " ".join(p.text)
    for param in ("E", "a", "alpha", "sigma"):
        assert param in body
    assert "floor(1.0, 1.5)" in body and "Hestness" in body
    assert "power-law exponent" in body  # a parameter description


def test_report_diagnostics_verdicts_and_warnings(page, tiny_fit):
    text, p = page
    body = " ".join(p.text)
    for check in ("R-hat", "ESS bulk", "ESS tail", "Divergences", "E-BFMI"):
        assert check in body
    records = report.checks(tiny_fit)
    assert [r["check"] for r in records] == ["R-hat", "ESS bulk", "ESS tail", "Divergences", "E-BFMI"]
    assert all(r["status"] in ("passed", "failed", "not checked") for r in records)
    failed = {r["check"] for r in records if r["status"] == "failed"}
    assert bool(failed) == (not tiny_fit.ok)
    if not tiny_fit.ok:
        assert "Diagnostics FAILED" in body
        assert 'class="warnings"' in text
    for w in tiny_fit.warnings:
        assert w.message in body
    assert "[extrapolation]" in body  # the 1e14 forecast is > 2 decades outside the data


def test_report_forecast_table_only_with_forecasts(page, tiny_fit, stub_figures):
    text, _ = page
    assert 'class="forecasts"' in text
    for col in ("median", "lo90", "hi90", "extrap_x"):
        assert f">{col}</th>" in text
    assert "Forecasts" in parse(text).headings
    plain = report.render(tiny_fit)
    p = parse(plain)
    assert "Forecasts" not in p.headings and 'class="forecasts"' not in plain
    assert "[extrapolation]" not in plain
    assert "No forecasts were asked for" in " ".join(outline(plain)[0]["text"])


def test_bad_arguments_are_named(tiny_fit, forecasts):
    with pytest.raises(bs.BayescaleError, match="of a fit .* not DataFrame"):
        report.render(forecasts)
    with pytest.raises(bs.BayescaleError, match=r"forecasts= takes the table of fit.predict.*not dict"):
        report.render(tiny_fit, {"x": [1e10]})
    with pytest.raises(bs.BayescaleError, match="extra_warnings= takes a list of str"):
        report.render(tiny_fit, extra_warnings="one warning")


def test_a_figure_that_cannot_be_drawn_is_reported_not_fatal(tiny_fit, monkeypatch, stub_figures):
    def broken(*args, **kwargs):
        raise RuntimeError("no ranks today")

    monkeypatch.setattr(report, "rank_figure", broken)
    sections = outline(report.render(tiny_fit))
    figures = {kind for s in sections for kind in s["figures"]}
    assert figures == {"curves", "ppc", "trace"}
    sampler = next(s for s in sections if s["id"] == "rank-and-trace-plots")
    assert "RuntimeError: no ranks today" in " ".join(sampler["text"])


def test_report_escapes_text_and_truncates_long_data(tiny_fit, monkeypatch, stub_figures):
    monkeypatch.setattr(report, "MAX_ROWS", 5)
    fake = pd.DataFrame({"x": [1e9], "family": ["<script>alert(1)</script>"], "mean": [2.0]})
    text = report.render(tiny_fit, fake, extra_warnings=["<b>odd</b> & co"])
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "&lt;b&gt;odd&lt;/b&gt; &amp; co" in text
    assert "Showing the first 5 of 15 rows" in text


def test_cli_report_end_to_end(tiny_fit, tmp_path):
    fitdir = tiny_fit.save(tmp_path / "fit")
    code = main(["report", str(fitdir), "--at", "x=1e10", "--at", "1e12", "--quiet"])
    assert code == (0 if tiny_fit.ok else 1)
    path = fitdir / "report.html"
    text = path.read_text(encoding="utf-8")
    p = parse(text)
    assert p.opened["html"] == p.closed["html"] == 1
    assert "Forecasts" in p.headings and 'class="forecasts"' in text
    assert bs.load(fitdir).law.name == "power"  # the report does not break the fit directory
    out = tmp_path / "elsewhere.html"
    code = main(["report", str(fitdir), "--out", str(out), "--quiet"])
    assert code == (0 if tiny_fit.ok else 1) and out.is_file()
    assert 'class="forecasts"' not in out.read_text(encoding="utf-8")


CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="needs a chromium browser")
def test_a_headless_browser_renders_the_report(page, tmp_path):
    """The page renders in a real browser: a screenshot of its first screen is written, not blank."""
    from PIL import Image

    text, _ = page
    html_path = tmp_path / "report.html"
    html_path.write_text(text, encoding="utf-8")
    shot = tmp_path / "shot.png"
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           f"--screenshot={shot}", "--window-size=1280,2000", html_path.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    image = Image.open(shot).convert("L")
    assert image.size == (1280, 2000)
    low, high = image.getextrema()
    assert high - low > 100  # text and figures drawn, not an empty page
