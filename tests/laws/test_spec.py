"""Tests for bayescale.law: the catalogue, TOML specs, pooling overrides and spec errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayescale import Law, laws
from bayescale.errors import LawError
from bayescale.laws.spec import POOLS, catalogue_dir, law_names, resolve

CATALOGUE = ["chinchilla", "chinchilla_shared", "power"]

SPEC = """
name = "mine"
formula = "E + a * x**(-alpha)"

[inputs]
x = "steps"

[parameters.E]
prior = "floor(1.0, 1.5)"
pool = "partial"

[parameters.a]
prior = "lognormal(-1.0, 1.5)"
pool = "partial"
tau = 0.3

[parameters.alpha]
prior = "lognormal(log(0.3), 0.5)"

[report]
A = "a * x_ref**alpha"
"""


def spec(replace: dict) -> str:
    """SPEC with each key replaced by its value (each key must occur)."""
    text = SPEC
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def _raises(text: str, *fragments: str) -> str:
    with pytest.raises(LawError) as info:
        Law.from_toml(text)
    msg = str(info.value)
    for fragment in fragments:
        assert fragment in msg, (fragment, msg)
    return msg


# ---- catalogue ---------------------------------------------------------------------------
def test_catalogue_names():
    assert set(CATALOGUE) <= set(law_names())
    assert law_names() == sorted(law_names())
    assert (catalogue_dir() / "power.toml").is_file()


@pytest.mark.parametrize("name", law_names())
def test_every_catalogue_law_loads(name):
    law = Law.named(name)
    assert law.name == name
    assert law.formula.names == set(law.parameters) | set(law.inputs)
    assert law.citation and law.title and law.description
    for p in law.parameters.values():
        assert p.pool in POOLS
        assert p.tau > 0 and p.prior.scale > 0
    # the formula evaluates to a finite value inside the outcome's range at the reference point
    values = {k: p.prior.to_natural(np.float64(p.prior.loc), floor=2.0, xp=np)
              for k, p in law.parameters.items()}
    mean = law.formula(values | {k: 1.0 for k in law.inputs}, np)
    assert np.isfinite(mean) and law.outcome.valid(mean)


def test_catalogue_contents():
    power = Law.named("power")
    assert power.inputs == ("x",)
    assert set(power.parameters) == {"E", "a", "alpha"}
    assert set(power.report) == {"A"}
    chin = Law.named("chinchilla")
    assert chin.inputs == ("N", "D")
    assert set(chin.parameters) == {"E", "a", "b", "alpha", "beta"}
    assert chin.parameters["alpha"].pool == "shared" and chin.parameters["E"].pool == "partial"
    assert chin.parameters["alpha"].prior.loc == pytest.approx(np.log(0.3))
    assert set(chin.report) == {"A", "B"}
    shared = Law.named("chinchilla_shared")
    assert set(shared.parameters) == {"E", "a", "b", "eta"}
    assert "eta" in repr(shared) and "chinchilla_shared" in repr(shared)


def test_chinchilla_formula_values():
    law = Law.named("chinchilla")
    env = {"E": 1.7, "a": 0.4, "b": 0.3, "alpha": 0.34, "beta": 0.28, "N": 2.0, "D": 0.5}
    expected = 1.7 + 0.4 * 2.0**-0.34 + 0.3 * 0.5**-0.28
    assert float(law.formula(env, np)) == pytest.approx(expected, rel=1e-14)
    report = law.report["A"]({"a": 0.4, "alpha": 0.34, "N_ref": 1e8}, np)
    assert report == pytest.approx(0.4 * 1e8**0.34)


def test_laws_table():
    table = laws()
    assert isinstance(table, pd.DataFrame)
    assert {"name", "title", "formula", "inputs", "parameters", "citation"} <= set(table.columns)
    assert set(CATALOGUE) <= set(table["name"])
    row = table.set_index("name").loc["chinchilla"]
    assert row["formula"] == "E + a * N**(-alpha) + b * D**(-beta)"
    assert row["inputs"] == "N, D"
    assert row["parameters"] == "E, a, b, alpha, beta"
    assert table.set_index("name").loc["power", "inputs"] == "x"
    assert "Hoffmann" in row["citation"]


def test_unknown_law_name_suggests_closest():
    with pytest.raises(LawError) as info:
        Law.named("chinchila")
    msg = str(info.value)
    assert "unknown law 'chinchila'" in msg
    assert "Did you mean 'chinchilla'?" in msg
    known = msg.split("Known laws: ")[1].rstrip(".").split(", ")
    assert {"chinchilla", "chinchilla_shared", "power"} <= set(known)
    assert known == sorted(known)


def test_unknown_law_name_without_close_match():
    with pytest.raises(LawError, match="unknown law 'zzzz'.") as info:
        Law.named("zzzz")
    assert "Did you mean" not in str(info.value)


def test_resolve():
    law = Law.named("power")
    assert resolve(law) is law
    assert resolve("power").name == "power"
    assert resolve(catalogue_dir() / "chinchilla.toml").name == "chinchilla"
    with pytest.raises(LawError, match="not int"):
        resolve(3)


# ---- TOML round trip ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", CATALOGUE)
def test_to_toml_round_trips(name):
    law = Law.named(name).with_pooling({next(iter(Law.named(name).parameters)): "none"})
    back = Law.from_toml(law.to_toml())
    assert back.name == law.name
    assert back.formula.text == law.formula.text
    assert back.inputs == law.inputs and back.input_descriptions == law.input_descriptions
    assert list(back.parameters) == list(law.parameters)
    for key, p in law.parameters.items():
        q = back.parameters[key]
        assert (q.pool, q.tau, q.description, q.prior.kind) == (p.pool, p.tau, p.description, p.prior.kind)
        assert q.prior.loc == pytest.approx(p.prior.loc, rel=1e-5)
        assert q.prior.scale == pytest.approx(p.prior.scale, rel=1e-5)
    assert {k: f.text for k, f in back.report.items()} == {k: f.text for k, f in law.report.items()}
    assert (back.title, back.citation, back.description, back.notes) == (
        law.title, law.citation, law.description, law.notes)
    assert back.to_toml() == law.to_toml()


@pytest.mark.parametrize("name", CATALOGUE)
def test_to_toml_round_trips_priors_exactly(name):
    law = Law.named(name)
    back = Law.from_toml(law.to_toml())
    assert {k: p.prior for k, p in back.parameters.items()} == {k: p.prior for k, p in law.parameters.items()}


def test_to_toml_escapes_quotes_backslashes_and_newlines():
    text = spec({'[inputs]': 'description = "say \\"hi\\" \\\\ C:\\\\path\\nnext line"\n\n[inputs]'})
    law = Law.from_toml(text)
    assert law.description == 'say "hi" \\ C:\\path\nnext line'
    assert Law.from_toml(law.to_toml()).description == law.description


def test_from_file_keeps_source_text(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(SPEC, encoding="utf-8")
    law = Law.from_file(path)
    assert law.name == "mine" and law.source_text == SPEC
    assert resolve(str(path)).name == "mine"


def test_parameter_defaults_and_string_shorthand():
    law = Law.from_toml(SPEC)
    alpha = law.parameters["alpha"]
    assert (alpha.pool, alpha.tau, alpha.description) == ("shared", 0.5, "")
    assert law.parameters["a"].tau == 0.3
    short = Law("s", "E + x", {"x": "in"}, {"E": "normal(0, 1)"})
    assert short.parameters["E"].prior.kind == "normal" and short.parameters["E"].pool == "shared"


# ---- with_pooling ---------------------------------------------------------------------------------
def test_with_pooling_changes_only_the_named_parameter():
    law = Law.named("chinchilla")
    before = {k: (p.pool, p.prior, p.tau) for k, p in law.parameters.items()}
    text = law.to_toml()
    new = law.with_pooling({"alpha": "partial"})
    assert new is not law
    assert new.parameters["alpha"].pool == "partial"
    assert new.parameters["alpha"].prior == law.parameters["alpha"].prior
    assert new.parameters["alpha"].tau == law.parameters["alpha"].tau
    for key in law.parameters:
        if key != "alpha":
            assert new.parameters[key] == law.parameters[key]
    # the original is untouched
    assert {k: (p.pool, p.prior, p.tau) for k, p in law.parameters.items()} == before
    assert law.to_toml() == text
    assert new.formula is law.formula and new.inputs == law.inputs and new.name == law.name
    assert 'pool = "partial"' in new.to_toml().split("[parameters.alpha]")[1].split("[")[0]


@pytest.mark.parametrize("pool", [None, {}])
def test_with_pooling_nothing_returns_same_law(pool):
    law = Law.named("power")
    assert law.with_pooling(pool) is law


@pytest.mark.parametrize(
    ("pool", "fragment"),
    [
        ({"alfa": "partial"}, "pool names unknown parameter 'alfa' of law 'power'; parameters are"),
        ({"alpha": "partly"}, "pool['alpha'] = 'partly'; choose one of ('shared', 'partial', 'none')"),
    ],
)
def test_with_pooling_errors(pool, fragment):
    law = Law.named("power")
    with pytest.raises(LawError) as info:
        law.with_pooling(pool)
    assert fragment in str(info.value)
    assert law.parameters["alpha"].pool == "shared"


# ---- bad specs ------------------------------------------------------------------------------------
def test_invalid_toml():
    _raises('name = "x\nformula = ', "law spec is not valid TOML")


@pytest.mark.parametrize("key", ["name", "formula", "inputs", "parameters"])
def test_missing_required_key(key):
    lines = SPEC
    if key in ("inputs", "parameters"):
        # drop the tables: keep everything before the first table of that kind
        kept, skip = [], False
        for line in SPEC.splitlines():
            if line.startswith("["):
                skip = line.startswith(f"[{key}")
            if not skip:
                kept.append(line)
        lines = "\n".join(kept)
    else:
        lines = "\n".join(line for line in SPEC.splitlines() if not line.startswith(f"{key} ="))
    _raises(lines, f"law spec lacks required key(s) ['{key}']")


def test_unknown_top_level_key():
    _raises('units = "nats"\n' + SPEC, "law spec: unknown key(s) ['units']; allowed are")


def test_unknown_parameter_key():
    _raises(spec({"tau = 0.3": "tau = 0.3\nshape = 2"}),
            "parameter 'a' of law 'mine': unknown key(s) ['shape']")


def test_parameter_without_prior():
    _raises(spec({'prior = "lognormal(-1.0, 1.5)"\n': ""}), "parameter 'a' of law 'mine' needs a table")


def test_parameter_unused_in_formula():
    _raises(spec({'formula = "E + a * x**(-alpha)"': 'formula = "E + a * x**(-0.3)"'}),
            "law 'mine': ['alpha'] declared but not used in the formula")


def test_input_unused_in_formula():
    _raises(spec({'x = "steps"': 'x = "steps"\nD = "tokens"'}), "['D'] declared but not used")


def test_unknown_name_in_formula():
    _raises(spec({'formula = "E + a * x**(-alpha)"': 'formula = "E + a * N**(-alpha)"'}),
            "formula of law 'mine'", "unknown name(s) ['N']", "allowed names are ['E', 'a', 'alpha', 'x']")


def test_input_parameter_name_clash():
    _raises(spec({'x = "steps"': 'x = "steps"\nalpha = "a clash"'}),
            "law 'mine': ['alpha'] is both an input and a parameter")


@pytest.mark.parametrize("value", ['"partly"', '"Shared"', '1', '["shared"]'])
def test_bad_pool_value(value):
    _raises(spec({'pool = "partial"\ntau': f'pool = {value}\ntau'}),
            "parameter 'a' of law 'mine': pool =", "choose one of ('shared', 'partial', 'none')")


@pytest.mark.parametrize("value", ["0", "-0.5", '"0.5"', "nan"])
def test_bad_tau(value):
    _raises(spec({"tau = 0.3": f"tau = {value}"}),
            "parameter 'a' of law 'mine': tau must be a positive number")


@pytest.mark.parametrize("value", ["inf", "true"])
def test_tau_infinite_or_boolean_is_rejected(value):
    _raises(spec({"tau = 0.3": f"tau = {value}"}), "tau must be a positive number")


def test_bad_prior_in_spec():
    _raises(spec({"lognormal(-1.0, 1.5)": "lognormal(-1.0, 0)"}),
            "prior of parameter 'a' of law 'mine'", "the scale must be a positive finite number")
    _raises(spec({"lognormal(-1.0, 1.5)": "gamma(1, 1)"}), "unknown 'gamma'")


@pytest.mark.parametrize("call", ["eval('1')", "__import__('os')", "open('x')", "os.system('x')"])
def test_formula_calling_forbidden_function(call):
    _raises(spec({'formula = "E + a * x**(-alpha)"': f'formula = "E + a * x**(-alpha) + {call}"'}),
            "formula of law 'mine'", f"call of '{call.split('(')[0]}' is not allowed")


def test_formula_with_attribute_access():
    _raises(spec({'formula = "E + a * x**(-alpha)"': 'formula = "E + a * x.__class__**(-alpha)"'}),
            "'x.__class__' is not allowed")


def test_report_formula_errors():
    _raises(spec({'A = "a * x_ref**alpha"': 'A = "a * N_ref**alpha"'}),
            "report formula 'A' of law 'mine'", "unknown name(s) ['N_ref']")
    _raises(spec({'A = "a * x_ref**alpha"': "A = \"open('x')\""}), "report formula 'A'", "call of 'open'")


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ('name = "mine"', 'name = "my law"', "law name 'my law' must be a plain identifier"),
        ('x = "steps"', '"x-1" = "steps"', "input name 'x-1' must be a plain identifier"),
        ("[parameters.alpha]", '[parameters."al pha"]', "parameter name 'al pha' must be a plain identifier"),
    ],
)
def test_names_must_be_identifiers(old, new, fragment):
    _raises(spec({old: new}), fragment)


def test_empty_inputs_or_parameters():
    with pytest.raises(LawError, match="declares no inputs"):
        Law("e", "E", {}, {"E": "normal(0, 1)"})
    with pytest.raises(LawError, match="declares no parameters"):
        Law("e", "x", {"x": "in"}, {})


def test_law_file_not_found(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(LawError, match="does not exist") as info:
        Law.from_file(path)
    assert str(path) in str(info.value)
    with pytest.raises(LawError, match="does not exist"):
        resolve(str(path))


def test_non_utf8_law_file(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(SPEC.replace("steps", "\u00e9tapes").encode("latin-1"))
    with pytest.raises(LawError, match="is not UTF-8 text") as info:
        Law.from_file(path)
    assert str(path) in str(info.value)


def test_law_file_errors_name_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = ", encoding="utf-8")
    with pytest.raises(LawError, match="is not valid TOML") as info:
        Law.from_file(path)
    assert f"law file {path}" in str(info.value)


def test_inputs_written_as_a_list():
    _raises(spec({'[inputs]\nx = "steps"\n': ""}).replace('formula =', 'inputs = ["x"]\nformula ='),
            "inputs")


def test_law_file_that_is_a_directory(tmp_path):
    path = tmp_path / "dir.toml"
    path.mkdir()
    with pytest.raises(LawError):
        Law.from_file(path)


def test_catalogue_page_is_generated_from_the_specs():
    """models/README.md is the output of `bayescale laws --markdown`: regenerate it after editing a law."""
    from pathlib import Path

    from bayescale.laws.spec import catalogue_markdown

    page = Path(__file__).resolve().parents[2] / "models" / "README.md"
    assert page.read_text(encoding="utf-8") == catalogue_markdown()


# ---- the scale extrapolation is measured in ----------------------------------------------------
def test_default_scale_is_compute_for_n_and_d_and_the_input_of_one_input_laws():
    chin = Law.named("chinchilla")
    assert chin.scale.text == "6 * N * D" and chin.scale_input is None
    np.testing.assert_allclose(chin.scale_of({"N": [1e9], "D": [2e10]}), [1.2e20])
    assert Law.named("power").scale_input == "x"


def test_default_scale_leaves_out_unscaled_inputs(mixture_toml):
    law = Law.from_toml(mixture_toml(""))
    assert law.scale.text == "N" and law.scale_input == "N"
    # a zero share does not touch it
    np.testing.assert_allclose(law.scale_of({"N": [1e8, 1e9], "p": [0.0, 0.3]}), [1e8, 1e9])


def test_declared_scale_is_kept_and_written_back(mixture_toml):
    law = Law.from_toml(mixture_toml('scale = "6 * N"'))
    assert law.scale.text == "6 * N" and law.scale_input is None
    again = Law.from_toml(law.to_toml())
    assert again.scale.text == "6 * N" and again.scale_declared
    assert "scale =" not in Law.named("chinchilla").to_toml()  # a default is not written


def test_catalogue_laws_with_unscaled_inputs_declare_their_scale():
    assert Law.named("data_constrained").scale.text == "6 * N * U * R"  # tokens seen = U * R
    assert Law.named("parallel").scale_input == "N"  # P streams are a count
    assert Law.named("lr_annealing").scale_input == "S1"


@pytest.mark.parametrize("scale, fragment", [
    ('scale = "6 * N * T"', "uses unknown name(s) ['T']"),
    ('scale = "6"', "uses no input"),
    ("scale = 6", "must be an expression over the inputs"),
    ('scale = "N *"', "is not a valid expression"),
])
def test_bad_scale_is_named(scale, fragment, mixture_toml):
    with pytest.raises(LawError, match="scale of law 'mixture'") as info:
        Law.from_toml(mixture_toml(scale))
    assert fragment in str(info.value)


def test_with_scale_names_another_scale_for_a_copy():
    chin = Law.named("chinchilla")
    by_size = chin.with_scale("N")
    assert by_size.scale_input == "N" and chin.scale.text == "6 * N * D"
    assert Law.from_toml(by_size.to_toml()).scale_input == "N"
    with pytest.raises(LawError, match="uses unknown name"):
        chin.with_scale("params")
