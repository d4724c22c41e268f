"""Tests for bayescale.model: ModelConfig validation, the model's static structure, the centring
rule, padding rows out of the likelihood, and the sites of the built model."""

from __future__ import annotations

import jax
import numpy as np
import numpyro
import pandas as pd
import pytest
from numpyro.infer.util import log_density

import bayescale as bs
from bayescale.data.design import prepare
from bayescale.errors import LawError
from bayescale.laws.spec import resolve
from bayescale.model import (
    CENTRED_MIN_ROWS,
    OBS,
    RUN_SCALE,
    ModelConfig,
    build,
    choose_centring,
    model_data,
    pad_rows,
    partial_names,
    structure,
)

PARTIAL = {"E": "partial", "a": "partial"}  # three families: pool explicitly (fitting would demote)


def _design(pool=PARTIAL, run=None, **simulate):
    law = resolve("power").with_pooling(pool)
    df = bs.datasets.simulate("power", **{"families": 3, "seeds": 1, "seed": 0, **simulate})
    return law, prepare(df, law, "loss", "x", group="family", run=run)


# ---- ModelConfig -----------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["cauchy", "Normal", ""])
def test_bad_likelihood_names_the_value(bad):
    with pytest.raises(LawError, match=f"likelihood={bad!r}"):
        ModelConfig(likelihood=bad)


@pytest.mark.parametrize("bad", ["sideways", "non-centred", None])
def test_bad_parameterization_names_the_value(bad):
    with pytest.raises(LawError, match=f"parameterization={bad!r}"):
        ModelConfig(parameterization=bad)


@pytest.mark.parametrize("ok", ["auto", "centred", "noncentred", "centered", "noncentered"])
def test_parameterization_accepts_both_spellings(ok):
    assert ModelConfig(parameterization=ok).parameterization == ok


def test_model_config_errors_are_value_errors():
    with pytest.raises(ValueError):
        ModelConfig(likelihood="cauchy")


# ---- structure -------------------------------------------------------------------------------
def test_structure_of_a_design():
    law, design = _design(run="run")
    s = structure(law, design)
    assert (s.n_families, s.n_runs, s.likelihood, s.centring) == (3, 15, "normal", None)
    assert s.refs == (("x", design.refs["x"]),)
    assert s.law is law
    assert partial_names(s) == ["E", "a"]
    assert [s.pool(p) for p in ("E", "a", "alpha")] == ["partial", "partial", "shared"]


@pytest.mark.parametrize(("name", "value"), [("auto", None), ("centred", 1.0), ("centered", 1.0),
                                             ("noncentred", 0.0), ("noncentered", 0.0)])
def test_structure_parameterization(name, value):
    law, design = _design()
    assert structure(law, design, "student_t", name).centring == value
    assert structure(law, design, "student_t", name).likelihood == "student_t"


def test_structure_refuses_bad_options():
    law, design = _design()
    with pytest.raises(LawError, match="likelihood='laplace'"):
        structure(law, design, likelihood="laplace")
    with pytest.raises(LawError, match="parameterization='sideways'"):
        structure(law, design, parameterization="sideways")


def test_one_family_pools_partial_parameters_as_shared():
    law = resolve("power")
    df = bs.datasets.simulate("power", families=1, seeds=1, seed=0)
    s = structure(law, prepare(df, law, "loss", "x"))
    assert s.n_families == 1 and partial_names(s) == []
    assert s.pool("E") == "shared" and law.parameters["E"].pool == "partial"


# ---- choose_centring -------------------------------------------------------------------------
def test_family_effects_centred_with_many_rows_per_family():
    law, design = _design()  # 25 rows per family
    assert np.bincount(design.family_idx).min() >= CENTRED_MIN_ROWS
    assert choose_centring(structure(law, design), design, sigma=0.01) == {"E": 1.0, "a": 1.0}


def test_family_effects_non_centred_with_few_rows_per_family():
    law, design = _design(sizes=(2e7, 5e7), tokens_per_param=(5, 10, 20, 40))  # 8 rows per family
    assert np.bincount(design.family_idx).min() < CENTRED_MIN_ROWS
    assert choose_centring(structure(law, design), design, sigma=0.01) == {"E": 0.0, "a": 0.0}


