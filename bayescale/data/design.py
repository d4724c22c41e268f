"""From a user's DataFrame to a validated :class:`Design` (arrays a model can use).

Everything that can be wrong with the data is found here, before any JAX code
runs, and raised as :class:`~bayescale.errors.DataError` naming the column, the
rows and the fix.  Properties of the design that limit what can be learned
(few distinct sizes, N and D collinear, tiny families) become
:class:`~bayescale.errors.FitWarning` records.
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import DataError, DesignWarning, FitWarning
from ..laws.outcome import Outcome
from ..laws.schedule import derive
from ..laws.spec import Law

ALL = "all"  # family name used when no group column is given
_SHOW = 5  # offending rows listed in a message
MIXED_UNITS_DECADES = 6.0  # an input spanning more decades than this within a family ...
MIXED_UNITS_GAP = 3.0  # ... with an empty gap this wide looks like mixed units (7 and 7e9)
SCHEDULE_MIN_ROWS = 3  # fewer rows per run than this leave a derived input mostly interpolated
DUPLICATES = ("keep", "drop")


@dataclass
class Design:
    """Validated data in the form the model needs.

    Attributes
    ----------
    y : ndarray
        Outcome, inside the law's outcome range (:mod:`bayescale.laws.outcome`).
    inputs : dict of str -> ndarray
        Law input name -> raw values (not yet divided by the reference), derived
        inputs included.
    refs : dict of str -> float
        Reference value of each input: the geometric mean of the data (1 for an
        input the law does not scale).
    families : list of str
        Family names; ``family_idx`` indexes them per row.
    runs : list of str
        Run names (empty without a run column); ``run_idx`` per row, -1 if none.
    se_log : ndarray
        Known measurement standard error on the link scale, log or logit (0 where
        unknown).
    columns : dict
        The mapping from the call: ``y``, ``x`` (input -> column), ``group``, ``run``, ``se``,
        ``weight``.
    frame : DataFrame
        The rows used, with the original index and only the mapped columns.
    outcome : Outcome
        The law's outcome: its range and link scale.
    resolution : ndarray or None
        Per family, the resolution ``r`` of a bounded outcome with exact 0 or 1
        (censored below ``r`` and above ``1 - r``; :mod:`bayescale.laws.outcome`);
        None when no value is censored.
    weight : ndarray or None
        Per row, the weight of its likelihood term, scaled to mean 1 over the rows (so the
        data count as many observations as there are rows); None: every row weighs 1.
    """

    y: np.ndarray
    inputs: dict
    refs: dict
    families: list
    family_idx: np.ndarray
    runs: list
    run_idx: np.ndarray
    se_log: np.ndarray
    columns: dict
    frame: pd.DataFrame
    warnings: list = field(default_factory=list)
    outcome: Outcome = field(default_factory=Outcome)
    resolution: np.ndarray | None = None
    weight: np.ndarray | None = None

    @property
    def n_families(self) -> int:
        return len(self.families)

    @property
    def censored(self) -> bool:
        """Whether exact 0 or 1 of a bounded outcome are scored as censored values."""
        return self.resolution is not None

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the censoring bounds ``r`` and ``1 - r`` on the outcome scale."""
        r = self.resolution[self.family_idx]
        return r, 1.0 - r

    def resolved(self) -> np.ndarray:
        """The outcome with censored values at their bound (so its link is finite)."""
        if not self.censored:
            return self.y
        lo, hi = self.bounds()
        return np.clip(self.y, lo, hi)

    def y_link(self) -> np.ndarray:
        """The outcome on its link scale, censored values at their bound."""
        return self.outcome.forward(self.resolved())

    def link_of(self, y, families=None) -> np.ndarray:
        """Link of outcomes ``y`` from outside the design (held-out rows of ``families``), an
        exact 0 or 1 of a bounded outcome taken at the family's censoring bound.

        A design without censored values bounds them at half the smallest distance of its
        own y from 0 or 1; a family it does not know, at its smallest resolution.
        """
        y = np.asarray(y, dtype=float)
        if self.outcome.kind != "unit":
            return self.outcome.forward(y)
        if not self.censored:
            r = np.full(y.shape, 0.5 * np.minimum(self.y, 1.0 - self.y).min())
        elif families is None:
            r = np.full(y.shape, self.resolution.min())
        else:
            known = dict(zip(self.families, self.resolution))
            r = np.array([known.get(str(f), self.resolution.min()) for f in families], dtype=float)
        return self.outcome.forward(np.where(y <= 0, r, np.where(y >= 1, 1.0 - r, y)))

    def noise_unit(self) -> float:
        """Unit of the noise priors: 1 on the log and logit scales; for a real outcome (identity
        link, natural units) the standard deviation of y, so the priors follow the data's scale."""
        if self.outcome.kind != "real":
            return 1.0
        sd = float(np.std(self.y))
        return sd if sd > 0 else max(float(np.max(np.abs(self.y))), 1.0)

    def floor(self) -> np.ndarray:
        """Smallest outcome per family (the upper bound of a ``floor`` prior); a censored 0
        counts as its resolution."""
        y = self.resolved()
        return np.array([y[self.family_idx == k].min() for k in range(self.n_families)])

    def scaled(self, inputs: dict) -> dict:
        """Inputs divided by the references, as the law's formula expects them."""
        return {k: np.asarray(v, dtype=float) / self.refs[k] for k, v in inputs.items()}


