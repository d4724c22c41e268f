"""The HTML report: one self-contained, well-formed page with every section, and ``bayescale report``."""

from __future__ import annotations

import base64
import warnings
from html.parser import HTMLParser

import pandas as pd
import pytest

import bayescale as bs
from bayescale.cli.main import main
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


def test_report_is_well_formed_and_self_contained(page):
    text, p = page
    assert text.startswith("<!DOCTYPE html>")
    for tag in SECTION_TAGS:
        assert p.opened.get(tag, 0) == p.closed.get(tag, 0), tag
    assert p.opened["html"] == p.opened["body"] == 1
    assert p.opened["table"] >= 5  # data, columns, inputs, parameters, summary, diagnostics, forecasts
    assert p.external == []  # no external resources


def test_report_embeds_the_figure_as_png(page):
    _, p = page
    assert len(p.images) == 1
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


def test_report_forecast_table_only_with_forecasts(page, tiny_fit):
    text, _ = page
    assert 'class="forecasts"' in text
    for col in ("median", "lo90", "hi90", "extrap_x"):
        assert f">{col}</th>" in text
    plain = report.render(tiny_fit)
    p = parse(plain)
    assert "Forecasts" not in p.headings and 'class="forecasts"' not in plain
    assert "[extrapolation]" not in plain


def test_report_escapes_text_and_truncates_long_data(tiny_fit, monkeypatch):
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