def _one_family_short():
    law = resolve("power").with_pooling(PARTIAL)
    df = bs.datasets.simulate("power", families=3, seeds=1, seed=0)
    df = df.drop(df.index[(df["family"] == "f2")][CENTRED_MIN_ROWS - 1:])  # f2 keeps 9 rows
    return law, prepare(df, law, "loss", "x", group="family")


def test_one_family_short_of_the_threshold_alone_is_non_centred():
    law, design = _one_family_short()
    assert list(design.families) == ["f0", "f1", "f2"]
    mixed = (1.0, 1.0, 0.0)
    assert choose_centring(structure(law, design), design, sigma=0.01) == {"E": mixed, "a": mixed}


def test_a_mixed_centring_reparameterises_only_the_short_family():
    """LocScaleReparam with centredness c draws u ~ N(c loc, scale^c) and sets
    z = loc + scale^(1 - c) (u - c loc): z = u where c = 1, z = loc + scale u where c = 0."""
    law, design = _one_family_short()
    s = structure(law, design)
    model = build(s, choose_centring(s, design, sigma=0.01))
    trace = numpyro.handlers.trace(numpyro.handlers.seed(model, jax.random.PRNGKey(0))).get_trace(
        **model_data(design))
    u, z = (np.asarray(trace[name]["value"]) for name in ("E_z_decentered", "E_z"))
    loc, scale = (float(trace[name]["value"]) for name in ("E_pop_z", "E_tau"))
    np.testing.assert_allclose(z[:2], u[:2], rtol=1e-12)
    np.testing.assert_allclose(z[2], loc + scale * u[2], rtol=1e-12)


def test_run_effects_centred_when_the_rows_pin_them():
    """Runs of 5 rows: centred while sigma / sqrt(5) < RUN_SCALE, non-centred beyond."""
    law, design = _design(run="run")
    s = structure(law, design)
    edge = RUN_SCALE * np.sqrt(5)
    assert choose_centring(s, design, sigma=0.01)["run_effect"] == 1.0
    assert choose_centring(s, design, sigma=0.99 * edge)["run_effect"] == 1.0
    assert choose_centring(s, design, sigma=1.01 * edge)["run_effect"] == 0.0


def test_run_effects_of_one_row_are_non_centred():
    law, design = _design(run="run", tokens_per_param=(20,), sizes=(2e7, 5e7, 1.2e8, 3e8, 7e8, 1.5e9))
    s = structure(law, design)
    assert s.n_runs == 18
    assert choose_centring(s, design, sigma=1e-6)["run_effect"] == 0.0


@pytest.mark.parametrize(("name", "value"), [("centred", 1.0), ("noncentred", 0.0)])
def test_a_forced_parameterization_applies_to_every_effect(name, value):
    law, design = _design(run="run", sizes=(2e7, 5e7))  # few rows: auto would not centre E and a
    s = structure(law, design, parameterization=name)
    assert choose_centring(s, design, sigma=10.0) == {"E": value, "a": value, "run_effect": value}


# ---- pad_rows --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    law, design = _design(run="run")
    return structure(law, design), model_data(design)


def test_pad_rows_shapes_and_mask(small):
    _, data = small
    n = len(data["y_link"])
    padded = pad_rows(data, n + 4)
    for key in ("family_idx", "run_idx", "se_log", "y_link"):
        assert padded[key].shape == (n + 4,)
        np.testing.assert_array_equal(np.asarray(padded[key][:n]), np.asarray(data[key]))
        np.testing.assert_array_equal(np.asarray(padded[key][n:]), np.repeat(np.asarray(data[key][:1]), 4))
    assert padded["inputs"]["x"].shape == (n + 4,)
    np.testing.assert_array_equal(np.asarray(padded["mask"]), np.arange(n + 4) < n)
    assert padded["refs"] is data["refs"] and "mask" not in data  # the data passed in are unchanged
    assert np.asarray(pad_rows(data, n)["mask"]).all()


