"""The per-key rate limit on changes (429 with Retry-After) and CORS (off unless configured)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from autopack.api.app import create_app
from autopack.auth.schemas import Scope
from tests.auth.support import bearer, create_key
from tests.conftest import make_settings


def _project(client: TestClient, name: str, key: str | None = None) -> int:
    headers = bearer(key) if key else {}
    return client.post("/api/projects", json={"name": name}, headers=headers).status_code


def test_changes_are_limited_per_key(
    database_url: str, tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    first = create_key(session_factory, "first", Scope.WRITE)
    second = create_key(session_factory, "second", Scope.WRITE)
    settings = make_settings(database_url, tmp_path / "runs", rate_limit_per_minute=2)
    with TestClient(create_app(settings)) as client:
        assert [_project(client, f"p{i}", first) for i in range(2)] == [201, 201]
        refused = client.post("/api/projects", json={"name": "p3"}, headers=bearer(first))
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert "2 changes a minute" in refused.json()["error"]["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # Nothing was written by the refused request.
        assert [p["name"] for p in client.get("/api/projects", headers=bearer(first)).json()] == [
            "p0",
            "p1",
        ]
        # Reads are not limited, and another key has its own budget.
        for _ in range(5):
            assert client.get("/api/projects", headers=bearer(first)).status_code == 200
        assert _project(client, "q0", second) == 201
        # Requests refused before the limit (no key) spend nobody's budget.
        for _ in range(3):
            assert _project(client, "anon") == 401
        assert _project(client, "q1", second) == 201
        assert _project(client, "q2", second) == 429


def test_without_authentication_the_limit_is_per_client_address(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path / "runs", rate_limit_per_minute=1)
    with TestClient(create_app(settings)) as client:
        assert _project(client, "a") == 201
        assert _project(client, "b") == 429


def test_zero_turns_the_limit_off(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path / "runs", rate_limit_per_minute=0)
    with TestClient(create_app(settings)) as client:
        assert {_project(client, f"p{i}") for i in range(5)} == {201}


PREFLIGHT = {
    "Origin": "https://dash.example.com",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


def test_cors_is_off_by_default(database_url: str, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(database_url, tmp_path / "runs"))) as client:
        preflight = client.options("/api/runs", headers=PREFLIGHT)
        assert "access-control-allow-origin" not in preflight.headers
        simple = client.get("/api/runs", headers={"Origin": "https://dash.example.com"})
        assert simple.status_code == 200
        assert "access-control-allow-origin" not in simple.headers


def test_cors_allows_the_listed_origins_only(
    database_url: str, tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    key = create_key(session_factory, "dash", Scope.READ)
    settings = make_settings(
        database_url,
        tmp_path / "runs",
        cors_origins="https://dash.example.com, http://localhost:5173",
    )
    with TestClient(create_app(settings)) as client:
        preflight = client.options("/api/runs", headers=PREFLIGHT)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://dash.example.com"
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in preflight.headers
        other = client.options("/api/runs", headers={**PREFLIGHT, "Origin": "https://evil.test"})
        assert "access-control-allow-origin" not in other.headers
        local = {"Origin": "http://localhost:5173"}
        ok = client.get("/api/runs", headers={**local, **bearer(key)})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "http://localhost:5173"
        # A refusal is readable by the browser too (CORS is the outermost layer).
        refused = client.get("/api/runs", headers=local)
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == "http://localhost:5173"
        assert "www-authenticate" in refused.headers["access-control-expose-headers"].lower()
