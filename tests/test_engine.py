"""The engine's costs that need no cluster to test: how often it asks the scheduler for its workers, and
what a run's client process imports."""

from __future__ import annotations

import subprocess
import sys

from semg_hht import engine


class CountingClient:
    """Stands in for a Dask client: a cluster of ``workers`` workers that counts the scheduler's answers."""

    def __init__(self, workers: int):
        self.workers = workers
        self.asked = 0

    def scheduler_info(self, n_workers: int = 5) -> dict:
        self.asked += 1
        return {"workers": {f"tcp://w{index}": {} for index in range(self.workers)}}


def test_the_workers_are_counted_at_most_every_poll_and_a_growing_cluster_is_followed(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(engine.time, "monotonic", lambda: now[0])
    client = CountingClient(workers=2)
    dask_engine = engine.DaskEngine(client, "tcp://scheduler:8786", "test")

    assert dask_engine._tasks_in_flight() == 2 * engine.TASKS_IN_FLIGHT_PER_WORKER
    client.workers = 10  # jobs of a batch system start: workers join
    now[0] += engine.POLL_S / 2
    assert dask_engine._tasks_in_flight() == 2 * engine.TASKS_IN_FLIGHT_PER_WORKER
    assert client.asked == 1
    now[0] += engine.POLL_S / 2
    assert dask_engine._tasks_in_flight() == 10 * engine.TASKS_IN_FLIGHT_PER_WORKER
    assert client.asked == 2


def test_planning_a_conversion_does_not_import_the_filters():
    """A run's client process only plans (its workers transform), so it does without scipy.signal's
    second of import time, which a local cluster's start would otherwise add to every run."""
    code = "import sys, semg_hht.cli.hht, semg_hht.conversion.workflow; print('scipy.signal' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
