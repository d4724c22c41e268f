"""``bs.sweep``: one law fitted over every group of a table, resumable, on any executor.

One law per downstream task and metric, per benchmark, per family, per
backtest cut: a sweep fits each group of rows of one table (``by`` columns) and
returns tidy tables of parameters, forecasts and diagnostics, one row per group
in :attr:`Sweep.groups`, with the groups that failed and why.

With ``out``, each group's result is written as a small JSON file the moment
its fit ends (by the worker, when it shares the folder, and again here), so a
sweep interrupted, or a worker killed mid-fit, loses that fit only, and a
rerun with the same settings fits only what is missing.  A group with bad data
fails alone, its error recorded; a task whose worker died is run again once,
then its groups are recorded as ``crashed``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.design import require_column
from ..errors import BayescaleError, DataError
from ..evaluate import extrapolation as calibration
from ..evaluate.calibration import Calibration
from ..inference import executor as runner
from ..inference.config import SamplerConfig, take
from ..inference.progress import current
from ..inference.stacked import shape_key
from ..laws.spec import resolve
from ..model import ModelConfig
from ..result.fit import GATE_KINDS
from ..result.fitting import CHUNK, Job, Request, request, setup

STATUSES = {"ok": "fitted, diagnostics passed", "gate": "fitted, diagnostics FAILED",
            "error": "bad data or a failed fit", "crashed": "its worker died on every attempt"}
SUMMARY = ["rows", "families", "seconds", "divergences", "max_rhat", "min_ess_bulk", "calibration",
           "rate", "reach"]


@dataclass
class Sweep:
    """Result of :func:`sweep`.

    Attributes
    ----------
    groups : DataFrame
        One row per group: the ``by`` columns, ``id``, ``status`` (see
        :data:`STATUSES`), ``message`` (why it failed), ``attempts``, ``rows``,
        ``families``, ``seconds``, ``divergences``, ``max_rhat``,
        ``min_ess_bulk``, ``calibration`` (``off``, ``measured`` or ``skipped:``
        and why; see ``extrapolation`` in :func:`sweep`), ``rate`` and ``reach``
        (the calibration's growth of the law's error per decade beyond the data,
        link scale, and how far it was measured) and ``warnings`` (their kinds).
    parameters : DataFrame
        The ``by`` columns and :meth:`bayescale.Fit.summary` of each fitted group.
    forecasts : DataFrame
        The ``by`` columns and the forecast at ``at`` of each fitted group.
    settings : dict
        Law, options and seed of the sweep.
    """

    groups: pd.DataFrame
    parameters: pd.DataFrame
    forecasts: pd.DataFrame
    settings: dict = field(repr=False)

    @property
    def failed(self) -> pd.DataFrame:
        """The groups that are not ``ok``, with their status and message."""
        return self.groups[self.groups["status"] != "ok"]

    def __repr__(self) -> str:
        counts = self.groups["status"].value_counts()
        parts = ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES if counts.get(s, 0))
        return f"<Sweep of {self.settings['law']}: {len(self.groups)} groups ({parts})>"


@dataclass(frozen=True)
class SweepConfig:
    """How a sweep forecasts and where its fits run (see :func:`sweep` for each field)."""

    kind: str = "mean"
    levels: tuple = (0.5, 0.9)
    executor: object = "local"
    workers: int | None = None
    chunk: int = CHUNK
    retries: int = 1
    redo_failed: bool = False
    progress: bool | None = None


def sweep(df: pd.DataFrame, law="power", by=None, y: str = "loss", x=None, group=None, run=None,
          se=None, pool=None, at=None, out=None, *, sampler: SamplerConfig | None = None,
          model: ModelConfig | None = None, config: SweepConfig | None = None,
          extrapolation="auto", **settings) -> Sweep:
    """Fit ``law`` to every group of rows of ``df`` that shares its ``by`` values.

    Parameters
    ----------
    df : DataFrame
        All groups' rows.
    law, y, x, group, run, se, pool, sampler, model
        As in :func:`bayescale.fit`, the same for every group.
    config : SweepConfig, optional
        ``kind``, ``levels``, ``executor``, ``workers``, ``chunk``, ``retries``,
        ``redo_failed`` and ``progress``, described below.
    **settings
        Fields of :class:`SweepConfig` (applied over ``config``), of
        :class:`~bayescale.SamplerConfig` or of :class:`~bayescale.ModelConfig`.
    by : str or list of str
        The columns whose values define a group (e.g. ``["task", "metric"]``).
    seed : int
        Each group is fitted with a key derived from ``seed`` and its ``by``
        values only, so its draws do not depend on the executor, the chunking
        or which other groups are in the table.
    at : DataFrame or dict, optional
        Inputs to forecast at for every group (:meth:`bayescale.Fit.predict`,
        with ``kind`` and ``levels``).
    extrapolation : {"auto", True, False}, CalibrationConfig or Calibration
        As in :func:`bayescale.fit`, for each group: ``"auto"`` (the default)
        and ``True`` measure how fast the law's own error grows beyond that
        group's data, by a rolling backtest nested inside it (3 more fits of at
        most 2 chains x (500 + 500) draws, in the same worker, after the group's
        fit: about 2.3x the group's time), so that its forecasts at ``at`` widen
        with the distance extrapolated.  Where a group's data are too few or too
        narrow in compute, ``"auto"`` gives that group law-only bands and says
        why in its ``calibration`` column, where ``True`` records the group as
        ``error``.  ``False`` fits plain groups with law-only bands (the
        cheapest).  A
        :class:`~bayescale.evaluate.calibration.CalibrationConfig` sets the
        nested backtest; a :class:`~bayescale.evaluate.calibration.Calibration`
        is applied to every group as given.
    out : str or Path, optional
        Folder for the results: one JSON file per group, written as its fit
        ends, then ``groups.csv``, ``parameters.csv`` and ``forecasts.csv``.  A
        rerun with the same settings skips the groups already there; other
        settings in the same folder are an error.  On a cluster, a folder the
        workers share also keeps the fits of a task whose worker dies.
    executor : {"local", "serial"} or concurrent.futures.Executor
        ``"local"``: a pool of spawned worker processes, one per core;
        ``"serial"``: this process; or any executor, e.g. a Dask
        ``Client.get_executor()`` (see :mod:`bayescale.inference.executor`).
    workers : int, optional
        Worker processes of the ``"local"`` pool (default: the cores).
    chunk : int
        Groups per task: groups whose models have the same shape share one
        compiled program within a task.
    retries : int
        Times a task whose worker died is run again before its groups are
        recorded as ``crashed``.
    redo_failed : bool
        Refit the groups an earlier run in ``out`` recorded as ``error`` or ``crashed``.
    progress : bool, optional
        A bar over the groups in a terminal or Jupyter, one line per group as its
        result arrives in a log (:mod:`bayescale.inference.progress`); ``None`` (the
        default) as ``True``; ``False``: nothing.

    Returns
    -------
    Sweep

    Examples
    --------
    >>> import pandas as pd, bayescale as bs
    >>> df = pd.concat([bs.datasets.simulate("power", families=1, seeds=1, seed=k).assign(task=t)
    ...                 for k, t in enumerate(["a", "b"])])
    >>> result = bs.sweep(df, law="power", by="task", y="loss", x="x", chains=2, warmup=200,
    ...                   draws=200, executor="serial")  # doctest: +SKIP
    >>> result.groups[["task", "status"]]  # doctest: +SKIP
    """
    settings = dict(settings)
    chosen = calibration.option(extrapolation)  # an unknown value fails before any fit
    if isinstance(chosen, Calibration):  # workers need only its numbers, not the fit it came from
        chosen = chosen.record()
    c = take(settings, SweepConfig, config)
    kind, levels, executor, workers, chunk = c.kind, c.levels, c.executor, c.workers, c.chunk
    retries, redo_failed, progress = c.retries, c.redo_failed, c.progress
    by = [by] if isinstance(by, str) else list(by or [])
    if not by:
        raise BayescaleError("sweep needs by=: the column(s) whose values define a group.")
    for col in by:
        require_column(df, col)
        missing = df.index[df[col].isna()]
        if len(missing):
            raise DataError(f"sweep: column '{col}' is missing in {len(missing)} row(s) (first: row "
                            f"{missing[0]!r}); fill or drop them, since they belong to no group.")
    runner.check_chunk(chunk, "sweep")
    req = request(law, y, x, group, run, se, pool, sampler, model, **settings)
    base = resolve(law)
    seed = req.sampler.seed
    job = Job(base, req.cols, req.pool, req.model, req.sampler, vectorize=False)
    options = {"columns": req.cols, "pool": req.pool, "model": asdict(req.model),
               "sampler": {k: v for k, v in req.sampler.record().items() if k != "progress"}}
    at_records = None if at is None else pd.DataFrame(at).to_dict("records")
    forecast = None if at is None else {"at": at_records, "kind": kind, "levels": list(levels)}
    record = {"law": base.name, "law_toml": base.to_toml(), "by": by, "seed": seed,
              "options": options, "forecast": forecast,
              "extrapolation": calibration.record(extrapolation)}
    folder = _open(out, record)
    frames, keys = _split(df, by)
    records = {} if folder is None else _finished(folder, keys, redo_failed)
    report = _Progress(len(keys), len(records), progress, by)
    todo = {}
    for gid, frame in frames.items():
        if gid in records:
            continue
        try:  # bad data fails here, alone, before any worker starts
            law_g, _, s_g, data_g = setup(frame, base, req.cols, req.pool, req.model)
        except BayescaleError as exc:
            records[gid] = _keep(folder, gid, keys[gid], _failure("error", exc), 1, report)
            continue
        todo.setdefault(shape_key(law_g, s_g, data_g), []).append(gid)
    tasks = {}
    for members in todo.values():
        for k in range(0, len(members), chunk):
            part = members[k:k + chunk]
            tasks[part[0]] = (job, {_index(g): frames[g] for g in part},
                              {_index(g): g for g in part}, forecast,
                              None if folder is None else str(folder), chosen)

    def done(_, result, attempts):
        for gid, rec in result.items():
            records[gid] = _keep(folder, gid, keys[gid], rec, attempts, report)

    def failed(first, exc, attempts):
        for gid in tasks[first][2].values():
            rec = None if folder is None else _read(folder / f"{gid}.json")
            if rec is None:  # its fit had not ended when the worker died
                rec = _failure("crashed", exc, f" (after {attempts} attempts)")
            records[gid] = _keep(folder, gid, keys[gid], rec, attempts, report)

    if tasks:
        pool_, owned, restart = runner.resolve(executor, "sweep", workers)
        try:
            pool_ = runner.run_tasks(pool_, _task, tasks, done, failed, retries=retries,
                                     restart=restart,
                                     retry_if=lambda exc: True)
        finally:
            if owned:
                pool_.shutdown()
    report.close()
    result = _assemble(records, keys, by, record)
    if folder is not None:  # beside the per-group records
        for name in ("groups", "parameters", "forecasts"):
            getattr(result, name).to_csv(folder.parent / f"{name}.csv", index=False)
    return result


# ---- groups and their ids -----------------------------------------------------------------
def _scalar(value):
    return value.item() if isinstance(value, np.generic) else value


def _split(df: pd.DataFrame, by: list) -> tuple[dict, dict]:
    """Frames and ``by`` values of each group, by group id, in sorted order of the values."""
    frames, keys = {}, {}
    for values, frame in df.groupby(by, sort=True):
        values = values if isinstance(values, tuple) else (values,)
        key = {col: _scalar(v) for col, v in zip(by, values)}
        gid = hashlib.sha1(json.dumps([str(v) for v in key.values()]).encode()).hexdigest()[:16]
        frames[gid], keys[gid] = frame.reset_index(drop=True), key
    return frames, keys


def _index(gid: str) -> int:
    """The group's seed index: from its ``by`` values only (32 bits of their hash)."""
    return int(gid[:8], 16)


