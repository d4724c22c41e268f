"""Time to a 95% interval: Epoch AI's bootstrap practice against one bayescale fit, on chinchilla_epoch.

    python benchmarks/bench_bootstrap.py [--resamples 4000] [--repeats 3] [--grid-repeats 1]
                                         [--out benchmarks/results_bootstrap_cpu2.json]

The practice (Besiroglu et al. 2024, arXiv:2404.10102, after Hoffmann et al.
2022's Approach 3): fit L = E + A/N^alpha + B/D^beta by minimising the Huber
loss (delta = 1e-3) of log L against LSE(a - alpha log N, b - beta log D, e)
with L-BFGS-B (SciPy) from every point of a grid of starting values (alpha,
beta in 0..2 by 0.5; e in -1..1 by 0.5; a, b in 0..25 by 5: 4,500 starts),
then refit ``resamples`` bootstrap resamples of the runs and take percentile
intervals.  A refit from the whole grid costs 4,500 optimisations, so 4,000
such refits are only projected (stated as such, from the measured time of
full-grid fits); the refits actually run start from the full-data optimum
(a lower bound on the practice's time, and what a hurried user would do).
The gradient is given analytically, which makes the practice faster than
finite differences would.  Every optimisation runs to tight tolerances
(:data:`TOL`): SciPy's default ``ftol`` is absolute for objectives below 1,
and this Huber objective is about 1e-3, so with the defaults a refit started
at the optimum stops after a dozen iterations where it started, and the
bootstrap intervals come out about 100 times too narrow (measured here: A
477.7-477.9 against Epoch's 285-744) -- the early stop that Besiroglu et al.
found in Hoffmann et al.'s own fit.  With :data:`TOL` a warm-started refit
lands where a 243-start grid lands (checked on 3 resamples to 4 digits).

bayescale: one ``bs.fit`` (defaults: 4 chains x 1000 warm-up + 1000 draws)
with the persistent compilation cache warm; its 95% equal-tailed credible
intervals of E, A, B, alpha and beta are set beside the bootstrap's and
Epoch's published ones (the data set's README).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
import warnings

import numpy as np
from _common import header, save
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax

import bayescale as bs
from bayescale.inference import runtime

DELTA = 1e-3
GRID = [np.arange(0, 30, 5), np.arange(0, 30, 5), np.arange(-1, 1.5, 0.5), np.arange(0, 2.5, 0.5),
        np.arange(0, 2.5, 0.5)]  # a, b, e, alpha, beta
PUBLISHED = {"A": (285, 744), "B": (1042, 5810), "E": (1.769, 1.871), "alpha": (0.317, 0.373),
             "beta": (0.331, 0.415)}  # Epoch's bootstrap 95% intervals (data/chinchilla_epoch/README.md)
TOL = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 20000}


def objective(theta, log_n, log_d, log_l):
    """Huber loss of the log-space residuals and its gradient."""
    a, b, e, alpha, beta = theta
    terms = np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])
    pred = logsumexp(terms, axis=0)
    r = pred - log_l
    small = np.abs(r) <= DELTA
    loss = np.where(small, 0.5 * r**2, DELTA * (np.abs(r) - 0.5 * DELTA)).sum()
    dr = np.where(small, r, DELTA * np.sign(r))
    w = softmax(terms, axis=0) * dr
    grad = np.array([w[0].sum(), w[1].sum(), w[2].sum(), -(w[0] * log_n).sum(), -(w[1] * log_d).sum()])
    return loss, grad


def fit_from(starts, log_n, log_d, log_l):
    best = None
    for x0 in starts:
        res = minimize(objective, x0, args=(log_n, log_d, log_l), jac=True, method="L-BFGS-B",
                       options=TOL)
        if best is None or res.fun < best.fun:
            best = res
    return best.x


def natural(theta) -> dict:
    a, b, e, alpha, beta = theta
    return {"A": np.exp(a), "B": np.exp(b), "E": np.exp(e), "alpha": alpha, "beta": beta}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the bayescale fit")
    parser.add_argument("--grid-repeats", type=int, default=1, help="repeats of the full-grid fit")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    runtime.ensure()  # float64, host devices, cache: before any JAX work, as bs.fit had them on import

    df = bs.datasets.load("chinchilla_epoch", drop_highest_loss=5)
    log_n, log_d, log_l = (np.log(df[c].to_numpy(float)) for c in ("params", "tokens", "loss"))
    grid = np.array(list(itertools.product(*GRID)), dtype=float)

    grid_times = []
    for _ in range(args.grid_repeats):
        t0 = time.perf_counter()
        theta = fit_from(grid, log_n, log_d, log_l)
        grid_times.append(time.perf_counter() - t0)
    print(f"full-grid fit: {statistics.median(grid_times):.1f} s; {natural(theta)}", flush=True)

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    boot = []
    for _ in range(args.resamples):
        i = rng.integers(0, len(df), len(df))
        boot.append(natural(fit_from([theta], log_n[i], log_d[i], log_l[i])))
    boot_s = time.perf_counter() - t0
    print(f"{args.resamples} warm-started refits: {boot_s:.1f} s", flush=True)

    fit_times, fit = [], None
    for r in range(args.repeats):
        t0 = time.perf_counter()
        fit = bs.fit(df, law="chinchilla", y="loss", x={"N": "params", "D": "tokens"}, seed=r,
                     progress=False, extrapolation=False)
        fit_times.append(time.perf_counter() - t0)
    print(f"bayescale fit: {statistics.median(fit_times):.1f} s (gate {'passed' if fit.ok else 'FAILED'})")

    post = fit.idata.posterior
    intervals = {}
    for k in PUBLISHED:
        values = np.array([b[k] for b in boot])
        draws = np.asarray(post[k]).ravel()
        intervals[k] = {"bootstrap": np.quantile(values, [0.025, 0.975]).tolist(),
                        "bayescale": np.quantile(draws, [0.025, 0.975]).tolist(),
                        "published": list(PUBLISHED[k]), "point": float(natural(theta)[k])}
    projected = args.resamples * statistics.median(grid_times)
    out = header() | {
        "rows": len(df),
        "grid_starts": len(grid), "resamples": args.resamples,
        "grid_fit_s": grid_times, "bootstrap_warm_s": boot_s,
        "bootstrap_full_grid_projected_s": projected,
        "bayescale_fit_s": fit_times, "bayescale_gate": fit.ok,
        "speedup_vs_warm_bootstrap": boot_s / statistics.median(fit_times),
        "speedup_vs_full_grid_bootstrap": projected / statistics.median(fit_times),
        "intervals": intervals,
    }
    return save(out, args.out)


if __name__ == "__main__":
    main()