def test_pad_rows_refuses_to_shrink(small):
    _, data = small
    with pytest.raises(ValueError, match="cannot pad 75 rows to 74"):
        pad_rows(data, 74)


def test_padding_adds_nothing_to_the_log_density(small):
    s, data = small
    model = build(s, {})
    trace = numpyro.handlers.trace(numpyro.handlers.seed(model, jax.random.PRNGKey(1))).get_trace(**data)
    latent = {k: v["value"] for k, v in trace.items() if v["type"] == "sample" and not v["is_observed"]}
    plain = float(log_density(model, (), data, latent)[0])
    padded = float(log_density(model, (), pad_rows(data, len(data["y_link"]) + 10), latent)[0])
    assert np.isfinite(plain)
    assert padded == pytest.approx(plain, rel=1e-12)
    # the padding repeats the first row: unmasked, it would count that row 10 more times
    unmasked = {k: v for k, v in pad_rows(data, len(data["y_link"]) + 10).items() if k != "mask"}
    assert float(log_density(model, (), unmasked, latent)[0]) != pytest.approx(plain, rel=1e-6)


# ---- build -----------------------------------------------------------------------------------
def _sites(model, data):
    trace = numpyro.handlers.trace(numpyro.handlers.seed(model, jax.random.PRNGKey(0))).get_trace(**data)
    return {name: (site["type"], np.shape(site["value"])) for name, site in trace.items()
            if site["type"] in ("sample", "deterministic")}, trace


def test_build_non_centred_sites(small):
    s, data = small
    sites, trace = _sites(build(s, {}), data)
    expected = {
        "E_pop_z": ("sample", ()), "E_tau": ("sample", ()), "E_z_decentered": ("sample", (3,)),
        "E_z": ("deterministic", (3,)), "a_pop_z": ("sample", ()), "a_tau": ("sample", ()),
        "a_z_decentered": ("sample", (3,)), "a_z": ("deterministic", (3,)), "alpha_z": ("sample", ()),
        "E": ("deterministic", (3,)), "a": ("deterministic", (3,)), "alpha": ("deterministic", (3,)),
        "A": ("deterministic", (3,)), "a_at_ref": ("deterministic", (3,)), "sigma_run": ("sample", ()),
        "run_effect_decentered": ("sample", (15,)), "run_effect": ("deterministic", (15,)),
        "sigma": ("sample", ()), "y_link": ("sample", (75,)),
    }
    assert sites == expected
    assert trace["y_link"]["is_observed"]
    np.testing.assert_array_equal(np.asarray(trace["y_link"]["value"]), np.asarray(data["y_link"]))


def test_build_centred_sites(small):
    s, data = small
    sites, _ = _sites(build(s, {"E": 1.0, "a": 1.0, "run_effect": 1.0}), data)
    assert not any(name.endswith("_decentered") for name in sites)
    assert sites["E_z"] == sites["a_z"] == ("sample", (3,))
    assert sites["run_effect"] == ("sample", (15,))


def test_build_centres_only_the_effects_asked(small):
    s, data = small
    sites, _ = _sites(build(s, {"E": 1.0}), data)
    assert sites["E_z"] == ("sample", (3,)) and "E_z_decentered" not in sites
    assert "a_z_decentered" in sites and "run_effect_decentered" in sites


def test_build_student_t_adds_nu_and_no_runs_drops_run_sites():
    law, design = _design()
    s = structure(law, design, likelihood="student_t")
    sites, _ = _sites(build(s, {}), model_data(design))
    assert sites["nu"] == ("sample", ())
    assert not {"sigma_run", "run_effect", "run_effect_decentered"} & set(sites)
    natural = np.asarray(_sites(build(s, {}), model_data(design))[1]["E"]["value"])
    assert (natural < design.floor()).all()  # the floor prior keeps E below each family's lowest loss


# ---- outcomes: censored exact 0 and 1, real values --------------------------------------------
def _loglik(law, design, latent):
    """Per-row log-likelihood the model records (for LOO) at fixed latent values."""
    from numpyro.infer.util import log_likelihood

    from bayescale.model import OBS

    s = structure(law, design)
    samples = {k: np.asarray([v], dtype=float) for k, v in latent.items()}
    return np.asarray(log_likelihood(build(s, {}), samples, **model_data(design))[OBS])[0]


