"""Issues (per run, and a project backlog deduplicated by key), usage from the ledger, projects."""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from autopack.runs.models import Run
from autopack.usage.models import LlmCall, LlmRole
from autopack.usage.service import record_llm_call
from tests.factories import plan_body


def _issue(key: str, severity: str = "minor", **extra: object) -> dict[str, object]:
    return {"issue_key": key, "severity": severity, "source": "tests", **extra}


def test_issues_dedupe_by_key_with_counts_and_age(client: TestClient) -> None:
    client.post("/api/projects", json={"name": "proj"})
    for run_id in ("r1", "r2", "r3"):
        assert (
            client.post("/api/runs", json={**plan_body(run_id), "project": "proj"}).status_code
            == 201
        )

    created = client.post(
        "/api/runs/r1/issues",
        json=_issue("tests:test_x", title="test_x fails", phase_id="P11", attempt_number=1),
    )
    assert created.status_code == 201, created.text
    assert created.json()["phase_id"] == "P11"
    client.post("/api/runs/r1/issues", json=_issue("tests:test_x"))
    client.post("/api/runs/r2/issues", json=_issue("tests:test_x", "major"))
    client.post("/api/runs/r3/issues", json=_issue("lint:E501"))

    backlog = client.get("/api/projects/proj/issues").json()
    assert [item["issue_key"] for item in backlog] == ["tests:test_x", "lint:E501"]
    flaky = backlog[0]
    assert flaky["occurrence_count"] == 3
    assert flaky["severity"] == "major"  # the worst seen
    assert flaky["first_seen_run_id"] == "r1" and flaky["last_seen_run_id"] == "r2"
    assert flaky["age_in_runs"] == 2  # r2 and r3 started since it was first seen
    assert flaky["title"] == "test_x fails"
    assert backlog[1]["age_in_runs"] == 0

    per_run = client.get("/api/runs/r1/issues").json()
    assert [i["issue_key"] for i in per_run] == ["tests:test_x", "tests:test_x"]
    assert client.get("/api/runs/r3/issues").json()[0]["issue_key"] == "lint:E501"
    majors = client.get("/api/projects/proj/issues", params={"severity": "major"}).json()
    assert [item["issue_key"] for item in majors] == ["tests:test_x"]

    run = client.get("/api/runs/r1").json()
    assert run["minor_issues_count"] == 2


def test_issue_for_an_unknown_phase_is_404(client: TestClient) -> None:
    client.post("/api/runs", json=plan_body("r1"))
    response = client.post("/api/runs/r1/issues", json=_issue("k", phase_id="NOPE"))
    assert response.status_code == 404
    assert client.get("/api/runs/r1/issues").json() == []


def test_backlog_of_unknown_project_is_404(client: TestClient) -> None:
    assert client.get("/api/projects/ghost/issues").status_code == 404


def test_usage_summary_reads_the_ledger(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    client.post("/api/runs", json=plan_body("u1"))
    client.post("/api/runs", json=plan_body("u2"))
    with session_factory() as session:
        runs = {r.run_id: r for r in session.scalars(select(Run))}
        calls = [
            ("u1", "claude-sonnet", LlmRole.BUILDER, 1000, 200, 600, "0.0060"),
            ("u1", "claude-sonnet", LlmRole.BUILDER, 500, 100, 0, "0.0030"),
            ("u1", "gpt-5.4", LlmRole.AUDITOR, 800, 50, 300, "0.0025"),
            ("u2", "claude-sonnet", LlmRole.BUILDER, 100, 10, 0, "0.0005"),
        ]
        for run_id, model, role, tokens_in, tokens_out, cached, cost in calls:
            record_llm_call(
                session,
                LlmCall(
                    provider="anthropic" if model.startswith("claude") else "openai",
                    model=model,
                    role=role,
                    run_pk=runs[run_id].id,
                    input_tokens=tokens_in,
                    output_tokens=tokens_out,
                    cache_read_tokens=cached,
                    cost_usd=Decimal(cost),
                    outcome="ok",
                ),
            )
        session.commit()

    everything = client.get("/api/usage").json()
    assert everything["calls"] == 4
    assert everything["input_tokens"] == 2400 and everything["output_tokens"] == 360
    assert everything["cache_read_tokens"] == 900 and everything["cache_write_tokens"] == 0
    assert Decimal(everything["cost_usd"]) == Decimal("0.0120")

    u1 = client.get("/api/usage", params={"run_id": "u1"}).json()
    rows = {(r["model"], r["role"]): r for r in u1["by_model_role"]}
    assert rows[("claude-sonnet", "builder")]["calls"] == 2
    assert rows[("claude-sonnet", "builder")]["input_tokens"] == 1500
    assert rows[("claude-sonnet", "builder")]["cache_read_tokens"] == 600
    assert Decimal(rows[("claude-sonnet", "builder")]["cost_usd"]) == Decimal("0.0090")
    assert rows[("gpt-5.4", "auditor")]["output_tokens"] == 50
    assert u1["total_tokens"] == 2650  # 1500 + 300 + 850
    assert client.get("/api/usage", params={"project": "default"}).json()["calls"] == 4
    assert client.get("/api/usage", params={"run_id": "nope"}).json()["calls"] == 0


def test_projects_register_list_get_and_conflict(client: TestClient) -> None:
    body = {
        "name": "webapp",
        "repo": "https://git.example.com/webapp.git",
        "default_branch": "develop",
        "default_test_cmd": "pytest -q",
        "protected_paths": ["migrations/", ".github/"],
    }
    created = client.post("/api/projects", json=body)
    assert created.status_code == 201
    assert created.json()["protected_paths"] == ["migrations/", ".github/"]
    duplicate = client.post("/api/projects", json=body)
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "conflict"
    assert [p["name"] for p in client.get("/api/projects").json()] == ["webapp"]
    assert client.get("/api/projects/webapp").json()["default_branch"] == "develop"
    bad = client.post("/api/projects", json={"name": "../evil"})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["loc"] == "body.name"
