"""PostgreSQL restarted under working workers: they reconnect and every run still ends with each
phase committed once.

This restarts the machine's PostgreSQL server, which every other PostgreSQL test shares, so it
carries the ``restarts_postgres`` marker: ``scripts/test`` leaves it out of the parallel run and
runs it alone afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from autopack.runs.states import RunState
from tests.executor.support import TEST_CMD, venv_first_on_path
from tests.workers.support import worker_farm
from tests.workers.test_workers import RUNS, assert_each_phase_once

pytestmark = [pytest.mark.postgres, pytest.mark.restarts_postgres]


def _cluster() -> tuple[str, str]:
    """The version and name of the local cluster that `pg_ctlcluster` manages."""
    versions = sorted(os.listdir("/etc/postgresql")) if Path("/etc/postgresql").is_dir() else []
    if shutil.which("pg_ctlcluster") is None or not versions:
        pytest.skip("pg_ctlcluster is not installed here (Debian's postgresql-common)")
    if os.geteuid() != 0:
        pytest.skip("restarting the PostgreSQL cluster needs root (CI runs as root)")
    return versions[-1], "main"


def test_workers_reconnect_after_postgresql_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    version, name = _cluster()
    venv_first_on_path(monkeypatch)
    with worker_farm(f"{TEST_CMD} && sleep 1") as farm:
        farm.start_worker(concurrency=2)
        farm.start_worker(concurrency=2)
        run_ids = farm.submit(RUNS)

        def some_done_some_not() -> bool:
            states = farm.states()
            return states[RunState.DONE_SUCCESS.value] >= 2 and states[RunState.QUEUED.value] > 2

        farm.wait_until(some_done_some_not, 120, "the first runs to finish")
        in_flight = len(farm.phases_in("EXECUTING", "CI_RUNNING", "GATE"))
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        farm.wait_all_ended(timeout=300)
        assert all(worker.poll() is None for worker in farm.workers), farm.logs()
        # A phase whose database write was cut by the restart loses that attempt, at most.
        assert_each_phase_once(farm, run_ids, interrupted=max(in_flight, 4))
        # Each worker lost its database and connected again.
        logs = [path.read_text(errors="replace") for path in sorted(farm.root.glob("worker-*.log"))]
        assert len(logs) == 2 and all("reconnecting" in log for log in logs), farm.logs()
