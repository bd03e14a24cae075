"""Request and response bodies of the projects API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from autopack.plans.models import Identifier


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Identifier
    repo: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = Field(
        default=None, description="Git URL or local path of the repository"
    )
    default_branch: Annotated[str, StringConstraints(min_length=1, max_length=255)] = "main"
    default_test_cmd: str | None = None
    protected_paths: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=list
    )


class ProjectRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    repo: str | None
    default_branch: str
    default_test_cmd: str | None
    protected_paths: list[str]
    created_at: datetime
