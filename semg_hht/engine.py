"""Fanning work out on Dask: in this process, on a local cluster, or on a running scheduler by address.

Every fan-out of the suite (converting recordings, simulating the sample data) hands its tasks
to :func:`open_engine` and reads the outcomes as they finish; no scheduler of our own. Three
engines, one interface (:class:`Engine`):

- one worker: the tasks run one after another in this process (no cluster is started);
- ``workers`` N > 1: a Dask ``LocalCluster`` of N single-threaded worker processes, shut down
  when the block ends, however it ends (Ctrl-C included);
- ``scheduler`` ADDRESS: a Dask cluster that is already running (``dask scheduler`` and
  ``dask worker`` by hand, dask-jobqueue's ``SLURMCluster``, ...). Its workers must share the
  client's file system and have this package installed.

A task is a module-level function applied to one item; it must return small results (names,
counts, reasons), never arrays: the workers write what they make themselves. A worker that
dies is replaced by the cluster and its tasks run again elsewhere (Dask retries a task up to
``distributed.scheduler.allowed-failures`` times before it gives up on it: that task's outcome
is then an error, the run goes on). A task that raises is not retried: its exception is its
outcome. A lost scheduler ends the run with :class:`SchedulerError`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from semg_hht.errors import SchedulerError

logger = logging.getLogger(__name__)

IN_PROCESS = "in-process"
"""The worker name of tasks run in the client's own process."""
TASKS_IN_FLIGHT_PER_WORKER = 4
"""Tasks handed to the scheduler ahead, per worker: enough to keep every worker busy, few enough
that the client's memory does not grow with the number of tasks."""
CONNECT_TIMEOUT_S = 10
"""How long to try to reach a scheduler at the start."""
WORKER_WAIT_S = 120
"""How long a run waits for a first worker to join the scheduler, or for one to come back
after every worker has left."""
POLL_S = 2.0
"""How often a run that waits for results checks that the scheduler and its workers are there."""
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
}
"""Dask settings of the local cluster: what the engine does beside the tasks, made quieter. The
profiler samples the running task's stack 100 times a second for the dashboard's profile page; the
tick (every 20 ms by default) measures how long the event loop was blocked; the system monitor
(every 0.5 s) samples CPU and memory for the dashboard's plots. On this project's 2-core machine the
three together took 7 % of a conversion's wall time (docs/running_at_scale.md)."""


@dataclass(frozen=True)
class TaskOutcome:
    """What one task did.

    ``value`` is the function's result, or None when it failed; ``error`` then says why in
    words and ``exception`` holds what the task raised (None where the task never ended, e.g.
    its worker died each time it ran it). ``worker`` is the worker's address, or
    :data:`IN_PROCESS`; ``seconds`` the time the function ran.
    """

    index: int
    value: Any = None
    error: str | None = None
    exception: BaseException | None = None
    worker: str = IN_PROCESS
    seconds: float = 0.0


class Engine(Protocol):
    """Runs tasks and yields their outcomes as they finish (in any order)."""

    description: str
    """What runs the tasks, for the run's log: ``in-process``, ``local Dask cluster of 2 workers``, ..."""

    @property
    def workers(self) -> int:
        """How many tasks can run at once."""
        ...

    def run(self, function: Callable[[Any], Any], items: Sequence[Any], name: str) -> Iterator[TaskOutcome]:
        """``function(item)`` for each item; one outcome per item, in the order they finish."""
        ...

    def check_access(self, read_path: str, write_folder: str) -> None:
        """Raise :class:`SchedulerError` naming the worker and the path where a worker cannot read
        ``read_path`` or write into ``write_folder``."""
        ...


def _timed(function: Callable[[Any], Any], item: Any) -> tuple[Any, str, float]:
    """``function(item)``, the worker that ran it and the seconds it took (runs on the worker)."""
    started = time.perf_counter()
    value = function(item)
    return value, _worker_address(), time.perf_counter() - started


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):  # not in a Dask worker
        return IN_PROCESS


