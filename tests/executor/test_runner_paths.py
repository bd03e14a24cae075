"""The executor's less-travelled paths, integrated like ``test_runner.py``: the auditor asking for
a revision or escalating, a safety-critical run stopping for an approval, and a run over its
``max_duration_minutes``. Real git, real test commands, the real database of each dialect; only
the model is scripted (``support.ScriptedProvider``)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from autopack.approvals.models import Approval, ApprovalStatus
from autopack.db.base import utcnow
from autopack.executor.service import execute
from autopack.executor.workspace import PHASE_TRAILER
from autopack.issues.models import IssueSource
from autopack.llm.provider import CallContext, CompletionRequest
from autopack.runs.models import Run
from autopack.runs.states import PhaseState, RunState
from autopack.settings import Settings
from tests.executor.support import (
    APPROVE,
    GOOD_REPLY,
    Harness,
    ScriptedProvider,
    git,
    load_record,
    make_plan,
    make_project,
    phase_spec,
    prompt_text,
    search_replace,
    venv_first_on_path,
    whole_file,
    workspace_of,
)

SUB_LINE = "def sub(a, b):"
REVISE_MESSAGE = "validate the input"
REVISE_VERDICT: dict[str, Any] = {
    "verdict": "revise",
    "issues": [{"severity": "major", "path": "calc.py", "message": REVISE_MESSAGE}],
    "summary": "sub() should check its arguments.",
}
ESCALATE_VERDICT: dict[str, Any] = {
    "verdict": "escalate",
    "issues": [{"severity": "critical", "path": "calc.py", "message": "this needs a human"}],
    "summary": "Out of my depth.",
}


@pytest.fixture(autouse=True)
def _venv_python(monkeypatch: pytest.MonkeyPatch) -> None:
    venv_first_on_path(monkeypatch)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


def harness(
    settings: Settings, sessions: sessionmaker[Session], *replies: Any
) -> tuple[Harness, ScriptedProvider]:
    provider = ScriptedProvider(replies)
    return Harness(settings, sessions, provider), provider


def fenced(verdict: dict[str, Any]) -> str:
    return "```json\n" + json.dumps(verdict, indent=2) + "\n```"


def commits_of_phase(workspace: Path, run_id: str, phase_id: str) -> list[str]:
    """Commits on the run's branch whose trailer names ``phase_id``."""
    out = git(
        workspace,
        "log",
        "--format=%H",
        f"--grep={PHASE_TRAILER}: {phase_id}$",
        f"autopack/{run_id}",
    )
    return out.split()


# --- the auditor --------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["fenced", "bare"])
def test_auditor_revise_feeds_its_issues_back_and_the_revision_is_committed(
    settings: Settings, session_factory: sessionmaker[Session], project: Path, form: str
) -> None:
    revise = fenced(REVISE_VERDICT) if form == "fenced" else json.dumps(REVISE_VERDICT)
    h, provider = harness(settings, session_factory, GOOD_REPLY, revise, GOOD_REPLY, APPROVE)

    run_id, state = h.run(make_plan(phase_spec(task_category="security")), project)

    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_SUCCESS, record.run["failure_reason"]
    assert [c.context.role for c in provider.calls] == ["builder", "auditor"] * 2
    revised, passed = record.attempts["p1"]
    assert revised["outcome"] == "audit_revise"
    assert revised["auditor_verdict"]["verdict"] == "revise"
    assert revised["auditor_verdict"]["issues"] == REVISE_VERDICT["issues"]
    assert revised["test_result"]["passed"] is True, "the tests passed; the auditor refused"
    assert passed["outcome"] == "success"
    assert passed["auditor_verdict"]["verdict"] == "approve"
    second_builder = prompt_text(provider.requests[2])
    assert REVISE_MESSAGE in second_builder
    assert REVISE_MESSAGE not in prompt_text(provider.requests[0])
    (issue,) = record.issues
    assert issue["source"] is IssueSource.AUDITOR
    assert issue["issue_key"].startswith("auditor:")
    assert issue["category"] == "security"
    assert record.phase()["state"] is PhaseState.COMPLETE
    workspace = workspace_of(settings, run_id)
    assert commits_of_phase(workspace, run_id, "p1") == [record.phase()["commit_sha"]]
    assert SUB_LINE in git(workspace, "show", f"autopack/{run_id}:calc.py")


def test_auditor_escalate_ends_the_run_for_a_human_without_committing(
    settings: Settings, session_factory: sessionmaker[Session], project: Path
) -> None:
    # Two phases: the escalation stops the run, so p2 is never started.
    plan = make_plan(phase_spec("p1", task_category="security"), phase_spec("p2"))
    h, provider = harness(settings, session_factory, GOOD_REPLY, fenced(ESCALATE_VERDICT))

    run_id, state = h.run(plan, project)

    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_FAILED_REQUIRES_HUMAN_REVIEW
    assert record.run["state"] is RunState.DONE_FAILED_REQUIRES_HUMAN_REVIEW
    reason = record.run["failure_reason"]
    assert "auditor" in reason and "p1" in reason, reason
    assert "this needs a human" in reason
    assert len(provider.calls) == 2
    phase = record.phase("p1")
    assert phase["state"] is PhaseState.FAILED
    assert phase["commit_sha"] is None
    (attempt,) = record.attempts["p1"]
    assert attempt["outcome"] == "audit_escalated"
    assert attempt["auditor_verdict"]["verdict"] == "escalate"
    assert attempt["finished_at"] is not None
    assert record.phase("p2")["state"] is PhaseState.QUEUED
    assert record.attempts["p2"] == []
    # Nothing committed for the phase: the branch is still at the base commit.
    assert record.run["head_commit"] == record.run["base_commit"]
    workspace = workspace_of(settings, run_id)
    assert git(workspace, "rev-parse", f"autopack/{run_id}") == record.run["base_commit"]
    assert commits_of_phase(workspace, run_id, "p1") == []
    assert SUB_LINE not in git(workspace, "show", f"autopack/{run_id}:calc.py")


