"""Law + design -> a hierarchical NumPyro model.

The model, for row *i* of family *f* and run *r*::

    z_p[f]      ~ shared:  Normal(m_p, s_p)            (one value for all families)
                  partial: Normal(z_pop_p, tau_p),  z_pop_p ~ Normal(m_p, s_p),
                           tau_p ~ HalfNormal(t_p)     (partial pooling)
                  none:    Normal(m_p, s_p)            (independent per family)
    theta_p[f]  = prior_p.to_natural(z_p[f])            (see bayescale.priors)
    mu_i        = law(theta[f], x_i / x_ref)
    u_r         ~ Normal(0, sigma_run),  sigma_run ~ HalfNormal(0.05)   (run/seed effect)
    g(y_i)      ~ Normal(g(mu_i) + u_r, sqrt(sigma^2 + se_i^2)),  sigma ~ HalfNormal(0.1)

where ``g`` is the link of the law's outcome (:mod:`bayescale.laws.outcome`): log
for a positive outcome (log-normal noise, effects in relative terms), logit
for one in [0, 1] (logit-normal noise), the identity for a real one,
with a Student-t instead of the normal for ``likelihood="student_t"``.

A real outcome is in the data's own units, so its noise priors are too:
``sigma ~ HalfNormal(0.5 sd(y))`` and ``sigma_run ~ HalfNormal(0.25 sd(y))``
(:data:`REAL_NOISE_SCALE`, :data:`REAL_RUN_SCALE`; ``sd(y)`` over all rows,
the model argument ``noise_unit``).  On the log and logit scales the noise is
already relative, and the constants above apply as they are.

Exact 0 or 1 of a bounded outcome are censored (:class:`Censored`): such a row
contributes the probability that ``g(y_i)`` lies at or beyond ``logit(r)``
(``logit(1 - r)``), with ``r`` the design's resolution, instead of a density.

Each random effect (the partially pooled family parameters, and the run
effects) is sampled centred or non-centred (NumPyro's
:class:`~numpyro.infer.reparam.LocScaleReparam`), chosen from the data by
:func:`choose_centring`: an effect the data pin tightly samples well centred,
one they leave loose forms a funnel that non-centring removes (Betancourt &
Girolami 2015, arXiv:1312.0906).  The choice is made per family: in a data set
where most families have many runs and one has a few (a new family forecast from
its first runs), the former are centred and the latter not.
``parameterization="centred"`` or ``"noncentred"`` forces one for all.

A law whose link scale is an additive offset plus terms that vanish as the
inputs grow (``sigmoid(c - a N^-alpha - b D^-beta)``, ``E - a x^-alpha``) is
fitted with the offset sampled as the law's value at the reference point, where
the data pin it, instead of at infinity; so is an amplitude of ``E + a x^-alpha``
or Chinchilla's law where the data leave its exponent weak
(:mod:`bayescale.laws.anchor`).  The change of variables is exact, so the prior
and the posterior are unchanged.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.handlers import reparam
from numpyro.infer.reparam import LocScaleReparam

from .data.design import DUPLICATES, Design
from .errors import LawError
from .laws.anchor import candidates as anchor_candidates
from .laws.spec import Law


class Censored(dist.Distribution):
    """``base`` (on the link scale) observed only between ``low`` and ``high``.

    A value at or below ``low`` (at or above ``high``) is censored: its log
    probability is ``log P(T <= low)`` (``log P(T >= high)``) under ``base``, a
    probability rather than a density, as in a Tobit model.  Values in between
    have ``base``'s density.  Sampling draws from ``base`` and clips to the bounds,
    so the prior predictive holds censored values as the data do.  ``base`` is a
    Normal (the Student-t's CDF has no gradient in its degrees of freedom in JAX).
    """

    support = dist.constraints.real
    pytree_data_fields = ("base", "low", "high")

    def __init__(self, base: dist.Normal, low, high, *, validate_args=None):
        self.base, self.low, self.high = base, low, high
        shape = jnp.broadcast_shapes(base.batch_shape, jnp.shape(low), jnp.shape(high))
        super().__init__(batch_shape=shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        t = self.base.expand(self.batch_shape).sample(key, sample_shape)
        return jnp.clip(t, self.low, self.high)

    def log_prob(self, value):
        from jax.scipy.special import log_ndtr

        loc, scale = self.base.loc, self.base.scale
        below = log_ndtr((self.low - loc) / scale)
        above = log_ndtr((loc - self.high) / scale)
        # the density at a value clipped inside: finite (and so a finite gradient) in every branch
        inside = self.base.log_prob(jnp.clip(value, self.low, self.high))
        return jnp.where(value <= self.low, below, jnp.where(value >= self.high, above, inside))

LIKELIHOODS = ("normal", "student_t")
OBS = "y_link"  # the observed site: the outcome on its link scale (log or logit)
RUN_SCALE = 0.05  # prior scale of the run/seed effect on the link scale (5% on log y)
NOISE_SCALE = 0.1  # prior scale of the observation noise on the link scale (10% on log y)
REAL_NOISE_SCALE = 0.5  # ... for a real outcome, in units of sd(y): the law explains much of y
REAL_RUN_SCALE = 0.25  # prior scale of the run effect of a real outcome, in units of sd(y)
PARAMETERIZATIONS = {"auto": None, "centred": 1.0, "noncentred": 0.0}


@dataclass(frozen=True)
class ModelConfig:
    """How the model is built from the law and the data.

    Parameters
    ----------
    likelihood : {"normal", "student_t"}
        Noise on the link scale; ``student_t`` is robust to outlying runs.
    parameterization : {"auto", "centred", "noncentred"}
        How random effects are sampled (see this module's docstring).
    min_rows_per_family : int
        Families with fewer rows are refused; 1 forecasts a family from one run plus
        what the others teach.
    check_units : bool
        Refuse an input that looks like mixed units within a family (7 and 7e9).
    duplicates : {"keep", "drop"}
        Rows equal in every column the fit uses are replicates of one configuration:
        ``"keep"`` counts each (and says so once), ``"drop"`` keeps the first of each
        (see :func:`bayescale.data.design.prepare`).

    Examples
    --------
    >>> ModelConfig(likelihood="student_t").likelihood
    'student_t'
    """

    likelihood: str = "normal"
    parameterization: str = "auto"
    min_rows_per_family: int = 2
    check_units: bool = True
    duplicates: str = "keep"

    def __post_init__(self):
        if self.duplicates not in DUPLICATES:
            raise LawError(f"duplicates={self.duplicates!r}; choose one of {DUPLICATES}.")
        if self.likelihood not in LIKELIHOODS:
            raise LawError(f"likelihood={self.likelihood!r}; choose one of {LIKELIHOODS}.")
        key = str(self.parameterization).replace("centered", "centred")
        if key not in PARAMETERIZATIONS:
            raise LawError(f"parameterization={self.parameterization!r}; choose one of "
                           f"{list(PARAMETERIZATIONS)}.")


@dataclass(frozen=True)
class Structure:
    """Static shape of a model: what changes the compiled program."""

    law: Law
    n_families: int
    n_runs: int
    likelihood: str
    centring: float | None  # 1 centred, 0 non-centred, None: per parameter from the data
    refs: tuple  # ((input, reference), ...)

    def pool(self, name: str) -> str:
        mode = self.law.parameters[name].pool
        return "shared" if mode == "partial" and self.n_families == 1 else mode


def structure(law: Law, design: Design, likelihood="normal", parameterization="auto") -> Structure:
    """The static structure of the model of ``law`` on ``design``."""
    if likelihood not in LIKELIHOODS:
        raise LawError(f"likelihood={likelihood!r}; choose one of {LIKELIHOODS}.")
    if likelihood == "student_t" and design.censored:
        raise LawError("likelihood='student_t' cannot score exact 0 or 1 of a bounded outcome "
                       "(censored values need the noise's CDF, which has no gradient in the "
                       "Student-t's degrees of freedom); use likelihood='normal'.")
    key = str(parameterization).replace("centered", "centred")
    if key not in PARAMETERIZATIONS:
        raise LawError(f"parameterization={parameterization!r}; choose one of {list(PARAMETERIZATIONS)}.")
    return Structure(law, design.n_families, len(design.runs), likelihood,
                     PARAMETERIZATIONS[key], tuple(design.refs.items()))


def model_data(design: Design) -> dict:
    """Array arguments of the model (passed to the jitted sampler, not baked in).

    NumPy arrays: building them starts no JAX backend, so the sampler's runtime settings
    (float64, host devices; :mod:`bayescale.inference.runtime`) still apply when it starts.
    """
    real = partial(np.asarray, dtype=np.float64)
    out = {
        "inputs": {k: real(v) for k, v in design.scaled(design.inputs).items()},
        "family_idx": np.asarray(design.family_idx, dtype=np.int64),
        "run_idx": np.asarray(np.maximum(design.run_idx, 0), dtype=np.int64),
        "se_log": real(design.se_log),
        "floor": real(design.floor()),
        "y_link": real(design.y_link()),
        # data, not part of the program, so data sets that differ only in their references
        # share one compiled program (bs.fit_many)
        "refs": {f"{k}_ref": real(v) for k, v in design.refs.items()},
    }
    if design.outcome.kind == "real":
        out["noise_unit"] = real(design.noise_unit())
    if design.weight is not None:
        out["weight"] = real(design.weight)
    if design.censored:
        lo, hi = design.bounds()
        out["y_lo"], out["y_hi"] = real(design.outcome.forward(lo)), real(design.outcome.forward(hi))
    return out


ROW_ARGS = ("family_idx", "run_idx", "se_log", "y_link", "y_lo", "y_hi", "weight")  # per-row, with inputs


def noise_scales(law: Law) -> tuple[float, float]:
    """Prior scales of the observation noise and of the run effect, in units of ``noise_unit``."""
    if law.outcome.kind == "real":
        return REAL_NOISE_SCALE, REAL_RUN_SCALE
    return NOISE_SCALE, RUN_SCALE


def pad_rows(data: dict, rows: int) -> dict:
    """``data`` padded to ``rows`` observations, the padding masked out of the likelihood.

    The padding repeats the first row, so every value stays valid; a ``mask``
    argument marks the real rows.  Data sets of different sizes padded to one
    size share one compiled program (``bs.fit_many(..., pad=True)``).
    """
    n = int(np.shape(data["family_idx"])[0])
    if rows < n:
        raise ValueError(f"pad_rows: cannot pad {n} rows to {rows}.")

    def grow(v):  # numpy, so padding compiles nothing
        v = np.asarray(v)
        return np.concatenate([v, np.broadcast_to(v[:1], (rows - n, *v.shape[1:]))])

    out = dict(data, inputs={k: grow(v) for k, v in data["inputs"].items()})
    out |= {k: grow(data[k]) for k in ROW_ARGS if k in data}
    out["mask"] = np.arange(rows) < n
    return out


def family_values(s: Structure, floor, refs: dict, anchored: str | None = None):
    """Sample every law parameter per family; returns name -> array of shape (families,).

    ``anchored`` names the parameter sampled at the reference point (:func:`anchored_offset`).
    """
    values = {}
    for p in s.law.parameters.values():
        if p.name == anchored:
            continue
        mode = s.pool(p.name)
        if mode == "shared":
            z = numpyro.sample(f"{p.name}_z", dist.Normal(p.prior.loc, p.prior.scale))
            z = jnp.broadcast_to(z, (s.n_families,))
        elif mode == "none":
            with numpyro.plate("family", s.n_families):
                z = numpyro.sample(f"{p.name}_z", dist.Normal(p.prior.loc, p.prior.scale))
        else:
            pop = numpyro.sample(f"{p.name}_pop_z", dist.Normal(p.prior.loc, p.prior.scale))
            tau = numpyro.sample(f"{p.name}_tau", dist.HalfNormal(p.tau))
            with numpyro.plate("family", s.n_families):
                z = numpyro.sample(f"{p.name}_z", dist.Normal(pop, tau))
        values[p.name] = numpyro.deterministic(p.name, p.prior.to_natural(z, floor))
    found = sorted(anchor_candidates(s.law), key=lambda a: a.parameter != anchored)  # sampled first
    for anchor in found:
        values = _anchor_site(s, anchor, values, sampled=anchor.parameter == anchored)
    for name, f in s.law.report.items():
        numpyro.deterministic(name, jnp.broadcast_to(f(values | refs), (s.n_families,)))
    return values


ANCHOR = "_at_ref"  # suffix of the site of the law's value at the reference point, per candidate


def _anchor_site(s: Structure, anchor, values: dict, sampled: bool) -> dict:
    """The law's value at the reference point: sampled in place of the anchored parameter,
    or recorded beside it.

    The site is the value on the link scale, ``m``.  An offset is ``m - rest`` (unit
    Jacobian); an amplitude is ``(exp(m) - rest) / h`` (log-Jacobian ``m - log h``), with
    ``rest`` the law there without the parameter and ``h`` its term there at 1.  Sampled,
    the parameter's declared prior and the log-Jacobian are added as a factor.  Only for
    fitting: drawn forward, the site would not follow the parameter's prior.  Recorded (a
    deterministic site): the value a fit that samples it starts from.
    """
    name, p = anchor.parameter, s.law.parameters[anchor.parameter]
    ones = {k: jnp.ones(s.n_families) for k, _ in s.refs}
    at = values | ones
    rest = anchor.predictor(at | {name: jnp.zeros(s.n_families)})
    h = 1.0 if anchor.kind == "offset" else anchor.predictor(at | {name: jnp.ones(s.n_families)}) - rest
    mode = s.pool(name)
    if mode == "shared":  # one value for all families: anchored at their mean
        rest, h = jnp.mean(rest), jnp.mean(h)
    if not sampled:
        value = values[name][0] if mode == "shared" else values[name]
        total = rest + value * h
        numpyro.deterministic(name + ANCHOR, total if anchor.kind == "offset" else jnp.log(total))
        return values
    # the site's own density is taken back out by the factor, so it only gives starts and draws
    # that initialisation can use (an improper one has none)
    base = dist.Normal(p.prior.loc, p.prior.scale)
    if mode == "partial":
        loc = numpyro.sample(f"{name}_pop_z", dist.Normal(p.prior.loc, p.prior.scale))
        scale = numpyro.sample(f"{name}_tau", dist.HalfNormal(p.tau))
    else:
        loc, scale = p.prior.loc, p.prior.scale
    if mode == "shared":
        m = numpyro.sample(name + ANCHOR, base)
    else:
        with numpyro.plate("family", s.n_families):
            m = numpyro.sample(name + ANCHOR, base)
    if anchor.kind == "offset":
        value, log_jacobian, valid = m - rest, 0.0, True
    else:  # a lognormal amplitude: z = log(value), positive only
        value = (jnp.exp(m) - rest) / h
        valid = value > 0
        value_in = jnp.where(valid, value, 1.0)  # finite gradients where the density is 0
        log_jacobian = m - jnp.log(jnp.abs(h)) - jnp.log(value_in)
        value = value_in
    z = p.prior.to_unconstrained(value)
    log_prior = dist.Normal(loc, scale).log_prob(z) + log_jacobian - base.log_prob(m)
    numpyro.factor(name + "_prior", jnp.sum(jnp.where(valid, log_prior, -jnp.inf)))
    numpyro.deterministic(f"{name}_z", z)
    return values | {name: numpyro.deterministic(name, jnp.broadcast_to(value, (s.n_families,)))}


def anchored_offset(s: Structure, centring: dict, weak: str | None = None) -> str | None:
    """The parameter a fit samples at the reference point (:mod:`bayescale.laws.anchor`).

    An offset, unless it is a partially pooled effect sampled non-centred (its funnel
    would come back); the amplitude named by ``weak`` (the one whose exponent the data
    leave weakly identified, :func:`bayescale.inference.start.weak_amplitude`), under
    the same condition, and not when it is shared by several families.
    """
    for anchor in anchor_candidates(s.law):
        name = anchor.parameter
        if s.pool(name) == "partial" and not fully_centred(centring.get(name, 0.0)):
            continue
        if anchor.kind == "offset":
            return name
        if name == weak and not (s.pool(name) == "shared" and s.n_families > 1):
            return name
    return None


def amplitude_candidates(s: Structure, centring: dict) -> list:
    """The amplitudes :func:`anchored_offset` would anchor if the data left their exponent weak."""
    return [a for a in anchor_candidates(s.law)
            if a.kind == "amplitude" and anchored_offset(s, centring, a.parameter) == a.parameter]


def law_mean(law: Law, values: dict, inputs: dict, xp=jnp):
    """The law's mean outcome, clipped into the outcome's range so its link stays finite."""
    return law.outcome.clip(law.formula(values | inputs, xp), xp)


def _model(inputs, family_idx, run_idx, se_log, floor, refs, y_link=None, mask=None,
           noise_unit=1.0, y_lo=None, y_hi=None, weight=None, *, s: Structure,
           anchored: str | None = None):
    values = family_values(s, floor, refs, anchored)
    mu = law_mean(s.law, {k: v[family_idx] for k, v in values.items()}, inputs)
    mean_log = s.law.outcome.forward(mu, jnp)
    noise_scale, run_scale = noise_scales(s.law)
    if s.n_runs:
        sigma_run = numpyro.sample("sigma_run", dist.HalfNormal(run_scale * noise_unit))
        with numpyro.plate("run", s.n_runs):
            effect = numpyro.sample("run_effect", dist.Normal(0.0, sigma_run))
        mean_log = mean_log + effect[run_idx]
    sigma = numpyro.sample("sigma", dist.HalfNormal(noise_scale * noise_unit))
    scale = jnp.sqrt(sigma**2 + se_log**2)
    if s.likelihood == "student_t":
        nu = numpyro.sample("nu", dist.Gamma(2.0, 0.1))
        noise = dist.StudentT(nu, mean_log, scale)
    else:
        noise = dist.Normal(mean_log, scale)
    if y_lo is not None:  # exact 0 or 1 of a bounded outcome: censored at the resolution
        noise = Censored(noise, y_lo, y_hi)
    # a weighted row's log-likelihood counts ``weight`` times (numpyro's log_likelihood, and so
    # LOO, still reads each row's own density)
    weighted = nullcontext() if weight is None else numpyro.handlers.scale(scale=weight)
    with numpyro.plate("obs", mean_log.shape[0]), weighted:
        numpyro.sample(OBS, noise if mask is None else noise.mask(mask), obs=y_link)


def partial_names(s: Structure) -> list[str]:
    """Parameters with partial pooling in this structure."""
    return [name for name in s.law.parameters if s.pool(name) == "partial"]


RUN = "run_effect"
CENTRED_MIN_ROWS = 10  # family effects centred when every family has this many rows


def fully_centred(value) -> bool:
    """Whether a :func:`choose_centring` value centres the effect of every family."""
    return bool(np.all(np.asarray(value, dtype=float) == 1.0))


def choose_centring(s: Structure, design: Design, sigma: float) -> dict:
    """Centre (1.0) or not (0.0) the family effects and the run effects, from the data.

    Family effects: a family's effect is centred when it has at least
    :data:`CENTRED_MIN_ROWS` rows, non-centred otherwise; the value is 1.0 or 0.0 when
    every family agrees, else a tuple with one of them per family (NumPyro's
    :class:`~numpyro.infer.reparam.LocScaleReparam` takes a centredness per element).
    Measured on ``loss_to_loss`` with one corpus cut to its smallest run and 5 corpora
    of about 100 runs (2 chains x (500 + 500)): every effect non-centred, as one family
    short of the threshold made them before, max R-hat 1.49 and min bulk ESS 4, and the
    short family's runs forecast 6.5% off (median); per family, max R-hat 1.018, min
    bulk ESS 136, and 2.6% off.  The chains start at the MAP point of the all non-centred
    model, carried into this parameterisation by :func:`in_centring`.

    Run effects: centred when every run has several rows and they pin its offset
    (``sigma / sqrt(rows)``, with ``sigma`` the observation noise at the posterior mode)
    tighter than the prior scale of the run spread.  Measured on the demo's simulated ladder (3 families of 50
    rows, runs of 5 rows): about 50 leapfrog steps per draw with all effects
    centred, 400-800 with them non-centred.  A finer per-parameter rule from the
    Laplace approximation at the mode was tried and rejected: the mode of a
    3-family hierarchy is too unstable to decide from.  The earlier measurement
    on the 529-run ``loss_to_loss`` set (about 88 rows per corpus) agrees:
    17 s centred against 61-100 s non-centred.
    """
    if s.centring is not None:
        return dict.fromkeys([*partial_names(s), *([RUN] if s.n_runs else [])], s.centring)
    pinned = np.bincount(design.family_idx, minlength=design.n_families) >= CENTRED_MIN_ROWS
    per_family = 1.0 if pinned.all() else 0.0 if not pinned.any() else tuple(map(float, pinned))
    out = dict.fromkeys(partial_names(s), per_family)
    if s.n_runs:
        per_run = np.bincount(design.run_idx[design.run_idx >= 0]).min()
        run_scale = noise_scales(s.law)[1] * design.noise_unit()
        out[RUN] = 1.0 if per_run > 1 and sigma / np.sqrt(per_run) < run_scale else 0.0
    return out


def in_centring(values: dict, centring: dict) -> dict:
    """``values`` of the all non-centred model (``build(s, {})``: a MAP point, a prior draw),
    with the sampled site of each effect centred per family recomputed for ``centring``.

    NumPyro's ``LocScaleReparam`` with centredness ``c`` samples
    ``u = c loc + (z - loc) / scale^(1 - c)``: ``u = z`` where ``c = 1``, and where
    ``c = 0`` the ``(z - loc) / scale`` that ``values`` hold.  Effects wholly centred or
    non-centred read their own site (``*_z`` or ``*_z_decentered``), both in ``values``.
    """
    out = dict(values)
    for name, value in centring.items():
        if np.ndim(value) == 0 or name == RUN:
            continue
        c = np.asarray(value, dtype=float)
        loc, scale, z = (np.asarray(values[f"{name}{k}"]) for k in ("_pop_z", "_tau", "_z"))
        out[f"{name}_z_decentered"] = c * loc + (z - loc) / scale ** (1 - c)
    return out


def build(s: Structure, centring: dict, anchor: bool = False, weak: str | None = None):
    """The NumPyro model function for ``s``.

    ``centring`` maps each partially pooled parameter, and :data:`RUN` for the run
    effects, to 1 (centred) or 0 (non-centred), or a parameter to a tuple of them, one
    per family; missing entries are non-centred.
    ``anchor=True`` samples the law's value at the reference point in place of a
    parameter (:func:`anchored_offset`, which ``weak`` informs): for fitting only, since
    that site has no prior of its own to draw from (the prior predictive and the MAP
    search use ``anchor=False``).
    The model's ``anchored`` attribute names that parameter, or is ``None``; ``walled``
    says whether the unconstrained space holds points of zero density (an amplitude
    sampled at the reference is 0 at a wall), which chains must not start at.
    """
    sites = [*partial_names(s), *([RUN] if s.n_runs else [])]
    config = {}
    for site in sites:
        value = centring.get(site, 0.0)
        if not fully_centred(value):
            per_family = np.ndim(value) > 0  # a tuple of one centredness per family
            config[site if site == RUN else f"{site}_z"] = LocScaleReparam(
                centered=np.asarray(value, dtype=float) if per_family else 0)
    anchored = anchored_offset(s, centring, weak) if anchor else None
    model = reparam(partial(_model, s=s, anchored=anchored), config=config)
    model.anchored = anchored
    model.walled = any(a.parameter == anchored and a.kind == "amplitude" for a in anchor_candidates(s.law))
    return model


def dims(s: Structure) -> dict:
    """ArviZ dims of the posterior variables."""
    out = {OBS: ["obs"], "run_effect": ["run"], "run_effect_decentered": ["run"]}
    for name in s.law.parameters:
        out[name] = ["family"]
        if s.pool(name) != "shared":
            out[f"{name}_z"] = ["family"]
            out[f"{name}_z_decentered"] = ["family"]
    out |= {name: ["family"] for name in s.law.report}
    return out
