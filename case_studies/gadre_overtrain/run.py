"""Gadre et al. (2024) over-training forecasts: hierarchical vs per-corpus bayescale fits, 5 runs per corpus.

One command::

    python case_studies/gadre_overtrain/run.py [--quick] [--out DIR]

Writes RESULTS.md and fit.png into DIR (default: this folder).
The data are read from the shared data folder through ``bayescale.datasets``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bayescale.viz.report import markdown_table

HERE = Path(__file__).resolve().parent

# Relative errors printed in mlfoundations/scaling scaling_explorer.ipynb
# (RedPajama, C4-eval loss), keyed by (params rounded to 0.1B, tokens per parameter).
PUBLISHED = {(1.4, 640): 0.71, (6.9, 20): 0.73}
# Same notebook, 17-task average top-1 error (RedPajama), two-step forecast from the loss law.
PUBLISHED_ERR = {(1.4, 640): 3.64, (6.9, 20): 0.05}
# The 17-task subset of mlfoundations/scaling (scaling/constants.py, SUBSET).
SUBSET = ["bigbench_operators", "pubmed_qa_labeled", "hellaswag_zeroshot", "boolq", "arc_easy", "coqa",
          "bigbench_dyck_languages", "lambada_openai", "bigbench_novel_concepts", "winograd",
          "bigbench_cs_algorithms", "commonsense_qa", "bigbench_qa_wikidata", "hellaswag", "copa",
          "squad", "piqa"]
LEVELS = (0.5, 0.8, 0.9, 0.95)
KINDS = ("new_run", "mean")
AT_7B = {"params": 6.889e9, "tokens": 1.378e11}

FULL = {"chains": 4, "warmup": 1000, "draws": 1000}
QUICK = {"chains": 2, "warmup": 300, "draws": 300}


def _yn(v: bool) -> str:
    return "yes" if v else "no"


def forecast_table(pred: pd.DataFrame, target: pd.DataFrame, approach: str, kind: str) -> pd.DataFrame:
    """One row per target: observed, median, 90% band, relative error and band hits."""
    rows = []
    for (_, p), (_, t) in zip(pred.iterrows(), target.iterrows()):
        obs, med = float(t["loss"]), float(p["median"])
        n_b, m = float(t["params"]) / 1e9, float(t["tokens"]) / float(t["params"])
        pub = PUBLISHED.get((round(n_b, 1), round(m))) if t["dataset"] == "rpj" else None
        rows.append({
            "approach": approach, "kind": kind, "corpus": t["dataset"], "N": f"{n_b:.1f}B",
            "M": f"{m:.0f}", "observed": f"{obs:.4f}", "median": f"{med:.4f}",
            "90% band": f"{p['lo90']:.4f} – {p['hi90']:.4f}",
            "rel error %": f"{100 * (med - obs) / obs:+.2f}",
            "published %": f"{pub:.2f}" if pub is not None else "–",
            **{f"in {q}%": _yn(p[f"lo{q}"] <= obs <= p[f"hi{q}"]) for q in (50, 80, 95)},
        })
    return pd.DataFrame(rows)


def _fit(bs, df, sampler, group):
    kw = dict(law="chinchilla_shared", y="loss", x={"N": "params", "D": "tokens"}, se="loss_se",
              seed=0, progress=False, **sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # recorded in fit.warnings and written to RESULTS.md
        return bs.fit(df, group=group, **kw, extrapolation=False)  # law-only: see case_studies/extrapolation


def downstream(bs, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``top1_error``: one minus the mean accuracy over the paper's 17 tasks."""
    from bayescale.data.loaders import data_dir

    acc = pd.read_csv(data_dir() / "gadre_overtrain" / "downstream_accuracy.csv")
    acc = acc.assign(top1_error=1.0 - acc[SUBSET].mean(axis=1))[["name", "top1_error"]]
    return df.merge(acc, on="name", how="left", validate="one_to_one")


