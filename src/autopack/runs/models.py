"""Tables of runs, tiers, phases and attempts."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from autopack.db.base import Base, BigIntPK, StrEnumType, utcnow
from autopack.runs.states import PhaseState, RunState, TierState

if TYPE_CHECKING:
    from autopack.projects.models import Project

Money = Numeric(14, 6)


class SafetyProfile(enum.StrEnum):
    NORMAL = "normal"
    SAFETY_CRITICAL = "safety_critical"


class Complexity(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Cleanliness(enum.StrEnum):
    CLEAN = "clean"
    NOT_CLEAN = "not_clean"


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(128), unique=True)
    project_pk: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    goal: Mapped[str] = mapped_column(Text, default="")
    safety_profile: Mapped[SafetyProfile] = mapped_column(StrEnumType(SafetyProfile))
    run_scope: Mapped[str] = mapped_column(String(40), default="incremental")
    state: Mapped[RunState] = mapped_column(StrEnumType(RunState), default=RunState.QUEUED)
    failure_reason: Mapped[str | None] = mapped_column(Text)

    # budgets (None = no cap)
    token_cap: Mapped[int | None] = mapped_column(BigInteger)
    cost_cap_usd: Mapped[Decimal | None] = mapped_column(Money)
    max_phases: Mapped[int | None] = mapped_column(Integer)
    max_duration_minutes: Mapped[int | None] = mapped_column(Integer)
    max_minor_issues_total: Mapped[int | None] = mapped_column(Integer)

    # counters
    tokens_used: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    ci_runs_used: Mapped[int] = mapped_column(Integer, default=0)
    minor_issues_count: Mapped[int] = mapped_column(Integer, default=0)
    major_issues_count: Mapped[int] = mapped_column(Integer, default=0)

    integration_branch: Mapped[str | None] = mapped_column(String(255))
    base_commit: Mapped[str | None] = mapped_column(String(64))
    head_commit: Mapped[str | None] = mapped_column(String(64))
    # The plan as submitted (normalised), kept for audit and for re-running.
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Bumped by every state change. State changes are compare-and-set on the state itself
    # (runs.states), and counters move with atomic UPDATEs, so the ORM does not version-check
    # other writes: an executor must not fail because an issue was recorded meanwhile.
    version: Mapped[int] = mapped_column(Integer, default=1)

    project: Mapped[Project] = relationship(lazy="joined")
    tiers: Mapped[list[Tier]] = relationship(
        back_populates="run", order_by="Tier.tier_index", cascade="all, delete-orphan"
    )
    phases: Mapped[list[Phase]] = relationship(
        back_populates="run",
        order_by="Phase.phase_index",
        cascade="all, delete-orphan",
        viewonly=True,
    )

    __table_args__ = (Index("ix_runs_state_created_at", "state", "created_at"),)


class Tier(Base):
    __tablename__ = "tiers"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    tier_id: Mapped[str] = mapped_column(String(128))
    tier_index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[TierState] = mapped_column(StrEnumType(TierState), default=TierState.PENDING)
    cleanliness: Mapped[Cleanliness] = mapped_column(
        StrEnumType(Cleanliness), default=Cleanliness.CLEAN
    )
    token_cap: Mapped[int | None] = mapped_column(BigInteger)
    cost_cap_usd: Mapped[Decimal | None] = mapped_column(Money)
    tokens_used: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    run: Mapped[Run] = relationship(back_populates="tiers")
    phases: Mapped[list[Phase]] = relationship(
        back_populates="tier", order_by="Phase.phase_index", cascade="all, delete-orphan"
    )

    __table_args__ = (UniqueConstraint("run_pk", "tier_id"),)


class Phase(Base):
    __tablename__ = "phases"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    tier_pk: Mapped[int] = mapped_column(ForeignKey("tiers.id", ondelete="CASCADE"), index=True)
    phase_id: Mapped[str] = mapped_column(String(128))
    phase_index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    task_category: Mapped[str | None] = mapped_column(String(80))
    complexity: Mapped[Complexity] = mapped_column(
        StrEnumType(Complexity), default=Complexity.MEDIUM
    )
    builder_mode: Mapped[str | None] = mapped_column(String(80))
    # {"paths": [...], "read_only_context": [...], "acceptance_criteria": [...], "test_cmd": ...}
    scope: Mapped[dict[str, Any]] = mapped_column(JSON)
    max_attempts: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[PhaseState] = mapped_column(StrEnumType(PhaseState), default=PhaseState.QUEUED)
    attempts_count: Mapped[int] = mapped_column(Integer, default=0)
    tokens_used: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    token_cap: Mapped[int | None] = mapped_column(BigInteger)
    cost_cap_usd: Mapped[Decimal | None] = mapped_column(Money)
    quality_level: Mapped[str | None] = mapped_column(String(40))
    commit_sha: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # Which executor holds the phase, and when it last proved it is alive (crash recovery).
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    run: Mapped[Run] = relationship(back_populates="phases")
    tier: Mapped[Tier] = relationship(back_populates="phases")
    attempts: Mapped[list[Attempt]] = relationship(
        back_populates="phase", order_by="Attempt.number", cascade="all, delete-orphan"
    )

    __table_args__ = (
        UniqueConstraint("run_pk", "phase_id"),
        Index("ix_phases_state_heartbeat_at", "state", "heartbeat_at"),
    )


class Attempt(Base):
    """One builder try of a phase: the audit trail of what was asked, done and decided."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    phase_pk: Mapped[int] = mapped_column(ForeignKey("phases.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    model: Mapped[str | None] = mapped_column(String(128))
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    edits: Mapped[list[Any] | None] = mapped_column(JSON)
    governance_verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    test_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    auditor_verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outcome: Mapped[str | None] = mapped_column(String(40))
    failure_signature: Mapped[str | None] = mapped_column(String(128))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # What the next attempt is told about this one's failure: kept so that a resumed executor
    # asks the model exactly what the crashed one would have asked.
    feedback: Mapped[str | None] = mapped_column(Text)
    # The staged diff and the test command's output, redacted like the artifacts and capped
    # (runs.execution.cap_diff, cap_test_output): what the dashboard shows of the attempt.
    diff: Mapped[str | None] = mapped_column(Text)
    test_output: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None] = mapped_column(Integer)

    phase: Mapped[Phase] = relationship(back_populates="attempts")

    __table_args__ = (UniqueConstraint("phase_pk", "number"),)
