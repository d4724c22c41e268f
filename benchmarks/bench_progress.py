"""What progress costs, and how fast bayescale starts.

1. Sampling time with the progress callback on and off: one NUTS run of a ~200-row fit,
   compiled once per setting, then timed ``--repeats`` times each (median), alternating
   on and off; the ratio on / off is the callback's cost.  A second, short run (20 + 20
   iterations) splits that cost into a fixed part per run and a part per iteration.  The
   reporter writes its lines to a string, so only the callback and its bookkeeping are
   measured, not a terminal.
2. Start-up: wall time of ``import bayescale``, ``bayescale --help`` and ``bayescale laws``
   in fresh processes (median of ``--repeats-import``).

    python benchmarks/bench_progress.py [--chains 2] [--warmup 500] [--draws 500] [--out FILE]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time

from _common import header, save

from bayescale.inference.progress import TICKS

STARTUP = {"import bayescale": "import bayescale",
           "bayescale --help": "from bayescale.cli.main import main; main(['--help'])",
           "bayescale laws": "from bayescale.cli.main import main; main(['laws'])"}
SHORT = 20  # warm-up and draws of the short run


def sampling(chains: int, warmup: int, draws: int, repeats: int) -> dict:
    import bayescale as bs
    from bayescale.inference import nuts
    from bayescale.inference.config import SamplerConfig
    from bayescale.inference.progress import Reporter, reporting
    from bayescale.inference.sample import dense_sites
    from bayescale.inference.start import find_map
    from bayescale.model import ModelConfig, build
    from bayescale.result.fitting import columns, setup

    df = bs.datasets.simulate("power", families=3, seeds=3, seed=0)
    _, design, s, data = setup(df, "power", columns(y="loss", x="x", group="family"), None, ModelConfig())
    mode = find_map(build(s, {}), data, 0)
    model = build(s, {})
    config = SamplerConfig(chains=chains, warmup=warmup, draws=draws, seed=0, device="cpu")
    runs, times = {}, {"on": [], "off": []}
    start, key = _start(model, data, config, mode)
    with reporting(reporter=Reporter("log", io.StringIO())):
        for name, on in (("off", False), ("on", True)):  # the first run compiles; not timed
            runs[name] = nuts.sample(model, data, mode, config.with_(progress=on), 0.99, dense_sites(mode))
        for _ in range(repeats):
            for name in ("on", "off"):
                started = time.perf_counter()
                _rerun(runs[name], data, start, key)
                times[name].append(time.perf_counter() - started)
    median = {k: statistics.median(v) for k, v in times.items()}
    return {"rows": len(design.y), "chains": chains, "warmup": warmup, "draws": draws,
            "callbacks_per_chain": TICKS, "seconds": times, "median_s": median,
            "ratio_on_off": median["on"] / median["off"]}


def _start(model, data, config, mode):
    """The jittered starting points and the run key of :func:`bayescale.inference.nuts.sample`."""
    import jax
    from numpyro.infer.util import initialize_model

    from bayescale.inference import nuts

    key_init, key_run = jax.random.split(jax.random.PRNGKey(config.seed))
    info = initialize_model(key_init, model, model_kwargs=data, init_strategy=nuts.init_to_value(values=mode))
    return nuts.jitter(info.param_info.z, key_init, config.chains), key_run


def _rerun(mcmc, data, start, key):
    """The same run again, warm-up and draws, on the compiled sampler."""
    import jax

    from bayescale.inference import nuts

    mcmc.post_warmup_state = None
    mcmc.run(key, init_params=start, extra_fields=nuts.STATS, **data)
    jax.block_until_ready(mcmc.get_samples())


def startup(repeats: int) -> dict:
    out = {}
    for name, code in STARTUP.items():
        walls = []
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
            walls.append(time.perf_counter() - started)
        out[name] = {"seconds": walls, "median_s": statistics.median(walls)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--repeats-import", type=int, default=5)
    parser.add_argument("--skip-sampling", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()
    result = header() | {"startup": startup(args.repeats_import)}
    if not args.skip_sampling:
        long = sampling(args.chains, args.warmup, args.draws, args.repeats)
        short = sampling(args.chains, SHORT, SHORT, args.repeats)
        # extra seconds of a run with progress = fixed + per_iteration * iterations: the two runs
        # separate them
        extra = {k: r["median_s"]["on"] - r["median_s"]["off"] for k, r in (("long", long), ("short", short))}
        slope = (extra["long"] - extra["short"]) / (args.warmup + args.draws - 2 * SHORT)
        result["sampling"] = {"long": long, "short": short, "extra_s": extra,
                              "extra_s_per_1000_iterations": 1000 * slope,
                              "extra_s_fixed": extra["short"] - 2 * SHORT * slope}
    save(result, args.out)


if __name__ == "__main__":
    main()