def test_censored_log_likelihood_matches_a_hand_computation():
    """Exact 0 and 1 score the logit-normal's tail mass beyond logit(r) and logit(1 - r); the
    others its density: checked against scipy.stats at fixed parameters."""
    import pandas as pd
    from scipy import stats
    from scipy.special import expit, logit

    law = resolve("coverage")
    k = np.array([1.0, 2, 4, 8, 16, 32])
    acc = np.array([0.0, 0.1, 0.3, 0.6, 0.9, 1.0])
    design = prepare(pd.DataFrame({"k": k, "acc": acc}), law, "acc", "k")
    r = 0.05  # half of 0.1, the value closest to 0 or 1 inside (0, 1)
    np.testing.assert_allclose(design.resolution, [r])
    c, beta, sigma = 0.7, 0.4, 0.3
    got = _loglik(law, design, {"c_z": np.log(c), "beta_z": np.log(beta), "sigma": sigma})
    mean = logit(np.exp(-c * (k / design.refs["k"]) ** -beta))
    want = stats.norm.logpdf(logit(np.clip(acc, r, 1 - r)), mean, sigma)
    want[0] = stats.norm.logcdf(logit(r), mean[0], sigma)
    want[-1] = stats.norm.logsf(logit(1 - r), mean[-1], sigma)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    assert expit(mean[-1]) < 1  # a mean in range, yet the row at 1 is a probability, not a density
    assert got[0] < 0 and got[-1] < 0


def test_censored_prior_predictive_stays_in_range_and_holds_bounds():
    import pandas as pd

    law = resolve("coverage")
    df = pd.DataFrame({"k": [1.0, 2, 4, 8, 16, 32], "acc": [0.0, 0.1, 0.3, 0.6, 0.9, 1.0]})
    design = prepare(df, law, "acc", "k")
    data = {k: v for k, v in model_data(design).items() if k != "y_link"}
    sim = numpyro.infer.Predictive(build(structure(law, design), {}), num_samples=400)(
        jax.random.PRNGKey(0), **data)["y_link"]
    lo, hi = data["y_lo"][0], data["y_hi"][0]
    assert float(sim.min()) >= lo and float(sim.max()) <= hi
    assert bool((sim == lo).any()) and bool((sim == hi).any())  # censored values are simulated


def test_censored_values_refuse_student_t():
    import pandas as pd

    law = resolve("coverage")
    df = pd.DataFrame({"k": [1.0, 2, 4], "acc": [0.0, 0.5, 0.7]})
    with pytest.raises(LawError, match="student_t.*exact 0 or 1"):
        structure(law, prepare(df, law, "acc", "k"), likelihood="student_t")


def test_pad_rows_pads_the_censoring_bounds():
    import pandas as pd

    law = resolve("coverage")
    df = pd.DataFrame({"k": [1.0, 2, 4], "acc": [0.0, 0.5, 0.7]})
    padded = pad_rows(model_data(prepare(df, law, "acc", "k")), 5)
    assert padded["y_lo"].shape == padded["y_hi"].shape == (5,)


def test_real_log_likelihood_and_noise_prior_in_data_units():
    """Identity link: the density of y itself; the noise prior's scale is 0.5 sd(y)."""
    import pandas as pd
    from scipy import stats

    from bayescale.model import REAL_NOISE_SCALE

    law = resolve("offset_power")
    x = np.geomspace(1e6, 1e9, 6)
    y = np.array([-3.1, -2.4, -2.0, -1.7, -1.6, -1.45])
    design = prepare(pd.DataFrame({"x": x, "logp": y}), law, "logp", "x")
    E, a, alpha, sigma = -1.2, 0.6, 0.3, 0.2
    got = _loglik(law, design, {"E_z": E, "a_z": np.log(a), "alpha_z": np.log(alpha), "sigma": sigma})
    want = stats.norm.logpdf(y, E - a * (x / design.refs["x"]) ** -alpha, sigma)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    trace = numpyro.handlers.trace(numpyro.handlers.seed(build(structure(law, design), {}),
                                                         jax.random.PRNGKey(0))).get_trace(
        **model_data(design))
    assert float(trace["sigma"]["fn"].scale) == pytest.approx(REAL_NOISE_SCALE * np.std(y))


