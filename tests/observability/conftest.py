"""Fixtures of the observability tests: captured log output, and a small real run (real git, real
test command, real database; only the model is scripted)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from autopack.observability.logging import configure_logging
from autopack.settings import Settings
from tests.executor.support import (
    GOOD_REPLY,
    Harness,
    ScriptedProvider,
    make_plan,
    make_project,
    venv_first_on_path,
)


@dataclass
class CapturedLogs:
    stream: io.StringIO

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def json_lines(self) -> list[dict[str, Any]]:
        """Every line, parsed: a line that is not one JSON object fails the test."""
        lines = [line for line in self.text.splitlines() if line.strip()]
        records = [json.loads(line) for line in lines]
        assert all(isinstance(record, dict) for record in records)
        return records


@pytest.fixture
def capture_logs() -> Iterator[Any]:
    """``capture_logs(settings)`` configures logging as ``autopack serve`` does, into a string;
    logging is put back as it was at the end of the test."""
    restores: list[Any] = []

    def capture(settings: Settings, level: str | None = None) -> CapturedLogs:
        stream = io.StringIO()
        restores.append(configure_logging(settings, level=level, stream=stream))
        return CapturedLogs(stream)

    yield capture
    for restore in reversed(restores):
        restore()


def run_small_plan(
    settings: Settings,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    usage: str = "cached",
) -> str:
    """One phase, one builder call, committed: returns the run id (asserted DONE_SUCCESS)."""
    venv_first_on_path(monkeypatch)
    project = make_project(tmp_path / "project")
    harness = Harness(settings, sessions, ScriptedProvider([GOOD_REPLY], usage=usage))
    run_id, state = harness.run(make_plan(), project)
    assert state.value == "DONE_SUCCESS"
    return run_id
