"""Recording issues and reading the per-run list and the project backlog."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from autopack.db.base import utcnow
from autopack.errors import NotFoundError
from autopack.events.service import append_event
from autopack.issues.models import Issue, IssueOccurrence, IssueSeverity, IssueStatus
from autopack.issues.schemas import (
    BacklogIssueRead,
    IssueCreate,
    IssueOccurrenceRead,
    IssueRead,
)
from autopack.projects.models import Project
from autopack.projects.service import get_project
from autopack.runs.models import Phase, Run

_SEVERITY_RANK = {IssueSeverity.MINOR: 0, IssueSeverity.MAJOR: 1, IssueSeverity.CRITICAL: 2}


def record_issue(session: Session, run: Run, spec: IssueCreate) -> IssueOccurrence:
    """Record a sighting in ``run``: create the project's backlog entry for its issue_key, or
    count one more occurrence of it (reopening it if it had been resolved)."""
    if spec.phase_id is not None and (
        session.scalar(
            select(Phase.id).where(Phase.run_pk == run.id, Phase.phase_id == spec.phase_id)
        )
        is None
    ):
        raise NotFoundError(
            f"run {run.run_id!r} has no phase {spec.phase_id!r}",
            details={"run_id": run.run_id, "phase_id": spec.phase_id},
        )
    for attempt in range(2):
        try:
            with session.begin_nested():
                occurrence = _record(session, run, spec)
            break
        except IntegrityError:
            # Another writer created the same backlog entry first: count on it instead.
            if attempt == 1:
                raise
    counter = (
        Run.minor_issues_count if spec.severity is IssueSeverity.MINOR else Run.major_issues_count
    )
    session.execute(
        update(Run)
        .where(Run.id == run.id)
        .values({counter: counter + 1})
        .execution_options(synchronize_session=False)
    )
    append_event(
        session,
        run,
        "issue.recorded",
        {"issue_key": spec.issue_key, "severity": spec.severity.value, "source": spec.source.value},
        phase_id=spec.phase_id,
    )
    session.commit()
    return occurrence


def phase_issues(session: Session, run: Run, phase_id: str) -> list[tuple[Issue, str]]:
    """The issues ``phase_id`` met in ``run``, first sighting first, each once, with the message
    of its latest sighting."""
    rows = session.execute(
        select(Issue, IssueOccurrence.message)
        .join(IssueOccurrence, IssueOccurrence.issue_pk == Issue.id)
        .where(IssueOccurrence.run_pk == run.id, IssueOccurrence.phase_id == phase_id)
        .order_by(IssueOccurrence.id)
    ).all()
    found: dict[int, tuple[Issue, str]] = {}
    for issue, message in rows:
        # Re-assigning a key keeps its place: first sighting's order, latest message.
        found[issue.id] = (issue, message)
    return list(found.values())


def _record(session: Session, run: Run, spec: IssueCreate) -> IssueOccurrence:
    now = utcnow()
    issue = session.scalar(
        select(Issue).where(Issue.project_pk == run.project_pk, Issue.issue_key == spec.issue_key)
    )
    if issue is None:
        issue = Issue(
            project_pk=run.project_pk,
            issue_key=spec.issue_key,
            title=spec.title,
            severity=spec.severity,
            source=spec.source,
            category=spec.category,
            evidence=spec.evidence,
            occurrence_count=1,
            first_seen_run_pk=run.id,
            last_seen_run_pk=run.id,
            created_at=now,
            updated_at=now,
        )
        session.add(issue)
    else:
        issue.occurrence_count += 1
        issue.last_seen_run_pk = run.id
        issue.updated_at = now
        if _SEVERITY_RANK[spec.severity] > _SEVERITY_RANK[issue.severity]:
            issue.severity = spec.severity
        if spec.evidence:
            issue.evidence = spec.evidence
        if spec.title and not issue.title:
            issue.title = spec.title
        if issue.status is IssueStatus.RESOLVED:
            issue.status = IssueStatus.OPEN
    session.flush()
    occurrence = IssueOccurrence(
        issue=issue,
        run_pk=run.id,
        phase_id=spec.phase_id,
        attempt_number=spec.attempt_number,
        severity=spec.severity,
        evidence=spec.evidence,
        message=spec.message,
        created_at=now,
    )
    session.add(occurrence)
    session.flush()
    return occurrence


def list_run_issues(session: Session, run: Run) -> list[IssueOccurrenceRead]:
    rows = session.execute(
        select(IssueOccurrence, Issue)
        .join(Issue, IssueOccurrence.issue_pk == Issue.id)
        .where(IssueOccurrence.run_pk == run.id)
        .order_by(IssueOccurrence.id)
    ).all()
    return [
        IssueOccurrenceRead(
            issue_key=issue.issue_key,
            title=issue.title,
            severity=occurrence.severity,
            source=issue.source,
            category=issue.category,
            phase_id=occurrence.phase_id,
            attempt_number=occurrence.attempt_number,
            message=occurrence.message,
            evidence=occurrence.evidence,
            created_at=occurrence.created_at,
        )
        for occurrence, issue in rows
    ]


def list_backlog(
    session: Session,
    project_name: str,
    *,
    status: IssueStatus | None = None,
    severity: IssueSeverity | None = None,
) -> list[BacklogIssueRead]:
    """The project's issues, most frequent first, each with its age in runs."""
    project = get_project(session, project_name)
    query = (
        _backlog_query(status=status, severity=severity)
        .where(Issue.project_pk == project.id)
        .order_by(Issue.occurrence_count.desc(), Issue.updated_at.desc(), Issue.id)
    )
    return [_backlog_item(row, BacklogIssueRead) for row in session.execute(query).all()]


