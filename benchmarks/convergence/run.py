"""Convergence corpus: the fits a user would run on the shared data sets, at default settings.

One command::

    python benchmarks/convergence/run.py [--backend numpyro|lowrank] [--only PREFIX,...] [--out DIR]

Each case is one plain fit (``bs.fit(..., extrapolation=False)``: the extrapolation
calibration's nested fits are fits of the same law on fewer rows, and are counted
by the cases of their own size) with the package's default sampler settings and
seed 0.  Per fit it records the backend, wall time, minimum bulk and tail ESS over
the law's parameters, maximum R-hat, divergences, the lowest chain E-BFMI,
leapfrog steps per draw, and the gate's verdict; for a failure the gate's own
messages (cause and remedy), for a refusal the error.  One JSON file per case is
written into ``DIR/<backend>/`` as it ends, so a run can be resumed; then
``DIR/RESULTS.md`` is rewritten from every backend's files found there.

The cases (70): each grouped data set's fit, its leave-one-family-out fits, each
group of the sweeps a user would run (per curve of ``revisiting_nsl``, per size of
the OLMo learning curves, per task and metric of ``pythia_evals``), the pooled
``obs_scaling`` fits, the single-family ladders and 30/100/300 simulated families.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NN_DD = {"N": "params", "D": "tokens"}


def _case_study_law(name: str):
    """A law file kept beside a case study (read, never executed)."""
    from bayescale import Law

    path = ROOT / "case_studies" / name
    return Law.from_toml(path.read_text(encoding="utf-8"), origin=str(path))


def _obs_law(chance: float):
    from bayescale import Law

    path = ROOT / "case_studies" / "obs_scaling" / "law.toml"
    text = path.read_text(encoding="utf-8")
    if chance != 0.25:  # the template is written for chance 0.25 (as the case study does)
        text = text.replace("0.25 + 0.75 * ", f"{chance!r} + {1 - chance!r} * ", 1)
        text = text.replace('name = "obs_sigmoid"', f'name = "obs_sigmoid_g{round(100 * chance)}"', 1)
    return Law.from_toml(text, origin=f"{path} (chance {chance})")


def _families_out(name, df, kw, column):
    for family in sorted(df[column].unique()):
        yield f"{name}/without_{family}", lambda f=family: (df[df[column] != f], kw)


def cases(bs):
    """Yield (name, thunk) pairs; the thunk returns (frame, fit keywords)."""
    load = bs.datasets.load
    epoch = load("chinchilla_epoch")
    yield "chinchilla_epoch/all", lambda: (epoch, dict(law="chinchilla", y="loss", x=NN_DD))

    gadre = load("gadre_overtrain")
    gadre = gadre[~gadre["gadre_target"]]
    kw = dict(law="chinchilla_shared", y="loss", x=NN_DD, se="loss_se", group="dataset")
    yield "gadre_overtrain/grouped", lambda: (gadre, kw)
    yield from _families_out("gadre_overtrain", gadre, kw, "dataset")

    l2l = load("loss_to_loss", split="sweep")
    kw = dict(law="chinchilla", y="loss_c4_val", x=NN_DD, group="corpus")
    yield "loss_to_loss/grouped", lambda: (l2l, kw)
    yield from _families_out("loss_to_loss", l2l, kw, "corpus")

    yield "olmo_ladder/final", lambda: (load("olmo_ladder"), dict(law="chinchilla", y="loss", x=NN_DD))
    olmo = load("olmo_ladder", final=False)
    for n in sorted(olmo["params"].unique()):  # a learning curve per size: loss against tokens
        def curve(n=n):
            d = olmo[(olmo["params"] == n) & (olmo["step"] > 0)]
            d = d.iloc[:: max(1, len(d) // 60)]  # about 60 checkpoints: neighbours are nearly equal
            return d, dict(law="power", y="loss", x="tokens")
        yield f"olmo_ladder/curve_{n:.3g}", curve

    porian = load("porian_isoflop", table="optima").dropna(subset=["loss_opt", "loss_star_std"])
    porian = porian.assign(loss_se=porian["loss_star_std"] * porian["loss_opt"])
    yield "porian_isoflop/loss_opt", lambda: (porian, dict(law="compute", y="loss_opt", x="flops",
                                                           group="setting", se="loss_se"))
    yield "porian_isoflop/n_opt", lambda: (porian.dropna(subset=["n_opt"]),
                                           dict(law="loglinear", y="n_opt", x="flops", group="setting"))

    nsl = load("revisiting_nsl")
    nsl = nsl[nsl["train"]]
    for curve in sorted(nsl["curve"].unique()):
        yield f"revisiting_nsl/{curve}", lambda c=curve: (nsl[nsl["curve"] == c],
                                                         dict(law="power", y="loss", x="x"))

    obs = load("obs_scaling")
    obs = obs[obs["flops"].notna() & (obs["tokens"] <= 1e14)]  # as the case study: 6ND known
    for bench, chance in {"mmlu": 0.25, "arc_c": 0.25, "hellaswag": 0.25, "winograd": 0.5}.items():
        d = obs.dropna(subset=[bench])
        kw = dict(law=_obs_law(chance), y=bench, x={"C": "flops"}, group="family",
                  min_rows_per_family=1)
        yield f"obs_scaling/{bench}", lambda d=d, kw=kw: (d, kw)
        for family in ("Llama", "Qwen1.5"):  # two leave-one-family-out fits per benchmark
            yield f"obs_scaling/{bench}_without_{family}", (
                lambda d=d, kw=kw, f=family: (d[d["family"] != f], kw))

    pythia = load("pythia_evals", num_fewshot=0)
    pythia = pythia[pythia["family"].isin(["pythia", "pythia-deduped"]) & (pythia["step"] >= 3000)]
    pythia = pythia.rename(columns={"value": "y", "stderr": "y_se"})
    acc_law = _case_study_law("pythia_evals/logit_chinchilla.toml")
    for (task, metric), d in pythia.groupby(["task", "metric"]):
        d = d[d["step"] % 13000 == 0]  # every 13th thousand step: 11 checkpoints per model
        law = "chinchilla" if metric == "ppl" else acc_law
        y = d.assign(y=np.log(d["y"])) if metric == "ppl" else d  # LAMBADA loss = ln(perplexity)
        yield f"pythia_evals/{task}_{metric}", lambda d=y, law=law: (
            d, dict(law=law, y="y", x=NN_DD, group="family", se=None if law == "chinchilla" else "y_se"))

    sys.path.insert(0, str(HERE.parent))
    from bench_scaling import simulate  # the ladders of bench_peers: 50 rows per family

    for families in (30, 100, 300):
        yield f"simulated/{families}_families", lambda f=families: (
            simulate(50 * f, f), dict(law="chinchilla", y="loss", x=NN_DD, group="family"))


def _measure(fit, seconds: float) -> dict:
    import arviz_stats as azs

    s = fit.summary()
    stats = fit.idata.sample_stats
    steps = np.asarray(stats["n_steps"]) if "n_steps" in stats else np.asarray(stats["tree_depth"]) ** 2
    bfmi = np.atleast_1d(np.asarray(azs.bfmi(fit.idata)["energy"]))
    return {"seconds": round(seconds, 2), "rows": int(len(fit.design.y)),
            "families": int(fit.design.n_families), "min_ess_bulk": float(s["ess_bulk"].min()),
            "min_ess_tail": float(s["ess_tail"].min()), "max_rhat": float(s["r_hat"].max()),
            "divergences": int(np.asarray(stats["diverging"]).sum()),
            "min_bfmi": float(bfmi.min()), "steps_per_draw": float(steps.mean()),
            "verdict": fit.verdict(),
            "messages": [w.message for w in fit.warnings if w.kind in _gate_kinds()],
            "target_accept": fit.settings.target_accept}


def _gate_kinds():
    from bayescale.inference.gate import GATE_KINDS

    return GATE_KINDS


def run_case(bs, name: str, thunk, backend: str, target_accept: float | None = None) -> dict:
    started = time.perf_counter()
    try:
        df, kw = thunk()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the verdict and messages are recorded instead
            fit = bs.fit(df.reset_index(drop=True), extrapolation=False, progress=False, seed=0,
                         backend=backend, target_accept=target_accept, **kw)
    except bs.BayescaleError as err:  # refused before sampling: the message is the remedy
        return {"case": name, "backend": backend, "verdict": "REFUSED", "messages": [str(err)],
                "seconds": round(time.perf_counter() - started, 2)}
    return {"case": name, "backend": backend, **_measure(fit, time.perf_counter() - started)}


def _cell(row, key: str, form: str = "{:.0f}") -> str:
    return "-" if pd.isna(row.get(key)) else form.format(row[key])


def write_results(out: Path) -> str:
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("*/*.json"))]
    if not rows:
        return ""
    df = pd.DataFrame(rows)
    lines = ["# Convergence corpus", "",
             "Written by `python benchmarks/convergence/run.py`: plain fits "
             f"(`extrapolation=False`) at default settings, seed 0, on {platform.machine()} with "
             f"{os.cpu_count()} CPU cores. The wall times are those of the run: the cores may have "
             "been shared with other work, so compare verdicts, ESS and steps, not seconds.", ""]
    df["run"] = [p.parent.name for p in sorted(out.glob("*/*.json"))]
    for backend, d in df.groupby("run"):
        ok = d["verdict"].eq("passed")
        lines += [f"## Backend `{backend}`: {int(ok.sum())} of {len(d)} pass the gate "
                  f"({ok.mean():.0%}); total {d['seconds'].sum() / 60:.1f} min", "",
                  "| case | rows | families | s | min bulk ESS | min tail ESS | max R-hat | div | "
                  "min E-BFMI | steps/draw | verdict |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for _, r in d.sort_values("case").iterrows():
            num = functools.partial(_cell, r)
            lines.append(f"| {r['case']} | {num('rows')} | {num('families')} | {num('seconds')} | "
                         f"{num('min_ess_bulk')} | {num('min_ess_tail')} | {num('max_rhat', '{:.3f}')} | "
                         f"{num('divergences')} | {num('min_bfmi', '{:.2f}')} | "
                         f"{num('steps_per_draw', '{:.1f}')} | {r['verdict']} |")
        failed = d[~ok]
        if len(failed):
            lines += ["", "Failures, with the gate's or the error's own words:", ""]
            for _, r in failed.sort_values("case").iterrows():
                lines.append(f"- **{r['case']}**: " + " / ".join(r["messages"]))
        lines.append("")
    text = "\n".join(lines)
    (out / "RESULTS.md").write_text(text + "\n", encoding="utf-8")
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpyro", choices=("numpyro", "lowrank"))
    parser.add_argument("--only", default="", help="comma-separated case-name prefixes")
    parser.add_argument("--out", default=str(HERE))
    parser.add_argument("--target-accept", type=float, default=None,
                        help="instead of the default (written into a folder of its own)")
    parser.add_argument("--redo", action="store_true", help="refit cases already written")
    parser.add_argument("--list", action="store_true", help="print the case names and stop")
    args = parser.parse_args(argv)
    import bayescale as bs

    out = Path(args.out)
    folder = out / (args.backend + (f"_ta{args.target_accept:g}" if args.target_accept else ""))
    folder.mkdir(parents=True, exist_ok=True)
    prefixes = [p for p in args.only.split(",") if p]
    for name, thunk in cases(bs):
        if prefixes and not any(name.startswith(p) for p in prefixes):
            continue
        if args.list:
            print(name)
            continue
        path = folder / (re.sub(r"[^A-Za-z0-9._+-]+", "_", name) + ".json")
        if path.exists() and not args.redo:
            continue
        row = run_case(bs, name, thunk, args.backend, args.target_accept)
        path.write_text(json.dumps(row, indent=1, default=float))
        print(f"{name}: {row['verdict']} ({row['seconds']:.0f} s)", flush=True)
    if not args.list:
        write_results(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
