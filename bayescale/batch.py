"""``bs.fit_many``: one law fitted to many data sets, compiled once per model shape.

Simulation-based calibration replicates, backtest folds, bootstrap resamples
and sweeps over tasks or families fit the same law again and again.  A loop
of :func:`bayescale.fit` compiles its MAP search and its sampler anew for
every data set; here data sets whose models have the same shape (the same
law, pooling, numbers of rows, families and runs, and input references) share
one compiled MAP search (:func:`bayescale.inference.map_program`) and one
compiled NUTS run per parameterisation (:func:`bayescale.inference.chain_program`),
with the data as arguments.  Every fit still gets its own MAP start, its own
centring choice, its own warm-up, and the same diagnostics gate and
:class:`~bayescale.fit.Fit` as a single fit.

Each chain is a run of its own (:func:`bayescale.inference.chain_program`),
as many at once as there are devices, so on a CPU the chains of several fits
share the cores (one compiled program per number of runs at once, no per-fit
recompilation); their draws equal a single fit's in distribution but not bit
for bit.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import executor as runner
from . import inference
from .errors import BayescaleError, FitError
from .fit import default_target_accept, dense_sites, finish, gated, setup
from .law import Law, resolve
from .model import build, choose_centring, model_data, pad_rows, partial_names

CHUNK = 8  # data sets per executor task: each task compiles its programs once


def _shape_key(law, s, data: dict) -> tuple:
    """What decides the compiled program: pooling, sizes, references and array shapes."""
    shapes = tuple((path, np.shape(v)) for path, v in jax.tree_util.tree_leaves_with_path(data))
    pooling = tuple(sorted((p, s.pool(p)) for p in law.parameters))
    # the references' values are model data, so only their names shape the program
    return (pooling, s.n_families, s.n_runs, s.likelihood, s.centring, tuple(k for k, _ in s.refs),
            tuple(partial_names(s)), str(shapes))


def fit_many(frames, law="chinchilla", y: str = "loss", x=None, group=None, run=None, se=None,
             pool=None, likelihood: str = "normal", chains: int = 4, warmup: int = 1000,
             draws: int = 1000, seed: int = 0, parameterization: str = "auto",
             min_rows_per_family: int = 2, check_units: bool = True,
             target_accept: float | None = None, device=None, vectorize: bool | None = None,
             executor=None, chunk: int = CHUNK, pad: bool = False):
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
    device : {"cpu", "gpu", "auto"}, optional
        Where to run.  By default the CPU, unless JAX sees a GPU and a fit has
        :data:`bayescale.inference.GPU_MIN_ROWS` rows or more, or there are
        :data:`bayescale.inference.GPU_MIN_FITS` data sets or more.
    vectorize : bool, optional
        Run the data sets of one shape, and their chains, in one vectorised
        program (``jax.vmap``) instead of running every chain on its own,
        as many at once as there are devices
        (:func:`bayescale.inference.chain_program`; on a CPU, one per JAX host
        device, so the chains spread over the cores).  Default: on GPU only,
        where side-by-side lanes cost little; on a CPU every NUTS iteration of a
        vectorised batch waits for the longest trajectory in it.  A vectorised
        fit's ``settings["seconds"]`` is its group's wall time.
    executor : {None, "serial", "local"} or concurrent.futures.Executor, optional
        Run the fits as tasks of ``chunk`` data sets of one shape on this
        executor (``"local"``: :func:`bayescale.executor.local_executor`; or a
        Dask ``Client.get_executor()``; see :mod:`bayescale.executor`):
        each task receives its data frames, the law as TOML text and the
        options, fits them as above and returns ArviZ DataTrees; the gate runs
        here.  Data set ``i`` gets the same keys as without an executor.  A
        process pool must spawn its workers (JAX is not fork-safe).
    chunk : int
        Data sets per task on an executor: each task compiles once.
    pad : bool
        Pad every data set to the largest one's row count, the padding masked out
        of the likelihood (:func:`bayescale.model.pad_rows`), so that data sets
        that differ only in their number of rows share one compiled program: for
        nested subsets of one data set (rolling-origin backtests), where
        compiling dominates.  Each gradient then costs the largest data set's.

    Returns
    -------
    list of Fit, or dict of Fit
        One :class:`~bayescale.fit.Fit` per data set, in the order (or with the
        keys) of ``frames``; each carries its own diagnostics gate, and
        ``settings["batched"]`` says how it ran (``"parallel"``: single chains side by side on
        separate devices, or ``"vectorized"``).

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
    options = fit_options(y, x, group, run, se, pool, likelihood, chains, warmup, draws, parameterization,
                          min_rows_per_family, check_units, target_accept, device, vectorize, pad)
    prepared, groups = _prepare(dict(enumerate(items)), base, options, names)
    if executor is None or executor == "serial":
        fits = _fit_prepared(prepared, groups, base, options, seed, names)
    else:
        fits = _fan_out(executor, dict(enumerate(items)), prepared, groups, base, options, seed, chunk)
    ordered = [fits[i] for i in range(len(items))]
    return dict(zip(names, ordered)) if names is not None else ordered


def fit_options(y, x, group, run, se, pool, likelihood, chains, warmup, draws, parameterization,
                min_rows_per_family, check_units, target_accept, device=None, vectorize=None,
                pad=False) -> dict:
    """The options of :func:`fit_many` as one plain dict, the form tasks receive them in."""
    return {"y": y, "x": x, "group": group, "run": run, "se": se, "pool": pool,
            "likelihood": likelihood, "chains": chains, "warmup": warmup, "draws": draws,
            "parameterization": parameterization, "min_rows_per_family": min_rows_per_family,
            "check_units": check_units, "target_accept": target_accept, "device": device,
            "vectorize": vectorize, "pad": pad}


def setup_with(df, base, o: dict):
    """:func:`bayescale.fit.setup` of one data set with the options of :func:`fit_options`."""
    return setup(df, base, o["y"], o["x"], o["group"], o["run"], o["se"], o["pool"], o["likelihood"],
                 o["parameterization"], o["min_rows_per_family"], o["check_units"])


def _prepare(frames: dict, base, options: dict, names=None) -> tuple[dict, dict]:
    """Validated data sets by index, and the indices grouped by model shape."""
    o = options
    prepared, groups = {}, {}
    for i, df in frames.items():
        try:
            prepared[i] = setup_with(df, base, o)
        except BayescaleError as exc:
            label = names[i] if names is not None else i
            raise type(exc)(f"data set {label!r}: {exc}") from None
    if o.get("pad"):
        rows = max(len(design.y) for _, design, _, _ in prepared.values())
        prepared = {i: (law_i, design, s_i, pad_rows(data_i, rows))
                    for i, (law_i, design, s_i, data_i) in prepared.items()}
    for i, (law_i, _, s_i, data_i) in prepared.items():
        groups.setdefault(_shape_key(law_i, s_i, data_i), []).append(i)
    return prepared, groups


def _fit_prepared(prepared: dict, groups: dict, base, options: dict, seed: int, names=None,
                  on_fit=None) -> dict:
    """Fits of the prepared data sets in this process, by index; ``on_fit(i, fit)`` as each ends."""
    o = options
    rows = max(len(design.y) for _, design, _, _ in prepared.values())
    device, dev = inference.resolve_device(inference.choose_device(o["device"], rows, len(prepared)))
    vectorize = device == "gpu" if o["vectorize"] is None else bool(o["vectorize"])
    settings = {"law": base.name, "likelihood": o["likelihood"], "chains": o["chains"],
                "warmup": o["warmup"], "draws": o["draws"], "device": device,
                "parameterization": o["parameterization"], "min_rows_per_family": o["min_rows_per_family"],
                "check_units": o["check_units"], "batched": "vectorized" if vectorize else "parallel",
                "seed": seed}
    run = _Group(prepared, jax.random.PRNGKey(seed), o["chains"], o["warmup"], o["draws"],
                 o["target_accept"], vectorize, names, device)
    fits = {}
    with jax.default_device(dev):
        for members in groups.values():
            fits |= run(members, settings, on_fit)
    inference.release_programs()
    return fits


def _task(law_text: str, frames: dict, options: dict, seed: int) -> list:
    """One executor task: fit ``frames`` (index -> DataFrame); returns (index, DataTree, settings)."""
    base = Law.from_toml(law_text, origin="fit_many task")
    prepared, groups = _prepare(frames, base, options)
    fits = _fit_prepared(prepared, groups, base, options, seed)
    return [(i, f.idata, f.settings) for i, f in fits.items()]


def _fan_out(executor, frames: dict, prepared: dict, groups: dict, base, options: dict, seed: int,
             chunk: int) -> dict:
    runner.check_chunk(chunk, "fit_many")
    pool, owned, restart = runner.resolve(executor, "fit_many")
    text = base.to_toml()
    tasks = {(n, k): (text, {i: frames[i] for i in members[k:k + chunk]}, options, seed)
             for n, members in enumerate(groups.values()) for k in range(0, len(members), chunk)}
    fits = {}

    def done(_, result, attempts):
        for i, idata, settings in result:
            law_i, design, s_i, _ = prepared[i]
            fits[i] = gated(law_i, design, s_i, idata, settings | {"attempts": attempts})

    def failed(key, exc, attempts):
        raise FitError(f"fit_many: a task of {len(tasks[key][1])} data set(s) failed after {attempts} "
                       f"attempt(s): {type(exc).__name__}: {exc}") from exc

    try:
        pool = runner.run_tasks(pool, _task, tasks, done, failed,
                                restart=restart)
    finally:
        if owned:
            pool.shutdown()
    return fits


def _stack(trees: list):
    return jax.tree.map(lambda *v: jnp.stack(v), *trees)


def _take(tree, k: int):
    return jax.tree.map(lambda v: np.asarray(v[k]), tree)


class _Group:
    """Fits of one model shape: one compiled MAP search, one compiled NUTS run per centring.

    Data set ``i`` gets the keys of ``fold_in(root, i)`` whichever way it runs,
    so a fit's draws do not depend on which other data sets share its program;
    parallel and vectorised runs of one data set are equal in distribution,
    not bit for bit.
    """

    def __init__(self, prepared, root, chains, warmup, draws, target_accept, vectorize, names,
                 device="cpu"):
        self.prepared, self.root, self.names, self.device = prepared, root, names, device
        self.nuts = {"chains": chains, "warmup": warmup, "draws": draws}
        self.target_accept, self.vectorize = target_accept, vectorize

    def _label(self, i):
        return self.names[i] if self.names is not None else i

    def _modes(self, map_search, members, keys) -> dict:
        if self.vectorize:
            data = _stack([self.prepared[i][3] for i in members])
            found, potential = jax.vmap(map_search)(jnp.stack([keys[i][0] for i in members]), data)
            raw = {i: (_take(found, k), potential[k]) for k, i in enumerate(members)}
        else:
            raw = {i: map_search(keys[i][0], self.prepared[i][3]) for i in members}
        modes = {}
        for i, (mode, potential) in raw.items():
            try:
                modes[i] = inference.checked_mode(mode, potential)
            except BayescaleError as exc:
                raise type(exc)(f"data set {self._label(i)!r}: {exc}") from None
        return modes

    def __call__(self, members: list, settings: dict, on_fit=None) -> dict:
        started = time.perf_counter()
        s = self.prepared[members[0]][2]
        accept = default_target_accept(s, self.target_accept)
        keys = {i: jax.random.split(jax.random.fold_in(self.root, i)) for i in members}
        modes = self._modes(inference.map_program(build(s, {})), members, keys)
        by_centring: dict = {}
        for i in members:
            centring = choose_centring(s, self.prepared[i][1], float(modes[i]["sigma"]))
            by_centring.setdefault(tuple(sorted(centring.items())), []).append(i)
        fits = {}
        for centring, subset in by_centring.items():
            model = build(s, dict(centring))
            latent = inference.latent_sites(model, self.prepared[subset[0]][3])
            nuts = self.nuts | {"target_accept": accept, "dense": dense_sites(modes[subset[0]])}
            if self.vectorize:
                ended = self._vectorised(inference.nuts_program(model, latent, **nuts), subset, modes, keys)
            else:
                program = inference.chain_program(model, latent, **nuts, backend=self.device)
                ended = self._side_by_side(program, subset, modes, keys)
            for i, draws in ended:
                law, design, s_i, data = self.prepared[i]
                info = settings | {"data_set": i, "target_accept": accept, "centring": dict(centring)}
                real = model_data(design) if "mask" in data else data  # the fit keeps its own rows
                fits[i] = finish(law, design, s_i, inference.Draws(model, real, *draws), info, started)
                if on_fit is not None:
                    on_fit(i, fits[i])
                if not self.vectorize:  # the next fit's time starts here (the first's holds compiling)
                    started = time.perf_counter()
        return fits

    def _vectorised(self, program, subset, modes, keys):
        out = jax.vmap(program)(jnp.stack([keys[i][1] for i in subset]), _stack([modes[i] for i in subset]),
                                _stack([self.prepared[i][3] for i in subset]))
        for k, i in enumerate(subset):
            yield i, _take(out, k)

    def _side_by_side(self, program, subset, modes, keys):
        """Every chain of ``subset`` as one run, as many at once as there are devices: each
        fit's draws as soon as its last chain ends."""
        chains = self.nuts["chains"]
        runs = [(i, c) for i in subset for c in range(chains)]
        calls = -(-len(runs) // inference.side_by_side(self.device))
        width = -(-len(runs) // calls)  # calls of equal width share one compiled program
        done: dict = {}
        for start in range(0, len(runs), width):
            part = runs[start:start + width]
            padded = part + part[-1:] * (width - len(part))  # the repeats' draws are dropped
            out = program(jnp.stack([keys[i][1] for i, _ in padded]), jnp.asarray([c for _, c in padded]),
                          _stack([modes[i] for i, _ in padded]),
                          _stack([self.prepared[i][3] for i, _ in padded]))
            for r, (i, c) in enumerate(part):
                done.setdefault(i, {})[c] = _take(out, r)
                if len(done[i]) == chains:
                    ends = done.pop(i)
                    yield i, jax.tree.map(lambda *v: np.stack(v), *(ends[k] for k in range(chains)))


__all__ = ["fit_many"]
