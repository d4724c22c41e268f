"""``bs.fit_many``: many data sets of one shape, one compiled program, the same answers as ``bs.fit``."""

import jax
import numpy as np
import pytest

import bayescale as bs

SMALL = {"law": "power", "y": "loss", "x": "x", "chains": 2, "warmup": 400, "draws": 400}


def _frames(n):
    # one family, one seed: 25 rows each, the same design, different noise
    return [bs.datasets.simulate("power", families=1, seeds=1, seed=k) for k in range(n)]


@pytest.fixture(scope="module")
def batch():
    frames = _frames(3)
    return frames, bs.fit_many(frames, seed=0, **SMALL)


def _compilations(fn):
    """Number of XLA compilations ``fn()`` triggers (JAX's monitoring events)."""
    events = []

    def listen(name, *args, **kwargs):
        if name == "/jax/core/compile/backend_compile_duration":
            events.append(name)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        fn()
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return len(events)


def test_fit_many_returns_one_gated_fit_per_data_set(batch):
    frames, fits = batch
    assert len(fits) == len(frames)
    for k, f in enumerate(fits):
        assert isinstance(f, bs.Fit)
        assert f.settings.batched == "parallel" and f.settings.data_set == k
        assert f.idata.posterior.sizes["chain"] == 2 and f.idata.posterior.sizes["draw"] == 400
        assert "y_link" in f.idata.log_likelihood
        assert {"diverging", "lp", "n_steps"} <= set(f.idata.sample_stats.data_vars)
        assert len(f.design.y) == len(frames[k])
    # different data, different posteriors
    means = [float(f.idata.posterior["alpha"].mean()) for f in fits]
    assert len(set(np.round(means, 6))) == 3


@pytest.mark.slow  # the single fits it compares against (11 s)
def test_fit_many_agrees_with_single_fits_within_monte_carlo_error(batch):
    frames, fits = batch
    single = bs.fit(frames[1], seed=5, progress=False, **SMALL, extrapolation=False)
    for name in ("E", "alpha", "sigma"):
        a = fits[1].summary().set_index("parameter").loc[name]
        b = single.summary().set_index("parameter").loc[name]
        # Monte Carlo standard error of each mean is sd / sqrt(ESS); 4 of them is a 1-in-15,000 miss
        mcse = np.hypot(a["sd"] / np.sqrt(a["ess_bulk"]), b["sd"] / np.sqrt(b["ess_bulk"]))
        assert abs(a["mean"] - b["mean"]) < 4 * mcse, (name, a["mean"], b["mean"], mcse)


def test_fit_many_recovers_the_truth(batch):
    frames, fits = batch
    for df, f in zip(frames, fits):
        rows = f.summary().set_index("parameter")
        for name in ("E", "alpha"):
            truth = df.attrs["truth"][name]["f0"]
            # a posterior z-score beyond 3.3 has probability 0.001 under a calibrated fit
            z = (rows.loc[name, "mean"] - truth) / rows.loc[name, "sd"]
            assert abs(z) < 3.3, (name, truth, rows.loc[name, "mean"], rows.loc[name, "sd"])


@pytest.mark.slow  # several stacked runs, each compiled
def test_chains_side_by_side_do_not_depend_on_what_shares_a_call(monkeypatch):
    from bayescale.inference import nuts as inference

    frames = _frames(2)
    small = SMALL | {"warmup": 50, "draws": 50}
    together = bs.fit_many(frames, seed=6, **small)  # 4 runs: one call of 4 on 4 host devices
    assert inference.side_by_side("cpu") >= 4
    monkeypatch.setattr(inference, "side_by_side", lambda backend="cpu": 1)
    alone = bs.fit_many(frames, seed=6, **small)  # one run per call
    for a, b in zip(together, alone):
        np.testing.assert_array_equal(a.idata.posterior["alpha"], b.idata.posterior["alpha"])
    # every chain its own start and key: no two chains alike
    alpha = together[0].idata.posterior["alpha"].values
    assert not np.array_equal(alpha[0], alpha[1])


@pytest.mark.slow  # many fits or worker processes
def test_fit_many_compiles_once_per_shape():
    frames = _frames(3)
    small = SMALL | {"warmup": 50, "draws": 50}
    one = _compilations(lambda: bs.fit_many(frames[:1], seed=1, **small))
    three = _compilations(lambda: bs.fit_many(frames, seed=1, **small))
    assert one > 0
    # the later data sets add at most a program for another parameterisation, not a compile each
    assert three <= one + 2, (one, three)


