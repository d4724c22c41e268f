"""The cost of calibrated extrapolation: ``bs.fit(..., extrapolation=True)`` against a plain fit.

    python benchmarks/bench_extrapolation.py [--repeats 3] [--out FILE]

Hierarchical Chinchilla on the ``loss_to_loss`` sweep (529 runs, 6 corpora, C4
loss), 4 chains x (1000 + 1000), the defaults of ``bs.fit``; the plain and the
calibrated fit alternate in one process, so both see the same machine load and
the same compilation cache.  The target is a ratio of at most 3.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

from _common import header, save


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    import bayescale as bs
    from bayescale.inference import runtime

    runtime.ensure()  # float64, host devices, cache: before any JAX work, as bs.fit had them on import
    df = bs.datasets.load("loss_to_loss", split="sweep")
    kw = dict(law="chinchilla", y="loss_c4_val", x={"N": "params", "D": "tokens"}, group="corpus",
              progress=False)
    times = {"plain": [], "calibrated": []}
    kept = None
    for _ in range(args.repeats):
        for name, extra in (("plain", False), ("calibrated", True)):
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = bs.fit(df, extrapolation=extra, **kw)
            times[name].append(time.perf_counter() - started)
            kept = fit.settings.extrapolation or kept
    med = {k: statistics.median(v) for k, v in times.items()}
    return save(header() | {"case": "loss_to_loss sweep, 529 runs x 6 corpora, chinchilla, 4 x (1000 + 1000)",
                            "seconds": times, "median_s": med, "ratio": med["calibrated"] / med["plain"],
                            "calibration": kept}, args.out)


if __name__ == "__main__":
    main()
