"""Simulation-based calibration of every law in the catalogue; writes models/VALIDATION.md.

    python benchmarks/sbc_full.py [--laws power,chinchilla] [--reps 200] [--workers 16]
                                  [--chunk 50] [--draws 100] [--chains 2] [--warmup 500] [--thin 4]
                                  [--seed 0] [--out models/VALIDATION.md] [--plots DIR] [--ranks DIR]
                                  [--parts DIR] [--merge]

Each law is simulated from and fitted on its default design
(:func:`bayescale.evaluate.sbc.design`): ``reps`` replicates, split into chunks of
``chunk`` replicates that ``workers`` processes run side by side (chunks of all
laws interleaved, so the first round compiles each law once and later chunks
find the program in JAX's persistent cache).  The laws are
whatever ``models/*.toml`` holds when the script starts.  A law whose default
design or model cannot be built is listed with the reason instead of failing
the run.

With ``--parts DIR`` every chunk is written to ``DIR/<law>/`` (JSON: ranks,
settings, machine, versions) as soon as it finishes, and a chunk already there
is not run again: a run that is stopped, or split across machines and
sessions, loses at most the chunks in flight.  The report then covers every
part in ``DIR`` for the laws asked, so runs with different ``--seed`` add
replicates (same sampler settings required; a seed's replicates depend on
``--reps``, so a seed is only ever run with one ``reps``).  ``--merge`` runs
nothing and writes the report from the parts.  Text of the existing report from
its first ``## Notes`` heading on (notes written by hand) is kept.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import multiprocessing as mp
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
FULL = 200  # replications per law of the full run
ALPHA = 0.05  # family-wise level of the uniformity tests within each law (Holm)


def run_chunk(law: str, reps: int, indices: list, opts: dict) -> dict:
    """One chunk of one law's replicates; returns plain data (or the error) for the parent."""
    import warnings

    warnings.simplefilter("ignore")
    from bayescale.evaluate.sbc import sbc
    from bayescale.inference import runtime

    runtime.ensure()  # float64, host devices, compilation cache: before this process's first JAX work
    started = time.perf_counter()
    try:
        res = sbc(law, reps=reps, replicates=indices, **opts)
    except Exception as exc:  # noqa: BLE001 - a law that cannot be run is reported, not fatal
        return {"law": law, "error": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc(limit=3)}
    return {"law": law, "ranks": res.ranks.to_dict("list"), "quantities": res.quantities,
            "draws": res.draws, "settings": res.settings, "seconds": time.perf_counter() - started,
            "date": _dt.date.today().isoformat(), "machine": _machine(), "versions": _versions()}


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}"


def _versions() -> str:
    import bayescale as bs
    from bayescale.result.io import versions

    found = versions() | {"bayescale": bs.__version__}  # also when run from a checkout
    return ", ".join(f"{k} {v}" for k, v in found.items())


SAMPLER = ("draws", "chains", "warmup", "thin", "target_accept", "floor", "likelihood")


def _part_path(folder: Path, law: str, seed: int, reps: int, chunk: list) -> Path:
    return folder / law / f"seed{seed}-reps{reps}-{chunk[0]:05d}-{chunk[-1]:05d}.json"


def _load_parts(folder: Path, laws: list) -> tuple[dict, dict]:
    """Merged :class:`SBCResult` per law from its saved parts, and per-law provenance.

    Replicates of different seeds are renumbered ``seed * 100000 + i`` so they stay distinct.
    """
    from bayescale.evaluate.sbc import SBCResult, combine

    merged, info = {}, {}
    for law in laws:
        parts = [json.loads(f.read_text()) for f in sorted((folder / law).glob("*.json"))]
        if not parts:
            continue
        first = parts[0]["settings"]
        reps_of_seed = {}
        for part in parts:
            st = part["settings"]
            differ = [k for k in SAMPLER if st.get(k) != first.get(k)]
            if differ:
                raise SystemExit(f"{law}: saved parts differ in {differ}; keep one sampler setting "
                                 f"per law in {folder / law}.")
            if reps_of_seed.setdefault(st["seed"], st["reps"]) != st["reps"]:
                raise SystemExit(f"{law}: seed {st['seed']} was run with reps {reps_of_seed[st['seed']]} "
                                 f"and {st['reps']}; its replicates overlap. Add replicates with another "
                                 f"--seed.")
        results = []
        for part in parts:
            ranks = pd.DataFrame(part["ranks"])
            ranks.insert(1, "seed", part["settings"]["seed"])
            ranks["replicate"] = ranks["replicate"] + 100000 * part["settings"]["seed"]
            results.append(SBCResult(law, ranks, part["quantities"], part["draws"], part["settings"]))
        merged[law] = combine(results)
        info[law] = {"seconds": sum(p["seconds"] for p in parts),
                     "seeds": sorted(reps_of_seed),
                     "dates": sorted({p["date"] for p in parts}),
                     "machines": sorted({p["machine"] for p in parts}),
                     "versions": sorted({p["versions"] for p in parts}),
                     "settings": first}
    return merged, info


