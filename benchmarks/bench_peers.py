"""NUTS against NUTS: one posterior sampled by bayescale, nutpie and PyMC's default sampler.

    python benchmarks/bench_peers.py [--cases epoch,gadre,l2l] [--repeats 3] [--pymc-repeats 1]
                                     [--out benchmarks/results_peers_cpu2.json]

Needs the ``bench`` extra (``pip install -e '.[bench]'``: PyMC and nutpie).
For each case bayescale fits the data (``bs.fit``, defaults: 4 chains x 1000
warm-up + 1000 draws, dense mass matrix, MAP start); ``pymc_mirror`` writes
the same model in PyMC (same priors, centring, data), which nutpie and
``pm.sample`` then sample with the same numbers of chains, warm-up and draws.
All run side by side in one process, ``repeats`` times each (seeds 0, 1, ...).

Reported per sampler: wall time split into set-up/compilation and sampling
(bayescale's set-up is the time of the same fit with 10 warm-up and 10 draws:
MAP search, tracing, compilation or a cache load, ArviZ conversion), minimum
bulk ESS over the law's parameters (per family) and ``sigma``, ESS per second
of total wall time, divergences, largest R-hat and leapfrog steps per draw;
and the agreement of each peer's posterior means with bayescale's, in units of
their combined Monte Carlo standard error (|z| above 4 flags a disagreement).
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


PEER_CASES = ("epoch", "gadre", "l2l")  # bench_fit's cases that the PyMC mirror covers


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


def run_case(key: str, make, repeats: int, pymc_repeats: int) -> dict:
    import nutpie
    import pymc as pm
    from pymc_mirror import pymc_model

    df, kwargs = make()
    out = {"bayescale": [], "nutpie": [], "pymc": []}
    for r in range(repeats):
        t0 = time.perf_counter()
        bs.fit(df, seed=r, warmup=10, draws=10, chains=CHAINS, progress=False, extrapolation=False,
               **kwargs)
        setup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        fit = bs.fit(df, seed=r, warmup=TUNE, draws=DRAWS, chains=CHAINS, progress=False,
                     extrapolation=False, **kwargs)
        total = time.perf_counter() - t0
        m = _metrics(fit.idata, _names(fit), total, "n_steps")
        out["bayescale"].append(m | {"total_s": total, "setup_s": setup_s, "sampling_s": total - setup_s,
                                     "gate": fit.ok, "centring": fit.settings.centring})
        print(f"[{key}] bayescale {r}: {total:.1f} s, min ESS {m['min_ess_bulk']:.0f}", flush=True)

        model = pymc_model(fit)
        t0 = time.perf_counter()
        compiled = nutpie.compile_pymc_model(model)
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        trace = nutpie.sample(compiled, chains=CHAINS, tune=TUNE, draws=DRAWS, seed=r, progress_bar=False,
                              cores=os.cpu_count())
        sample_s = time.perf_counter() - t0
        m = _metrics(trace, _names(fit), compile_s + sample_s, "n_steps")
        out["nutpie"].append(m | {"total_s": compile_s + sample_s, "setup_s": compile_s,
                                  "sampling_s": sample_s} | _agreement(out["bayescale"][-1], m))
        print(f"[{key}] nutpie {r}: {compile_s:.1f} + {sample_s:.1f} s, min ESS {m['min_ess_bulk']:.0f}",
              flush=True)
        if r < pymc_repeats:
            t0 = time.perf_counter()
            with model:
                idata = pm.sample(draws=DRAWS, tune=TUNE, chains=CHAINS, cores=min(CHAINS, os.cpu_count()),
                                  random_seed=r, progressbar=False, compute_convergence_checks=False)
            total = time.perf_counter() - t0
            m = _metrics(idata, _names(fit), total, "n_steps")
            out["pymc"].append(m | {"total_s": total} | _agreement(out["bayescale"][-1], m))
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
            if "agree" in runs[0]:
                summary[name]["agree"] = all(r["agree"] for r in runs)
                summary[name]["max_abs_z"] = max(r["max_abs_z"] for r in runs)
    return {"rows": len(df), "runs": out, "summary": summary}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="epoch,gadre,l2l")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pymc-repeats", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    runtime.ensure()  # float64, host devices, cache: before any JAX work, as bs.fit had them on import
    import nutpie
    import pymc as pm

    results = header(pymc=pm.__version__, nutpie=nutpie.__version__) | {
        "settings": f"{CHAINS} chains x ({TUNE} warm-up + {DRAWS} draws)", "cases": {}}
    for key, name, make in cases():
        if key in args.cases.split(",") and key in PEER_CASES:
            results["cases"][key] = {"name": name} | run_case(key, make, args.repeats, args.pymc_repeats)
            print(json.dumps(results["cases"][key]["summary"], indent=1), flush=True)
    return save(results, args.out)


if __name__ == "__main__":
    main()
