"""Measuring how fast a law's error grows beyond the data (bayescale.calibrate)."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayescale as bs
from bayescale.errors import DataError, ExtrapolationWarning
from bayescale.evaluate.calibration import discrepancy_rate, errors, estimate
from bayescale.laws.outcome import Outcome
from bayescale.result.predictive import terms, widen

KW = dict(y="loss", x="x", chains=2, warmup=300, draws=300, seed=0, progress=False)


def _ladder(bend: bool, seed: int = 0) -> pd.DataFrame:
    """A power law in x; with ``bend`` its exponent steepens smoothly over the upper decades.

    The bent ladder is what a single power law misfits more and more beyond the data.
    """
    rng = np.random.default_rng(seed)
    x = np.repeat(np.logspace(6, 10, 17), 2)
    alpha = 0.3 + (0.08 * np.clip(np.log10(x) - 7, 0, None) if bend else 0.0)
    loss = (1.8 + 5.0 * (x / 1e6) ** -alpha) * np.exp(0.003 * rng.standard_normal(len(x)))
    return pd.DataFrame({"x": x, "loss": loss, "run": np.arange(len(x))})


def _coverage(fit, test, rate):
    """Share of ``test`` in the 90% new-run band; ``rate=None``: the fit's own calibration."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = fit.predict(test, kind="new_run", discrepancy=rate)
    y = test["loss"].to_numpy()
    return float(np.mean((p["lo90"] <= y) & (y <= p["hi90"])))


@pytest.fixture(scope="module")
def bent():
    df = _ladder(bend=True)
    train, test = df[df["x"] <= 1e9], df[df["x"] > 1e9]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = bs.calibrate(train, "power", **KW)
        fit = bs.fit(train, "power", extrapolation=cal, **KW)
    return cal, fit, test


@pytest.mark.slow  # calibration measured by many nested fits
def test_misfit_law_gets_a_positive_rate_that_restores_coverage(bent):
    cal, fit, test = bent
    assert cal.rate > 0.005, cal
    # the nested fits (2 chains x 300 draws) sit near the gate's ESS threshold, so which of them
    # pass differs between machines and backends; those that enter are the ones recorded as used
    used = {row["origin"] for row in cal.nested if row["used"]}
    assert (cal.rows["decades"] > 0).all() and set(cal.rows["origin"]) == used and len(used) >= 2
    assert cal.reach == pytest.approx(cal.rows["decades"].max())
    assert _coverage(fit, test, 0.0) < 0.5  # the plain band misses the bent upper decade
    # The 8 held-out rows share one systematic error, so their coverage is all or nothing
    # around one z-score: check that z.  Plain, the error is many band sds out; widened by
    # the rate and curvature measured inside the training data, it lies inside the central
    # 95% band (normal, which the Student-t of the calibration only widens).
    e = errors(fit, test)
    plain = np.abs(e["error"]) / e["band_sd"]
    shifted = e["error"] - cal.bias * e["decades"]
    d = e["decades"]
    widened = np.abs(shifted) / np.sqrt(e["band_sd"] ** 2 + d**2 * (cal.rate**2 + (cal.curvature * d) ** 2))
    assert plain.min() > 2.0, plain.to_numpy()
    assert widened.max() < 1.96, widened.to_numpy()
    assert cal.dof == len(used)  # one misfit per origin
    # a steepening exponent makes the law over-predict the loss beyond the data: truth below
    # the forecast, a negative bias per decade when asked for (from 3 origins, too uncertain
    # to do more than move the band: its sd, the rate beyond the scatter, is larger than it)
    assert cal.bias == 0.0
    biased = estimate(cal.rows, cal.fit, bias=True)
    assert biased.bias < 0 and biased.rate > biased.scatter, biased


def _running_exponent(seed: int = 0) -> pd.DataFrame:
    """Chinchilla's surface but with an exponent of N that steepens by 0.03 per decade of N.

    Chinchilla, with its one alpha, is misspecified for it by a little at every scale.
    """
    rng = np.random.default_rng(seed)
    n, ratio = np.meshgrid(np.geomspace(1e7, 1e10, 10), [10.0, 20.0, 40.0])
    n, d = n.ravel(), (n * ratio).ravel()
    alpha = 0.30 + 0.03 * (np.log10(n) - 7)
    loss = (1.7 + 400 * n**-alpha + 400 * d**-0.28) * np.exp(0.003 * rng.standard_normal(n.size))
    return pd.DataFrame({"N": n, "D": d, "loss": loss})


