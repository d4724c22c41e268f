"""The :class:`Fit` users hold: posterior, diagnostics verdict, summary, forecasts, saving.

Questions that go beyond one fit's posterior are answered by functions of the
layers above, which take a fit: ``bs.contrast(fit, ...)``, ``bs.allocate(fit, ...)``,
``bs.ppc(fit)``, ``bs.plot(fit)``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from ..data.design import Design, prepare
from ..errors import FitWarning
from ..inference import gate
from ..laws.spec import Law
from ..model import Structure, partial_names, structure
from . import io, predictive
from .settings import Settings

GATE_KINDS = gate.GATE_KINDS
PACKAGE = str(Path(__file__).resolve().parents[1])

# methods of the first release that are functions of the layers above now
MOVED = {"plot": "bs.plot(fit, ...)", "ppc": "bs.ppc(fit, ...)", "allocate": "bs.allocate(fit, budgets, ...)",
         "contrast": "bs.contrast(fit, param, a, b)",
         "contrast_prediction": "bs.contrast_prediction(fit, at, a, b)",
         "rank_families": "bs.rank_families(fit, at)"}


class Fit:
    """A fitted scaling law: posterior, diagnostics, forecasts.

    Attributes
    ----------
    ok : bool
        True only if the diagnostics gate passed (R-hat, ESS, divergences, E-BFMI).
    warnings : list of FitWarning
        Design and diagnostics warnings (also emitted through :mod:`warnings`).
    idata : xarray.DataTree
        ArviZ 1.x DataTree: posterior, sample_stats, log_likelihood, observed_data,
        constant_data.
    law : Law
        The law with the pooling used.
    design : Design
        The validated data.
    settings : Settings
        How the fit was made (typed, immutable; saved with the fit).
    diagnostics : DataFrame
        The gate's table: mean, sd, interval, R-hat and ESS per gated quantity.
    """

    def __init__(self, law: Law, design: Design, s: Structure, idata, settings: Settings,
                 warnings_: list, diag: pd.DataFrame):
        self.law, self.design, self.structure = law, design, s
        self.idata, self.settings = idata, settings
        self.warnings, self.diagnostics = warnings_, diag

    @classmethod
    def gated(cls, law: Law, design: Design, s: Structure, idata, settings: Settings,
              emit: bool = True) -> Fit:
        """Run the diagnostics gate on a sampled DataTree; its findings are emitted as warnings."""
        diag, found = gate.gate(idata, gate_names(s), settings.chains)
        if emit:  # attributed to the caller's line, the first outside the package
            for w in design.warnings + found:
                warnings.warn(w.category(str(w)), skip_file_prefixes=(PACKAGE,))
        return cls(law, design, s, idata, settings, design.warnings + found, diag)

    @property
    def ok(self) -> bool:
        return not any(w.kind in GATE_KINDS for w in self.warnings)

    def __repr__(self) -> str:
        verdict = "passed" if self.ok else "FAILED"
        return (f"<Fit {self.law.name}: {len(self.design.y)} rows, {self.design.n_families} "
                f"famil{'y' if self.design.n_families == 1 else 'ies'}, diagnostics {verdict}>")

    def __getattr__(self, name):
        if name in MOVED:
            raise AttributeError(f"Fit.{name} is now a function that takes the fit: {MOVED[name]} "
                                 f"(import bayescale as bs).")
        raise AttributeError(f"'Fit' object has no attribute {name!r}")

    def verdict(self) -> str:
        """The gate's verdict in one line: ``passed`` or ``FAILED: <what failed>``."""
        failed = [w.kind for w in self.warnings if w.kind in GATE_KINDS]
        return "passed" if not failed else "FAILED: " + ", ".join(dict.fromkeys(failed))

    # ---- results ------------------------------------------------------------------
    def summary(self) -> pd.DataFrame:
        """Each parameter (per family where it varies): mean, sd, 90% interval, r_hat, ESS.

        Parameters shared across families appear once; the paper-convention
        values from the law's ``[report]`` table (e.g. ``A``, ``B``) are included.
        """
        rows = []
        names = [*self.law.parameters, *self.law.report]
        diag = gate.table(self.idata, names)
        for name in names:
            shared = self.design.n_families == 1 or (
                name in self.law.parameters and self.structure.pool(name) == "shared")
            for family in self.design.families[:1] if shared else self.design.families:
                row = diag.loc[f"{name}[{family}]"]
                rows.append({"parameter": name, "family": None if shared else family,
                             **row[["mean", "sd", "q5", "q95", "r_hat", "ess_bulk", "ess_tail"]]})
        for name in self.hyperparameters():
            rows.append({"parameter": name, "family": None,
                         **self.diagnostics.loc[name][["mean", "sd", "q5", "q95", "r_hat",
                                                       "ess_bulk", "ess_tail"]]})
        return pd.DataFrame(rows)

    def hyperparameters(self) -> list[str]:
        """Population, noise and run-effect parameters of the model."""
        names = [f"{n}{k}" for n in partial_names(self.structure) for k in ("_pop_z", "_tau")]
        names.append("sigma")
        if self.structure.n_runs:
            names.append("sigma_run")
        if self.structure.likelihood == "student_t":
            names.append("nu")
        return names

    def predict(self, new, kind: str = "mean", levels=(0.5, 0.9), seed: int = 0,
                discrepancy=None, extrapolation: bool = True, draws: bool = False):
        """Posterior forecasts at the rows of ``new``.

        Parameters
        ----------
        new : DataFrame or dict
            Input columns as named in the fit (e.g. ``params``, ``tokens``) and
            optionally the group column; a family absent from the data is forecast
            from the population.  Without a group column, every family is forecast.
        kind : {"mean", "new_run"}
            ``"mean"``: the law itself (credible band of the curve).  ``"new_run"``:
            where one new training run lands (adds a run effect and observation noise).
        levels : sequence of float
            Central credible levels; each gives columns ``lo<pct>`` and ``hi<pct>``.
        discrepancy : float or Calibration, optional
            Rate at which the law's own error grows beyond the data (link-scale sd
            per decade of extrapolation), or a :func:`bayescale.calibrate` result,
            which also widens it by its ``curvature`` per squared decade, with
            Student-t tails of its ``dof``, and shifts it by its ``bias`` per decade
            (``bias=True``); overrides the fit's own calibration.  0 trusts the law's form exactly.
        extrapolation : bool
            Widen the band beyond the data by the fit's own calibration (which
            ``bs.fit`` makes by default); ``False`` gives the law-only band.  A fit
            without a calibration gives the law-only band.
        draws : bool
            Also return the forecast's posterior draws (outcome scale), an array of
            shape (draws, rows of the table), in the table's row order.

        Returns
        -------
        DataFrame
            The inputs, ``family``, ``mean``, ``median``, ``lo50``/``hi50``, ...,
            ``distance`` (decades of the law's scale beyond the family's data:
            compute 6·N·D for N and D, see :attr:`bayescale.Law.scale`) and
            ``extrap_<input>`` (decades outside the family's observed range; also
            ``extrap_C`` for a scale that is not one input).
            A forecast beyond the calibration's ``reach`` warns
            (:class:`~bayescale.errors.ExtrapolationWarning`).  With ``draws=True``,
            the table and the draws.
        """
        own = self.settings.extrapolation if extrapolation else None
        if discrepancy is None:  # a fit whose calibration was skipped keeps the law-only band
            discrepancy = own if own and "rate" in own else 0.0
        return predictive.predict(self.idata.posterior, self.structure, self.design, new, kind, levels,
                                  seed, samples=draws, discrepancy=discrepancy)

    def save(self, path):
        """Write the fit to a directory (netCDF + CSV + TOML + JSON; no pickle)."""
        return io.save(self, path)

    @classmethod
    def load(cls, path) -> Fit:
        """Read a fit written by :meth:`save` (this version's format or the first release's)."""
        parts = io.read(path)
        meta, cols = parts["meta"], parts["meta"]["columns"]
        law = Law.from_toml(parts["law_text"], origin=f"{path}/law.toml")
        st = Settings.from_record(meta["settings"])
        design = prepare(parts["frame"], law, cols["y"], cols["x"], cols["group"], cols["run"],
                         cols["se"], min_rows_per_family=st.min_rows_per_family,
                         # units checked, or knowingly skipped, when fitted
                         check_units=False, weight=cols.get("weight"))
        s = structure(law, design, st.likelihood, st.parameterization)
        return cls.gated(law, design, s, parts["idata"], st, emit=False)


def gate_names(s: Structure) -> list[str]:
    """The quantities the gate checks: the law's parameters and the model's hyperparameters."""
    names = [*s.law.parameters]
    names += [f"{n}{k}" for n in partial_names(s) for k in ("_pop_z", "_tau")]
    names += ["sigma"] + (["sigma_run"] if s.n_runs else []) + (["nu"] if s.likelihood == "student_t" else [])
    return names


load = Fit.load

__all__ = ["Fit", "FitWarning", "GATE_KINDS", "load"]
