"""Tests for bayescale.data.loaders.

Tests that go through ``load_or_skip`` need the real data sets and skip
when the data directory does not hold them; the others build what they need.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayescale.data import loaders
from bayescale.errors import DataError

NAMES = [
    "chinchilla_epoch", "gadre_overtrain", "loss_to_loss", "obs_scaling",
    "olmo_ladder", "porian_isoflop", "pythia_evals", "revisiting_nsl",
]


def load_or_skip(name: str, **options) -> pd.DataFrame:
    if not (loaders.data_dir() / name).is_dir():
        pytest.skip(f"data set {name!r} not found in {loaders.data_dir()}; set BAYESCALE_DATA")
    return loaders.load(name, **options)


@pytest.mark.parametrize(
    ("name", "options", "rows"),
    [
        ("chinchilla_epoch", {}, 245),
        ("chinchilla_epoch", {"drop_highest_loss": 5}, 240),
        ("gadre_overtrain", {}, 104),
        ("loss_to_loss", {}, 535),
        ("loss_to_loss", {"split": "sweep"}, 529),
        ("loss_to_loss", {"split": "extrapolation"}, 6),
        ("obs_scaling", {}, 148),
        ("olmo_ladder", {}, 30),
        ("olmo_ladder", {"targets": True}, 2),
        ("porian_isoflop", {}, 1745),
        ("porian_isoflop", {"table": "optima"}, 177),
        ("porian_isoflop", {"table": "fits"}, 90),
        ("pythia_evals", {}, 10275),
        ("revisiting_nsl", {}, 712),
        ("revisiting_nsl", {"domain": "vision"}, 18883),
    ],
)
def test_row_counts(name, options, rows):
    assert len(load_or_skip(name, **options)) == rows


# Columns that must be float and positive where present, and the group column.
STANDARD = {
    "chinchilla_epoch": (["params", "tokens", "flops", "loss"], None),
    "gadre_overtrain": (["params", "tokens", "flops", "loss", "loss_se"], "dataset"),
    "loss_to_loss": (["params", "tokens", "flops", "loss", "loss_c4_val"], "corpus"),
    "obs_scaling": (["params", "tokens", "flops"], "family"),
    "olmo_ladder": (["params", "tokens", "flops", "loss", "loss_pile"], "run"),
    "porian_isoflop": (["params", "tokens", "flops", "loss"], "setting"),
    "pythia_evals": (["params"], "family"),
    "revisiting_nsl": (["x", "loss"], "curve"),
}


@pytest.mark.parametrize("name", NAMES)
def test_standard_columns_numeric_and_positive(name):
    df = load_or_skip(name)
    columns, group = STANDARD[name]
    for column in columns:
        assert pd.api.types.is_float_dtype(df[column]), column
        assert (df[column].dropna() > 0).all(), column
    if group is not None:
        assert df[group].notna().all()
    assert df.attrs["source"] == loaders.info(name)


def test_chinchilla_drop_highest_loss_removes_the_top_losses():
    full = load_or_skip("chinchilla_epoch")
    kept = load_or_skip("chinchilla_epoch", drop_highest_loss=5)
    dropped = full["loss"].nlargest(5)
    assert len(kept) == 240
    assert kept["loss"].max() < dropped.min()
    assert np.allclose(kept["flops"], 6 * kept["params"] * kept["tokens"])


def test_gadre_split_and_targets():
    df = load_or_skip("gadre_overtrain")
    fit = df[df["gadre_fit_split"]]
    assert len(fit) == 15
    assert fit.groupby("dataset").size().eq(5).all()
    assert set(fit["tokens_per_param"]) == {20.0, 320.0}
    targets = df[df["gadre_target"]]
    assert (targets.loc[targets["arch"] == "open_lm_7b", "dataset"].nunique()) == 3
    assert not (df["gadre_fit_split"] & df["gadre_target"]).any()
    assert df["loss"].equals(df["loss_c4_val"])
    np.testing.assert_allclose(df["flops"], 6 * df["params"] * df["tokens"], rtol=1e-9)


def test_gadre_loss_set_option():
    df = load_or_skip("gadre_overtrain", loss_set="paloma_ptb")
    assert df["loss"].equals(df["loss_paloma_ptb"])
    with pytest.raises(DataError, match="loss_set"):
        loaders.load("gadre_overtrain", loss_set="nope")


def test_loss_to_loss_heldout_and_flops():
    df = load_or_skip("loss_to_loss")
    assert df["heldout"].sum() == 6
    assert df["corpus"].nunique() == 6
    np.testing.assert_allclose(df["flops"], 6 * df["params"] * df["tokens"], rtol=1e-6)


def test_olmo_curves_and_targets():
    final = load_or_skip("olmo_ladder")
    curves = load_or_skip("olmo_ladder", final=False)
    targets = load_or_skip("olmo_ladder", targets=True)
    assert len(curves) > len(final)
    assert {"step", "lr"} <= set(curves.columns)
    assert final["ladder_fit_split"].sum() == 16
    assert final["rerun"].sum() == 5
    assert set(targets["size"]) == {"7B", "13B"}
    assert (targets["params"] > final["params"].max()).all()
    assert (targets["tokens"] > 3e12).all()


def test_obs_scaling_accuracies_are_fractions():
    df = load_or_skip("obs_scaling")
    scores = df[["mmlu", "arc_c", "hellaswag", "winograd", "truthfulqa", "gsm8k", "xwinograd",
                 "humaneval"]]
    assert scores.min().min() >= 0
    assert scores.max().max() <= 1


def test_porian_settings():
    df = load_or_skip("porian_isoflop")
    assert df["setting"].nunique() == 15
    assert df[["params", "tokens", "loss"]].notna().all().all()


def test_pythia_filters():
    df = load_or_skip("pythia_evals", task="lambada_openai", metric="ppl", num_fewshot=0)
    assert set(df["task"]) == {"lambada_openai"}
    assert set(df["metric"]) == {"ppl"}
    with pytest.raises(DataError, match="task"):
        loaders.load("pythia_evals", task="not_a_task")


def test_revisiting_nsl_is_deduplicated():
    df = load_or_skip("revisiting_nsl")
    assert not df.duplicated().any()
    assert df["train"].dtype == bool
    assert df["curve"].nunique() == 20


def test_env_override_and_missing_file(monkeypatch, tmp_path):
    monkeypatch.setenv("BAYESCALE_DATA", str(tmp_path))
    assert loaders.data_dir() == tmp_path
    with pytest.raises(DataError) as excinfo:
        loaders.load("chinchilla_epoch")
    message = str(excinfo.value)
    assert "svg_extracted_data.csv" in message
    assert "BAYESCALE_DATA" in message
    assert str(tmp_path) in message


def test_partial_file_is_rejected(monkeypatch, tmp_path):
    folder = tmp_path / "chinchilla_epoch"
    folder.mkdir()
    (folder / "svg_extracted_data.csv").write_text(
        "x,y,color,Model Size,Training FLOP,hex_color,loss\n1,2,#fff,1e8,1e19,#fff,3.0\n"
    )
    monkeypatch.setenv("BAYESCALE_DATA", str(tmp_path))
    with pytest.raises(DataError, match="1 rows where 245"):
        loaders.load("chinchilla_epoch")


def test_data_dir_walks_up_then_falls_back_to_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("BAYESCALE_DATA", raising=False)
    module = tmp_path / "repo" / "bayescale" / "datasets" / "loaders.py"
    monkeypatch.setattr(loaders, "__file__", str(module))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert loaders.data_dir() == tmp_path / "cache" / "bayescale" / "data"
    (tmp_path / "shared" / "data").mkdir(parents=True)
    assert loaders.data_dir() == tmp_path / "shared" / "data"


def test_unknown_name_suggests_closest():
    with pytest.raises(DataError) as excinfo:
        loaders.load("gadre_overtrian")
    assert "gadre_overtrain" in str(excinfo.value)
    assert "chinchilla_epoch" in str(excinfo.value)


def test_unknown_option_is_a_data_error():
    with pytest.raises(DataError, match="drop_highest_loss"):
        loaders.load("chinchilla_epoch", drop_highest=5)


def test_available_and_info():
    assert loaders.available() == sorted(NAMES)
    for name in NAMES:
        meta = loaders.info(name)
        assert set(meta) == {
            "name", "title", "source_repository", "source_path", "commit", "license",
            "paper", "shippable", "description", "columns",
        }
        assert meta["shippable"] is (name not in {"chinchilla_epoch", "loss_to_loss"})
        assert len(meta["commit"]) == 40