def access_problem(read_path: str, write_folder: str) -> str | None:
    """Why this process cannot read ``read_path`` (a file or folder) or write into ``write_folder``; None if it can.

    Runs on each worker before a run: a worker on a machine without the shared file system (or
    without permission) would otherwise fail every file it is given.
    """
    if os.path.isdir(read_path):
        try:
            with os.scandir(read_path):
                pass
        except OSError as error:
            return f"cannot read {read_path}: {error.strerror or error}"
    elif not os.access(read_path, os.R_OK):
        return f"cannot read {read_path}: {'no permission' if os.path.exists(read_path) else 'not found'}"
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".semg-hht-access-", dir=write_folder)
    except OSError as error:
        return f"cannot write into {write_folder}: {error.strerror or error}"
    os.close(descriptor)
    os.unlink(probe)
    return None


class InProcessEngine:
    """Runs each task in this process, one after another."""

    description = IN_PROCESS

    @property
    def workers(self) -> int:
        return 1

    def run(self, function: Callable[[Any], Any], items: Sequence[Any], name: str) -> Iterator[TaskOutcome]:
        for index, item in enumerate(items):
            started = time.perf_counter()
            try:
                value = function(item)
            except Exception as error:
                yield TaskOutcome(index, error=_raised(error), exception=error)
                continue
            yield TaskOutcome(index, value, seconds=time.perf_counter() - started)

    def check_access(self, read_path: str, write_folder: str) -> None:
        """The client's own access is checked by the run itself."""


def _raised(error: BaseException) -> str:
    return f"the task failed ({type(error).__name__}: {error})"


