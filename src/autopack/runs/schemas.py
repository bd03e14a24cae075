"""Response bodies of the runs API."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from autopack.runs.models import Cleanliness, Complexity, SafetyProfile
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
    promotable: bool = Field(
        description="Whether `POST /api/runs/{run_id}/promote` would be accepted: the run is "
        "DONE_SUCCESS, every tier is clean and the project has a repository"
    )
    tiers: list[TierRead]


class AttemptRead(BaseModel):
    """One builder attempt of a phase: what was asked, done and decided."""

    number: int
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    edits: list[Any] | None = Field(description="The files changed: `{path, deleted}` each")
    governance_verdict: dict[str, Any] | None
    test_result: dict[str, Any] | None
    auditor_verdict: dict[str, Any] | None
    outcome: str | None = Field(description="`success`, `tests_failed`, `governance`, ...")
    failure_signature: str | None
    failure_reason: str | None
    feedback: str | None = Field(description="What the next attempt was told of this failure")
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    diff: str | None = Field(
        description="The attempt's diff against the last good commit, secrets redacted; only "
        "the first 256 KiB (a last line says when it was cut)"
    )
    test_output: str | None = Field(
        description="The test command's output, secrets redacted; only the last 64 KiB (a "
        "first line says how much was cut)"
    )


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=2000)


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    branch: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        # No NUL or whitespace; git's own rules for branch names are checked on promotion.
        pattern=r"^[^\x00-\x20\x7f-][^\x00-\x20\x7f]*$",
        description="Target branch of the project's repository (default: its default branch)",
    )


class PromotionRead(BaseModel):
    run_id: str
    branch: str = Field(description="The branch of the project's repository that was moved")
    commit: str = Field(description="The branch's commit after the promotion")
