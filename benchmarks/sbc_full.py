"""Simulation-based calibration of every law in the catalogue; writes models/VALIDATION.md.

    python benchmarks/sbc_full.py [--laws power,chinchilla] [--reps 200] [--workers 16]
                                  [--chunk 50] [--draws 100] [--chains 2] [--warmup 500] [--thin 4]
                                  [--seed 0] [--out models/VALIDATION.md] [--plots DIR] [--ranks DIR]

Each law is simulated from and fitted on its default design
(:func:`bayescale.sbc.design`): ``reps`` replicates, split into chunks of
``chunk`` replicates that ``workers`` processes run side by side (chunks of all
laws interleaved, so the first round compiles each law once and later chunks
find the program in JAX's persistent cache).  The laws are
whatever ``models/*.toml`` holds when the script starts.  A law whose default
design or model cannot be built is listed with the reason instead of failing
the run.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import multiprocessing as mp
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ALPHA = 0.05  # family-wise level of the uniformity tests within each law (Holm)


def run_chunk(law: str, reps: int, indices: list, opts: dict) -> dict:
    """One chunk of one law's replicates; returns plain data (or the error) for the parent."""
    import warnings

    warnings.simplefilter("ignore")
    from bayescale.sbc import sbc

    started = time.perf_counter()
    try:
        res = sbc(law, reps=reps, replicates=indices, **opts)
    except Exception as exc:  # noqa: BLE001 - a law that cannot be run is reported, not fatal
        return {"law": law, "error": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc(limit=3)}
    return {"law": law, "ranks": res.ranks.to_dict("list"), "quantities": res.quantities,
            "draws": res.draws, "settings": res.settings, "seconds": time.perf_counter() - started}


def _run_task(task: tuple) -> dict:
    return run_chunk(*task)


def _init_worker():
    # bayescale's own settings (float64, cache) apply on import; only output is quietened here
    import warnings

    warnings.simplefilter("ignore")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", default=None, help="comma-separated catalogue names (default: all)")
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=50, help="replicates per task")
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--thin", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "models" / "VALIDATION.md"))
    parser.add_argument("--plots", default=None, help="folder for rank histograms (PNG), optional")
    parser.add_argument("--ranks", default=None, help="folder for the per-replicate tables (CSV), optional")
    args = parser.parse_args(argv)

    # every worker pins XLA to one thread: the parallelism is across processes, and a
    # GPU, if any, would be shared badly by many processes for models this small
    os.environ["JAX_PLATFORMS"] = "cpu"
    flags = os.environ.get("XLA_FLAGS", "")
    if args.workers > 1 and "intra_op_parallelism_threads" not in flags:
        os.environ["XLA_FLAGS"] = (f"{flags} --xla_cpu_multi_thread_eigen=false "
                                   f"intra_op_parallelism_threads=1").strip()
    import bayescale as bs
    from bayescale.sbc import SBCResult, combine

    laws = args.laws.split(",") if args.laws else bs.law.law_names()
    opts = {"draws": args.draws, "chains": args.chains, "warmup": args.warmup, "thin": args.thin,
            "seed": args.seed}
    chunks = [list(range(k, min(k + args.chunk, args.reps))) for k in range(0, args.reps, args.chunk)]
    tasks = [(law, args.reps, c, opts) for c in chunks for law in laws]  # laws interleaved
    started = time.perf_counter()
    outputs = []
    if args.workers > 1:
        with mp.get_context("spawn").Pool(args.workers, initializer=_init_worker) as pool:
            for out in pool.imap_unordered(_run_task, tasks, chunksize=1):
                outputs.append(out)
                _report_progress(out)
    else:
        for task in tasks:
            outputs.append(run_chunk(*task))
            _report_progress(outputs[-1])
    wall = time.perf_counter() - started

    results, errors, seconds = {}, {}, {}
    for out in outputs:
        law = out["law"]
        if "error" in out:
            errors.setdefault(law, out["error"])
            continue
        part = SBCResult(law, pd.DataFrame(out["ranks"]), out["quantities"], out["draws"],
                         out["settings"])
        results.setdefault(law, []).append(part)
        seconds[law] = seconds.get(law, 0.0) + out["seconds"]
    merged = {law: combine(parts) for law, parts in results.items() if law not in errors}
    for law in results:
        if law in errors:  # some chunks failed: report the law as failed, not a partial result
            errors[law] += f" (in some chunks; {sum(len(p.ranks) for p in results[law])} replicates ran)"
    text = render(merged, errors, seconds, laws, args, wall, argv)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({wall:.0f} s)")
    if args.ranks:
        folder = Path(args.ranks)
        folder.mkdir(parents=True, exist_ok=True)
        for law, res in merged.items():
            res.ranks.to_csv(folder / f"sbc_{law}.csv", index=False)
    if args.plots:
        import matplotlib

        matplotlib.use("Agg")
        folder = Path(args.plots)
        folder.mkdir(parents=True, exist_ok=True)
        for law, res in merged.items():
            fig = res.plot()
            fig.savefig(folder / f"sbc_{law}.png", dpi=110)
    return 0


def _report_progress(out: dict) -> None:
    if "error" in out:
        print(f"{out['law']}: {out['error']}", flush=True)
    else:
        n = len(out["ranks"]["replicate"])
        print(f"{out['law']}: {n} replicates in {out['seconds']:.1f} s", flush=True)


def _fmt_p(p: float) -> str:
    return "n/a" if p != p else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