def input_mapping(law: Law, x) -> dict:
    """Normalise ``x`` to a dict law input (or schedule column) -> data column."""
    names = law.columns
    if isinstance(x, str):
        if len(names) != 1:
            raise DataError(
                f"law '{law.name}' has inputs {list(names)}; pass x as a dict such as "
                f"{ {k: '<column>' for k in names} }."
            )
        return {names[0]: x}
    if x is None:
        x = {}
    if not isinstance(x, dict):
        raise DataError(f"x must be a dict of law input -> column, not {type(x).__name__}.")
    unknown = sorted(set(x) - set(names))
    missing = [k for k in names if k not in x]
    if unknown:
        raise DataError(f"x names {unknown}, which are not inputs of law '{law.name}' "
                        f"(its inputs are {list(names)}).")
    if missing:
        raise DataError(f"x does not map law input(s) {missing} of law '{law.name}' to a column; "
                        f"pass e.g. x={{'{missing[0]}': '<column>'}}.")
    return dict(x)


def prepare(df, law: Law, y: str, x, group=None, run=None, se=None,
            min_rows_per_family: int = 2, check_units: bool = True, duplicates: str = "keep",
            weight=None) -> Design:
    """Validate ``df`` for ``law`` and return a :class:`Design`.

    Rows equal in every column the fit uses (outcome, inputs, group, run, se) are
    replicates of one configuration (a base model and its fine-tune with the same
    score, two data mixes with the same loss): ``duplicates="keep"`` (the default)
    keeps each as an observation and says so once (a ``replicates``
    :class:`~bayescale.errors.DesignWarning`); ``"drop"`` keeps the first of each.

    Raises
    ------
    DataError
        Missing or misspelled columns, non-numeric or non-finite values, zero or
        negative values where a log is taken, accuracies outside [0, 1], a family with too few
        rows, an input that looks like mixed units within a family (unless ``check_units=False``).
    """
    if duplicates not in DUPLICATES:
        raise DataError(f"duplicates={duplicates!r}; choose 'keep' (replicates count as observations) "
                        f"or 'drop' (keep the first of rows equal in every column the fit uses).")
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, not {type(df).__name__}.")
    if len(df) == 0:
        raise DataError("the data has no rows; pass at least a few runs of the ladder.")
    xmap = input_mapping(law, x)
    columns = {"y": y, "x": xmap, "group": group, "run": run, "se": se, "weight": weight}
    used = [y, *xmap.values(), *(c for c in (group, run, se, weight) if c is not None)]
    for col in used:
        require_column(df, col)
    frame = df[list(dict.fromkeys(used))].copy()
    repeats = frame.duplicated(keep="first").to_numpy()
    if duplicates == "drop":
        frame, repeats = frame.loc[~repeats], np.zeros(int((~repeats).sum()), dtype=bool)

    yv = outcome_column(frame, y, law)
    families, fidx = _codes(frame, group, default=ALL)
    resolution = censoring(frame, y, yv, fidx, law)
    se_log = np.zeros_like(yv)
    if se is not None:
        sev = _numeric(frame, se)
        _no_bad(frame, se, ~(sev >= 0), "a negative value", "standard errors must be >= 0")
        # at a censored value, the delta method is taken at its bound
        at = yv if resolution is None else np.clip(yv, resolution[fidx], 1.0 - resolution[fidx])
        se_log = law.outcome.se(sev, at)

    weights = None
    if weight is not None:
        wv = _numeric(frame, weight)
        _no_bad(frame, weight, ~(wv > 0), "zero or negative values",
                "likelihood weights must be > 0; drop a row to leave it out of the fit")
        weights = wv / wv.mean()
    runs, ridx = _codes(frame, run, default=None)
    _check_families(frame, group, fidx, families, min_rows_per_family)
    inputs = law_inputs(law, frame, xmap, group, run)
    if check_units:
        for k, col in xmap.items():
            if not _scaled(law, k):
                continue
            for f, name in enumerate(families):
                units_look_mixed(inputs[k][fidx == f], col, name if group is not None else None)

    refs = {k: float(np.exp(np.mean(np.log(v)))) if _scaled(law, k) else 1.0
            for k, v in inputs.items()}
    design = Design(yv, inputs, refs, families, fidx, runs, ridx, se_log, columns, frame,
                    outcome=law.outcome, resolution=resolution, weight=weights)
    design.warnings = design_warnings(design, law) + replicates(frame, repeats)
    return design


