"""Loaders for the real scaling-law data sets kept beside the repository.

Every loader returns a tidy :class:`pandas.DataFrame` with canonical names, so a
fit reads the same on every set::

    df = load("chinchilla_epoch", drop_highest_loss=5)
    bs.fit(df, law="chinchilla", y="loss", x={"N": "params", "D": "tokens"})

Canonical columns: ``params`` (N, raw count), ``tokens`` (D), ``flops`` (C),
``loss`` (default outcome), ``run`` (run id) and a group column named as the
source names it (``dataset``, ``corpus``, ``family``, ``setting``, ``curve``).
``info(name)["columns"]`` describes each set; ``df.attrs["source"]`` holds it.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError

ENV_VAR = "BAYESCALE_DATA"
_UNLICENSED = "none (no LICENSE file upstream)"


def data_dir() -> Path:
    """Return the directory that holds one sub-folder per data set.

    Returns
    -------
    pathlib.Path
        ``$BAYESCALE_DATA`` if set; else the first ``shared/data`` folder found
        walking up from this file (so ``../shared/data`` beside the repository);
        else ``$XDG_CACHE_HOME/bayescale/data`` (``~/.cache`` by default).  The
        folder may not exist: :func:`load` says so when a file is missing.
    """
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "bayescale" / "data"


def _path(name: str, relative: str) -> Path:
    root = data_dir()
    path = root / name / relative
    if not path.exists():
        raise DataError(
            f"data set {name!r}: missing file {relative!r} ({path}); data directory "
            f"searched: {root}. Set {ENV_VAR} or put the files in {root / name}."
        )
    return path


def _read(name: str, relative: str, rows: int) -> pd.DataFrame:
    path = _path(name, relative)
    df = pd.read_csv(path)
    _check_rows(df, rows, path)
    return df


def _check_rows(df: pd.DataFrame, rows: int, path: Path) -> None:
    if len(df) != rows:
        raise DataError(
            f"{path} has {len(df)} rows where {rows} are expected: the file looks "
            "corrupted or partial; copy it again."
        )


def _choice(value: Any, allowed: list, option: str) -> None:
    if value not in allowed:
        raise DataError(f"{option}={value!r} is not one of {allowed}.")


def _joined(df: pd.DataFrame, keys: list[str]) -> pd.Series:
    return df[keys].astype(str).agg("/".join, axis=1)


def _snake(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def _chinchilla_epoch(drop_highest_loss: int = 0) -> pd.DataFrame:
    df = _read("chinchilla_epoch", "svg_extracted_data.csv", rows=245)
    if not 0 <= drop_highest_loss < len(df):
        raise DataError(f"drop_highest_loss must be in [0, {len(df)}), got {drop_highest_loss}.")
    df = df.rename(columns={"Model Size": "params", "Training FLOP": "flops"})
    df["tokens"] = df["flops"] / (6 * df["params"])
    df = df.drop(df["loss"].nlargest(drop_highest_loss).index)
    return df[["params", "tokens", "flops", "loss"]].reset_index(drop=True)


def _gadre_overtrain(loss_set: str = "c4_val") -> pd.DataFrame:
    df = _read("gadre_overtrain", "models_losses.csv", rows=104)
    sets = [c.removeprefix("n_tokens_eval_") for c in df if c.startswith("n_tokens_eval_")]
    _choice(loss_set, sets, "loss_set")
    col, m, arch = f"loss_{loss_set}", df["tokens_per_param"], df["arch"]
    lo, hi = df[f"{col}_lo95"], df[f"{col}_hi95"]
    df = df.rename(columns={"flops_6ND": "flops"}).assign(
        run=df["name"], loss=df[col], loss_lo95=lo, loss_hi95=hi, loss_se=(hi - lo) / (2 * 1.96),
        # The fixed split of fit_ds in mlfoundations/scaling (README).
        gadre_fit_split=(~arch.str.startswith("open_lm") & (m == 20))
        | ((arch == "d=96_l=8_h=4") & (m == 320)),
        gadre_target=((arch == "open_lm_1b") & (m == 640)) | ((arch == "open_lm_7b") & (m == 20)),
    )
    if not (df.groupby("dataset")["gadre_fit_split"].sum() == 5).all():
        raise DataError("gadre_overtrain/models_losses.csv: expected 5 fitting runs per corpus.")
    return df


def _loss_to_loss(split: str = "all") -> pd.DataFrame:
    _choice(split, ["sweep", "extrapolation", "all"], "split")
    parts = [
        _read("loss_to_loss", f"{part}.csv", rows).assign(heldout=part == "extrapolation")
        for part, rows in {"sweep": 529, "extrapolation": 6}.items()
        if split in (part, "all")
    ]
    df = pd.concat(parts, ignore_index=True)
    if not np.allclose(df["tokens"], df["iso_flop"] / (6 * df["params"]), rtol=1e-6):
        raise DataError("loss_to_loss: column tokens disagrees with iso_flop / (6 params).")
    # The logged `flops` is not total training compute (README): iso_flop replaces it.
    perplexities = [c for c in df if c.endswith("/Perplexity")]
    df = df.drop(columns=["flops", "System/Peak GPU Memory (MB)", *perplexities])
    df.columns = [
        re.sub(r"^eval/(.+)/CrossEntropyLoss$", r"loss_\1", re.sub(r"^eval/downstream\w*/", "", c))
        for c in df.columns
    ]
    renames = {"name": "run", "data": "corpus", "iso_flop": "flops", "val_loss": "loss",
               "train/CrossEntropyLoss": "train_loss"}
    return df.rename(columns=renames)


def _obs_scaling() -> pd.DataFrame:
    df = _read("obs_scaling", "base_llm_benchmark_eval.csv", rows=148)
    sizes = pd.DataFrame({
        "model": df["Model"],
        "family": df["Model Family"],
        "params": df["Model Size (B)"] * 1e9,
        "tokens": df["Pretraining Data Size (T)"] * 1e12,
        "flops": df["FLOPs (1E21)"] * 1e21,
    })
    return pd.concat([sizes, df.iloc[:, 5:].rename(columns=_snake)], axis=1)


# Non-embedding N: config_final.json, and for 3B (absent from the configs)
# MODEL_PARAMS in OLMo-ladder's src/scaling/utils.py.
_OLMO_N = {"190M": 190_354_176, "370M": 371_262_464, "760M": 758_220_288,
           "1B": 1_279_395_840, "3B": 3_169_537_280}
# Target file, N and FLOPs per token, from config_final.json.
_OLMO_TARGETS = {"7B": ("peteish7_eval_anneal.csv", 6_887_575_552, 49_412_071_424),
                 "13B": ("peteish13_eval_final.csv", 13_202_396_160, 91_335_915_520)}
_OLMO_FILE = re.compile(r"^(?P<size>\d+[MB])-(?P<mult>[\d.]+)xC(?P<rerun>-rerun)?$")
_OLMO_RENAMES = [
    (r"^eval/(.+)-validation/CrossEntropyLoss$", r"loss_\1"),
    (r"^eval/downstream_bpb/(.+)_bpb$", r"bpb_\1"),
    (r"^eval/downstream_soft_log/(.+)_soft_log$", r"softlog_\1"),
    (r"^eval/downstream_soft/(.+)_soft$", r"soft_\1"),
    (r"^eval/downstream/(.+)_(len_norm|acc)$", r"acc_\1"),
    (r"^_step$", "step"),
    (r"^optim/learning_rate_group0$", "lr"),
    (r"^learning_rate_peak$", "lr_peak"),
    (r"^batch_size_in_tokens$", "batch_size_tokens"),
]


def _olmo_tidy(df: pd.DataFrame, flops_per_token: float = np.nan, **extra: Any) -> pd.DataFrame:
    if "throughput/total_tokens" in df:
        tokens = df["throughput/total_tokens"].astype("float64")
    else:  # float first: tokens * flops_per_token overflows int64.
        tokens = df["_step"].astype("float64") * df["batch_size_in_tokens"]
    if "throughput/total_training_Gflops" in df:
        flops = df["throughput/total_training_Gflops"] * 1e9
    else:
        flops = tokens * flops_per_token
    df = df.drop(columns=[c for c in df if c.startswith("throughput/")])
    for pattern, repl in _OLMO_RENAMES:
        df.columns = [re.sub(pattern, repl, c) for c in df.columns]
    extra = {"tokens": tokens, "flops": flops, "loss": df["loss_c4_en"], **extra}
    # One concat, not assign: the ~100 single-column blocks left by drop() make
    # each further insert trip pandas' fragmentation warning.
    return pd.concat([df, pd.DataFrame(extra, index=df.index)], axis=1)


def _olmo_run(path: Path, final: bool) -> pd.DataFrame:
    df = pd.read_csv(path)
    size, mult, rerun = _OLMO_FILE.match(path.stem).group("size", "mult", "rerun")
    multiplier, rerun = float(mult), bool(rerun)
    return _olmo_tidy(
        df.tail(1) if final else df,
        run=path.stem, size=size, multiplier=multiplier, rerun=rerun, params=_OLMO_N[size],
        ladder_fit_split=size != "3B" and multiplier >= 1 and not rerun,
    )


def _olmo_targets() -> pd.DataFrame:
    rows = [
        _olmo_tidy(
            pd.read_csv(_path("olmo_ladder", f"ladder-runs/{file}")).tail(1),
            per_token, run=Path(file).stem, size=size, params=n,
        )
        for size, (file, n, per_token) in _OLMO_TARGETS.items()
    ]
    return pd.concat(rows, ignore_index=True)


def _olmo_ladder(final: bool = True, targets: bool = False) -> pd.DataFrame:
    if targets:
        return _olmo_targets()
    folder = _path("olmo_ladder", "ladder-runs")
    paths = sorted(p for p in folder.glob("*.csv") if _OLMO_FILE.match(p.stem))
    if len(paths) != 30:
        raise DataError(f"{folder} holds {len(paths)} ladder CSVs where 30 are expected.")
    df = pd.concat([_olmo_run(p, final) for p in paths], ignore_index=True)
    return df.sort_values(["params", "multiplier", "rerun", "tokens"], ignore_index=True)


_PORIAN_KEYS = ["dataset", "hparams", "warmup", "decay", "param_count", "loss_type"]
_PORIAN_FILES = {"points": ("isoflop_points.csv", 1748), "optima": ("isoflop_optima.csv", 177),
                 "fits": ("fit_results.csv", 90)}


def _porian_isoflop(table: str = "points") -> pd.DataFrame:
    _choice(table, list(_PORIAN_FILES), "table")
    df = _read("porian_isoflop", *_PORIAN_FILES[table])
    df.insert(0, "setting", _joined(df, _PORIAN_KEYS))
    if table == "points":
        # Three rows are empty placeholders (no N, D or loss at C = 2.56e19).
        df = df.rename(columns={"N": "params", "D": "tokens"}).dropna(subset=["params", "loss"])
    return df.reset_index(drop=True)


def _pythia_evals(
    task: str | None = None, metric: str | None = None, num_fewshot: int | None = None
) -> pd.DataFrame:
    df = _read("pythia_evals", "pythia_opt_bloom_evals_long.csv", rows=10275)
    df = df.rename(columns={"params_total": "params", "tokens_seen": "tokens"})
    for column, value in {"task": task, "metric": metric, "num_fewshot": num_fewshot}.items():
        if value is not None:
            _choice(value, sorted(df[column].unique().tolist()), column)
            df = df[df[column] == value]
    return df.reset_index(drop=True)


# The README says 18,882 vision rows; the file holds 18,883 (no final newline).
_NSL_FILES = {"lang": ("benchmark.lang.csv", 1399, 712),
              "vision": ("benchmark.vision.csv", 18883, 18883)}


def _revisiting_nsl(domain: str = "lang") -> pd.DataFrame:
    _choice(domain, list(_NSL_FILES), "domain")
    file, rows, unique = _NSL_FILES[domain]
    df = _read("revisiting_nsl", file, rows).drop_duplicates(ignore_index=True)
    _check_rows(df, unique, _path("revisiting_nsl", file))
    df.columns = ["domain", "task", "model", "x", "loss", "train"]
    return df.assign(train=df["train"].astype(bool), curve=_joined(df, ["domain", "task", "model"]))


_COMMON = {"params": "N, parameter count", "tokens": "D, training tokens",
           "flops": "C, training FLOPs", "loss": "default outcome"}
_Loader = Callable[..., pd.DataFrame]


def _entry(loader: _Loader, *, repo: str, path: str, license: str, columns: dict,
           **meta: str) -> tuple[dict, _Loader]:
    info = {"title": meta["title"], "source_repository": f"github.com/{repo}",
            "source_path": path, "commit": meta["commit"], "license": license,
            "paper": meta["paper"], "shippable": license != _UNLICENSED,
            "description": meta["description"], "columns": {**_COMMON, **columns}}
    return info, loader


_REGISTRY: dict[str, tuple[dict, _Loader]] = {
    "chinchilla_epoch": _entry(
        _chinchilla_epoch, title="Chinchilla Figure-4 points digitised by Epoch AI",
        repo="epoch-research/analyzing-chinchilla", path="data/svg_extracted_data.csv",
        commit="92258837425e1b5f2851d624287f0120583a3d0e", license=_UNLICENSED,
        paper="Besiroglu et al. (2024), arXiv:2404.10102",
        description="245 runs of one family; drop_highest_loss=5 gives Epoch's 240-point fit.",
        columns={"tokens": "D = flops / (6 params), derived",
                 "loss": "final MassiveText validation loss"},
    ),
    "gadre_overtrain": _entry(
        _gadre_overtrain, title="Over-trained open_lm models on 3 corpora",
        repo="mlfoundations/scaling", path="exp_data/",
        commit="a003c4913793ac2ae7ef87b28ecb562955d026d5", license="MIT",
        paper="Gadre et al. (2024), arXiv:2403.08540",
        description="104 models, 5 to 640 tokens/param; option loss_set picks the val set.",
        columns={"dataset": "training corpus (group)", "loss": "loss_<loss_set> (c4_val)",
                 "loss_se": "(hi95 - lo95) / (2 * 1.96), token-level measurement s.e.",
                 "gadre_fit_split": "one of the 5 fitting runs per corpus",
                 "gadre_target": "held-out target run", "run": "model name"},
    ),
    "loss_to_loss": _entry(
        _loss_to_loss, title="IsoFLOP sweeps on 6 corpora",
        repo="KempnerInstitute/loss-to-loss-notebooks",
        path="data/sweep.csv, data/extrapolation.csv",
        commit="457ce81a019019bc3981937c20a70c52f5fad436", license=_UNLICENSED,
        paper="Brandfonbrener et al. (2024), arXiv:2411.12925",
        description="529 sweep runs and 6 held-out 3.3B runs; split = sweep | extrapolation | all.",
        columns={"corpus": "training corpus (group)", "flops": "iso_flop budget",
                 "loss": "own-corpus validation loss", "loss_<set>": "validation CE on <set>",
                 "heldout": "True for the 1e21-FLOP runs", "run": "run name"},
    ),
    "obs_scaling": _entry(
        _obs_scaling, title="Benchmarks of public base LLMs",
        repo="ryoungj/ObsScaling", path="eval_results/base_llm_benchmark_eval.csv",
        commit="4d6e1e43fd2635d04654aa77d1df9d5266ea0382", license="Apache-2.0",
        paper="Ruan et al. (2024), arXiv:2405.10938",
        description="148 models in 47 families; tokens and flops are NaN for 25 models.",
        columns={"family": "model family (group)", "model": "model id",
                 "flops": "6 N D as published",
                 "loss": "absent: outcomes are the accuracies mmlu ... humaneval"},
    ),
    "olmo_ladder": _entry(
        _olmo_ladder, title="OLMo-2 model ladder and 7B/13B targets",
        repo="allenai/OLMo-ladder", path="src/scripts/paper/data/ladder-runs/",
        commit="67a3f440f787d020da35e3ca8eeae475fae754f5", license="Apache-2.0",
        paper="Bhagia et al. (2024), arXiv:2412.04403",
        description="30 runs (final=False: learning curves); targets=True: the 7B and 13B rows.",
        columns={"params": "non-embedding N", "loss": "C4-en validation CE",
                 "flops": "OLMo's FLOPs per token x tokens (7 to 10 N D, not 6 N D)",
                 "size": "ladder size label", "multiplier": "token budget in x Chinchilla",
                 "rerun": "second run of 1xC", "ladder_fit_split": "in the paper's fitting set",
                 "loss_<set>": "validation CE", "bpb_<task>": "task bits per byte",
                 "acc_<task>": "task accuracy", "step": "training step", "lr": "learning rate",
                 "run": "file stem"},
    ),
    "porian_isoflop": _entry(
        _porian_isoflop, title="IsoFLOP sweeps under 15 recipe settings",
        repo="formll/resolving-scaling-law-discrepancies", path="data/summary_df*.pickle.xz",
        commit="0dc60d91b8a525858a3067fc9e4a46ff5374cc6f", license="MIT",
        paper="Porian et al. (2024), arXiv:2406.19146",
        description="table = points | optima | fits; points drop 3 empty placeholder rows.",
        columns={"setting": "dataset/hparams/warmup/decay/param_count/loss_type (group)"},
    ),
    "pythia_evals": _entry(
        _pythia_evals, title="Pythia, OPT and BLOOM lm-eval-harness results",
        repo="EleutherAI/pythia", path="evals/",
        commit="a19eecb807ec2c79a39ebf18108816e6ffffc1d5", license="Apache-2.0",
        paper="Biderman et al. (2023), ICML",
        description="Long format; options task, metric and num_fewshot filter the rows.",
        columns={"family": "pythia, pythia-deduped, opt, bloom (group)",
                 "params": "total N (NaN for OPT/BLOOM)",
                 "tokens": "tokens seen at the checkpoint (0 at step 0)", "flops": "absent",
                 "loss": "absent: use value", "value": "metric value",
                 "stderr": "evaluation standard error"},
    ),
    "revisiting_nsl": _entry(
        _revisiting_nsl, title="Learning-curve extrapolation benchmark",
        repo="google-research/google-research", path="revisiting_neural_scaling_laws/data/",
        commit="9853680c781781bd8d3de20aa61c7373ce059913", license="Apache-2.0",
        paper="Alabdulmohsin et al. (2022), NeurIPS",
        description="domain = lang | vision; byte-identical copies taken from IBM/ColPret.",
        columns={"params": "absent", "tokens": "absent", "flops": "absent",
                 "x": "examples or tokens seen", "train": "False for held-out points",
                 "loss": "the domain's metric (error rate, log-perplexity, ...)",
                 "curve": "domain/task/model (group)"},
    ),
}


def available() -> list[str]:
    """Return the names of the data sets :func:`load` knows, sorted."""
    return sorted(_REGISTRY)


def _entry_for(name: str) -> tuple[dict, _Loader]:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), available(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise DataError(f"unknown data set {name!r}.{hint} Available: {', '.join(available())}.")
    return _REGISTRY[name]


def info(name: str) -> dict:
    """Describe a data set: provenance, license and column meanings.

    Parameters
    ----------
    name : str
        One of :func:`available`.

    Returns
    -------
    dict
        Keys ``name, title, source_repository, source_path, commit, license,
        paper, shippable, description, columns``.  ``shippable`` is False when
        the source has no license file: keep such data out of the wheel.
    """
    return {"name": name, **copy.deepcopy(_entry_for(name)[0])}


def load(name: str, **options: Any) -> pd.DataFrame:
    """Load a data set as a tidy DataFrame with canonical column names.

    Parameters
    ----------
    name : str
        One of :func:`available`.
    **options
        Set-specific: ``drop_highest_loss`` (chinchilla_epoch), ``loss_set``
        (gadre_overtrain), ``split`` (loss_to_loss), ``final`` and ``targets``
        (olmo_ladder; ``targets=True`` ignores ``final``), ``table``
        (porian_isoflop), ``task``, ``metric`` and ``num_fewshot``
        (pythia_evals), ``domain`` (revisiting_nsl).

    Returns
    -------
    pandas.DataFrame
        ``params``, ``tokens`` and ``flops`` are float64 where present;
        ``df.attrs["source"]`` holds :func:`info` of the set.

    Raises
    ------
    DataError
        Unknown name or option, a missing file, or a file whose row count is
        not the documented one.
    """
    loader = _entry_for(name)[1]
    try:
        inspect.signature(loader).bind(**options)
    except TypeError:
        accepted = list(inspect.signature(loader).parameters)
        raise DataError(f"{name} accepts the options {accepted}; got {sorted(options)}.") from None
    df = loader(**options)
    # Gadre's flops overflow int64 and load as Python ints: make sizes uniformly float.
    sizes = [c for c in ("params", "tokens", "flops") if c in df]
    df[sizes] = df[sizes].astype("float64")
    df.attrs["source"] = info(name)
    return df
