"""HTTP routes of issues: record a sighting in a run, list a run's issues, a project's backlog,
the backlogs of every project."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from autopack.api.deps import DatabaseDep
from autopack.api.responses import json_response
from autopack.api.schemas import ERROR_RESPONSES, NO_NUL, SQL_BIGINT_MAX
from autopack.issues import service
from autopack.issues.models import IssueSeverity, IssueStatus
from autopack.issues.schemas import (
    BacklogIssueRead,
    IssueCreate,
    IssueOccurrenceRead,
    IssueRead,
)
from autopack.runs.schemas import Page
from autopack.runs.service import get_run

router = APIRouter(tags=["issues"], responses=ERROR_RESPONSES)


@router.post(
    "/runs/{run_id}/issues",
    status_code=status.HTTP_201_CREATED,
    response_model=IssueOccurrenceRead,
)
def record_issue(run_id: str, body: IssueCreate, db: DatabaseDep) -> IssueOccurrenceRead:
    """Record an issue seen in a run; the project's backlog entry for its key counts it."""
    with db.session() as session:
        run = get_run(session, run_id)
        service.record_issue(session, run, body)
        return service.list_run_issues(session, run)[-1]


@router.get("/runs/{run_id}/issues", response_model=list[IssueOccurrenceRead])
def list_run_issues(run_id: str, db: DatabaseDep) -> list[IssueOccurrenceRead]:
    """Every issue sighting of a run, in order."""
    with db.read_session() as session:
        return service.list_run_issues(session, get_run(session, run_id))


@router.get("/projects/{project}/issues", response_model=list[BacklogIssueRead])
def list_project_issues(
    project: str,
    db: DatabaseDep,
    status: IssueStatus | None = None,
    severity: IssueSeverity | None = None,
) -> list[BacklogIssueRead]:
    """The project's backlog: one entry per issue_key with occurrence count and age in runs."""
    with db.read_session() as session:
        return service.list_backlog(session, project, status=status, severity=severity)


@router.get("/issues", response_model=Page[IssueRead])
def list_issues(
    db: DatabaseDep,
    project: Annotated[str | None, Query(max_length=128, pattern=NO_NUL)] = None,
    status: IssueStatus | None = None,
    severity: IssueSeverity | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=SQL_BIGINT_MAX)] = 0,
) -> Response:
    """The backlogs of every project (or of one): each entry with its project, occurrence count
    and age in runs; critical first, then major, then minor, the most recently updated first."""
    with db.read_session() as session:
        items, total = service.list_all_backlog(
            session,
            project=project,
            status=status,
            severity=severity,
            limit=limit,
            offset=offset,
        )
    return json_response(Page[IssueRead](items=items, total=total, limit=limit, offset=offset))
