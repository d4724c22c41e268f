"""Markdown sections of benchmarks/RESULTS.md from the benchmarks' JSON results.

    python benchmarks/report.py peers results_peers_cpu2.json
    python benchmarks/report.py bootstrap results_bootstrap_cpu2.json
    python benchmarks/report.py batch results_batch_cpu2.json
    python benchmarks/report.py scaling results_scaling_cpu2.json

Each prints one section; ``make bench`` joins them into RESULTS.md.
"""

from __future__ import annotations

import json
import sys


def _versions(res: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in res["versions"].items())


def _head(res: dict, command: str) -> list:
    return [f"`{command}` on {res['date']}; machine: {res['machine']}; {_versions(res)}.", ""]


def peers(res: dict) -> str:
    lines = ["## 1. NUTS against NUTS: bayescale, nutpie, PyMC", "",
             *_head(res, "python benchmarks/bench_peers.py"),
             f"Same model, priors, parameterisation and data ({res['settings']}); medians over the "
             "repeats. Set-up: bayescale's MAP search, tracing and compilation (or cache load) and "
             "ArviZ conversion; nutpie's model compilation. ESS/s: minimum bulk ESS over the law's "
             "parameters and sigma, per second of total wall time. Agreement: largest |difference of "
             "posterior means| / combined Monte Carlo error against bayescale (below 4: agree).", "",
             "| case | sampler | total (s) | set-up (s) | sampling (s) | min bulk ESS | ESS/s | "
             "steps/draw | max R-hat | divergences | agrees (max z) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for case in res["cases"].values():
        for name, s in case["summary"].items():
            agree = "–" if "agree" not in s else f"{'yes' if s['agree'] else 'NO'} ({s['max_abs_z']:.1f})"
            setup = f"{s['setup_s']:.1f}" if "setup_s" in s else "–"
            sampling = f"{s['sampling_s']:.1f}" if "sampling_s" in s else "–"
            lines.append(f"| {case['name']} | {name} | {s['total_s']:.1f} | {setup} | {sampling} | "
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
    lines = ["## 4. Batched fits: `bs.fit_many` against a loop of `bs.fit`", "",
             *_head(res, "python benchmarks/bench_batch.py"),
             f"{res['fits']} data sets of `{res['law']}` ({res['rows_per_fit']} rows each), "
             f"{res['settings']}; persistent compilation cache on for both.", "",
             "| method | wall time (s) | first fit (s) | later fits, median (s) | gate passed |",
             "|---|---|---|---|---|",
             f"| loop of bs.fit | {res['loop_total_s']:.1f} | {res['loop_first_fit_s']:.1f} | "
             f"{res['loop_fit_median_s']:.2f} | {res['gate_passed']['loop']} / {res['fits']} |",
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
            lines.append(f"| {r['rows']:,} | {r['families']} | {r['parameters']} | {r['map_s']:.1f} | "
                         f"{r['compile_s']:.1f} | {r['sampling_s']:.1f} | {r['steps_per_draw']:.1f} | "
                         f"{r['grad_ms']:.3f} | {r['overhead']:.2f} | {r['peak_mb']:.0f} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    kind, path = sys.argv[1], sys.argv[2]
    with open(path) as fh:
        render = {"peers": peers, "bootstrap": bootstrap, "batch": batch, "scaling": scaling}[kind]
        print(render(json.load(fh)))
