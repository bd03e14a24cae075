"""Bad input gets a precise error in the one envelope, and writes nothing (row counts)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import make_settings, row_counts
from tests.factories import V7_BODY


def _v7(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(V7_BODY)
    body.update(changes)
    return body


def _assert_rejected(
    client: TestClient,
    engine: Engine,
    status: int,
    code: str,
    *,
    json_body: Any = None,
    content: bytes | str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    before = row_counts(engine)
    if content is not None:
        response = client.post("/api/runs", content=content, headers=headers or {})
    else:
        response = client.post("/api/runs", json=json_body)
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert row_counts(engine) == before, "a rejected request must write nothing"
    return error


def test_malformed_json(client: TestClient, engine: Engine) -> None:
    error = _assert_rejected(
        client,
        engine,
        400,
        "malformed_input",
        content='{"run": {"run_id": "x",}',
        headers={"content-type": "application/json"},
    )
    assert "not valid JSON" in error["message"] and "line 1" in error["message"]


def test_malformed_yaml(client: TestClient, engine: Engine) -> None:
    error = _assert_rejected(
        client,
        engine,
        400,
        "malformed_input",
        content="run: {run_id: x\ntiers: [",
        headers={"content-type": "application/yaml"},
    )
    assert "not valid YAML" in error["message"] and "line" in error["message"]


def test_duplicate_json_keys_are_rejected(client: TestClient, engine: Engine) -> None:
    raw = json.dumps(V7_BODY)[:-1] + ', "run": {}}'
    error = _assert_rejected(
        client,
        engine,
        400,
        "malformed_input",
        content=raw,
        headers={"content-type": "application/json"},
    )
    assert "duplicate key 'run'" in error["message"]


def test_unsupported_content_type(client: TestClient, engine: Engine) -> None:
    _assert_rejected(
        client, engine, 400, "malformed_input", content="x", headers={"content-type": "text/csv"}
    )


@pytest.mark.parametrize(
    ("where", "expected_loc"),
    [
        ("top", "surprise"),
        ("run", "run.surprise"),
        ("phase", "phases[0].surprise"),
        ("scope", "phases[0].scope.surprise"),
        ("tier", "tiers[0].surprise"),
    ],
)
def test_unknown_fields_are_rejected_not_dropped(
    client: TestClient, engine: Engine, where: str, expected_loc: str
) -> None:
    body = copy.deepcopy(V7_BODY)
    target = {
        "top": body,
        "run": body["run"],
        "phase": body["phases"][0],
        "tier": body["tiers"][0],
        "scope": body["phases"][0].setdefault("scope", {}),
    }[where]
    target["surprise"] = 1
    error = _assert_rejected(client, engine, 422, "invalid_plan", json_body=body)
    assert {"loc": expected_loc, "message": "Extra inputs are not permitted"} in error["details"]


def test_wrong_types_are_located(client: TestClient, engine: Engine) -> None:
    body = copy.deepcopy(V7_BODY)
    body["run"]["token_cap"] = "lots"
    body["phases"][0]["complexity"] = "extreme"
    body["tiers"][0]["name"] = 7
    error = _assert_rejected(client, engine, 422, "invalid_plan", json_body=body)
    locs = {item["loc"] for item in error["details"]}
    assert locs == {"run.token_cap", "phases[0].complexity", "tiers[0].name"}


def test_duplicate_run_id_is_409_and_writes_nothing(client: TestClient, engine: Engine) -> None:
    assert client.post("/api/runs", json=V7_BODY).status_code == 201
    error = _assert_rejected(client, engine, 409, "conflict", json_body=V7_BODY)
    assert "my-first-run" in error["message"]


def test_duplicate_phase_ids(client: TestClient, engine: Engine) -> None:
    body = copy.deepcopy(V7_BODY)
    body["phases"].append({**body["phases"][0], "phase_index": 1})
    error = _assert_rejected(client, engine, 422, "invalid_plan", json_body=body)
    assert error["details"] == [
        {"loc": "phases[1].phase_id", "message": "duplicate phase_id 'P1' (first at phases[0])"}
    ]


def test_phase_referencing_unknown_tier(client: TestClient, engine: Engine) -> None:
    body = copy.deepcopy(V7_BODY)
    body["phases"].append({**body["phases"][0], "phase_id": "P2", "tier_id": "T9"})
    error = _assert_rejected(client, engine, 422, "invalid_plan", json_body=body)
    assert error["details"][0]["loc"] == "phases[1].tier_id"
    assert "unknown tier 'T9'" in error["details"][0]["message"]


def test_unknown_project_writes_nothing(client: TestClient, engine: Engine) -> None:
    error = _assert_rejected(client, engine, 404, "not_found", json_body=_v7(project="ghost"))
    assert "ghost" in error["message"]


def test_empty_and_non_mapping_bodies(client: TestClient, engine: Engine) -> None:
    _assert_rejected(
        client,
        engine,
        400,
        "malformed_input",
        content="",
        headers={"content-type": "application/json"},
    )
    _assert_rejected(client, engine, 422, "invalid_plan", json_body=[1, 2])


def test_body_over_the_limit_is_413(engine: Engine, database_url: str, tmp_path: Any) -> None:
    from autopack.api.app import create_app

    settings = make_settings(database_url, tmp_path / "runs", max_request_body_bytes=4096)
    with TestClient(create_app(settings)) as client:
        body = copy.deepcopy(V7_BODY)
        body["run"]["goal"] = "x" * 5000
        error = _assert_rejected(client, engine, 413, "payload_too_large", json_body=body)
        assert error["details"] == {"max_bytes": 4096}

        # A chunked body (no Content-Length) is counted as it streams.
        def chunks() -> Any:
            for _ in range(10):
                yield b" " * 1000

        response = client.post(
            "/api/runs", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        # just under the limit is fine
        small = copy.deepcopy(V7_BODY)
        assert client.post("/api/runs", json=small).status_code == 201


def test_illegal_transition_through_the_api_writes_nothing(
    client: TestClient, engine: Engine
) -> None:
    client.post("/api/runs", json=V7_BODY)
    client.post("/api/runs/my-first-run/cancel")
    before = row_counts(engine)
    response = client.post("/api/runs/my-first-run/cancel")
    assert response.status_code == 409
    assert row_counts(engine) == before


def test_bad_issue_body_is_422_with_locations(client: TestClient, engine: Engine) -> None:
    client.post("/api/runs", json=V7_BODY)
    before = row_counts(engine)
    response = client.post(
        "/api/runs/my-first-run/issues",
        json={"issue_key": "", "severity": "apocalyptic", "source": "tests", "extra": 1},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    locs = {item["loc"] for item in error["details"]}
    assert locs == {"body.issue_key", "body.severity", "body.extra"}
    assert row_counts(engine) == before


def test_model_overrides_must_name_models_of_the_routing_file(
    client: TestClient, engine: Engine
) -> None:
    body = _v7(run={**V7_BODY["run"], "models": {"builder": "gpt-99-imaginary"}})
    error = _assert_rejected(client, engine, 422, "invalid_plan", json_body=body)
    assert error["details"][0]["loc"] == "run.models.builder"
    assert "gpt-99-imaginary" in error["details"][0]["message"]
    good = _v7(run={**V7_BODY["run"], "models": {"builder": ["claude-sonnet-5-5"]}})
    assert client.post("/api/runs", json=good).status_code == 201


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs?project=a%00b",
        "/api/runs/a%00b",
        "/api/projects/a%00b",
        "/api/projects/a%00b/issues",
        "/api/runs/a%00b/events",
    ],
)
def test_a_nul_in_a_path_or_query_is_the_callers_error_not_a_500(
    client: TestClient, engine: Engine, path: str
) -> None:
    # PostgreSQL text cannot hold NUL (SQLite can): either way the answer is the caller's.
    response = client.get(path)
    assert response.status_code in (200, 404, 422), response.text
    if engine.dialect.name == "postgresql":
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_input"
        assert "NUL" in response.json()["error"]["message"]
