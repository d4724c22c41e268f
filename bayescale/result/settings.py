"""How a fit was made: one typed, immutable record, the same for every way a fit is made.

A single fit, a stacked fit (``bs.fit_many``), a sweep's group and a loaded fit
all carry a :class:`Settings`; it is saved with the fit (``fit.json``) and read
back, including from the flat dictionaries that format 1 artifacts held.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import pandas as pd

from ..inference.config import SamplerConfig

NESTED_COLUMNS = ("origin", "fit", "rows", "verdict", "reason", "used", "seconds")


def nested_table(rows) -> pd.DataFrame:
    """Rows of nested fits (dicts) as a table with the columns :data:`NESTED_COLUMNS`, in that order
    (any other keys after them; a column a row lacks, e.g. from an older saved fit, left empty)."""
    table = pd.DataFrame([dict(row) for row in rows])
    extra = [c for c in table.columns if c not in NESTED_COLUMNS]
    return table.reindex(columns=[*NESTED_COLUMNS, *extra])


@dataclass(frozen=True)
class ModelOptions:
    """What the data and the model are: the column mapping and the model's choices.

    ``y``, ``x``, ``group``, ``run``, ``se``: columns (``x`` maps law inputs to columns);
    ``pool``: parameter -> ``"shared"``, ``"partial"`` or ``"none"``; ``likelihood``,
    ``parameterization``, ``min_rows_per_family``, ``check_units``: as for :func:`bayescale.fit`.
    """

    y: str = "loss"
    x: object = None
    group: str | None = None
    run: str | None = None
    se: str | None = None
    pool: dict | None = None
    likelihood: str = "normal"
    parameterization: str = "auto"
    min_rows_per_family: int = 2
    check_units: bool = True
    duplicates: str = "keep"


@dataclass(frozen=True)
class Settings:
    """The record of one fit.

    Attributes
    ----------
    law : str
        Name of the law fitted.
    likelihood, parameterization, min_rows_per_family, check_units, duplicates
        The model options used.
    sampler : SamplerConfig
        The sampler settings, with the device that was used.
    target_accept : float
        NUTS's target acceptance probability used (the default resolved).
    centring : dict
        Random effect -> 1.0 (centred) or 0.0 (non-centred), or a list of them, one per
        family, as chosen from the data.
    anchored : str or None
        The law's offset sampled as its value at the reference point
        (:mod:`bayescale.laws.anchor`), or None.
    seconds : float
        Wall time of the fit (for a vectorised stacked fit, its group's).
    batched : str or None
        ``None`` for a single fit; ``"parallel"`` or ``"vectorized"`` for a stacked one.
    data_set : int or None
        Position of the data set in a stacked call.
    attempts : int or None
        Executor attempts of the task that ran the fit.
    extrapolation : dict or None
        The calibration of forecasts beyond the data kept with the fit (rate, curvature,
        dof, reach, ...), ``{"skipped": reason}``, or None for law-only bands.
    nested : tuple of dict
        One row per nested fit of the calibration: origin, fit, rows, verdict, reason, used
        (whether it entered the calibration), seconds; :meth:`nested_table` gives them as a
        DataFrame.
    """

    law: str
    likelihood: str = "normal"
    parameterization: str = "auto"
    min_rows_per_family: int = 2
    check_units: bool = True
    duplicates: str = "keep"
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    target_accept: float | None = None
    centring: dict = field(default_factory=dict)
    anchored: str | None = None
    seconds: float = 0.0
    batched: str | None = None
    data_set: int | None = None
    attempts: int | None = None
    extrapolation: dict | None = None
    nested: tuple = ()

    @property
    def chains(self) -> int:
        return self.sampler.chains

    @property
    def draws(self) -> int:
        return self.sampler.draws

    @property
    def warmup(self) -> int:
        return self.sampler.warmup

    @property
    def seed(self) -> int:
        return self.sampler.seed

    @property
    def device(self) -> str | None:
        return self.sampler.device

    def nested_table(self) -> pd.DataFrame:
        """The nested calibration fits as a table: origin, fit, rows, verdict, reason, used, seconds.

        Whether the calibration used every nested fit, only those that passed, or the
        fallback band is ``extrapolation["basis"]``.
        """
        return nested_table(self.nested)

    def with_(self, **changes) -> Settings:
        """A copy with ``changes``."""
        return replace(self, **changes)

    def record(self) -> dict:
        """Plain JSON-ready values."""
        out = asdict(self)
        out["nested"] = [dict(row) for row in self.nested]
        return out

    @classmethod
    def from_record(cls, record: dict) -> Settings:
        """The settings saved by :meth:`record`, or the flat dictionary of a format 1 artifact."""
        record = dict(record)
        if "sampler" not in record:  # format 1: sampler keys sat beside the others
            sampler = {k: record.pop(k) for k in ("chains", "warmup", "draws", "seed", "device")
                       if k in record}
            sampler["target_accept"] = record.get("target_accept")
            record["sampler"] = sampler
        record["sampler"] = SamplerConfig.from_record(record["sampler"])
        record["nested"] = tuple(record.get("nested") or ())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in record.items() if k in known})
