"""A new family from one or two runs: partial pooling against an unpooled fit and an offset only.

One command::

    python case_studies/new_family/run.py [--quick] [--datasets a,b] [--keep 1,2] [--out DIR]

For each grouped data set and each of its families, the family's runs are held out but for its
``k`` smallest-compute ones (``bs.backtest(split=("leave-family-out", family, k))``), and the
held-out runs are forecast (one new run, ``kind="new_run"``) by three fits of the same law to
the same rows, which differ only in what the families share:

- **partial** pooling of the amplitudes and the floor (the law's own pooling, asked for even
  with fewer than 5 families, where ``bs.fit`` otherwise fits them per family);
- **partial, tight amplitudes**: the same, with the prior on the amplitudes' spread between
  families ten times narrower than the catalogue's (half-normal scale 0.1 on the log scale,
  not 0.5), the floor's unchanged: the hierarchical model that nests the offset-only fit;
- **unpooled**: the same parameters fitted per family (``pool="none"``), the exponents shared;
- **offset only**: everything shared but the floor ``E``, fitted per family: the plain fit with
  a per-family offset that practice uses.

Writes RESULTS.md into DIR (default: this folder): per data set, ``k`` and variant, the median
absolute and signed relative error of the median, the 50% and 90% coverage and the 90% interval
score (Gneiting and Raftery 2007), as % of the truth.  Only aggregates: two of the shared data
sets carry no license.  Plain fits (``extrapolation=False``): the variants differ in pooling,
not in the calibration beyond the data.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bayescale.viz.report import markdown_table

HERE = Path(__file__).resolve().parent
FULL = {"chains": 2, "warmup": 500, "draws": 500}
QUICK = {"chains": 1, "warmup": 150, "draws": 150}
SETS = ("loss_to_loss", "gadre_overtrain", "porian_isoflop", "revisiting_nsl", "pythia_evals")
VARIANTS = ("partial", "unpooled", "offset only")


def _study(name: str):
    """The ``run.py`` of another case study, as a module (one definition of its data)."""
    path = HERE.parent / name / "run.py"
    spec = importlib.util.spec_from_file_location(f"{name}_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def datasets(bs) -> dict:
    """Data set -> (frame, fit arguments): those of ``case_studies/extrapolation``, and the
    zero-shot LAMBADA loss of the two Pythia suites (``case_studies/pythia_evals``, its
    checkpoints as independent rows)."""
    table = _study("extrapolation").datasets(bs)
    pythia = _study("pythia_evals").load_lambada(bs, "ppl")
    table["pythia_evals"] = (pythia, dict(law="chinchilla", y="y", x={"N": "params", "D": "tokens"},
                                          group="family", se="y_se"))
    return table


TIGHT = 0.1  # scale of the half-normal prior on the amplitudes' family spread, "tight" variant


def pools(law) -> dict:
    """Variant -> ``pool`` argument of ``bs.fit`` for ``law`` (a :class:`bayescale.Law`)."""
    varied = [n for n, p in law.parameters.items() if p.pool == "partial"]
    floor = "E" if "E" in varied else varied[0]
    return {"partial": dict.fromkeys(varied, "partial"),
            "partial, tight amplitudes": dict.fromkeys(varied, "partial"),
            "unpooled": dict.fromkeys(varied, "none"),
            "offset only": {n: "none" if n == floor else "shared" for n in varied}}


def with_tau(bs, law, taus: dict):
    """``law`` with the family-spread prior scale ``tau`` of some parameters changed (through
    its TOML text, the form a user would edit)."""
    lines, section = [], None
    for line in law.to_toml().splitlines():
        if line.startswith("["):
            section = line[len("[parameters."):-1] if line.startswith("[parameters.") else None
        if section in taus and line.startswith("tau ="):
            line = f"tau = {taus[section]!r}"
        lines.append(line)
    return bs.Law.from_toml("\n".join(lines), origin=f"{law.name} with tau {taus}")


def variant_law(bs, law, variant: str):
    """The law a variant fits: the law itself, or with tight amplitudes (every partially pooled
    parameter but the floor ``E`` gets ``tau =`` :data:`TIGHT`, so a family with few runs
    borrows its amplitudes and keeps its own floor, as an offset would)."""
    if variant != "partial, tight amplitudes":
        return law
    amplitudes = [n for n, p in law.parameters.items() if p.pool == "partial" and n != "E"]
    return with_tau(bs, law, dict.fromkeys(amplitudes, TIGHT))


def interval_score(t: pd.DataFrame) -> np.ndarray:
    lo, hi, y = t["lo90"], t["hi90"], t["truth"]
    return ((hi - lo) + 20 * np.clip(lo - y, 0, None) + 20 * np.clip(y - hi, 0, None)).to_numpy()


def one(bs, df: pd.DataFrame, kw: dict, keep: int, sampler: dict) -> pd.DataFrame:
    """Scores of every family held out with ``keep`` runs kept, by each variant."""
    law = bs.Law.named(kw["law"]) if isinstance(kw["law"], str) else kw["law"]
    parts = []
    for family in pd.unique(df[kw["group"]].astype(str)):
        for variant, pool in pools(law).items():
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                bt = bs.backtest(df, split=("leave-family-out", family, keep), kind="new_run",
                                 levels=(0.5, 0.9), pool=pool, progress=False,
                                 **sampler, **(kw | {"law": variant_law(bs, law, variant)}))
            part = bt.per_target.assign(family=family, variant=variant, keep=keep, ok=bt.fit.ok,
                                        seconds=time.perf_counter() - started)
            parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["rel_error"] = out["error"] / out["truth"]
    out["interval_score_90"] = interval_score(out) / out["truth"]
    return out


def summary(t: pd.DataFrame, by: list) -> pd.DataFrame:
    g = t.groupby(by, observed=True, sort=False)
    return pd.DataFrame({
        "n": g.size(),
        "median |rel err| %": 100 * g["rel_error"].apply(lambda v: v.abs().median()),
        "signed rel err %": 100 * g["rel_error"].median(),
        "cov50": 100 * g["in_50"].mean(),
        "cov90": 100 * g["in_90"].mean(),
        "interval score 90 %": 100 * g["interval_score_90"].mean(),
        "fits passed %": 100 * g["ok"].mean(),
    }).round(2).reset_index()


PRACTICE = ("unpooled", "offset only")


def _beats(part: pd.DataFrame, variant: str) -> str:
    """On which of the interval score and the median error ``variant`` beats both fits practice
    uses (rows of ``part`` indexed by variant)."""
    won = [what for what, col in (("interval score", "interval score 90 %"),
                                  ("median error", "median |rel err| %"))
           if part.loc[variant, col] < part.loc[list(PRACTICE), col].min()]
    return ", ".join(won) if won else "neither"


def verdicts(per_set: pd.DataFrame) -> str:
    """One line per data set and ``k``: which variant has the smallest interval score and median
    error, and on which of the two each pooled variant beats both fits practice uses."""
    lines = []
    for (name, keep), part in per_set.groupby(["dataset", "keep"], sort=False):
        part = part.set_index("variant")
        lines.append(f"- `{name}`, {keep} run(s) kept: smallest interval score "
                     f"**{part['interval score 90 %'].idxmin()}**, smallest median error "
                     f"**{part['median |rel err| %'].idxmin()}**; beating both unpooled and offset "
                     f"only, partial pooling on {_beats(part, 'partial')}, with tight amplitudes on "
                     f"{_beats(part, 'partial, tight amplitudes')}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short chains (smoke test)")
    parser.add_argument("--datasets", default=",".join(SETS), help="comma-separated subset")
    parser.add_argument("--keep", default="1,2", help="runs of the held-out family kept, e.g. 1,2")
    parser.add_argument("--out", default=str(HERE))
    args = parser.parse_args(argv)
    import bayescale as bs

    sampler = QUICK if args.quick else FULL
    table = datasets(bs)
    names = args.datasets.split(",")
    parts, seconds = [], {}
    for name in names:
        df, kw = table[name]
        started = time.perf_counter()
        for keep in (int(k) for k in args.keep.split(",")):
            parts.append(one(bs, df.reset_index(drop=True), kw, keep, sampler).assign(dataset=name))
        seconds[name] = time.perf_counter() - started
        print(f"{name}: {seconds[name]:.0f} s", file=sys.stderr)
    t = pd.concat(parts, ignore_index=True)
    per_set = summary(t, ["dataset", "keep", "variant"])
    per_family = summary(t, ["dataset", "keep", "family", "variant"])
    setup = "\n".join(f"- `{n}`: {len(table[n][0])} rows, law `{table[n][1]['law']}`, families "
                      f"`{table[n][1]['group']}` ({table[n][0][table[n][1]['group']].nunique()}); "
                      f"{seconds[n]:.0f} s" for n in names)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "RESULTS.md").write_text(f"""# A new family from one or two runs

`python case_studies/new_family/run.py{' --quick' if args.quick else ''}` on {_dt.date.today()}
(bayescale {bs.__version__}); {sampler['chains']} chains x ({sampler['warmup']} + {sampler['draws']})
per fit, plain fits, band of one new run. Each family of each set in turn keeps its `k`
smallest-compute runs and the rest of it is forecast; the variants are described in
`run.py`. Errors and interval scores as % of the truth (lower is better); `fits passed` is
the share of held-out rows whose fit passed the diagnostics gate.

{setup}

## Per data set

{markdown_table(per_set)}

{verdicts(per_set)}

## Per family

{markdown_table(per_family)}
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
