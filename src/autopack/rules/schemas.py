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
        description="`candidate` (proposed), `active` (reaches prompts) or `retired`"
    )
    evidence_issue_keys: list[Any] = Field(description="The issues the rule was learned from")
    hit_count: int
    miss_count: int
    created_at: datetime
    updated_at: datetime


class RuleStageChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # No NUL: PostgreSQL text cannot hold one.
    reason: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^[^\x00]*$",
        description="Why; logged with the change",
    )
