"""Tests for bayescale.laws.anchor: which offset a law samples at its reference point."""

from __future__ import annotations

import pytest

from bayescale import Law
from bayescale.laws.anchor import WEAK, candidates, weakness
from bayescale.laws.spec import law_names

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


def find(law):
    """The law's first candidate, or None."""
    found = candidates(law)
    return found[0] if found else None


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
    found = {name: [(a.parameter, a.kind) for a in candidates(Law.named(name))] for name in law_names()}
    assert {k: v for k, v in found.items() if v} == {
        "offset_power": [("E", "offset")], "power": [("a", "amplitude")], "compute": [("a", "amplitude")],
        "multiplicative": [("a", "amplitude")], "chinchilla": [("a", "amplitude"), ("b", "amplitude")],
        "chinchilla_shared": [("a", "amplitude"), ("b", "amplitude")]}


def test_amplitudes_and_their_terms():
    assert [(a.parameter, a.term) for a in candidates(Law.named("chinchilla"))] == [
        ("a", ("alpha",)), ("b", ("beta",))]
    assert candidates(Law.named("compute"))[0].term == ("gamma",)


@pytest.mark.parametrize("formula, found", [
    ("c + a * x**(-alpha)", True),
    ("c + a * x**(-alpha) + 0.1", False),  # a term without an amplitude
    ("c - a * x**(-alpha)", False),  # the term is subtracted
    ("c + x**(-alpha) / a", False),  # a divides
    ("c + a * a * x**(-alpha)", False),  # a twice
])
def test_amplitude_only_in_the_form_floor_plus_amplitude_terms(formula, found):
    anchor = find(_law(formula, outcome="positive", prior="lognormal(0.0, 1.0)"))
    assert (anchor is not None and anchor.kind == "amplitude") is found


def test_weakness_compares_the_laplace_sd_with_the_prior_sd():
    law = Law.named("power")
    (anchor,) = candidates(law)
    scale = law.parameters["alpha"].prior.scale  # 0.5
    assert weakness(anchor, law, {"alpha_z": [0.1 * scale]}) == pytest.approx(0.1)
    assert weakness(anchor, law, {"alpha_z": [0.5 * scale]}) == pytest.approx(0.5)
    assert 0.1 < WEAK < 0.5
    assert weakness(anchor, law, {"alpha_pop_z": [float("inf")]}) == float("inf")  # no proper curvature
    assert weakness(anchor, law, {}) == float("inf")  # nothing known: weak


def test_clear_measures_the_gap_to_the_wall_in_sds():
    from bayescale.laws.anchor import CLEAR, clear

    assert clear([1.0, 2.0], [0.5, 0.5], 0.5 / CLEAR)  # the nearest family exactly CLEAR sds away
    assert not clear([1.0, 2.0], [0.5, 0.5], 0.6 / CLEAR)
    assert clear([1.0], [float("-inf")], 10.0)  # no wall
    assert not clear([1.0], [0.5], float("inf"))