def outcome_column(frame: pd.DataFrame, col, law: Law) -> np.ndarray:
    """The outcome column, checked against the law's outcome range."""
    values = _numeric(frame, col)
    kind = law.outcome.kind
    if kind == "positive":
        bad = values <= 0
        if (values < 0).any():
            fix = (f"law '{law.name}' models a positive outcome on the log scale (a loss); an outcome "
                   f"that can be negative (a log-metric, a reward, a score difference) needs a law "
                   f"with outcome = \"real\" (e.g. law='offset_power', or outcome = \"real\" in your "
                   f"law file), otherwise drop those rows")
        else:
            fix = (f"law '{law.name}' takes the log of the outcome; a loss of exactly 0 is usually a "
                   f"logging error, so drop those rows, or fit a law with outcome = \"real\" "
                   f"(e.g. law='offset_power') if 0 is a real value")
        _no_bad(frame, col, bad, "zero or negative values", fix)
    elif kind == "unit":
        _no_bad(frame, col, ~law.outcome.observable(values), "values outside [0, 1]",
                f"law '{law.name}' models a bounded outcome on the logit scale: give accuracies as "
                f"fractions (0.42, not 42%); for an outcome that is not bounded use a law with "
                f"outcome = \"real\"")
    else:
        floors = [p.name for p in law.parameters.values() if p.prior.kind == "floor"]
        if floors:
            _no_bad(frame, col, values <= 0, "zero or negative values",
                    f"parameter(s) {floors} of law '{law.name}' have a floor() prior, which lies "
                    f"between 0 and the smallest outcome and so needs a positive outcome; give "
                    f"them a normal() prior for a real outcome")
    return values


def censoring(frame: pd.DataFrame, col, values: np.ndarray, fidx: np.ndarray, law: Law):
    """Per family resolution ``r`` of a bounded outcome with exact 0 or 1, else None.

    ``r`` is half the smallest distance from 0 or 1 among the family's values strictly
    inside (0, 1), over all rows for a family with none (see :mod:`bayescale.laws.outcome`).
    """
    if law.outcome.kind != "unit":
        return None
    edge = (values == 0) | (values == 1)
    if not edge.any():
        return None
    inside = ~edge
    if not inside.any():
        raise DataError(f"column '{col}' holds only exact 0 and 1 (e.g. {_rows(frame, edge, col)}); "
                        f"a bounded outcome needs some values strictly between 0 and 1 to tell its "
                        f"resolution (how close to 0 or 1 a measurement can get). Give accuracies "
                        f"averaged over items, not per-item scores.")
    distance = np.minimum(values, 1.0 - values)
    overall = 0.5 * distance[inside].min()
    n = int(fidx.max()) + 1
    out = np.full(n, overall)
    for k in range(n):
        rows = inside & (fidx == k)
        if rows.any():
            out[k] = 0.5 * distance[rows].min()
    return out


def _scaled(law: Law, name: str) -> bool:
    spec = law.input_specs.get(name)
    return spec is not None and spec.scale == "reference"


