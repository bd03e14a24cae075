"""/health and /ready with a real database round trip; the one error envelope; stable
operation ids in the OpenAPI schema."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from autopack.api.app import create_app
from tests.conftest import _admin_conninfo, create_pg_database, drop_pg_database, make_settings

# The operation ids the generated dashboard client is built on: changing one breaks clients.
OPERATION_IDS = {
    "health",
    "ready",
    "create_run",
    "start_run",
    "list_runs",
    "get_run",
    "cancel_run",
    "retry_phase",
    "list_phase_attempts",
    "promote_run",
    "list_run_events",
    "stream_run_events",
    "record_issue",
    "list_run_issues",
    "list_project_issues",
    "list_issues",
    "get_usage_summary",
    "get_usage_timeseries",
    "create_project",
    "list_projects",
    "get_project",
    "draft_plan",
    "list_api_keys",
    "create_api_key",
    "revoke_api_key",
    "list_approvals",
    "get_approval",
    "approve_approval",
    "reject_approval",
    "list_rules",
    "approve_rule",
    "retire_rule",
    "search_memory",
    "get_memory_stats",
}


def test_health_and_ready_report_the_database(client: TestClient, dialect: str) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "healthy"
    assert body["database"]["status"] == "ok"
    assert body["database"]["dialect"] == dialect
    ready = client.get("/ready").json()
    assert ready["ready"] is True
    assert ready["database"]["schema_revision"] == ready["database"]["schema_head"]


def test_health_is_503_when_the_database_goes_away(tmp_path: Path) -> None:
    url = create_pg_database("autopack_health")
    settings = make_settings(url, tmp_path, db_bootstrap=True, db_connect_timeout_seconds=2)
    try:
        with TestClient(create_app(settings)) as client:
            assert client.get("/health").status_code == 200
            drop_pg_database(url)  # WITH (FORCE): live connections are cut
            health = client.get("/health")
            assert health.status_code == 503
            assert health.json()["status"] == "unhealthy"
            assert health.json()["database"]["status"] == "unreachable"
            assert client.get("/ready").status_code == 503
            api = client.get("/api/runs")
            assert api.status_code == 503
            assert api.json()["error"]["code"] == "database_unavailable"
    finally:
        drop_pg_database(url)


def test_health_is_503_when_postgres_refuses_connections(tmp_path: Path) -> None:
    url = create_pg_database("autopack_health")
    settings = make_settings(url, tmp_path, db_bootstrap=True)
    try:
        with TestClient(create_app(settings)) as client:
            with psycopg.connect(_admin_conninfo(), autocommit=True) as admin:
                name = url.rsplit("/", 1)[1]
                admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )
            assert client.get("/health").status_code == 503
    finally:
        drop_pg_database(url)


def test_unknown_route_and_wrong_method_use_the_envelope(client: TestClient) -> None:
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"code": "not_found", "message": "Not Found", "details": None}
    }
    wrong = client.delete("/api/runs")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


def test_unexpected_errors_are_500_without_internals(settings: object) -> None:
    app = create_app(settings)  # type: ignore[arg-type]

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "internal_error",
            "message": "an unexpected error occurred",
            "details": None,
        }
    }


def test_operation_ids_are_stable_and_unique(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    ids = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert set(ids) == OPERATION_IDS


def test_openapi_documents_the_plan_body_and_the_error_envelope(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    create = schema["paths"]["/api/runs"]["post"]
    content = create["requestBody"]["content"]
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/Plan"}
    assert "application/yaml" in content
    components = schema["components"]["schemas"]
    assert {"Plan", "RunSpec", "TierSpec", "PhaseSpec", "PhaseScope"} <= set(components)
    for status in ("404", "409", "422"):
        ref = create["responses"].get(status) or schema["paths"]["/api/runs/{run_id}"]["get"][
            "responses"
        ].get(status)
        assert ref is not None
    assert create["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorEnvelope"
    }


@pytest.mark.parametrize("path", ["/health", "/ready", "/api/runs", "/api/usage", "/api/projects"])
def test_read_endpoints_answer(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200
