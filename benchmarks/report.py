"""benchmarks/RESULTS.md from the benchmarks' JSON results.

    python benchmarks/report.py            # rewrites benchmarks/RESULTS.md
    python benchmarks/report.py peers benchmarks/results_peers_cpu2.json   # one section, printed

``make bench`` runs every benchmark (each writes ``results_<name>_<machine>.json``)
and then this script, which writes the targets table and sections 1-4 from
whatever results exist, and keeps the part of RESULTS.md below the line
:data:`KEPT` (written by hand: single-fit timings and the GPU readings).
"""

from __future__ import annotations

import glob
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEPT = "<!-- written by hand below this line; report.py keeps it -->"
SWEEP_HEAD = "## 6. Many fits from real data"  # written after the hand-written part, and replaced


def _versions(res: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in res["versions"].items())


def _head(res: dict, command: str) -> list:
    return [f"`{command}` on {res['date']}; machine: {res['machine']}; {_versions(res)}.", ""]


def peers(res: dict) -> str:
    cores = f", {res['cores']} core(s)" if "cores" in res else ""
    lines = [f"## 1. NUTS against NUTS: bayescale's backends, nutpie, PyMC{cores}", "",
             *_head(res, "python benchmarks/bench_peers.py"),
             f"Same model, priors, parameterisation and data ({res['settings']}{cores}); medians over "
             "the repeats. Samplers: `bayescale-numpyro` (NumPyro NUTS, windowed dense mass matrix from "
             "draws, target_accept 0.95/0.99), `bayescale-lowrank` (BlackJAX NUTS, Fisher-divergence "
             "low-rank metric from draws and gradients, target_accept 0.8), `nutpie-low_rank` (nutpie "
             "`adaptation=\"low_rank\"`, formerly `low_rank_modified_mass_matrix=True`, its best "
             "documented setting for correlated posteriors, target_accept 0.8), `nutpie-diag` (its "
             "default). Set-up: bayescale's MAP search, tracing and compilation (or cache load) and "
             "ArviZ conversion; nutpie's model compilation. ESS/s: minimum bulk ESS over the law's "
             "parameters and sigma, per second of total wall time. Agreement: largest |difference of "
             "posterior means| / combined Monte Carlo error against bayescale's first sampler (below 4: "
             "agree). First run: total seconds of the first repeat, in a process that had not fitted "
             "the case before (later `bayescale-lowrank` repeats reuse its traced program; nutpie "
             "compiles again in every repeat).", "",
             "| case | sampler | total (s) | first run (s) | set-up (s) | sampling (s) | min bulk ESS | "
             "ESS/s | steps/draw | max R-hat | divergences | agrees (max z) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for case in res["cases"].values():
        for name, s in case["summary"].items():
            agree = "–" if "agree" not in s else f"{'yes' if s['agree'] else 'NO'} ({s['max_abs_z']:.1f})"
            setup = f"{s['setup_s']:.1f}" if "setup_s" in s else "–"
            sampling = f"{s['sampling_s']:.1f}" if "sampling_s" in s else "–"
            runs = case.get("runs", {}).get(name) or []
            first = f"{runs[0]['total_s']:.1f}" if runs and "total_s" in runs[0] else "–"
            lines.append(f"| {case['name']} | {name} | {s['total_s']:.1f} | {first} | {setup} | {sampling} | "
                         f"{s['min_ess_bulk']:.0f} | {s['ess_per_s']:.0f} | {s['steps_per_draw']:.1f} | "
                         f"{s['max_rhat']:.3f} | {', '.join(map(str, s['divergences']))} | {agree} |")
    return "\n".join(lines) + "\n"


def bootstrap(res: dict) -> str:
    med = sorted(res["bayescale_fit_s"])[len(res["bayescale_fit_s"]) // 2]
    grid = sorted(res["grid_fit_s"])[len(res["grid_fit_s"]) // 2]
    lines = ["## 2. Time to a 95% interval: the bootstrap practice against one fit", "",
             *_head(res, "python benchmarks/bench_bootstrap.py"),
             f"`chinchilla_epoch` ({res['rows']} runs). Practice: Huber loss on log L, L-BFGS-B from "
             f"a grid of {res['grid_starts']} starts, {res['resamples']} bootstrap refits.", "",
             "| method | wall time (s) |", "|---|---|",
             f"| one fit from the full grid | {grid:.1f} |",
             f"| {res['resamples']} refits, each from the full-data optimum (run) | "
             f"{res['bootstrap_warm_s']:.1f} |",
             f"| {res['resamples']} refits, each from the full grid (projected: refits x grid fit) | "
             f"{res['bootstrap_full_grid_projected_s']:.0f} |",
             f"| bayescale, one fit (4 chains x 1000 + 1000), median | {med:.1f} |", "",
             f"Speed-up of the bayescale fit: {res['speedup_vs_warm_bootstrap']:.1f}x against the "
             f"warm-started bootstrap, {res['speedup_vs_full_grid_bootstrap']:.0f}x against the projected "
             "full-grid one.", "",
             "| quantity | bootstrap 95% (this run) | Epoch's published bootstrap 95% | bayescale 95% "
             "credible |", "|---|---|---|---|"]
    for k, v in res["intervals"].items():
        def fmt(iv):
            return f"{iv[0]:.4g} – {iv[1]:.4g}"
        lines.append(f"| {k} | {fmt(v['bootstrap'])} | {fmt(v['published'])} | {fmt(v['bayescale'])} |")
    return "\n".join(lines) + "\n"


def batch(res: dict) -> str:
    z = res["mean_difference_in_mcse"]
    timed = res.get("loop_fits_timed", res["fits"])
    loop_note = "" if timed == res["fits"] else f" ({timed} timed, scaled to {res['fits']})"
    mode = ("vectorised (jax.vmap)" if res.get("vectorize") else "chains side by side over the host devices"
            if res.get("devices") else "sequential in one program")
    lines = [f"## 4. Batched fits: `bs.fit_many` against a loop of `bs.fit` ({res.get('device', 'cpu')}, "
             f"{mode})", "",
             *_head(res, "python benchmarks/bench_batch.py"),
             f"{res['fits']} data sets of `{res['law']}` ({res['rows_per_fit']} rows each), "
             f"{res['settings']}; persistent compilation cache on for both.", "",
             "| method | wall time (s) | first fit (s) | later fits, median (s) | gate passed |",
             "|---|---|---|---|---|",
             f"| loop of bs.fit{loop_note} | {res['loop_total_s']:.1f} | {res['loop_first_fit_s']:.1f} | "
             f"{res['loop_fit_median_s']:.2f} | {res['gate_passed']['loop']} / {timed} |",
             f"| bs.fit_many (median of {len(res['fit_many_s'])}) | {res['fit_many_median_s']:.1f} | "
             f"{res['fit_many_first_fit_s'][0]:.1f} | {res['fit_many_later_fit_median_s']:.2f} | "
             f"{res['gate_passed']['fit_many']} / {res['fits']} |", "",
             f"Speed-up: **{res['speedup']:.1f}x** (target 5x). Same answers: the posterior means of "
             f"the law's parameters differ between the two by a median of {z['median']:.2f} combined "
             f"Monte Carlo standard errors (95th percentile {z['p95']:.2f}; {100 * z['share_above_3']:.1f}% "
             "above 3), as two independent samplings of one posterior should (|N(0, 1)|: 0.67, 1.96, 0.3%)."]
    return "\n".join(lines) + "\n"


def scaling(res: dict) -> str:
    lines = ["## 3. Cost against data size and number of families (CPU)", "",
             *_head(res, "python benchmarks/bench_scaling.py"),
             f"Chinchilla, {res['settings']}, one fresh process per row.", ""]
    for part, title in (("points", "rows (3 families, no run effects)"),
                        ("families", "families (50 rows each, E, a, b partially pooled)")):
        lines += [f"**Against {title}**", "",
                  "| rows | families | parameters | MAP search (s) | compile (s) | sampling (s) | "
                  "steps/draw | gradient (ms) | sampler overhead | peak memory (MB) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in res[part]:
            if "error" in r:
                lines.append(f"| {r['rows']} | {r['families']} | failed: {' '.join(r['error'])} |"
                             + " |" * 7)
                continue
            if "map_s" not in r:  # gradient and memory only
                lines.append(f"| {r['rows']:,} | {r['families']} | {r['parameters']} | – | – | – | – | "
                             f"{r['grad_ms']:.3f} | – | {r['peak_mb']:.0f} |")
                continue
            # compile = first run - second run of the same program; below the runs' noise it reads 0
            compile_s = f"{r['compile_s']:.1f}" if r["compile_s"] > 0 else "~0 (within noise)"
            lines.append(f"| {r['rows']:,} | {r['families']} | {r['parameters']} | {r['map_s']:.1f} | "
                         f"{compile_s} | {r['sampling_s']:.1f} | {r['steps_per_draw']:.1f} | "
                         f"{r['grad_ms']:.3f} | {r['overhead']:.2f} | {r['peak_mb']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def sweep(res: dict) -> str:
    lines = ["## 6. Many fits from real data on each executor (`bs.sweep`)", "",
             *_head(res, "python benchmarks/bench_sweep.py"),
             f"{res['jobs']} fits of `power` ({res['groups']['pythia_evals']} task x metric x family x "
             f"origin groups of `pythia_evals`, {res['groups']['obs_scaling']} benchmark x origin groups "
             f"of `obs_scaling`; {res['cuts']} rolling origins each; {res['rows']:,} rows in all), "
             f"{res['settings']['chains']} chains x ({res['settings']['warmup']} warm-up + "
             f"{res['settings']['draws']} draws) per fit: short chains that size the benchmark to this "
             "machine, below the gate's bulk ESS of 400 by design, so the gate flags every fit (its "
             "verdict does not change the throughput). The loop of `bs.fit` and the first two sweeps ran "
             "on the same random subset of the jobs, whose mixed shapes share little compiled code; the "
             "rows ran one after another in one process run.", "",
             "| executor | fits | workers | wall (s) | fits/s | fit time, median (s) | engine overhead "
             "per fit (s) | parent time per result (ms) | status |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in res["executors"]:
        parent = f"{r['parent_per_result_ms']:.1f}" if r.get("parent_per_result_ms") else "–"
        status = ", ".join(f"{n} {k}" for k, n in r.get("status", {}).items()) or "–"
        start = f" (+{r['cluster_start_s']:.1f} s cluster start)" if "cluster_start_s" in r else ""
        lines.append(f"| {r['executor']} | {r['fits']} | {r['workers']} | {r['wall_s']:.1f}{start} | "
                     f"{r['fits_per_s']:.3f} | {r['fit_s_median']:.2f} | {r['overhead_per_fit_s']:.2f} | "
                     f"{parent} | {status} |")
    basis = res["projection_basis"]
    lines += ["", f"Dask and the local default gave identical parameter tables: "
              f"{'yes' if res['dask_equals_local'] else '**no**'}. Engine overhead per fit: (workers x "
              "wall - the fits' own time in their workers) / fits.", "",
              f"**Projection, not a measurement**: {basis['seconds_per_fit']:.2f} s per fit (workers x "
              f"wall / fits of the local default: fit time plus engine overhead) spread over W workers, "
              f"but no faster than one task ({basis.get('tasks', '?')} tasks of up to "
              f"{basis.get('chunk', '?')} fits of one shape, each compiling once) nor than the parent "
              f"takes in results ({1e3 * basis['parent_seconds_per_result']:.1f} ms each):", "",
              "| workers | busy workers | projected wall (s) | projected fits/s |", "|---|---|---|---|"]
    for w, p in res["projection"].items():
        lines.append(f"| {w} | {p.get('busy_workers', w)} | {p['wall_s']:.1f} | {p['fits_per_s']:.1f} |")
    return "\n".join(lines) + "\n"


def _load(name: str) -> list:
    out = []
    for path in sorted(glob.glob(str(HERE / f"results_{name}_*.json"))):
        with open(path) as fh:
            out.append(json.load(fh))
    return out


def _cores(res: dict) -> str:
    """The cores a run used: its ``--cores`` when recorded, else the machine's."""
    return f"{res['cores']} CPU core(s)" if "cores" in res else res["machine"].split(",")[1].strip()


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def targets(found: dict) -> str:
    """The issue's targets, each with its measured number (a missed target stays visible)."""
    rows = ["| target | measured | verdict |", "|---|---|---|"]
    for res in found.get("peers", []):
        summary = res["cases"].get("l2l", {}).get("summary", {})
        l2l = summary.get("bayescale") or summary.get("bayescale-numpyro")
        if l2l:
            ok = l2l["total_s"] < 30 and l2l["max_rhat"] <= 1.01
            rows.append(f"| hierarchical Chinchilla on loss_to_loss: R-hat <= 1.01 and < 30 s for 4 x 1000 "
                        f"draws ({_cores(res)}) | {l2l['total_s']:.1f} s, R-hat "
                        f"{l2l['max_rhat']:.3f} | {_met(ok)} |")
        for case in res["cases"].values():
            s = case["summary"]
            peer = s.get("nutpie-low_rank") or s.get("nutpie")
            for name in [n for n in s if n.startswith("bayescale")]:
                if peer is None:
                    break
                ratio = s[name]["ess_per_s"] / peer["ess_per_s"]
                on = f", {res['cores']} core(s)" if "cores" in res else ""
                rows.append(f"| min bulk-ESS/s at least nutpie low-rank's{on}: {case['name']}, {name} | "
                            f"{s[name]['ess_per_s']:.0f} vs {peer['ess_per_s']:.0f} "
                            f"({ratio:.2f}x) | {_met(ratio >= 1)} |")
    for res in found.get("bootstrap", []):
        sp = res["speedup_vs_warm_bootstrap"]
        rows.append(f"| 95% interval >= 10x faster than the {res['resamples']}-refit bootstrap | "
                    f"{sp:.1f}x (warm-started refits, run); {res['speedup_vs_full_grid_bootstrap']:.0f}x "
                    f"(full-grid refits, projected) | {_met(sp >= 10)} against the run refits |")
    for res in found.get("batch", []):
        rows.append(f"| batched fits >= 5x a loop, {res['fits']} replicates of `{res['law']}` | "
                    f"{res['speedup']:.1f}x | {_met(res['speedup'] >= 5)} |")
    for res in found.get("extrapolation", []):
        med = res["median_s"]
        rows.append(f"| fit with calibrated extrapolation <= 3x a plain fit on loss_to_loss | "
                    f"{res['ratio']:.1f}x ({med['calibrated']:.0f} s vs {med['plain']:.0f} s) | "
                    f"{_met(res['ratio'] <= 3)} |")
    rows.append("| GPU >= 10x CPU throughput for 10^5+ points or 100+ fits | H100: 100 vectorised fits "
                "60.9 s vs 83.0 s on 2 CPU cores (1.4x); 10^5 rows not finished in 180 s (section 5b) "
                "| not met |")
    return "\n".join(rows) + "\n"


def corpus_runs() -> dict:
    """The convergence corpus's results: run folder (backend, target) -> list of per-fit records."""
    runs = {}
    for path in sorted((HERE / "convergence").glob("*/*.json")):
        runs.setdefault(path.parent.name, []).append(json.loads(path.read_text(encoding="utf-8")))
    return runs


def corpus_targets(runs: dict) -> list:
    rows = []
    for run, fits in runs.items():
        ok = sum(f["verdict"] == "passed" for f in fits)
        backend, _, target = run.partition("_ta")
        how = (f"at target_accept {target}, not the default ({backend})" if target
               else f"at default settings ({run})")
        rows.append(f"| convergence corpus: >= 95% of the fits pass the gate {how} | "
                    f"{ok} of {len(fits)} ({ok / len(fits):.0%}) | {_met(ok >= 0.95 * len(fits))} |")
    return rows


def corpus(runs: dict) -> str:
    """Section 7: pass rates of the convergence corpus per data set and run (the fits themselves
    are listed in convergence/RESULTS.md)."""
    names = list(runs)
    lines = ["## 7. Convergence corpus (`benchmarks/convergence/run.py`)", "",
             "Plain fits (`extrapolation=False`) a user would run on the shared sets, default settings, "
             "seed 0; every fit with its diagnostics, and the gate's words for each failure, in "
             "[`convergence/RESULTS.md`](convergence/RESULTS.md). Passed / fitted, per data set:", "",
             "| data set | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    sets = sorted({f["case"].split("/")[0] for fits in runs.values() for f in fits})
    for name in sets:
        cells = []
        for run in names:
            fits = [f for f in runs[run] if f["case"].split("/")[0] == name]
            ok = sum(f["verdict"] == "passed" for f in fits)
            cells.append(f"{ok} / {len(fits)}" if fits else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(path: Path = HERE / "RESULTS.md") -> str:
    found = {name: _load(name) for name in ("peers", "bootstrap", "scaling", "batch", "sweep",
                                            "extrapolation")}
    parts = ["# Benchmark results", "",
             "Written by `python benchmarks/report.py` (run by `make bench`) from the JSON results of "
             "`bench_peers.py`, `bench_bootstrap.py`, `bench_scaling.py`, `bench_batch.py` and "
             "`bench_sweep.py` (section 6, after the hand-written part), and `bench_extrapolation.py` "
             "(its targets row); each "
             "section names its machine, versions and date. Comparisons run side by side in one "
             "process; times are medians of the repeats unless a table says otherwise.", "",
             "## Targets", "", targets(found)]
    runs = corpus_runs()
    parts[-1] = parts[-1].rstrip("\n") + "".join("\n" + row for row in corpus_targets(runs)) + "\n"
    for name, render in (("peers", peers), ("bootstrap", bootstrap), ("scaling", scaling),
                         ("batch", batch)):
        parts += [render(res) for res in found[name]]
    if runs:
        parts.append(corpus(runs))
    text = "\n".join(parts)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if KEPT in old:
        kept = old[old.index(KEPT):]
        text += "\n" + kept.split(SWEEP_HEAD)[0].rstrip() + "\n"
    text += "".join("\n" + sweep(res) for res in found["sweep"])
    path.write_text(text, encoding="utf-8")
    return text


if __name__ == "__main__":
    if len(sys.argv) == 1:
        write_results()
    else:
        kind, path = sys.argv[1], sys.argv[2]
        with open(path) as fh:
            render = {"peers": peers, "bootstrap": bootstrap, "batch": batch, "scaling": scaling,
                      "sweep": sweep}[kind]
            print(render(json.load(fh)))
