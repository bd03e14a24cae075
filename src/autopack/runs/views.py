"""Read models of runs for the API and the CLI, built from plain rows (no ORM objects).

``GET /api/runs/{id}`` is the dashboard's hottest read; loading a run of 50 phases as ORM objects
spent more time in the identity map than in the database. These queries select exactly the
columns the response needs, in three statements whatever the size of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from autopack.errors import NotFoundError
from autopack.projects.models import Project
from autopack.runs.models import Cleanliness, Phase, Run, Tier
from autopack.runs.schemas import Budget, PhaseRead, RunDetail, RunSummary, TierRead
from autopack.runs.service import promotion_refusal
from autopack.runs.states import PhaseState, RunState

_runs = Run.__table__.c
_projects = Project.__table__.c
_tiers = Tier.__table__.c
_phases = Phase.__table__.c

# Plain table columns (not ORM attributes), so the statements run as Core, without ORM loading.
_SUMMARY_COLUMNS = (
    _runs.id,
    _runs.run_id,
    _projects.name.label("project"),
    *(
        _runs[name]
        for name in (
            "goal",
            "state",
            "safety_profile",
            "failure_reason",
            "token_cap",
            "tokens_used",
            "cost_cap_usd",
            "cost_usd",
            "max_phases",
            "max_duration_minutes",
            "max_minor_issues_total",
            "created_at",
            "started_at",
            "finished_at",
        )
    ),
)
_DETAIL_COLUMNS = tuple(
    _runs[name]
    for name in (
        "run_scope",
        "integration_branch",
        "base_commit",
        "head_commit",
        "ci_runs_used",
        "minor_issues_count",
        "major_issues_count",
    )
)
_BUDGET_FIELDS = tuple(Budget.model_fields)
_TIER_FIELDS = tuple(name for name in TierRead.model_fields if name != "phases")
_PHASE_FIELDS = tuple(name for name in PhaseRead.model_fields if name != "tier_id")

# Built once: constructing a statement costs about as much as running it against SQLite.
_RUN_DETAIL = (
    select(*_SUMMARY_COLUMNS, *_DETAIL_COLUMNS, _projects.repo.label("project_repo"))
    .select_from(Run.__table__.join(Project.__table__, _runs.project_pk == _projects.id))
    .where(_runs.run_id == bindparam("run_id"))
)
_RUN_TIERS = (
    select(_tiers.id, *(_tiers[name] for name in _TIER_FIELDS))
    .where(_tiers.run_pk == bindparam("run_pk"))
    .order_by(_tiers.tier_index)
)
_RUN_PHASES = (
    select(_phases.tier_pk, *(_phases[name] for name in _PHASE_FIELDS))
    .where(_phases.run_pk == bindparam("run_pk"))
    .order_by(_phases.phase_index)
)


@dataclass(frozen=True)
class RunFilter:
    state: RunState | None = None
    project: str | None = None


def list_run_summaries(
    session: Session, filters: RunFilter, *, limit: int, offset: int
) -> tuple[list[RunSummary], int]:
    """A page of runs, newest first, and the number of runs matching the filters."""
    query: Select[Any] = select(*_SUMMARY_COLUMNS).select_from(
        Run.__table__.join(Project.__table__, _runs.project_pk == _projects.id)
    )
    if filters.state is not None:
        query = query.where(_runs.state == filters.state)
    if filters.project is not None:
        query = query.where(_projects.name == filters.project)
    connection = session.connection()
    total = connection.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = connection.execute(
        query.order_by(_runs.created_at.desc(), _runs.id.desc()).limit(limit).offset(offset)
    ).all()
    progress = _phase_progress(session, [row.id for row in rows])
    return [_summary(row, *progress.get(row.id, (0, 0))) for row in rows], int(total)


def read_run_detail(session: Session, run_id: str) -> RunDetail:
    connection = session.connection()
    row = connection.execute(_RUN_DETAIL, {"run_id": run_id}).one_or_none()
    if row is None:
        raise NotFoundError(f"run {run_id!r} does not exist", details={"run_id": run_id})
    # Built as plain dicts and validated once, in one call into pydantic's core.
    tiers: dict[int, dict[str, Any]] = {}
    for tier_row in connection.execute(_RUN_TIERS, {"run_pk": row.id}).all():
        tier = dict(tier_row._mapping)
        tier["phases"] = []
        tiers[tier.pop("id")] = tier
    complete = total = 0
    for phase_row in connection.execute(_RUN_PHASES, {"run_pk": row.id}).all():
        phase = dict(phase_row._mapping)
        tier = tiers[phase.pop("tier_pk")]
        phase["tier_id"] = tier["tier_id"]
        tier["phases"].append(phase)
        total += 1
        complete += phase["state"] is PhaseState.COMPLETE
    detail = _summary_fields(row, complete, total)  # with the detail columns the row holds
    repo = detail.pop("project_repo")
    detail["tiers"] = list(tiers.values())
    refusal = promotion_refusal(
        run_id,
        RunState(row.state),
        [(tier["tier_id"], Cleanliness(tier["cleanliness"])) for tier in detail["tiers"]],
        row.project,
        repo,
    )
    detail["promotable"] = refusal is None
    return RunDetail.model_validate(detail)


def _summary(row: Any, phases_complete: int, phases_total: int) -> RunSummary:
    return RunSummary.model_validate(_summary_fields(row, phases_complete, phases_total))


def _summary_fields(row: Any, phases_complete: int, phases_total: int) -> dict[str, Any]:
    fields = dict(row._mapping)
    fields.pop("id")
    fields["budget"] = {name: fields.pop(name) for name in _BUDGET_FIELDS}
    fields["phases_complete"] = phases_complete
    fields["phases_total"] = phases_total
    return fields


def _phase_progress(session: Session, run_pks: list[int]) -> dict[int, tuple[int, int]]:
    """(phases complete, phases total) per run, in one query."""
    if not run_pks:
        return {}
    complete = func.count().filter(_phases.state == PhaseState.COMPLETE)
    rows = (
        session.connection()
        .execute(
            select(_phases.run_pk, complete, func.count())
            .where(_phases.run_pk.in_(run_pks))
            .group_by(_phases.run_pk)
        )
        .all()
    )
    return {run_pk: (int(done or 0), int(total)) for run_pk, done, total in rows}
