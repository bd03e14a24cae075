"""Usage over time: the ledger aggregated per hour or day (UTC), model and role by the database
itself, on both dialects."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from autopack.runs.models import Run
from autopack.usage.models import LlmCall, LlmRole
from autopack.usage.service import record_llm_call, usage_timeseries
from tests.factories import plan_body


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 5, day, hour, minute, tzinfo=UTC)


# (run, model, role, time, input tokens, output tokens, cost)
CALLS = [
    ("u1", "claude-sonnet", LlmRole.BUILDER, at(1, 9, 5), 1000, 100, "0.010000"),
    ("u1", "claude-sonnet", LlmRole.BUILDER, at(1, 9, 55), 500, 50, "0.005000"),
    ("u1", "claude-sonnet", LlmRole.AUDITOR, at(1, 10, 0), 300, 30, "0.003000"),
    ("u1", "gpt-5.4", LlmRole.BUILDER, at(1, 23, 59), 200, 20, "0.002000"),
    ("u2", "gpt-5.4", LlmRole.BUILDER, at(2, 0, 0), 400, 40, "0.004000"),
    ("u2", "claude-sonnet", LlmRole.BUILDER, at(2, 13, 30), 600, 60, "0.006000"),
]


def _ledger(client: TestClient, sessions: sessionmaker[Session]) -> None:
    client.post("/api/projects", json={"name": "other"})
    assert client.post("/api/runs", json=plan_body("u1")).status_code == 201
    body = {**plan_body("u2"), "project": "other"}
    assert client.post("/api/runs", json=body).status_code == 201
    with sessions() as session:
        runs = {run.run_id: run for run in session.scalars(select(Run))}
        for run_id, model, role, when, tokens_in, tokens_out, cost in CALLS:
            record_llm_call(
                session,
                LlmCall(
                    provider="anthropic" if model.startswith("claude") else "openai",
                    model=model,
                    role=role,
                    run_pk=runs[run_id].id,
                    input_tokens=tokens_in,
                    output_tokens=tokens_out,
                    cost_usd=Decimal(cost),
                    outcome="ok",
                    created_at=when,
                ),
            )
        session.commit()


def _points(body: dict[str, object]) -> list[tuple[str, str, str, int, int, int, str]]:
    points = body["points"]
    assert isinstance(points, list)
    return [
        (
            p["start"],
            p["model"],
            p["role"],
            p["calls"],
            p["input_tokens"],
            p["output_tokens"],
            p["cost_usd"],
        )
        for p in points
    ]


def test_daily_by_default(client: TestClient, session_factory: sessionmaker[Session]) -> None:
    _ledger(client, session_factory)
    response = client.get("/api/usage/timeseries")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["bucket"] == "day"
    assert _points(body) == [
        ("2026-05-01T00:00:00Z", "claude-sonnet", "auditor", 1, 300, 30, "0.003000"),
        ("2026-05-01T00:00:00Z", "claude-sonnet", "builder", 2, 1500, 150, "0.015000"),
        ("2026-05-01T00:00:00Z", "gpt-5.4", "builder", 1, 200, 20, "0.002000"),
        ("2026-05-02T00:00:00Z", "claude-sonnet", "builder", 1, 600, 60, "0.006000"),
        ("2026-05-02T00:00:00Z", "gpt-5.4", "builder", 1, 400, 40, "0.004000"),
    ]


def test_hourly_since_and_project(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    _ledger(client, session_factory)
    hourly = client.get("/api/usage/timeseries", params={"bucket": "hour"}).json()
    assert hourly["bucket"] == "hour"
    assert [(p[0], p[1], p[2], p[3]) for p in _points(hourly)] == [
        ("2026-05-01T09:00:00Z", "claude-sonnet", "builder", 2),
        ("2026-05-01T10:00:00Z", "claude-sonnet", "auditor", 1),
        ("2026-05-01T23:00:00Z", "gpt-5.4", "builder", 1),
        ("2026-05-02T00:00:00Z", "gpt-5.4", "builder", 1),
        ("2026-05-02T13:00:00Z", "claude-sonnet", "builder", 1),
    ]

    since = client.get(
        "/api/usage/timeseries",
        params={"bucket": "hour", "since": "2026-05-01T23:00:00+00:00"},
    ).json()
    assert [p[0] for p in _points(since)] == [
        "2026-05-01T23:00:00Z",
        "2026-05-02T00:00:00Z",
        "2026-05-02T13:00:00Z",
    ]
    # The same instant written with another offset, and without one (UTC).
    for value in ("2026-05-02T01:00:00+02:00", "2026-05-01T23:00:00"):
        again = client.get(
            "/api/usage/timeseries", params={"bucket": "hour", "since": value}
        ).json()
        assert again == since

    other = client.get("/api/usage/timeseries", params={"project": "other"}).json()
    assert [(p[0], p[1], p[3]) for p in _points(other)] == [
        ("2026-05-02T00:00:00Z", "claude-sonnet", 1),
        ("2026-05-02T00:00:00Z", "gpt-5.4", 1),
    ]
    none = client.get("/api/usage/timeseries", params={"project": "nobody"}).json()
    assert none == {"bucket": "day", "points": []}


def test_buckets_are_utc_whatever_the_database_session_time_zone(
    client: TestClient, session_factory: sessionmaker[Session], dialect: str
) -> None:
    _ledger(client, session_factory)
    with session_factory() as session:
        if dialect == "postgresql":
            session.execute(text("SET TIME ZONE 'Asia/Tokyo'"))
        series = usage_timeseries(session, "day")
    starts = sorted({point.start for point in series.points})
    assert starts == [at(1, 0), at(2, 0)]
    assert all(
        start.tzinfo is not None and start.utcoffset() == UTC.utcoffset(None) for start in starts
    )


def test_bad_queries_are_422(client: TestClient) -> None:
    for params in (
        {"bucket": "week"},
        {"since": "yesterday"},
        {"since": "9999-12-31T23:59:59-23:59"},  # past the largest datetime in UTC
        {"project": "a\x00b"},
    ):
        response = client.get("/api/usage/timeseries", params=params)
        assert response.status_code == 422, params
        assert response.json()["error"]["code"] == "invalid_input"
