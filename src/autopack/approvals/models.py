"""Approval requests: a human decision the executor waits for."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from autopack.db.base import Base, BigIntPK, StrEnumType, utcnow


class ApprovalStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class Approval(Base):
    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    run_pk: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), index=True
    )
    phase_id: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(80))
    subject: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[ApprovalStatus] = mapped_column(
        StrEnumType(ApprovalStatus), default=ApprovalStatus.PENDING
    )
    decided_by: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