def _run_task(task: tuple) -> dict:
    return run_chunk(*task)


def _init_worker():
    # bayescale's JAX settings (float64, host devices, cache) are applied by run_chunk, before the
    # worker's first JAX work; only output is quietened here
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
    parser.add_argument("--parts", default=None,
                        help="folder of per-chunk results: written as chunks finish, skipped when present")
    parser.add_argument("--merge", action="store_true", help="run nothing: report the parts in --parts")
    args = parser.parse_args(argv)
    if args.merge and not args.parts:
        parser.error("--merge needs --parts DIR")

    # every worker pins XLA to one thread: the parallelism is across processes, and a
    # GPU, if any, would be shared badly by many processes for models this small
    os.environ["JAX_PLATFORMS"] = "cpu"
    flags = os.environ.get("XLA_FLAGS", "")
    if args.workers > 1 and "intra_op_parallelism_threads" not in flags:
        os.environ["XLA_FLAGS"] = (f"{flags} --xla_cpu_multi_thread_eigen=false "
                                   f"intra_op_parallelism_threads=1").strip()
    import bayescale as bs
    from bayescale.evaluate.sbc import SBCResult, combine
    from bayescale.laws.spec import law_names

    laws = args.laws.split(",") if args.laws else law_names()
    opts = {"draws": args.draws, "chains": args.chains, "warmup": args.warmup, "thin": args.thin,
            "seed": args.seed}
    chunks = [list(range(k, min(k + args.chunk, args.reps))) for k in range(0, args.reps, args.chunk)]
    tasks = [(law, args.reps, c, opts) for c in chunks for law in laws]  # laws interleaved
    parts = Path(args.parts) if args.parts else None
    if parts is not None:
        tasks = [] if args.merge else [
            t for t in tasks if not _part_path(parts, t[0], args.seed, args.reps, t[2]).exists()]
    started = time.perf_counter()
    outputs = []

    def keep(out):
        outputs.append(out)
        _report_progress(out)
        if parts is not None and "error" not in out:
            path = _part_path(parts, out["law"], args.seed, args.reps, out["ranks"]["replicate"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(out, default=float), encoding="utf-8")

    if args.workers > 1 and len(tasks) > 1:
        with mp.get_context("spawn").Pool(args.workers, initializer=_init_worker) as pool:
            for out in pool.imap_unordered(_run_task, tasks, chunksize=1):
                keep(out)
    else:
        for task in tasks:
            keep(run_chunk(*task))
    wall = time.perf_counter() - started

    errors = {}
    for out in outputs:
        if "error" in out:
            errors.setdefault(out["law"], out["error"])
    if parts is not None:
        merged, info = _load_parts(parts, laws)
    else:
        results = {}
        for out in outputs:
            if "error" not in out:
                res = SBCResult(out["law"], pd.DataFrame(out["ranks"]), out["quantities"], out["draws"],
                                out["settings"])
                results.setdefault(out["law"], []).append((res, out))
        merged = {law: combine(r for r, _ in rs) for law, rs in results.items()}
        info = {law: {"seconds": sum(o["seconds"] for _, o in rs), "seeds": [args.seed],
                      "dates": [rs[0][1]["date"]], "machines": [rs[0][1]["machine"]],
                      "versions": [rs[0][1]["versions"]], "settings": rs[0][0].settings}
                for law, rs in results.items()}
    for law in list(merged):
        if law in errors:  # some chunks failed: report the law as failed, not a partial result
            errors[law] += f" (in some chunks; {merged.pop(law).replications} replicates ran)"
    text = render(merged, errors, info, laws, args, wall, argv)
    out_path = Path(args.out)
    if out_path.exists():  # keep the notes written by hand
        old = out_path.read_text(encoding="utf-8")
        if "\n## Notes" in old:
            text += "\n" + old[old.index("\n## Notes") + 1:]
    out_path.write_text(text, encoding="utf-8")
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
            fig = bs.plot(res)
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


def render(merged: dict, errors: dict, info: dict, laws: list, args, wall: float, argv) -> str:
    """The markdown report; ``info`` holds each law's provenance (see :func:`_load_parts`)."""
    from bayescale.evaluate.sbc import RHAT_FAIL

    cmd = "python benchmarks/sbc_full.py " + " ".join(argv if argv is not None else sys.argv[1:])
    date = _dt.date.today().isoformat()
    reps = sorted({res.replications for res in merged.values()})
    samplers = sorted({(st["chains"], st["warmup"], st["thin"], st["draws"])
                       for st in (i["settings"] for i in info.values())})
    sampler_text = "; ".join(
        f"{c} NUTS chains x ({w} warm-up + {th * d // c} draws), thinned to {d} draws, so ranks lie "
        f"in 0..{d}" for c, w, th, d in samplers)
    versions = sorted({v for i in info.values() for v in i["versions"]})
    lines = [
        "# Simulation-based calibration of the law catalogue",
        "",
        f"Report written by `{cmd.strip()}` on {date} ({wall / 60:.1f} min of sampling in this "
        f"invocation, {args.workers} worker process(es)). Versions of the runs: {'; '.join(versions)}.",
        "",
        f"**Status: {sum(r.replications >= FULL for r in merged.values())} of {len(laws)} laws have "
        f"{FULL}+ replications** (the full run); the summary gives each law's count.",
        "",
        f"**Replications: {', '.join(map(str, reps)) or 'none'} per law** (the full run uses {FULL}+). "
        f"Each replicate: {sampler_text or 'n/a'}. Runs with different seeds are joined per law "
        "(the seeds are listed).",
        "",
        "## Method",
        "",
        "Simulation-based calibration (Talts et al. 2018, arXiv:1804.06788; Modrák et al. 2023, "
        "arXiv:2211.02383) on each law's default design (`bayescale.evaluate.sbc.design`: 3 families "
        "x 5 sizes x 5 token budgets, each (family, size) one run evaluated at the 5 budgets, so the "
        "model has run effects; learning-rate schedules for schedule laws). Each replicate draws every "
        "parameter and a data set from the prior predictive of the fitted model "
        "(`bayescale.evaluate.sbc.sbc`), fits it by NUTS "
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
        "| law | design (rows, families, runs) | replications (seeds) | failed replicates (with "
        "divergences, ESS below draws, R-hat above 1.05) | smallest Holm p | verdict | "
        "s per replicate (median) | first replicate incl. compilation (s) | process time (s) | "
        "dates | machines |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    details = []
    for law in laws:
        if law in errors:
            lines.append(f"| {law} | – | – | – | – | not run: {errors[law].replace('|', '/')} | – | – | – "
                         f"| {date} | {_machine()} |")
            continue
        if law not in merged:
            lines.append(f"| {law} | – | 0 | – | – | not run yet | – | – | – | – | – |")
            continue
        res, meta = merged[law], info[law]
        table = res.uniformity(test="ks", correction="holm")
        st = res.settings
        worst = float(table["p_holm"].min())
        verdict = "rejected" if worst < ALPHA else "not rejected"
        failed = int(res.ranks["failed"].sum())
        t = res.timing()["median_s"]
        first = res.ranks.loc[res.ranks["compiled"].astype(bool), "seconds"].mean()
        design = f"{st['rows']}, {st['families']}, {st['runs']}"
        redrawn = st.get("prior_redrawn", 0.0)
        if redrawn:
            design += f"; {100 * redrawn:.0f}% of prior draws redrawn"
        share = 100 * failed / res.replications
        rk = res.ranks
        why = (f"{int((rk['divergences'] > 0).sum())} div., {int((rk['min_ess'] < res.draws).sum())} ESS, "
               f"{int((rk['max_rhat'] > RHAT_FAIL).sum())} R-hat")
        seeds = ", ".join(map(str, meta["seeds"]))
        lines.append(f"| {law} | {design} | {res.replications} ({seeds}) | {failed} ({share:.0f}%: {why}) "
                     f"| {_fmt_p(worst)} | {verdict} | {t:.2f} | {first:.0f} | {meta['seconds']:.0f} "
                     f"| {', '.join(meta['dates'])} | {'; '.join(meta['machines'])} |")
        for _, row in table.iterrows():
            details.append(f"| {law} | {row['parameter']} | {row['statistic']:.3f} "
                           f"| {_fmt_p(row['p_value'])} | {_fmt_p(row['p_holm'])} "
                           f"| {row['replications']} | {row['failed']} |")
    rejected = [law for law in merged
                if merged[law].uniformity(test="ks", correction="holm")["p_holm"].min() < ALPHA]
    # the same tests corrected across the whole catalogue: with ~200 quantities, a raw p of 0.005
    # somewhere is expected by chance even when every law is calibrated
    every = pd.concat([merged[law].uniformity(test="ks", correction="holm") for law in merged])
    from bayescale.evaluate.sbc import adjust

    every["p_all"] = adjust(every["p_value"].to_numpy(), "holm")
    worst = every.sort_values("p_value").iloc[0] if len(every) else None
    catalogue = ("" if worst is None else
                 f"Across the catalogue (Holm's correction over all {len(every)} quantities of the "
                 f"{len(merged)} laws): smallest corrected p-value {_fmt_p(float(worst['p_all']))}, "
                 f"for the smallest raw one, {_fmt_p(float(worst['p_value']))} ({worst['law']}, "
                 f"{worst['parameter']}).")
    lines += [
        "",
        "Seconds per replicate: median wall time of a replicate inside its worker, leaving out the "
        "replicates that compiled their program (one per parameterisation and chunk, whose mean "
        "time is listed apart; a chunk that finds the program in JAX's persistent cache still "
        "traces the model). Process time: the sum over the law's chunks of their wall time in "
        "their workers.",
        "",
        f"Laws rejected at the family-wise level {ALPHA}: {', '.join(rejected) or 'none'}.",
        "",
        catalogue,
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
