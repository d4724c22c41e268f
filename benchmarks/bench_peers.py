"""NUTS against NUTS: one posterior sampled by bayescale's two backends, nutpie (low-rank and
diagonal adaptation) and PyMC's default sampler.

    python benchmarks/bench_peers.py [--cases epoch,gadre,l2l,fam30] [--repeats 3] [--cores 2]
                                     [--backends numpyro,lowrank] [--pymc-repeats 0]
                                     [--out benchmarks/results_peers_cpu2.json]

Needs the ``bench`` extra (``pip install -e '.[bench]'``: PyMC and nutpie).
For each case bayescale fits the data (``bs.fit``, 4 chains x 1000 warm-up + 1000 draws, MAP
start, law-only) with each backend at its defaults: ``"numpyro"`` (NumPyro NUTS, windowed
dense mass matrix from draws, target_accept 0.95/0.99) and ``"lowrank"`` (BlackJAX NUTS,
Fisher-divergence low-rank metric from draws and gradients, target_accept 0.8).
``pymc_mirror`` writes the same model in PyMC (same priors, centring, data), which nutpie
samples with ``adaptation="low_rank"`` (its best documented setting for correlated
posteriors, the former ``low_rank_modified_mass_matrix=True``) and with its default
``adaptation="diag"``, both at its default target_accept 0.8, with the same chains, warm-up
and draws; ``--pymc-repeats`` adds ``pm.sample``.  All run side by side in one process,
``repeats`` times each (seeds 0, 1, ...).  ``--cores N`` pins the process to N cores
(``os.sched_setaffinity``, before JAX starts) and gives nutpie ``cores=N``.

Reported per sampler: wall time split into set-up (bayescale: the same fit with 10 warm-up and
10 draws -- MAP search, tracing, compilation or a cache load, conversion; nutpie: compiling
the PyMC model) and sampling, minimum bulk ESS over the law's parameters (per family) and
``sigma``, ESS per second of total wall time, divergences, largest R-hat and leapfrog steps
per draw; and the agreement of each posterior's means with bayescale's ``"numpyro"`` fit, in
units of their combined Monte Carlo standard error (|z| above 4 flags a disagreement).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings

import numpy as np
from _common import header, save
from bench_fit import cases

import bayescale as bs
from bayescale.inference import runtime
from bayescale.inference.gate import table

CHAINS, TUNE, DRAWS = 4, 1000, 1000


PEER_CASES = ("epoch", "gadre", "l2l", "fam30", "fam100", "fam300")  # covered by the PyMC mirror
BACKENDS = {"numpyro": {}, "lowrank": {"target_accept": 0.8}}
NUTPIE = ("low_rank", "diag")


def peer_cases():
    """bench_fit's real cases and simulated ladders of 30, 100 and 300 families x 50 runs."""
    from bench_scaling import simulate

    yield from cases()
    for families in (30, 100, 300):
        yield f"fam{families}", f"simulated, {families} families x 50 runs (chinchilla, partial pooling)", (
            lambda f=families: (simulate(50 * f, f), dict(law="chinchilla", y="loss",
                                                         x={"N": "params", "D": "tokens"}, group="family")))


def _names(fit) -> list:
    return [*fit.law.parameters, "sigma"]


def _metrics(idata, names, seconds: float, steps_var: str) -> dict:
    diag = table(idata, names)
    stats = idata.sample_stats
    steps = float(np.asarray(stats[steps_var]).mean()) if steps_var in stats else float("nan")
    return {"min_ess_bulk": float(diag["ess_bulk"].min()), "max_rhat": float(diag["r_hat"].max()),
            "divergences": int(np.asarray(stats["diverging"]).sum()), "steps_per_draw": steps,
            "ess_per_s": float(diag["ess_bulk"].min()) / seconds,
            "means": diag["mean"].to_dict(),
            "mcse": (diag["sd"] / np.sqrt(diag["ess_bulk"])).to_dict()}


def _agreement(ref: dict, other: dict) -> dict:
    z = {k: abs(other["means"][k] - ref["means"][k]) / np.hypot(other["mcse"][k], ref["mcse"][k])
         for k in ref["means"]}
    worst = max(z, key=z.get)
    return {"max_abs_z": float(z[worst]), "worst": worst, "agree": bool(z[worst] < 4)}