def law_inputs(law: Law, frame: pd.DataFrame, xmap: dict, group=None, run=None) -> dict:
    """The formula's inputs for the rows of ``frame``: mapped columns, then derived inputs.

    Derived inputs are computed per run (the ``run`` column within the ``group``
    column when present; otherwise per family, or the whole frame as one run).
    """
    raw = {}
    for k, col in xmap.items():
        raw[k] = (positive_column(frame, col, f"input {k}") if _scaled(law, k)
                  else _numeric(frame, col))
    out = {k: raw[k] for k in law.inputs if k in raw}
    formulas = {k: i.derived for k, i in law.input_specs.items() if i.derived is not None}
    if not formulas:
        return out
    keys = [c for c in (group, run) if c is not None and c in frame.columns]
    codes = (pd.MultiIndex.from_frame(frame[keys].astype(str)).factorize()[0] if keys
             else np.zeros(len(frame), dtype=int))
    step = xmap["step"]
    dup = pd.DataFrame({"run": codes, "step": raw["step"]}).duplicated(keep=False).to_numpy()
    _no_bad(frame, step, dup, "repeated steps within a run",
            f"derived inputs of law '{law.name}' need one row per step of each run; "
            f"pass run='<run column>' (and group=) so the runs are told apart")
    rows_per_run = np.bincount(codes)
    if rows_per_run.min() < SCHEDULE_MIN_ROWS:
        warnings.warn(DesignWarning(
            f"a run has only {rows_per_run.min()} row(s) to derive {sorted(formulas)} from; the "
            f"schedule between rows is interpolated (and held at its first value back to step 0). "
            f"Pass every logged step of the run's schedule (e.g. the learning rate every few hundred "
            f"steps) and read the rows you need from the result."), stacklevel=3)
    derived = derive(formulas, {k: raw[k] for k in law.schedule}, codes)
    for k, values in derived.items():
        if _scaled(law, k):
            _no_bad(frame, step, ~(values > 0), f"rows where derived input {k} is not > 0",
                    f"{k} is divided by its reference and raised to powers; drop rows at step 0")
        out[k] = values
    return out


def scale_values(law: Law, frame: pd.DataFrame, xmap: dict, group=None, run=None) -> np.ndarray:
    """The law's scale (:attr:`~bayescale.Law.scale`, e.g. compute ``6 * N * D``) of each row.

    Extrapolation is measured in decades of it, so it must be > 0 on every row;
    unscaled inputs (a proportion that may be 0) enter it only if the law names them.
    """
    values = law.scale_of(law_inputs(law, frame, xmap, group, run))
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        shown = ", ".join(f"row {i!r}" for i in frame.index[np.flatnonzero(bad)[:_SHOW]])
        raise DataError(f"the scale of law '{law.name}' ({law.scale.text}), which extrapolation "
                        f"distance is measured in, is not > 0 at {shown}; fix or drop those rows, or "
                        f"declare a scale of inputs that are always > 0 (e.g. scale = \"{law.inputs[0]}\") "
                        f"in the law spec.")
    return values


def design_warnings(design: Design, law: Law) -> list[FitWarning]:
    """Warnings about what this design can and cannot identify."""
    out = []
    for k, v in design.inputs.items():
        n = len(np.unique(v))
        if n < 3:
            out.append(FitWarning("few_sizes", (
                f"input {k} (column '{design.columns['x'].get(k, 'derived')}') has only {n} "
                f"distinct value(s); "
                f"its exponent is then set by the prior more than the data. Add runs at a third "
                f"size or fix the exponent with a narrower prior."), DesignWarning))
    names = [k for k in design.inputs if _scaled(law, k)]
    logs = [np.log(design.inputs[k]) for k in names]
    for i in range(len(logs)):
        for j in range(i + 1, len(logs)):
            ratio = logs[j] - logs[i]
            if len(np.unique(np.round(ratio, 3))) == 1:
                a, b = names[i], names[j]
                out.append(FitWarning("collinear", (
                    f"{b}/{a} is the same in every row (a fixed ratio such as tokens per "
                    f"parameter), so the effects of {a} and {b} cannot be separated; forecasts at "
                    f"another ratio rest on the priors. Add runs at other ratios."), DesignWarning))
    varying = sum(p.pool != "shared" for p in law.parameters.values())
    if design.n_families > 1 and varying:
        counts = np.bincount(design.family_idx, minlength=design.n_families)
        small = [f for f, c in zip(design.families, counts) if c <= varying]
        if small:
            out.append(FitWarning("small_family", (
                f"famil{'y' if len(small) == 1 else 'ies'} {small} ha{'s' if len(small) == 1 else 've'} "
                f"no more rows than the {varying} family-level parameter(s); their values lean on "
                f"the population (partial pooling) or on the prior."), DesignWarning))
    return out + identifiability(design, law)


