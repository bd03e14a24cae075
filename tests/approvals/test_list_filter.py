"""`GET /api/approvals?run_id=`: the approvals of one run (with the status filter and paging)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from autopack.approvals.models import Approval, ApprovalStatus
from autopack.runs.models import Run
from tests.factories import plan_body


def _approvals(client: TestClient, sessions: sessionmaker[Session]) -> dict[str, list[int]]:
    for run_id in ("r1", "r2"):
        assert client.post("/api/runs", json=plan_body(run_id)).status_code == 201
    ids: dict[str, list[int]] = {"r1": [], "r2": []}
    with sessions() as session:
        runs = {run.run_id: run.id for run in session.scalars(select(Run))}
        # Decided ones: a pending approval of a run that is not PAUSED is closed by the list.
        for run_id, status in (
            ("r1", ApprovalStatus.APPROVED),
            ("r2", ApprovalStatus.REJECTED),
            ("r1", ApprovalStatus.REJECTED),
            ("r1", ApprovalStatus.APPROVED),
        ):
            approval = Approval(
                run_pk=runs[run_id],
                phase_id="P11",
                kind="protected_path",
                subject={"why": "test"},
                status=status,
                decided_by="tester",
                reason="because",
            )
            session.add(approval)
            session.flush()
            ids[run_id].append(approval.id)
        session.commit()
    return ids


def test_list_approvals_of_one_run(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    ids = _approvals(client, session_factory)

    everything = client.get("/api/approvals").json()
    assert everything["total"] == 4

    r1 = client.get("/api/approvals", params={"run_id": "r1"}).json()
    assert r1["total"] == 3
    assert [item["id"] for item in r1["items"]] == sorted(ids["r1"], reverse=True)
    assert {item["run_id"] for item in r1["items"]} == {"r1"}

    rejected = client.get("/api/approvals", params={"run_id": "r1", "status": "rejected"}).json()
    assert [item["id"] for item in rejected["items"]] == [ids["r1"][1]]
    assert rejected["total"] == 1

    paged = client.get("/api/approvals", params={"run_id": "r1", "limit": 1, "offset": 1}).json()
    assert paged["total"] == 3 and [item["id"] for item in paged["items"]] == [ids["r1"][1]]

    assert client.get("/api/approvals", params={"run_id": "r2"}).json()["total"] == 1
    nobody = client.get("/api/approvals", params={"run_id": "ghost"}).json()
    assert nobody == {"items": [], "total": 0, "limit": 50, "offset": 0}
    assert client.get("/api/approvals", params={"run_id": "a\x00b"}).status_code == 422