def run_case(key: str, make, repeats: int, pymc_repeats: int, cores: int, backends=tuple(BACKENDS)) -> dict:
    import nutpie
    import pymc as pm
    from pymc_mirror import pymc_model

    df, kwargs = make()
    out = {f"bayescale-{b}": [] for b in backends} | {f"nutpie-{a}": [] for a in NUTPIE} | {"pymc": []}
    first = f"bayescale-{backends[0]}"  # the reference of the agreement column
    for r in range(repeats):
        for backend in backends:
            extra = BACKENDS[backend]
            settings = dict(seed=r, chains=CHAINS, progress=False, extrapolation=False, backend=backend,
                            **extra, **kwargs)
            t0 = time.perf_counter()
            bs.fit(df, warmup=10, draws=10, **settings)
            setup_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            fit = bs.fit(df, warmup=TUNE, draws=DRAWS, **settings)
            total = time.perf_counter() - t0
            m = _metrics(fit.idata, _names(fit), total, "n_steps")
            name = f"bayescale-{backend}"
            reference = out[first][-1] if name != first else m
            out[name].append(m | {"total_s": total, "setup_s": setup_s, "sampling_s": total - setup_s,
                                  "gate": fit.verdict()} | _agreement(reference, m))
            print(f"[{key}] {name} {r}: {total:.1f} s, min ESS {m['min_ess_bulk']:.0f}, "
                  f"{m['steps_per_draw']:.1f} steps/draw, {fit.verdict()}", flush=True)
            if name == first:
                model = pymc_model(fit)
        t0 = time.perf_counter()
        compiled = nutpie.compile_pymc_model(model)
        compile_s = time.perf_counter() - t0
        for adaptation in NUTPIE:
            t0 = time.perf_counter()
            trace = nutpie.sample(compiled, chains=CHAINS, tune=TUNE, draws=DRAWS, seed=r, progress_bar=False,
                                  cores=cores, adaptation=adaptation)
            sample_s = time.perf_counter() - t0
            m = _metrics(trace, _names(fit), compile_s + sample_s, "n_steps")
            name = f"nutpie-{adaptation}"
            out[name].append(m | {"total_s": compile_s + sample_s, "setup_s": compile_s,
                                  "sampling_s": sample_s} | _agreement(out[first][-1], m))
            print(f"[{key}] {name} {r}: {compile_s:.1f} + {sample_s:.1f} s, min ESS {m['min_ess_bulk']:.0f}, "
                  f"{m['steps_per_draw']:.1f} steps/draw", flush=True)
        if r < pymc_repeats:
            t0 = time.perf_counter()
            with model:
                idata = pm.sample(draws=DRAWS, tune=TUNE, chains=CHAINS, cores=min(CHAINS, cores),
                                  random_seed=r, progressbar=False, compute_convergence_checks=False)
            total = time.perf_counter() - t0
            m = _metrics(idata, _names(fit), total, "n_steps")
            out["pymc"].append(m | {"total_s": total} | _agreement(out[first][-1], m))
            print(f"[{key}] pymc {r}: {total:.1f} s, min ESS {m['min_ess_bulk']:.0f}", flush=True)
    summary = {}
    for name, runs in out.items():
        if runs:
            summary[name] = {k: statistics.median(r[k] for r in runs)
                             for k in ("total_s", "min_ess_bulk", "ess_per_s", "max_rhat", "steps_per_draw")}
            summary[name]["divergences"] = [r["divergences"] for r in runs]
            if "setup_s" in runs[0]:
                summary[name]["setup_s"] = statistics.median(r["setup_s"] for r in runs)
                summary[name]["sampling_s"] = statistics.median(r["sampling_s"] for r in runs)
            if "gate" in runs[0]:
                summary[name]["gate"] = [r["gate"] for r in runs]
            summary[name]["agree"] = all(r["agree"] for r in runs)
            summary[name]["max_abs_z"] = max(r["max_abs_z"] for r in runs)
    return {"rows": len(df), "runs": out, "summary": summary}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="epoch,gadre,l2l,fam30")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pymc-repeats", type=int, default=0)
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="bayescale's backends to run (the first is the reference of the agreement)")
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:args.cores]))  # before JAX starts
    runtime.ensure()  # float64, host devices, cache: before any JAX work, as bs.fit had them on import
    import nutpie
    import pymc as pm

    results = header(pymc=pm.__version__, nutpie=nutpie.__version__) | {
        "settings": f"{CHAINS} chains x ({TUNE} warm-up + {DRAWS} draws)", "cores": args.cores, "cases": {}}
    for key, name, make in peer_cases():
        if key in args.cases.split(",") and key in PEER_CASES:
            results["cases"][key] = {"name": name} | run_case(key, make, args.repeats, args.pymc_repeats,
                                                              args.cores, tuple(args.backends.split(",")))
            print(json.dumps(results["cases"][key]["summary"], indent=1), flush=True)
    return save(results, args.out)


if __name__ == "__main__":
    main()
