"""End-to-end fits: simulated recovery and two real data sets with published numbers."""

import numpy as np
import pytest
from scipy import stats

import bayescale as bs
from bayescale.inference.gate import GATE_KINDS

DATA = bs.datasets.data_dir()


def needs(name):
    try:
        return bs.datasets.load(name) if name != "chinchilla_epoch" else None
    except bs.DataError as exc:
        pytest.skip(f"data set {name} not available: {exc}")


@pytest.fixture(scope="module")
def simulated():
    df = bs.datasets.simulate("chinchilla", seed=1)
    fit = bs.fit(df, law="chinchilla", y="loss", x={"N": "params", "D": "tokens"},
                 group="family", run="run", seed=0, progress=False, extrapolation=False)
    return df, fit


@pytest.mark.slow  # full-size fits
def test_simulated_ladder_is_sampled_well(simulated, sampled_well):
    _, fit = simulated
    sampled_well(fit)


@pytest.mark.slow  # full-size fits
def test_simulated_truth_inside_intervals(simulated):
    """Truths (E, A, B per family; alpha, beta) against their posterior intervals.

    11 quantities each inside its 90% interval with probability 0.9 would all be
    inside only 31% of the time, so asserting all of them would test luck. With
    a calibrated posterior the number inside is about Binomial(11, 0.9); fewer
    than 8 has probability 1.9%, so we require at least 8 inside the 90%
    interval, and every truth inside its 99.5% interval (a miss there is a
    1-in-200 event per quantity).
    """
    df, fit = simulated
    truth = df.attrs["truth"]
    post = fit.idata.posterior
    paper = {"E": "E", "a": "A", "b": "B", "alpha": "alpha", "beta": "beta"}
    inside90, checked = 0, 0
    for name, post_name in paper.items():
        families = truth[name]
        shared = fit.structure.pool(name) == "shared"
        for family, value in (list(families.items())[:1] if shared else families.items()):
            d = np.asarray(post[post_name].sel(family=family)).ravel()
            lo90, hi90 = np.quantile(d, [0.05, 0.95])
            lo, hi = np.quantile(d, [0.0025, 0.9975])
            assert lo <= value <= hi, (name, family, value, lo, hi)
            inside90 += lo90 <= value <= hi90
            checked += 1
    assert checked == 11
    assert inside90 >= stats.binom.ppf(0.02, checked, 0.9), inside90


@pytest.mark.slow  # full-size fits
def test_simulated_forecast_band_contains_heldout_truth(simulated):
    """The 90% new-run band at a 2.5x larger model covers the noiseless truth for each family."""
    df, fit = simulated
    truth = df.attrs["truth"]
    new = {"params": [2e9] * 3, "tokens": [4e10] * 3, "family": ["f0", "f1", "f2"]}
    pred = fit.predict(new, kind="new_run", levels=(0.9,))
    for _, row in pred.iterrows():
        f = row["family"]
        true = (truth["E"][f] + truth["a"][f] * 2e9 ** -truth["alpha"][f]
                + truth["b"][f] * 4e10 ** -truth["beta"][f])
        assert row["lo90"] <= true <= row["hi90"], (f, true, row["lo90"], row["hi90"])


@pytest.mark.slow  # full-size fits
def test_chinchilla_epoch_matches_published_intervals(sampled_well):
    """Epoch's replication (240 points): medians inside their bootstrap 95% intervals."""
    try:
        df = bs.datasets.load("chinchilla_epoch", drop_highest_loss=5)
    except bs.DataError as exc:
        pytest.skip(str(exc))
    fit = bs.fit(df, law="chinchilla", y="loss", x={"N": "params", "D": "tokens"}, seed=0,
                 progress=False, extrapolation=False)
    sampled_well(fit)
    post = fit.idata.posterior
    published = {"E": (1.769, 1.871), "alpha": (0.317, 0.373), "beta": (0.331, 0.415)}
    for name, (lo, hi) in published.items():
        median = float(np.median(post[name]))
        assert lo <= median <= hi, (name, median, lo, hi)


