"""`autopack serve` executes queued runs in background threads: a run submitted through the API
ends DONE_SUCCESS with nobody calling the executor, and the API's cancel stops a running one."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from autopack.api.app import create_app
from autopack.demo import CASSETTE_FILE, PLAN_FILE, prepare_project
from autopack.settings import Settings
from tests.conftest import make_settings
from tests.executor.support import venv_first_on_path


@pytest.fixture(autouse=True)
def _venv_python(monkeypatch: pytest.MonkeyPatch) -> None:
    venv_first_on_path(monkeypatch)


def _served(database_url: str, tmp_path: Path) -> Settings:
    """A server that executes runs itself, with the demo's recorded replies."""
    return make_settings(
        database_url,
        tmp_path / "runs",
        replay_cassette=CASSETTE_FILE,
        executor_threads=1,
        heartbeat_interval_seconds=0.2,
    )


def _wait_for(client: TestClient, run_id: str, done: set[str], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"/api/runs/{run_id}").json()
        if run["state"] in done:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {run['state']} after {timeout} s")


def test_a_run_submitted_to_the_api_is_executed_in_the_background(
    database_url: str, tmp_path: Path
) -> None:
    repo = prepare_project(tmp_path / "textkit")
    settings = _served(database_url, tmp_path)
    plan = yaml.safe_load(PLAN_FILE.read_text())
    plan["run"]["run_id"] = "served-demo"
    with TestClient(create_app(settings)) as client:
        created = client.post("/api/projects", json={"name": "demo", "repo": str(repo)})
        assert created.status_code == 201, created.text
        assert client.post("/api/runs", json=plan).status_code == 201
        run = _wait_for(client, "served-demo", {"DONE_SUCCESS", "DONE_FAILED_ENVIRONMENT"})
        assert run["state"] == "DONE_SUCCESS", run.get("failure_reason")
        assert run["phases_complete"] == 4
        types = [
            e["type"] for e in client.get("/api/runs/served-demo/events?limit=500").json()["items"]
        ]
        assert "run.created" in types and types[-1] == "run.state_changed"


def test_the_api_cancel_stops_a_phase_running_in_the_background(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = prepare_project(tmp_path / "textkit")
    settings = _served(database_url, tmp_path)
    plan = yaml.safe_load(PLAN_FILE.read_text())
    plan["run"]["run_id"] = "to-cancel"
    # The tests take a minute (a `python` that sleeps first; the plan, and so the recorded
    # prompts, stay as they are): the cancel must not wait for them.
    shims = tmp_path / "shims"
    shims.mkdir()
    shim = shims / "python"
    shim.write_text(f'#!/bin/sh\nsleep 60\nexec {sys.executable} "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    with TestClient(create_app(settings)) as client:
        client.post("/api/projects", json={"name": "demo", "repo": str(repo)})
        assert client.post("/api/runs", json=plan).status_code == 201
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            phase = client.get("/api/runs/to-cancel").json()["tiers"][0]["phases"][0]
            if phase["state"] == "EXECUTING":
                break
            time.sleep(0.1)
        # The phase's baseline, the slow test command, runs before its first model call.
        assert phase["state"] == "EXECUTING"
        time.sleep(0.5)
        started = time.monotonic()
        assert client.post("/api/runs/to-cancel/cancel").status_code == 200
        while time.monotonic() - started < 20:
            phase = client.get("/api/runs/to-cancel").json()["tiers"][0]["phases"][0]
            if phase["state"] == "FAILED":
                break
            time.sleep(0.1)
        assert phase["state"] == "FAILED", phase
        assert "cancelled" in (phase["failure_reason"] or "")
        assert client.get("/api/runs/to-cancel").json()["state"] == "CANCELLED"


def test_a_server_without_any_key_starts_and_ends_a_run_that_needs_one_naming_it(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path / "runs", executor_threads=1)
    plan = yaml.safe_load(PLAN_FILE.read_text())
    plan["run"]["run_id"] = "keyless"
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").json()["status"] == "healthy"
        client.post("/api/projects", json={"name": "demo", "repo": str(tmp_path)})
        assert client.post("/api/runs", json=plan).status_code == 201
        run = _wait_for(client, "keyless", {"DONE_FAILED_ENVIRONMENT", "DONE_SUCCESS"})
    assert run["failure_reason"].startswith("cannot start: ANTHROPIC_API_KEY is not set")
    assert run["budget"]["tokens_used"] == 0 and run["started_at"] is not None