# ---- the result folder --------------------------------------------------------------------
def _json(obj) -> str:
    def plain(v):
        if isinstance(v, np.integer | np.bool_):
            return v.item()
        if isinstance(v, np.floating):
            return float(v)
        return str(v)

    return json.dumps(obj, default=plain, indent=1)


def _write(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(_json(obj))
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def _read(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _open(out, settings: dict) -> Path | None:
    """The folder of the per-group records, the sweep's settings checked against an earlier run's."""
    if out is None:
        return None
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise BayescaleError(f"sweep: out={str(out)!r} exists and is not a folder.")
    (folder / "groups").mkdir(parents=True, exist_ok=True)
    stored = _read(folder / "sweep.json")
    plain = json.loads(_json(settings))
    if stored is not None and stored != plain:
        differ = sorted(k for k in plain if stored.get(k) != plain[k])
        raise BayescaleError(f"sweep: {folder} holds a sweep with other settings (they differ in "
                             f"{', '.join(differ)}); give another folder, or remove it to start over.")
    if stored is None:
        _write(folder / "sweep.json", plain)
    return folder / "groups"


def _finished(folder: Path, keys: dict, redo_failed: bool) -> dict:
    """Records of an earlier run to keep; those to redo are removed."""
    kept = {}
    for gid in keys:
        rec = _read(folder / f"{gid}.json")
        if rec is None:
            continue
        if redo_failed and rec["status"] in ("error", "crashed"):
            (folder / f"{gid}.json").unlink()
        else:
            kept[gid] = rec
    return kept


def _keep(folder, gid: str, key: dict, rec: dict, attempts: int, report) -> dict:
    rec = rec | {"id": gid, "group": key, "attempts": attempts}
    if folder is not None:
        _write(folder / f"{gid}.json", rec)
    report(key, rec)
    return rec


class _Progress:
    """One step per group as its result arrives: a bar, or a line each in a log."""

    def __init__(self, total: int, already: int, setting: bool | None, by: list):
        reporter = current(setting)
        if already:
            rest = "nothing left to fit" if already == total else "fitting the rest"
            reporter.line(f"sweep: {already} of {total} groups already done; {rest}")
        self.steps = reporter.steps("sweep group", total, done=already).open()

    def __call__(self, key: dict, rec: dict) -> None:
        label = ", ".join(f"{k}={v}" for k, v in key.items())
        seconds = f", {rec['seconds']:.1f} s" if rec.get("seconds") is not None else ""
        why = f": {rec['message'][:120]}" if rec["status"] != "ok" and rec.get("message") else ""
        self.steps.advance(f"{label}: {rec['status']}{seconds}{why}")

    def close(self) -> None:
        self.steps.close()


# ---- one task, in a worker ----------------------------------------------------------------
def _failure(status: str, exc: BaseException, suffix: str = "") -> dict:
    return {"status": status, "message": f"{type(exc).__name__}: {exc}{suffix}",
            "parameters": [], "forecasts": []}


def _record(fit, forecast) -> dict:
    """A fitted group's result: diagnostics, parameter summary and forecasts, as plain data."""
    gate = [w for w in fit.warnings if w.kind in GATE_KINDS]
    diag = fit.diagnostics
    kept = fit.settings.extrapolation or {}
    rec = {"status": "ok" if fit.ok else "gate", "message": "; ".join(str(w) for w in gate),
           "rows": len(fit.design.y), "families": fit.design.n_families,
           "seconds": fit.settings.seconds,
           "divergences": int(fit.idata.sample_stats["diverging"].sum()),
           "max_rhat": float(diag["r_hat"].max()), "min_ess_bulk": float(diag["ess_bulk"].min()),
           "calibration": calibration.describe(fit), "rate": kept.get("rate"), "reach": kept.get("reach"),
           "warnings": [w.kind for w in fit.warnings],
           "parameters": fit.summary().to_dict("records"), "forecasts": []}
    if forecast is not None:
        try:
            table = fit.predict(pd.DataFrame(forecast["at"]), kind=forecast["kind"],
                                levels=tuple(forecast["levels"]))
        except BayescaleError as exc:  # the fit stands; its forecast could not be made
            rec["status"], rec["message"] = "error", f"forecast at `at`: {type(exc).__name__}: {exc}"
            return rec
        rec["forecasts"] = table.to_dict("records")
    return rec


def _task(job: Job, frames: dict, gids: dict, forecast, folder, chosen=None) -> dict:
    """Fit ``frames`` (seed index -> DataFrame) in this worker; returns group id -> record.

    Each fit is calibrated beyond its data as ``chosen`` says
    (:func:`bayescale.evaluate.extrapolation.option`) before its forecasts are made.
    Each record is written to ``folder`` (when given and reachable) as its fit ends; a
    task run again after its worker died skips the groups already written.
    """
    folder = None if folder is None else Path(folder)
    records: dict = {}

    def keep(i, rec):
        records[gids[i]] = rec
        if folder is not None:
            try:
                _write(folder / f"{gids[i]}.json", rec)
            except OSError:
                pass  # a worker without the folder: the caller writes it when the task returns

    prepared = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each record carries its warnings
        for i, frame in frames.items():
            done = None if folder is None else _read(folder / f"{gids[i]}.json")
            if done is not None:
                records[gids[i]] = done
                continue
            try:
                prepared[i] = setup(frame, job.base, job.cols, job.pool, job.model)
            except Exception as exc:  # noqa: BLE001 - recorded with the group, the sweep goes on
                keep(i, _failure("error", exc))
        shapes: dict = {}
        for i, (law_i, _, s_i, data_i) in prepared.items():
            shapes.setdefault(shape_key(law_i, s_i, data_i), []).append(i)
        req = Request(job.base, job.cols, job.pool, job.model, job.sampler)

        def on_fit(i, fit):
            try:
                fit = calibration.calibrate(fit, frames[i], req, chosen)
            except Exception as exc:  # noqa: BLE001 - recorded with the group, the sweep goes on
                keep(i, _failure("error", exc))
                return
            keep(i, _record(fit, forecast))
        try:
            if prepared:
                job.run(prepared, shapes, on_fit=on_fit, emit=False)
        except Exception:  # noqa: BLE001 - one group's failure: fit the rest one by one to find it
            for i in prepared:
                if gids[i] in records:
                    continue
                try:
                    job.run({i: prepared[i]}, {0: [i]}, on_fit=on_fit, emit=False)
                except Exception as exc:  # noqa: BLE001
                    keep(i, _failure("error", exc))
    return records


# ---- the tables ---------------------------------------------------------------------------
def _assemble(records: dict, keys: dict, by: list, settings: dict) -> Sweep:
    rows, params, forecasts = [], [], []
    for gid, key in keys.items():  # the groups' sorted order
        rec = records[gid]
        rows.append({**key, "id": gid, "status": rec["status"], "message": rec.get("message", ""),
                     "attempts": rec.get("attempts", 1), **{k: rec.get(k) for k in SUMMARY},
                     "warnings": ",".join(rec.get("warnings", []))})
        params += [{**key, **p} for p in rec["parameters"]]
        forecasts += [{**key, **f} for f in rec["forecasts"]]
    frame = pd.DataFrame
    return Sweep(frame(rows), frame(params, columns=None if params else by),
                 frame(forecasts, columns=None if forecasts else by),
                 {k: v for k, v in settings.items() if k != "law_toml"})


__all__ = ["STATUSES", "Sweep", "sweep"]