class DaskEngine:
    """Runs tasks on a Dask cluster through ``client``; ``address`` names the scheduler in messages."""

    def __init__(self, client: Any, address: str, description: str):
        self.client = client
        self.address = address
        self.description = description
        self._capacity = (0, -math.inf)  # (tasks in flight, when the workers were counted: time.monotonic())

    @property
    def workers(self) -> int:
        return max(1, len(self.client.scheduler_info(n_workers=-1)["workers"]))

    def check_access(self, read_path: str, write_folder: str) -> None:
        problems = self.client.run(access_problem, os.path.abspath(read_path), os.path.abspath(write_folder))
        for worker, problem in sorted(problems.items()):
            if problem:
                raise SchedulerError(
                    f"worker {worker} of the Dask scheduler at {self.address} {problem}: workers must share "
                    "the client's file system (the same paths) and be allowed to read the input and write the output"
                )

    def run(self, function: Callable[[Any], Any], items: Sequence[Any], name: str) -> Iterator[TaskOutcome]:
        key = f"{name}-{uuid.uuid4().hex[:8]}"
        pending = iter(enumerate(items))
        running: dict[Any, int] = {}  # future -> item index
        try:
            while True:
                self._guarded(self._submit_more, function, pending, running, key)
                if not running:
                    return
                for future in self._guarded(self._wait_for_some, running):
                    yield self._guarded(self._outcome, future, running.pop(future))
        finally:
            if running:  # the run stops early (an error, Ctrl-C): the scheduler drops its tasks
                self._cancel(list(running))

    def _guarded(self, step: Callable[..., Any], *args: Any) -> Any:
        """``step(*args)``; a failure of the connection to the scheduler becomes a :class:`SchedulerError`,
        wherever it surfaces (a submission, a wait, fetching a result)."""
        try:
            return step(*args)
        except SchedulerError:
            raise
        except (Exception, asyncio.CancelledError) as error:
            # OSError: distributed's CommClosedError and the socket's own errors; cancelled futures: the
            # client cancels every future when it loses the scheduler.
            if isinstance(error, OSError) or "Cancelled" in type(error).__name__ or self.client.status != "running":
                raise self._lost() from None
            raise

    def _cancel(self, futures: list[Any]) -> None:
        try:
            self.client.cancel(futures)
        except Exception:  # the scheduler is gone: nothing is left to cancel
            logger.debug("cancelling the Dask tasks failed", exc_info=True)

    def _submit_more(
        self, function: Callable[[Any], Any], pending: Iterator[tuple[int, Any]], running: dict[Any, int], key: str
    ) -> None:
        capacity = self._tasks_in_flight()
        for index, item in pending:
            future = self.client.submit(_timed, function, item, pure=False, key=f"{key}-{index}")
            running[future] = index
            if len(running) >= capacity:
                return

    def _tasks_in_flight(self) -> int:
        """:data:`TASKS_IN_FLIGHT_PER_WORKER` per worker, the workers counted at most every :data:`POLL_S`:
        a count asks the scheduler, and a cluster that grows or shrinks (dask-jobqueue's workers joining
        as their jobs start) is followed closely enough at that pace."""
        count, counted_at = self._capacity
        now = time.monotonic()
        if now - counted_at >= POLL_S:
            count = TASKS_IN_FLIGHT_PER_WORKER * self.workers
            self._capacity = (count, now)
        return count

    def _wait_for_some(self, running: dict[Any, int]) -> set[Any]:
        """The finished futures among ``running`` (at least one); raises :class:`SchedulerError` if the
        scheduler has no worker for :data:`WORKER_WAIT_S`."""
        from distributed import wait

        no_workers_since: float | None = None
        while True:
            try:
                done, _ = wait(list(running), timeout=POLL_S, return_when="FIRST_COMPLETED")
            except (TimeoutError, asyncio.TimeoutError):
                done = set()
            if any(future.status == "cancelled" for future in done) or self.client.status != "running":
                raise self._lost()
            if done:
                return set(done)
            no_workers_since = self._check_workers(no_workers_since)

    def _check_workers(self, no_workers_since: float | None) -> float | None:
        if self.client.scheduler_info(n_workers=-1)["workers"]:
            return None
        now = time.monotonic()
        if no_workers_since is not None and now - no_workers_since > WORKER_WAIT_S:
            raise SchedulerError(
                f"the Dask scheduler at {self.address} has had no workers for {WORKER_WAIT_S} s; "
                "start workers, then run again (finished files are skipped)"
            )
        return no_workers_since if no_workers_since is not None else now

    def _lost(self) -> SchedulerError:
        return SchedulerError(
            f"lost the connection to the Dask scheduler at {self.address}; "
            "what was written stays, and running again skips finished files"
        )

    def _outcome(self, future: Any, index: int) -> TaskOutcome:
        if future.status == "finished":
            value, worker, seconds = future.result()
            return TaskOutcome(index, value, worker=worker, seconds=seconds)
        error = future.exception()
        if type(error).__name__ == "KilledWorker":
            return TaskOutcome(index, error="the worker processes that ran it died each time (out of memory?)")
        return TaskOutcome(index, error=_raised(error), exception=error)


@contextmanager
def open_engine(workers: int | None, scheduler: str | None, n_tasks: int) -> Iterator[Engine]:
    """The engine for a run of ``n_tasks`` tasks: a running scheduler, a local cluster, or this process.

    Parameters
    ----------
    workers : int, optional
        Local worker processes (default: the usable CPU cores), at most one per task; with one,
        the tasks run in this process. Ignored with ``scheduler``.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``).

    Raises
    ------
    SchedulerError
        ``scheduler`` cannot be reached, or no worker joins it within :data:`WORKER_WAIT_S`.
    """
    if scheduler is not None:
        with _quiet_dask(), _remote_client(scheduler) as engine:
            yield engine
        return
    from semg_hht.cpus import available_cpus

    count = max(1, min(workers or available_cpus(), n_tasks))
    if count == 1:
        yield InProcessEngine()
        return
    with _quiet_dask(), _local_client(count) as engine:
        yield engine


