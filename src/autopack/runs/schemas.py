"""Response bodies of the runs API."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from autopack.runs.models import Cleanliness, Complexity, Phase, Run, SafetyProfile
from autopack.runs.states import PhaseState, RunState, TierState

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="Number of items matching the filters, over all pages")
    limit: int
    offset: int


class Budget(BaseModel):
    token_cap: int | None
    tokens_used: int
    cost_cap_usd: Decimal | None
    cost_usd: Decimal
    max_phases: int | None
    max_duration_minutes: int | None
    max_minor_issues_total: int | None


class PhaseRead(BaseModel):
    phase_id: str
    tier_id: str
    phase_index: int
    name: str
    description: str
    task_category: str | None
    complexity: Complexity
    builder_mode: str | None
    scope: dict[str, Any]
    state: PhaseState
    attempts_count: int
    max_attempts: int | None
    tokens_used: int
    cost_usd: Decimal
    quality_level: str | None
    commit_sha: str | None
    failure_reason: str | None
    started_at: datetime | None
    finished_at: datetime | None


class TierRead(BaseModel):
    tier_id: str
    tier_index: int
    name: str
    description: str
    state: TierState
    cleanliness: Cleanliness
    tokens_used: int
    cost_usd: Decimal
    phases: list[PhaseRead]


class RunSummary(BaseModel):
    run_id: str
    project: str
    goal: str
    state: RunState
    safety_profile: SafetyProfile
    failure_reason: str | None
    phases_total: int
    phases_complete: int
    budget: Budget
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunDetail(RunSummary):
    run_scope: str
    integration_branch: str | None
    base_commit: str | None
    head_commit: str | None
    ci_runs_used: int
    minor_issues_count: int
    major_issues_count: int
    tiers: list[TierRead]


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=2000)


def budget_of(run: Run) -> Budget:
    return Budget(
        token_cap=run.token_cap,
        tokens_used=run.tokens_used,
        cost_cap_usd=run.cost_cap_usd,
        cost_usd=run.cost_usd,
        max_phases=run.max_phases,
        max_duration_minutes=run.max_duration_minutes,
        max_minor_issues_total=run.max_minor_issues_total,
    )


def run_summary(run: Run, phases_complete: int, phases_total: int) -> RunSummary:
    return RunSummary(
        run_id=run.run_id,
        project=run.project.name,
        goal=run.goal,
        state=run.state,
        safety_profile=run.safety_profile,
        failure_reason=run.failure_reason,
        phases_total=phases_total,
        phases_complete=phases_complete,
        budget=budget_of(run),
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


def run_detail(run: Run) -> RunDetail:
    """A run with its tiers and phases (load them with ``get_run(..., with_phases=True)``)."""
    tiers = [
        TierRead(
            tier_id=tier.tier_id,
            tier_index=tier.tier_index,
            name=tier.name,
            description=tier.description,
            state=tier.state,
            cleanliness=tier.cleanliness,
            tokens_used=tier.tokens_used,
            cost_usd=tier.cost_usd,
            phases=[_phase_read(phase, tier.tier_id) for phase in tier.phases],
        )
        for tier in run.tiers
    ]
    phases = [phase for tier in tiers for phase in tier.phases]
    summary = run_summary(
        run, sum(1 for p in phases if p.state is PhaseState.COMPLETE), len(phases)
    )
    return RunDetail(
        **summary.model_dump(),
        run_scope=run.run_scope,
        integration_branch=run.integration_branch,
        base_commit=run.base_commit,
        head_commit=run.head_commit,
        ci_runs_used=run.ci_runs_used,
        minor_issues_count=run.minor_issues_count,
        major_issues_count=run.major_issues_count,
        tiers=tiers,
    )


def _phase_read(phase: Phase, tier_id: str) -> PhaseRead:
    return PhaseRead(
        phase_id=phase.phase_id,
        tier_id=tier_id,
        phase_index=phase.phase_index,
        name=phase.name,
        description=phase.description,
        task_category=phase.task_category,
        complexity=phase.complexity,
        builder_mode=phase.builder_mode,
        scope=phase.scope,
        state=phase.state,
        attempts_count=phase.attempts_count,
        max_attempts=phase.max_attempts,
        tokens_used=phase.tokens_used,
        cost_usd=phase.cost_usd,
        quality_level=phase.quality_level,
        commit_sha=phase.commit_sha,
        failure_reason=phase.failure_reason,
        started_at=phase.started_at,
        finished_at=phase.finished_at,
    )