@pytest.mark.slow  # full-size fits
def test_gadre_overtrain_forecasts_targets():
    """Gadre et al.'s 5-runs-per-corpus protocol, 3 corpora as families, exponent shared."""
    try:
        df = bs.datasets.load("gadre_overtrain")
    except bs.DataError as exc:
        pytest.skip(str(exc))
    train = df[df["gadre_fit_split"]]
    fit = bs.fit(train, law="chinchilla_shared", y="loss", x={"N": "params", "D": "tokens"},
                 group="dataset", se="loss_se", seed=0, progress=False, extrapolation=False)
    # this posterior sits at the gate's thresholds with either backend: over seeds 0-2 on 2-core
    # CPUs, E-BFMI 0.26-0.48 per chain, R-hat 1.01 on some seeds, a divergence on one; which side
    # a seed falls on differs between machines.  So the test does not ask for a pass: it asks
    # that a failure says so where a user looks
    if any(w.kind in GATE_KINDS for w in fit.warnings):
        assert not fit.ok and "FAILED" in repr(fit)
    targets = df[(df["params"] > 6e9) & (df["tokens_per_param"] == 20)]
    assert len(targets) == 3
    pred = fit.predict(targets, kind="new_run", levels=(0.5, 0.9))
    cols = ["lo90", "lo50", "median", "hi50", "hi90"]
    values = pred[cols].to_numpy()
    assert np.isfinite(values).all()
    assert (np.diff(values, axis=1) >= 0).all()
    # the 6.9B runs, 300x the fitting compute, inside their 90% bands (medians 0.1-1.7% low,
    # bands 7-8% wide, over seeds 0-2 and both backends)
    y = targets["loss"].to_numpy()
    assert ((pred["lo90"].to_numpy() <= y) & (y <= pred["hi90"].to_numpy())).all(), (pred, y)
    assert (pred["extrap_C"] > 1).all()  # the targets are far beyond the fitting runs


@pytest.mark.slow  # full-size fits
@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/maps"), reason="needs Linux /proc")
def test_compiled_programs_stay_under_the_memory_map_bound(monkeypatch):
    # Each fit of a new shape leaves ~700 memory maps behind, and a process aborted after ~90
    # such fits (Linux's limit is 65,530 maps); programs are dropped only past a bound.
    from bayescale.inference import runtime

    def maps():
        with open("/proc/self/maps") as fh:
            return sum(1 for _ in fh)

    df = bs.datasets.simulate("power", families=1, seeds=1, seed=0)
    kwargs = {"law": "power", "y": "loss", "x": "x", "chains": 1, "warmup": 30, "draws": 30,
              "progress": False}
    bs.fit(df.iloc[:8], seed=0, **kwargs, extrapolation=False)
    grown = [maps()]
    bs.fit(df.iloc[:9], seed=1, **kwargs, extrapolation=False)  # a new shape: its programs are kept
    grown.append(maps())
    assert grown[1] > grown[0], grown
    bound = grown[1] + 100
    monkeypatch.setattr(runtime, "MAX_MAPS", bound)
    counts = []
    for seed in range(2, 6):  # each a new shape, past the bound: dropped after each fit
        bs.fit(df.iloc[: 8 + seed], seed=seed, **kwargs, extrapolation=False)
        counts.append(maps())
    per_fit = grown[1] - grown[0]
    assert max(counts) < bound + per_fit, (bound, per_fit, counts)


@pytest.mark.slow  # five fits of different shapes
def test_device_auto_sends_large_work_to_a_gpu_when_jax_sees_one(monkeypatch):
    from bayescale.inference import device as inference

    df = bs.datasets.simulate("power", families=1, seeds=1, seed=0)
    kwargs = {"law": "power", "y": "loss", "x": "x", "chains": 1, "warmup": 20, "draws": 20}
    # no GPU here: auto stays on the CPU even for large work
    monkeypatch.setattr(inference, "GPU_MIN_ROWS", 10)
    assert bs.fit(df, **kwargs, extrapolation=False).settings.device == "cpu"
    # a GPU "seen": the same fit is sent to it (and this JAX, having none, says so)
    monkeypatch.setattr(inference, "gpu_available", lambda: True)
    with pytest.raises(bs.FitError, match="no GPU"):
        bs.fit(df, **kwargs, extrapolation=False)
    monkeypatch.setattr(inference, "GPU_MIN_ROWS", 10**6)
    assert bs.fit(df, **kwargs, extrapolation=False).settings.device == "cpu"  # small work stays on the CPU
    monkeypatch.setattr(inference, "GPU_MIN_FITS", 2)  # a batch of 2 fits counts as large
    with pytest.raises(bs.FitError, match="no GPU"):
        bs.fit_many([df, df], device="auto", **kwargs)
