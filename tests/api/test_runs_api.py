"""Runs over HTTP: create (v7 and alias), list with filters and pages, read, cancel, retry."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from autopack.runs.models import Phase, Run
from autopack.runs.states import PhaseState, RunState, transition_phase, transition_run
from tests.conftest import row_counts
from tests.factories import V7_BODY, plan_body


def test_v7_body_creates_one_run_one_tier_one_phase(client: TestClient, engine: Engine) -> None:
    before = row_counts(engine)
    response = client.post("/api/runs/start", json=V7_BODY)
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["run_id"] == "my-first-run"
    assert run["state"] == "QUEUED"
    assert run["project"] == "default"
    assert [t["tier_id"] for t in run["tiers"]] == ["T1"]
    phase = run["tiers"][0]["phases"][0]
    assert phase["phase_id"] == "P1"
    assert phase["state"] == "QUEUED"
    assert phase["task_category"] == "feature_scaffolding"
    assert phase["complexity"] == "low"
    assert phase["builder_mode"] == "compose"
    after = row_counts(engine)
    assert after["runs"] - before["runs"] == 1
    assert after["tiers"] - before["tiers"] == 1
    assert after["phases"] - before["phases"] == 1


def test_budgets_and_scope_are_understood(client: TestClient) -> None:
    body: dict[str, Any] = {
        **V7_BODY,
        "run": {
            **V7_BODY["run"],
            "token_cap": 50_000,
            "max_phases": 3,
            "max_duration_minutes": 30,
            "cost_cap_usd": "2.50",
        },
        "phases": [
            {
                **V7_BODY["phases"][0],
                "scope": {
                    "paths": ["src/app.py"],
                    "read_only_context": ["README.md"],
                    "acceptance_criteria": ["tests pass"],
                    "test_cmd": "pytest -q",
                },
            }
        ],
    }
    run = client.post("/api/runs", json=body).json()
    assert run["budget"]["token_cap"] == 50_000
    assert run["budget"]["max_phases"] == 3
    assert run["budget"]["max_duration_minutes"] == 30
    assert float(run["budget"]["cost_cap_usd"]) == 2.5
    scope = run["tiers"][0]["phases"][0]["scope"]
    assert scope == {
        "paths": ["src/app.py"],
        "read_only_context": ["README.md"],
        "acceptance_criteria": ["tests pass"],
        "test_cmd": "pytest -q",
    }


def test_yaml_plan_body(client: TestClient) -> None:
    yaml_plan = """
run: {run_id: from-yaml, goal: add a feature}
tiers:
  - {tier_id: T1, name: First}
phases:
  - {phase_id: P1, tier_id: T1, name: Do it, scope: {paths: [src/a.py]}}
