"""The append-only event log. Every state change writes one in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from autopack.db.base import Base, BigIntPK, utcnow


class Event(Base):
    __tablename__ = "events"

    # Monotonically increasing; the SSE stream resumes from it (Last-Event-ID).
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    phase_id: Mapped[str | None] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_events_run_pk_id", "run_pk", "id"),)
