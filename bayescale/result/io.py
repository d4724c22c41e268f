"""Saved fits: a directory of open formats, never pickle.

Layout::

    fit/
      posterior.nc   the ArviZ DataTree (netCDF)
      data.csv       the rows used (mapped columns only)
      law.toml       the law spec, with the pooling used
      fit.json       column mapping, settings, seed, package versions, checksums

:func:`load` checks the format version and the checksums, so a truncated or
edited file is a clear :class:`~bayescale.errors.FitError`, not garbage.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import xarray as xr

from ..errors import FitError

FORMAT = 2  # 2: typed settings (sampler settings nested); 1 (bayescale 0.1) still reads
READS = (1, 2)
ENGINE = "netcdf4"  # declared dependency; the same engine writes and reads
FILES = ("posterior.nc", "data.csv", "law.toml")
PACKAGES = ("bayescale", "numpyro", "jax", "arviz-base", "arviz-stats", "xarray", "pandas")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def frame_columns(meta: dict) -> list:
    cols = meta["columns"]
    return [cols["y"], *cols["x"].values(),
            *(c for c in (cols["group"], cols["run"], cols["se"], cols.get("weight")) if c)]


def versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except Exception:  # noqa: BLE001 - a missing distribution is only unrecorded
            out[name] = None
    return out


def save(fit, path) -> Path:
    """Write ``fit`` to the directory ``path`` (created; existing files replaced)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    fit.idata.to_netcdf(path / "posterior.nc", engine=ENGINE)
    fit.design.frame.to_csv(path / "data.csv", index_label="__row__")
    (path / "law.toml").write_text(fit.law.to_toml(), encoding="utf-8")
    meta = {
        "format": FORMAT,
        "columns": fit.design.columns,
        "settings": fit.settings.record(),
        "versions": versions(),
        "sha256": {name: _sha256(path / name) for name in FILES},
    }
    (path / "fit.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return path


def read(path) -> dict:
    """Read and verify a saved fit; returns its parts for :func:`bayescale.Fit.from_parts`."""
    path = Path(path)
    if not path.is_dir():
        raise FitError(f"{path} is not a fit directory (expected a folder written by fit.save).")
    missing = [n for n in ("fit.json", *FILES) if not (path / n).is_file()]
    if missing:
        raise FitError(f"fit directory {path} lacks {missing}; save the fit again.")
    try:
        meta = json.loads((path / "fit.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FitError(f"{path / 'fit.json'} is not valid JSON ({exc}); save the fit again.") from None
    if not isinstance(meta, dict):
        meta = {}
    if meta.get("format") not in READS:
        raise FitError(
            f"{path} was written in fit format {meta.get('format')!r} by bayescale "
            f"{meta.get('versions', {}).get('bayescale')}; this version reads formats "
            f"{', '.join(map(str, READS))}. Refit with this version."
        )
    keys = ("columns", "settings", "sha256")
    if any(k not in meta for k in keys):
        raise FitError(f"{path / 'fit.json'} lacks some of the keys {list(keys)}: it was not written "
                       f"by fit.save or was edited. Save the fit again.")
    for name in FILES:
        if _sha256(path / name) != meta.get("sha256", {}).get(name):
            raise FitError(f"{path / name} does not match its checksum: the file was truncated or "
                           f"edited after saving. Save the fit again.")
    try:
        with xr.open_datatree(path / "posterior.nc", engine=ENGINE) as tree:
            idata = tree.load()
    except (OSError, ValueError) as exc:
        raise FitError(f"{path / 'posterior.nc'} cannot be read ({exc}); save the fit again.") from None
    labels = [c for c in (meta["columns"].get("group"), meta["columns"].get("run")) if c]
    # labels stay text exactly as saved ("01" is not 1, "NA" is not missing)
    frame = pd.read_csv(path / "data.csv", index_col="__row__", keep_default_na=False,
                        na_values={c: [""] for c in frame_columns(meta) if c not in labels},
                        dtype={c: str for c in labels})
    frame.index.name = None
    law_text = (path / "law.toml").read_text(encoding="utf-8")
    return {"idata": idata, "frame": frame, "law_text": law_text, "meta": meta}
