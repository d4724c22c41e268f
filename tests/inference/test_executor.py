"""``bayescale.inference.executor``: retries, pools, and the same results on a real Dask ``LocalCluster``."""

import os
import threading
from concurrent.futures import Executor

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.inference import executor as runner

CALLS: dict = {}


def _flaky(key, failures):
    """Raises (as a lost worker would) on its first ``failures`` calls for ``key``."""
    CALLS[key] = CALLS.get(key, 0) + 1
    if CALLS[key] <= failures:
        raise ConnectionError(f"worker lost running {key}")
    return key.upper()


def _run(tasks, retries=1):
    done, failed = {}, {}
    runner.run_tasks(runner.InProcess(), _flaky, tasks,
                     lambda k, r, n: done.__setitem__(k, (r, n)),
                     lambda k, e, n: failed.__setitem__(k, (type(e).__name__, n)), retries=retries)
    return done, failed


def test_a_failed_task_is_run_again_once_then_reported():
    CALLS.clear()
    done, failed = _run({"a": ("a", 0), "b": ("b", 1), "c": ("c", 5)})
    assert done == {"a": ("A", 1), "b": ("B", 2)}
    assert failed == {"c": ("ConnectionError", 2)}
    CALLS.clear()
    assert _run({"c": ("c", 5)}, retries=0)[1] == {"c": ("ConnectionError", 1)}


def _refuse(_):
    raise bs.DataError("bad data is not retried")


def test_errors_of_the_data_are_not_retried():
    failed = {}
    runner.run_tasks(runner.InProcess(), _refuse, {"x": (1,)}, None,
                     lambda k, e, n: failed.__setitem__(k, n))
    assert failed == {"x": 1}


def test_executors_are_named_or_refused():
    assert isinstance(runner.resolve("serial", "t")[0], runner.InProcess)
    with pytest.raises(bs.BayescaleError, match="executor='dask'"):
        runner.resolve("dask", "t")
    with pytest.raises(bs.BayescaleError, match="concurrent.futures.Executor"):
        runner.resolve(object(), "t")
    flags = runner.worker_env(2)["XLA_FLAGS"]
    assert "intra_op_parallelism_threads=2" in flags
    # as many host devices as threads, whatever this process was given
    assert [f for f in flags.split() if "device_count" in f] == ["--xla_force_host_platform_device_count=2"]
    with pytest.raises(bs.BayescaleError, match="threads"):
        runner.worker_env(0)


def _die_first_time(marker):
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)  # the worker process dies: the pool breaks
    return os.getpid()


def test_a_broken_local_pool_is_replaced_and_its_tasks_run_again(tmp_path):
    pool = runner.local_executor(1)
    done = {}
    pool = runner.run_tasks(pool, _die_first_time, {"t": (str(tmp_path / "died"),)},
                            lambda k, r, n: done.__setitem__(k, n), None, restart=runner.restart_local)
    pool.shutdown()
    assert done == {"t": 2}


# ---- a real Dask cluster ------------------------------------------------------------------
TINY = {"law": "power", "y": "loss", "x": "x", "chains": 1, "warmup": 150, "draws": 150}


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  env=runner.worker_env(), dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c:
            yield c


def _table(tasks):
    return pd.concat([bs.datasets.simulate("power", families=1, seeds=1, seed=k).assign(task=t)
                      for k, t in enumerate(tasks)], ignore_index=True)


@pytest.mark.slow  # starts a cluster of worker processes
def test_sweep_fit_many_and_sbc_on_dask_equal_the_local_default(client):
    df = _table(["a", "b", "c"])
    sweep = {"by": "task", "progress": False, **TINY}
    pd.testing.assert_frame_equal(bs.sweep(df, executor=client.get_executor(), chunk=2, **sweep).parameters,
                                  bs.sweep(df, executor="serial", **sweep).parameters)
    frames = [g for _, g in df.groupby("task")]
    for a, b in zip(bs.fit_many(frames, seed=2, **TINY),
                    bs.fit_many(frames, seed=2, executor=client.get_executor(), chunk=2, **TINY)):
        np.testing.assert_array_equal(a.idata.posterior["alpha"], b.idata.posterior["alpha"])
    from bayescale.evaluate.sbc import design as sbc_design
    from bayescale.evaluate.sbc import sbc

    design = sbc_design("power", families=1, sizes=6, ratios=1)
    opts = {"reps": 4, "draws": 20, "seed": 3, "chains": 2, "warmup": 100, "thin": 1}
    here, there = sbc("power", design, **opts), sbc("power", design, executor=client.get_executor(),
                                                      chunk=2, **opts)
    cols = [c for c in here.ranks.columns if c not in ("seconds", "compiled")]
    pd.testing.assert_frame_equal(here.ranks[cols], there.ranks[cols])


@pytest.mark.slow  # starts a cluster of worker processes
def test_a_killed_dask_worker_leaves_no_group_missing(client, tmp_path, kill_a_worker):
    df = _table(["a", "b", "c", "d", "e", "f"])
    killed = []
    killer = threading.Thread(target=kill_a_worker, args=(
        tmp_path / "groups", lambda: list(client.run(os.getpid).values()), killed))
    killer.start()
    result = bs.sweep(df, by="task", out=tmp_path, executor=client.get_executor(), chunk=1,
                      progress=False, **TINY)
    killer.join()
    assert killed, "no worker was killed"
    # every group fitted (its task moved to a live worker) or recorded as failed; none missing
    assert list(result.groups["task"]) == list("abcdef")
    assert set(result.groups["status"]) <= {"ok", "gate", "crashed"}
    assert len(list((tmp_path / "groups").glob("*.json"))) == 6
    # rerunning the finished sweep fits nothing
    again = bs.sweep(df, by="task", out=tmp_path, executor=_Refuse(), chunk=1, progress=False, **TINY)
    pd.testing.assert_frame_equal(again.groups, result.groups)


class _Refuse(Executor):
    def submit(self, fn, /, *args, **kwargs):
        raise AssertionError("the sweep submitted a fit")


@pytest.mark.slow  # starts a cluster of worker processes
def test_sweep_on_ray_equals_the_local_default():
    ray = pytest.importorskip("ray")
    df = _table(["a", "b"])
    sweep = {"by": "task", "progress": False, "chunk": 1, **TINY}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        there = bs.sweep(df, executor=runner.RayExecutor(), **sweep)
    finally:
        ray.shutdown()
    pd.testing.assert_frame_equal(there.parameters, bs.sweep(df, executor="serial", **sweep).parameters)


@pytest.mark.slow  # starts a cluster of worker processes
def test_a_rolling_backtest_on_dask_equals_the_local_one(client):
    df = bs.datasets.simulate("power", families=1, seeds=1, seed=5)
    opts = {"split": "rolling", "cuts": 2, **TINY}
    here = bs.backtest(df, **opts)
    there = bs.backtest(df, executor=client.get_executor(), **opts)
    pd.testing.assert_frame_equal(here.per_target, there.per_target)
