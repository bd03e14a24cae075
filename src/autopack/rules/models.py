"""Learned rules: guidance distilled from recurring issues, injected into builder prompts."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from autopack.db.base import Base, BigIntPK, StrEnumType, utcnow


class RuleStage(enum.StrEnum):
    CANDIDATE = "candidate"
    ACTIVE = "active"
    RETIRED = "retired"


class Rule(Base):
    __tablename__ = "rules"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    project_pk: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    scope_pattern: Mapped[str | None] = mapped_column(String(512))
    task_categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    text: Mapped[str] = mapped_column(Text)
    stage: Mapped[RuleStage] = mapped_column(StrEnumType(RuleStage), default=RuleStage.CANDIDATE)
    evidence_issue_keys: Mapped[list[Any]] = mapped_column(JSON, default=list)
    hit_count: Mapped[int] = mapped_column(Integer, default=0)
    miss_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
