"""Scaling laws as data: a declarative spec (TOML) parsed into a :class:`Law`.

A law names its inputs, its parameters (prior, default pooling across
families) and a formula over both.  Inside the formula every input is divided
by its reference value (the geometric mean of the data), so amplitudes are
O(1) and the sampled space is well conditioned; the ``[report]`` table gives
the paper's parameters (e.g. ``A = a * N_ref**alpha``) as formulas of the
sampled ones, with ``<input>_ref`` the reference values.

Examples
--------
>>> law = Law.named("power")
>>> law.inputs
('x',)
>>> sorted(law.parameters)
['E', 'a', 'alpha']
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import LawError
from .formula import Formula, parse
from .outcome import CATALOGUE_NOTE, Outcome
from .priors import Prior
from .schedule import FUNCTIONS as SCHEDULE_FUNCTIONS

if TYPE_CHECKING:
    import pandas as pd

POOLS = ("shared", "partial", "none")
SCALES = ("reference", "none")


def catalogue_dir() -> Path:
    """Folder of the shipped law specs (inside the wheel, or ``models/`` in a checkout)."""
    here = Path(__file__).resolve().parents[1]  # the package folder
    for candidate in (here / "models", here.parent / "models"):
        if candidate.is_dir():
            return candidate
    raise LawError(f"the law catalogue was not found beside {here}; reinstall bayescale.")


@dataclass(frozen=True)
class Parameter:
    """One law parameter: its prior, default pooling and the population scale prior."""

    name: str
    prior: Prior
    pool: str = "shared"
    tau: float = 0.5
    description: str = ""


@dataclass(frozen=True)
class Input:
    """One input of the formula: a data column, or derived per run from the ``[schedule]``.

    ``scale="reference"`` divides it by its reference (geometric mean of the data)
    inside the formula; ``"none"`` passes it as it is (for inputs whose value
    matters in itself, e.g. a loss fed to a link law, or that can be zero).
    """

    name: str
    description: str = ""
    scale: str = "reference"
    derived: Formula | None = None


class Law:
    """A scaling law: formula, inputs, parameters with priors and pooling, citation.

    Parameters
    ----------
    name : str
        Catalogue name.
    formula : str
        Expression of the outcome's mean over inputs (divided by their reference)
        and parameters; see :mod:`bayescale.laws.formula` for what is allowed.
    inputs : dict
        Input name -> description, e.g. ``{"N": "parameters"}``, or -> a table with
        ``description``, ``scale`` (``"reference"`` or ``"none"``, see :class:`Input`)
        and ``derived`` (an expression over the ``schedule`` columns, evaluated per
        run by :mod:`bayescale.laws.schedule`).
    parameters : dict
        Parameter name -> table with ``prior`` (see :mod:`bayescale.laws.priors`),
        ``pool`` (``shared``, ``partial`` or ``none``), optional ``tau`` (scale of
        the half-normal prior on the family spread) and ``description``.
    report : dict, optional
        Name -> formula of parameters in the paper's convention.
    outcome : {"positive", "unit", "real"}
        The outcome's range, which sets the noise model (:mod:`bayescale.laws.outcome`).
    schedule : dict, optional
        Per-row columns that derived inputs are computed from, name -> description;
        must include ``step``, which orders the rows of a run.
    scale : str, optional
        What extrapolation distance is measured in (:attr:`scale`): an expression
        over the inputs, e.g. ``"6 * N * D"`` (compute) or ``"N"``.  By default
        compute ``6 * N * D`` for a law with inputs ``N`` and ``D``, the input of
        a one-input law, and otherwise the product of the inputs divided by their
        reference (never an unscaled input: a proportion, a count, a rate).
    citation, description, title, notes : str
        Documentation; ``notes`` says how the notation differs from the paper.
    """

    def __init__(self, name, formula, inputs, parameters, report=None, citation="",
                 description="", title="", notes="", source_text=None, outcome="positive",
                 schedule=None, scale=None):
        self.name = _identifier(name, "law name")
        self.title, self.citation = title, citation
        self.description, self.notes = description, notes
        if not inputs or not isinstance(inputs, dict):
            raise LawError(f"law '{name}' declares no inputs; add an [inputs] table "
                           f"of name = \"description\".")
        if not isinstance(parameters, dict):
            raise LawError(f"law '{name}' needs [parameters.<name>] tables.")
        self.outcome = Outcome.named(outcome)
        self.schedule = {_identifier(k, "schedule column"): str(v) for k, v in (schedule or {}).items()}
        self.input_specs = {k: self._input(k, v) for k, v in inputs.items()}
        if any(i.derived for i in self.input_specs.values()) and "step" not in self.schedule:
            raise LawError(f"law '{name}' has derived inputs but its [schedule] table lacks 'step', "
                           f"the column that orders the rows of a run.")
        self.input_descriptions = {k: i.description for k, i in self.input_specs.items()}
        self.parameters = {
            k: _parameter(k, v, name) for k, v in (parameters or {}).items()
        }
        if not self.parameters:
            raise LawError(f"law '{name}' declares no parameters; add [parameters.<name>] tables.")
        clash = set(self.parameters) & set(self.input_descriptions)
        if clash:
            raise LawError(f"law '{name}': {sorted(clash)} is both an input and a parameter.")
        names = set(self.parameters) | set(self.input_descriptions)
        self.formula: Formula = parse(formula, names, what=f"formula of law '{name}'")
        unused = sorted(names - self.formula.names)
        if unused:
            raise LawError(f"law '{name}': {unused} declared but not used in the formula.")
        refs = {f"{k}_ref" for k in self.input_descriptions}
        self.report: dict[str, Formula] = {
            k: parse(v, names | refs, what=f"report formula '{k}' of law '{name}'")
            for k, v in (report or {}).items()
        }
        self.scale_declared = scale is not None
        self.scale: Formula | None = self._scale(scale)
        self.source_text = source_text

    def _scale(self, text) -> Formula | None:
        """The scale distance is measured in: declared, or the default (see the class docstring)."""
        what = f"scale of law '{self.name}'"
        if text is not None:
            if not isinstance(text, str):
                raise LawError(f"{what} must be an expression over the inputs such as \"6 * N * D\" "
                               f"or \"N\", not {text!r}.")
            scale = parse(text, set(self.input_specs), what=what)
            if not scale.names & set(self.input_specs):
                raise LawError(f"{what} {text!r} uses no input; name one or more of "
                               f"{list(self.input_specs)}, e.g. scale = \"{self.inputs[0]}\".")
            return scale
        scaled = [k for k, i in self.input_specs.items() if i.scale == "reference"]
        if {"N", "D"} <= set(scaled):
            return parse("6 * N * D", set(scaled), what=what)
        if len(self.input_specs) == 1:
            return parse(self.inputs[0], set(self.input_specs), what=what)
        return parse(" * ".join(scaled), set(scaled), what=what) if scaled else None

    @property
    def scale_input(self) -> str | None:
        """The input the scale is, when it is one input alone (``"N"``); else None."""
        text = self.scale.text if self.scale is not None else ""
        return text if text in self.input_specs else None

    def scale_of(self, inputs: dict):
        """The law's scale (e.g. compute 6·N·D) at raw input values ``inputs`` (name -> array)."""
        if self.scale is None:
            raise LawError(f"law '{self.name}' has no scale to measure extrapolation in (all its inputs "
                           f"are unscaled); declare one, e.g. scale = \"{self.inputs[0]}\".")
        env = {k: np.asarray(v, dtype=float) for k, v in inputs.items() if k in self.scale.names}
        return np.asarray(self.scale(env, np), dtype=float)

    def _input(self, key, spec) -> Input:
        _identifier(key, "input name")
        what = f"input '{key}' of law '{self.name}'"
        if isinstance(spec, str):
            return Input(key, spec)
        if not isinstance(spec, dict):
            raise LawError(f"{what} must be a description or a table with description/scale/derived.")
        extra = sorted(set(spec) - {"description", "scale", "derived"})
        if extra:
            raise LawError(f"{what}: unknown key(s) {extra}; allowed are description, scale, derived.")
        scale = spec.get("scale", "reference")
        if scale not in SCALES:
            raise LawError(f"{what}: scale = {scale!r}; choose one of {SCALES}.")
        derived = spec.get("derived")
        if derived is not None:
            derived = parse(derived, set(self.schedule), what=f"derived expression of {what}",
                            extra=SCHEDULE_FUNCTIONS)
        return Input(key, str(spec.get("description", "")), scale, derived)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The formula's inputs (data columns and derived ones)."""
        return tuple(self.input_specs)

    @property
    def columns(self) -> tuple[str, ...]:
        """What a call maps to data columns: the inputs that are not derived, then the schedule."""
        plain = tuple(k for k, i in self.input_specs.items() if i.derived is None)
        return plain + tuple(k for k in self.schedule if k not in plain)

    def __repr__(self) -> str:
        return f"Law({self.name!r}: y = {self.formula.text})"

    # ---- construction -------------------------------------------------------------
    @classmethod
    def from_toml(cls, text: str, origin: str = "law spec") -> Law:
        """Build a law from TOML text."""
        try:
            spec = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise LawError(f"{origin} is not valid TOML: {exc}.") from None
        missing = [k for k in ("name", "formula", "inputs", "parameters") if k not in spec]
        if missing:
            raise LawError(f"{origin} lacks required key(s) {missing}.")
        known = {"name", "formula", "inputs", "parameters", "report", "citation",
                 "description", "title", "notes", "outcome", "schedule", "scale"}
        extra = sorted(set(spec) - known)
        if extra:
            raise LawError(f"{origin}: unknown key(s) {extra}; allowed are {sorted(known)}.")
        return cls(**spec, source_text=text)

    @classmethod
    def from_file(cls, path) -> Law:
        """Read a law from a TOML file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise LawError(f"law file {path} does not exist.") from None
        except UnicodeDecodeError:
            raise LawError(f"law file {path} is not UTF-8 text.") from None
        except OSError as exc:
            raise LawError(f"law file {path} cannot be read: {exc.strerror}.") from None
        return cls.from_toml(text, origin=f"law file {path}")

    @classmethod
    def named(cls, name: str) -> Law:
        """The catalogue law called ``name``."""
        path = catalogue_dir() / f"{name}.toml"
        if not path.is_file():
            names = law_names()
            close = difflib.get_close_matches(str(name), names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise LawError(f"unknown law '{name}'.{hint} Known laws: {', '.join(names)}.")
        return cls.from_file(path)

    def with_pooling(self, pool: dict | None) -> Law:
        """A copy whose parameters' pooling is overridden by ``pool`` (name -> mode)."""
        if not pool:
            return self
        params = dict(self.parameters)
        for key, mode in pool.items():
            if key not in params:
                raise LawError(
                    f"pool names unknown parameter '{key}' of law '{self.name}'; "
                    f"parameters are {sorted(params)}."
                )
            if mode not in POOLS:
                raise LawError(f"pool['{key}'] = {mode!r}; choose one of {POOLS}.")
            p = params[key]
            params[key] = Parameter(p.name, p.prior, mode, p.tau, p.description)
        new = object.__new__(Law)
        new.__dict__.update(self.__dict__, parameters=params, source_text=None)
        return new

    def with_scale(self, scale: str) -> Law:
        """A copy whose scale (what extrapolation is measured in) is ``scale``, an expression over
        the inputs such as ``"N"`` or ``"6 * N * D"``."""
        new = object.__new__(Law)
        new.__dict__.update(self.__dict__, source_text=None)
        new.scale, new.scale_declared = new._scale(scale), True
        return new

    def to_toml(self) -> str:
        """TOML text of this law (with the current pooling), readable by :meth:`from_toml`."""
        lines = [f"name = {_q(self.name)}"]
        for key in ("title", "formula", "citation", "description", "notes"):
            value = self.formula.text if key == "formula" else getattr(self, key)
            if value:
                lines.append(f"{key} = {_q(value)}")
        if self.outcome.kind != "positive":
            lines.append(f"outcome = {_q(self.outcome.kind)}")
        if self.scale_declared:
            lines.append(f"scale = {_q(self.scale.text)}")
        lines += ["", "[inputs]"]
        for i in self.input_specs.values():
            if i.scale == "reference" and i.derived is None:
                lines.append(f"{i.name} = {_q(i.description)}")
                continue
            parts = [f"description = {_q(i.description)}", f"scale = {_q(i.scale)}"]
            if i.derived is not None:
                parts.append(f"derived = {_q(i.derived.text)}")
            lines.append(f"{i.name} = {{ {', '.join(parts)} }}")
        if self.schedule:
            lines += ["", "[schedule]"] + [f"{k} = {_q(v)}" for k, v in self.schedule.items()]
        for p in self.parameters.values():
            lines += ["", f"[parameters.{p.name}]", f"prior = {_q(str(p.prior))}",
                      f"pool = {_q(p.pool)}", f"tau = {p.tau!r}"]
            if p.description:
                lines.append(f"description = {_q(p.description)}")
        if self.report:
            lines += ["", "[report]"] + [f"{k} = {_q(f.text)}" for k, f in self.report.items()]
        return "\n".join(lines) + "\n"