# --- a safety-critical run ----------------------------------------------------------------------


def test_safety_critical_write_outside_scope_blocks_for_an_approval(
    settings: Settings, session_factory: sessionmaker[Session], project: Path
) -> None:
    marker = "# autopack-safety-canary\n"
    bad = whole_file("notes/other.py", marker) + "\n" + GOOD_REPLY.split("\n\n", 1)[1]
    h, provider = harness(settings, session_factory, bad, GOOD_REPLY)

    run_id, state = h.run(make_plan(run={"safety_profile": "safety_critical"}), project)

    record = load_record(session_factory, run_id)
    assert state is RunState.PAUSED, record.run["failure_reason"]
    assert record.run["state"] is RunState.PAUSED
    assert len(provider.calls) == 1, "no retry while the approval is pending"
    assert record.phase()["state"] is PhaseState.BLOCKED
    (attempt,) = record.attempts["p1"]
    assert attempt["outcome"] == "blocked"
    assert attempt["governance_verdict"]["ok"] is False
    with session_factory() as session:
        approvals = session.scalars(
            select(Approval).where(Approval.run_pk == record.run["id"])
        ).all()
        rows = [(a.kind, a.status, a.phase_id, a.subject) for a in approvals]
    ((kind, status, phase_id, subject),) = rows
    assert kind == "governance_violation"
    assert status is ApprovalStatus.PENDING
    assert phase_id == "p1"
    assert subject["attempt"] == 1
    assert "notes/other.py" in json.dumps(subject["verdict"])
    # Nothing written: neither the refused file nor the allowed part of the same reply.
    workspace = workspace_of(settings, run_id)
    assert not (workspace / "notes").exists()
    assert SUB_LINE not in (workspace / "calc.py").read_text()
    assert git(workspace, "status", "--porcelain") == ""
    assert record.run["head_commit"] == record.run["base_commit"]


# --- max_duration_minutes -----------------------------------------------------------------------


def _age_run(sessions: sessionmaker[Session], run_id: str, minutes: int) -> None:
    with sessions() as session:
        run = session.scalars(select(Run).where(Run.run_id == run_id)).one()
        run.started_at = utcnow() - timedelta(minutes=minutes)
        session.commit()


def test_run_over_max_duration_stops_before_any_model_call(
    settings: Settings, session_factory: sessionmaker[Session], project: Path
) -> None:
    plan = make_plan(phase_spec("p1"), phase_spec("p2"), run={"max_duration_minutes": 1})
    h, provider = harness(settings, session_factory, GOOD_REPLY, GOOD_REPLY)
    run_id = h.submit(plan, project)
    # Claiming the run (QUEUED -> RUNNING) keeps a started_at that is already set.
    _age_run(session_factory, run_id, 2)

    state = execute(h.env, run_id)

    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_FAILED_BUDGET_EXHAUSTED, record.run["failure_reason"]
    assert record.run["max_duration_minutes"] == 1
    assert "max_duration_minutes" in record.run["failure_reason"]
    assert provider.calls == []
    assert record.llm_calls == []
    assert record.attempts == {"p1": [], "p2": []}
    assert record.run["head_commit"] == record.run["base_commit"]


def test_run_over_max_duration_stops_before_the_next_phase(
    settings: Settings,
    session_factory: sessionmaker[Session],
    project: Path,
    dialect: str,
    request: pytest.FixtureRequest,
) -> None:
    run_ids: list[str] = []

    def age_then_reply(request: CompletionRequest, context: CallContext) -> str:
        # p1's builder call: the run has now (by its clock) taken two minutes.
        _age_run(session_factory, context.run_id, 2)
        run_ids.append(context.run_id)
        return GOOD_REPLY

    mul_reply = search_replace("calc.py", "def add(a, b):\n", "def add(a, b):\n    # p2 was here\n")
    plan = make_plan(phase_spec("p1"), phase_spec("p2"), run={"max_duration_minutes": 1})
    h, provider = harness(settings, session_factory, age_then_reply, mul_reply)

    run_id, state = h.run(plan, project)

    record = load_record(session_factory, run_id)
    assert run_ids == [run_id]
    assert state is RunState.DONE_FAILED_BUDGET_EXHAUSTED, record.run["failure_reason"]
    assert "max_duration_minutes of 1" in record.run["failure_reason"]
    assert len(provider.calls) == 1, "p2 made no model call"
    assert record.phase("p1")["state"] is PhaseState.COMPLETE
    assert record.run["head_commit"] == record.phase("p1")["commit_sha"]
    assert record.attempts["p2"] == []
    assert record.phase("p2")["state"] is PhaseState.QUEUED
