"""Many fits from real data on each executor: a loop of ``bs.fit``, ``bs.sweep`` serial, local, Dask.

    python benchmarks/bench_sweep.py [--cuts 14] [--workers 2] [--subset 30]
                                     [--out benchmarks/results_sweep_cpu2.json]

The jobs: the ``power`` law (error = 1 - accuracy, or perplexity, against
training compute C = 6 N D) fitted to every task x metric x family group of
``pythia_evals`` (Pythia and Pythia-deduped, 8 sizes at 5 checkpoints from
step 3,000 to the last, rows treated as independent, the two 1B runs averaged) and to every benchmark
of ``obs_scaling`` (error against the compute of the models scored on every
benchmark, models of equal compute averaged, families pooled), each at
``cuts`` rolling origins:
the rows with compute up to the cut's quantile of log C (30% ... 90%), as a
rolling-origin backtest fits them.  Every fit: 2 chains x (200 warm-up + 200
draws).

Executors, side by side in one process run: a Python loop of ``bs.fit`` and
``bs.sweep(executor="serial")`` on a random subset of ``subset`` jobs (the
loop recompiles, or loads from JAX's persistent cache, per fit); the local
default (``executor="local"``, ``workers`` spawned processes) and a Dask
``LocalCluster`` (``workers`` processes, one thread each) on all jobs.  Engine
overhead per fit: (workers x wall time - the sum of the fits' own wall time in
their workers) / fits: process start, imports, shipping data and results, and
the writing of each result.  The parent's own time per result (writing its
record) bounds how many results per second one sweep can take in.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
from _common import header, save

import bayescale as bs
from bayescale.inference import runtime
from bayescale.inference.executor import dask_client

sweep_module = importlib.import_module("bayescale.many.sweep")  # bs.sweep is the function
SETTINGS = {"law": "power", "y": "y", "x": "C", "chains": 2, "warmup": 200, "draws": 200}
STEPS = (3_000, 23_000, 63_000, 103_000, 143_000)  # 5 of Pythia's checkpoints: 40 rows a group
BY = ["source", "task", "metric", "family", "cut"]
CHUNK = 16  # groups of one shape per task: one compilation each


def _pythia() -> pd.DataFrame:
    p = bs.datasets.load("pythia_evals")
    p = p[p["family"].isin(["pythia", "pythia-deduped"]) & (p["variant"] == "standard")
          & p["step"].isin(STEPS)]
    y = np.where(p["metric"] == "ppl", p["value"], 1.0 - p["value"])
    df = pd.DataFrame({"source": "pythia_evals", "task": p["task"], "metric": p["metric"],
                       "family": p["family"], "C": 6.0 * p["params"] * p["tokens"], "y": y})
    # pythia-1b and its bf16 twin share N and D: one row per compute, as for obs_scaling
    return df.groupby(["source", "task", "metric", "family", "C"], as_index=False)["y"].mean()


def _obs() -> pd.DataFrame:
    o = bs.datasets.load("obs_scaling")
    tasks = [c for c in o.columns if c not in {"model", "family", "params", "tokens", "flops"}]
    o = o.dropna(subset=["flops", *tasks])  # the models with every benchmark: one design for all
    long = o.melt(id_vars=["model", "flops"], value_vars=tasks, var_name="task", value_name="score")
    long["y"] = (1.0 - long["score"]).clip(lower=1e-3)
    long = long.groupby(["task", "flops"], as_index=False)["y"].mean()  # models of equal compute
    return pd.DataFrame({"source": "obs_scaling", "task": long["task"], "metric": "error",
                         "family": "all", "C": long["flops"], "y": long["y"]})


def jobs(cuts: int) -> pd.DataFrame:
    """Every group at every rolling origin, stacked with a ``cut`` column."""
    parts = []
    for df in (_pythia(), _obs()):
        for _, g in df.groupby(["source", "task", "metric", "family"]):
            logc = np.log10(g["C"])
            for k, q in enumerate(np.linspace(0.3, 0.9, cuts)):
                parts.append(g[logc <= np.quantile(logc, q)].assign(cut=k))
    return pd.concat(parts, ignore_index=True)


def _keep_timer():
    """Wrap the parent's per-result step (write the record, report progress); returns its times."""
    times, keep = [], sweep_module._keep

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return keep(*args, **kwargs)
        finally:
            times.append(time.perf_counter() - t0)

    sweep_module._keep = timed
    return times, lambda: setattr(sweep_module, "_keep", keep)


