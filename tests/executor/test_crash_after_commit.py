"""The one instant a kill from outside cannot aim at: the executor dies after `git commit` and
before the database records the phase COMPLETE. Resuming must adopt that commit (found by its
trailer) instead of making the phase again."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from autopack.executor.service import execute
from autopack.executor.workspace import Workspace
from autopack.runs.states import RunState
from autopack.settings import Settings
from tests.executor.support import (
    GOOD_REPLY,
    Harness,
    ScriptedProvider,
    git,
    load_record,
    make_plan,
    make_project,
    venv_first_on_path,
    workspace_of,
)


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler catches it."""


def test_resume_adopts_a_commit_the_database_never_heard_of(
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    venv_first_on_path(monkeypatch)
    settings = settings.model_copy(update={"stale_heartbeat_seconds": 0.01})
    provider = ScriptedProvider([GOOD_REPLY])
    harness = Harness(settings, session_factory, provider)
    run_id = harness.submit(make_plan(), make_project(tmp_path / "project"))

    real_commit = Workspace.commit_staged

    def commit_then_die(self: Workspace, *args: object, **kwargs: object) -> str:
        real_commit(self, *args, **kwargs)  # type: ignore[arg-type]
        raise Killed

    monkeypatch.setattr(Workspace, "commit_staged", commit_then_die)
    with pytest.raises(Killed):
        execute(harness.env, run_id)
    monkeypatch.setattr(Workspace, "commit_staged", real_commit)

    record = load_record(session_factory, run_id)
    assert record.run["state"] is RunState.RUNNING
    assert record.phase()["state"].value == "GATE"  # the database never saw the commit

    # A new executor (another worker id) takes over: the model is not asked again.
    resumed = Harness(settings, session_factory, ScriptedProvider([]))
    assert execute(resumed.env, run_id) is RunState.DONE_SUCCESS
    assert resumed.provider.requests == []  # type: ignore[attr-defined]

    record = load_record(session_factory, run_id)
    workspace = workspace_of(settings, run_id)
    head = git(workspace, "rev-parse", "HEAD").strip()
    assert record.phase()["commit_sha"] == head == record.run["head_commit"]
    trailers = git(workspace, "log", "--format=%(trailers:key=Autopack-Phase,valueonly)").split()
    assert trailers == ["p1"]  # one commit for the phase, not two
    assert [event["type"] for event in record.events_of("phase.recovered")] == ["phase.recovered"]