def render(merged: dict, errors: dict, seconds: dict, laws: list, args, wall: float, argv) -> str:
    """The markdown report."""
    import bayescale as bs
    from bayescale.sbc import RHAT_FAIL

    cmd = "python benchmarks/sbc_full.py " + " ".join(argv if argv is not None else sys.argv[1:])
    date = _dt.date.today().isoformat()
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}"
    found = bs.io.versions() | {"bayescale": bs.__version__}  # also when run from a checkout
    versions = ", ".join(f"{k} {v}" for k, v in found.items())
    lines = [
        "# Simulation-based calibration of the law catalogue",
        "",
        f"Produced by `{cmd.strip()}` on {date}; machine: {machine}; {args.workers} worker process(es); "
        f"wall time {wall / 60:.1f} min; {versions}.",
        "",
        f"**Replications: {args.reps} per law** (the full run uses 200+). Each replicate: {args.chains} NUTS "
        f"chains x ({args.warmup} warm-up + {args.thin * args.draws // args.chains} draws), thinned to "
        f"{args.draws} draws, so ranks lie in 0..{args.draws}; seed {args.seed}.",
        "",
        "## Method",
        "",
        "Simulation-based calibration (Talts et al. 2018, arXiv:1804.06788; Modrák et al. 2023, "
        "arXiv:2211.02383) on each law's default design (`bayescale.sbc.design`: 3 families x 5 sizes "
        "x 5 token budgets, each (family, size) one run evaluated at the 5 budgets, so the model has run "
        "effects; learning-rate schedules for schedule laws). Each replicate draws every parameter and a "
        "data set from the prior predictive of the fitted model (`bayescale.sbc.sbc`), fits it by NUTS "
        "started at the true draw, and ranks the true value among the posterior draws. Quantities: the "
        "law's parameters (per family where they are not shared), population and noise parameters, and "
        "`log_lik`, the log-likelihood of the whole data set (a data-dependent test quantity). With "
        "fewer than 5 families, parameters pooled partially by default are fitted per family, as "
        "`bs.fit` does. The reference of `floor()` priors is fixed at 2.0 (in `bs.fit` it is each "
        "family's smallest observation, which makes the prior depend on the data). Prior draws for "
        "which the law is non-finite or leaves the outcome's range somewhere on the design (the model "
        "then clips its mean) are drawn again; their share is listed with the design, since a fit "
        "gives such parameters no posterior mass and so uses the prior restricted to the others.",
        "",
        "Test: Kolmogorov-Smirnov test of the fractional ranks `(rank + U(0,1)) / (draws + 1)` "
        "against Uniform(0, 1), exact under calibration; p-values are corrected with Holm's method "
        f"across the quantities of each law, and a law is **rejected** when any corrected p-value is "
        f"below {ALPHA}. A replicate **failed** when its sampler had any divergent transition, a "
        "bulk ESS below the number of ranked draws (the thinned draws are then not near-independent), "
        "or R-hat above 1.05; failed replicates stay in the test (dropping them would condition on "
        "the data sets the sampler handles).",
        "",
        "## Summary",
        "",
        "| law | design (rows, families, runs) | replications | failed replicates (with divergences, "
        "ESS below draws, R-hat above 1.05) | smallest Holm p | "
        "verdict | s per replicate (median) | first replicate incl. compilation (s) | process time (s) | "
        "date | machine | wall time (min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    details = []
    for law in laws:
        if law in errors:
            lines.append(f"| {law} | – | – | – | – | not run: {errors[law].replace('|', '/')} | – | – | – "
                         f"| {date} | {machine} | {wall / 60:.1f} |")
            continue
        res = merged[law]
        table = res.uniformity(test="ks", correction="holm")
        st = res.settings
        worst = float(table["p_holm"].min())
        verdict = "rejected" if worst < ALPHA else "not rejected"
        failed = int(res.ranks["failed"].sum())
        timing = res.timing()
        t = timing["median_s"]
        first = res.ranks.loc[res.ranks["compiled"], "seconds"].mean()
        design = f"{st['rows']}, {st['families']}, {st['runs']}"
        redrawn = st.get("prior_redrawn", 0.0)
        if redrawn:
            design += f"; {100 * redrawn:.0f}% of prior draws redrawn"
        share = 100 * failed / res.replications
        rk = res.ranks
        why = (f"{int((rk['divergences'] > 0).sum())} div., {int((rk['min_ess'] < res.draws).sum())} ESS, "
               f"{int((rk['max_rhat'] > RHAT_FAIL).sum())} R-hat")
        lines.append(f"| {law} | {design} | {res.replications} | {failed} ({share:.0f}%: {why}) "
                     f"| {_fmt_p(worst)} | {verdict} | {t:.2f} | {first:.0f} | {seconds.get(law, 0):.0f} "
                     f"| {date} | {machine} | {wall / 60:.1f} |")
        for _, row in table.iterrows():
            details.append(f"| {law} | {row['parameter']} | {row['statistic']:.3f} "
                           f"| {_fmt_p(row['p_value'])} | {_fmt_p(row['p_holm'])} "
                           f"| {row['replications']} | {row['failed']} |")
    lines += [
        "",
        "Seconds per replicate: median wall time of a replicate inside its worker, leaving out the "
        "replicates that compiled their program (one per parameterisation and chunk, whose mean "
        "time is listed apart; a chunk that finds the program in JAX's persistent cache still "
        "traces the model). Process time: the sum over the law's chunks of their wall time in "
        "their workers.",
        "",
        "## Per quantity",
        "",
        "| law | parameter | KS statistic | p-value | p (Holm) | replications | failed replicates |",
        "|---|---|---|---|---|---|---|",
        *details,
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
