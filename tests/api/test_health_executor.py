"""/health and /ready say what this server's executor threads do: `disabled` with none, else
`in_process` with how many threads and how many are executing a run now."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from autopack.api.app import create_app
from autopack.api.health import executor_health
from autopack.demo import CASSETTE_FILE
from autopack.executor import worker
from autopack.executor.worker import ExecutorPool
from autopack.runs.states import RunState
from tests.conftest import make_settings


def test_no_executor_threads_is_disabled(client: TestClient) -> None:
    for path in ("/health", "/ready"):
        body = client.get(path).json()
        assert body["executor"] == {
            "mode": "disabled",
            "threads": 0,
            "busy": 0,
            "workers": None,
            "waiting": None,
        }


def test_executor_threads_are_reported(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        database_url, tmp_path / "runs", replay_cassette=CASSETTE_FILE, executor_threads=2
    )
    with TestClient(create_app(settings)) as client:
        health = client.get("/health")
        ready = client.get("/ready")
    assert health.status_code == 200
    assert health.json()["executor"] == {
        "mode": "in_process",
        "threads": 2,
        "busy": 0,
        "workers": None,
        "waiting": None,
    }
    assert ready.json()["executor"] == {
        "mode": "in_process",
        "threads": 2,
        "busy": 0,
        "workers": None,
        "waiting": None,
    }


class _BlockingExecutor:
    """Stands in for executing a run (a unit test of the pool's count): blocks until released."""

    release = threading.Event()
    started = threading.Semaphore(0)

    @staticmethod
    def execute(env: Any, run_id: str) -> RunState:
        _BlockingExecutor.started.release()
        _BlockingExecutor.release.wait(10)
        return RunState.DONE_SUCCESS


def test_busy_counts_the_threads_executing_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "execute_if_free", _BlockingExecutor.execute)
    handed_out = iter(["run-a"])
    monkeypatch.setattr(ExecutorPool, "_next_run", lambda self: next(handed_out, None))
    pool = ExecutorPool(env=None, threads=2, poll_seconds=0.01)  # type: ignore[arg-type]
    assert executor_health(pool).model_dump() == {
        "mode": "in_process",
        "threads": 2,
        "busy": 0,
        "workers": None,
        "waiting": None,
    }
    pool.start()
    try:
        assert _BlockingExecutor.started.acquire(timeout=10)
        assert executor_health(pool).busy == 1
        _BlockingExecutor.release.set()
        deadline = time.monotonic() + 10
        while pool.busy and time.monotonic() < deadline:
            time.sleep(0.01)
        assert executor_health(pool).busy == 0
    finally:
        _BlockingExecutor.release.set()
        pool.stop()
    assert executor_health(None).model_dump() == {
        "mode": "disabled",
        "threads": 0,
        "busy": 0,
        "workers": None,
        "waiting": None,
    }
