"""The one instant a kill from outside cannot aim at: the executor dies after `git commit` and
before the database records the phase COMPLETE. Resuming must adopt that commit (found by its
trailer) instead of making the phase again."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from autopack.executor import runner
from autopack.executor.service import EXECUTOR_FAILURES_LIMIT, execute, execute_if_free
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
    phase_spec,
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


class Crashed(BaseException):
    """Stands for the worker dying (SIGKILL) in the middle of the run's second phase."""


def test_a_worker_without_the_runs_workspace_refuses_to_redo_committed_phases(
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Workers that do not share AUTOPACK_RUNS_DIR: the run is taken over by a worker whose runs
    directory lacks its workspace. A fresh clone does not hold the committed phase, so the run
    stops with a message naming the setting, and nothing is committed twice."""
    venv_first_on_path(monkeypatch)
    settings = settings.model_copy(update={"stale_heartbeat_seconds": 0.01})

    def die(request: object, context: object) -> str:
        raise Crashed

    first = Harness(settings, session_factory, ScriptedProvider([GOOD_REPLY, die]))
    plan = make_plan(phase_spec("p1"), phase_spec("p2", description="Add div."))
    run_id = first.submit(plan, make_project(tmp_path / "project"))
    with pytest.raises(Crashed):
        execute(first.env, run_id)
    assert load_record(session_factory, run_id).phase("p1")["state"].value == "COMPLETE"

    elsewhere = settings.model_copy(update={"runs_dir": tmp_path / "other-worker-runs"})
    other = Harness(elsewhere, session_factory, ScriptedProvider([]))
    assert execute(other.env, run_id) is RunState.DONE_FAILED_ENVIRONMENT
    record = load_record(session_factory, run_id)
    assert "AUTOPACK_RUNS_DIR" in (record.run["failure_reason"] or "")
    assert other.provider.requests == []  # type: ignore[attr-defined]
    fresh = elsewhere.runs_dir / run_id / "workspace"
    assert git(fresh, "log", "--format=%(trailers:key=Autopack-Phase,valueonly)").split() == []


def test_resume_after_a_kill_during_the_baseline(
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed while the baseline ran in its own checkout: the resumed executor finds that
    checkout still there (and still listed by git) and makes it again."""
    venv_first_on_path(monkeypatch)
    settings = settings.model_copy(update={"stale_heartbeat_seconds": 0.01})
    first = Harness(settings, session_factory, ScriptedProvider([]))
    run_id = first.submit(make_plan(), make_project(tmp_path / "project"))

    def killed_in_baseline(*args: object, **kwargs: object) -> object:
        raise Crashed

    monkeypatch.setattr(runner, "run_tests", killed_in_baseline)
    with pytest.raises(Crashed):
        execute(first.env, run_id)
    monkeypatch.undo()
    venv_first_on_path(monkeypatch)
    # A Python exception still runs the baseline's clean-up; SIGKILL does not. Put back what
    # it leaves: the checkout, registered with git.
    workspace = workspace_of(settings, run_id)
    leftover = settings.runs_dir / run_id / "baseline" / "checkout-0"
    git(workspace, "worktree", "add", "--force", "--detach", str(leftover), "HEAD")
    assert leftover.is_dir()

    resumed = Harness(settings, session_factory, ScriptedProvider([GOOD_REPLY]))
    assert execute(resumed.env, run_id) is RunState.DONE_SUCCESS


def test_an_executor_failing_again_and_again_ends_the_run(
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unexpected exception (a bug, not a model's or a test's failure) leaves the run to be
    resumed; the same failure again and again ends it, instead of a resume every stale period
    forever."""
    venv_first_on_path(monkeypatch)
    settings = settings.model_copy(update={"stale_heartbeat_seconds": 0.01})

    def broken(request: object, context: object) -> str:
        raise RuntimeError("something Autopack did not expect")

    run_id = Harness(settings, session_factory, ScriptedProvider([])).submit(
        make_plan(), make_project(tmp_path / "project")
    )
    for attempt in range(1, EXECUTOR_FAILURES_LIMIT + 1):
        harness = Harness(settings, session_factory, ScriptedProvider([broken]))
        with pytest.raises(RuntimeError):
            execute_if_free(harness.env, run_id)
        record = load_record(session_factory, run_id)
        failures = record.events_of("executor.failed")
        assert len(failures) == attempt
        assert "RuntimeError: something Autopack did not expect" in failures[-1]["payload"]["error"]
        expected = (
            RunState.DONE_FAILED_ENVIRONMENT
            if attempt == EXECUTOR_FAILURES_LIMIT
            else RunState.RUNNING
        )
        assert record.run["state"] is expected
    assert "failed 3 times in a row" in (record.run["failure_reason"] or "")
    assert record.phase()["state"].value == "FAILED"
