"""Creating, reading and steering runs. Every state change goes through ``runs.states``."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from autopack.db.base import utcnow
from autopack.errors import ConflictError, IllegalTransitionError, NotFoundError
from autopack.events.service import append_event
from autopack.plans.models import Plan
from autopack.projects.service import project_for_plan
from autopack.runs.models import Attempt, Cleanliness, Phase, Run, Tier
from autopack.runs.schemas import AttemptRead
from autopack.runs.states import (
    RUN_FAILED_STATES,
    PhaseState,
    RunState,
    transition_phase,
    transition_run,
    wake_run,
)


def new_run_id(now: datetime | None = None) -> str:
    stamp = (now or utcnow()).strftime("%Y%m%d-%H%M%S")
    return f"run-{stamp}-{secrets.token_hex(3)}"


def create_run(session: Session, plan: Plan) -> Run:
    """Create a QUEUED run with its tiers and phases from a validated plan, atomically.

    Raises ConflictError (nothing written) when the run id is taken.
    """
    run_id = plan.run.run_id or new_run_id()
    if session.scalar(select(Run.id).where(Run.run_id == run_id)) is not None:
        raise _duplicate(run_id)
    try:
        run = _insert_run(session, plan, run_id)
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        if session.scalar(select(Run.id).where(Run.run_id == run_id)) is not None:
            raise _duplicate(run_id) from exc
        raise
    return run


def _duplicate(run_id: str) -> ConflictError:
    return ConflictError(f"a run with run_id {run_id!r} already exists", details={"run_id": run_id})


def _insert_run(session: Session, plan: Plan, run_id: str) -> Run:
    project = project_for_plan(session, plan.project)
    spec = plan.run
    run = Run(
        run_id=run_id,
        project=project,
        goal=spec.goal,
        safety_profile=spec.safety_profile,
        run_scope=spec.run_scope,
        state=RunState.QUEUED,
        token_cap=spec.token_cap,
        cost_cap_usd=spec.cost_cap_usd,
        max_phases=spec.max_phases,
        max_duration_minutes=spec.max_duration_minutes,
        max_minor_issues_total=spec.max_minor_issues_total,
        plan=plan.model_dump(mode="json"),
    )
    session.add(run)
    session.flush()
    tiers: dict[str, Tier] = {}
    for tier_spec in plan.tiers:
        tier = Tier(
            run=run,
            tier_id=tier_spec.tier_id,
            tier_index=tier_spec.tier_index or 0,
            name=tier_spec.name,
            description=tier_spec.description,
            token_cap=tier_spec.token_cap,
            cost_cap_usd=tier_spec.cost_cap_usd,
        )
        session.add(tier)
        tiers[tier_spec.tier_id] = tier
    session.flush()
    for phase_spec in plan.phases:
        session.add(
            Phase(
                run_pk=run.id,
                tier=tiers[phase_spec.tier_id],
                phase_id=phase_spec.phase_id,
                phase_index=phase_spec.phase_index or 0,
                name=phase_spec.name,
                description=phase_spec.description,
                task_category=phase_spec.task_category,
                complexity=phase_spec.complexity,
                builder_mode=phase_spec.builder_mode,
                scope=phase_spec.scope.model_dump(mode="json"),
                max_attempts=phase_spec.max_attempts,
                token_cap=phase_spec.token_cap,
                cost_cap_usd=phase_spec.cost_cap_usd,
            )
        )
    session.flush()
    append_event(
        session,
        run,
        "run.created",
        {"project": project.name, "tiers": len(plan.tiers), "phases": len(plan.phases)},
    )
    wake_run(session, run.run_id)
    return run


def get_run(session: Session, run_id: str) -> Run:
    run = session.scalar(select(Run).where(Run.run_id == run_id))
    if run is None:
        raise NotFoundError(f"run {run_id!r} does not exist", details={"run_id": run_id})
    return run


def count_runs_by_state(session: Session) -> dict[RunState, int]:
    """How many runs are in each state (states with none are left out), in one query."""
    rows = session.execute(select(Run.state, func.count()).group_by(Run.state)).all()
    return {RunState(state): int(count) for state, count in rows}


@dataclass(frozen=True)
class RunBudget:
    run_id: str
    token_cap: int | None
    tokens_used: int
    cost_cap_usd: Decimal | None
    cost_usd: Decimal


def running_budgets(session: Session) -> list[RunBudget]:
    """Caps and spend of every RUNNING run, in one query."""
    rows = session.execute(
        select(Run.run_id, Run.token_cap, Run.tokens_used, Run.cost_cap_usd, Run.cost_usd)
        .where(Run.state == RunState.RUNNING)
        .order_by(Run.id)
    ).all()
    return [RunBudget(*row) for row in rows]


def run_is_finished(session: Session, run_pk: int) -> bool:
    """Whether the run has reached a terminal state (by primary key; cheap, for pollers)."""
    state = session.scalar(select(Run.state).where(Run.id == run_pk))
    return state is not None and RunState(state).is_terminal


def get_phase(session: Session, run: Run, phase_id: str) -> Phase:
    phase = session.scalar(select(Phase).where(Phase.run_pk == run.id, Phase.phase_id == phase_id))
    if phase is None:
        raise NotFoundError(
            f"run {run.run_id!r} has no phase {phase_id!r}",
            details={"run_id": run.run_id, "phase_id": phase_id},
        )
    return phase


def cancel_run(session: Session, run_id: str, *, reason: str | None = None) -> Run:
    """Cancel a queued, running or paused run. An executor working on it sees the state change
    at its next check and stops the phase in flight."""
    run = get_run(session, run_id)
    transition_run(session, run, RunState.CANCELLED, reason=reason or "cancelled by a user")
    session.commit()
    return run


def retry_phase(session: Session, run_id: str, phase_id: str) -> Phase:
    """Re-queue a FAILED phase. If its failure ended the run, the run is reopened (QUEUED)."""
    run = get_run(session, run_id)
    phase = get_phase(session, run, phase_id)
    if phase.state is not PhaseState.FAILED:
        raise IllegalTransitionError(
            "phase", phase.phase_id, phase.state.value, PhaseState.QUEUED.value
        )
    if run.state in RUN_FAILED_STATES:
        transition_run(session, run, RunState.QUEUED, reopen=True, reason=f"retry of {phase_id}")
    elif run.state.is_terminal:
        raise IllegalTransitionError("run", run.run_id, run.state.value, RunState.QUEUED.value)
    transition_phase(session, phase, PhaseState.QUEUED, explicit_retry=True, reason="retry")
    session.commit()
    return phase


def list_phase_attempts(session: Session, run_id: str, phase_id: str) -> list[AttemptRead]:
    """The attempts of a phase, in order (404 for an unknown run or phase)."""
    phase = get_phase(session, get_run(session, run_id), phase_id)
    attempts = session.scalars(
        select(Attempt).where(Attempt.phase_pk == phase.id).order_by(Attempt.number)
    ).all()
    return [AttemptRead.model_validate(attempt, from_attributes=True) for attempt in attempts]


@dataclass(frozen=True)
class PromotionRefusal:
    """Why a run cannot be promoted."""

    message: str
    details: dict[str, Any] = field(default_factory=dict)


def promotion_refusal(
    run_id: str,
    state: RunState,
    tiers: Iterable[tuple[str, Cleanliness]],
    project: str,
    repo: str | None,
) -> PromotionRefusal | None:
    """Why the run cannot be promoted, or None when it can: the one rule, shared by the
    promotion itself (``executor.service.promote_run``) and ``RunDetail.promotable``. Only a
    DONE_SUCCESS run whose tiers (given as ``(tier_id, cleanliness)``) are all clean, of a
    project with a repository, is promoted."""
    if state is not RunState.DONE_SUCCESS:
        return PromotionRefusal(
            f"run {run_id} is {state.value}; only a DONE_SUCCESS run can be promoted",
            {"run_id": run_id, "state": state.value},
        )
    not_clean = [tier_id for tier_id, cleanliness in tiers if cleanliness is not Cleanliness.CLEAN]
    if not_clean:
        return PromotionRefusal(
            f"run {run_id} has tiers that are not clean: {', '.join(not_clean)}",
            {"run_id": run_id, "not_clean": not_clean},
        )
    if not repo:
        return PromotionRefusal(
            f"project {project!r} has no repository",
            {"run_id": run_id, "project": project},
        )
    return None
