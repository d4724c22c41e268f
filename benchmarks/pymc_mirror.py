"""The model of a bayescale fit, written again in PyMC: same priors, same data, same parameterisation.

Used by ``bench_peers.py`` to sample one posterior with bayescale (NumPyro
NUTS), with nutpie and with PyMC's default NUTS.  The mirror reads everything
from the fitted :class:`bayescale.Fit`: the law's priors and pooling, the
centring bayescale chose, the rescaled inputs and the outcome on its link
scale, so the three samplers see one posterior.  It covers what the three
benchmark cases use (normal likelihood; shared, per-family and partially
pooled parameters; known standard errors; no run effects) and refuses the rest.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayescale.model import NOISE_SCALE, model_data


def _values(fit, model_args: dict) -> dict:
    """Every law parameter per family on the natural scale, as PyMC variables."""
    s, centring, n = fit.structure, fit.settings.centring, fit.design.n_families
    values = {}
    for p in s.law.parameters.values():
        mode = s.pool(p.name)
        prior = p.prior
        if mode == "shared":
            z = pt.repeat(pm.Normal(f"{p.name}_z", prior.loc, prior.scale), n)
        elif mode == "none":
            z = pm.Normal(f"{p.name}_z", prior.loc, prior.scale, dims="family")
        else:
            pop = pm.Normal(f"{p.name}_pop_z", prior.loc, prior.scale)
            tau = pm.HalfNormal(f"{p.name}_tau", p.tau)
            if centring.get(p.name, 0.0) == 1.0:
                z = pm.Normal(f"{p.name}_z", pop, tau, dims="family")
            else:
                raw = pm.Normal(f"{p.name}_z_decentered", 0.0, 1.0, dims="family")
                z = pm.Deterministic(f"{p.name}_z", pop + tau * raw, dims="family")
        values[p.name] = pm.Deterministic(p.name, prior.to_natural(z, model_args["floor"], pt),
                                          dims="family")
    return values


def pymc_model(fit) -> pm.Model:
    """A PyMC model with the posterior of ``fit``'s model (see the module docstring)."""
    s = fit.structure
    if s.n_runs or s.likelihood != "normal":
        raise NotImplementedError("the PyMC mirror covers normal likelihoods without run effects")
    args = {k: (np.asarray(v) if not isinstance(v, dict) else {i: np.asarray(x) for i, x in v.items()})
            for k, v in model_data(fit.design).items()}
    coords = {"family": list(fit.design.families), "obs": np.arange(len(fit.design.y))}
    with pm.Model(coords=coords) as model:
        values = _values(fit, args)
        idx = args["family_idx"]
        mu = s.law.formula({k: v[idx] for k, v in values.items()} | args["inputs"], pt)
        # the outcome's clip (Outcome.clip), with NumPy's float limits: PyTensor has no finfo
        tiny, eps = np.finfo(float).tiny, np.finfo(float).eps
        mu = pt.maximum(mu, tiny) if s.law.outcome.kind == "positive" else pt.clip(mu, tiny, 1 - eps)
        mean_link = s.law.outcome.forward(mu, pt)
        sigma = pm.HalfNormal("sigma", NOISE_SCALE)
        scale = pt.sqrt(sigma**2 + args["se_log"] ** 2)
        pm.Normal("y_link", mean_link, scale, observed=args["y_link"], dims="obs")
    return model
