"""The backlogs of every project in one page: the same entries (and ages) as each project's
backlog, with the project's name, the most severe first, then the most recently updated."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from autopack.issues.models import Issue
from tests.factories import plan_body


def _issue(key: str, severity: str = "minor", **extra: object) -> dict[str, object]:
    return {"issue_key": key, "severity": severity, "source": "tests", **extra}


def _backlogs(client: TestClient, sessions: sessionmaker[Session]) -> None:
    for project, runs in (("alpha", ("a1", "a2", "a3")), ("beta", ("b1",))):
        assert client.post("/api/projects", json={"name": project}).status_code == 201
        for run_id in runs:
            body = {**plan_body(run_id), "project": project}
            assert client.post("/api/runs", json=body).status_code == 201
    for run_id, issue in (
        ("a1", _issue("tests:flaky")),
        ("a2", _issue("tests:flaky")),
        ("a1", _issue("lint:E501")),
        ("a2", _issue("budget:run", "major", source="budget")),
        ("b1", _issue("tests:crash", "critical")),
        ("b1", _issue("lint:E501")),
    ):
        response = client.post(f"/api/runs/{run_id}/issues", json=issue)
        assert response.status_code == 201, response.text
    # Known update times, so that the order within one severity is certain.
    times = {
        "tests:flaky": datetime(2026, 3, 1, tzinfo=UTC),
        "lint:E501": datetime(2026, 2, 1, tzinfo=UTC),
    }
    with sessions() as session:
        for key, when in times.items():
            session.execute(update(Issue).where(Issue.issue_key == key).values(updated_at=when))
        session.execute(
            update(Issue)
            .where(Issue.issue_key == "lint:E501", Issue.project_pk == _pk(session, "beta"))
            .values(updated_at=datetime(2026, 4, 1, tzinfo=UTC))
        )
        session.commit()


def _pk(session: Session, name: str) -> int:
    from autopack.projects.service import get_project

    return get_project(session, name).id


def test_every_backlog_in_one_page_most_severe_first(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    _backlogs(client, session_factory)

    page = client.get("/api/issues").json()
    assert page["total"] == 5 and page["limit"] == 50 and page["offset"] == 0
    assert [(item["project"], item["issue_key"]) for item in page["items"]] == [
        ("beta", "tests:crash"),
        ("alpha", "budget:run"),
        ("beta", "lint:E501"),  # updated 2026-04
        ("alpha", "tests:flaky"),  # 2026-03
        ("alpha", "lint:E501"),  # 2026-02
    ]
    flaky = page["items"][3]
    # Exactly the project backlog's entry, plus the project.
    backlog = client.get("/api/projects/alpha/issues").json()
    same = next(item for item in backlog if item["issue_key"] == "tests:flaky")
    assert flaky == {**same, "project": "alpha"}
    assert flaky["occurrence_count"] == 2 and flaky["age_in_runs"] == 2
    assert flaky["first_seen_run_id"] == "a1" and flaky["last_seen_run_id"] == "a2"

    alpha = client.get("/api/issues", params={"project": "alpha"}).json()
    assert alpha["total"] == 3
    assert {item["project"] for item in alpha["items"]} == {"alpha"}
    minors = client.get("/api/issues", params={"severity": "minor"}).json()
    assert [item["issue_key"] for item in minors["items"]] == [
        "lint:E501",
        "tests:flaky",
        "lint:E501",
    ]
    assert client.get("/api/issues", params={"status": "resolved"}).json()["total"] == 0
    assert client.get("/api/issues", params={"status": "open"}).json()["total"] == 5
    assert client.get("/api/issues", params={"project": "nobody"}).json() == {
        "items": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
    }

    second = client.get("/api/issues", params={"limit": 2, "offset": 2}).json()
    assert second["total"] == 5
    assert [item["issue_key"] for item in second["items"]] == ["lint:E501", "tests:flaky"]


def test_bad_filters_are_422(client: TestClient) -> None:
    for params in (
        {"severity": "huge"},
        {"status": "gone"},
        {"limit": 501},
        {"offset": -1},
        {"offset": 2**63},
        {"project": "a\x00b"},
    ):
        response = client.get("/api/issues", params=params)
        assert response.status_code == 422, params
        assert response.json()["error"]["code"] == "invalid_input"