"""
    response = client.post(
        "/api/runs", content=yaml_plan, headers={"content-type": "application/yaml"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["goal"] == "add a feature"


def test_run_id_is_generated_when_omitted(client: TestClient) -> None:
    body = plan_body()
    del body["run"]["run_id"]
    run_id = client.post("/api/runs", json=body).json()["run_id"]
    assert run_id.startswith("run-")
    assert client.get(f"/api/runs/{run_id}").status_code == 200


def test_list_filters_by_state_and_project_and_pages(client: TestClient) -> None:
    assert (
        client.post("/api/projects", json={"name": "alpha", "repo": "/srv/alpha"}).status_code
        == 201
    )
    for index in range(5):
        body = plan_body(f"run-{index}")
        if index % 2 == 0:
            body["project"] = "alpha"
        assert client.post("/api/runs", json=body).status_code == 201
    client.post("/api/runs/run-0/cancel")

    page = client.get("/api/runs", params={"limit": 2}).json()
    assert page["total"] == 5 and len(page["items"]) == 2
    assert [r["run_id"] for r in page["items"]] == ["run-4", "run-3"]  # newest first
    second = client.get("/api/runs", params={"limit": 2, "offset": 2}).json()
    assert [r["run_id"] for r in second["items"]] == ["run-2", "run-1"]

    alpha = client.get("/api/runs", params={"project": "alpha"}).json()
    assert {r["run_id"] for r in alpha["items"]} == {"run-0", "run-2", "run-4"}
    cancelled = client.get("/api/runs", params={"state": "CANCELLED"}).json()
    assert [r["run_id"] for r in cancelled["items"]] == ["run-0"]
    both = client.get("/api/runs", params={"state": "QUEUED", "project": "alpha"}).json()
    assert {r["run_id"] for r in both["items"]} == {"run-2", "run-4"}
    assert page["items"][0]["phases_total"] == 4 and page["items"][0]["phases_complete"] == 0


def test_list_rejects_an_unknown_state(client: TestClient) -> None:
    response = client.get("/api/runs", params={"state": "NOPE"})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == "query.state"


def test_get_run_orders_tiers_and_phases(client: TestClient) -> None:
    body = plan_body("ordered", tiers=2, phases_per_tier=2)
    body["tiers"].reverse()
    body["phases"].reverse()
    client.post("/api/runs", json=body)
    run = client.get("/api/runs/ordered").json()
    assert [t["tier_id"] for t in run["tiers"]] == ["T2", "T1"]  # list order = tier_index
    assert run["phases_total"] == 4


def test_unknown_run_is_404_in_the_envelope(client: TestClient) -> None:
    response = client.get("/api/runs/nope")
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "not_found",
            "message": "run 'nope' does not exist",
            "details": {"run_id": "nope"},
        }
    }


def test_cancel_then_cancel_again_is_409_naming_both_states(client: TestClient) -> None:
    client.post("/api/runs", json=plan_body("c1"))
    response = client.post("/api/runs/c1/cancel", json={"reason": "changed my mind"})
    assert response.status_code == 200
    assert response.json()["state"] == "CANCELLED"
    again = client.post("/api/runs/c1/cancel")
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "illegal_transition"
    assert "CANCELLED" in error["message"]
    assert error["details"]["current"] == "CANCELLED"
    assert error["details"]["requested"] == "CANCELLED"
    events = client.get("/api/runs/c1/events").json()["items"]
    assert events[-1]["payload"]["reason"] == "changed my mind"


def _fail_first_phase(factory: sessionmaker[Session], run_id: str) -> str:
    with factory() as session:
        run = session.scalars(select(Run).where(Run.run_id == run_id)).one()
        transition_run(session, run, RunState.RUNNING)
        phase = session.scalars(
            select(Phase).where(Phase.run_pk == run.id).order_by(Phase.id)
        ).first()
        assert phase is not None
        transition_phase(session, phase, PhaseState.EXECUTING)
        transition_phase(session, phase, PhaseState.FAILED, reason="tests failed twice")
        transition_run(session, run, RunState.DONE_FAILED_ENVIRONMENT, reason="phase failed")
        session.commit()
        return phase.phase_id


def test_retry_a_failed_phase_reopens_the_run(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    client.post("/api/runs", json=plan_body("r1"))
    phase_id = _fail_first_phase(session_factory, "r1")
    assert client.get("/api/runs/r1").json()["tiers"][0]["state"] == "FAILED"

    response = client.post(f"/api/runs/r1/phases/{phase_id}/retry")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "QUEUED"
    run = client.get("/api/runs/r1").json()
    assert run["state"] == "QUEUED" and run["failure_reason"] is None
    assert run["tiers"][0]["state"] == "PENDING"

    again = client.post(f"/api/runs/r1/phases/{phase_id}/retry")
    assert again.status_code == 409
    assert again.json()["error"]["details"] == {
        "entity": "phase",
        "id": phase_id,
        "current": "QUEUED",
        "requested": "QUEUED",
    }


def test_retry_of_a_phase_in_a_cancelled_run_is_refused(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    client.post("/api/runs", json=plan_body("r2"))
    with session_factory() as session:
        run = session.scalars(select(Run).where(Run.run_id == "r2")).one()
        transition_run(session, run, RunState.RUNNING)
        phase = session.scalars(select(Phase).where(Phase.run_pk == run.id)).first()
        assert phase is not None
        transition_phase(session, phase, PhaseState.EXECUTING)
        transition_phase(session, phase, PhaseState.FAILED)
        transition_run(session, run, RunState.CANCELLED)
        session.commit()
        phase_id = phase.phase_id
    response = client.post(f"/api/runs/r2/phases/{phase_id}/retry")
    assert response.status_code == 409
    assert response.json()["error"]["details"]["current"] == "CANCELLED"


def test_retry_unknown_phase_is_404(client: TestClient) -> None:
    client.post("/api/runs", json=plan_body("r3"))
    response = client.post("/api/runs/r3/phases/NOPE/retry")
    assert response.status_code == 404
    assert response.json()["error"]["details"] == {"run_id": "r3", "phase_id": "NOPE"}


def test_the_project_parameter_puts_the_run_in_that_project(
    client: TestClient, engine: Engine
) -> None:
    # The dashboard's "New run" form: a plan pasted as it is, the project chosen beside it.
    assert client.post("/api/projects", json={"name": "chosen"}).status_code == 201
    body = {**V7_BODY, "run": {**V7_BODY["run"], "run_id": "in-chosen"}}
    response = client.post("/api/runs?project=chosen", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["project"] == "chosen"

    before = row_counts(engine)
    missing = client.post(
        "/api/runs?project=nowhere", json={**body, "run": {**body["run"], "run_id": "x2"}}
    )
    assert missing.status_code == 404
    assert "nowhere" in missing.json()["error"]["message"]
    assert row_counts(engine) == before
