"""The rules API: a page of rules with filters, and stage changes through the one table of
allowed moves (hint -> candidate -> active -> retired; hint or candidate -> active or retired)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from autopack.projects.models import Project
from autopack.rules.models import Rule, RuleStage
from autopack.rules.service import RULE_TRANSITIONS

EARLIER = datetime(2026, 1, 1, tzinfo=UTC)


def _rules(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Four rules: two of project `alpha`, one of `beta`, one global; their ids by label."""
    with sessions() as session:
        alpha = Project(name="alpha", repo="/srv/alpha")
        beta = Project(name="beta", repo=None)
        session.add_all([alpha, beta])
        session.flush()
        rows = {
            "alpha-candidate": Rule(
                project_pk=alpha.id,
                scope_pattern="src/**",
                task_categories=["feature"],
                text="Write a test with every change.",
                stage=RuleStage.CANDIDATE,
                evidence_issue_keys=["tests:test_x"],
                hit_count=3,
                miss_count=1,
                created_at=EARLIER,
                updated_at=EARLIER,
            ),
            "alpha-active": Rule(
                project_pk=alpha.id,
                text="Keep functions short.",
                stage=RuleStage.ACTIVE,
                created_at=EARLIER,
                updated_at=EARLIER,
            ),
            "beta-retired": Rule(
                project_pk=beta.id,
                text="Old advice.",
                stage=RuleStage.RETIRED,
                created_at=EARLIER,
                updated_at=EARLIER,
            ),
            "global-candidate": Rule(
                project_pk=None,
                text="Never edit generated files.",
                stage=RuleStage.CANDIDATE,
                created_at=EARLIER,
                updated_at=EARLIER,
            ),
        }
        for rule in rows.values():
            session.add(rule)
            session.flush()
        session.commit()
        return {label: rule.id for label, rule in rows.items()}


def test_list_rules_pages_and_filters(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    ids = _rules(session_factory)
    page = client.get("/api/rules").json()
    assert page["total"] == 4 and page["limit"] == 50 and page["offset"] == 0
    assert [item["id"] for item in page["items"]] == sorted(ids.values(), reverse=True)
    first = next(item for item in page["items"] if item["id"] == ids["alpha-candidate"])
    assert first == {
        "id": ids["alpha-candidate"],
        "project": "alpha",
        "scope_pattern": "src/**",
        "task_categories": ["feature"],
        "text": "Write a test with every change.",
        "stage": "candidate",
        "evidence_issue_keys": ["tests:test_x"],
        "hit_count": 3,
        "miss_count": 1,
        "issue_key": None,
        "learned_from_runs": [],
        "confirmations": 0,
        "stage_reason": None,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    glob = next(item for item in page["items"] if item["id"] == ids["global-candidate"])
    assert glob["project"] is None and glob["scope_pattern"] is None

    candidates = client.get("/api/rules", params={"stage": "candidate"}).json()
    assert {item["id"] for item in candidates["items"]} == {
        ids["alpha-candidate"],
        ids["global-candidate"],
    }
    alpha = client.get("/api/rules", params={"project": "alpha"}).json()
    assert alpha["total"] == 2
    both = client.get("/api/rules", params={"project": "alpha", "stage": "active"}).json()
    assert [item["id"] for item in both["items"]] == [ids["alpha-active"]]
    assert client.get("/api/rules", params={"project": "nobody"}).json()["total"] == 0

    second = client.get("/api/rules", params={"limit": 1, "offset": 1}).json()
    assert second["total"] == 4 and len(second["items"]) == 1
    assert second["items"][0]["id"] == sorted(ids.values(), reverse=True)[1]
    assert client.get("/api/rules", params={"stage": "bogus"}).status_code == 422
    assert client.get("/api/rules", params={"limit": 0}).status_code == 422
    assert client.get("/api/rules", params={"project": "a\x00b"}).status_code == 422


def test_approve_and_retire_follow_the_table(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    ids = _rules(session_factory)
    rule_id = ids["alpha-candidate"]
    before = datetime.now(UTC) - timedelta(seconds=5)

    approved = client.post(f"/api/rules/{rule_id}/approve", json={"reason": "seen 3 times"})
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["stage"] == "active" and body["project"] == "alpha"
    assert datetime.fromisoformat(body["updated_at"]) >= before
    assert body["created_at"] == "2026-01-01T00:00:00Z"

    again = client.post(f"/api/rules/{rule_id}/approve")
    assert again.status_code == 409
    assert again.json() == {
        "error": {
            "code": "rule_transition_refused",
            "message": f"rule {rule_id} cannot go from active to active",
            "details": {"rule_id": rule_id, "current": "active", "requested": "active"},
        }
    }

    retired = client.post(f"/api/rules/{rule_id}/retire")
    assert retired.status_code == 200 and retired.json()["stage"] == "retired"
    for action in ("approve", "retire"):
        refused = client.post(f"/api/rules/{rule_id}/{action}")
        assert refused.status_code == 409
        error = refused.json()["error"]
        assert error["code"] == "rule_transition_refused"
        assert "retired" in error["message"]

    # A candidate may be retired straight away (a global one too).
    dropped = client.post(f"/api/rules/{ids['global-candidate']}/retire", json={})
    assert dropped.status_code == 200 and dropped.json()["project"] is None


def test_unknown_rule_is_404_and_bad_ids_422(client: TestClient) -> None:
    missing = client.post("/api/rules/999/approve")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "rule_not_found"
    assert client.post("/api/rules/0/retire").status_code == 422
    assert client.post(f"/api/rules/{2**63}/retire").status_code == 422
    assert client.post("/api/rules/1/retire", json={"reason": "x\x00y"}).status_code == 422
    assert client.post("/api/rules/1/retire", json={"nope": 1}).status_code == 422


def test_the_table_of_moves() -> None:
    stage = RuleStage
    assert set(RULE_TRANSITIONS) == {
        (stage.HINT, stage.CANDIDATE),
        (stage.HINT, stage.ACTIVE),
        (stage.HINT, stage.RETIRED),
        (stage.CANDIDATE, stage.ACTIVE),
        (stage.CANDIDATE, stage.RETIRED),
        (stage.ACTIVE, stage.RETIRED),
    }


@pytest.mark.parametrize("stage", list(RuleStage))
def test_a_stage_change_refused_changes_nothing(
    client: TestClient, session_factory: sessionmaker[Session], stage: RuleStage
) -> None:
    with session_factory() as session:
        rule = Rule(text="t", stage=stage, created_at=EARLIER, updated_at=EARLIER)
        session.add(rule)
        session.commit()
        rule_id = rule.id
    for action, target in (("approve", RuleStage.ACTIVE), ("retire", RuleStage.RETIRED)):
        allowed = (stage, target) in RULE_TRANSITIONS
        response = client.post(f"/api/rules/{rule_id}/{action}")
        if not allowed:
            assert response.status_code == 409
            listed = client.get("/api/rules").json()["items"][0]
            assert listed["stage"] == stage.value
            assert listed["updated_at"] == "2026-01-01T00:00:00Z"
        else:
            assert response.status_code == 200
            break