def list_all_backlog(
    session: Session,
    *,
    project: str | None = None,
    status: IssueStatus | None = None,
    severity: IssueSeverity | None = None,
    limit: int,
    offset: int,
) -> tuple[list[IssueRead], int]:
    """A page of the backlogs of every project (or of the project named), the most severe
    first, then the most recently updated; and how many issues match in all."""
    where = _backlog_filters(status=status, severity=severity)
    if project is not None:
        where.append(Project.name == project)
    total = session.scalar(
        select(func.count(Issue.id)).join(Project, Issue.project_pk == Project.id).where(*where)
    )
    severity_rank = case(
        (Issue.severity == IssueSeverity.CRITICAL, 0),
        (Issue.severity == IssueSeverity.MAJOR, 1),
        else_=2,
    )
    query = _backlog_query(status=status, severity=severity)
    if project is not None:
        query = query.where(Project.name == project)
    query = (
        query.order_by(severity_rank, Issue.updated_at.desc(), Issue.id.desc())
        .limit(limit)
        .offset(offset)
    )
    items = [_backlog_item(row, IssueRead) for row in session.execute(query).all()]
    return items, int(total or 0)


def _backlog_filters(
    *, status: IssueStatus | None, severity: IssueSeverity | None
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if status is not None:
        where.append(Issue.status == status)
    if severity is not None:
        where.append(Issue.severity == severity)
    return where


def _backlog_query(
    *, status: IssueStatus | None, severity: IssueSeverity | None
) -> Select[tuple[Issue, str | None, str | None, int, str]]:
    """Backlog entries with their first and last run ids, their age in runs (runs of the
    issue's project created since it was first seen) and their project's name."""
    first_run = aliased(Run)
    last_run = aliased(Run)
    later_run = aliased(Run)
    age = (
        select(func.count(later_run.id))
        .where(later_run.project_pk == Issue.project_pk, later_run.id > Issue.first_seen_run_pk)
        .correlate(Issue)
        .scalar_subquery()
    )
    return (
        select(Issue, first_run.run_id, last_run.run_id, age, Project.name)
        .join(Project, Issue.project_pk == Project.id)
        .outerjoin(first_run, Issue.first_seen_run_pk == first_run.id)
        .outerjoin(last_run, Issue.last_seen_run_pk == last_run.id)
        .where(*_backlog_filters(status=status, severity=severity))
    )


BacklogModel = TypeVar("BacklogModel", bound=BacklogIssueRead)


def _backlog_item(row: Any, model: type[BacklogModel]) -> BacklogModel:
    issue, first_id, last_id, age_value, project_name = row
    fields: dict[str, Any] = {
        "issue_key": issue.issue_key,
        "title": issue.title,
        "severity": issue.severity,
        "source": issue.source,
        "category": issue.category,
        "status": issue.status,
        "occurrence_count": issue.occurrence_count,
        "first_seen_run_id": first_id,
        "last_seen_run_id": last_id,
        "age_in_runs": int(age_value or 0),
        "evidence": issue.evidence,
        "created_at": issue.created_at,
        "updated_at": issue.updated_at,
    }
    if "project" in model.model_fields:
        fields["project"] = project_name
    return model.model_validate(fields)
