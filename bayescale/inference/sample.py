"""The one sampling interface: ``sample(model, data, config) -> DataTree``, whatever the backend.

:func:`sample` runs the backend that ``config.backend`` names and converts its
draws to an ArviZ DataTree; :func:`run_design` is a whole single fit of a
validated design: MAP start, centring chosen from the data, target acceptance,
device, sampling.  Stacked fits of many data sets run through
:mod:`bayescale.inference.stacked`, with the same conversion.
"""

from __future__ import annotations

import importlib

import arviz_base as azb
import jax
import numpy as np

from ..data.design import Design
from ..model import RUN, Structure, build, choose_centring, dims, in_centring, partial_names
from . import runtime
from .config import SamplerConfig
from .device import choose_device
from .nuts import latent_sites
from .progress import Chains, current
from .start import find_map, weak_amplitude

BACKENDS = ("numpyro", "lowrank")  # modules of this package, imported when first used


def backend(name: str):
    """The module of backend ``name`` (BlackJAX, which starts JAX when imported, only on use)."""
    return importlib.import_module(f".{'nuts' if name == 'numpyro' else name}", __package__)


def labels(design: Design, s: Structure) -> dict:
    """Coordinates, dimensions and constant data of a fit's DataTree."""
    return {
        "coords": {"family": design.families, "run": design.runs, "obs": np.arange(len(design.y))},
        "dims": dims(s),
        "constant_data": {"family_idx": design.family_idx, "run_idx": design.run_idx,
                          "se_log": design.se_log, **{f"input_{k}": v for k, v in design.inputs.items()}},
    }


def to_datatree(draws, design: Design, s: Structure):
    """ArviZ DataTree of a NumPyro run or of a :class:`~bayescale.inference.nuts.Draws` adapter."""
    # pred_dims given, so ArviZ does not re-trace the model
    return azb.from_numpyro(draws, log_likelihood=True, pred_dims={}, **labels(design, s))


def sample(model, data: dict, config: SamplerConfig, *, init: dict, target_accept: float,
           design: Design, structure: Structure, dense: tuple = ()):
    """Sample ``model`` on ``data`` with ``config``'s backend from ``init``; an ArviZ DataTree."""
    runtime.ensure()
    engine = backend(config.backend)
    with runtime.one_blas_thread():  # converted inside: the draws are ready when it ends
        if getattr(engine, "REPORTS", False):
            draws = engine.sample(model, data, init, config, target_accept, dense)
        else:  # a backend without progress of its own: a line when it starts and when it ends
            with Chains(current(config.progress), config.chains, config.warmup, config.draws) as shown:
                shape = None if structure is None else program_shape(model, data, structure)
                draws = engine.sample(model, data, init, config, target_accept, dense, shape=shape)
                shown.divergences = int(np.asarray(draws.get_sample_stats()["diverging"]).sum())
        return to_datatree(draws, design, structure)


def program_shape(model, data: dict, s: Structure) -> tuple:
    """What decides the compiled program of ``model`` on ``data``: the law (its whole text),
    the model's static structure, which effects are non-centred, and the data's shapes and
    types (every value in ``data`` is an argument of the program, references included)."""
    arrays = tuple((jax.tree_util.keystr(path), np.shape(v), np.asarray(v).dtype.str)
                   for path, v in jax.tree_util.tree_leaves_with_path(data))
    noncentred = tuple(sorted(getattr(model, "config", None) or ()))
    return (s.law.to_toml(), s.n_families, s.n_runs, s.likelihood, tuple(k for k, _ in s.refs),
            noncentred, getattr(model, "anchored", None), arrays)


def dense_sites(mode: dict) -> tuple:
    """Sites in the dense block of the mass matrix: all but the run effects, which may be many.

    Putting a few run effects in was tried (lr_annealing, 6 runs): bulk ESS fell
    from 447 to 260, so it is not done.
    """
    return tuple(k for k in mode if not k.startswith(RUN))


def default_target_accept(s: Structure, target_accept: float | None) -> float:
    """0.99 with random effects (their funnels), 0.95 otherwise.

    Random effects (run effects or partially pooled parameters) otherwise cost an
    occasional divergent transition (1 in 4000 draws on the demo ladder at 0.95,
    none at 0.99 over three seeds, for about 1.6x the leapfrog steps).
    """
    if target_accept is not None:
        return target_accept
    return 0.99 if (s.n_runs or partial_names(s)) else 0.95


def run_design(s: Structure, design: Design, data: dict, config: SamplerConfig) -> tuple:
    """One fit: MAP start, centring, target acceptance, device, NUTS.

    Returns the DataTree and what was chosen (``centring``, ``target_accept``, ``device``).
    """
    runtime.ensure()
    # the all-non-centred mode holds both forms of every effect, so it starts either
    plain = build(s, {})
    shape = program_shape(plain, data, s)
    mode = find_map(plain, data, config.seed, shape)
    centring = choose_centring(s, design, float(mode["sigma"]))
    weak = weak_amplitude(s, centring, plain, data, mode, latent_sites(plain, data), ("hessian", *shape))
    accept = default_target_accept(s, config.target_accept)
    device = choose_device(config.device, rows=len(design.y))
    model = build(s, centring, anchor=True, weak=weak)
    idata = sample(model, data, config.with_(device=device), init=in_centring(mode, centring),
                   target_accept=accept,
                   design=design, structure=s, dense=dense_sites(mode))
    runtime.bound_memory()
    return idata, {"centring": centring, "target_accept": accept, "device": device,
                   "anchored": model.anchored}
