"""Request and response bodies of the issues API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from autopack.issues.models import IssueSeverity, IssueSource, IssueStatus


class IssueCreate(BaseModel):
    """One sighting of an issue in a run. Sightings with the same issue_key in a project are
    one backlog entry."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    issue_key: Annotated[str, StringConstraints(min_length=1, max_length=255)] = Field(
        description="Stable key of the issue (e.g. a failure signature); the dedupe key"
    )
    severity: IssueSeverity
    source: IssueSource
    category: Annotated[str, StringConstraints(max_length=80)] | None = None
    title: Annotated[str, StringConstraints(max_length=500)] = ""
    message: Annotated[str, StringConstraints(max_length=20_000)] = ""
    evidence: dict[str, Any] = Field(default_factory=dict)
    phase_id: str | None = None
    attempt_number: Annotated[int, Field(gt=0)] | None = None


class IssueOccurrenceRead(BaseModel):
    issue_key: str
    title: str
    severity: IssueSeverity
    source: IssueSource
    category: str | None
    phase_id: str | None
    attempt_number: int | None
    message: str
    evidence: dict[str, Any]
    created_at: datetime


class BacklogIssueRead(BaseModel):
    issue_key: str
    title: str
    severity: IssueSeverity
    source: IssueSource
    category: str | None
    status: IssueStatus
    occurrence_count: int
    first_seen_run_id: str | None
    last_seen_run_id: str | None
    age_in_runs: int = Field(
        description="Runs of the project started since the issue was first seen"
    )
    evidence: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class IssueRead(BacklogIssueRead):
    """A backlog entry with the project it belongs to (the backlogs of every project)."""

    project: str
