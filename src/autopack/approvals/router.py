"""HTTP routes of approvals: list, read, approve, reject. Deciding needs the write scope (every
POST under /api does, centrally)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from autopack.api.deps import DatabaseDep, SettingsDep
from autopack.api.responses import json_response
from autopack.api.schemas import ERROR_RESPONSES, NO_NUL
from autopack.approvals import service
from autopack.approvals.models import ApprovalStatus
from autopack.approvals.schemas import ApprovalDecision, ApprovalRead
from autopack.runs.schemas import Page

router = APIRouter(prefix="/approvals", tags=["approvals"], responses=ERROR_RESPONSES)

ApprovalId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The approval's id")]


def _who(request: Request) -> str:
    """Who decides: the API key's name, or ``anonymous`` when authentication is off."""
    name = getattr(request.state, "api_key_name", None)
    return str(name) if name else "anonymous"


@router.get("", response_model=Page[ApprovalRead])
def list_approvals(
    db: DatabaseDep,
    settings: SettingsDep,
    status: ApprovalStatus | None = None,
    run_id: Annotated[str | None, Query(max_length=128, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    # Bounded so that no offset overflows the database's integers (a 500, not a page).
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Response:
    """Approvals, newest first (`?status=pending`: those waiting for a decision; `?run_id=`:
    those of one run). Expired ones are decided first, as AUTOPACK_APPROVAL_TIMEOUT_ACTION
    says."""
    with db.session() as session:
        service.expire_due(session, settings.approval_timeout_action)
        items, total = service.list_approvals(
            session, status, limit=limit, offset=offset, run_id=run_id
        )
    return json_response(Page[ApprovalRead](items=items, total=total, limit=limit, offset=offset))


@router.get("/{approval_id}", response_model=ApprovalRead)
def get_approval(approval_id: ApprovalId, db: DatabaseDep, settings: SettingsDep) -> Response:
    """One approval: what is asked (the phase, the attempt, the paths, why, the diff) and, once
    decided, who decided, when and why."""
    with db.session() as session:
        service.expire_due(session, settings.approval_timeout_action)
        return json_response(service.read_approval(session, approval_id))


@router.post("/{approval_id}/approve", response_model=ApprovalRead)
def approve_approval(
    approval_id: ApprovalId, body: ApprovalDecision, db: DatabaseDep, request: Request
) -> Response:
    """Approve a pending request: the run is queued again and continues the blocked phase with
    the approved change (tested and committed as usual). 409 unless pending."""
    with db.session() as session:
        service.decide(session, approval_id, approve=True, who=_who(request), reason=body.reason)
        return json_response(service.read_approval(session, approval_id))


@router.post("/{approval_id}/reject", response_model=ApprovalRead)
def reject_approval(
    approval_id: ApprovalId, body: ApprovalDecision, db: DatabaseDep, request: Request
) -> Response:
    """Reject a pending request: the phase fails with the reason and the run ends
    DONE_FAILED_REQUIRES_HUMAN_REVIEW. 409 unless pending."""
    with db.session() as session:
        service.decide(session, approval_id, approve=False, who=_who(request), reason=body.reason)
        return json_response(service.read_approval(session, approval_id))