def law_names() -> list[str]:
    """Names of the catalogue laws."""
    return sorted(p.stem for p in catalogue_dir().glob("*.toml"))


def catalogue_rows() -> list[dict]:
    """The rows of :func:`laws`, as dicts (for callers that need no DataFrame, e.g. the command line)."""
    rows = []
    for name in law_names():
        law = Law.named(name)
        rows.append({
            "name": law.name, "title": law.title, "formula": law.formula.text,
            "inputs": ", ".join(law.inputs), "parameters": ", ".join(law.parameters),
            "outcome": law.outcome.kind, "citation": law.citation,
        })
    return rows


def laws() -> pd.DataFrame:
    """The catalogue: one row per law with its formula, inputs, parameters and citation.

    Examples
    --------
    >>> "chinchilla" in laws()["name"].tolist()
    True
    """
    import pandas as pd  # here: listing the laws from the command line needs no pandas

    return pd.DataFrame(catalogue_rows())


def catalogue_markdown() -> str:
    """The catalogue as the Markdown page ``models/README.md`` (generated, not hand-written)."""
    lines = [
        "# The law catalogue",
        "",
        "One TOML spec per law: formula, inputs, parameters (prior, pooling across families), citation,",
        "and notes on how the notation differs from the paper. Inputs are divided by their reference",
        "(the geometric mean of the data) inside the formula unless marked *unscaled*; derived inputs",
        "are computed per run from the schedule columns. Simulation-based calibration results are in",
        "[VALIDATION.md](VALIDATION.md).",
        "",
        "## Scale",
        "",
        "Extrapolation distance (the `distance` column of forecasts, the decades that calibration",
        "widens bands by, the rolling backtest's origins) is measured in decades of the law's *scale*,",
        "the `scale` key of its spec: an expression over the inputs, e.g. `scale = \"6 * N * D\"`",
        "(compute) or `scale = \"N\"`. Without the key it is compute `6 * N * D` for a law with inputs",
        "N and D, the input of a one-input law, and otherwise the product of the inputs that are",
        "divided by their reference. Unscaled inputs (proportions, counts, rates, which may be zero)",
        "never enter it unless a law names them. Laws whose inputs fit none of these defaults declare",
        "their scale (column *scale* below); `law.with_scale(\"N\")` measures another for one fit.",
        "",
        "This page is generated: `bayescale laws --markdown > models/README.md`.",
        "",
        CATALOGUE_NOTE,
        "",
        "| law | formula | inputs | scale | outcome | source |",
        "|---|---|---|---|---|---|",
    ]
    for name in law_names():
        law = Law.named(name)
        inputs = []
        for i in law.input_specs.values():
            note = "derived: " + i.derived.text if i.derived is not None else (
                "unscaled" if i.scale == "none" else "")
            inputs.append(f"{i.name} ({note})" if note else i.name)
        cite = law.citation.split(",")[0] if law.citation else ""
        scale = f"`{law.scale.text}`" if law.scale is not None else "-"
        cells = [f"**{law.name}**<br>{law.title}", f"`{law.formula.text}`", "; ".join(inputs), scale,
                 law.outcome.kind, cite]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def resolve(law) -> Law:
    """Accept a :class:`Law`, a catalogue name, or a path to a ``.toml`` file."""
    if isinstance(law, Law):
        return law
    if isinstance(law, str | Path) and str(law).endswith(".toml"):
        return Law.from_file(law)
    if isinstance(law, str):
        return Law.named(law)
    raise LawError(f"law must be a Law, a catalogue name or a .toml path, not {type(law).__name__}.")


