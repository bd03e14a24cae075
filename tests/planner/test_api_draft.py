"""``POST /api/plans/draft`` on both databases, with the model replayed from a cassette recorded
for the exact requests the planner makes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from autopack.api.app import create_app
from autopack.executor.environment import load_router
from autopack.plans.loader import load_plan
from autopack.settings import Settings
from autopack.usage.models import LlmCall, LlmRole
from tests.conftest import make_settings, row_counts
from tests.planner.support import (
    IDEA,
    INVALID_PLAN,
    VALID_PLAN,
    fenced,
    make_repo,
    record_cassette,
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "calc")


@pytest.fixture
def cassette(tmp_path: Path) -> Path:
    return tmp_path / "planner.jsonl"


@pytest.fixture
def replay_settings(database_url: str, tmp_path: Path, cassette: Path) -> Settings:
    # No executor threads: a configured provider would otherwise start them.
    return make_settings(
        database_url, tmp_path / "runs", replay_cassette=cassette, executor_threads=0
    )


@pytest.fixture
def api(replay_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(replay_settings)) as client:
        yield client


def record(
    cassette: Path, repo: Path, replies: list[str], settings: Settings, **kwargs: Any
) -> None:
    record_cassette(cassette, repo, replies, load_router(settings), **kwargs)


def ledger(engine: Engine) -> list[LlmCall]:
    with Session(engine) as session:
        return list(session.scalars(select(LlmCall).order_by(LlmCall.id)))


def test_a_draft_for_a_repo_path(
    api: TestClient, repo: Path, cassette: Path, replay_settings: Settings, engine: Engine
) -> None:
    record(cassette, repo, [fenced(VALID_PLAN)], replay_settings)
    response = api.post("/api/plans/draft", json={"idea": IDEA, "repo_path": str(repo)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"plan", "yaml", "model", "repaired", "usage"}
    assert body["yaml"] == VALID_PLAN
    assert load_plan(VALID_PLAN, fmt="yaml").model_dump(mode="json") == body["plan"]
    assert body["plan"]["phases"][0]["phase_index"] == 0
    assert body["model"] == "claude-sonnet-5-5"
    assert body["repaired"] is False
    assert body["usage"] == {"input_tokens": 1000, "output_tokens": 200, "cost_usd": "0.004000"}
    (row,) = ledger(engine)
    assert (row.role, row.run_pk, row.outcome, row.provider) == (
        LlmRole.PLANNER,
        None,
        "ok",
        "replay",
    )


def test_a_draft_for_a_registered_project_names_it(
    api: TestClient, repo: Path, cassette: Path, replay_settings: Settings
) -> None:
    created = api.post("/api/projects", json={"name": "calc", "repo": str(repo)})
    assert created.status_code == 201, created.text
    named = "project: calc\n" + VALID_PLAN
    record(cassette, repo, [fenced(named)], replay_settings, project="calc", complexity="high")
    response = api.post(
        "/api/plans/draft", json={"idea": IDEA, "project": "calc", "complexity": "high"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["plan"]["project"] == "calc"
    assert response.json()["model"] == "claude-opus-5-5"
    created_run = api.post(
        "/api/runs", content=response.json()["yaml"], headers={"content-type": "application/yaml"}
    )
    assert created_run.status_code == 201, created_run.text
    assert created_run.json()["project"] == "calc"


def test_a_repaired_draft_says_so(
    api: TestClient, repo: Path, cassette: Path, replay_settings: Settings, engine: Engine
) -> None:
    record(cassette, repo, [fenced(INVALID_PLAN), fenced(VALID_PLAN)], replay_settings)
    body = api.post("/api/plans/draft", json={"idea": IDEA, "repo_path": str(repo)}).json()
    assert body["repaired"] is True
    assert body["usage"]["input_tokens"] == 2000
    assert [row.outcome for row in ledger(engine)] == ["invalid", "ok"]


def test_invalid_twice_is_422_in_the_error_envelope(
    api: TestClient, repo: Path, cassette: Path, replay_settings: Settings, engine: Engine
) -> None:
    record(cassette, repo, [fenced(INVALID_PLAN), fenced(INVALID_PLAN)], replay_settings)
    before = row_counts(engine)
    response = api.post("/api/plans/draft", json={"idea": IDEA, "repo_path": str(repo)})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "plan_draft_rejected"
    assert "invalid twice" in error["message"]
    assert error["details"][0]["loc"] == "phases[0].tier_id"
    assert error["details"][1] == {"loc": "tiers[0]", "message": "tier 'core' has no phases"}
    after = row_counts(engine)
    assert {
        table: after[table] - before[table] for table in after if after[table] != before[table]
    } == {"llm_calls": 2}


@pytest.mark.parametrize(
    "body",
    [
        {"idea": IDEA, "project": "calc", "repo_path": "/srv/checkout"},
        {"idea": IDEA},
    ],
    ids=["both", "neither"],
)
def test_exactly_one_of_project_and_repo_path(api: TestClient, body: dict[str, Any]) -> None:
    response = api.post("/api/plans/draft", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"][0]["loc"] == "body"
    assert "exactly one of `project` and `repo_path`" in error["details"][0]["message"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"idea": "", "repo_path": "/srv/checkout"}, "body.idea"),
        ({"idea": IDEA, "repo_path": "/srv/checkout", "complexity": "huge"}, "body.complexity"),
        ({"idea": IDEA, "repo_path": "/srv/checkout", "extra": 1}, "body.extra"),
    ],
)
def test_bad_bodies_are_located(api: TestClient, body: dict[str, Any], loc: str) -> None:
    response = api.post("/api/plans/draft", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == loc


def test_an_unknown_project_is_404(api: TestClient) -> None:
    response = api.post("/api/plans/draft", json={"idea": IDEA, "project": "nope"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_project_without_a_local_repository_is_422(api: TestClient) -> None:
    api.post("/api/projects", json={"name": "remote", "repo": "https://example.com/x.git"})
    response = api.post("/api/plans/draft", json={"idea": IDEA, "project": "remote"})
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {"loc": "body.project", "message": "no local repository"}
    ]


def test_a_repo_path_that_is_not_a_directory_is_422(api: TestClient, tmp_path: Path) -> None:
    response = api.post(
        "/api/plans/draft", json={"idea": IDEA, "repo_path": str(tmp_path / "nowhere")}
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == "body.repo_path"


def test_a_provider_failure_is_502_with_its_code(
    api: TestClient, repo: Path, cassette: Path, engine: Engine
) -> None:
    cassette.write_text("")
    response = api.post("/api/plans/draft", json={"idea": IDEA, "repo_path": str(repo)})
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "replay_miss"
    assert error["message"].startswith("the planner model call failed: no recorded reply")
    assert error["details"]["retryable"] is False
    assert [row.outcome for row in ledger(engine)] == ["error"]


def test_an_unusable_provider_is_a_configuration_error(
    api: TestClient, repo: Path, cassette: Path
) -> None:
    # The cassette does not exist: the replay provider cannot be built.
    response = api.post("/api/plans/draft", json={"idea": IDEA, "repo_path": str(repo)})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "cassette_invalid"


def test_the_route_is_in_the_schema(api: TestClient) -> None:
    operation = api.get("/openapi.json").json()["paths"]["/api/plans/draft"]["post"]
    assert operation["operationId"] == "draft_plan"
    assert {"422", "502"} <= set(operation["responses"])
