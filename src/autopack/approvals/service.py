"""Approval requests: asked by the executor, decided by a human (API or CLI) or by the timeout.

A request pauses its run: the phase is BLOCKED and the run PAUSED (the executor moves them; see
``executor.runner``). A decision is one conditional update (``... WHERE status = 'pending'``), so
two people deciding at once cannot both win: the second gets a 409. Its effects are written in
the same transaction, through ``runs.states``:

- approved: the run goes back to QUEUED; an executor (``autopack serve``'s pool, or
  ``autopack runs resume``) claims it and continues the BLOCKED phase with the approved change.
- rejected: the phase FAILs with the reason and the run ends DONE_FAILED_REQUIRES_HUMAN_REVIEW.
- expired (nobody decided before ``expires_at``): decided by ``AUTOPACK_APPROVAL_TIMEOUT_ACTION``
  with ``decided_by="timeout"``: ``reject`` leaves the status ``expired`` (with a rejection's
  effects), ``approve`` the status ``approved``. So ``approved`` always means the change is made,
  and ``expired`` always means it was not.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from autopack.approvals.models import Approval, ApprovalStatus
from autopack.approvals.schemas import ApprovalRead
from autopack.db.base import utcnow
from autopack.errors import ConflictError, NotFoundError
from autopack.events.service import append_event
from autopack.runs.models import Phase, Run
from autopack.runs.states import PhaseState, RunState, transition_phase, transition_run

logger = logging.getLogger(__name__)

# The change set an approval is about (path -> new content, None = delete), kept with the request
# so that an approved change is re-applied from the database (the source of truth) and survives
# a crash or a restart. Never shown: the subject's `diff` is what a reviewer reads.
CHANGES_KEY = "changes"

TimeoutAction = Literal["reject", "approve"]


class ApprovalNotFoundError(NotFoundError):
    code = "approval_not_found"


class ApprovalDecidedError(ConflictError):
    """Only a pending approval can be decided."""

    code = "approval_decided"


def request_approval(
    session: Session,
    run: Run,
    phase: Phase,
    *,
    kind: str,
    subject: Mapping[str, Any],
    changes: Mapping[str, str | None],
    timeout_seconds: int,
) -> Approval:
    """Record a pending request and its ``approval.requested`` event (the caller moves the
    phase and the run, and commits). ``timeout_seconds`` 0: it never expires."""
    now = utcnow()
    approval = Approval(
        run_pk=run.id,
        phase_id=phase.phase_id,
        kind=kind,
        subject={**subject, CHANGES_KEY: dict(changes)},
        status=ApprovalStatus.PENDING,
        created_at=now,
        expires_at=now + timedelta(seconds=timeout_seconds) if timeout_seconds else None,
    )
    session.add(approval)
    session.flush()
    append_event(
        session,
        run,
        "approval.requested",
        {
            "approval_id": approval.id,
            "kind": kind,
            "attempt": subject.get("attempt"),
            "paths": subject.get("paths", []),
            "why": subject.get("why"),
            "expires_at": approval.expires_at.isoformat() if approval.expires_at else None,
        },
        phase_id=phase.phase_id,
    )
    return approval


def get_approval(session: Session, approval_id: int) -> Approval:
    approval = session.get(Approval, approval_id)
    if approval is None:
        raise ApprovalNotFoundError(
            f"approval {approval_id} does not exist", details={"approval_id": approval_id}
        )
    return approval


def latest_for_phase(session: Session, run: Run, phase_id: str) -> Approval | None:
    return session.scalar(
        select(Approval)
        .where(Approval.run_pk == run.id, Approval.phase_id == phase_id)
        .order_by(Approval.id.desc())
        .limit(1)
    )


def approved_changes(approval: Approval) -> dict[str, str | None]:
    changes = (approval.subject or {}).get(CHANGES_KEY) or {}
    return {str(path): content for path, content in changes.items()}


def to_read(approval: Approval, run_id: str) -> ApprovalRead:
    return ApprovalRead(
        id=approval.id,
        run_id=run_id,
        phase_id=approval.phase_id,
        kind=approval.kind,
        status=approval.status,
        subject={k: v for k, v in (approval.subject or {}).items() if k != CHANGES_KEY},
        created_at=approval.created_at,
        expires_at=approval.expires_at,
        decided_by=approval.decided_by,
        decided_at=approval.decided_at,
        reason=approval.reason,
    )


def read_approval(session: Session, approval_id: int) -> ApprovalRead:
    approval = get_approval(session, approval_id)
    run_id = session.scalar(select(Run.run_id).where(Run.id == approval.run_pk)) or ""
    return to_read(approval, run_id)


def list_approvals(
    session: Session,
    status: ApprovalStatus | None,
    *,
    limit: int,
    offset: int,
    run_id: str | None = None,
) -> tuple[list[ApprovalRead], int]:
    """Approvals, newest first, optionally of one status and of one run; and how many match in
    all."""
    where = [Approval.status == status] if status is not None else []
    if run_id is not None:
        where.append(Run.run_id == run_id)
    total = (
        session.scalar(
            select(func.count())
            .select_from(Approval)
            .join(Run, Run.id == Approval.run_pk)
            .where(*where)
        )
        or 0
    )
    rows = session.execute(
        select(Approval, Run.run_id)
        .join(Run, Run.id == Approval.run_pk)
        .where(*where)
        .order_by(Approval.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [to_read(approval, run_id) for approval, run_id in rows], total


def decide(
    session: Session,
    approval_id: int,
    *,
    approve: bool,
    who: str,
    reason: str,
    expired: bool = False,
) -> Approval:
    """Decide a pending approval and apply its effects on the phase and the run; commits.
    409 (:class:`ApprovalDecidedError`) when it is not pending any more."""
    approval = get_approval(session, approval_id)
    _require_pending(approval)
    run = session.get_one(Run, approval.run_pk)
    phase = session.scalar(
        select(Phase).where(Phase.run_pk == run.id, Phase.phase_id == approval.phase_id)
    )
    if run.state is not RunState.PAUSED or phase is None or phase.state is not PhaseState.BLOCKED:
        raise ConflictError(
            f"run {run.run_id} is {run.state.value} and no longer waits for approval {approval_id}",
            details={"approval_id": approval_id, "run_id": run.run_id, "state": run.state.value},
        )
    status = (
        ApprovalStatus.APPROVED
        if approve
        else (ApprovalStatus.EXPIRED if expired else ApprovalStatus.REJECTED)
    )
    _set_decision(session, approval, status, who, reason)
    event = "approval.expired" if expired else f"approval.{'approved' if approve else 'rejected'}"
    payload: dict[str, Any] = {
        "approval_id": approval.id,
        "kind": approval.kind,
        "decided_by": who,
        "reason": reason,
    }
    if expired:
        payload["action"] = "approve" if approve else "reject"
    append_event(session, run, event, payload, phase_id=approval.phase_id)
    verb = "approved" if approve else ("expired" if expired else "rejected")
    if approve:
        transition_run(
            session, run, RunState.QUEUED, reason=f"approval {approval.id} {verb} by {who}"
        )
    else:
        why = f"approval {approval.id} {verb} ({who}): {reason}"
        transition_phase(session, phase, PhaseState.FAILED, reason=why, values={"claimed_by": None})
        transition_run(
            session,
            run,
            RunState.DONE_FAILED_REQUIRES_HUMAN_REVIEW,
            reason=f"phase {phase.phase_id} failed: {why}",
        )
    session.commit()
    session.refresh(approval)
    return approval


def expire_due(
    session: Session, action: TimeoutAction, *, now: datetime | None = None
) -> list[int]:
    """Decide every pending approval past its ``expires_at`` as ``action`` says, and close the
    pending approvals of runs that ended without a decision (cancelled). Called by whoever looks
    next: the executor pool's loop, and the API's and CLI's list and get. Returns the ids it
    decided. A lost race (someone decided first) is skipped, not an error."""
    now = now or utcnow()
    due = session.execute(
        select(Approval.id, Approval.expires_at, Run.state)
        .join(Run, Run.id == Approval.run_pk)
        .where(Approval.status == ApprovalStatus.PENDING)
        .where((Approval.expires_at <= now) | Run.state.not_in([RunState.PAUSED]))
        .order_by(Approval.id)
    ).all()
    decided: list[int] = []
    for approval_id, expires_at, run_state in due:
        try:
            if RunState(run_state) is not RunState.PAUSED:
                # The run was cancelled (or ended) while it waited: nothing is left to decide.
                approval = get_approval(session, approval_id)
                _set_decision(
                    session,
                    approval,
                    ApprovalStatus.EXPIRED,
                    "system",
                    f"the run is {RunState(run_state).value}; nothing is left to decide",
                )
                session.commit()
            else:
                decide(
                    session,
                    approval_id,
                    approve=action == "approve",
                    who="timeout",
                    reason=f"no decision by {expires_at:%Y-%m-%d %H:%M:%S} UTC; "
                    f"AUTOPACK_APPROVAL_TIMEOUT_ACTION is {action}",
                    expired=True,
                )
        except ConflictError:
            session.rollback()
            continue
        decided.append(approval_id)
        logger.info("approval %s expired (%s)", approval_id, action)
    return decided


def _require_pending(approval: Approval) -> None:
    if approval.status is not ApprovalStatus.PENDING:
        raise ApprovalDecidedError(
            f"approval {approval.id} is already {approval.status.value}"
            + (f" (by {approval.decided_by})" if approval.decided_by else ""),
            details={"approval_id": approval.id, "status": approval.status.value},
        )


def _set_decision(
    session: Session, approval: Approval, status: ApprovalStatus, who: str, reason: str
) -> None:
    """The conditional update that makes a decision: exactly one decider wins."""
    result = session.execute(
        update(Approval)
        .where(Approval.id == approval.id, Approval.status == ApprovalStatus.PENDING)
        .values(status=status, decided_by=who, reason=reason, decided_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        session.refresh(approval)
        _require_pending(approval)
        raise ApprovalDecidedError(f"approval {approval.id} was decided by someone else")