def _constant_within(codes: np.ndarray, values: np.ndarray) -> bool:
    """Whether ``values`` is one value within each code (a function of it), with several values."""
    pairs = pd.DataFrame({"code": codes, "value": values}).drop_duplicates()
    return pairs["value"].nunique() > 1 and not pairs["code"].duplicated().any()


def identifiability(design: Design, law: Law) -> list[FitWarning]:
    """Run and family effects the data cannot tell apart from noise or from an input.

    Checked before sampling, since such a fit does not fail fast: on checkpoint
    data with one run per model size, ``run=`` gave R-hat 1.9-2.0 after 12-15
    minutes.  Warns (a :class:`~bayescale.errors.DesignWarning`) with the reason
    and what to do instead.
    """
    out, cols = [], design.columns
    mapped = [k for k in cols["x"] if k in design.inputs and _scaled(law, k)]
    if design.runs and len(design.runs) > 1:
        run, ridx = cols["run"], design.run_idx
        if np.bincount(ridx, minlength=len(design.runs)).max() == 1:
            out.append(FitWarning("run_one_row", (
                f"every run (column '{run}') has a single row, so a run's offset cannot be told from "
                f"observation noise: sigma_run and sigma trade off. Drop run= (the rows still count as "
                f"observations), or give each run several rows (checkpoints, evaluations)."),
                DesignWarning))
        else:
            for k in mapped:
                # each run at one value of k, and no two runs of a family at the same value
                sole = not pd.DataFrame({"f": design.family_idx, "v": design.inputs[k], "r": ridx}) \
                    .drop_duplicates().duplicated(["f", "v"]).any()
                if sole and _constant_within(ridx, design.inputs[k]):
                    out.append(FitWarning("run_confounded", (
                        f"each run (column '{run}') is observed at a single {k} (column "
                        f"'{cols['x'][k]}') and no other run shares it, so a run's offset cannot be told "
                        f"from the effect of {k}: the run effects and the law's {k} terms trade off "
                        f"(strongly correlated, R-hat near 2 on checkpoint data). Drop run= (every row "
                        f"still counts), or add runs (seeds) at the same {k}."), DesignWarning))
                    break
    varying = [n for n, p in law.parameters.items() if p.pool != "shared"]
    group = cols["group"]
    if group is not None and design.n_families > 1 and varying:
        if np.bincount(design.family_idx, minlength=design.n_families).max() == 1:
            out.append(FitWarning("group_one_row", (
                f"every family (column '{group}') has a single row, so its family-level parameters "
                f"({', '.join(varying)}) cannot be told from observation noise. Use a different grouping "
                f"(or none)."), DesignWarning))
        else:
            for k in mapped:
                if _constant_within(design.family_idx, design.inputs[k]):
                    out.append(FitWarning("group_confounded", (
                        f"column '{group}' fixes input {k} (column '{cols['x'][k]}'): each family is "
                        f"observed at a single {k}, so the per-family parameters ({', '.join(varying)}) "
                        f"absorb the effect of {k} and its exponent rests on the prior. Use a different "
                        f"grouping (or none), or pool those parameters as shared."), DesignWarning))
                    break
    return out


def units_look_mixed(values: np.ndarray, column, family=None) -> None:
    """Refuse values that look like mixed units (sizes partly in billions, ``7``, partly raw, ``7e9``).

    They span more than :data:`MIXED_UNITS_DECADES` decades with an empty gap of at
    least :data:`MIXED_UNITS_GAP` decades between two clusters; a real ladder that
    is merely wide has no such gap.
    """
    logs = np.log10(np.unique(values))
    if len(logs) < 2:
        return
    span, gaps = logs[-1] - logs[0], np.diff(logs)
    if span > MIXED_UNITS_DECADES and gaps.max() >= MIXED_UNITS_GAP:
        i = int(np.argmax(gaps))
        where = f" in family {family!r}" if family is not None else ""
        raise DataError(
            f"column '{column}'{where} looks like mixed units: its values span {span:.1f} decades "
            f"({10 ** logs[0]:.4g} to {10 ** logs[-1]:.4g}) with none between {10 ** logs[i]:.4g} and "
            f"{10 ** logs[i + 1]:.4g} (e.g. some sizes in billions, 7, and some raw, 7e9). Write every "
            f"value in one unit, or pass check_units=False (command line: --no-unit-check) if the "
            f"range is real.")


