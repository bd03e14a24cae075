"""/metrics: every metric family after a small run, route templates (never raw paths) as labels,
run gauges read from the database, and who may scrape."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy.orm import Session, sessionmaker

from autopack.api.app import create_app
from autopack.auth.schemas import Scope
from autopack.executor.service import submit
from autopack.observability.metrics import PROCESS_REGISTRY, is_loopback
from autopack.runs.service import get_run
from autopack.runs.states import RunState, transition_run
from autopack.settings import Settings
from tests.auth.support import bearer, create_key
from tests.conftest import make_settings
from tests.executor.support import make_plan, make_project
from tests.observability.conftest import run_small_plan

LOOPBACK = ("127.0.0.1", 50000)

FAMILIES = {
    "autopack_runs": "gauge",
    "autopack_run_budget_remaining": "gauge",
    "autopack_phase_duration_seconds": "histogram",
    "autopack_attempts": "counter",
    "autopack_llm_tokens": "counter",
    "autopack_llm_cost_usd": "counter",
    "autopack_http_requests": "counter",
    "autopack_http_request_duration_seconds": "histogram",
}


def scrape(client: TestClient) -> dict[str, list[Sample]]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        family.name: list(family.samples)
        for family in text_string_to_metric_families(response.text)
    }


def samples(families: dict[str, list[Sample]], name: str, **labels: str) -> list[Sample]:
    return [
        sample
        for family in families.values()
        for sample in family
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]


def value(families: dict[str, list[Sample]], name: str, **labels: str) -> float:
    return sum(sample.value for sample in samples(families, name, **labels))


def process_value(name: str, **labels: str) -> float:
    return PROCESS_REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), client=LOOPBACK) as client:
        yield client


def test_every_family_after_a_small_run(
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    app_client: TestClient,
) -> None:
    # The process metrics are shared by everything in this process: read as differences.
    attempts_before = process_value("autopack_attempts_total", outcome="success")
    phases_before = process_value("autopack_phase_duration_seconds_count", state="COMPLETE")

    run_id = run_small_plan(settings, session_factory, tmp_path, monkeypatch)
    app_client.get(f"/api/runs/{run_id}")
    app_client.get(f"/api/runs/{run_id}")
    app_client.get("/api/runs/run-that-does-not-exist")
    app_client.get("/api/nothing-here")

    families = scrape(app_client)

    for name, kind in FAMILIES.items():
        assert name in families, f"/metrics has no {name} family"
        if name == "autopack_run_budget_remaining":
            continue  # no RUNNING run now: tested below
        suffix = {"counter": "_total", "histogram": "_count", "gauge": ""}[kind]
        assert samples(families, name + suffix), f"no {name}{suffix} samples"

    assert value(families, "autopack_runs", state="DONE_SUCCESS") == 1
    assert value(families, "autopack_runs", state="QUEUED") == 0  # every state has a series
    assert {s.labels["state"] for s in samples(families, "autopack_runs")} == {
        state.value for state in RunState
    }
    assert process_value("autopack_attempts_total", outcome="success") == attempts_before + 1
    assert (
        process_value("autopack_phase_duration_seconds_count", state="COMPLETE")
        == phases_before + 1
    )
    # Summed over models: other tests in this process may have counted other models, some with
    # no cache tokens; this run's builder call reported all four kinds.
    builder_tokens: dict[str, float] = {}
    for sample in samples(families, "autopack_llm_tokens_total", role="builder"):
        kind = sample.labels["kind"]
        builder_tokens[kind] = builder_tokens.get(kind, 0.0) + sample.value
    assert set(builder_tokens) == {"input", "output", "cache_read", "cache_write"}
    assert all(tokens > 0 for tokens in builder_tokens.values())
    assert {s.labels["model"] for s in samples(families, "autopack_llm_tokens_total")}
    assert value(families, "autopack_llm_cost_usd_total", role="builder") > 0

    # Route templates, never raw paths.
    run_route = "/api/runs/{run_id}"
    assert value(families, "autopack_http_requests_total", route=run_route, status="200") == 2
    assert value(families, "autopack_http_requests_total", route=run_route, status="404") == 1
    assert value(families, "autopack_http_requests_total", route="<unmatched>", status="404") == 1
    assert (
        value(
            families, "autopack_http_request_duration_seconds_count", method="GET", route=run_route
        )
        == 3
    )
    routes = {
        s.labels["route"]
        for name in ("autopack_http_requests_total", "autopack_http_request_duration_seconds_count")
        for s in samples(families, name)
    }
    assert not any(run_id in route or "nothing-here" in route for route in routes), routes


def test_budget_remaining_of_running_runs(
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    app_client: TestClient,
) -> None:
    project = make_project(tmp_path / "project")
    capped = submit(
        session_factory,
        make_plan(run={"token_cap": 10_000, "cost_cap_usd": "2.50", "run_id": "run-capped"}),
        str(project),
    )
    uncapped = submit(session_factory, make_plan(run={"run_id": "run-uncapped"}), str(project))
    queued = submit(
        session_factory, make_plan(run={"token_cap": 5, "run_id": "run-queued"}), str(project)
    )
    with session_factory() as session:
        for run_id in (capped, uncapped):
            transition_run(session, get_run(session, run_id), RunState.RUNNING)
        session.commit()

    families = scrape(app_client)

    budget = "autopack_run_budget_remaining"
    assert value(families, budget, run_id=capped, dimension="tokens") == 10_000
    assert value(families, budget, run_id=capped, dimension="cost_usd") == float(Decimal("2.50"))
    assert not samples(families, budget, run_id=uncapped)  # no cap, no series
    assert not samples(families, budget, run_id=queued)  # only RUNNING runs
    assert value(families, "autopack_runs", state="RUNNING") == 2
    assert value(families, "autopack_runs", state="QUEUED") == 1


def test_a_body_refused_before_routing_is_counted_under_its_route(
    settings: Settings, app_client: TestClient
) -> None:
    body = b"x" * (settings.max_request_body_bytes + 1)
    assert app_client.post("/api/runs", content=body).status_code == 413
    families = scrape(app_client)
    assert (
        value(
            families, "autopack_http_requests_total", method="POST", route="/api/runs", status="413"
        )
        == 1
    )


@pytest.mark.parametrize(
    ("client_address", "allowed"),
    [
        (("127.0.0.1", 1234), True),
        (("127.8.9.10", 1234), True),
        (("::1", 1234), True),
        (("10.0.0.5", 1234), False),
        (("192.168.1.20", 1234), False),
        (("testclient", 50000), False),  # a name, not an address: proves nothing
    ],
)
def test_only_loopback_clients_may_scrape_by_default(
    tmp_path: Path, sqlite_template: Path, client_address: tuple[str, int], allowed: bool
) -> None:
    settings = _sqlite_settings(tmp_path, sqlite_template)
    with TestClient(create_app(settings), client=client_address) as client:
        response = client.get("/metrics")
    if allowed:
        assert response.status_code == 200
        assert "autopack_http_requests_total" in response.text
    else:
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["code"] == "forbidden"
        assert "AUTOPACK_METRICS_PUBLIC" in error["message"] and "API key" in error["message"]
        assert error["details"] is None


def test_public_metrics_answer_anyone(tmp_path: Path, sqlite_template: Path) -> None:
    settings = _sqlite_settings(tmp_path, sqlite_template, metrics_public=True)
    with TestClient(create_app(settings), client=("10.0.0.5", 1234)) as client:
        assert client.get("/metrics").status_code == 200


def test_a_valid_api_key_may_scrape_from_anywhere(tmp_path: Path, sqlite_template: Path) -> None:
    settings = _sqlite_settings(tmp_path, sqlite_template)
    with TestClient(create_app(settings), client=("10.0.0.5", 1234)) as client:
        key = create_key(client.app.state.database.session, "prometheus", Scope.READ)
        assert client.get("/metrics", headers=bearer(key)).status_code == 200
        assert client.get("/metrics", headers={"X-API-Key": key}).status_code == 200
        assert client.get("/metrics", headers=bearer("apk_not-a-key")).status_code == 403
        assert client.get("/metrics").status_code == 403


def test_metrics_is_at_the_root_and_not_in_the_api_schema(app_client: TestClient) -> None:
    assert app_client.get("/api/metrics").status_code == 404
    schema = app_client.get("/openapi.json").json()
    assert "/metrics" not in schema["paths"]


def test_two_apps_in_one_process_keep_their_own_http_counts(
    tmp_path: Path, sqlite_template: Path
) -> None:
    first = _sqlite_settings(tmp_path / "one", sqlite_template)
    second = _sqlite_settings(tmp_path / "two", sqlite_template)
    with (
        TestClient(create_app(first), client=LOOPBACK) as one,
        TestClient(create_app(second), client=LOOPBACK) as two,
    ):
        one.get("/health")
        one.get("/health")
        two.get("/health")
        health = {"route": "/health", "status": "200"}
        assert value(scrape(one), "autopack_http_requests_total", **health) == 2
        assert value(scrape(two), "autopack_http_requests_total", **health) == 1


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
        ("::ffff:10.1.2.3", False),
        ("localhost", False),
        (None, False),
        ("", False),
    ],
)
def test_is_loopback(host: str | None, expected: bool) -> None:
    assert is_loopback(host) is expected


def _sqlite_settings(tmp_path: Path, template: Path, **overrides: object) -> Settings:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "autopack.db"
    path.write_bytes(template.read_bytes())
    return make_settings(f"sqlite:///{path}", tmp_path / "runs", **overrides)