def two_stage(bs, hier, df, target, sampler):
    """Fit exp_link per corpus on the paper's link runs and chain it after the loss fit."""
    # the paper's downstream fit: the 5 loss-fit runs plus the 1.4B model at M = 20
    link_rows = df[df.gadre_fit_split | ((df["arch"] == "open_lm_1b") & (df["tokens_per_param"] == 20))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        link = bs.fit(link_rows, law="exp_link", y="top1_error", x="loss", group="dataset", seed=0,
                      progress=False, extrapolation=False, **sampler)
        rows = []
        for kind in ("mean", "new_run"):
            out = bs.chain(hier, link, target[["params", "tokens", "dataset"]], loss_kind=kind, kind=kind,
                           levels=(0.5, 0.9))
            for (_, p), (_, t) in zip(out.iterrows(), target.iterrows()):
                obs, med = float(t["top1_error"]), float(p["median"])
                n_b, m = float(t["params"]) / 1e9, float(t["tokens"]) / float(t["params"])
                pub = PUBLISHED_ERR.get((round(n_b, 1), round(m))) if t["dataset"] == "rpj" else None
                rows.append({"kind": kind, "corpus": t["dataset"], "N": f"{n_b:.1f}B", "M": f"{m:.0f}",
                             "observed": f"{obs:.4f}", "median": f"{med:.4f}",
                             "90% band": f"{p['lo90']:.4f} – {p['hi90']:.4f}",
                             "rel error %": f"{100 * (med - obs) / obs:+.2f}",
                             "published %": f"{pub:.2f}" if pub is not None else "–",
                             "in 50%": _yn(p["lo50"] <= obs <= p["hi50"]),
                             "in 90%": _yn(p["lo90"] <= obs <= p["hi90"])})
    return link, pd.DataFrame(rows)


def _gate(fit) -> str:
    s = fit.summary()
    return (f"ok={fit.ok}, max R-hat {float(s['r_hat'].max()):.4f}, "
            f"min bulk ESS {float(s['ess_bulk'].min()):.0f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="chains=2, warmup=300, draws=300 (for tests)")
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: this folder)")
    args = ap.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import bayescale as bs
    from bayescale.result.io import versions

    t0 = time.perf_counter()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    sampler = QUICK if args.quick else FULL

    df = downstream(bs, bs.datasets.load("gadre_overtrain"))
    train = df[df.gadre_fit_split].reset_index(drop=True)
    target = df[df.gadre_target].reset_index(drop=True)
    corpora = sorted(train["dataset"].unique())

    # 1. hierarchical fit (E, a, b per corpus; eta shared) and per-corpus fits
    t = time.perf_counter()
    hier = _fit(bs, train, sampler, "dataset")
    t_hier = time.perf_counter() - t
    t = time.perf_counter()
    sep = {c: _fit(bs, train[train["dataset"] == c], sampler, None) for c in corpora}
    t_sep = time.perf_counter() - t

    # 2. forecasts of the 4 targets
    cols = ["params", "tokens", "dataset"]
    tables = []
    for kind in KINDS:
        ph = hier.predict(target[cols], kind=kind, levels=LEVELS)
        tables.append(forecast_table(ph, target, "hierarchical", kind))
        ps = pd.concat([sep[r["dataset"]].predict(target.loc[[i], ["params", "tokens"]], kind=kind,
                                                  levels=LEVELS) for i, r in target.iterrows()],
                       ignore_index=True)
        tables.append(forecast_table(ps, target, "per-corpus", kind))
    ftab = pd.concat(tables, ignore_index=True)

    # 3. contrasts of corpora at the 6.9B, M=20 target (hierarchical fit)
    pairs = [("rpj", "c4_original"), ("rw_original", "c4_original"), ("rpj", "rw_original")]
    obs7 = target[target["params"] > 5e9].set_index("dataset")["loss"]
    crow = []
    for a, b in pairs:
        c = bs.contrast_prediction(hier, AT_7B, a, b).iloc[0]
        crow.append({"a − b": f"{a} − {b}", "posterior median": f"{c['diff_median']:+.4f}",
                     "90% band": f"{c['diff_lo90']:+.4f} – {c['diff_hi90']:+.4f}",
                     "P(a lower)": f"{c['p_a_lower']:.3f}",
                     "observed a − b": f"{obs7[a] - obs7[b]:+.4f}"})
    ctab = pd.DataFrame(crow)
    rank = bs.rank_families(hier, AT_7B)
    obs_rank = obs7.rank().astype(int)
    rtab = pd.DataFrame({"corpus": rank["family"], "median": rank["median"].map(lambda v: f"{v:.4f}"),
                         "P(lowest loss)": rank["p_best"].map(lambda v: f"{v:.3f}"),
                         "expected rank": rank["expected_rank"].map(lambda v: f"{v:.2f}"),
                         "observed loss": [f"{obs7[f]:.4f}" for f in rank["family"]],
                         "observed rank": [int(obs_rank[f]) for f in rank["family"]]})

    # 4. downstream: the 17-task top-1 error through the loss forecast (two stages, draw by draw)
    t = time.perf_counter()
    link, dtab = two_stage(bs, hier, df, target, sampler)
    t_link = time.perf_counter() - t

    # 5. figure
    fig = bs.plot(hier)
    fig.savefig(out / "fit.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    wall = time.perf_counter() - t0

    def _warns(fit):
        return [f"- `{w.kind}`: {w.message}" for w in fit.warnings] or ["- none"]

    eta = np.asarray(hier.idata.posterior["eta"]).ravel() if "eta" in hier.idata.posterior else None
    eta_line = (f"- Shared exponent η (hierarchical): median {np.median(eta):.4f}, 90% "
                f"{np.quantile(eta, 0.05):.4f} – {np.quantile(eta, 0.95):.4f}.\n" if eta is not None else "")
    vers = versions()
    text = f"""# Gadre et al. (2024) over-training forecasts — results

Generated {_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} by
`python case_studies/gadre_overtrain/run.py{' --quick' if args.quick else ''}`.
{'**QUICK MODE** (short chains, for tests only; do not quote these numbers).' if args.quick else ''}

## Settings
- Data: `bs.datasets.load("gadre_overtrain")`; fit on `df[df.gadre_fit_split]` ({len(train)} runs,
  5 per corpus: d=96/512/576/1024 at M=20 and 10.6M at M=320);
  targets `df[df.gadre_target]` ({len(target)} runs).
- Law: `chinchilla_shared`, L = E + A N^-η + B D^-η; y = C4-eval loss, known noise `se="loss_se"`.
- Hierarchical: `group="dataset"` (E, a, b per corpus, η shared). Per-corpus: each corpus alone, no group.
- Sampler: NUTS, chains={sampler['chains']}, warmup={sampler['warmup']}, draws={sampler['draws']}, seed=0.
- Hierarchical gate: {_gate(hier)}.
- Per-corpus gates: {'; '.join(f'{c}: {_gate(f)}' for c, f in sep.items())}.
{eta_line}- Versions: {', '.join(f'{k} {v}' for k, v in vers.items() if v)}.
- Python {sys.version.split()[0]}.
- Wall time: total {wall:.1f} s (hierarchical fit {t_hier:.1f} s, 3 per-corpus fits {t_sep:.1f} s,
  link fit and two-stage forecasts {t_link:.1f} s).

Hierarchical-fit warnings:
{chr(10).join(_warns(hier))}

Per-corpus-fit warnings:
{chr(10).join(f'{c}:{chr(10)}{chr(10).join(_warns(f))}' for c, f in sep.items())}

## 1. Forecasts of the 4 targets

Relative error = (posterior median − observed) / observed. "published %" is the |relative error| printed in
the `mlfoundations/scaling` notebook (RedPajama only; least-squares point fit, no band).

{markdown_table(ftab)}

## 2. Corpora at the 6.9B, M = 20 target (hierarchical fit, kind="mean")

{markdown_table(ctab)}

Probability each corpus has the lowest C4-eval loss (`fit.rank_families`):

{markdown_table(rtab)}

## 3. Downstream: 17-task average top-1 error, two stages

Stage 1 is the hierarchical loss fit above; stage 2 is `exp_link`, Err = ε − k·exp(−γ·L), fitted
per corpus (k per corpus, ε and γ shared; logit-normal noise) on the paper's downstream runs: the
5 loss-fit runs plus the 1.4B model at M = 20 ({len(link.design.y)} runs). `bs.chain` pushes each
posterior draw of the target's loss through a draw of the link, so the band carries both stages.
The paper's two-step forecast (least squares, no band) is "published %" (RedPajama).
Link-fit gate: {_gate(link)}.

{markdown_table(dtab)}

## Figures
- `fit.png` — hierarchical fit: data, posterior median and bands per corpus (`bs.plot(fit)`).
"""
    (out / "RESULTS.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