@pytest.mark.slow  # many fits or worker processes
def test_padded_subsets_share_one_program_and_keep_their_own_rows(monkeypatch):
    from bayescale.inference import nuts as inference

    df = _frames(1)[0]
    nested = [df.iloc[:n] for n in (10, 15, 20, 25)]  # rows sorted by x: rolling-origin subsets
    built = []
    original = inference.chain_program
    monkeypatch.setattr(inference, "chain_program", lambda *a, **k: built.append(1) or original(*a, **k))
    small = SMALL | {"warmup": 50, "draws": 50}
    bs.fit_many(nested, seed=1, **small)
    apart, built[:] = len(built), []
    padded = bs.fit_many(nested, seed=1, pad=True, **small)
    # one jitted NUTS program per shape and parameterisation: four row counts, four programs;
    # padded to one row count, one per parameterisation (centring, and the parameter sampled
    # at the reference point, which the 10-row subset's weak exponent may call for)
    kinds = {(tuple(sorted(f.settings.centring.items())), f.settings.anchored) for f in padded}
    assert apart == 4 and len(built) == len(kinds) < 4
    fits = bs.fit_many(nested[:2], seed=2, pad=True, **SMALL)
    plain = bs.fit_many(nested[:2], seed=2, **SMALL)
    for f, g, frame in zip(fits, plain, nested):
        assert f.idata.log_likelihood["y_link"].sizes["obs"] == len(frame) == len(f.design.y)
        for name in ("E", "alpha", "sigma"):  # the padding is masked out: the same posterior
            a, b = (x.summary().set_index("parameter").loc[name] for x in (f, g))
            mcse = np.hypot(a["sd"] / np.sqrt(a["ess_bulk"]), b["sd"] / np.sqrt(b["ess_bulk"]))
            assert abs(a["mean"] - b["mean"]) < 4 * mcse, (name, a["mean"], b["mean"], mcse)


@pytest.mark.slow  # several stacked runs, each compiled
def test_fit_many_is_reproducible_and_keeps_mapping_keys():
    frames = _frames(2)
    small = SMALL | {"warmup": 50, "draws": 50}
    a = bs.fit_many({"x": frames[0], "y": frames[1]}, seed=3, **small)
    b = bs.fit_many({"x": frames[0], "y": frames[1]}, seed=3, **small)
    assert list(a) == ["x", "y"]
    np.testing.assert_array_equal(a["y"].idata.posterior["alpha"], b["y"].idata.posterior["alpha"])


def test_fit_many_names_the_bad_data_set():
    frames = _frames(2)
    frames[1] = frames[1].assign(loss=-1.0)
    with pytest.raises(bs.DataError, match=r"data set 1"):
        bs.fit_many(frames, **SMALL)
    with pytest.raises(bs.BayescaleError, match="non-empty"):
        bs.fit_many([], **SMALL)


@pytest.mark.slow  # many fits or worker processes
def test_vectorised_batch_agrees_with_sequential_within_monte_carlo_error(batch):
    frames, fits = batch
    vec = bs.fit_many(frames, seed=0, vectorize=True, **SMALL)
    assert all(f.settings.batched == "vectorized" for f in vec)
    for a, b in zip(fits, vec):
        ra, rb = (f.summary().set_index("parameter") for f in (a, b))
        for name in ("E", "alpha"):
            mcse = np.hypot(ra.loc[name, "sd"] / np.sqrt(ra.loc[name, "ess_bulk"]),
                            rb.loc[name, "sd"] / np.sqrt(rb.loc[name, "ess_bulk"]))
            assert abs(ra.loc[name, "mean"] - rb.loc[name, "mean"]) < 4 * mcse, name


@pytest.mark.slow  # many fits or worker processes
def test_executor_gives_the_local_draws_and_refuses_fork():
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from bayescale.inference.executor import local_executor

    frames = _frames(3)
    small = SMALL | {"warmup": 60, "draws": 60}
    local = bs.fit_many(frames, seed=4, **small)
    with local_executor(2) as pool:
        remote = bs.fit_many(frames, seed=4, executor=pool, chunk=2, **small)
    for a, b in zip(local, remote):
        assert isinstance(b, bs.Fit) and b.law.name == "power"
        np.testing.assert_array_equal(a.idata.posterior["alpha"], b.idata.posterior["alpha"])
        assert [w.kind for w in a.warnings] == [w.kind for w in b.warnings]
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        with pytest.raises(bs.BayescaleError, match="fork"):
            bs.fit_many(frames, executor=pool, **small)
    with pytest.raises(bs.BayescaleError, match="chunk"):
        bs.fit_many(frames, executor=object(), chunk=0, **small)
