"""Smoke fits of the laws beyond loss against scale on real data.

* ``exp_link`` and ``sigmoid_link``: the 17-task average top-1 error (and accuracy)
  of Gadre et al.'s 104 models against their C4-eval loss, one family per corpus.
* ``lr_annealing``: the whole learning curves of the OLMo-2 ladder's 190M and 370M
  runs at 5x Chinchilla (one curve per size), then the curves of the same sizes
  trained to 2x Chinchilla, whose cosine schedule is shorter, are forecast.

Each test skips when its data set is not installed, and checks the diagnostics
gate and that the estimates are in the range the data imply.  No suitable shared
data set exists for ``rl_sigmoid`` (RL reward curves) or ``coverage`` (pass@k
against samples); their tests are the parameter-recovery ones.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.laws.spec import catalogue_dir

pytestmark = pytest.mark.slow  # full-size fits of catalogue laws on real data

SETTINGS = {"chains": 2, "warmup": 500, "seed": 0, "progress": False}
# The 17 tasks on which the 0.154B models beat chance by 10 points (mlfoundations/scaling,
# scaling/constants.py: SUBSET); err_avg_subset there is 1 minus their mean accuracy.
TASKS_17 = ["bigbench_operators", "pubmed_qa_labeled", "hellaswag_zeroshot", "boolq", "arc_easy", "coqa",
            "bigbench_dyck_languages", "lambada_openai", "bigbench_novel_concepts", "winograd",
            "bigbench_cs_algorithms", "commonsense_qa", "bigbench_qa_wikidata", "hellaswag", "copa",
            "squad", "piqa"]


def _fit(df, name, draws, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # design notes (few families) are not under test
        return bs.fit(df, bs.Law.from_file(catalogue_dir() / f"{name}.toml"), draws=draws,
                      **kwargs, **SETTINGS, extrapolation=False)


def _estimate(fit, name: str) -> float:
    """Posterior mean of ``name`` (the median over families where it varies by family)."""
    summary = fit.summary()
    return float(np.median(summary.loc[summary["parameter"] == name, "mean"]))


@pytest.fixture(scope="module")
def gadre():
    try:
        df = bs.datasets.load("gadre_overtrain")
        path = bs.datasets.data_dir() / "gadre_overtrain" / "downstream_accuracy.csv"
        acc = pd.read_csv(path)
    except (bs.DataError, FileNotFoundError) as err:
        pytest.skip(f"gadre_overtrain data set unavailable: {err}")
    acc = acc.assign(top1_error=1.0 - acc[TASKS_17].mean(axis=1))[["name", "top1_error"]]
    df = df.merge(acc, on="name", how="inner", validate="one_to_one")
    assert len(df) == 104
    return df.assign(accuracy=1.0 - df["top1_error"])


def _rmse(fit, df, y: str) -> float:
    forecast = fit.predict(df[["loss", "dataset"]])
    return float(np.sqrt(np.mean((forecast["median"].to_numpy() - df[y].to_numpy()) ** 2)))


def test_exp_link_on_gadre_downstream_error(gadre, sampled_well):
    fit = _fit(gadre, "exp_link", draws=500, y="top1_error", x="loss", group="dataset")
    sampled_well(fit)
    # a least-squares fit of the paper's form to all 104 models gives epsilon 0.85,
    # k 2.6 and gamma 0.80; chance level of the 17 tasks is an error of 0.81
    assert 0.80 < _estimate(fit, "epsilon") < 0.90
    assert 0.6 < _estimate(fit, "gamma") < 1.0
    assert 1.5 < _estimate(fit, "k") < 4.5
    assert _rmse(fit, gadre, "top1_error") < 0.02  # the data scatter by about 0.011


def test_sigmoid_link_on_gadre_downstream_accuracy(gadre, sampled_well):
    # 800 draws: the ceiling is set mostly by its prior here (the data cover only the
    # sigmoid's high-loss tail), and its tail ESS needs them
    # target_accept 0.99, as the gate advises: at its default an occasional divergence
    # appeared on one 2-core machine and not on another, from the same seed
    fit = _fit(gadre, "sigmoid_link", draws=800, y="accuracy", x="loss", group="dataset",
               target_accept=0.99)
    sampled_well(fit)
    floor = _estimate(fit, "b")
    assert 0.10 < floor < gadre["accuracy"].min()  # below the worst model's accuracy (0.18)
    assert 0.5 < _estimate(fit, "k") < 3.0  # the exponential tail: gamma of exp_link, about 0.8-1.2
    assert _estimate(fit, "L0") < gadre["loss"].min()  # the midpoint lies beyond the best model
    assert _rmse(fit, gadre, "accuracy") < 0.02


OLMO_SIZES = ("190M", "370M")


@pytest.fixture(scope="module")
def olmo():
    try:
        df = bs.datasets.load("olmo_ladder", final=False)
    except bs.DataError as err:
        pytest.skip(f"olmo_ladder data set unavailable: {err}")
    df = df[df["size"].isin(OLMO_SIZES) & ~df["rerun"]]
    # skip the first 10% of each run: the warmup (400-500 steps) and the fast initial drop;
    # the learning rate is then held at the first kept row's value (about 98% of the peak)
    # back to step 0, which counts the warmup at the peak as the OLMo-ladder code does
    last = df.groupby("run")["step"].transform("max")
    return df[df["step"] >= 0.1 * last].reset_index(drop=True)


def _relative_errors(fit, rows: pd.DataFrame) -> np.ndarray:
    forecast = fit.predict(rows[["step", "lr", "size"]])
    return forecast["median"].to_numpy() / rows["loss"].to_numpy() - 1.0


def test_lr_annealing_on_olmo_learning_curves(olmo, sampled_well):
    train = olmo[olmo["multiplier"] == 5]
    # 1000 draws: at 700, R-hat of 2 chains sat at the gate's 1.01 (1.011 on one machine)
    fit = _fit(train, "lr_annealing", draws=1000, y="loss", x={"step": "step", "lr": "lr"}, group="size")
    sampled_well(fit)
    assert 0.2 < _estimate(fit, "alpha") < 1.5
    # the cosine decays 1e-3 -> 1e-4 (190M): S2 reaches about 0.85, a drop C S2 of 0.1 to 0.3 nats
    assert 0.1 < _estimate(fit, "C") < 0.4
    assert np.sqrt(np.mean(_relative_errors(fit, train) ** 2)) < 0.003
    # the same sizes trained 2.5x shorter, whose schedule the fit has not seen
    other = olmo[olmo["multiplier"] == 2]
    for size, rows in other.groupby("size"):
        rel = _relative_errors(fit, rows)
        assert np.sqrt(np.mean(rel**2)) < 0.015, (size, rel)
        assert abs(rel[-1]) < 0.015, (size, rel[-1])  # the final loss, after the full decay
