"""Learned rules: guidance distilled from recurring issues, injected into builder prompts."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from autopack.db.base import Base, BigIntPK, StrEnumType, utcnow


class RuleStage(enum.StrEnum):
    # A failure fixed within one run: remembered, not yet a rule anyone sees in a prompt.
    HINT = "hint"
    CANDIDATE = "candidate"
    ACTIVE = "active"
    RETIRED = "retired"


class Rule(Base):
    """A learned rule. Rules learned from failures carry the failure's ``issue_key`` (one rule
    per project and key) and the runs that fixed it; rules made by hand have none."""

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
    issue_key: Mapped[str | None] = mapped_column(String(255))
    # Distinct runs in which the failure was fixed (the first made the hint).
    learned_from_runs: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Runs that fixed it again after it became a candidate.
    confirmations: Mapped[int] = mapped_column(Integer, default=0)
    # Phases in a row, the rule in their prompt, that still met its failure.
    misses_in_a_row: Mapped[int] = mapped_column(Integer, default=0)
    # Why the rule has its stage (an approval's reason, the counts that moved it).
    stage_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("project_pk", "issue_key"),)
