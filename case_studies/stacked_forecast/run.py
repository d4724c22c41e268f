"""Stacked forecasts on every shared data set, from Python and from the command line.

One command::

    python case_studies/stacked_forecast/run.py [--quick] [--datasets a,b] [--no-cli] [--out DIR]

For each of the eight shared data sets, the runs in the top fifth of its log-compute range
(of examples seen for ``revisiting_nsl``) are held out and forecast from the rest by
``bs.forecast`` over two candidate laws (one new run, ``kind="new_run"``).  The stacked
forecast is scored beside each law's own calibrated forecast, from the same fits.  Then
``bayescale forecast`` is run on the same training rows, written to a temporary CSV file
outside the project, for the held-out run of largest compute, and its weights are compared
with those from Python: the two must agree, since they make the same fits with the same seed.

Writes RESULTS.md into DIR (default: this folder).  Only aggregates: two of the shared data
sets carry no license, so no row of theirs is copied here.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import functools
import importlib.util
import io
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bayescale.viz.report import markdown_table

HERE = Path(__file__).resolve().parent
FULL = {"chains": 2, "warmup": 500, "draws": 500}
QUICK = {"chains": 1, "warmup": 150, "draws": 150}
LEVELS = (0.5, 0.9)
HELD_OUT = 0.8  # runs above this fraction of the log-compute range are forecast


@functools.cache  # each study's file is run once, however often its definitions are asked for
def _load(name: str):
    """The ``run.py`` of another case study, as a module (one definition of its data)."""
    path = HERE.parent / name / "run.py"
    spec = importlib.util.spec_from_file_location(f"{name}_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shared_slope(text: str) -> str:
    """The obs_scaling law with one slope for every family: its ``w`` shared, not pooled."""
    head = "[parameters.w]"
    start = text.index(head)
    end = text.find("\n[", start + 1)
    block = text[start:end if end >= 0 else len(text)]
    new = block.replace('pool = "partial"', 'pool = "shared"').replace("tau = 0.5\n", "")
    return (text[:start] + new + text[start + len(block):]).replace(
        'name = "obs_sigmoid"', 'name = "obs_sigmoid_shared_slope"', 1)


def datasets(bs, folder: Path) -> dict:
    """Data set -> (frame, bs.fit keywords, candidate laws); the laws of the two sets that the
    catalogue lacks are written as TOML files into ``folder``, as a user of the CLI would."""
    extrapolation = _load("extrapolation")
    out = {name: (df, kw, extrapolation.CANDIDATES[name])
           for name, (df, kw) in extrapolation.datasets(bs).items()}
    obs = _load("obs_scaling")
    frame, _ = obs.load_data(bs)
    text = obs.LAW_FILE.read_text(encoding="utf-8")
    laws = {"obs_sigmoid": folder / "obs_sigmoid.toml", "shared_slope": folder / "shared_slope.toml"}
    laws["obs_sigmoid"].write_text(text, encoding="utf-8")
    laws["shared_slope"].write_text(shared_slope(text), encoding="utf-8")
    frame = frame.dropna(subset=["mmlu"])
    out["obs_scaling"] = (frame, dict(law=str(laws["obs_sigmoid"]), y="mmlu", x={"C": "flops"},
                                      group="family", min_rows_per_family=1),
                          {k: {"law": str(v)} for k, v in laws.items()})
    pythia = _load("pythia_evals").load_lambada(bs, "ppl")
    out["pythia_evals"] = (pythia, dict(law="chinchilla", y="y", x={"N": "params", "D": "tokens"},
                                        group="family", se="y_se"),
                           ["chinchilla", "chinchilla_shared"])
    return out


def split(df: pd.DataFrame, compute: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows and held-out rows: those above ``HELD_OUT`` of the log-compute range."""
    logc = np.log10(compute)
    edge = logc.min() + HELD_OUT * (logc.max() - logc.min())
    return df[logc <= edge].reset_index(drop=True), df[logc > edge].reset_index(drop=True)


def scores(table: pd.DataFrame, truth: np.ndarray) -> dict:
    """Median absolute and signed relative error of the median, 90% coverage and interval score."""
    rel = (table["median"].to_numpy() - truth) / truth
    lo, hi = table["lo90"].to_numpy(), table["hi90"].to_numpy()
    interval = (hi - lo) + 20 * np.clip(lo - truth, 0, None) + 20 * np.clip(truth - hi, 0, None)
    return {"median |rel err| %": 100 * np.median(np.abs(rel)), "signed rel err %": 100 * np.median(rel),
            "cov90 %": 100 * np.mean((lo <= truth) & (truth <= hi)),
            "interval score 90 %": 100 * np.mean(interval / truth)}


