"""The ``bayescale`` command line.

Subcommands::

    bayescale demo     [--out DIR] [--chains N] [--warmup N] [--draws N] [--seed S] [--quick]
    bayescale laws     [NAME|FILE.toml] [--json]
    bayescale fit      DATA --law NAME|FILE.toml --y COL --x N=COL --x D=COL [--group COL] ...
                       --out FITDIR [--json] [--quiet]
    bayescale predict  FITDIR --at N=7e9,D=1.4e11 [--at ...] [--family F] [--kind mean|new_run]
                       [--levels 0.5,0.9] [--csv FILE] [--json]
    bayescale report   FITDIR [--out report.html] [--at N=7e9,D=1.4e11 ...] [--family F] ...
    bayescale compare  FITDIR FITDIR... [--name NAME ...] [--json]
    bayescale backtest DATA --law NAME --y COL --x N=COL ... --split largest-size|largest-compute|
                       leave-family-out:FAMILY:K [--kind mean|new_run|both] [--levels 0.5,0.9]
                       [--csv FILE] [--json]
    bayescale forecast DATA --laws NAME,NAME[,...] --y COL --x N=COL ... --at N=7e9,D=1.4e11
                       [--kind new_run|mean] [--levels 0.5,0.9] [--csv FILE] [--json]
    bayescale sweep    DATA --law NAME --y COL --x N=COL ... --by COL [--by COL] --out DIR
                       [--at N=7e9,...] [--workers N | --serial | --scheduler ADDRESS|local]
                       [--chunk N] [--retries N] [--redo-failed] [--json]

Exit codes: 0 success; 1 the fit ran but failed its diagnostics gate (results are
still written); 2 bad input or usage; 3 an unexpected internal error (a bug);
130 interrupted.  Errors are one line on stderr, ``bayescale: error: <message>``;
``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from ..inference.gate import GATE_KINDS
from .format import _num, format_calibration, format_summary, format_verdict

EXIT_OK, EXIT_GATE, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
PROG = "bayescale"
MAX_BYTES = 500_000_000  # default --max-bytes: larger data files are refused before reading


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become :class:`UsageError` (one line, no usage dump)."""

    def error(self, message):
        hint = f" (see '{self.prog} --help')"
        raise UsageError(f"{message}{hint}")


def _left_table(frame) -> str:
    """A DataFrame of text as a left-aligned table."""
    rows = [[str(v) for v in r] for r in frame.itertuples(index=False)]
    return _left_rows([str(c) for c in frame.columns], rows)


