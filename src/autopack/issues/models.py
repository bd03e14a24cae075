"""Issues: a project backlog deduplicated by issue_key, and each sighting of an issue in a run."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from autopack.db.base import Base, BigIntPK, StrEnumType, utcnow


class IssueSeverity(enum.StrEnum):
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class IssueSource(enum.StrEnum):
    BUILDER = "builder"
    GOVERNANCE = "governance"
    TESTS = "tests"
    AUDITOR = "auditor"
    BUDGET = "budget"
    ENVIRONMENT = "environment"


class IssueStatus(enum.StrEnum):
    OPEN = "open"
    NEEDS_CLEANUP = "needs_cleanup"
    RESOLVED = "resolved"


class Issue(Base):
    """One backlog entry per (project, issue_key); repeated sightings raise occurrence_count."""

    __tablename__ = "issues"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    project_pk: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    issue_key: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[IssueSeverity] = mapped_column(StrEnumType(IssueSeverity))
    source: Mapped[IssueSource] = mapped_column(StrEnumType(IssueSource))
    category: Mapped[str | None] = mapped_column(String(80))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    occurrence_count: Mapped[int] = mapped_column(Integer, default=1)
    first_seen_run_pk: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL")
    )
    last_seen_run_pk: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    status: Mapped[IssueStatus] = mapped_column(StrEnumType(IssueStatus), default=IssueStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    occurrences: Mapped[list[IssueOccurrence]] = relationship(back_populates="issue")

    __table_args__ = (UniqueConstraint("project_pk", "issue_key"),)


class IssueOccurrence(Base):
    """An issue seen in one run (and phase/attempt when known), with that sighting's evidence."""

    __tablename__ = "issue_occurrences"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    issue_pk: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    phase_id: Mapped[str | None] = mapped_column(String(128))
    attempt_number: Mapped[int | None] = mapped_column(Integer)
    severity: Mapped[IssueSeverity] = mapped_column(StrEnumType(IssueSeverity))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    issue: Mapped[Issue] = relationship(back_populates="occurrences")