def cli_weights(train: pd.DataFrame, kw: dict, laws, target: pd.Series, sampler: dict,
                folder: Path) -> tuple[int, dict]:
    """``bayescale forecast`` on ``train`` (a CSV file in ``folder``) at ``target``: its exit code
    and its weights (none if it stopped on an error)."""
    from bayescale.cli.main import main as cli

    path = folder / "train.csv"
    train.to_csv(path, index=False)
    names = [v["law"] if isinstance(v, dict) else v for v in (laws.values() if isinstance(laws, dict)
                                                              else laws)]
    xmap = _load("extrapolation")._xmap(kw)
    one_input = isinstance(kw["x"], str)  # every law maps its one input to that column
    argv = ["forecast", str(path), "--laws", ",".join(names), "--y", kw["y"],
            "--x", kw["x"] if one_input else ",".join(f"{k}={v}" for k, v in xmap.items()),
            "--at", f"{target[kw['x']]:.17g}" if one_input
            else ",".join(f"{k}={target[v]:.17g}" for k, v in xmap.items()),
            "--chains", str(sampler["chains"]), "--warmup", str(sampler["warmup"]),
            "--draws", str(sampler["draws"]), "--seed", "0", "--json"]
    for key in ("group", "se"):
        if kw.get(key):
            argv += [f"--{key}", kw[key]]
    if kw.get("group"):
        argv += ["--family", str(target[kw["group"]])]
    if "min_rows_per_family" in kw:
        argv += ["--min-rows-per-family", str(kw["min_rows_per_family"])]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = cli(argv)
    weights = json.loads(printed.getvalue())["weights"] if code in (0, 1) else {}
    return code, list(weights.values())  # in the order given (a law file names itself)


def one(bs, name: str, df, kw: dict, laws, sampler: dict, cli: bool, folder: Path) -> tuple[list, dict]:
    """Scores of the stacked and each law's own forecast on one data set, and what it took."""
    extrapolation = _load("extrapolation")
    train, test = split(df, extrapolation.df_compute(df, kw))
    keys = extrapolation._keys(kw)
    shared = {k: v for k, v in kw.items() if k != "law"}
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bs.forecast(train, laws, test[keys], kind="new_run", levels=LEVELS, seed=0,
                          progress=False, **sampler, **shared)
    seconds = time.perf_counter() - started
    truth = test[kw["y"]].to_numpy(dtype=float)
    rows = [{"dataset": name, "forecast": "stacked", **scores(res.table, truth)}]
    rows += [{"dataset": name, "forecast": law, **scores(table, truth)} for law, table in res.laws.items()]
    info = {"dataset": name, "training rows": len(train), "held out": len(test),
            "weights": ", ".join(f"{k} {w:.2f}" for k, w in res.weights.items()),
            "all fits passed": bool((res.gates["verdict"] == "passed").all()),
            "stack's gate": "passed" if res.ok else "FAILED", "seconds": round(seconds)}
    if cli:
        target = test.loc[extrapolation.df_compute(test, kw).idxmax()]
        code, weights = cli_weights(train, kw, laws, target, sampler, folder)
        gap = (np.max(np.abs(np.asarray(weights) - res.weights.to_numpy()))
               if len(weights) == len(res.weights) else np.nan)
        info["CLI exit"] = code
        info["CLI weights - Python's (max abs)"] = f"{gap:.2g}"
    return rows, info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short chains (smoke test)")
    parser.add_argument("--datasets", default=None, help="comma-separated subset")
    parser.add_argument("--no-cli", action="store_true", help="skip the command-line runs")
    parser.add_argument("--out", default=str(HERE))
    args = parser.parse_args(argv)
    import bayescale as bs

    sampler = QUICK if args.quick else FULL
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts, infos = [], []
    with tempfile.TemporaryDirectory() as tmp:
        table = datasets(bs, Path(tmp))
        names = args.datasets.split(",") if args.datasets else list(table)
        for name in names:
            df, kw, laws = table[name]
            rows, info = one(bs, name, df.reset_index(drop=True), kw, laws, sampler, not args.no_cli,
                             Path(tmp))
            parts += rows
            infos.append(info)
            print(f"{name}: {info['seconds']} s", file=sys.stderr)
    t = pd.DataFrame(parts).round(2)
    (out / "RESULTS.md").write_text(f"""# Stacked forecasts on every shared data set

`python case_studies/stacked_forecast/run.py{' --quick' if args.quick else ''}` on {_dt.date.today()}
(bayescale {bs.__version__}); {sampler['chains']} chains x ({sampler['warmup']} + {sampler['draws']})
per fit. On each set, the runs above {HELD_OUT:.0%} of its log-compute range are held out and
forecast (one new run) from the rest by `bs.forecast` over two laws, each fitted to the training
rows and at 3 rolling origins inside them; `bayescale forecast` is run on the same rows, for the
held-out run of largest compute (exit 0: every fit with weight passed its gate; 1: one failed).

{markdown_table(pd.DataFrame(infos))}

## Held-out runs: the stack against each law's own calibrated forecast

Errors and the interval score of the 90% band (width plus 20x the miss) as % of the truth.

{markdown_table(t)}
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