# ---- the offset sampled at the reference point (bayescale.laws.anchor) ----------------------
def _offset_design(pool):
    rng = np.random.default_rng(0)
    x = np.tile(np.geomspace(1e6, 1e9, 12), 3)
    fam = np.repeat(["f0", "f1", "f2"], 12)
    y = -0.5 - 2.0 * (x / 3e7) ** -0.3 + rng.normal(0, 0.02, x.size)
    df = pd.DataFrame({"x": x, "y": y, "family": fam})
    law = resolve("offset_power").with_pooling(pool)
    design = prepare(df, law, "y", "x", group="family")
    return structure(law, design), model_data(design)


def _anchored_density_matches(s, data, centring):
    anchored = build(s, centring, anchor=True)
    assert anchored.anchored == "E"
    trace = numpyro.handlers.trace(numpyro.handlers.seed(build(s, centring), jax.random.PRNGKey(3))
                                   ).get_trace(**data)
    plain_latent = {k: v["value"] for k, v in trace.items() if v["type"] == "sample" and not v["is_observed"]}
    # the same point in the anchored coordinates: the offset's value at the reference instead of it
    at_ref = trace["E_at_ref"]["value"]
    latent = {k: v for k, v in plain_latent.items() if not k.startswith("E_z")}
    latent["E_at_ref"] = at_ref
    moved = numpyro.handlers.trace(numpyro.handlers.substitute(anchored, latent)).get_trace(**data)
    np.testing.assert_allclose(np.asarray(moved["E"]["value"]), np.asarray(trace["E"]["value"]), rtol=1e-10)
    # unit Jacobian: the densities agree exactly
    assert float(log_density(anchored, (), data, latent)[0]) == pytest.approx(
        float(log_density(build(s, centring), (), data, plain_latent)[0]), rel=1e-10)


@pytest.mark.parametrize("pool", ["shared", "none", "partial"])
@pytest.mark.parametrize("others", ["shared", "partial"])
def test_the_anchored_offset_leaves_the_density_unchanged(pool, others):
    s, data = _offset_design({"E": pool, "a": others})
    _anchored_density_matches(s, data, {"E": 1.0})


def test_a_non_centred_offset_is_not_anchored():
    s, data = _offset_design({"E": "partial", "a": "shared"})
    assert build(s, {"E": 0.0}, anchor=True).anchored is None
    assert build(s, {"E": 1.0}, anchor=False).anchored is None
    sites, _ = _sites(build(s, {}), data)
    assert sites["E_at_ref"] == ("deterministic", (3,))  # recorded: where an anchored fit starts
    s, data = _offset_design({"E": "shared", "a": "partial"})
    sites, _ = _sites(build(s, {}), data)
    assert sites["E_at_ref"] == ("deterministic", ())  # a shared offset: one value


def _power_design(families):
    rng = np.random.default_rng(1)
    x = np.tile(np.geomspace(1e6, 1e9, 12), families)
    fam = np.repeat([f"f{k}" for k in range(families)], 12)
    y = 2.0 + 3.0 * (x / 3e7) ** -0.3 * np.exp(rng.normal(0, 0.01, x.size))
    df = pd.DataFrame({"x": x, "loss": y, "family": fam})
    law = resolve("power").with_pooling({"E": "partial", "a": "partial"})
    design = prepare(df, law, "loss", "x", group="family" if families > 1 else None)
    return structure(law, design), model_data(design)


