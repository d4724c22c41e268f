"""Wall time of the reference fits, median of several runs, side by side in one process.

    python benchmarks/bench_fit.py [--repeats 3] [--devices cpu,gpu] [--cases sim,epoch,gadre,l2l]
                                   [--out benchmarks/results.json]

Each case is fitted ``repeats`` times on each device with the same settings (4
chains x 1000 warmup + 1000 draws, seed 0), devices side by side in one process;
the first run of each includes compilation unless the persistent cache already
holds it, so every time and the median are reported.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import warnings

import bayescale as bs
from bayescale.inference import runtime
from bayescale.result.io import versions

X = {"N": "params", "D": "tokens"}


def cases():
    yield "sim", "simulated 3-family ladder (chinchilla, run effects)", lambda: (
        bs.datasets.simulate("chinchilla", seed=1),
        dict(law="chinchilla", y="loss", x=X, group="family", run="run"))
    yield "epoch", "chinchilla_epoch, 240 runs, ungrouped", lambda: (
        bs.datasets.load("chinchilla_epoch", drop_highest_loss=5),
        dict(law="chinchilla", y="loss", x=X))
    yield "gadre", "gadre_overtrain, 5 runs x 3 corpora (chinchilla_shared, known se)", lambda: (
        (lambda d: d[d["gadre_fit_split"]])(bs.datasets.load("gadre_overtrain")),
        dict(law="chinchilla_shared", y="loss", x=X, group="dataset", se="loss_se"))
    yield "l2l", "loss_to_loss sweep, 529 runs x 6 corpora (chinchilla, partial pooling)", lambda: (
        bs.datasets.load("loss_to_loss", split="sweep"),
        dict(law="chinchilla", y="loss", x=X, group="corpus"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--devices", default="cpu")
    parser.add_argument("--cases", default="sim,epoch,gadre")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    runtime.ensure()  # float64, host devices, cache: before jax.devices() starts JAX's backends
    import jax

    results = {"machine": platform.platform(), "processor": platform.processor(),
               "devices": [str(d) for d in jax.devices()], "versions": versions(), "cases": []}
    for key, name, make in cases():
        if key not in args.cases.split(","):
            continue
        try:
            df, kwargs = make()
        except bs.DataError as exc:
            print(f"skip {name}: {exc}")
            continue
        for device in args.devices.split(","):
            results["cases"].append(run_case(name, device, df, kwargs, args.repeats))
            print(json.dumps(results["cases"][-1]), flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)


def run_case(name, device, df, kwargs, repeats):
    times, fit = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        fit = bs.fit(df, device=device, progress=False, seed=0, extrapolation=False, **kwargs)
        times.append(time.perf_counter() - start)
    stats = fit.idata.sample_stats
    return {"case": name, "device": device, "seconds": [round(t, 1) for t in times],
            "median_s": round(statistics.median(times), 1), "ok": fit.ok,
            "divergences": int(stats["diverging"].sum()),
            "steps_per_draw": round(float(stats["n_steps"].mean()), 1),
            "centring": fit.settings.centring, "sampler_s": fit.settings.seconds}


if __name__ == "__main__":
    main()
