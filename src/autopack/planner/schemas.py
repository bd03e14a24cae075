"""Request and response bodies of ``POST /api/plans/draft``."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from autopack.llm.routing import Complexity
from autopack.planner.service import MAX_IDEA_CHARS, PlanDraft
from autopack.plans.models import Identifier, Plan


class PlanDraftRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        # The schema says what `_one_repository` checks: exactly one of the two is a string.
        json_schema_extra={
            "oneOf": [
                {"required": [field], "properties": {field: {"type": "string"}}}
                for field in ("project", "repo_path")
            ]
        },
    )

    idea: Annotated[str, StringConstraints(min_length=1, max_length=MAX_IDEA_CHARS)] = Field(
        description="What to build, in words"
    )
    project: Identifier | None = Field(
        default=None,
        description="A registered project: the plan is for its repository and names it",
    )
    repo_path: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = Field(
        default=None, description="A local directory on the server: the repository to plan for"
    )
    complexity: Complexity = Field(
        default="medium", description="Picks the planner model from routing"
    )

    @model_validator(mode="after")
    def _one_repository(self) -> Self:
        if (self.project is None) == (self.repo_path is None):
            raise ValueError("give exactly one of `project` and `repo_path`")
        return self


class DraftUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal = Field(description="USD, from the routing file's prices")


class PlanDraftRead(BaseModel):
    plan: Plan = Field(description="The validated plan, normalised (indexes filled, in order)")
    yaml: str = Field(description="The plan as the model wrote it; it loads to `plan`")
    model: str = Field(description="The planner model routing chose")
    repaired: bool = Field(description="Whether the first reply was invalid and repaired")
    usage: DraftUsage = Field(description="Every planner call of this draft, together")

    @classmethod
    def from_draft(cls, draft: PlanDraft) -> PlanDraftRead:
        return cls(
            plan=draft.plan,
            yaml=draft.yaml,
            model=draft.model,
            repaired=draft.repaired,
            usage=DraftUsage(
                input_tokens=draft.input_tokens,
                output_tokens=draft.output_tokens,
                cost_usd=draft.cost_usd,
            ),
        )
