"""Many data sets of one model shape, compiled once: one MAP search, one NUTS run per centring.

Simulation-based calibration replicates, backtest folds, bootstrap resamples
and sweeps fit one law again and again.  Data sets whose models have the same
shape (law, pooling, numbers of rows, families and runs, input references)
share one compiled MAP search (:func:`bayescale.inference.start.map_program`)
and one compiled NUTS run per parameterisation, with the data as arguments.
Every fit still gets its own MAP start, its own centring choice and its own
warm-up.

Each chain is a run of its own (:func:`bayescale.inference.nuts.chain_program`),
as many at once as there are devices, so on a CPU the chains of several fits
share the cores; ``vectorize=True`` runs a shape's data sets and chains in one
``jax.vmap`` instead (the default on GPU, where side-by-side lanes cost little;
on a CPU every iteration of a vectorised batch waits for its longest trajectory).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import BayescaleError
from ..model import build, choose_centring, in_centring, model_data, partial_names
from . import nuts, runtime
from .config import SamplerConfig
from .progress import current
from .sample import backend, default_target_accept, dense_sites, to_datatree
from .start import checked_mode, map_program, weak_amplitude


def shape_key(law, s, data: dict) -> tuple:
    """What decides the compiled program: pooling, sizes, references and array shapes."""
    shapes = tuple((path, np.shape(v)) for path, v in jax.tree_util.tree_leaves_with_path(data))
    pooling = tuple(sorted((p, s.pool(p)) for p in law.parameters))
    # the references' values are model data, so only their names shape the program
    return (pooling, s.n_families, s.n_runs, s.likelihood, s.centring, tuple(k for k, _ in s.refs),
            tuple(partial_names(s)), str(shapes))


def _stack(trees: list):
    return jax.tree.map(lambda *v: jnp.stack(v), *trees)


def _take(tree, k: int):
    return jax.tree.map(lambda v: np.asarray(v[k]), tree)


class Group:
    """Runs of one model shape over ``prepared`` data sets (index -> (law, design, structure, data)).

    Data set ``i`` gets the keys of ``fold_in(PRNGKey(config.seed), i)`` whichever way it runs,
    so a fit's draws do not depend on which other data sets share its program;
    parallel and vectorised runs of one data set are equal in distribution,
    not bit for bit.
    """

    def __init__(self, prepared: dict, config: SamplerConfig, vectorize: bool, names=None):
        runtime.ensure()
        self.prepared, self.config, self.names = prepared, config, names
        self.root = jax.random.PRNGKey(config.seed)
        self.vectorize, self.device = vectorize, config.device or "cpu"

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
                modes[i] = checked_mode(mode, potential)
            except BayescaleError as exc:
                raise type(exc)(f"data set {self._label(i)!r}: {exc}") from None
        return modes

    def __call__(self, members: list):
        """Yield ``(i, DataTree, chosen)`` for each data set of ``members`` as its run ends;
        ``chosen`` holds ``centring``, ``target_accept`` and ``seconds``."""
        started = time.perf_counter()
        s = self.prepared[members[0]][2]
        accept = default_target_accept(s, self.config.target_accept)
        keys = {i: jax.random.split(jax.random.fold_in(self.root, i)) for i in members}
        plain = build(s, {})
        modes = self._modes(map_program(plain), members, keys)
        by_centring: dict = {}
        latent = nuts.latent_sites(plain, self.prepared[members[0]][3])
        shape = ("hessian", s.law.to_toml(), shape_key(s.law, s, self.prepared[members[0]][3]))
        for i in members:
            centring = choose_centring(s, self.prepared[i][1], float(modes[i]["sigma"]))
            weak = weak_amplitude(s, centring, plain, self.prepared[i][3], modes[i], latent, shape)
            modes[i] = in_centring(modes[i], centring)  # the start, in the sampled parameterisation
            by_centring.setdefault((tuple(sorted(centring.items())), weak), []).append(i)
        c = self.config
        engine = backend(c.backend)
        for (centring, weak), subset in by_centring.items():
            model = build(s, dict(centring), anchor=True, weak=weak)
            latent = nuts.latent_sites(model, self.prepared[subset[0]][3])
            options = {"chains": c.chains, "warmup": c.warmup, "draws": c.draws, "target_accept": accept,
                       "dense": dense_sites(modes[subset[0]]), "max_tree_depth": c.max_tree_depth}
            if self.vectorize:
                ended = self._vectorised(engine.nuts_program(model, latent, **options), subset, modes, keys)
            else:
                program = engine.chain_program(model, latent, **options, backend=self.device)
                ended = self._side_by_side(program, subset, modes, keys)
            for i, draws in ended:
                _, design, s_i, data = self.prepared[i]
                real = model_data(design) if "mask" in data else data  # the fit keeps its own rows
                idata = to_datatree(nuts.Draws(model, real, *draws, max_tree_depth=c.max_tree_depth),
                                    design, s_i)
                seconds = round(time.perf_counter() - started, 2)
                current().fitted(self._label(i), len(design.y), seconds)
                yield i, idata, {"centring": dict(centring), "target_accept": accept, "seconds": seconds,
                                 "anchored": model.anchored}
                if not self.vectorize:  # the next fit's time starts here (the first's holds compiling)
                    started = time.perf_counter()
        runtime.bound_memory()

    def _vectorised(self, program, subset, modes, keys):
        with runtime.one_blas_thread():
            out = jax.block_until_ready(jax.vmap(program)(
                jnp.stack([keys[i][1] for i in subset]), _stack([modes[i] for i in subset]),
                _stack([self.prepared[i][3] for i in subset])))
        for k, i in enumerate(subset):
            yield i, _take(out, k)

    def _side_by_side(self, program, subset, modes, keys):
        """Every chain of ``subset`` as one run, as many at once as there are devices: each
        fit's draws as soon as its last chain ends."""
        chains = self.config.chains
        runs = [(i, c) for i in subset for c in range(chains)]
        calls = -(-len(runs) // nuts.side_by_side(self.device))
        width = -(-len(runs) // calls)  # calls of equal width share one compiled program
        done: dict = {}
        for start in range(0, len(runs), width):
            part = runs[start:start + width]
            padded = part + part[-1:] * (width - len(part))  # the repeats' draws are dropped
            with runtime.one_blas_thread():
                out = jax.block_until_ready(program(
                    jnp.stack([keys[i][1] for i, _ in padded]), jnp.asarray([c for _, c in padded]),
                    _stack([modes[i] for i, _ in padded]), _stack([self.prepared[i][3] for i, _ in padded])))
            for r, (i, c) in enumerate(part):
                done.setdefault(i, {})[c] = _take(out, r)
                if len(done[i]) == chains:
                    ends = done.pop(i)
                    yield i, jax.tree.map(lambda *v: np.stack(v), *(ends[k] for k in range(chains)))
