"""Batched fits: ``bs.fit_many`` against a Python loop of ``bs.fit``, side by side in one process.

    python benchmarks/bench_batch.py [--fits 100] [--repeats 3] [--law power] [--device cpu]
                                     [--vectorize] [--loop-fits N]
                                     [--out benchmarks/results_batch_cpu2.json]

``fits`` replicate data sets of a small law (``bs.datasets.simulate``: one
family, one seed, 25 rows each) are fitted with the fit's default settings (4
chains x 1000 warm-up + 1000 draws) once as a loop of ``bs.fit`` and
``repeats`` times with ``bs.fit_many``; both use JAX's persistent compilation
cache as users do by default, so the loop pays a cache lookup and tracing per
fit, not a cold compile.  The two must give the same answers: the script
records, per data set, the difference of the posterior means of each law
parameter in units of their combined Monte Carlo standard error.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from _common import header, save

import bayescale as bs
from bayescale.inference import runtime


def _means(fit) -> dict:
    rows = fit.summary().set_index("parameter")
    return {p: (float(rows.loc[p, "mean"]), float(rows.loc[p, "sd"] / np.sqrt(rows.loc[p, "ess_bulk"])))
            for p in fit.law.parameters}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--law", default="power")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--vectorize", action="store_true", help="fit_many's vmapped batches")
    parser.add_argument("--loop-fits", type=int, default=None,
                        help="time the loop on the first N data sets only and scale it up (stated)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    runtime.ensure()  # float64, host devices, cache: before any JAX work, as bs.fit had them on import
    import jax

    frames = [bs.datasets.simulate(args.law, families=1, seeds=1, seed=k) for k in range(args.fits)]
    kwargs = {"law": args.law, "y": "loss", "x": "x"}

    batch_times, batched = [], None
    for r in range(args.repeats):
        t0 = time.perf_counter()
        batched = bs.fit_many(frames, seed=r, device=args.device, vectorize=args.vectorize, **kwargs)
        batch_times.append(time.perf_counter() - t0)
        print(f"fit_many, repeat {r}: {batch_times[-1]:.1f} s", flush=True)

    loop_times, single = [], []
    t_loop = time.perf_counter()
    looped = frames[: args.loop_fits or len(frames)]
    for k, df in enumerate(looped):
        t0 = time.perf_counter()
        single.append(bs.fit(df, seed=k, progress=False, device=args.device, extrapolation=False,
                             **kwargs))
        loop_times.append(time.perf_counter() - t0)
    loop_total = (time.perf_counter() - t_loop) * len(frames) / len(looped)
    print(f"loop of bs.fit: {loop_total:.1f} s", flush=True)

    z = []
    for a, b in zip(batched, single):
        ma, mb = _means(a), _means(b)
        z += [abs(ma[p][0] - mb[p][0]) / np.hypot(ma[p][1], mb[p][1]) for p in ma]
    z = np.asarray(z)
    out = header() | {
        "devices": [str(d) for d in jax.devices()],
        "law": args.law, "fits": args.fits, "rows_per_fit": len(frames[0]), "device": args.device,
        "vectorize": args.vectorize, "loop_fits_timed": len(looped),
        "settings": "4 chains x (1000 warm-up + 1000 draws), defaults of bs.fit",
        "fit_many_s": batch_times, "fit_many_median_s": statistics.median(batch_times),
        "fit_many_first_fit_s": [batched[0].settings.seconds],
        "fit_many_later_fit_median_s": statistics.median(f.settings.seconds for f in batched[1:]),
        "loop_total_s": loop_total, "loop_fit_median_s": statistics.median(loop_times),
        "loop_first_fit_s": loop_times[0],
        "speedup": loop_total / statistics.median(batch_times),
        "gate_passed": {"fit_many": int(sum(f.ok for f in batched)), "loop": int(sum(f.ok for f in single))},
        "mean_difference_in_mcse": {"median": float(np.median(z)), "p95": float(np.quantile(z, 0.95)),
                                    "share_above_3": float(np.mean(z > 3))},
    }
    return save(out, args.out)


if __name__ == "__main__":
    main()