def _left_rows(cols: list, rows: list) -> str:
    """Rows of text under ``cols`` as a left-aligned table."""
    widths = [max(len(x) for x in [c, *(r[i] for r in rows)]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _jsonable(value):
    """Make ``value`` JSON-safe: NaN/inf -> None, numpy scalars -> Python, frames -> records."""
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return [_jsonable(r) for r in value.to_dict(orient="records")]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _dump(obj) -> None:
    print(json.dumps(_jsonable(obj), indent=2))


class _Out:
    """Human-readable output to stdout unless ``--quiet`` or ``--json``."""

    def __init__(self, args):
        self.quiet = getattr(args, "quiet", False)
        self.human = not self.quiet and not getattr(args, "json", False)

    def __call__(self, *lines) -> None:
        if self.human:
            for line in lines:
                print(line)

    def warn(self, message: str) -> None:
        if not self.quiet:
            print(f"{PROG}: warning: {message}", file=sys.stderr)


def _progress(args) -> bool | None:
    """Progress on stderr (a bar in a terminal, a line per step in a log) unless ``--quiet``."""
    return False if getattr(args, "quiet", False) else None


def _gate_failed(fit, where: str, quiet: bool = False) -> None:
    kinds = ", ".join(w.kind for w in fit.warnings if w.kind in GATE_KINDS)
    see = "rerun without --quiet for the details" if quiet else "see the diagnostics above"
    print(f"{PROG}: DIAGNOSTICS FAILED ({kinds}): results written to {where}, but do not trust them "
          f"as they are; {see}.", file=sys.stderr)


# ---- argument parsing helpers -------------------------------------------------------
def _pairs(items, what: str) -> dict:
    """``["a=1", "b=2,c=3"]`` -> ``{"a": "1", "b": "2", "c": "3"}``."""
    out = {}
    for item in items or []:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, value = part.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key or not value:
                raise UsageError(f"{what} expects NAME=VALUE, got {part!r}.")
            if key in out:
                raise UsageError(f"{what} gives {key!r} twice ({out[key]!r} and {value!r}).")
            out[key] = value
    return out


def _x_mapping(items):
    """``--x`` values -> a dict input -> column, or a bare column name for one-input laws."""
    bare = [i for i in items if "=" not in i]
    if bare:
        if len(items) > 1:
            raise UsageError(f"--x {bare[0]!r} has no INPUT= part; with several --x give each as "
                             f"INPUT=COLUMN, e.g. --x N=params --x D=tokens.")
        return bare[0]
    return _pairs(items, "--x")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _number(text: str, what: str) -> float:
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise UsageError(f"{what} value {text!r} is not a number (write e.g. 7e9, not 7B).") from None
    if not math.isfinite(value):
        raise UsageError(f"{what} value {text!r} must be a finite number.")
    return value


def _levels(text: str) -> tuple:
    levels = []
    for part in text.split(","):
        if not part.strip():
            continue
        value = _number(part.strip(), "--levels")
        if not 0 < value < 1:
            raise UsageError(f"--levels value {part.strip()!r} must lie strictly between 0 and 1, "
                             f"e.g. --levels 0.5,0.9.")
        levels.append(value)
    if not levels:
        raise UsageError("--levels is empty; give e.g. --levels 0.5,0.9.")
    return tuple(levels)


def _byte_size(text: str) -> int:
    """``--max-bytes`` value: a whole number of bytes, optionally with a k/M/G suffix (powers of 1000)."""
    units = {"k": 10**3, "m": 10**6, "g": 10**9}
    raw = text.strip().lower().removesuffix("b")
    scale = units.get(raw[-1:], 1)
    number = raw[:-1] if raw[-1:] in units else raw
    try:
        value = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size in bytes (e.g. 500M)") from None
    if not math.isfinite(value) or value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1 byte")
    return int(value * scale)


def _human_bytes(n: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def read_data(path, max_bytes: int | None = None) -> pd.DataFrame:
    """Read a CSV (``.csv``, ``.tsv``, optionally compressed) or Parquet file, with clear errors.

    A file larger than ``max_bytes`` is refused from its size alone, before any of it is read.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise UsageError(f"data file {path} does not exist.")
    if path.is_dir():
        raise UsageError(f"data file {path} is a directory; give a CSV or Parquet file.")
    size = path.stat().st_size
    if size == 0:
        raise UsageError(f"data file {path} is empty.")
    if max_bytes is not None and size > max_bytes:
        raise UsageError(f"data file {path} is {_human_bytes(size)}, over the limit of "
                         f"{_human_bytes(max_bytes)} ({max_bytes} bytes); a ladder of runs is far "
                         f"smaller. Check the file, or raise the limit with --max-bytes.")
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if suffixes and suffixes[-1] in (".parquet", ".pq"):
            try:
                df = pd.read_parquet(path)
            except ImportError as exc:
                raise UsageError(f"reading Parquet needs pyarrow or fastparquet ({exc}); "
                                 f"pip install pyarrow, or save {path.name} as CSV.") from None
            except Exception as exc:  # noqa: BLE001 - any parse failure is the file's fault
                raise UsageError(f"data file {path} is not a readable Parquet file ({exc}).") from None
        else:
            sep = "\t" if ".tsv" in suffixes else ","
            df = pd.read_csv(path, sep=sep, encoding="utf-8")
    except PermissionError:
        raise UsageError(f"data file {path} cannot be read (permission denied).") from None
    except UnicodeDecodeError:
        raise UsageError(f"data file {path} is not UTF-8 text; re-save it as UTF-8 CSV.") from None
    except pd.errors.EmptyDataError:
        raise UsageError(f"data file {path} is empty (no header, no rows).") from None
    except pd.errors.ParserError as exc:
        raise UsageError(f"data file {path} is not valid CSV: {str(exc).strip()}") from None
    except OSError as exc:
        raise UsageError(f"data file {path} cannot be read ({exc}).") from None
    if len(df) == 0:
        raise UsageError(f"data file {path} has a header but no rows.")
    return df


# ---- subcommands ------------------------------------------------------------------------
def cmd_demo(args) -> int:
    import matplotlib

    matplotlib.use("Agg")  # the demo only writes a PNG; never open a window
    from .demo import run_demo
    quick = {"chains": 2, "warmup": 300, "draws": 300} if args.quick else {}
    settings = {k: getattr(args, k) if getattr(args, k) is not None else quick.get(k, default)
                for k, default in (("chains", 4), ("warmup", 1000), ("draws", 1000))}
    out = _Out(args)
    result = run_demo(args.out, seed=args.seed, echo=out, progress=_progress(args), **settings)
    if args.json:
        _dump({k: v for k, v in result.items() if k != "forecast"} | {"forecast": result["forecast"]})
    if not result["ok"]:
        kinds = ", ".join(w.split("]")[0].lstrip("[") for w in result["warnings"]
                          if w.split("]")[0].lstrip("[") in GATE_KINDS)
        print(f"{PROG}: DIAGNOSTICS FAILED ({kinds}): the demo fit did not pass its diagnostics gate "
              f"(see its warnings).", file=sys.stderr)
        return EXIT_GATE
    return EXIT_OK


def _law_details(law) -> dict:
    return {
        "name": law.name, "title": law.title, "formula": law.formula.text,
        "inputs": dict(law.input_descriptions), "outcome": law.outcome.kind,
        "schedule": dict(law.schedule),
        "parameters": {p.name: {"prior": str(p.prior), "pool": p.pool, "tau": p.tau,
                                "description": p.description} for p in law.parameters.values()},
        "report": {k: f.text for k, f in law.report.items()},
        "citation": law.citation, "description": law.description, "notes": law.notes,
    }


def cmd_laws(args) -> int:
    from ..laws.spec import catalogue_markdown, catalogue_rows, laws, resolve

    if args.markdown:
        print(catalogue_markdown(), end="")
        return EXIT_OK
    if args.name is None:
        if args.json:
            _dump(laws())
        elif not args.quiet:  # from the rows, not the DataFrame: the command starts without pandas
            cols = ["name", "title", "inputs", "formula"]
            rows = catalogue_rows()
            print(_left_rows(cols, [[str(r[c]) for c in cols] for r in rows]))
            print(f"\nShow one law with '{PROG} laws NAME' (e.g. {PROG} laws {rows[0]['name']}).")
        return EXIT_OK
    details = _law_details(resolve(args.name))
    if args.json:
        _dump(details)
        return EXIT_OK
    if args.quiet:
        return EXIT_OK
    d = details
    print(f"{d['name']}: {d['title']}" if d["title"] else d["name"])
    print(f"\n  y = {d['formula']}\n")
    if d["outcome"] != "positive":
        from ..laws.outcome import Outcome

        print(f"Outcome: {Outcome.named(d['outcome']).description}\n")
    print("Inputs (each divided by its reference <input>_ref, the geometric mean of the data, "
          "unless unscaled):")
    width = max(map(len, d["inputs"]))
    for k, v in d["inputs"].items():
        print(f"  {k:<{width}}  {v}")
    print("\nParameters:")
    rows = [(k, v["prior"], v["pool"], v["description"]) for k, v in d["parameters"].items()]
    widths = [max(len(r[i]) for r in rows + [("name", "prior", "pool", "")]) for i in range(3)]
    print(f"  {'name':<{widths[0]}}  {'prior':<{widths[1]}}  {'pool':<{widths[2]}}  description")
    for r in rows:
        print(f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")
    if d["report"]:
        print("\nReported on the paper's scale:")
        for k, v in d["report"].items():
            print(f"  {k} = {v}")
    for key in ("description", "notes", "citation"):
        if d[key]:
            print(f"\n{key.capitalize()}: {d[key]}")
    return EXIT_OK


def cmd_fit(args) -> int:
    from ..api import fit as run_fit
    from ..errors import BayescaleWarning

    out = _Out(args)
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out {args.out} exists and is not a directory; give a folder for the fit.")
    df, kwargs = _fit_inputs(args)
    out(f"Fitting law {args.law} to {len(df)} rows of {args.data} "
        f"({args.chains} chain(s) x {args.draws} draws after {args.warmup} warmup) ...")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BayescaleWarning)  # reported below, once
        result = run_fit(df, seed=args.seed, extrapolation=args.extrapolation, **kwargs)
    try:
        where = result.save(args.out)
    except OSError as exc:
        raise UsageError(f"cannot save the fit to {args.out} ({exc}).") from None
    for w in result.warnings:  # design notes (few sizes, collinear, ...) go to stderr as warnings
        if w.kind not in GATE_KINDS:
            out.warn(str(w))
    if args.json:
        _dump({"ok": result.ok, "out": str(where), "law": result.law.name,
               "families": list(result.design.families), "rows": int(len(result.design.y)),
               "settings": result.settings.record(),
               "warnings": [{"kind": w.kind, "message": w.message} for w in result.warnings],
               "summary": result.summary()})
    else:
        out(f"Fitted in {result.settings.seconds:.1f} s; saved to {where}.",
            format_calibration(result.settings.extrapolation), "",
            format_summary(result.summary()), "", *format_verdict(result))
    if not result.ok:
        _gate_failed(result, str(where), quiet=args.quiet)
        return EXIT_GATE
    return EXIT_OK


def _fit_inputs(args) -> tuple[pd.DataFrame, dict]:
    """The data and the ``bs.fit`` keyword arguments (all but ``seed``) from the arguments added by
    :func:`_add_fit_arguments`."""
    df = read_data(args.data, max_bytes=args.max_bytes)
    kwargs = dict(
        law=args.law, y=args.y, x=_x_mapping(args.x), group=args.group, run=args.run, se=args.se,
        weight=args.weight,
        pool=_pairs(args.pool, "--pool") or None, likelihood=args.likelihood, chains=args.chains,
        warmup=args.warmup, draws=args.draws, device=args.device,
        parameterization=args.parameterization.replace("centered", "centred"),
        progress=_progress(args), min_rows_per_family=args.min_rows_per_family,
        check_units=not args.no_unit_check, duplicates="drop" if args.drop_duplicates else "keep")
    return df, kwargs


def _at_rows(items, law) -> list[dict]:
    """Parse ``--at`` values into dicts law input -> float."""
    rows = []
    for item in items:
        if "=" not in item and len(law.inputs) == 1:
            pairs = {law.inputs[0]: item.strip()}
        else:
            pairs = _pairs([item], "--at")
        unknown = [k for k in pairs if k not in law.inputs]
        if unknown:
            close = difflib.get_close_matches(unknown[0], law.inputs, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise UsageError(f"--at names {unknown[0]!r}, which is not an input of law '{law.name}'.{hint} "
                             f"Its inputs are {', '.join(law.inputs)}.")
        missing = [k for k in law.inputs if k not in pairs]
        if missing:
            example = ",".join(f"{k}=<value>" for k in law.inputs)
            raise UsageError(f"--at {item!r} lacks input(s) {', '.join(missing)} of law '{law.name}'; "
                             f"give e.g. --at {example}.")
        row = {}
        for k, text in pairs.items():
            value = _number(text, f"--at {k}")
            if value <= 0:
                raise UsageError(f"--at {k} value {text!r} must be > 0.")
            row[k] = value
        rows.append(row)
    return rows


def _forecast(fit, args, levels, out) -> tuple[pd.DataFrame, list[str]]:
    """Forecasts at ``args.at`` (with ``--family``, ``--kind``, ``--seed``) and the extrapolation
    warnings met (also printed to stderr)."""
    import pandas as pd

    from ..errors import ExtrapolationWarning

    rows = _at_rows(args.at, fit.law)
    xmap, group = fit.design.columns["x"], fit.design.columns["group"]
    new = pd.DataFrame([{xmap[k]: v for k, v in r.items()} for r in rows])
    if args.family is not None:
        if group is None:
            raise UsageError(f"--family {args.family!r}: this fit has no group column (it was fitted "
                             f"without --group), so there are no families to choose from.")
        if args.family not in fit.design.families:
            close = difflib.get_close_matches(args.family, fit.design.families, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            out.warn(f"family {args.family!r} is not in the fit{hint}; forecasting it as a new family "
                     f"from the population. Fitted families: {', '.join(fit.design.families)}.")
        new[group] = args.family
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExtrapolationWarning)
        pred = fit.predict(new, kind=args.kind, levels=levels, seed=args.seed,
                           extrapolation=not args.law_only)
    found = []
    for w in caught:
        if issubclass(w.category, ExtrapolationWarning):
            out.warn(str(w.message))
            found.append(f"[extrapolation] {w.message}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return pred, found


def cmd_predict(args) -> int:
    from ..api import load

    out = _Out(args)
    levels = _levels(args.levels)
    fit = load(args.fitdir)
    pred, _ = _forecast(fit, args, levels, out)
    if not fit.ok:
        out.warn("this fit failed its diagnostics gate; the forecasts may be unreliable.")
    xmap = fit.design.columns["x"]
    if args.csv:
        try:
            pred.to_csv(args.csv, index=False)
        except OSError as exc:
            raise UsageError(f"cannot write {args.csv} ({exc}).") from None
    if args.json:
        _dump(pred)
    else:
        formatters = {c: _num for c in pred.columns if c in ("mean", "median", "distance")
                      or c[:2] in ("lo", "hi") or c.startswith("extrap_")}
        formatters |= {c: "{:.4g}".format for c in xmap.values()}
        out(f"Forecasts of law {fit.law.name} ({'one new run' if args.kind == 'new_run' else 'the law'}"
            f", {', '.join(f'{100 * v:g}%' for v in levels)} bands):",
            pred.to_string(index=False, formatters=formatters))
        if args.csv:
            out(f"Written to {args.csv}.")
    return EXIT_OK


def cmd_forecast(args) -> int:
    import pandas as pd

    from ..errors import BayescaleWarning
    from ..laws.spec import resolve
    from ..many.stack import forecast

    out = _Out(args)
    levels = _levels(args.levels)
    names = list(dict.fromkeys(n.strip() for item in args.laws for n in item.split(",") if n.strip()))
    if len(names) < 2:
        raise UsageError(f"--laws {','.join(names)}: give at least two laws to stack, e.g. "
                         f"--laws chinchilla,chinchilla_shared.")
    df, kwargs = _fit_inputs(args)
    kwargs.pop("law")
    first = resolve(names[0])
    xmap = kwargs["x"] if isinstance(kwargs["x"], dict) else {first.inputs[0]: kwargs["x"]}
    at = pd.DataFrame([{xmap.get(k, k): v for k, v in r.items()} for r in _at_rows(args.at, first)])
    if args.family is not None:
        if args.group is None:
            raise UsageError(f"--family {args.family!r} needs --group, the column of families.")
        at[args.group] = args.family
    out(f"Stacking {len(names)} laws on {len(df)} rows of {args.data}: each fitted to all the data "
        f"and at 3 rolling origins inside it ...")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BayescaleWarning)  # the gates are reported below
        res = forecast(df, names, at, kind=args.kind, levels=levels, seed=args.seed, **kwargs)
    if args.csv:
        try:
            res.table.to_csv(args.csv, index=False)
        except OSError as exc:
            raise UsageError(f"cannot write {args.csv} ({exc}).") from None
    elpd = res.elpd()
    if args.json:
        _dump({"ok": res.ok, "weights": res.weights.to_dict(), "elpd_lfo": elpd.to_dict(),
               "forecast": res.table, "laws": dict(res.laws),
               "gates": res.gates})
    else:
        weights = pd.DataFrame({"weight": res.weights, "elpd_lfo": elpd[res.weights.index],
                                "verdict": [res.fits[k].verdict() for k in res.weights.index]})
        formatters = {c: _num for c in res.table.columns if c in ("mean", "median", "distance")
                      or c[:2] in ("lo", "hi") or c.startswith("extrap_")}
        formatters |= {c: "{:.4g}".format for c in xmap.values()}
        failed = res.gates[~res.gates["verdict"].str.startswith("passed")]
        out("Stacking weights (leave-future-out log score of the runs beyond each origin; stacked: "
            f"{elpd['stacked']:.2f}):", weights.to_string(formatters={"weight": "{:.3f}".format,
                                                                      "elpd_lfo": "{:.2f}".format}), "",
            f"Stacked forecast ({'one new run' if args.kind == 'new_run' else 'the law'}, "
            f"{', '.join(f'{100 * v:g}%' for v in levels)} bands):",
            res.table.to_string(index=False, formatters=formatters),
            *([""] + [f"  {r.law}, {r.fit}: {r.verdict} {r.reason}".rstrip() for r in failed.itertuples()]
              if len(failed) else []))
        if args.csv:
            out(f"Written to {args.csv}.")
    if not res.ok:
        out.warn("DIAGNOSTICS FAILED: a law with weight in the stack failed its gate; the stacked "
                 "forecast is not an answer. Run more warmup and draws, or drop that law.")
        return EXIT_GATE
    return EXIT_OK


def _budgets(items) -> list[float]:
    values = []
    for item in items:
        for part in str(item).split(","):
            if part.strip():
                values.append(_number(part.strip(), "--budget"))
    if not values:
        raise UsageError("give at least one compute budget, e.g. --budget 1e21,1e23.")
    return values


def cmd_allocate(args) -> int:
    from ..api import load
    from ..forecast.allocate import allocate
    from ..viz.plot import plot

    out = _Out(args)
    levels = _levels(args.levels)
    fit = load(args.fitdir)
    names = [n.strip() for n in args.inputs.split(",")]
    if len(names) != 2:
        raise UsageError(f"--inputs takes two law input names separated by a comma, not {args.inputs!r}.")
    families = args.family or None
    result = allocate(fit, _budgets(args.budget), family=families, inputs=tuple(names), levels=levels)
    if not fit.ok:
        out.warn("this fit failed its diagnostics gate; the allocation may be unreliable.")
    table = result.table
    if args.csv:
        try:
            table.to_csv(args.csv, index=False)
        except OSError as exc:
            raise UsageError(f"cannot write {args.csv} ({exc}).") from None
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        try:
            plot(result).savefig(args.plot, dpi=120)
        except OSError as exc:
            raise UsageError(f"cannot write {args.plot} ({exc}).") from None
    if args.json:
        _dump(table)
        return EXIT_OK
    top = max(levels)
    pct = f"{100 * top:g}"
    shown = table[["C", "family"]].copy()
    for key, label in (("N", "N*"), ("D", "D*"), ("tokens_per_param", "D*/N*"), ("L", "L*")):
        shown[label] = [f"{_num(m)} [{_num(lo)}, {_num(hi)}]" for m, lo, hi in
                        zip(table[f"{key}_median"], table[f"{key}_lo{pct}"], table[f"{key}_hi{pct}"])]
    shown["C"] = shown["C"].map("{:.3g}".format)
    out(f"Compute-optimal allocation under 6*N*D ({table['method'].iloc[0]}), median [{pct}% interval]:",
        _left_table(shown))
    for path in (args.csv, args.plot):
        if path:
            out(f"Written to {path}.")
    return EXIT_OK


def cmd_report(args) -> int:
    from ..api import load
    from ..viz.report import write

    out = _Out(args)
    levels = _levels(args.levels)
    if args.out is not None and Path(args.out).is_dir():
        raise UsageError(f"--out {args.out} is a directory; give a file name such as report.html.")
    fit = load(args.fitdir)
    pred, found = _forecast(fit, args, levels, out) if args.at else (None, None)
    target = Path(args.out) if args.out is not None else Path(args.fitdir) / "report.html"
    try:
        where = write(fit, target, forecasts=pred, extra_warnings=found)
    except OSError as exc:
        raise UsageError(f"cannot write the report to {target} ({exc}).") from None
    out(f"Report of the {fit.law.name} fit written to {where}.")
    if not fit.ok:
        kinds = ", ".join(w.kind for w in fit.warnings if w.kind in GATE_KINDS)
        print(f"{PROG}: DIAGNOSTICS FAILED ({kinds}): report written to {where}; its Diagnostics "
              f"section says what failed and what to try.", file=sys.stderr)
        return EXIT_GATE
    return EXIT_OK


def cmd_compare(args) -> int:
    from ..api import load
    from ..errors import LooWarning
    from ..evaluate.compare import compare

    out = _Out(args)
    dirs = [Path(d) for d in args.fitdirs]
    if len(dirs) < 2:
        raise UsageError(f"compare needs at least two fit directories, got {len(dirs)}; "
                         f"e.g. {PROG} compare fit-power fit-chinchilla.")
    if args.name:
        if len(args.name) != len(dirs):
            raise UsageError(f"--name is given {len(args.name)} time(s) for {len(dirs)} fit directories; "
                             f"give one --name per FITDIR, in the same order, or none.")
        names = [str(n) for n in args.name]
    else:
        names = [d.resolve().name or str(d) for d in dirs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"two fits would both be named {dupes[0]!r}; tell them apart with "
                         f"--name (one per FITDIR).")
    fits = {name: load(d) for name, d in zip(names, dirs, strict=True)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LooWarning)
        table = compare(fits)  # DataError (exit 2) unless the fits share their data
    for name, f in fits.items():
        if not f.ok:
            out.warn(f"fit {name!r} failed its diagnostics gate; its LOO estimate may be unreliable.")
    for w in caught:
        if issubclass(w.category, LooWarning):
            out.warn(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if args.json:
        _dump(table.reset_index())
    else:
        formatters = {c: _num for c in ("elpd_loo", "se", "p_loo", "elpd_diff", "dse")}
        formatters["weight"] = lambda v: f"{float(v):.3f}"
        out("PSIS-LOO comparison (elpd of log y; higher is better; stacking weights):",
            table.to_string(formatters=formatters))
    return EXIT_OK


def _split(text: str):
    """``--split`` value -> the ``split`` argument of :func:`bayescale.backtest`."""
    text = text.strip()
    if text in ("largest-size", "largest-compute"):
        return text
    prefix = "leave-family-out:"
    if text.startswith(prefix):
        family, sep, k = text[len(prefix):].rpartition(":")
        try:
            k_value = int(k)
        except ValueError:
            k_value = -1
        if sep and family and k_value >= 0:
            return ("leave-family-out", family, k_value)
        raise UsageError(f"--split {text!r}: write leave-family-out:FAMILY:K, with K >= 0 the number of "
                         f"the family's smallest runs kept for fitting (e.g. leave-family-out:c4:1).")
    raise UsageError(f"--split {text!r} is not a split; choose largest-size, largest-compute or "
                     f"leave-family-out:FAMILY:K.")


def cmd_backtest(args) -> int:
    from ..api import backtest
    from ..errors import BayescaleWarning
    out = _Out(args)
    split = _split(args.split)
    levels = _levels(args.levels)
    kind = ("mean", "new_run") if args.kind == "both" else args.kind
    df, kwargs = _fit_inputs(args)
    out(f"Backtesting law {args.law} on {args.data} (split {args.split}; {args.chains} chain(s) x "
        f"{args.draws} draws after {args.warmup} warmup) ...")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BayescaleWarning)  # reported below, once
        result = backtest(df, split=split, kind=kind, levels=levels, seed=args.seed, **kwargs)
    fit = result.fit
    for w in fit.warnings:
        if w.kind not in GATE_KINDS:
            out.warn(str(w))
    aggregate = result.aggregate.reset_index(names="kind")
    per_target = result.per_target
    n_held = int(result.held_out.sum())
    n_train = int((~result.held_out).sum())
    if args.csv:
        try:
            per_target.to_csv(args.csv, index=False)
        except OSError as exc:
            raise UsageError(f"cannot write {args.csv} ({exc}).") from None
    if args.json:
        _dump({"ok": fit.ok, "law": fit.law.name, "split": result.split, "n_train": n_train,
               "n_held_out": n_held, "levels": list(levels),
               "warnings": [{"kind": w.kind, "message": w.message} for w in fit.warnings],
               "aggregate": aggregate, "per_target": per_target})
    else:
        def floats(frame):
            return {c: _num for c in frame.columns if frame[c].dtype.kind == "f"}

        out(f"Held out {n_held} row(s) by {result.split}; fitted on {n_train}.", "",
            "Aggregate (coverage_<pct>: share of held-out rows inside the central band):",
            aggregate.to_string(index=False, formatters=floats(aggregate)), "",
            "Per target:", per_target.to_string(index=False, formatters=floats(per_target)), "",
            *format_verdict(fit))
        if args.csv:
            out(f"Per-target results written to {args.csv}.")
    if not fit.ok:
        kinds = ", ".join(w.kind for w in fit.warnings if w.kind in GATE_KINDS)
        see = "rerun without --quiet for the details" if args.quiet else "see the diagnostics above"
        print(f"{PROG}: DIAGNOSTICS FAILED ({kinds}): the backtest's training fit did not pass its "
              f"diagnostics gate; do not trust these scores as they are; {see}.", file=sys.stderr)
        return EXIT_GATE
    return EXIT_OK


def cmd_sweep(args) -> int:
    from ..errors import BayescaleWarning
    from ..laws.spec import resolve
    from ..many.sweep import sweep

    out = _Out(args)
    df, kwargs = _fit_inputs(args)
    kwargs.pop("progress")
    kwargs.pop("device")
    by = [c.strip() for item in args.by for c in item.split(",") if c.strip()]
    at = None
    if args.at:
        xmap = kwargs["x"] if isinstance(kwargs["x"], dict) else {resolve(args.law).inputs[0]: kwargs["x"]}
        at = [{xmap[k]: v for k, v in row.items()} for row in _at_rows(args.at, resolve(args.law))]
    client = None
    if args.scheduler is not None:
        from ..inference.executor import dask_client

        client = dask_client(None if args.scheduler == "local" else args.scheduler, args.workers)
        executor = client.get_executor()
    else:
        executor = "serial" if args.serial else "local"
    where = "this process" if args.serial else (
        f"Dask at {args.scheduler}" if client else f"{args.workers or 'one per core'} local worker(s)")
    out(f"Sweeping law {args.law} over the groups of {', '.join(by)} in {args.data} on {where}; "
        f"results in {args.out} ...")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BayescaleWarning)  # each group's record carries them
            result = sweep(df, by=by, seed=args.seed, at=at, kind=args.kind, levels=_levels(args.levels),
                           out=args.out, executor=executor, workers=args.workers, chunk=args.chunk,
                           retries=args.retries, redo_failed=args.redo_failed,
                           progress=_progress(args), extrapolation=args.extrapolation,
                           **kwargs)
    finally:
        if client is not None:
            client.close()
    failed = result.failed
    if args.json:
        _dump({"groups": result.groups, "failed": failed, "out": str(args.out)})
    else:
        counts = result.groups["status"].value_counts()
        out(f"{len(result.groups)} groups: " + ", ".join(f"{n} {k}" for k, n in counts.items()) +
            f"; tables written to {Path(args.out) / 'groups.csv'}, parameters.csv and forecasts.csv.")
        if len(failed):
            cols = [*by, "status", "message"]
            out("", "Groups that failed (status, why):",
                failed[cols].to_string(index=False, max_colwidth=100))
    if len(failed):
        print(f"{PROG}: {len(failed)} of {len(result.groups)} group(s) did not pass (see "
              f"{Path(args.out) / 'groups.csv'}).", file=sys.stderr)
        return EXIT_GATE
    return EXIT_OK


# ---- parser -------------------------------------------------------------------------------
def _add_forecast_arguments(p) -> None:
    """Arguments shared by the commands that forecast from a saved fit (predict, report)."""
    p.add_argument("--family", help="family to forecast (a new name: forecast from the population); "
                                    "default: every fitted family")
    p.add_argument("--kind", choices=("mean", "new_run"), default="mean",
                   help="mean: the law's curve; new_run: where one new run lands")
    p.add_argument("--levels", default="0.5,0.9", help="central credible levels (default 0.5,0.9)")
    p.add_argument("--seed", type=int, default=0, help="seed of the forecast draws")
    p.add_argument("--law-only", action="store_true",
                   help="the law-only band, without the widening beyond the data that the fit's "
                        "calibration gives")


def _add_fit_arguments(p, several: bool = False) -> None:
    """The data, law, column and sampler arguments shared by ``fit``, ``backtest`` and (``several``
    laws, ``--laws``) ``forecast``."""
    p.add_argument("data", metavar="DATA", help="CSV or Parquet file, one row per observation")
    if several:
        p.add_argument("--laws", required=True, action="append", metavar="NAME,NAME",
                       help="the laws to stack: catalogue names or .toml files, comma-separated or "
                            "repeated; they share --x")
        p.set_defaults(law=None)
    else:
        p.add_argument("--law", required=True, help="catalogue name (see 'bayescale laws') or a .toml file")
    p.add_argument("--y", required=True, metavar="COL", help="outcome column (e.g. loss)")
    p.add_argument("--x", required=True, action="append", metavar="INPUT=COL",
                   help="law input -> column, repeated (e.g. --x N=params --x D=tokens); "
                        "for a one-input law just --x COL")
    p.add_argument("--group", metavar="COL", help="family column (corpus, architecture, ...)")
    p.add_argument("--run", metavar="COL", help="run/seed column (each run gets its own offset)")
    p.add_argument("--se", metavar="COL", help="column of known standard errors of y")
    p.add_argument("--weight", metavar="COL",
                   help="column of likelihood weights (> 0, scaled to average 1): a row counts that "
                        "many times")
    p.add_argument("--pool", action="extend", nargs="+", metavar="PARAM=MODE",
                   help="override pooling: shared, partial or none (e.g. --pool alpha=partial)")
    p.add_argument("--likelihood", choices=("normal", "student_t"), default="normal")
    p.add_argument("--chains", type=_positive_int, default=4)
    p.add_argument("--warmup", type=_positive_int, default=1000)
    p.add_argument("--draws", type=_positive_int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("cpu", "gpu", "auto"), default=None,
                   help="where to sample (default auto: the CPU, or a GPU for 10^6 rows or more)")
    p.add_argument("--parameterization", default="auto",
                   choices=("auto", "centred", "noncentred", "centered", "noncentered"))
    p.add_argument("--min-rows-per-family", type=_positive_int, default=2, metavar="N",
                   help="families with fewer rows are an error (default 2)")
    p.add_argument("--max-bytes", type=_byte_size, default=MAX_BYTES, metavar="SIZE",
                   help=f"refuse data files larger than this, before reading them "
                        f"(default {MAX_BYTES // 10**6}M; suffixes k, M, G)")
    p.add_argument("--no-unit-check", action="store_true",
                   help="do not refuse an input that spans more than 6 decades with a 3-decade gap "
                        "within a family (the sign of values in mixed units, e.g. 7 and 7e9)")
    p.add_argument("--drop-duplicates", action="store_true",
                   help="keep only the first of rows equal in every column the fit uses (by default "
                        "they are kept as replicates of one configuration, with a warning)")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error")
    common.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS,
                        help="print nothing but errors (and the DIAGNOSTICS FAILED line)")

    parser = _Parser(prog=PROG, description="Hierarchical Bayesian scaling laws with honest uncertainty.",
                     epilog="Exit codes: 0 success, 1 fit failed its diagnostics gate (results written), "
                            "2 bad input or usage, 3 internal error.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    parser.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("demo", parents=[common], help="fit a simulated ladder and forecast a held-out model",
                       description="Simulate a 3-family Chinchilla ladder, hold out each family's largest "
                                   "model, fit the rest, and check the forecasts against the truth.")
    p.add_argument("--out", default="bayescale-demo",
                   help="folder for demo_fit.png (default ./bayescale-demo)")
    p.add_argument("--chains", type=_positive_int, default=None, help="NUTS chains (default 4)")
    p.add_argument("--warmup", type=_positive_int, default=None, help="warmup steps per chain (default 1000)")
    p.add_argument("--draws", type=_positive_int, default=None, help="draws per chain (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="simulation and sampler seed (default 0)")
    p.add_argument("--quick", action="store_true", help="smoke test: 2 chains x 300 warmup + 300 draws")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("laws", parents=[common], help="list the law catalogue or show one law",
                       description="List the catalogue of scaling laws, or show one in full.")
    p.add_argument("name", nargs="?", metavar="NAME", help="a catalogue name or a .toml law file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--markdown", action="store_true", help="print the catalogue as models/README.md")
    p.set_defaults(func=cmd_laws)

    p = sub.add_parser("fit", parents=[common], help="fit a law to a CSV or Parquet file",
                       description="Fit a hierarchical scaling law by NUTS, save it and print its summary.")
    _add_fit_arguments(p)
    how = p.add_mutually_exclusive_group()
    how.add_argument("--extrapolation", dest="extrapolation", action="store_const", const=True,
                     default="auto",
                     help="require the calibration of forecasts beyond the data (by default it is "
                          "made when the data allow: a rolling backtest inside the data, 3 more "
                          "fits, whose rate forecasts then carry), and fail without it")
    how.add_argument("--law-only", dest="extrapolation", action="store_const", const=False,
                     help="skip that calibration: forecasts carry the law-only band")
    p.add_argument("--out", required=True, metavar="FITDIR", help="directory to save the fit in")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("predict", parents=[common], help="forecast from a saved fit",
                       description="Forecast the outcome at new input values from a fit saved by "
                                   "'bayescale fit'.")
    p.add_argument("fitdir", metavar="FITDIR", help="directory written by 'bayescale fit --out'")
    p.add_argument("--at", required=True, action="append", metavar="N=7e9,D=1.4e11",
                   help="input values by LAW INPUT name, repeated for several points")
    _add_forecast_arguments(p)
    p.add_argument("--csv", metavar="FILE", help="also write the forecasts to a CSV file")
    p.add_argument("--json", action="store_true", help="print the forecasts as JSON records")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("allocate", parents=[common], help="compute-optimal N*, D* and loss at given budgets",
                       description="Posterior of the compute-optimal model size N*, tokens D*, tokens per "
                                   "parameter and loss at each compute budget C = 6*N*D, from a saved fit "
                                   "of a law with a size and a data input (e.g. chinchilla).")
    p.add_argument("fitdir", metavar="FITDIR", help="directory written by 'bayescale fit --out'")
    p.add_argument("--budget", required=True, action="append", metavar="1e21,1e23",
                   help="compute budgets in FLOPs, comma-separated or repeated")
    p.add_argument("--inputs", default="N,D", metavar="N,D",
                   help="the law's size and data inputs (default N,D)")
    p.add_argument("--family", action="append", metavar="NAME",
                   help="allocate for this family (repeatable; default every family; a new name "
                        "is drawn from the population)")
    p.add_argument("--levels", default="0.5,0.9", metavar="0.5,0.9", help="credible levels (default 0.5,0.9)")
    p.add_argument("--csv", metavar="FILE", help="also write the table to a CSV file")
    p.add_argument("--plot", metavar="PNG", help="also draw the frontier to a PNG file")
    p.add_argument("--json", action="store_true", help="print the table as JSON records")
    p.set_defaults(func=cmd_allocate)

    p = sub.add_parser("report", parents=[common], help="write a self-contained HTML report of a fit",
                       description="Write one self-contained HTML file that answers first: the "
                                   "forecasts (with --at), the law and the diagnostics verdict with its "
                                   "reasons; then the fitted curves, the posterior predictive check, "
                                   "rank and trace plots, the posterior summary, the diagnostics, the "
                                   "law and every warning; the raw data last, folded away.  Exit code "
                                   "1 if the fit failed its diagnostics gate (the report is still "
                                   "written).")
    p.add_argument("fitdir", metavar="FITDIR", help="directory written by 'bayescale fit --out'")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="HTML file to write (default FITDIR/report.html)")
    p.add_argument("--at", action="append", metavar="N=7e9,D=1.4e11", default=[],
                   help="add forecasts at these input values, repeated for several points")
    _add_forecast_arguments(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("compare", parents=[common], help="compare saved fits of the same data by PSIS-LOO",
                       description="Compare two or more fits of the same data (e.g. different laws) by "
                                   "PSIS-LOO: expected log predictive density, its difference to the best "
                                   "fit, stacking weights and the count of Pareto k > 0.7 observations.")
    p.add_argument("fitdirs", nargs="+", metavar="FITDIR",
                   help="two or more directories written by 'bayescale fit --out'")
    p.add_argument("--name", action="append", metavar="NAME",
                   help="name of each fit in the table, repeated in FITDIR order "
                        "(default: the directory names)")
    p.add_argument("--json", action="store_true", help="print the table as JSON records")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("backtest", parents=[common], help="hold out the largest runs, refit and score",
                       description="Hold out rows (the largest size, the largest compute, or the later "
                                   "runs of one family), fit the law on the rest, and score the "
                                   "forecasts of the held-out rows: error and band coverage.  Exit code "
                                   "1 if the training fit failed its diagnostics gate.")
    _add_fit_arguments(p)
    p.add_argument("--split", required=True, metavar="SPLIT",
                   help="largest-size, largest-compute (top 20%% of rows by compute) or "
                        "leave-family-out:FAMILY:K (keep the family's K smallest runs)")
    p.add_argument("--kind", choices=("mean", "new_run", "both"), default="mean",
                   help="mean: the law's curve; new_run: where one new run lands (default mean)")
    p.add_argument("--levels", default="0.5,0.8,0.9,0.95",
                   help="central credible levels scored (default 0.5,0.8,0.9,0.95)")
    p.add_argument("--csv", metavar="FILE", help="also write the per-target results to a CSV file")
    p.add_argument("--json", action="store_true", help="print the aggregate and per-target results as JSON")
    p.set_defaults(func=cmd_backtest)

    p = sub.add_parser("forecast", parents=[common], help="forecast from several laws, stacked by "
                                                          "how well each forecast the future in the data",
                       description="Fit each law to all the data and at rolling origins inside it; weight "
                                   "the laws by stacking their leave-future-out scores; forecast from the "
                                   "weighted mixture of their calibrated predictive draws.")
    _add_fit_arguments(p, several=True)
    p.add_argument("--at", required=True, action="append", metavar="N=7e9,D=1.4e11",
                   help="input values by LAW INPUT name, repeated for several points")
    p.add_argument("--family", help="family to forecast (default: every fitted family)")
    p.add_argument("--kind", choices=("mean", "new_run"), default="new_run",
                   help="new_run (default): where one new run lands; mean: the law's curve")
    p.add_argument("--levels", default="0.5,0.9", help="central credible levels (default 0.5,0.9)")
    p.add_argument("--csv", metavar="FILE", help="also write the stacked forecasts to a CSV file")
    p.add_argument("--json", action="store_true", help="print weights, forecasts and gates as JSON")
    p.set_defaults(func=cmd_forecast)

    p = sub.add_parser("sweep", parents=[common], help="fit one law to every group of a table",
                       description="Fit one law to every group of rows (the --by columns, e.g. task and "
                                   "metric) on local worker processes or a Dask cluster.  Each group's "
                                   "result is written to --out as its fit ends; a rerun skips what is "
                                   "done.  Exit code 1 if any group failed (bad data, a crashed worker "
                                   "or the diagnostics gate; all are listed in groups.csv).")
    _add_fit_arguments(p)
    p.add_argument("--by", required=True, action="append", metavar="COL",
                   help="column(s) whose values define a group, repeated or comma-separated")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the per-group results and tables")
    p.add_argument("--at", action="append", default=[], metavar="N=7e9,D=1.4e11",
                   help="forecast every group at these input values, repeated for several points")
    p.add_argument("--kind", choices=("mean", "new_run"), default="mean")
    p.add_argument("--levels", default="0.5,0.9", help="central credible levels (default 0.5,0.9)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--extrapolation", dest="extrapolation", action="store_const", const=True,
                     default="auto",
                     help="require each group's calibration of forecasts beyond its data (by default "
                          "it is made where the group's data allow: a rolling backtest inside them, 3 "
                          "more fits per group, whose rate the forecasts then carry); a group whose "
                          "data do not allow it is recorded as error")
    how.add_argument("--law-only", dest="extrapolation", action="store_const", const=False,
                     help="skip that calibration: plain fits, forecasts carry the law-only band "
                          "(about 2.3x faster)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--serial", action="store_true", help="fit in this process, one group after another")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="a Dask scheduler address (tcp://host:8786), or 'local' for a new local "
                            "Dask cluster (needs bayescale[dask])")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="local worker processes (default: one per core)")
    p.add_argument("--chunk", type=_positive_int, default=8, help="groups per task (default 8)")
    p.add_argument("--retries", type=int, default=1, help="reruns of a task whose worker died (default 1)")
    p.add_argument("--redo-failed", action="store_true", help="refit groups recorded as error or crashed")
    p.add_argument("--json", action="store_true", help="print the groups table as JSON")
    p.set_defaults(func=cmd_sweep)
    return parser


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help and --version
            return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
        debug = args.debug
        if args.command is None:
            parser.print_help(sys.stderr)
            raise UsageError("choose a command: demo, laws, fit, predict, report, compare, backtest or "
                             "sweep.")
        return args.func(args)
    except UsageError as exc:
        return _fail(exc, debug, EXIT_USAGE)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader stopped early (`bayescale laws | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into exit codes
        from ..errors import BayescaleError

        if isinstance(exc, BayescaleError):
            return _fail(exc, debug, EXIT_USAGE)
        message = f"internal error: {type(exc).__name__}: {exc}"
        if not debug:
            message += " (rerun with --debug for the traceback, and please report it)"
        return _fail(message, debug, EXIT_INTERNAL)


def _fail(exc, debug: bool, code: int) -> int:
    if debug:
        traceback.print_exc()
    print(f"{PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
