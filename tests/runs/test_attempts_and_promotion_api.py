"""A phase's attempts through the API, with their diff and test output from the database
(redacted and capped), and promotion through the API: ``promotable`` on the run, the real git
repository's branch moved, refusals as 409 in the error envelope."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from autopack.api.app import create_app
from autopack.runs.execution import (
    DIFF_LIMIT,
    TEST_OUTPUT_LIMIT,
    cap_diff,
    cap_test_output,
)
from autopack.runs.models import Cleanliness, Run, Tier
from autopack.runs.states import RunState, transition_run
from autopack.settings import Settings
from tests.conftest import make_settings
from tests.executor.support import (
    CALC_PY,
    GOOD_REPLY,
    Harness,
    ScriptedProvider,
    git,
    make_plan,
    make_project,
    phase_spec,
    search_replace,
    venv_first_on_path,
)

SUB_LINE = "def sub(a, b):"
# Not shaped like any known key: only redaction by value can catch it.
CANARY = "attempts-api-canary-qwertyuiop-4321"
# The test command prints the canary (through a variable no scrubber knows) and runs the tests.
NOISY_TEST_CMD = "sh -c 'echo PROJECT_NOTE=$PROJECT_NOTE; python -m pytest -q'"
# A correct change that also writes the secret's value into the code: the diff must not keep it.
LEAKY_REPLY = "Add sub.\n\n" + search_replace(
    "calc.py",
    "def mul(a, b):\n    return a * b\n",
    "def mul(a, b):\n    return a * b\n\n\n"
    f"def sub(a, b):\n    # note: {CANARY}\n    return a - b\n",
)


@pytest.fixture(autouse=True)
def _venv_python(monkeypatch: pytest.MonkeyPatch) -> None:
    venv_first_on_path(monkeypatch)


@pytest.fixture
def secret_settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path / "runs", openai_api_key=CANARY)


def _run(
    settings: Settings,
    sessions: sessionmaker[Session],
    repo: Path,
    *replies: str,
    **phase: Any,
) -> tuple[str, RunState]:
    harness = Harness(settings, sessions, ScriptedProvider(replies))
    return harness.run(make_plan(phase_spec(**phase)), repo)


# --- attempts -----------------------------------------------------------------------------------


def test_attempts_carry_the_redacted_diff_and_test_output(
    secret_settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROJECT_NOTE", CANARY)
    project = make_project(tmp_path / "project")
    breaking = search_replace(
        "calc.py", "def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a - b\n"
    )
    run_id, state = _run(
        secret_settings,
        session_factory,
        project,
        breaking,
        LEAKY_REPLY,
        scope={"test_cmd": NOISY_TEST_CMD},
    )
    assert state is RunState.DONE_SUCCESS

    with TestClient(create_app(secret_settings)) as client:
        response = client.get(f"/api/runs/{run_id}/phases/p1/attempts")
        assert response.status_code == 200, response.text
        attempts = response.json()
        assert CANARY not in response.text
        unknown_run = client.get("/api/runs/nope/phases/p1/attempts")
        unknown_phase = client.get(f"/api/runs/{run_id}/phases/nope/attempts")

    assert [a["number"] for a in attempts] == [1, 2]
    first, second = attempts
    assert first["outcome"] == "tests_failed" and second["outcome"] == "success"
    assert "-    return a + b" in first["diff"] and "+    return a - b" in first["diff"]
    assert "failed" in first["test_output"]
    assert f"+{SUB_LINE}" in second["diff"]
    assert "+    # note: [REDACTED]" in second["diff"]
    assert second["test_output"].startswith(f"$ {NOISY_TEST_CMD}\n")
    assert "PROJECT_NOTE=[REDACTED]" in second["test_output"]
    assert "2 passed" in second["test_output"]
    assert second["model"] and second["prompt_tokens"] > 0 and second["completion_tokens"] > 0
    assert second["edits"] == [{"path": "calc.py", "deleted": False}]
    assert second["governance_verdict"] is not None and second["test_result"] is not None
    assert second["failure_reason"] is None and second["finished_at"] is not None
    assert first["feedback"] and first["failure_signature"]
    assert set(second) == {
        "number",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "edits",
        "governance_verdict",
        "test_result",
        "auditor_verdict",
        "outcome",
        "failure_signature",
        "failure_reason",
        "feedback",
        "started_at",
        "finished_at",
        "duration_ms",
        "diff",
        "test_output",
    }
    # The database row holds what the artifact holds.
    artifact = secret_settings.runs_dir.resolve() / run_id / "phases" / "p1" / "attempt-2"
    assert (artifact / "diff.patch").read_text() == second["diff"]
    assert (artifact / "test.log").read_text() == second["test_output"]
    for response in (unknown_run, unknown_phase):
        assert response.status_code == 404
        assert set(response.json()["error"]) == {"code", "message", "details"}


def test_a_phase_without_attempts_lists_none(client: TestClient) -> None:
    from tests.factories import plan_body

    assert client.post("/api/runs", json=plan_body("r1")).status_code == 201
    response = client.get("/api/runs/r1/phases/P11/attempts")
    assert response.status_code == 200
    assert response.json() == []


def test_test_output_keeps_the_tail_and_the_diff_the_head() -> None:
    assert cap_test_output("short") == "short"
    assert cap_diff("short") == "short"
    output = "x" * 10 + "y" * TEST_OUTPUT_LIMIT
    capped = cap_test_output(output)
    first_line, rest = capped.split("\n", 1)
    assert "10 characters cut" in first_line
    assert rest == "y" * TEST_OUTPUT_LIMIT
    diff = "a" * DIFF_LIMIT + "b" * 7
    head, last_line = cap_diff(diff).rstrip("\n").rsplit("\n", 1)
    assert head == "a" * DIFF_LIMIT
    assert "7 more characters" in last_line
    assert "\x00" not in cap_test_output("nul\x00byte")


# --- promotion ----------------------------------------------------------------------------------


def test_promote_a_successful_run_moves_the_source_branch(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    project = make_project(tmp_path / "project")
    before = git(project, "rev-parse", "main")
    run_id, state = _run(settings, session_factory, project, GOOD_REPLY)
    assert state is RunState.DONE_SUCCESS

    with TestClient(create_app(settings)) as client:
        detail = client.get(f"/api/runs/{run_id}").json()
        assert detail["promotable"] is True
        response = client.post(f"/api/runs/{run_id}/promote")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body == {"run_id": run_id, "branch": "main", "commit": detail["head_commit"]}
        # Into another branch, named in the body: created at the run's head.
        other = client.post(f"/api/runs/{run_id}/promote", json={"branch": "autopack-result"})
        assert other.status_code == 200, other.text
        assert other.json()["branch"] == "autopack-result"
        bad = client.post(f"/api/runs/{run_id}/promote", json={"branch": "bad..name"})
        assert bad.status_code == 422
        assert bad.json()["error"]["code"] == "invalid_input"
        events = client.get(f"/api/runs/{run_id}/events", params={"limit": 500}).json()

    after = git(project, "rev-parse", "main")
    assert after != before and after == body["commit"]
    assert git(project, "rev-parse", "autopack-result") == body["commit"]
    assert SUB_LINE in (project / "calc.py").read_text()  # the checked-out tree follows
    assert (project / "calc.py").read_text() != CALC_PY
    promoted = [e for e in events["items"] if e["type"] == "run.promoted"]
    assert [e["payload"]["branch"] for e in promoted] == ["main", "autopack-result"]


def test_a_run_that_is_not_done_is_not_promotable(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    from tests.factories import plan_body

    assert client.post("/api/runs", json=plan_body("r1")).status_code == 201
    assert client.get("/api/runs/r1").json()["promotable"] is False
    with session_factory() as session:
        run = session.scalars(select(Run).where(Run.run_id == "r1")).one()
        transition_run(session, run, RunState.RUNNING)
        session.commit()
    assert client.get("/api/runs/r1").json()["promotable"] is False

    refused = client.post("/api/runs/r1/promote", json={})
    assert refused.status_code == 409
    assert refused.json() == {
        "error": {
            "code": "promotion_refused",
            "message": "run r1 is RUNNING; only a DONE_SUCCESS run can be promoted",
            "details": {"run_id": "r1", "state": "RUNNING"},
        }
    }
    assert client.post("/api/runs/ghost/promote").status_code == 404


def test_a_run_with_a_tier_not_clean_is_refused(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    project = make_project(tmp_path / "project")
    before = git(project, "rev-parse", "main")
    run_id, state = _run(settings, session_factory, project, GOOD_REPLY)
    assert state is RunState.DONE_SUCCESS
    with session_factory() as session:
        run_pk = session.scalars(select(Run.id).where(Run.run_id == run_id)).one()
        session.execute(
            update(Tier).where(Tier.run_pk == run_pk).values(cleanliness=Cleanliness.NOT_CLEAN)
        )
        session.commit()

    with TestClient(create_app(settings)) as client:
        assert client.get(f"/api/runs/{run_id}").json()["promotable"] is False
        refused = client.post(f"/api/runs/{run_id}/promote")
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "promotion_refused"
    assert error["details"] == {"run_id": run_id, "not_clean": ["t1"]}
    assert git(project, "rev-parse", "main") == before