# ---- helpers -----------------------------------------------------------------------
def require_column(df: pd.DataFrame, col) -> None:
    if col in df.columns:
        return
    names = [str(c) for c in df.columns]
    close = difflib.get_close_matches(str(col), names, n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise DataError(f"column '{col}' is not in the data.{hint} Columns are: {', '.join(names)}.")


def _rows(frame: pd.DataFrame, mask: np.ndarray, col) -> str:
    positions = np.flatnonzero(mask)
    values = frame[col].iloc[positions[:_SHOW]]
    shown = ", ".join(f"row {i} ({_show(v)})" for i, v in zip(frame.index[positions[:_SHOW]], values))
    more = f" and {len(positions) - _SHOW} more" if len(positions) > _SHOW else ""
    return shown + more


def _show(value) -> str:
    value = value.item() if hasattr(value, "item") else value
    return repr(value)


def _numeric(frame: pd.DataFrame, col) -> np.ndarray:
    raw = frame[col]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(values) & raw.notna().to_numpy()
    if bad.any():
        raise DataError(f"column '{col}' has non-numeric values: {_rows(frame, bad, col)}. "
                        f"Convert them to numbers (e.g. 7e9, not '7B') or drop those rows.")
    _no_bad(frame, col, ~np.isfinite(values), "missing (NaN) or infinite values",
            "drop those rows (e.g. crashed runs) or fill them in")
    return values


def positive_column(frame: pd.DataFrame, col, role: str) -> np.ndarray:
    values = _numeric(frame, col)
    _no_bad(frame, col, values <= 0, "zero or negative values",
            f"{role} is divided by its reference and raised to powers, so it must be > 0; drop "
            f"those rows, or declare it with scale = \"none\" in a law file if such values are real")
    return values


def _no_bad(frame, col, mask, what: str, fix: str) -> None:
    if mask.any():
        raise DataError(f"column '{col}' has {what}: {_rows(frame, mask, col)}; {fix}.")


def _codes(frame: pd.DataFrame, col, default):
    if col is None:
        n = len(frame)
        return ([default] if default else []), np.full(n, 0 if default else -1, dtype=int)
    values = frame[col]
    _no_bad(frame, col, values.isna().to_numpy(), "missing labels",
            "give every row a label or drop those rows")
    codes, names = pd.factorize(values.astype(str), sort=True)
    return list(names), codes.astype(int)


def _check_families(frame, group, fidx, families, minimum: int) -> None:
    counts = np.bincount(fidx, minlength=len(families))
    small = [(f, int(c)) for f, c in zip(families, counts) if c < minimum]
    if small:
        where = group or "the data"
        raise DataError(
            f"famil{'y' if len(small) == 1 else 'ies'} "
            + ", ".join(f"'{f}' ({c} row{'s' if c != 1 else ''})" for f, c in small)
            + f" in column '{where}' ha{'s' if len(small) == 1 else 've'} fewer than {minimum} rows. "
            f"Drop or merge them, or pass min_rows_per_family=1 to forecast such a family "
            f"mostly from the others (partial pooling)."
        )


def replicates(frame: pd.DataFrame, repeats: np.ndarray) -> list[FitWarning]:
    """One note when rows repeat another row in every column the fit uses (kept as replicates)."""
    if not repeats.any():
        return []
    same = frame.duplicated(keep=False).to_numpy()
    labels = list(frame.index[same][:_SHOW])
    return [FitWarning("replicates", (
        f"{int(repeats.sum())} row(s) repeat another row in every column the fit uses (e.g. rows "
        f"{labels}); each is kept as a replicate of one configuration and counts as an observation. "
        f"If they are copies of one measurement, pass duplicates='drop' (command line: "
        f"--drop-duplicates)."), DesignWarning)]