@pytest.mark.slow  # calibration measured by many nested fits
def test_chinchilla_fit_to_a_running_exponent_gets_bands_that_cover_again():
    df = _running_exponent()
    compute = df["N"] * df["D"]
    train, test = df[compute <= compute.quantile(0.7)], df[compute > compute.quantile(0.7)]
    kw = dict(KW, x={"N": "N", "D": "D"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.fit(train, "chinchilla", extrapolation=True, **kw)
    plain, calibrated = _coverage(fit, test, 0.0), _coverage(fit, test, None)
    # 9 held-out runs up to 2 decades of compute beyond: the plain 90% band holds a third of
    # them; the calibrated one is within two binomial sds (0.1 each for 9 rows) of nominal
    assert plain < 0.5, plain
    assert calibrated >= 0.9 - 2 * 0.1, (calibrated, fit.settings.extrapolation)


@pytest.mark.slow  # a fit and its nested fits at every origin: 24 s, the fast tier's largest
def test_well_specified_law_gets_a_small_rate_kept_with_the_fit():
    df = _ladder(bend=False)  # what a user gets: no extrapolation argument
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.fit(df, "power", **KW)
    kept = fit.settings.extrapolation
    # the bands already explain the held-out errors: the excess is of the order of the noise
    assert kept["rate"] < 0.005, kept
    # every nested fit's verdict is recorded with the fit; those left out are not counted
    nested = fit.settings.nested
    assert [row["origin"] for row in nested] == [0, 1, 2]
    assert all(row["verdict"] in ("passed", "imprecise", "failed") and row["rows"] < len(df)
               for row in nested)
    assert all((row["verdict"] == "passed") == (row["reason"] == "") for row in nested)
    assert all(row["used"] == (row["verdict"] != "failed") for row in nested) or kept["basis"] == "fallback"
    assert kept["origins"] == sum(row["used"] for row in nested), kept
    # the earliest origin reaches farthest (3 decades); without it, the next reaches 1.75
    assert kept["reach"] > (2.0 if nested[0]["used"] else 1.5), kept


@pytest.mark.slow  # shares the misfit fixture's calibration (many nested fits)
def test_fit_predicts_with_its_calibration_unless_told_not_to(bent, tmp_path):
    cal, fit, test = bent
    assert fit.settings.extrapolation == cal.record()
    far = test.iloc[[-1]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = fit.predict(far, kind="new_run", levels=(0.9,))
        law_only = fit.predict(far, kind="new_run", levels=(0.9,), extrapolation=False)
        explicit = fit.predict(far, kind="new_run", levels=(0.9,), discrepancy=cal)
        biased = estimate(cal.rows, cal.fit, bias=True)
        shifted = fit.predict(far, kind="new_run", levels=(0.9,), discrepancy=biased)
        unbiased = fit.predict(far, kind="new_run", levels=(0.9,), discrepancy=replace(biased, bias=0.0))
    width = lambda p: float(p["hi90"].iloc[0] - p["lo90"].iloc[0])  # noqa: E731
    assert width(default) == width(explicit) > 2 * width(law_only)
    # a bias moves the whole band by exp(bias * distance) on the log link, the same draws
    shift = float(shifted["median"].iloc[0] / unbiased["median"].iloc[0])
    assert shift == pytest.approx(np.exp(biased.bias * default["distance"].iloc[0]), rel=1e-9)
    assert default["distance"].iloc[0] == pytest.approx(1.0)  # 1e10 is one decade beyond 1e9
    fit.save(tmp_path / "fit")
    again = bs.Fit.load(tmp_path / "fit")
    assert again.settings.extrapolation == cal.record()


@pytest.mark.slow  # shares the misfit fixture's calibration (many nested fits)
def test_forecast_beyond_the_backtests_reach_warns(bent):
    cal, fit, _ = bent
    inside = 10 ** (9 + 0.5 * cal.reach)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        fit.predict({"x": [inside]})
    with pytest.warns(ExtrapolationWarning, match="farthest that the data's own backtests reached"):
        fit.predict({"x": [10 ** (9 + cal.reach + 0.5)]})


def test_extrapolation_argument_is_checked():
    with pytest.raises(DataError, match="extrapolation="):
        bs.fit(_ladder(bend=False), "power", extrapolation="yes", **KW)
    with pytest.raises(DataError, match="tails="):
        bs.fit(_ladder(bend=False), "power", extrapolation=bs.CalibrationConfig(tails="wide"), **KW)


@pytest.mark.slow  # a fit and its nested backtest attempt (17 s)
def test_auto_falls_back_to_the_law_only_band_where_no_backtest_fits():
    # one IsoFLOP profile: every run has the same compute, so no rolling origin leaves runs beyond it
    n = np.geomspace(1e8, 1e9, 6)
    df = pd.DataFrame({"N": n, "D": 1e19 / n, "loss": 3.0 + 0.01 * np.log(n / 3e8) ** 2})
    kw = dict(y="loss", x={"N": "N", "D": "D"}, chains=1, warmup=100, draws=100, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.fit(df, "chinchilla", **kw)  # the default: extrapolation="auto"
        assert "no origin leaves rows" in fit.settings.extrapolation["skipped"]
        new = {"N": [3e9], "D": [1e11]}
        band = fit.predict(new, levels=(0.9,))
        law_only = fit.predict(new, levels=(0.9,), extrapolation=False)
    pd.testing.assert_frame_equal(band, law_only)
    with pytest.raises(DataError, match="extrapolation=True: rolling backtest"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bs.fit(df, "chinchilla", extrapolation=True, **kw)


def test_widen_is_identity_at_rate_zero_and_grows_with_distance():
    rng = np.random.default_rng(0)
    draws = np.full((4000, 3), 2.0)
    out = widen(draws, np.array([0.0, 1.0, 2.0]), 0.05, Outcome.named("positive"), rng)
    assert np.all(out[:, 0] == 2.0)
    sd = np.log(out).std(0)
    np.testing.assert_allclose(sd[1:], [0.05, 0.10], rtol=0.05)  # 4000 draws: sd known to ~1.2%
    with pytest.raises(DataError, match="discrepancy"):
        widen(draws, np.ones(3), -1.0, Outcome.named("positive"), rng)
    shifted = widen(draws, np.array([0.0, 1.0, 2.0]), 0.0, Outcome.named("positive"), rng, bias=-0.1)
    np.testing.assert_allclose(shifted[0], 2.0 * np.exp([0.0, -0.1, -0.2]))


def test_widen_with_curvature_grows_with_the_square_of_distance():
    rng = np.random.default_rng(1)
    draws = np.full((4000, 3), 2.0)
    out = widen(draws, np.array([0.0, 1.0, 2.0]), 0.03, Outcome.named("positive"), rng, curvature=0.02)
    sd = np.log(out).std(0)
    # sd = d * sqrt(rate^2 + curvature^2 d^2): 0.036 at 1 decade, 0.1 at 2; 4000 draws: ~1.2%
    assert np.all(out[:, 0] == 2.0)
    np.testing.assert_allclose(sd[1:], [np.hypot(0.03, 0.02), 2 * np.hypot(0.03, 0.04)], rtol=0.05)
    with pytest.raises(DataError, match="curvature"):
        widen(draws, np.ones(3), 0.0, Outcome.named("positive"), rng, curvature=-0.1)
    # Student-t tails: the same scale, quantiles of t(3) (the 95% point 2.35 scales, not 1.64)
    heavy = np.log(widen(draws, np.array([0.0, 1.0, 2.0]), 0.03, Outcome.named("positive"), rng, dof=3.0))
    q = np.quantile(heavy[:, 1] - np.log(2.0), 0.95) / np.hypot(0.03, 0.0)
    assert q == pytest.approx(stats.t.ppf(0.95, 3), rel=0.1)  # 4000 draws: the sample quantile has sd ~4%
    # cut at the 0.1% tails, so the outcome-scale mean stays finite
    assert np.abs(heavy[:, 2] - np.log(2.0)).max() <= 2 * 0.03 * stats.t.ppf(0.999, 3) + 1e-12
    with pytest.raises(DataError, match="dof"):
        widen(draws, np.ones(3), 0.01, Outcome.named("positive"), rng, dof=0.0)


def test_terms_reads_the_curvature_of_a_calibration_and_of_a_record():
    cal = estimate(_simulated_errors(0.0, 0.0, curvature=0.01), fit=None, curvature=True)
    assert terms(cal)[3] == cal.curvature > 0
    assert terms(cal.record()) == terms(cal) == (cal.rate, 0.0, cal.reach, cal.curvature, 40.0)
    assert terms(0.02) == (0.02, 0.0, None, 0.0, None)
    normal = estimate(_simulated_errors(0.0, 0.01), fit=None, tails="normal")
    assert normal.dof is None and "t(" not in repr(normal) and "t(40)" in repr(cal)
    with pytest.raises(DataError, match="tails="):
        estimate(_simulated_errors(0.0, 0.01), fit=None, tails="cauchy")


def _simulated_errors(bias, scatter, origins=40, per_origin=8, seed=0, curvature=0.0):
    """Held-out rows whose errors follow the calibration model exactly, band sd 0.01."""
    rng = np.random.default_rng(seed)
    d = np.tile(np.linspace(0.2, 1.6, per_origin), origins)
    s = np.full(d.shape, 0.01)
    spread = np.sqrt(s**2 + (scatter * d) ** 2 + (curvature * d**2) ** 2)
    e = bias * d + rng.standard_normal(d.shape) * spread
    return pd.DataFrame({"decades": d, "error": e, "band_sd": s,
                         "origin": np.repeat(np.arange(origins), per_origin)})


def test_estimate_recovers_bias_and_scatter_of_simulated_errors():
    rows = _simulated_errors(bias=-0.02, scatter=0.01)
    cal = estimate(rows, fit=None, bias=True, curvature=False)
    # independent rows here, so the bias's sd is that of weighted least squares (~0.0009 at
    # these weights); the scatter's is ~0.0008 (200 seeds): both within 4 sd
    # the calibration's own bias sd treats each origin as one row, so it is wider
    w = 1 / (rows["band_sd"] ** 2 + (0.01 * rows["decades"]) ** 2)
    sd = float(1 / np.sqrt(np.sum(w * rows["decades"] ** 2)))
    assert cal.bias == pytest.approx(-0.02, abs=4 * sd)
    assert cal.scatter == pytest.approx(0.01, abs=4 * 0.0008)
    assert cal.rate > cal.scatter
    plain = estimate(rows, fit=None, curvature=False)
    assert plain.bias == 0.0 and plain.rate > cal.scatter  # without a bias, the scatter absorbs it


def test_shrunk_bias_keeps_a_clear_bias_and_drops_one_within_its_own_sd():
    clear = _simulated_errors(bias=-0.02, scatter=0.01)
    full, shrunk = (estimate(clear, fit=None, bias=b, curvature=False) for b in (True, "shrunk"))
    # the bias's own variance v = rate^2 - scatter^2; James-Stein keeps bias * (1 - v / bias^2)
    v = full.rate**2 - full.scatter**2
    assert v < full.bias**2
    assert shrunk.bias == pytest.approx(full.bias * (1 - v / full.bias**2), rel=1e-9)
    assert shrunk.rate == pytest.approx(full.rate)  # the band widens as much either way
    # 4 origins: the bias is as uncertain as 4 rows, and a true one of 0.002 lies within its sd
    faint = _simulated_errors(bias=0.002, scatter=0.01, origins=4)
    weak = estimate(faint, fit=None, bias=True, curvature=False)
    assert weak.bias**2 < weak.rate**2 - weak.scatter**2
    assert estimate(faint, fit=None, bias="shrunk", curvature=False).bias == 0.0
    with pytest.raises(bs.DataError, match="shrunk"):
        estimate(faint, fit=None, bias="half")
    with pytest.raises(bs.DataError, match="shrunk"):
        bs.CalibrationConfig(bias="yes")


def test_estimate_tells_curvature_from_linear_growth():
    # 1280 rows; root-mean-square errors over 200 seeds (the sd plus the pull of the bound at
    # 0): quadratic truth, curvature 0.0007; linear truth, scatter 0.0009.  The other term of
    # each is weakly identified at these distances (rms 0.003 and 0.002), so it is not tested
    curved = estimate(_simulated_errors(0.0, 0.0, origins=160, curvature=0.01), fit=None, curvature=True)
    assert curved.curvature == pytest.approx(0.01, abs=4 * 0.0007)
    straight = estimate(_simulated_errors(0.0, 0.01, origins=160), fit=None, curvature=True)
    assert straight.scatter == pytest.approx(0.01, abs=4 * 0.0009)
    assert straight.curvature < curved.curvature - 4 * 0.0007
    assert "curvature" in repr(curved)
    assert estimate(_simulated_errors(0.0, 0.01), fit=None, curvature=False).curvature == 0


@pytest.mark.slow  # shares the misfit fixture's calibration (many nested fits)
def test_rows_inside_the_data_are_refused(bent):
    _, fit, _ = bent
    inside = pd.DataFrame({"x": [1e7, 1e8], "loss": [3.0, 2.5]})
    with pytest.raises(DataError, match="none of the held-out rows lies beyond"):
        discrepancy_rate(fit, inside)


def test_errors_take_a_held_out_exact_one_at_its_censoring_bound():
    """A held-out accuracy of exactly 1 has an infinite logit; its error is measured at the
    family's censoring bound, so the calibration stays finite."""
    from types import SimpleNamespace

    from bayescale.data.design import prepare
    from bayescale.laws.spec import Law

    law = Law.named("coverage")
    train = pd.DataFrame({"k": [1.0, 2, 4, 8], "acc": [0.0, 0.2, 0.6, 0.9]})
    design = prepare(train, law, "acc", "k")  # resolution: half of 0.1
    held = pd.DataFrame({"k": [16.0, 32.0], "acc": [0.97, 1.0]})
    mean = np.array([[0.95, 0.96], [0.97, 0.98]])  # two draws of each forecast

    def predict(rows, kind, levels, seed, discrepancy, draws):
        return pd.DataFrame({"family": ["all", "all"], "distance": [0.3, 0.6]}), mean

    out = errors(SimpleNamespace(design=design, predict=predict), held)
    logit = Outcome.named("unit").forward
    want = logit(np.array([0.97, 0.95])) - logit(mean).mean(0)
    np.testing.assert_allclose(out["error"], want)


# ---- nested fits that fail the gate (no sampling: fits and their forecasts are stand-ins) ------
class _Structure:
    def __init__(self, pools):
        self.pools = pools

    def pool(self, name):
        return self.pools[name]


def _nested_fit(ok: bool, rows: int, r_hat: float = 1.0):
    """A stand-in for a nested fit of chinchilla on two families: E per family, alpha shared."""
    from types import SimpleNamespace

    from bayescale.errors import DesignWarning, DiagnosticsWarning, FitWarning

    index = ["E[f0]", "E[f1]", "alpha[f0]", "alpha[f1]", "sigma"]
    diag = pd.DataFrame({"r_hat": [r_hat, r_hat, r_hat, r_hat, 1.0], "ess_bulk": 1000.0,
                         "ess_tail": 1000.0}, index=index)
    found = [FitWarning("few_sizes", "input D has only 2 distinct value(s).", DesignWarning)]
    if not ok:
        found.append(FitWarning("rhat", "R-hat above 1.01 for E[f0], E[f1], alpha[f0], alpha[f1]",
                                DiagnosticsWarning))
    law = bs.Law.named("chinchilla")
    return SimpleNamespace(ok=ok, warnings=found, diagnostics=diag, law=law,
                           structure=_Structure({"E": "none", "a": "none", "b": "none", "alpha": "shared",
                                                 "beta": "shared"}),
                           design=SimpleNamespace(y=np.zeros(rows), n_families=2),
                           settings=SimpleNamespace(seconds=1.5))


@pytest.fixture
def stand_ins(monkeypatch):
    """measure() over three origins whose fits pass or fail as ``verdicts[0]`` says."""
    from bayescale.evaluate import backtest, calibration
    from bayescale.evaluate.backtest import Backtest

    verdicts = [[True, True, True]]

    def run_backtest(df, req, **options):
        fits = [_nested_fit(ok, rows=10 + 5 * k, r_hat=1.0 if ok else 1.93)
                for k, ok in enumerate(verdicts[0])]
        for f in fits:  # as the fits emit them, unlabelled
            for w in f.warnings:
                warnings.warn(w.category(str(w)), stacklevel=2)
        warnings.warn(bs.DesignWarning("a run has only 2 row(s) to derive ['S1'] from"), stacklevel=2)
        per_target = pd.DataFrame({"cut": [0, 0, 1, 1, 2], "row": [3, 4, 4, 5, 5],
                                   "frontier": [1e18, 1e18, 1e19, 1e19, 1e20]})
        return Backtest(per_target, pd.DataFrame(), fits[-1], np.ones(6, bool), "rolling", fits=fits)

    def errors(fit, rows, kind="new_run", seed=0):  # a failed fit's forecasts miss by far more
        d = np.linspace(0.5, 1.5, len(rows))
        return pd.DataFrame({"decades": d, "error": (0.3 if not fit.ok else 0.01) * d, "band_sd": 0.01})

    monkeypatch.setattr(backtest, "run_backtest", run_backtest)
    monkeypatch.setattr(calibration, "errors", errors)
    return verdicts


def _measure():
    from bayescale.evaluate.calibration import measure
    from bayescale.result.fitting import request

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cal = measure(pd.DataFrame({"loss": np.ones(6)}), request("chinchilla", x={"N": "p", "D": "t"}))
    return cal, [str(w.message) for w in caught]


def test_nested_fits_that_all_pass_are_all_used(stand_ins):
    cal, said = _measure()
    assert cal.basis == "all" and cal.notes == () and set(cal.rows["origin"]) == {0, 1, 2}
    table = cal.nested_table()
    assert list(table.columns) == ["origin", "fit", "rows", "verdict", "reason", "used", "seconds"]
    assert table["used"].all() and (table["verdict"] == "passed").all()
    assert table["fit"][1] == "calibration fit at origin 1 (15 rows, up to 6 * N * D = 1e+19)"
    # the nested fits' warnings name them; none is said as if it were a plain fit's
    assert "calibration fits at origins 0, 1, 2: [few_sizes] input D has only 2 distinct value(s)." in said
    assert "calibration fits: a run has only 2 row(s) to derive ['S1'] from" in said
    assert all(m.startswith("calibration fit") for m in said), said


def test_a_failed_nested_fit_whose_errors_widen_the_band_is_kept_and_named(stand_ins):
    """Leaving a failed fit out never narrows the band: here its forecasts missed by more than
    the others', so every origin is kept (basis "wider") and the note says why."""
    stand_ins[0] = [True, False, True]
    cal, said = _measure()
    assert cal.basis == "wider" and set(cal.rows["origin"]) == {0, 1, 2}
    table = cal.nested_table()
    assert table["used"].tolist() == [True, True, True]
    assert table["verdict"].tolist() == ["passed", "failed", "passed"]
    # parameters fitted per family are named as per family, the shared one as shared
    assert table["reason"][1] == "R-hat up to 1.93 for per-family E (f0, f1), shared alpha"
    (note,) = cal.notes
    assert note.kind == "calibration_kept" and note.category is bs.DiagnosticsWarning
    assert "1 of 3 calibration fits failed the diagnostics gate (origin 1: R-hat" in note.message
    assert "they are kept" in note.message
    assert ("calibration fit at origin 1 (15 rows, up to 6 * N * D = 1e+19): [rhat] failed the diagnostics "
            "gate: R-hat up to 1.93 for per-family E (f0, f1), shared alpha") in said
    assert str(note) in said and cal.record()["basis"] == "wider"


def test_too_few_passing_nested_fits_fall_back_to_the_wider_band(stand_ins):
    from bayescale.evaluate.calibration import FALLBACK_DOF, FALLBACK_RATE

    stand_ins[0] = [False, False, True]
    cal, said = _measure()
    assert cal.basis == "fallback" and set(cal.rows["origin"]) == {0, 1, 2}
    assert cal.rate >= FALLBACK_RATE and cal.dof == FALLBACK_DOF
    (note,) = cal.notes
    assert note.kind == "calibration_fallback" and "leaving 1, too few" in note.message
    assert f"at least {FALLBACK_RATE:g} per decade" in note.message
    # the fallback is never narrower than what every origin measured
    stand_ins[0] = [False, False, False]
    cal, _ = _measure()
    assert cal.basis == "fallback" and cal.rate > FALLBACK_RATE  # the failed fits' errors are larger


def test_a_nested_fit_short_of_ess_alone_is_kept(stand_ins):
    """The nested fits are short on purpose: an ESS below the gate's leaves their bands' widths
    imprecise, not biased, so such a fit stays in (verdict imprecise) and nothing is said."""
    from bayescale.evaluate import calibration

    real = _nested_fit

    def short(ok, rows, r_hat=1.0):
        fit = real(ok, rows, r_hat)
        if not ok:  # the ESS, not R-hat, failed
            fit.warnings[-1] = bs.FitWarning("ess_bulk", "bulk effective sample size below 400",
                                             bs.DiagnosticsWarning)
            fit.diagnostics["r_hat"] = 1.0
            fit.diagnostics.loc["E[f1]", "ess_bulk"] = 150.0
        return fit

    stand_ins[0] = [True, False, False]
    globals()["_nested_fit"] = short
    try:
        cal, _ = _measure()
    finally:
        globals()["_nested_fit"] = real
    assert cal.basis == "all" and cal.notes == () and set(cal.rows["origin"]) == {0, 1, 2}
    table = cal.nested_table()
    assert table["verdict"].tolist() == ["passed", "imprecise", "imprecise"] and table["used"].all()
    assert table["reason"][1] == "ess bulk down to 150 for per-family E (f1)"
    assert calibration.usable(cal.fit)
