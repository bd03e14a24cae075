"""The llm_calls ledger: every model call, with tokens and cost. Usage reports read only this."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from autopack.db.base import Base, BigIntPK, StrEnumType, utcnow


class LlmRole(enum.StrEnum):
    BUILDER = "builder"
    AUDITOR = "auditor"
    PLANNER = "planner"
    EMBEDDING = "embedding"


class LlmCall(Base):
    __tablename__ = "llm_calls"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    provider: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(128))
    role: Mapped[LlmRole] = mapped_column(StrEnumType(LlmRole))
    run_pk: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    phase_id: Mapped[str | None] = mapped_column(String(128))
    attempt_number: Mapped[int | None] = mapped_column(Integer)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(14, 6), default=Decimal(0))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_llm_calls_run_pk", "run_pk"),
        Index("ix_llm_calls_created_at", "created_at"),
    )
