"""A plain fit, one data set or many: data -> law -> model -> sampler -> gated :class:`Fit`.

No calibration of forecasts beyond the data happens here: that is composed
above (``bs.fit``), from these plain fits.

Many data sets of one law (:func:`fit_many`) share compiled programs per model
shape (:mod:`bayescale.inference.stacked`), in this process or as tasks on an
executor (:mod:`bayescale.inference.executor`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

import jax

from ..data.design import Design, prepare
from ..errors import BayescaleError, DesignWarning, FitError, FitWarning
from ..inference import executor as runner
from ..inference import runtime
from ..inference.config import SamplerConfig, take
from ..inference.device import choose_device, resolve_device
from ..inference.sample import run_design
from ..inference.stacked import Group, shape_key
from ..laws.spec import Law, resolve
from ..model import ModelConfig, Structure, model_data, pad_rows, structure
from .fit import Fit
from .settings import Settings

CHUNK = 8  # data sets per executor task: each task compiles its programs once
MIN_POOL_FAMILIES = 5


def columns(y="loss", x=None, group=None, run=None, se=None, weight=None) -> dict:
    """The column mapping of a fit, as :class:`~bayescale.data.design.Design` keeps it."""
    return {"y": y, "x": x, "group": group, "run": run, "se": se, "weight": weight}


@dataclass(frozen=True)
class Request:
    """What to fit, without the data: the law, the column mapping, pooling, model and sampler settings.

    ``bs.fit``, ``bs.fit_many``, backtests and calibration all build one (:func:`request`) and
    fit data sets with it, so every nested fit is made exactly like the fit it serves.
    """

    law: object
    cols: dict = field(default_factory=columns)
    pool: dict | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    def with_(self, **changes) -> Request:
        """A copy with ``changes``; ``model`` and ``sampler`` may be dicts of field changes."""
        for name in ("model", "sampler"):
            if isinstance(changes.get(name), dict):
                changes[name] = replace(getattr(self, name), **changes[name])
        return replace(self, **changes)

    def fit(self, df) -> Fit:
        """A plain fit of ``df`` (:func:`fit_plain`)."""
        return fit_plain(df, self.law, self.cols, self.pool, self.model, self.sampler)

    def fit_many(self, frames, **options):
        """Plain fits of many data sets (:func:`fit_many`: ``vectorize``, ``executor``, ``chunk``,
        ``pad``)."""
        return fit_many(frames, self.law, self.cols, self.pool, self.model, self.sampler, **options)


SAMPLER_KEYS = tuple(f.name for f in fields(SamplerConfig))
MODEL_KEYS = tuple(f.name for f in fields(ModelConfig))


def request(law="chinchilla", y: str = "loss", x=None, group=None, run=None, se=None, pool=None,
            sampler: SamplerConfig | None = None, model: ModelConfig | None = None, weight=None,
            **settings) -> Request:
    """A :class:`Request` from the keywords of :func:`bayescale.fit`.

    ``settings`` may name fields of :class:`SamplerConfig` (``chains``, ``draws``, ``seed``, ...) or
    of :class:`ModelConfig` (``likelihood``, ...); those given (not None) override ``sampler`` and
    ``model``.  Any other keyword is an error that names it.
    """
    unknown = sorted(set(settings) - set(SAMPLER_KEYS) - set(MODEL_KEYS))
    if unknown:
        raise BayescaleError(f"unknown fit keyword(s) {unknown}; the fit takes y, x, group, run, se, "
                             f"weight, pool, "
                             f"sampler=SamplerConfig({', '.join(SAMPLER_KEYS)}) and "
                             f"model=ModelConfig({', '.join(MODEL_KEYS)}).")
    if not isinstance(sampler, SamplerConfig | None) or not isinstance(model, ModelConfig | None):
        raise BayescaleError("sampler= takes a bayescale.SamplerConfig and model= a bayescale.ModelConfig.")
    given = {k: v for k, v in settings.items() if v is not None}
    sampler, model = take(given, SamplerConfig, sampler), take(given, ModelConfig, model)
    return Request(law, columns(y, x, group, run, se, weight), pool, model, sampler)


def pool_few_families(law: Law, n_families: int, chosen: set) -> tuple[Law, list]:
    """Fit default-partial parameters per family when there are too few families.

    With 2-4 families the between-family spread is hardly identified, and its
    funnel defeated NUTS on both the demo ladder and Gadre et al.'s 3 corpora
    (50-700 divergent transitions centred or non-centred, against none fitted
    per family).  Parameters the caller pooled explicitly are left as asked.
    """
    demote = [n for n, p in law.parameters.items() if p.pool == "partial" and n not in chosen]
    if n_families == 1 or n_families >= MIN_POOL_FAMILIES or not demote:
        return law, []
    note = FitWarning("few_families", (
        f"{n_families} families are too few to learn how {', '.join(demote)} vary between families, "
        f"so they are fitted per family (pool='none'); a family absent from the data cannot be "
        f"forecast. Pass pool={{'{demote[0]}': 'partial'}} to pool them anyway."), DesignWarning)
    return law.with_pooling(dict.fromkeys(demote, "none")), [note]


def setup(df, law, cols: dict, pool, model: ModelConfig) -> tuple[Law, Design, Structure, dict]:
    """Validated design, law with its pooling, model structure and model arguments of one data set."""
    runtime.ensure()  # before any array reaches JAX: float64 and host devices apply only then
    law = resolve(law).with_pooling(pool)
    design = prepare(df, law, cols["y"], cols["x"], cols["group"], cols["run"], cols["se"],
                     min_rows_per_family=model.min_rows_per_family, check_units=model.check_units,
                     duplicates=model.duplicates, weight=cols.get("weight"))
    law, few = pool_few_families(law, design.n_families, set(pool or {}))
    design.warnings += few
    return law, design, structure(law, design, model.likelihood, model.parameterization), model_data(design)


def settings_of(law: Law, model: ModelConfig, sampler: SamplerConfig, **made) -> Settings:
    """The :class:`Settings` record of a fit of ``law`` with these options and what was chosen."""
    return Settings(law=law.name, likelihood=model.likelihood, parameterization=model.parameterization,
                    min_rows_per_family=model.min_rows_per_family, check_units=model.check_units,
                    duplicates=model.duplicates, sampler=sampler, **made)


DEFAULT_MODEL, DEFAULT_SAMPLER = ModelConfig(), SamplerConfig()


def fit_plain(df, law, cols: dict, pool=None, model: ModelConfig = DEFAULT_MODEL,
              sampler: SamplerConfig = DEFAULT_SAMPLER) -> Fit:
    """One fit of ``law`` to ``df`` by NUTS, gated on its diagnostics; no calibration beyond the data."""
    started = time.perf_counter()
    law, design, s, data = setup(df, law, cols, pool, model)
    idata, chosen = run_design(s, design, data, sampler)
    settings = settings_of(law, model, sampler.with_(device=chosen["device"]),
                           target_accept=chosen["target_accept"], centring=chosen["centring"],
                           anchored=chosen.get("anchored"), seconds=round(time.perf_counter() - started, 2))
    return Fit.gated(law, design, s, idata, settings)


def fit_many(frames, law, cols: dict, pool=None, model: ModelConfig = DEFAULT_MODEL,
             sampler: SamplerConfig = DEFAULT_SAMPLER, *, vectorize: bool | None = None, executor=None,
             chunk: int = CHUNK, pad: bool = False):
    """Fit ``law`` to each data set of ``frames``, compiling once per model shape; see
    :func:`bayescale.fit_many` for the arguments.  Returns a list (or dict) of :class:`Fit`."""
    names = list(frames) if isinstance(frames, Mapping) else None
    items = list(frames.values()) if names is not None else list(frames)
    if not isinstance(frames, Mapping | Sequence) or not items:
        raise BayescaleError("fit_many needs a non-empty list (or dict) of DataFrames.")
    job = Job(resolve(law), cols, pool, model, sampler, vectorize, pad)
    prepared, groups = job.prepare(dict(enumerate(items)), names)
    if executor is None or executor == "serial":
        fits = job.run(prepared, groups, names)
    else:
        fits = _fan_out(executor, job, dict(enumerate(items)), prepared, groups, chunk)
    ordered = [fits[i] for i in range(len(items))]
    return dict(zip(names, ordered)) if names is not None else ordered


class Job:
    """One law and its options over many data sets: what an executor task receives."""

    def __init__(self, base: Law, cols: dict, pool, model: ModelConfig, sampler: SamplerConfig,
                 vectorize: bool | None = None, pad: bool = False):
        self.base, self.cols, self.pool, self.model = base, cols, pool, model
        self.sampler, self.vectorize, self.pad = sampler, vectorize, pad

    def __getstate__(self):  # laws travel to workers as TOML text, parsed again there
        return {**self.__dict__, "base": self.base.to_toml()}

    def __setstate__(self, state):
        self.__dict__.update(state, base=Law.from_toml(state["base"], origin="fit_many task"))

    def prepare(self, frames: dict, names=None) -> tuple[dict, dict]:
        """Validated data sets by index, and the indices grouped by model shape."""
        prepared, groups = {}, {}
        for i, df in frames.items():
            try:
                prepared[i] = setup(df, self.base, self.cols, self.pool, self.model)
            except BayescaleError as exc:
                label = names[i] if names is not None else i
                raise type(exc)(f"data set {label!r}: {exc}") from None
        if self.pad:
            rows = max(len(design.y) for _, design, _, _ in prepared.values())
            prepared = {i: (law_i, design, s_i, pad_rows(data_i, rows))
                        for i, (law_i, design, s_i, data_i) in prepared.items()}
        for i, (law_i, _, s_i, data_i) in prepared.items():
            groups.setdefault(shape_key(law_i, s_i, data_i), []).append(i)
        return prepared, groups

    def run(self, prepared: dict, groups: dict, names=None, on_fit=None, emit: bool = True) -> dict:
        """Fits of the prepared data sets in this process, by index; ``on_fit(i, fit)`` as each ends."""
        rows = max(len(design.y) for _, design, _, _ in prepared.values())
        device, dev = resolve_device(choose_device(self.sampler.device, rows, len(prepared)))
        vectorize = device == "gpu" if self.vectorize is None else bool(self.vectorize)
        sampler = self.sampler.with_(device=device)
        group = Group(prepared, sampler, vectorize, names)
        fits = {}
        with jax.default_device(dev):
            for members in groups.values():
                for i, idata, chosen in group(members):
                    law, design, s, _ = prepared[i]
                    settings = settings_of(law, self.model, sampler, batched="vectorized" if vectorize
                                           else "parallel", data_set=i, **chosen)
                    fits[i] = Fit.gated(law, design, s, idata, settings, emit=emit)
                    if on_fit is not None:
                        on_fit(i, fits[i])
        return fits

    def task(self, frames: dict) -> list:
        """One executor task: fit ``frames`` (index -> DataFrame); returns (index, DataTree, settings)."""
        prepared, groups = self.prepare(frames)
        return [(i, f.idata, f.settings) for i, f in self.run(prepared, groups, emit=False).items()]


def _run_task(job: Job, frames: dict) -> list:
    return job.task(frames)


def _fan_out(executor, job: Job, frames: dict, prepared: dict, groups: dict, chunk: int) -> dict:
    runner.check_chunk(chunk, "fit_many")
    pool, owned, restart = runner.resolve(executor, "fit_many")
    tasks = {(n, k): (job, {i: frames[i] for i in members[k:k + chunk]})
             for n, members in enumerate(groups.values()) for k in range(0, len(members), chunk)}
    fits = {}

    def done(_, result, attempts):
        for i, idata, settings in result:
            law_i, design, s_i, _ = prepared[i]
            fits[i] = Fit.gated(law_i, design, s_i, idata, settings.with_(attempts=attempts))

    def failed(key, exc, attempts):
        raise FitError(f"fit_many: a task of {len(tasks[key][1])} data set(s) failed after {attempts} "
                       f"attempt(s): {type(exc).__name__}: {exc}") from exc

    try:
        pool = runner.run_tasks(pool, _run_task, tasks, done, failed, restart=restart)
    finally:
        if owned:
            pool.shutdown()
    return fits


__all__ = ["Job", "Request", "fit_many", "fit_plain", "pool_few_families", "request", "setup"]
