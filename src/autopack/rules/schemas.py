"""What the API shows of learned rules, and the body of a stage change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from autopack.rules.models import RuleStage


class RuleRead(BaseModel):
    id: int
    project: str | None = Field(description="The project the rule is for; null: every project")
    scope_pattern: str | None = Field(
        description="Paths the rule applies to (a glob); null: any path"
    )
    task_categories: list[Any] = Field(description="Task categories it applies to; empty: any")
    text: str = Field(description="The guidance given to the builder")
    stage: RuleStage = Field(
        description="`hint` (a failure fixed in one run), `candidate` (it recurred in another "
        "run), `active` (reaches prompts) or `retired`"
    )
    evidence_issue_keys: list[Any] = Field(description="The issues the rule was learned from")
    hit_count: int = Field(
        description="Phases that had the rule in their prompt and did not meet its failure"
    )
    miss_count: int = Field(
        description="Phases that had the rule in their prompt and still met its failure"
    )
    issue_key: str | None = Field(
        description="The failure the rule was learned from; null for a rule made by hand"
    )
    learned_from_runs: list[str] = Field(description="The runs that fixed that failure")
    confirmations: int = Field(
        description="Runs that fixed the failure again after the rule became a candidate"
    )
    stage_reason: str | None = Field(description="Why the rule has its stage")
    created_at: datetime
    updated_at: datetime


class RuleStageChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # No NUL: PostgreSQL text cannot hold one.
    reason: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^[^\x00]*$",
        description="Why; kept as the rule's stage_reason",
    )
