"""Approvals end to end: a change that touches a protected path (any run) or that governance
refuses in a safety-critical run blocks its phase and pauses its run; a person approves or rejects
it through the API or the CLI, or the timeout decides. Real git, real test commands, the real
database of each dialect, the real app and CLI; only the model is scripted."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from autopack.api.app import create_app
from autopack.approvals import service as approvals
from autopack.approvals.models import Approval, ApprovalStatus
from autopack.db.base import utcnow
from autopack.executor.service import execute
from autopack.executor.worker import ExecutorPool
from autopack.projects.models import Project
from autopack.runs.states import PhaseState, RunState
from autopack.settings import Settings
from tests.cli.support import clean_env, make_invoke
from tests.executor.support import (
    GOOD_REPLY,
    Harness,
    ScriptedProvider,
    git,
    load_record,
    make_plan,
    make_project,
    phase_spec,
    search_replace,
    venv_first_on_path,
    whole_file,
    workspace_of,
)

CANARY = "# autopack-approval-canary\n"
# A safety-critical run's reply: sub() in scope, plus a file outside the phase's scope.
OUT_OF_SCOPE_REPLY = whole_file("notes/other.py", CANARY) + "\n" + GOOD_REPLY.split("\n\n", 1)[1]
SUB_LINE = "def sub(a, b):"


@pytest.fixture(autouse=True)
def _venv_python(monkeypatch: pytest.MonkeyPatch) -> None:
    venv_first_on_path(monkeypatch)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def blocked_safety_critical_run(
    settings: Settings, sessions: sessionmaker[Session], project: Path, *more: Any
) -> tuple[Harness, ScriptedProvider, str]:
    provider = ScriptedProvider([OUT_OF_SCOPE_REPLY, *more])
    h = Harness(settings, sessions, provider)
    run_id, state = h.run(make_plan(run={"safety_profile": "safety_critical"}), project)
    assert state is RunState.PAUSED, load_record(sessions, run_id).run["failure_reason"]
    return h, provider, run_id


def the_approval(sessions: sessionmaker[Session], run_pk: int) -> Approval:
    with sessions() as session:
        (approval,) = session.scalars(select(Approval).where(Approval.run_pk == run_pk)).all()
        session.expunge(approval)
        return approval


def wait_for_end(sessions: sessionmaker[Session], run_id: str, timeout: float = 90) -> RunState:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = RunState(load_record(sessions, run_id).run["state"])
        if state.is_terminal:
            return state
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not end in {timeout}s")


def test_safety_critical_approved_through_the_api_is_picked_up_by_the_pool_and_committed(
    settings: Settings,
    session_factory: sessionmaker[Session],
    project: Path,
    client: TestClient,
) -> None:
    h, provider, run_id = blocked_safety_critical_run(settings, session_factory, project)
    record = load_record(session_factory, run_id)
    assert record.phase()["state"] is PhaseState.BLOCKED
    (requested,) = record.events_of("approval.requested")
    assert requested["payload"]["paths"] == ["calc.py", "notes/other.py"]

    listed = client.get("/api/approvals", params={"status": "pending"})
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["items"]
    assert (item["run_id"], item["phase_id"], item["kind"]) == (
        run_id,
        "p1",
        "governance_violation",
    )
    assert item["status"] == "pending"
    assert item["created_at"] and item["expires_at"]
    subject = item["subject"]
    assert subject["attempt"] == 1
    assert subject["paths"] == ["calc.py", "notes/other.py"]
    assert {v["rule"] for v in subject["violations"]} == {"outside_scope"}
    assert "+" + CANARY.strip() in subject["diff"]
    assert "changes" not in subject, "the stored change set is not part of the API"
    assert client.get(f"/api/approvals/{item['id']}").json() == item

    approved = client.post(f"/api/approvals/{item['id']}/approve", json={"reason": "notes are ok"})
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "approved"
    assert body["decided_by"] == "anonymous"  # authentication is off
    assert body["reason"] == "notes are ok"
    assert body["decided_at"] is not None
    assert load_record(session_factory, run_id).run["state"] is RunState.QUEUED
    assert client.get("/api/approvals", params={"status": "pending"}).json()["items"] == []

    # `autopack serve`'s executor pool finds the queued run by itself.
    pool = ExecutorPool(h.env, 1, poll_seconds=0.1)
    pool.start()
    try:
        final = wait_for_end(session_factory, run_id)
    finally:
        pool.stop()

    record = load_record(session_factory, run_id)
    assert final is RunState.DONE_SUCCESS, record.run["failure_reason"]
    assert len(provider.calls) == 1, "the approved change is applied without a model call"
    blocked, applied = record.attempts["p1"]
    assert blocked["outcome"] == "blocked"
    assert applied["outcome"] == "success"
    assert applied["test_result"]["passed"] is True
    phase = record.phase()
    assert phase["state"] is PhaseState.COMPLETE
    workspace = workspace_of(settings, run_id)
    branch = f"autopack/{run_id}"
    assert git(workspace, "rev-parse", branch) == phase["commit_sha"] == record.run["head_commit"]
    assert git(workspace, "show", f"{branch}:notes/other.py") + "\n" == CANARY
    assert SUB_LINE in git(workspace, "show", f"{branch}:calc.py")
    (event,) = record.events_of("approval.approved")
    assert event["payload"]["decided_by"] == "anonymous"
    assert event["payload"]["reason"] == "notes are ok"


def test_rejected_through_the_api_fails_the_phase_and_ends_the_run_and_cannot_be_redecided(
    settings: Settings,
    session_factory: sessionmaker[Session],
    project: Path,
    client: TestClient,
) -> None:
    _, provider, run_id = blocked_safety_critical_run(settings, session_factory, project)
    approval = the_approval(session_factory, load_record(session_factory, run_id).run["id"])

    rejected = client.post(f"/api/approvals/{approval.id}/reject", json={"reason": "no notes"})
    assert rejected.status_code == 200, rejected.text
    body = rejected.json()
    assert (body["status"], body["decided_by"], body["reason"]) == (
        "rejected",
        "anonymous",
        "no notes",
    )
    assert body["decided_at"] is not None

    record = load_record(session_factory, run_id)
    assert record.run["state"] is RunState.DONE_FAILED_REQUIRES_HUMAN_REVIEW
    assert "no notes" in record.run["failure_reason"]
    assert record.phase()["state"] is PhaseState.FAILED
    assert "no notes" in record.phase()["failure_reason"]
    (event,) = record.events_of("approval.rejected")
    assert event["payload"]["reason"] == "no notes"
    assert len(provider.calls) == 1
    assert record.run["head_commit"] == record.run["base_commit"]

    for verb in ("approve", "reject"):
        again = client.post(f"/api/approvals/{approval.id}/{verb}", json={"reason": "again"})
        assert again.status_code == 409, again.text
        assert again.json()["error"]["code"] == "approval_decided"
    assert client.post("/api/approvals/999999/approve", json={"reason": "x"}).status_code == 404
    assert client.post(f"/api/approvals/{approval.id}/approve", json={}).status_code == 422
    nul = client.post(f"/api/approvals/{approval.id}/approve", json={"reason": "a\x00b"})
    assert nul.status_code == 422, nul.text


def test_a_protected_path_edit_in_a_normal_run_asks_and_resumes_once_approved(
    settings: Settings, session_factory: sessionmaker[Session], project: Path
) -> None:
    readme = search_replace("README.md", "# calc\n", "# calc\n\nNow with sub().\n")
    provider = ScriptedProvider([readme + "\n" + GOOD_REPLY.split("\n\n", 1)[1]])
    h = Harness(settings, session_factory, provider)
    scope = {"paths": ["calc.py", "tests/test_calc.py", "README.md"]}
    run_id = h.submit(make_plan(phase_spec(scope=scope)), project)
    with session_factory() as session:
        session.execute(
            update(Project).where(Project.name == "calc").values(protected_paths=["*.md"])
        )
        session.commit()

    assert execute(h.env, run_id) is RunState.PAUSED
    record = load_record(session_factory, run_id)
    assert record.phase()["state"] is PhaseState.BLOCKED
    approval = the_approval(session_factory, record.run["id"])
    assert approval.kind == "protected_path"
    assert approval.status is ApprovalStatus.PENDING
    assert approval.subject["paths"] == ["README.md", "calc.py"]
    assert {v["rule"] for v in approval.subject["violations"]} == {"protected_path"}
    assert approval.expires_at is not None
    expected = approval.created_at + timedelta(seconds=settings.approval_timeout_seconds)
    assert abs((approval.expires_at - expected).total_seconds()) < 1
    workspace = workspace_of(settings, run_id)
    assert git(workspace, "status", "--porcelain") == "", "nothing is written while it waits"

    with session_factory() as session:
        approvals.decide(session, approval.id, approve=True, who="cli:tester", reason="docs only")
    # `autopack runs resume` executes it the same way.
    assert execute(h.env, run_id) is RunState.DONE_SUCCESS
    assert "Now with sub()." in git(workspace, "show", f"autopack/{run_id}:README.md")


def test_an_expired_approval_is_rejected_by_default_by_whoever_looks_next(
    settings: Settings,
    session_factory: sessionmaker[Session],
    project: Path,
    client: TestClient,
) -> None:
    _, _, run_id = blocked_safety_critical_run(settings, session_factory, project)
    run_pk = load_record(session_factory, run_id).run["id"]
    approval = the_approval(session_factory, run_pk)
    with session_factory() as session:
        past = utcnow() - timedelta(seconds=1)
        session.execute(update(Approval).where(Approval.id == approval.id).values(expires_at=past))
        session.commit()

    body = client.get(f"/api/approvals/{approval.id}").json()

    assert body["status"] == "expired"
    assert body["decided_by"] == "timeout"
    assert "reject" in body["reason"]
    record = load_record(session_factory, run_id)
    assert record.run["state"] is RunState.DONE_FAILED_REQUIRES_HUMAN_REVIEW
    assert record.phase()["state"] is PhaseState.FAILED
    (event,) = record.events_of("approval.expired")
    assert event["payload"]["action"] == "reject"
    assert event["payload"]["decided_by"] == "timeout"
    again = client.post(f"/api/approvals/{approval.id}/approve", json={"reason": "late"})
    assert again.status_code == 409


def test_the_timeout_can_approve_and_zero_never_expires(
    settings: Settings, session_factory: sessionmaker[Session], project: Path
) -> None:
    never = settings.model_copy(update={"approval_timeout_seconds": 0})
    _, _, run_id = blocked_safety_critical_run(never, session_factory, project)
    approval = the_approval(session_factory, load_record(session_factory, run_id).run["id"])
    assert approval.expires_at is None
    with session_factory() as session:
        assert approvals.expire_due(session, "approve", now=utcnow() + timedelta(days=365)) == []
        session.execute(
            update(Approval).where(Approval.id == approval.id).values(expires_at=utcnow())
        )
        session.commit()
        assert approvals.expire_due(session, "approve") == [approval.id]
    decided = the_approval(session_factory, load_record(session_factory, run_id).run["id"])
    assert (decided.status, decided.decided_by) == (ApprovalStatus.APPROVED, "timeout")
    assert load_record(session_factory, run_id).run["state"] is RunState.QUEUED


def test_cli_lists_approves_and_rejects(
    settings: Settings,
    session_factory: sessionmaker[Session],
    project: Path,
    database_url: str,
) -> None:
    cli = make_invoke(
        clean_env(
            DATABASE_URL=database_url,
            AUTOPACK_RUNS_DIR=str(settings.runs_dir),
            AUTOPACK_DB_STARTUP_TIMEOUT_SECONDS="0",
        )
    )
    assert cli("approvals", "list").output.strip() == "No pending approvals."
    _, _, first = blocked_safety_critical_run(settings, session_factory, project)
    second_repo = make_project(project.parent / "second")
    plan = make_plan(run={"safety_profile": "safety_critical"}, project="second")
    h = Harness(settings, session_factory, ScriptedProvider([OUT_OF_SCOPE_REPLY]))
    second, state = h.run(plan, second_repo)
    assert state is RunState.PAUSED

    listed = cli("approvals", "list")
    assert listed.exit_code == 0, listed.output
    assert first in listed.output and second in listed.output
    assert "notes/other.py" in listed.output
    as_json = json.loads(cli("approvals", "list", "--json").output)
    ids = {item["run_id"]: item["id"] for item in as_json}

    approved = cli("approvals", "approve", str(ids[first]), "--reason", "fine by me")
    assert approved.exit_code == 0, approved.output
    assert f"approval {ids[first]} approved by cli:" in approved.output
    rejected = cli("approvals", "reject", str(ids[second]), "--reason", "not this one")
    assert rejected.exit_code == 0, rejected.output
    twice = cli("approvals", "reject", str(ids[second]), "--reason", "again")
    assert twice.exit_code == 1
    assert "already rejected" in twice.output
    assert cli("approvals", "approve", str(ids[first]), "--reason", " ").exit_code == 1

    assert cli("approvals", "list").output.strip() == "No pending approvals."
    every = json.loads(cli("approvals", "list", "--all", "--json").output)
    decided = {item["run_id"]: item for item in every}
    assert decided[first]["status"] == "approved"
    assert decided[first]["decided_by"].startswith("cli:")
    assert decided[first]["reason"] == "fine by me"
    assert decided[second]["status"] == "rejected"
    assert decided[second]["reason"] == "not this one"
    assert load_record(session_factory, first).run["state"] is RunState.QUEUED
    second_run = load_record(session_factory, second).run
    assert second_run["state"] is RunState.DONE_FAILED_REQUIRES_HUMAN_REVIEW
    assert "not this one" in second_run["failure_reason"]
