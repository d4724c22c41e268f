"""Cost against data size and number of families: wall time and peak memory of one fit.

    python benchmarks/bench_scaling.py [--points 100,1000,10000,100000,1000000]
                                       [--families 3,10,30,100,200] [--rows-per-family 50]
                                       [--chains 1] [--warmup 150] [--draws 150] [--device cpu]
                                       [--full-max 100000]
                                       [--out benchmarks/results_scaling_cpu2.json]

Each point is one ``bs.fit`` of the Chinchilla law in a fresh process (so peak
memory, ``ru_maxrss``, is that fit's), on data simulated here:

- **points**: 3 families, no run effects, ``n`` rows (N log-uniform in
  2e7..7e9 parameters, D/N in 5..200); the model has the same parameters at
  every size, so the cost per leapfrog step should grow linearly in ``n``;
- **families**: ``F`` families of ``rows-per-family`` rows each, E, a and b
  partially pooled (partial pooling needs 5 families or more; 3 are fitted per
  family): parameters and rows both grow with ``F``.

Reported per fit, in the steps ``bs.fit`` takes: the MAP search (8 starts x
2000 Adam steps over all rows), compilation of the sampler, and sampling (the
same compiled NUTS run a second time, chains vectorised); leapfrog steps per
draw, the time of one gradient of the log density (inside a compiled loop, median of 5), the
sampler's overhead ratio (sampling time / (gradient evaluations x gradient
time), warm-up steps counted at the draws' rate), and peak resident memory.
Chains and draws are fewer than a production fit's so that 10^5 points run in
minutes (the per-step figures do not depend on them); above ``--full-max`` rows
(10^6 by default) only the gradient and the memory of the model are measured:
a whole fit there takes hours on two cores, most of it in the MAP search.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

CHILD = "--child"
GRADS = 200  # gradients per timed loop


def simulate(rows: int, families: int, seed: int = 0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    f = np.arange(rows) % families
    n = np.exp(rng.uniform(np.log(2e7), np.log(7e9), rows))
    d = n * np.exp(rng.uniform(np.log(5), np.log(200), rows))
    # corpora differ in all three terms (equal a or b across families would leave their spread at
    # zero, a funnel that measures the geometry rather than the cost)
    e = 1.7 + 0.1 * rng.standard_normal(families)
    a, b = (400 * np.exp(0.2 * rng.standard_normal(families)) for _ in range(2))
    loss = e[f] + a[f] * n**-0.34 + b[f] * d**-0.28
    loss *= np.exp(0.01 * rng.standard_normal(rows))
    return pd.DataFrame({"family": [f"f{k}" for k in f], "params": n, "tokens": d, "loss": loss})


def child(rows: int, families: int, chains: int, warmup: int, draws: int, full: int = 1) -> dict:
    """One fit, run in this (fresh) process; with ``full=0`` only the gradient is timed."""
    import resource
    import warnings

    warnings.simplefilter("ignore")
    import jax

    from bayescale.inference import runtime
    from bayescale.inference.nuts import latent_sites, nuts_program
    from bayescale.inference.start import find_map
    from bayescale.model import ModelConfig, build, choose_centring
    from bayescale.result.fitting import columns, setup

    runtime.ensure()  # float64, host devices, compilation cache: before any JAX work, as bs.fit has them
    df = simulate(rows, families)
    _, design, s, data = setup(df, "chinchilla", columns("loss", {"N": "params", "D": "tokens"}, "family"),
                               None, ModelConfig("normal", "auto", 2, True))
    from numpyro.infer.util import initialize_model

    if full:
        t0 = time.perf_counter()
        mode = find_map(build(s, {}), data, 0)
        map_s = time.perf_counter() - t0
        model = build(s, choose_centring(s, design, float(mode["sigma"])))
    else:
        model = build(s, {})

    info = initialize_model(jax.random.PRNGKey(0), model, model_kwargs=data)
    grad = jax.grad(info.potential_fn)
    z = info.param_info.z
    # K gradients in one compiled loop, so Python's dispatch is not counted
    loop = jax.jit(lambda z: jax.lax.fori_loop(
        0, GRADS, lambda i, z: jax.tree.map(lambda v, g: v - 1e-9 * g, z, grad(z)), z))
    jax.block_until_ready(loop(z))
    times = []
    for _ in range(5):
        t = time.perf_counter()
        jax.block_until_ready(loop(z))
        times.append(time.perf_counter() - t)
    grad_s = float(np.median(times)) / GRADS
    head = {"device": str(jax.devices()[0]), "rows": rows, "families": families,
            "parameters": int(sum(np.size(v) for v in z.values()))}
    if not full:
        return head | {"grad_ms": 1e3 * grad_s,
                       "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}

    from bayescale.inference.sample import default_target_accept, dense_sites

    latent = latent_sites(model, data)
    program = nuts_program(model, latent, chains=chains, warmup=warmup, draws=draws,
                           target_accept=default_target_accept(s, None), dense=dense_sites(mode))
    t0 = time.perf_counter()
    jax.block_until_ready(program(jax.random.PRNGKey(1), mode, data))
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()  # the same key: the same work again, without compiling
    _, extra = jax.block_until_ready(program(jax.random.PRNGKey(1), mode, data))
    sampling_s = time.perf_counter() - t0
    steps = np.asarray(extra["num_steps"])
    # leapfrog steps are recorded for the draws only; warm-up is counted at the same rate
    gradients = float(steps.sum()) * (warmup + draws) / draws
    return head | {
            "map_s": map_s, "compile_s": first_s - sampling_s, "sampling_s": sampling_s,
            "steps_per_draw": float(steps.mean()), "grad_ms": 1e3 * grad_s,
            "overhead": sampling_s / (gradients * grad_s),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(rows: int, families: int, args) -> dict:
    cmd = [sys.executable, __file__, CHILD, str(rows), str(families), str(args.chains), str(args.warmup),
           str(args.draws), str(int(rows <= args.full_max))]
    env = os.environ | {"JAX_PLATFORMS": "cuda" if args.device == "gpu" else "cpu"}
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if out.returncode:
        return {"rows": rows, "families": families, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", default="100,1000,10000,100000,1000000")
    parser.add_argument("--families", default="3,10,30,100,200")
    parser.add_argument("--rows-per-family", type=int, default=50)
    parser.add_argument("--chains", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--draws", type=int, default=150)
    parser.add_argument("--full-max", type=int, default=100_000,
                        help="above this many rows only the gradient and memory are measured")
    parser.add_argument("--device", default="cpu", help="cpu or gpu (the child's JAX_PLATFORMS)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    from _common import header, save

    results = header() | {
               "settings": f"{args.chains} chains x ({args.warmup} warm-up + {args.draws} draws)",
               "points": [], "families": []}
    for n in [int(v) for v in args.points.split(",") if v]:
        results["points"].append(run_child(n, 3, args))
        print(json.dumps(results["points"][-1]), flush=True)
    for f in [int(v) for v in args.families.split(",") if v]:
        results["families"].append(run_child(f * args.rows_per_family, f, args))
        print(json.dumps(results["families"][-1]), flush=True)
    return save(results, args.out)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == CHILD:
        print(json.dumps(child(*map(int, sys.argv[2:8]))))
    else:
        main()