def _run_sweep(df, executor, workers, name):
    times, undo = _keep_timer()
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = bs.sweep(df, by=BY, out=out, executor=executor, workers=workers, chunk=CHUNK,
                          progress=False, extrapolation=False, **SETTINGS)  # the fits alone, as before
        wall = time.perf_counter() - t0
    undo()
    g = result.groups
    fit_s = float(g["seconds"].fillna(0).sum())
    n = len(g)
    used = 1 if executor == "serial" else workers
    row = {"executor": name, "fits": n, "workers": used, "wall_s": wall, "fits_per_s": n / wall,
           "fit_s_sum": fit_s, "fit_s_median": float(g["seconds"].median()),
           "overhead_per_fit_s": (used * wall - fit_s) / n,
           "parent_per_result_ms": 1e3 * statistics.median(times) if times else None,
           "status": g["status"].value_counts().to_dict()}
    print(f"{name}: {n} fits in {wall:.1f} s ({n / wall:.2f} fits/s), overhead "
          f"{row['overhead_per_fit_s']:.2f} s per fit", flush=True)
    return row, result


def _tasks(df: pd.DataFrame) -> int:
    """Tasks of the sweep: groups of one model shape (here: one source at one origin) in chunks."""
    sizes = df.groupby(BY).size().reset_index(name="rows").groupby(["source", "cut", "rows"]).size()
    return int(sum(-(-n // CHUNK) for n in sizes))


def project(local: dict, dask: dict, tasks: int) -> tuple[float, float, dict]:
    """Wall time on W workers, projected (not measured) from the local run's cost per fit.

    W workers share the fits' work, but no faster than one task (``chunk`` fits of one shape:
    the unit that compiles once) nor than the parent can take in results.
    """
    fits = local["fits"]
    per_fit = local["workers"] * local["wall_s"] / fits  # fit time and engine overhead per fit
    parent = (dask["parent_per_result_ms"] or 1.0) / 1e3
    out = {}
    for w in (8, 64, 512):
        wall = max(fits * per_fit / w, per_fit * fits / tasks, fits * parent)
        out[w] = {"wall_s": wall, "fits_per_s": fits / wall, "busy_workers": min(w, tasks)}
    return per_fit, parent, out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuts", type=int, default=14)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--subset", type=int, default=30, help="jobs for the loop and serial rows")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    runtime.ensure()  # float64, host devices, cache: before any JAX work, as bs.fit had them on import
    df = jobs(args.cuts)
    keys = df[BY].drop_duplicates()
    subset = keys.sample(n=min(args.subset, len(keys)), random_state=0)
    small = df.merge(subset, on=BY)
    print(f"{len(keys)} jobs ({len(df)} rows); subset of {len(subset)} for the loop", flush=True)

    rows = []
    t0 = time.perf_counter()
    fit_s = []
    for _, g in small.groupby(BY):
        t1 = time.perf_counter()
        try:
            fit_s.append(bs.fit(g, progress=False, extrapolation=False, **SETTINGS).settings.seconds)
        except bs.BayescaleError:  # as the sweep records it; the time still counts
            fit_s.append(time.perf_counter() - t1)
    wall = time.perf_counter() - t0
    rows.append({"executor": "loop of bs.fit", "fits": len(subset), "workers": 1, "wall_s": wall,
                 "fits_per_s": len(subset) / wall, "fit_s_sum": float(sum(fit_s)),
                 "fit_s_median": statistics.median(fit_s),
                 "overhead_per_fit_s": (wall - sum(fit_s)) / len(subset)})
    print(f"loop: {len(subset)} fits in {wall:.1f} s (fits' own time: {fit_s})", flush=True)
    rows.append(_run_sweep(small, "serial", 1, "sweep, serial (subset)")[0])
    rows.append(_run_sweep(small, "local", args.workers, "sweep, local (subset)")[0])
    local, local_result = _run_sweep(df, "local", args.workers, "sweep, local")
    rows.append(local)
    t0 = time.perf_counter()
    client = dask_client(workers=args.workers)
    start = time.perf_counter() - t0
    try:
        dask, dask_result = _run_sweep(df, client.get_executor(), args.workers, "sweep, Dask LocalCluster")
    finally:
        client.close()
    dask["cluster_start_s"] = start
    rows.append(dask)
    same = local_result.parameters.equals(dask_result.parameters)

    tasks = _tasks(df)
    per_fit, parent, projection = project(local, dask, tasks)
    out = header() | {
        "jobs": int(len(keys)), "rows": int(len(df)), "cuts": args.cuts, "settings": SETTINGS,
        "groups": {"pythia_evals": int(keys["source"].eq("pythia_evals").sum()),
                   "obs_scaling": int(keys["source"].eq("obs_scaling").sum())},
        "executors": rows, "dask_equals_local": bool(same), "projection": projection,
        "projection_basis": {"seconds_per_fit": per_fit, "parent_seconds_per_result": parent,
                             "tasks": tasks, "chunk": CHUNK},
    }
    return save(out, args.out)


if __name__ == "__main__":
    main()
