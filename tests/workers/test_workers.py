"""Runs executed by `autopack worker` processes on the real PostgreSQL: many runs over several
workers, each phase executed and committed exactly once, also when a worker is killed -9 in the
middle of a phase."""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from autopack.api.app import create_app
from autopack.runs.states import RunState
from tests.executor.support import TEST_CMD, process_alive, venv_first_on_path
from tests.workers.support import WorkerFarm, worker_farm

pytestmark = pytest.mark.postgres

RUNS = 20


def assert_each_phase_once(farm: WorkerFarm, run_ids: list[str], interrupted: int = 0) -> None:
    """Every run DONE_SUCCESS; every phase one successful attempt and one commit. At most
    ``interrupted`` attempts in all were cut short (a killed worker's attempts in flight)."""
    assert farm.states() == {RunState.DONE_SUCCESS.value: len(run_ids)}, farm.logs()
    attempts = farm.attempts_per_phase()
    assert set(attempts) == {(run_id, phase) for run_id in run_ids for phase in ("p1", "p2")}
    cut_short = 0
    for key, outcomes in attempts.items():
        assert outcomes.count("success") == 1, (key, outcomes)
        assert outcomes[-1] == "success", (key, outcomes)
        cut_short += len(outcomes) - 1
        assert set(outcomes[:-1]) <= {"interrupted"}, (key, outcomes)
    assert cut_short <= interrupted, attempts
    for run_id in run_ids:
        assert farm.commits_per_phase(run_id) == {"p1": 1, "p2": 1}, run_id


def test_twenty_runs_over_two_workers_each_phase_once(monkeypatch: pytest.MonkeyPatch) -> None:
    venv_first_on_path(monkeypatch)
    with worker_farm(TEST_CMD) as farm:
        farm.start_worker(concurrency=2)
        farm.start_worker(concurrency=2)
        run_ids = farm.submit(RUNS)
        farm.wait_all_ended(timeout=240)
        assert_each_phase_once(farm, run_ids)
        # Both workers took runs.
        logs = farm.logs()
        assert all("job " in (farm.root / f"worker-{n}.log").read_text() for n in range(2)), logs


def test_a_worker_killed_mid_phase_is_taken_over(monkeypatch: pytest.MonkeyPatch) -> None:
    venv_first_on_path(monkeypatch)
    # Slower tests, so that a phase is surely in flight when the worker dies.
    with worker_farm(f"{TEST_CMD} && sleep 1") as farm:
        victim = farm.start_worker(concurrency=2)
        survivor = farm.start_worker(concurrency=2)
        run_ids = farm.submit(RUNS)
        victim_id = f":{victim.pid}:"

        def victim_mid_phase() -> bool:
            return any(
                claimed and victim_id in claimed for _, _, claimed in farm.phases_in("CI_RUNNING")
            )

        farm.wait_until(victim_mid_phase, 120, "the first worker to run a phase's tests")
        held = [
            run
            for run, _, claimed in farm.phases_in("EXECUTING", "CI_RUNNING", "GATE")
            if claimed and victim_id in claimed
        ]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        farm.wait_all_ended(timeout=300)
        assert survivor.poll() is None
        assert_each_phase_once(farm, run_ids, interrupted=len(held))
        assert held and all(run in run_ids for run in held)
        # Each run the victim held was taken over by the other worker, which resumed it.
        for run_id in held:
            resumed_by = [event["worker"] for event in farm.events(run_id, "run.resumed")]
            assert resumed_by and all(victim_id not in worker for worker in resumed_by), run_id


def test_cancel_through_the_api_stops_the_phase_on_its_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    venv_first_on_path(monkeypatch)
    with tempfile.TemporaryDirectory() as marks:
        pid_file = Path(marks) / "test.pid"
        # The test command (its baseline comes first) records its pid and sleeps.
        with worker_farm(f"echo $$ > {pid_file}; exec sleep 120", record=False) as farm:
            farm.start_worker(concurrency=1)
            farm.start_worker(concurrency=1)
            (run_id,) = farm.submit(1)
            farm.wait_until(pid_file.exists, 60, "the test command to start on a worker")
            pid = int(pid_file.read_text().split()[0])
            assert process_alive(pid)
            with TestClient(create_app(farm.settings())) as client:
                cancelled = time.monotonic()
                response = client.post(f"/api/runs/{run_id}/cancel", json={"reason": "enough"})
                assert response.status_code == 200, response.text
            farm.wait_until(lambda: not process_alive(pid), 10, "the test command to be killed")
            stopped_after = time.monotonic() - cancelled
            farm.wait_until(
                lambda: not farm.phases_in("EXECUTING", "CI_RUNNING", "GATE"),
                10,
                "the phase to be closed",
            )
            assert farm.states() == {RunState.CANCELLED.value: 1}
            assert stopped_after < 5, stopped_after


def test_sigterm_mid_phase_leaves_the_run_to_another_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A deploy stops a worker while one of its phases runs: after the grace period it exits 0,
    and the run, abandoned mid-phase, is resumed by the next worker and committed once."""
    venv_first_on_path(monkeypatch)
    with worker_farm(f"{TEST_CMD} && sleep 3") as farm:
        stopping = farm.start_worker(concurrency=1, AUTOPACK_WORKER_SHUTDOWN_SECONDS="0.5")
        (run_id,) = farm.submit(1)
        farm.wait_until(
            lambda: bool(farm.phases_in("CI_RUNNING")), 120, "a phase's tests to be running"
        )
        stopping.send_signal(signal.SIGTERM)
        assert stopping.wait(timeout=20) == 0, farm.logs()
        successor = farm.start_worker(concurrency=1)
        farm.wait_all_ended(timeout=180)
        assert_each_phase_once(farm, [run_id], interrupted=1)
        resumed_by = [event["worker"] for event in farm.events(run_id, "run.resumed")]
        assert resumed_by and all(f":{successor.pid}:" in worker for worker in resumed_by), (
            farm.logs()
        )