@pytest.mark.parametrize("families", [1, 3])
def test_the_anchored_amplitude_leaves_the_density_unchanged(families):
    """a = (exp(m) - E) / h with m the log of the law at the reference: the model adds the
    prior of a and the log-Jacobian, so the density at the same point is the plain one."""
    s, data = _power_design(families)
    centring = {"E": 1.0, "a": 1.0}
    assert build(s, centring, anchor=True).anchored is None  # only where the data are weak
    anchored = build(s, centring, anchor=True, weak="a")
    assert anchored.anchored == "a"
    plain = build(s, centring)
    trace = numpyro.handlers.trace(numpyro.handlers.seed(plain, jax.random.PRNGKey(5))).get_trace(**data)
    plain_latent = {k: v["value"] for k, v in trace.items() if v["type"] == "sample" and not v["is_observed"]}
    latent = {k: v for k, v in plain_latent.items() if k != "a_z"} | {"a_at_ref": trace["a_at_ref"]["value"]}
    moved = numpyro.handlers.trace(numpyro.handlers.substitute(anchored, latent)).get_trace(**data)
    np.testing.assert_allclose(np.asarray(moved["a"]["value"]), np.asarray(trace["a"]["value"]), rtol=1e-10)
    # the density in the anchored coordinates carries the Jacobian d(a_z)/d(m) = exp(m) / (a h)
    expected = float(log_density(plain, (), data, plain_latent)[0]) + float(
        np.sum(np.log(np.exp(np.asarray(latent["a_at_ref"])) / np.asarray(trace["a"]["value"]))))
    assert float(log_density(anchored, (), data, latent)[0]) == pytest.approx(expected, rel=1e-10)


def test_an_anchored_amplitude_has_zero_density_below_zero():
    s, data = _power_design(1)
    anchored = build(s, {}, anchor=True, weak="a")
    seeded = numpyro.handlers.seed(build(s, {}), jax.random.PRNGKey(5))
    trace = numpyro.handlers.trace(seeded).get_trace(**data)
    latent = {k: v["value"] for k, v in trace.items()
              if v["type"] == "sample" and not v["is_observed"] and k != "a_z"}
    # the value at the reference below the floor E: the amplitude would be negative
    latent["a_at_ref"] = np.log(0.5 * float(trace["E"]["value"][0]))
    assert float(log_density(anchored, (), data, latent)[0]) == -np.inf


def test_a_shared_amplitude_of_several_families_is_not_anchored():
    df = pd.DataFrame({"x": np.tile([1e6, 1e7, 1e8], 2), "loss": np.linspace(3, 2.5, 6),
                       "family": np.repeat(["f0", "f1"], 3)})
    law = resolve("power").with_pooling({"a": "shared", "E": "partial"})
    s = structure(law, prepare(df, law, "loss", "x", group="family"))
    assert build(s, {"E": 1.0}, anchor=True, weak="a").anchored is None


def test_a_weighted_row_counts_its_weight_in_the_log_density():
    """With weights w (mean 1), the model's log joint is the prior plus sum_i w_i log p(y_i | theta)."""
    from numpyro.infer.util import log_likelihood

    law = resolve("power")
    df = bs.datasets.simulate("power", families=1, seeds=1, seed=0)
    w = np.linspace(0.5, 3.0, len(df))
    plain = prepare(df, law, "loss", "x")
    weighted = prepare(df.assign(w=w), law, "loss", "x", weight="w")
    s = structure(law, plain)
    model = build(s, {})
    trace = numpyro.handlers.trace(numpyro.handlers.seed(model, jax.random.PRNGKey(1))).get_trace(
        **model_data(plain))
    point = {k: v["value"] for k, v in trace.items() if v["type"] == "sample" and not v["is_observed"]}
    rows = np.asarray(log_likelihood(model, {k: v[None] for k, v in point.items()},
                                     **model_data(plain))[OBS][0])
    base = float(log_density(model, (), model_data(plain), point)[0])
    scaled = float(log_density(model, (), model_data(weighted), point)[0])
    assert scaled == pytest.approx(base - rows.sum() + np.sum(w / w.mean() * rows), rel=1e-12)
    # the pointwise densities that LOO reads are the rows' own
    again = log_likelihood(model, {k: v[None] for k, v in point.items()}, **model_data(weighted))[OBS][0]
    np.testing.assert_allclose(np.asarray(again), rows, rtol=1e-12)
