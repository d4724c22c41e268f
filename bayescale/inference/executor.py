"""Where many fits run: in this process, a local pool of spawned workers, or a cluster.

Every many-fit workload (:func:`bayescale.fit_many`, :func:`bayescale.sweep`,
:func:`bayescale.evaluate.sbc.sbc`) hands its tasks to one function, :func:`run_tasks`,
which accepts any :class:`concurrent.futures.Executor`:

- ``"serial"``: this process, one task after another (no crash isolation);
- ``"local"`` (or :func:`local_executor`): a process pool sized to the cores,
  workers spawned with one XLA thread each;
- a Dask ``Client.get_executor()`` (``LocalCluster`` or a scheduler address),
  with workers started with :func:`worker_env` (see the README);
- :class:`RayExecutor`: Ray tasks on a Ray cluster.

Tasks receive data frames, the law as TOML text and plain options, never JAX
closures, so any executor that can pickle a DataFrame can run them.  A task
whose worker dies is submitted again ``retries`` times, then reported.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, wait

from ..errors import BayescaleError

NAMES = ("serial", "local")


def worker_env(threads: int = 1) -> dict:
    """Environment for a worker process that runs fits: XLA limited to ``threads`` threads
    and as many host devices.

    JAX reads these flags when it starts, so they must be in the worker's
    environment before it imports bayescale: pass them to the pool or cluster
    that starts the workers, e.g. ``LocalCluster(env=worker_env())``.  Workers
    share this machine's persistent compilation cache (``BAYESCALE_JAX_CACHE``).

    Examples
    --------
    >>> flags = worker_env()["XLA_FLAGS"]
    >>> "intra_op_parallelism_threads=1" in flags, "device_count=1" in flags
    (True, True)
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise BayescaleError(f"worker_env: threads must be a positive integer, got {threads!r}.")
    multi = "true" if threads > 1 else "false"
    # one host device per thread: a worker runs as many chains at once as it has threads
    # (bayescale.inference.nuts.chain_program); this process's own device count must not pass on
    inherited = [f for f in os.environ.get("XLA_FLAGS", "").split()
                 if not f.startswith("--xla_force_host_platform_device_count")]
    flags = " ".join([*inherited, f"--xla_force_host_platform_device_count={threads}",
                      f"--xla_cpu_multi_thread_eigen={multi}", f"intra_op_parallelism_threads={threads}"])
    env = {"XLA_FLAGS": flags}
    for name in ("BAYESCALE_JAX_CACHE", "BAYESCALE_X64", "XDG_CACHE_HOME"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def local_executor(workers: int | None = None):
    """A process pool for many fits: spawned workers, each with one XLA thread.

    Workers are spawned (JAX is not fork-safe) with :func:`worker_env`, so
    ``workers`` processes share the cores instead of each using all of them.
    ``workers`` defaults to the number of cores.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = workers or os.cpu_count() or 1
    saved = {k: os.environ.get(k) for k in ("XLA_FLAGS",)}
    os.environ.update(worker_env())  # inherited by the workers started below; this process's JAX
    try:                             # has read its flags already
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        pool.submit(int).result()  # a spawn pool starts all its workers at the first task
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return pool


def dask_client(address: str | None = None, workers: int | None = None):
    """A Dask ``distributed.Client``: to the scheduler at ``address``, or to a new ``LocalCluster``.

    The local cluster has ``workers`` worker processes (default: the cores),
    one thread each, started with :func:`worker_env`.  Pass
    ``client.get_executor()`` as ``executor=``; close the client when done.
    Workers of a remote cluster need bayescale installed and should be
    started with :func:`worker_env` in their environment.
    """
    try:
        import distributed
    except ImportError:
        raise BayescaleError("Dask is not installed: pip install 'bayescale[dask]'.") from None
    if address is not None:
        return distributed.Client(address)
    # a Client given cluster options starts its own LocalCluster and stops it when closed
    return distributed.Client(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                              processes=True, env=worker_env(), dashboard_address=None)


class RayExecutor(Executor):
    """Runs each task as a Ray task: Ray has no ``concurrent.futures`` executor of its own, but
    each task's ``ObjectRef.future()`` is a :class:`concurrent.futures.Future`.

    Workers get :func:`worker_env` through the task's ``runtime_env``.  Call
    ``ray.init(...)`` (or let the first task start a local Ray) before use.
    """

    def __init__(self, threads: int = 1):
        try:
            import ray
        except ImportError:
            raise BayescaleError("Ray is not installed: pip install ray.") from None
        self._ray, self._env = ray, worker_env(threads)

    def submit(self, fn, /, *args, **kwargs) -> Future:
        task = self._ray.remote(fn).options(num_cpus=1, max_retries=0,
                                            runtime_env={"env_vars": self._env})
        return task.remote(*args, **kwargs).future()


class InProcess(Executor):
    """Runs each task in this process when it is submitted (``executor="serial"``)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)
        return future