@contextmanager
def _remote_client(address: str) -> Iterator[DaskEngine]:
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, asyncio.TimeoutError, ValueError) as error:
        raise SchedulerError(f"cannot reach a Dask scheduler at {address}: {error}") from None
    try:
        logger.info(f"Dask scheduler: {address}; waiting for workers")
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except (TimeoutError, asyncio.TimeoutError):
            raise SchedulerError(f"no worker joined the Dask scheduler at {address} in {WORKER_WAIT_S} s") from None
        engine = DaskEngine(client, address, f"Dask scheduler {address}")
        engine.description += f" ({engine.workers} worker{'s' if engine.workers != 1 else ''} at the start)"
        _log_dashboard(client)
        yield engine
    finally:
        _close(client)


@contextmanager
def _children_ignore_interrupts() -> Iterator[None]:
    """Processes started in the block ignore Ctrl-C: it reaches every process of a terminal's group, and
    this process alone ends the workers (a signal ignored when a process starts stays ignored, on every
    platform). Only the main thread may change signal handlers; elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)


@contextmanager
def _main_script_not_rerun() -> Iterator[None]:
    """Within the block, spawned processes do not run the main script again where it is not a file.

    Worker processes are spawned, and a spawned process re-imports the main script from its path
    (``__main__.__file__``). A script read from standard input (``python - < run.py``) has the path
    ``<stdin>``, which does not exist, and its workers would fail to start; they need nothing from
    it (tasks are functions of the package), so the path is hidden while they start.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None or os.path.isfile(path):
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


@contextmanager
def _local_client(count: int) -> Iterator[DaskEngine]:
    import dask
    from distributed import Client, LocalCluster

    # The scheduler and the nannies read it as they start, and the nannies hand it to their workers,
    # restarted ones included.
    with _children_ignore_interrupts(), _main_script_not_rerun(), dask.config.set(LOCAL_CLUSTER_CONFIG):
        cluster = LocalCluster(
            n_workers=count,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # any free port: runs side by side must not compete for 8787
            silence_logs=logging.CRITICAL,
        )
    try:
        client = Client(cluster)
        try:
            _log_dashboard(client)
            yield DaskEngine(client, str(cluster.scheduler_address), f"local Dask cluster of {count} workers")
        finally:
            _close(client)
    finally:
        cluster.close(timeout=10)


def _log_dashboard(client: Any) -> None:
    """Log the dashboard's address where it answers: its pages need bokeh, which this package does not
    require, and without it the scheduler serves only its health and metrics pages."""
    if "dashboard" not in client.scheduler_info(n_workers=0).get("services", {}):
        return
    link = client.dashboard_link
    try:
        with urllib.request.urlopen(link, timeout=2) as response:
            # Without bokeh the page is there, but only to say that bokeh is missing.
            served = response.status == 200 and b"needs bokeh" not in response.read(4096)
    except (OSError, ValueError):
        served = False
    if served:
        logger.info(f"Dask dashboard: {link}")
    else:
        logger.info("Dask dashboard: none (it needs bokeh installed where the scheduler runs)")


def _close(client: Any) -> None:
    try:
        client.close(timeout=5)
    except Exception:  # the scheduler is gone already: nothing left to close
        logger.debug("closing the Dask client failed", exc_info=True)


@contextmanager
def _quiet_dask() -> Iterator[None]:
    """Dask's own records (worker restarts, a lost scheduler's tracebacks) stay out of the run's stderr:
    the run reports what they mean itself, once, in its own words."""
    import distributed  # noqa: F401 - sets up its loggers, whose levels are then changed here

    names = ["distributed"] + [name for name in logging.root.manager.loggerDict if name.startswith("distributed.")]
    loggers = [logging.getLogger(name) for name in names]
    levels = [each.level for each in loggers]
    for each in loggers:
        each.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for each, level in zip(loggers, levels, strict=True):
            each.setLevel(level)
