"""The one Plan model: a run made of ordered tiers and phases.

Its shape is the original system's v7 run request (``{"run": {...}, "tiers": [...],
"phases": [...]}``), accepted as it is, plus an optional top-level ``project``. Unknown fields are
rejected everywhere, never silently dropped. See ``docs/plans.md``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from autopack.runs.models import Complexity, SafetyProfile

Identifier = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", min_length=1, max_length=128),
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Money = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=6)]


class PlanModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RunSpec(PlanModel):
    """The run: identity, safety profile and budgets. A missing cap means "no cap"."""

    run_id: Identifier | None = Field(
        default=None, description="Unique id of the run; generated when omitted"
    )
    goal: str = Field(default="", description="What the run is for, in a sentence")
    safety_profile: SafetyProfile = SafetyProfile.NORMAL
    run_scope: Annotated[str, StringConstraints(max_length=40)] = "incremental"
    token_cap: PositiveInt | None = Field(default=None, description="Most tokens the run may use")
    cost_cap_usd: Money | None = Field(default=None, description="Most USD the run may spend")
    max_phases: PositiveInt | None = Field(default=None, description="Most phases the run may hold")
    max_duration_minutes: PositiveInt | None = None
    max_minor_issues_total: NonNegativeInt | None = None
    models: dict[str, str | list[str]] | None = Field(
        default=None,
        description="Per-run routing overrides: role (builder, auditor, planner) -> a model or "
        "a chain of models of the routing file",
    )


class TierSpec(PlanModel):
    tier_id: Identifier
    tier_index: NonNegativeInt | None = Field(
        default=None, description="Order of the tier; defaults to its position in the list"
    )
    name: Name
    description: str = ""
    token_cap: PositiveInt | None = None
    cost_cap_usd: Money | None = None


class PhaseScope(PlanModel):
    """What a phase may touch and how it is judged."""

    paths: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=list, description="Paths (files, directories or globs) the phase may write"
    )
    read_only_context: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=list, description="Paths given to the builder as context, never written"
    )
    acceptance_criteria: list[str] = Field(default_factory=list)
    test_cmd: str | None = Field(
        default=None, description="Test command of this phase; the project's default when omitted"
    )


class PhaseSpec(PlanModel):
    phase_id: Identifier
    phase_index: NonNegativeInt | None = Field(
        default=None, description="Order within its tier; defaults to its position in the list"
    )
    tier_id: Identifier
    name: Name
    description: str = ""
    task_category: Annotated[str, StringConstraints(max_length=80)] | None = None
    complexity: Complexity = Complexity.MEDIUM
    builder_mode: Annotated[str, StringConstraints(max_length=80)] | None = None
    scope: PhaseScope = Field(default_factory=PhaseScope)
    max_attempts: Annotated[int, Field(gt=0, le=20)] | None = None
    token_cap: PositiveInt | None = None
    cost_cap_usd: Money | None = None


class Plan(PlanModel):
    """A whole plan. Cross-references (tier ids, duplicates) are checked by ``validate_plan``."""

    project: Identifier | None = Field(
        default=None, description="Name of a registered project; `default` when omitted"
    )
    run: RunSpec = Field(default_factory=RunSpec)
    tiers: list[TierSpec] = Field(min_length=1)
    phases: list[PhaseSpec] = Field(min_length=1)
