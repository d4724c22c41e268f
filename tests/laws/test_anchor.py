"""Tests for bayescale.laws.anchor: which offset a law samples at its reference point."""

from __future__ import annotations

import pytest

from bayescale import Law
from bayescale.laws.anchor import find

TEMPLATE = """
name = "mine"
outcome = "{outcome}"
formula = "{formula}"

[inputs]
x = {x}

[parameters.c]
prior = "{prior}"

[parameters.a]
prior = "lognormal(0.0, 1.0)"

[parameters.alpha]
prior = "lognormal(-1.0, 0.5)"
"""


def _law(formula, outcome="unit", prior="normal(0.0, 1.5)", x='"tokens"'):
    return Law.from_toml(TEMPLATE.format(formula=formula, outcome=outcome, prior=prior, x=x))


@pytest.mark.parametrize("formula, outcome", [
    ("sigmoid(c - a * x**(-alpha))", "unit"),
    ("sigmoid(-a * x**(-alpha) + c)", "unit"),
    ("c - a * x**(-alpha)", "real"),
    ("exp(c - a * x**(-alpha))", "positive"),
])
def test_an_additive_offset_on_the_link_scale_is_anchored(formula, outcome):
    anchor = find(_law(formula, outcome))
    assert anchor is not None and anchor.parameter == "c"
    # the predictor is the law on its link scale: the offset plus the rest
    value = float(anchor.predictor({"c": 0.5, "a": 2.0, "alpha": 0.3, "x": 1.0}, __import__("numpy")))
    assert value == pytest.approx(0.5 - 2.0)


@pytest.mark.parametrize("formula, outcome, prior, x, why", [
    ("c - a * x**(-alpha)", "unit", "normal(0.0, 1.5)", '"tokens"', "not on the logit scale"),
    ("sigmoid(c - a * x**(-alpha))", "positive", "normal(0.0, 1.5)", '"tokens"', "wrong link"),
    ("sigmoid(-c - a * x**(-alpha))", "unit", "normal(0.0, 1.5)", '"tokens"', "minus sign"),
    ("sigmoid(c - a * c * x**(-alpha))", "unit", "normal(0.0, 1.5)", '"tokens"', "used twice"),
    ("sigmoid(c - a * x**(-alpha))", "unit", "lognormal(0.0, 1.5)", '"tokens"', "bounded prior"),
    ("sigmoid(c - a * x**(-alpha))", "unit", "normal(0.0, 1.5)",
     '{ description = "a rate", scale = "none" }', "unscaled input"),
    ("0.25 + 0.75 * sigmoid(c - a * x**(-alpha))", "unit", "normal(0.0, 1.5)", '"tokens"', "chance floor"),
])
def test_no_anchor_where_the_shift_is_not_exact(formula, outcome, prior, x, why):
    assert find(_law(formula, outcome, prior, x)) is None, why


def test_catalogue_anchors():
    assert find(Law.named("offset_power")).parameter == "E"
    for name in ("chinchilla", "power", "bnsl", "sigmoid_link"):
        assert find(Law.named(name)) is None
