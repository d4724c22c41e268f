"""Tests for bayescale.io: saved fits are open formats, load back exactly, and refuse damage."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.data.design import prepare
from bayescale.errors import FitError
from bayescale.result import io

# two families: pool explicitly, so a family absent from the data can be forecast
POOL = {"E": "partial", "a": "partial"}

# Two families need an explicit truth: simulate's default truths have three families.
TRUTH = {"E": [1.80, 1.95], "a": [480.0, 420.0], "alpha": 0.34}
NEW = pd.DataFrame({"x": [1e7, 1e8, 1e9, 1e11, 1e11], "family": ["f0", "f1", "f0", "f1", "new"]})
FILES = {"posterior.nc", "data.csv", "law.toml", "fit.json"}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    df = bs.datasets.simulate("power", truth=TRUTH, families=2, seeds=1, sizes=(1e7, 1e8, 1e9), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fit this small fails the diagnostics gate on purpose
        fit = bs.fit(df, law="power", y="loss", x="x", group="family", pool=POOL, chains=2,
                     warmup=200, draws=200, seed=0, extrapolation=False)
    path = tmp_path_factory.mktemp("fits") / "fit"
    fit.save(path)
    return fit, path


def copy_of(path, tmp_path):
    dest = tmp_path / "copy"
    shutil.copytree(path, dest)
    return dest


def load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bs.load(path)


def test_saved_directory_holds_only_open_formats(saved):
    _, path = saved
    names = {p.name for p in path.rglob("*")}
    assert names == FILES
    assert not any(n.endswith((".pkl", ".pickle", ".joblib", ".npy", ".npz")) for n in names)
    assert (path / "posterior.nc").read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"  # netCDF4 / HDF5
    for name in FILES - {"posterior.nc"}:
        (path / name).read_text(encoding="utf-8")  # plain text
        assert b"\x80\x04\x95" not in (path / name).read_bytes()  # no pickle protocol-4 frame


def test_fit_json_contents(saved):
    fit, path = saved
    meta = json.loads((path / "fit.json").read_text(encoding="utf-8"))
    assert meta["format"] == io.FORMAT == 2
    assert meta["columns"] == {"y": "loss", "x": {"x": "x"}, "group": "family", "run": None, "se": None,
                               "weight": None}
    assert meta["settings"]["sampler"]["seed"] == 0 and meta["settings"]["sampler"]["chains"] == 2
    assert bs.Settings.from_record(meta["settings"]) == fit.settings
    assert set(meta["sha256"]) == {"posterior.nc", "data.csv", "law.toml"}
    assert meta["sha256"]["law.toml"] == io._sha256(path / "law.toml")
    assert {"numpyro", "jax", "xarray", "pandas"} <= set(meta["versions"])
    assert bs.Law.from_toml((path / "law.toml").read_text(encoding="utf-8")).name == "power"


def test_data_csv_has_the_rows_used(saved):
    fit, path = saved
    frame = pd.read_csv(path / "data.csv", index_col="__row__")
    assert list(frame.columns) == ["loss", "x", "family"]
    np.testing.assert_array_equal(frame["loss"].to_numpy(), fit.design.y)


def test_round_trip_predicts_identically(saved):
    fit, path = saved
    loaded = load(path)
    for kind in ("mean", "new_run"):
        before = fit.predict(NEW, kind=kind, seed=5)
        after = loaded.predict(NEW, kind=kind, seed=5)
        pd.testing.assert_frame_equal(before, after, check_exact=True)
    pd.testing.assert_frame_equal(fit.predict({"x": [3e8]}), loaded.predict({"x": [3e8]}), check_exact=True)


def test_round_trip_restores_the_fit(saved):
    fit, path = saved
    loaded = load(path)
    assert loaded.law.to_toml() == fit.law.to_toml()
    assert loaded.settings == fit.settings
    assert loaded.design.families == fit.design.families
    assert loaded.design.refs == fit.design.refs
    assert loaded.design.columns == fit.design.columns
    np.testing.assert_array_equal(loaded.design.y, fit.design.y)
    np.testing.assert_array_equal(loaded.design.inputs["x"], fit.design.inputs["x"])
    pd.testing.assert_frame_equal(loaded.design.frame, fit.design.frame)
    for attr in ("n_families", "n_runs", "likelihood", "centring", "refs"):
        assert getattr(loaded.structure, attr) == getattr(fit.structure, attr), attr
    assert [w.kind for w in loaded.warnings] == [w.kind for w in fit.warnings]
    assert loaded.ok == fit.ok
    for name in fit.idata.posterior.data_vars:
        np.testing.assert_array_equal(loaded.idata.posterior[name].values, fit.idata.posterior[name].values)
    pd.testing.assert_frame_equal(loaded.summary(), fit.summary())


def test_save_into_new_nested_directory(saved, tmp_path):
    fit, _ = saved
    target = tmp_path / "a" / "b"
    assert fit.save(target) == target
    assert {p.name for p in target.iterdir()} == FILES


@pytest.mark.parametrize("name", sorted(FILES))
def test_missing_file(saved, tmp_path, name):
    path = copy_of(saved[1], tmp_path)
    (path / name).unlink()
    with pytest.raises(FitError) as info:
        bs.load(path)
    assert f"lacks ['{name}']" in str(info.value)
    assert str(path) in str(info.value)


def test_not_a_directory(tmp_path):
    with pytest.raises(FitError, match="is not a fit directory"):
        bs.load(tmp_path / "nothing")
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(FitError, match="is not a fit directory"):
        bs.load(tmp_path / "file")


def test_truncated_posterior(saved, tmp_path):
    path = copy_of(saved[1], tmp_path)
    data = (path / "posterior.nc").read_bytes()
    (path / "posterior.nc").write_bytes(data[: len(data) // 2])
    with pytest.raises(FitError, match="posterior.nc does not match its checksum: the file was truncated"):
        bs.load(path)


def test_edited_data(saved, tmp_path):
    path = copy_of(saved[1], tmp_path)
    frame = pd.read_csv(path / "data.csv")
    frame.loc[0, "loss"] *= 1.01
    frame.to_csv(path / "data.csv", index=False)
    with pytest.raises(FitError, match="data.csv does not match its checksum") as info:
        bs.load(path)
    assert "edited after saving" in str(info.value)


def test_edited_law(saved, tmp_path):
    path = copy_of(saved[1], tmp_path)
    text = (path / "law.toml").read_text(encoding="utf-8")
    (path / "law.toml").write_text(text.replace('pool = "shared"', 'pool = "partial"'), encoding="utf-8")
    with pytest.raises(FitError, match="law.toml does not match its checksum"):
        bs.load(path)


@pytest.mark.parametrize("fmt", [3, 0, "1", None])
def test_wrong_format(saved, tmp_path, fmt):
    path = copy_of(saved[1], tmp_path)
    meta = json.loads((path / "fit.json").read_text(encoding="utf-8"))
    meta["format"] = fmt
    (path / "fit.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(FitError) as info:
        bs.load(path)
    msg = str(info.value)
    assert f"was written in fit format {fmt!r}" in msg
    assert "this version reads formats 1, 2" in msg and "Refit" in msg


def test_missing_format(saved, tmp_path):
    path = copy_of(saved[1], tmp_path)
    meta = json.loads((path / "fit.json").read_text(encoding="utf-8"))
    del meta["format"]
    (path / "fit.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(FitError, match="fit format None"):
        bs.load(path)


def test_invalid_json(saved, tmp_path):
    path = copy_of(saved[1], tmp_path)
    text = (path / "fit.json").read_text(encoding="utf-8")
    (path / "fit.json").write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(FitError, match="fit.json is not valid JSON"):
        bs.load(path)


def test_fit_error_is_a_runtime_error():
    assert issubclass(FitError, bs.BayescaleError) and issubclass(FitError, RuntimeError)


def test_loaded_fit_can_be_saved_over_itself(saved, tmp_path):
    path = copy_of(saved[1], tmp_path)
    loaded = load(path)
    loaded.save(path)
    assert load(path).predict(NEW).equals(loaded.predict(NEW))


def _fake_fit_with_labels(saved, labels):
    """A fit-like object whose data has other family labels (io.save only reads these attributes)."""
    fit, _ = saved
    frame = fit.design.frame.copy()
    frame["family"] = frame["family"].map(dict(zip(["f0", "f1"], labels, strict=True)))
    design = prepare(frame, fit.law, "loss", "x", group="family")
    return SimpleNamespace(idata=fit.idata, design=design, law=fit.law, settings=fit.settings)


def test_string_labels_round_trip(saved, tmp_path):
    fake = _fake_fit_with_labels(saved, ["small", "large"])
    io.save(fake, tmp_path / "fit")
    assert load(tmp_path / "fit").design.families == ["large", "small"]


def test_numeric_looking_labels_round_trip(saved, tmp_path):
    fake = _fake_fit_with_labels(saved, ["01", "02"])
    io.save(fake, tmp_path / "fit")
    assert load(tmp_path / "fit").design.families == ["01", "02"]


def test_na_like_labels_round_trip(saved, tmp_path):
    fake = _fake_fit_with_labels(saved, ["EU", "NA"])
    io.save(fake, tmp_path / "fit")
    assert load(tmp_path / "fit").design.families == ["EU", "NA"]


FORMAT1 = Path(__file__).resolve().parents[1] / "fixtures" / "fit_format1"  # written by bayescale 0.1.0


def test_a_fit_saved_by_the_first_release_still_loads():
    old = bs.load(FORMAT1)
    meta = json.loads((FORMAT1 / "fit.json").read_text(encoding="utf-8"))
    assert meta["format"] == 1 and "chains" in meta["settings"]  # the flat settings of format 1
    st = old.settings
    assert (st.law, st.chains, st.warmup, st.draws, st.seed) == ("power", 2, 100, 50, 0)
    assert st.target_accept == 0.95 and st.extrapolation is None
    assert old.design.n_families == 2 and old.idata.posterior.sizes["draw"] == 50
    table = old.predict({"x": [1e9], "family": ["f0"]})
    assert table["lo90"].iloc[0] < table["median"].iloc[0] < table["hi90"].iloc[0]


def test_an_unknown_format_names_its_version(tmp_path):
    path = tmp_path / "future"
    shutil.copytree(FORMAT1, path)
    meta = json.loads((path / "fit.json").read_text(encoding="utf-8"))
    meta["format"], meta["versions"]["bayescale"] = 9, "9.0"
    (path / "fit.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(bs.FitError, match=r"format 9 by bayescale 9\.0; this version reads formats 1, 2"):
        bs.load(path)



@pytest.mark.slow  # a fit of its own (compile-dominated)
def test_a_weighted_fit_loads_with_its_weights(tmp_path):
    df = bs.datasets.simulate("power", families=1, seeds=1, seed=0)
    df["w"] = np.linspace(1.0, 4.0, len(df))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.fit(df, law="power", y="loss", x="x", weight="w", chains=1, warmup=100, draws=100,
                     seed=0, extrapolation=False, progress=False)
    fit.save(tmp_path / "fit")
    again = load(tmp_path / "fit")
    assert again.design.columns["weight"] == "w"
    np.testing.assert_allclose(again.design.weight, fit.design.weight)
    np.testing.assert_allclose(fit.design.weight, df["w"] / df["w"].mean())
