"""Tests for bayescale.priors: parsing prior specs and the maps between the two scales."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from bayescale.errors import LawError
from bayescale.laws.priors import KINDS, Prior


@pytest.mark.parametrize(
    ("text", "kind", "loc", "scale"),
    [
        ("normal(0, 1)", "normal", 0.0, 1.0),
        ("normal(-2.5, 0.1)", "normal", -2.5, 0.1),
        ("lognormal(-1.0, 1.5)", "lognormal", -1.0, 1.5),
        ("logitnormal(0.5, 2)", "logitnormal", 0.5, 2.0),
        ("floor(1.0, 1.5)", "floor", 1.0, 1.5),
        ("  floor( 1 , 3e-1 )  ", "floor", 1.0, 0.3),
    ],
)
def test_parse_each_kind(text, kind, loc, scale):
    p = Prior.parse(text)
    assert (p.kind, p.loc, p.scale) == (kind, loc, scale)
    assert isinstance(p.loc, float) and isinstance(p.scale, float)


def test_all_kinds_take_two_arguments():
    assert KINDS == {"normal": 2, "lognormal": 2, "logitnormal": 2, "floor": 2}


@pytest.mark.parametrize(
    ("text", "loc", "scale"),
    [
        ("lognormal(log(0.3), 0.5)", math.log(0.3), 0.5),
        ("normal(-log(10) / 2, sqrt(4))", -math.log(10) / 2, 2.0),
        ("normal(2**-3, exp(0))", 0.125, 1.0),
        ("logitnormal(-(1 + 2), 1/4)", -3.0, 0.25),
    ],
)
def test_constant_expressions_in_arguments(text, loc, scale):
    p = Prior.parse(text)
    assert p.loc == pytest.approx(loc, rel=1e-15)
    assert p.scale == pytest.approx(scale, rel=1e-15)


def test_str_shows_kind_and_arguments():
    assert str(Prior.parse("lognormal(-1, 1.5)")) == "lognormal(-1.0, 1.5)"


def test_prior_is_frozen():
    p = Prior.parse("normal(0, 1)")
    with pytest.raises(AttributeError):
        p.loc = 1.0


Z = np.linspace(-4.0, 4.0, 17)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("xp", [np, jnp], ids=["numpy", "jax"])
def test_round_trip(kind, xp):
    p = Prior(kind, 0.0, 1.0)
    floor = 2.7 if kind == "floor" else None
    natural = p.to_natural(xp.asarray(Z), floor=floor, xp=xp)
    back = p.to_unconstrained(natural, floor=floor, xp=xp)
    np.testing.assert_allclose(np.asarray(back), Z, rtol=1e-9, atol=1e-9)


def test_round_trip_default_namespace_is_jax():
    p = Prior("lognormal", 0.0, 1.0)
    out = p.to_natural(jnp.asarray(Z))
    assert isinstance(out, jnp.ndarray)
    np.testing.assert_allclose(np.asarray(p.to_unconstrained(out)), Z, rtol=1e-9, atol=1e-12)


def test_natural_ranges():
    z = np.array([-3.0, 0.0, 3.0])
    np.testing.assert_array_equal(Prior("normal", 0, 1).to_natural(z, xp=np), z)
    np.testing.assert_allclose(Prior("lognormal", 0, 1).to_natural(z, xp=np), np.exp(z))
    logit = Prior("logitnormal", 0, 1).to_natural(z, xp=np)
    assert ((logit > 0) & (logit < 1)).all()
    assert logit[1] == pytest.approx(0.5)
    floor = Prior("floor", 0, 1).to_natural(z, floor=2.0, xp=np)
    assert ((floor > 0) & (floor < 2.0)).all()
    assert floor[1] == pytest.approx(1.0)  # half the floor at z = 0


def test_floor_scales_with_floor_argument():
    p = Prior("floor", 0, 1)
    np.testing.assert_allclose(p.to_natural(np.array([0.7]), floor=4.0, xp=np),
                               2.0 * p.to_natural(np.array([0.7]), floor=2.0, xp=np))
    # per-family floors broadcast against per-family z
    out = p.to_natural(np.zeros(3), floor=np.array([1.0, 2.0, 3.0]), xp=np)
    np.testing.assert_allclose(out, [0.5, 1.0, 1.5])


def test_to_unconstrained_of_known_values():
    assert Prior("lognormal", 0, 1).to_unconstrained(np.e, xp=np) == pytest.approx(1.0)
    assert Prior("logitnormal", 0, 1).to_unconstrained(0.5, xp=np) == pytest.approx(0.0)
    assert Prior("floor", 0, 1).to_unconstrained(1.5, floor=2.0, xp=np) == pytest.approx(math.log(3.0))


# ---- invalid priors ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("normal(0, 0)", "the scale must be a positive finite number, got 0.0"),
        ("normal(0, -1)", "the scale must be a positive finite number, got -1.0"),
        ("lognormal(0, -0.5)", "got -0.5"),
        ("normal(0, sqrt(-1))", "the scale must be a positive finite number, got nan"),
        ("normal(0, exp(1000))", "the scale must be a positive finite number, got inf"),
        ("normal(log(0), 1)", "the location must be a finite number, got -inf"),
        ("normal(log(-1), 1)", "the location must be a finite number, got nan"),
        ("normal(0, nan)", "found name 'nan'"),
        ("normal(inf, 1)", "found name 'inf'"),
        ("gamma(1, 1)", "unknown 'gamma'; choose one of ['floor', 'logitnormal', 'lognormal', 'normal']"),
        ("Normal(0, 1)", "unknown 'Normal'"),
        ("normal(0)", "normal() takes 2 positional number(s)"),
        ("normal(0, 1, 2)", "normal() takes 2 positional number(s)"),
        ("floor()", "floor() takes 2 positional number(s)"),
        ("normal(loc=0, scale=1)", "normal() takes 2 positional number(s)"),
        ("normal(mu, 1)", "arguments must be numbers, found name 'mu'"),
        ("lognormal(0, sigma)", "found name 'sigma'"),
        ("normal('0', 1)", "only numbers are allowed as constants"),
        ("normal(__import__('os'), 1)", "call of '__import__' is not allowed"),
        ("normal", "must look like name(arguments)"),
        ("", "is not valid"),
        ("normal(0, 1", "is not valid"),
    ],
)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_invalid_priors(text, fragment):
    with pytest.raises(LawError) as info:
        Prior.parse(text)
    assert fragment in str(info.value)


def test_unknown_kind_lists_every_kind():
    with pytest.raises(LawError) as info:
        Prior.parse("halfnormal(0, 1)")
    for kind in KINDS:
        assert f"'{kind}'" in str(info.value)


def test_what_names_the_prior_in_messages():
    with pytest.raises(LawError, match=r"^prior of parameter 'E' 'normal\(0, 0\)'"):
        Prior.parse("normal(0, 0)", what="prior of parameter 'E'")


@pytest.mark.parametrize("text", ["normal(1/0, 1)", "lognormal(0, 10.0**400)"])
def test_arithmetic_error_in_prior_is_a_law_error(text):
    with pytest.raises(LawError):
        Prior.parse(text)
