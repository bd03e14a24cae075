"""Structured logs: JSON lines that parse, the request id on every record of a request, run_id
and phase_id on the executor's records, secrets never in the output, and logging configured
only where it should be."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from autopack.api.app import create_app
from autopack.db.engine import create_db_engine, create_session_factory
from autopack.observability.logging import (
    HANDLER_NAME,
    command_log_level,
    ensure_logging,
    log_context,
)
from autopack.settings import Settings
from tests.cli.support import clean_env, make_invoke
from tests.conftest import make_settings
from tests.observability.conftest import run_small_plan

CANARY_ANTHROPIC = "canary-anthropic-4f1d2c9e8b7a"
CANARY_OPENAI = "canary-openai-0a9b8c7d6e5f"


@pytest.fixture
def dialect() -> str:
    return "sqlite"


def _json_settings(settings: Settings, **overrides: Any) -> Settings:
    return settings.model_copy(update={"log_format": "json", **overrides})


def test_request_records_are_json_and_carry_the_request_id(
    settings: Settings, capture_logs: Any
) -> None:
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        logs = capture_logs(_json_settings(settings))
        assert client.get("/api/runs", headers={"X-Request-ID": "req-json-1"}).status_code == 200
        assert client.get("/boom", headers={"X-Request-ID": "req-json-2"}).status_code == 500

    records = logs.json_lines()
    access = [r for r in records if r.get("logger") == "autopack.http"]
    (listed,) = [r for r in access if r["request_id"] == "req-json-1"]
    assert listed["level"] == "info"
    assert listed["method"] == "GET" and listed["path"] == "/api/runs"
    assert listed["status"] == 200 and listed["duration_ms"] >= 0
    assert listed["message"] == "GET /api/runs 200"
    assert listed["timestamp"].endswith("Z")
    # A record logged by the app while handling the request (the unhandled error) has it too,
    # with the traceback as text.
    (error,) = [r for r in records if r.get("logger") == "autopack.api.errors"]
    assert error["request_id"] == "req-json-2"
    assert error["level"] == "error"
    assert "RuntimeError: internals" in error["exception"]
    # Nothing stays bound after the request.
    assert "request_id" not in log_context()


def test_console_format_is_readable_and_carries_the_request_id(
    settings: Settings, capture_logs: Any
) -> None:
    with TestClient(create_app(settings)) as client:
        logs = capture_logs(settings)  # console is the default
        client.get("/api/runs", headers={"X-Request-ID": "req-console"})
    (line,) = [line for line in logs.text.splitlines() if "GET /api/runs 200" in line]
    assert "request_id=req-console" in line
    assert "[info" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_executor_records_carry_run_id_and_phase_id(
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capture_logs: Any,
) -> None:
    logs = capture_logs(_json_settings(settings))

    run_id = run_small_plan(settings, session_factory, tmp_path, monkeypatch)

    records = [r for r in logs.json_lines() if r.get("logger", "").startswith("autopack.")]
    started = [r for r in records if r["message"] == "phase started"]
    assert started and all(r["run_id"] == run_id and r["phase_id"] == "p1" for r in started)
    (ended,) = [r for r in records if r["message"].startswith("run ended")]
    assert ended["run_id"] == run_id and ended["state"] == "DONE_SUCCESS"
    assert "phase_id" not in ended, "phase_id must be unbound once the phase is done"
    assert any(r["message"] == "run started" and r["run_id"] == run_id for r in records)
    # Cleared after the run.
    assert "run_id" not in log_context() and "phase_id" not in log_context()


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_secrets_never_reach_the_log_output(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capture_logs: Any,
    log_format: str,
) -> None:
    settings = make_settings(
        database_url,
        tmp_path / "runs",
        anthropic_api_key=CANARY_ANTHROPIC,
        openai_api_key=CANARY_OPENAI,
        log_format=log_format,
    )
    logs = capture_logs(settings, level="debug")
    log = logging.getLogger("autopack.tests.canary")
    with TestClient(create_app(settings)) as client:
        client.get("/api/runs")
        client.get(f"/api/runs/{CANARY_OPENAI}")  # in a path, echoed by the access line
    # Code that slips: the value in a message, in an argument, in an extra, in an exception.
    log.warning("connecting with key %s", CANARY_ANTHROPIC)
    log.info("extra", extra={"header": f"x-api-key: {CANARY_OPENAI}"})
    try:
        raise RuntimeError(f"provider refused key {CANARY_ANTHROPIC}")
    except RuntimeError:
        log.exception("call failed")
    engine = create_db_engine(settings)
    try:
        run_small_plan(settings, create_session_factory(engine), tmp_path, monkeypatch)
    finally:
        engine.dispose()

    output = logs.text
    assert "connecting with key" in output and "call failed" in output
    assert CANARY_ANTHROPIC not in output
    assert CANARY_OPENAI not in output
    assert "[REDACTED]" in output


def test_the_app_configures_logging_only_when_nothing_else_did(settings: Settings) -> None:
    root = logging.getLogger()
    # Under pytest the root logger has pytest's handlers: logging is configured already.
    assert root.handlers
    before = list(root.handlers)
    assert ensure_logging(settings) is False
    with TestClient(create_app(settings)) as client:
        client.get("/health")
    assert root.handlers == before
    assert not any(handler.get_name() == HANDLER_NAME for handler in root.handlers)


def test_a_cli_command_leaves_logging_as_it_found_it(tmp_path: Path) -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    invoke = make_invoke(clean_env(AUTOPACK_RUNS_DIR=str(tmp_path / "runs")))
    result = invoke("runs", "list", AUTOPACK_LOG_FORMAT="json")
    assert result.exit_code == 0, result.output
    # Info records (the migrations of the embedded database) are not a command's output.
    assert result.stderr == ""
    assert (list(root.handlers), root.level) == before


def test_command_log_level() -> None:
    assert command_log_level("info") == "warning"
    assert command_log_level("warning") == "warning"
    assert command_log_level("error") == "error"
    assert command_log_level("debug") == "debug"
