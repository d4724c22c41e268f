"""``bs.fit_many``: one law fitted to many data sets, compiled once per model shape.

Simulation-based calibration replicates, backtest folds, bootstrap resamples
and sweeps over tasks or families fit the same law again and again.  A loop
of :func:`bayescale.fit` compiles its MAP search and its sampler anew for
every data set; here data sets whose models have the same shape (the same
law, pooling, numbers of rows, families and runs, and input references) share
one compiled MAP search (:func:`bayescale.inference.map_program`) and one
compiled NUTS run per parameterisation (:func:`bayescale.inference.nuts_program`),
with the data as arguments.  Every fit still gets its own MAP start, its own
centring choice, its own warm-up, and the same diagnostics gate and
:class:`~bayescale.fit.Fit` as a single fit.

Chains run vectorised inside the program (one compiled program, no per-fit
recompilation); their draws equal a single fit's in distribution but not
bit for bit.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import jax
import numpy as np

from . import inference
from .errors import BayescaleError
from .fit import Fit, default_target_accept, dense_sites, finish, setup
from .law import resolve
from .model import build, choose_centring, partial_names


def _shape_key(law, s, data: dict) -> tuple:
    """What decides the compiled program: pooling, sizes, references and array shapes."""
    shapes = tuple((path, np.shape(v)) for path, v in jax.tree_util.tree_leaves_with_path(data))
    pooling = tuple(sorted((p, s.pool(p)) for p in law.parameters))
    return (pooling, s.n_families, s.n_runs, s.likelihood, s.centring, s.refs, tuple(partial_names(s)),
            str(shapes))


def fit_many(frames, law="chinchilla", y: str = "loss", x=None, group=None, run=None, se=None,
             pool=None, likelihood: str = "normal", chains: int = 4, warmup: int = 1000,
             draws: int = 1000, seed: int = 0, parameterization: str = "auto",
             min_rows_per_family: int = 2, check_units: bool = True,
             target_accept: float | None = None):
    """Fit ``law`` to each data set of ``frames``, compiling once per model shape.

    Parameters
    ----------
    frames : sequence or mapping of DataFrame
        The data sets, all with the columns named by ``y``, ``x``, ``group``,
        ``run`` and ``se``.
    law, y, x, group, run, se, pool, likelihood, chains, warmup, draws, parameterization, \
min_rows_per_family, check_units, target_accept
        As in :func:`bayescale.fit`, the same for every data set.
    seed : int
        Data set ``i`` (in order) is fitted with the key ``fold_in(PRNGKey(seed), i)``;
        the same seed gives the same draws.

    Returns
    -------
    list of Fit, or dict of Fit
        One :class:`~bayescale.fit.Fit` per data set, in the order (or with the
        keys) of ``frames``; each carries its own diagnostics gate and
        ``settings["batched"] = True``.

    Raises
    ------
    DataError
        A data set that :func:`bayescale.fit` would refuse, named by its position or key.

    Examples
    --------
    >>> import bayescale as bs
    >>> frames = [bs.datasets.simulate("power", families=1, seeds=1, seed=k) for k in range(3)]
    >>> fits = bs.fit_many(frames, law="power", y="loss", x="x", chains=2,
    ...                    warmup=300, draws=300)  # doctest: +SKIP
    >>> [f.ok for f in fits]  # doctest: +SKIP
    [True, True, True]
    """
    names = list(frames) if isinstance(frames, Mapping) else None
    items = list(frames.values()) if names is not None else list(frames)
    if not isinstance(frames, Mapping | Sequence) or not items:
        raise BayescaleError("fit_many needs a non-empty list (or dict) of DataFrames.")
    base = resolve(law)
    prepared, groups = [], {}
    for i, df in enumerate(items):
        label = names[i] if names is not None else i
        try:
            prepared.append(setup(df, base, y, x, group, run, se, pool, likelihood, parameterization,
                                  min_rows_per_family, check_units))
        except BayescaleError as exc:
            raise type(exc)(f"data set {label!r}: {exc}") from None
        law_i, _, s_i, data_i = prepared[-1]
        groups.setdefault(_shape_key(law_i, s_i, data_i), []).append(i)

    settings = {"law": base.name, "likelihood": likelihood, "chains": chains, "warmup": warmup,
                "draws": draws, "device": "cpu", "parameterization": parameterization,
                "min_rows_per_family": min_rows_per_family, "check_units": check_units,
                "batched": True}
    root = jax.random.PRNGKey(seed)
    fits: list = [None] * len(items)
    with jax.default_device(jax.devices("cpu")[0]):
        for members in groups.values():
            _, _, s, _ = prepared[members[0]]
            accept = default_target_accept(s, target_accept)
            map_search = inference.map_program(build(s, {}))
            programs = {}  # centring -> compiled NUTS run
            for i in members:
                started = time.perf_counter()
                law_i, design, s_i, data = prepared[i]
                k_map, k_run = jax.random.split(jax.random.fold_in(root, i))
                label = names[i] if names is not None else i
                try:
                    mode = inference.checked_mode(*map_search(k_map, data))
                except BayescaleError as exc:
                    raise type(exc)(f"data set {label!r}: {exc}") from None
                centring = choose_centring(s, design, float(mode["sigma"]))
                key = tuple(sorted(centring.items()))
                if key not in programs:
                    model = build(s, centring)
                    latent = inference.latent_sites(model, data)
                    programs[key] = (model, inference.nuts_program(
                        model, latent, chains=chains, warmup=warmup, draws=draws,
                        target_accept=accept, dense=dense_sites(mode)))
                model, program = programs[key]
                samples, extra = jax.tree.map(np.asarray, program(k_run, mode, data))
                fits[i] = finish(law_i, design, s_i, inference.Draws(model, data, samples, extra),
                                 settings | {"seed": seed, "data_set": i, "target_accept": accept,
                                             "centring": centring}, started)
    inference.release_programs()
    return dict(zip(names, fits)) if names is not None else fits


__all__ = ["Fit", "fit_many"]