def resolve(executor, who: str, workers: int | None = None) -> tuple[Executor, bool, object]:
    """The executor named or given, whether the caller owns it (and must shut it down), and how to
    replace it when it breaks (``restart`` of :func:`run_tasks`; only a pool made here)."""
    if executor is None or executor == "serial":
        return InProcess(), True, None
    if executor == "local":
        return local_executor(workers), True, restart_local
    if isinstance(executor, str):
        raise BayescaleError(f"{who}: executor={executor!r}; use 'serial', 'local' or a "
                             f"concurrent.futures.Executor (e.g. a Dask Client.get_executor()).")
    if not hasattr(executor, "submit"):
        raise BayescaleError(f"{who}: executor must be a concurrent.futures.Executor, got "
                             f"{type(executor).__name__}.")
    context = getattr(executor, "_mp_context", None)
    if context is not None and context.get_start_method() == "fork":
        raise BayescaleError(f"{who}: the executor forks its worker processes, and JAX is not "
                             "fork-safe; use bayescale.inference.executor.local_executor() or a pool with "
                             "mp_context=multiprocessing.get_context('spawn').")
    return executor, False, None


def run_tasks(executor, fn, tasks: dict, on_done, on_failed, retries: int = 1, restart=None,
              retry_if=lambda exc: not isinstance(exc, BayescaleError)):
    """Run ``fn(*tasks[key])`` for every key, calling back as each task finishes.

    Parameters
    ----------
    executor : Executor
    fn : callable
        A module-level function (it is pickled by reference).
    tasks : dict
        Key -> argument tuple.
    on_done : callable
        ``on_done(key, result, attempts)`` as each task returns.
    on_failed : callable
        ``on_failed(key, exception, attempts)`` for a task that raised on its
        last attempt.
    retries : int
        A task that raised (its worker died, or the cluster lost it) is
        submitted again up to this many times, when ``retry_if(exception)``.
    restart : callable, optional
        ``restart(executor) -> executor``: a fresh pool when this one broke (a
        process pool whose worker died fails every pending task); without it a
        broken pool's tasks fail.

    Returns
    -------
    Executor
        The executor in use at the end (a fresh one after a restart).
    """
    attempts = dict.fromkeys(tasks, 0)
    pending: dict = {}
    queue = list(tasks)
    # in this process a task runs when submitted: one at a time, so each is reported as it ends
    window = 1 if isinstance(executor, InProcess) else len(queue)

    def submit(key):
        attempts[key] += 1
        try:
            pending[executor.submit(fn, *tasks[key])] = (key, executor)
        except (BrokenExecutor, RuntimeError) as exc:  # a pool broken or shut down refuses new tasks
            failed: Future = Future()
            failed.set_exception(exc)
            pending[failed] = (key, executor)

    while queue or pending:
        while queue and len(pending) < window:
            submit(queue.pop(0))
        done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for future in done:
            key, used = pending.pop(future)
            exc = future.exception()
            if exc is None:
                on_done(key, future.result(), attempts[key])
                continue
            if isinstance(exc, BrokenExecutor) and restart is not None and used is executor:
                executor = restart(executor)
            if attempts[key] <= retries and retry_if(exc):
                submit(key)
            else:
                on_failed(key, exc, attempts[key])
    return executor


def check_chunk(chunk, who: str) -> int:
    """``chunk`` (tasks' size) if it is a positive integer, else a clear error."""
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise BayescaleError(f"{who}: chunk must be a positive integer, got {chunk!r}.")
    return chunk


def restart_local(executor) -> Executor:
    """A fresh local pool in place of a broken one, of the same size."""
    workers = getattr(executor, "_max_workers", None)
    executor.shutdown(wait=False, cancel_futures=True)
    return local_executor(workers)


__all__ = ["InProcess", "RayExecutor", "dask_client", "local_executor", "run_tasks", "worker_env"]