def _parameter(name: str, spec, law: str) -> Parameter:
    what = f"parameter '{name}' of law '{law}'"
    _identifier(name, "parameter name")
    if isinstance(spec, str):
        spec = {"prior": spec}
    if not isinstance(spec, dict) or "prior" not in spec:
        raise LawError(f"{what} needs a table with at least a 'prior', e.g. prior = 'normal(0, 1)'.")
    extra = sorted(set(spec) - {"prior", "pool", "tau", "description"})
    if extra:
        raise LawError(f"{what}: unknown key(s) {extra}.")
    pool = spec.get("pool", "shared")
    if pool not in POOLS:
        raise LawError(f"{what}: pool = {pool!r}; choose one of {POOLS}.")
    tau = spec.get("tau", 0.5)
    if isinstance(tau, bool) or not isinstance(tau, int | float) or not 0 < tau < float("inf"):
        raise LawError(f"{what}: tau must be a positive number (and finite), got {tau!r}.")
    prior = Prior.parse(spec["prior"], what=f"prior of {what}")
    return Parameter(name, prior, pool, float(tau), str(spec.get("description", "")))


def _identifier(name, what: str) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise LawError(f"{what} {name!r} must be a plain identifier (letters, digits, _).")
    return name


def _q(text: str) -> str:
    """Quote a string for TOML (basic string with escapes)."""
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
