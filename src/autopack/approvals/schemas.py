"""What the API and the CLI show of approvals, and the body of a decision."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from autopack.approvals.models import ApprovalStatus


class ApprovalRead(BaseModel):
    id: int
    run_id: str
    phase_id: str | None
    kind: str = Field(description="What needs a decision, e.g. `protected_path`")
    status: ApprovalStatus
    subject: dict[str, Any] = Field(
        description="What is asked: the attempt, the paths, the violations, why, and the diff"
    )
    created_at: datetime
    expires_at: datetime | None = Field(description="Decided by the timeout setting after this")
    decided_by: str | None = Field(
        description="The API key's name, `cli:<user>`, `anonymous` (authentication off), "
        "`timeout` or `system`"
    )
    decided_at: datetime | None
    reason: str | None


class ApprovalDecision(BaseModel):
    # No NUL: PostgreSQL text cannot hold one (it would be a 500, not the caller's 422).
    reason: str = Field(
        min_length=1,
        max_length=4000,
        pattern=r"^[^\x00]+$",
        description="Why; recorded with the decision",
    )
