"""The state machines of runs, phases and tiers — the one place that knows the allowed moves.

Every state change goes through :func:`transition_run` or :func:`transition_phase`. Each is a
conditional update (``... WHERE state = <expected>``), so two writers can never both make the same
move (two workers claiming one phase: exactly one wins), and each writes its event in the same
transaction as the row. A tier's state is never set by hand: it is derived from its phases.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from autopack.db.base import utcnow
from autopack.db.engine import ENQUEUE_RUNS_INFO
from autopack.errors import IllegalTransitionError

if TYPE_CHECKING:
    from autopack.runs.models import Phase, Run, Tier


class RunState(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    DONE_SUCCESS = "DONE_SUCCESS"
    DONE_FAILED_BUDGET_EXHAUSTED = "DONE_FAILED_BUDGET_EXHAUSTED"
    DONE_FAILED_POLICY_VIOLATION = "DONE_FAILED_POLICY_VIOLATION"
    DONE_FAILED_REQUIRES_HUMAN_REVIEW = "DONE_FAILED_REQUIRES_HUMAN_REVIEW"
    DONE_FAILED_ENVIRONMENT = "DONE_FAILED_ENVIRONMENT"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in RUN_TERMINAL_STATES


class PhaseState(enum.StrEnum):
    QUEUED = "QUEUED"
    EXECUTING = "EXECUTING"
    CI_RUNNING = "CI_RUNNING"
    GATE = "GATE"
    BLOCKED = "BLOCKED"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class TierState(enum.StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


RUN_FAILED_STATES = frozenset(
    {
        RunState.DONE_FAILED_BUDGET_EXHAUSTED,
        RunState.DONE_FAILED_POLICY_VIOLATION,
        RunState.DONE_FAILED_REQUIRES_HUMAN_REVIEW,
        RunState.DONE_FAILED_ENVIRONMENT,
    }
)
RUN_TERMINAL_STATES = RUN_FAILED_STATES | {RunState.DONE_SUCCESS, RunState.CANCELLED}

RUN_TRANSITIONS: frozenset[tuple[RunState, RunState]] = frozenset(
    {
        (RunState.QUEUED, RunState.RUNNING),
        (RunState.RUNNING, RunState.PAUSED),
        (RunState.PAUSED, RunState.RUNNING),
        (RunState.RUNNING, RunState.DONE_SUCCESS),
        *((RunState.RUNNING, failed) for failed in RUN_FAILED_STATES),
        (RunState.RUNNING, RunState.CANCELLED),
        (RunState.QUEUED, RunState.CANCELLED),
        (RunState.PAUSED, RunState.CANCELLED),
        # A decided approval (autopack.approvals.service): approved, the run waits for an
        # executor again (QUEUED, so `autopack serve` picks it up at once and the claim stays the
        # conditional QUEUED -> RUNNING); rejected, it ends for a human, without an executor.
        (RunState.PAUSED, RunState.QUEUED),
        (RunState.PAUSED, RunState.DONE_FAILED_REQUIRES_HUMAN_REVIEW),
    }
)

# An explicit retry of a failed phase reopens the run it ended. These moves are allowed only
# through retry_phase (``reopen=True``), never by the executor's normal flow.
RUN_REOPEN_TRANSITIONS: frozenset[tuple[RunState, RunState]] = frozenset(
    (failed, RunState.QUEUED) for failed in RUN_FAILED_STATES
)

PHASE_ACTIVE_STATES = frozenset(
    {PhaseState.EXECUTING, PhaseState.CI_RUNNING, PhaseState.GATE, PhaseState.BLOCKED}
)

PHASE_TRANSITIONS: frozenset[tuple[PhaseState, PhaseState]] = frozenset(
    {
        (PhaseState.QUEUED, PhaseState.EXECUTING),
        (PhaseState.EXECUTING, PhaseState.CI_RUNNING),
        (PhaseState.CI_RUNNING, PhaseState.GATE),
        (PhaseState.GATE, PhaseState.COMPLETE),
        *((active, PhaseState.FAILED) for active in PHASE_ACTIVE_STATES),
        (PhaseState.GATE, PhaseState.EXECUTING),
        (PhaseState.EXECUTING, PhaseState.BLOCKED),
        (PhaseState.GATE, PhaseState.BLOCKED),
        (PhaseState.BLOCKED, PhaseState.EXECUTING),
        (PhaseState.QUEUED, PhaseState.SKIPPED),
    }
)

# FAILED -> QUEUED happens only through an explicit retry (``explicit_retry=True``).
PHASE_RETRY_TRANSITION = (PhaseState.FAILED, PhaseState.QUEUED)


def can_transition_run(current: RunState, requested: RunState, *, reopen: bool = False) -> bool:
    move = (current, requested)
    return move in RUN_TRANSITIONS or (reopen and move in RUN_REOPEN_TRANSITIONS)


def can_transition_phase(
    current: PhaseState, requested: PhaseState, *, explicit_retry: bool = False
) -> bool:
    move = (current, requested)
    return move in PHASE_TRANSITIONS or (explicit_retry and move == PHASE_RETRY_TRANSITION)


def transition_run(
    session: Session,
    run: Run,
    to: RunState,
    *,
    reason: str | None = None,
    reopen: bool = False,
    values: Mapping[str, Any] | None = None,
) -> None:
    """Move ``run`` to ``to``, writing the row and a ``run.state_changed`` event together.

    The caller commits. Raises :class:`IllegalTransitionError` when the move is not allowed or when
    another writer changed the run's state first.
    """
    from autopack.runs.models import Run

    current = RunState(run.state)
    if not can_transition_run(current, to, reopen=reopen):
        raise IllegalTransitionError("run", run.run_id, current.value, to.value)
    now = utcnow()
    changes: dict[str, Any] = {"state": to, "updated_at": now, "version": Run.version + 1}
    if to is RunState.RUNNING and run.started_at is None:
        changes["started_at"] = now
    if to.is_terminal:
        changes["finished_at"] = now
        changes["failure_reason"] = reason if to in RUN_FAILED_STATES else None
    elif reopen:
        changes["finished_at"] = None
        changes["failure_reason"] = None
    changes.update(values or {})
    _compare_and_set(session, run, "run", run.run_id, current, changes)
    _record(session, run, None, "run.state_changed", current.value, to.value, reason)
    if to is RunState.QUEUED:
        wake_run(session, run.run_id)


def wake_run(session: Session, run_id: str) -> None:
    """A run became runnable (created, or QUEUED again): with workers, its job is deferred in
    this same transaction, so the state change and the job commit or roll back together."""
    if session.info.get(ENQUEUE_RUNS_INFO):
        from autopack.workers.queue import enqueue_run  # procrastinate only where it is used

        enqueue_run(session, run_id)


def transition_phase(
    session: Session,
    phase: Phase,
    to: PhaseState,
    *,
    reason: str | None = None,
    explicit_retry: bool = False,
    values: Mapping[str, Any] | None = None,
) -> None:
    """Move ``phase`` to ``to`` (conditional on its current state), write a
    ``phase.state_changed`` event, and re-derive its tier's state. The caller commits.

    This is also the claim: ``QUEUED -> EXECUTING`` by two workers at once lets exactly one win;
    the other gets :class:`IllegalTransitionError`.
    """

    current = PhaseState(phase.state)
    if not can_transition_phase(current, to, explicit_retry=explicit_retry):
        raise IllegalTransitionError("phase", phase.phase_id, current.value, to.value)
    now = utcnow()
    changes: dict[str, Any] = {"state": to, "updated_at": now}
    if to is PhaseState.EXECUTING and phase.started_at is None:
        changes["started_at"] = now
    if to in (PhaseState.COMPLETE, PhaseState.FAILED, PhaseState.SKIPPED):
        changes["finished_at"] = now
    if to is PhaseState.FAILED:
        changes["failure_reason"] = reason
    if explicit_retry:
        changes["finished_at"] = None
        changes["failure_reason"] = None
    changes.update(values or {})
    started_at = phase.started_at
    _compare_and_set(session, phase, "phase", phase.phase_id, current, changes)
    _record(session, phase.run, phase, "phase.state_changed", current.value, to.value, reason)
    if not (current in PHASE_ACTIVE_STATES and to in PHASE_ACTIVE_STATES):
        # A move between two active states cannot change the tier (IN_PROGRESS either way).
        refresh_tier_state(session, phase.tier)
    if to in (PhaseState.COMPLETE, PhaseState.FAILED) and started_at is not None:
        # Counted here, the one place every phase ends, once the move is certain to be ours
        # (the conditional update above succeeded). Imported here: metrics imports this module.
        from autopack.observability.metrics import observe_phase_finished

        observe_phase_finished(to.value, (now - started_at).total_seconds())


def derive_tier_state(phase_states: Iterable[PhaseState]) -> TierState:
    """A tier's state as a function of its phases' states."""
    states = set(phase_states)
    if not states or states == {PhaseState.QUEUED}:
        return TierState.PENDING
    if PhaseState.FAILED in states:
        return TierState.FAILED
    if states == {PhaseState.SKIPPED}:
        return TierState.SKIPPED
    if states <= {PhaseState.COMPLETE, PhaseState.SKIPPED}:
        return TierState.COMPLETE
    return TierState.IN_PROGRESS


def refresh_tier_state(session: Session, tier: Tier) -> None:
    """Re-derive ``tier``'s state from its phases; record ``tier.state_changed`` if it moved."""
    from autopack.runs.models import Phase

    phase_states = session.scalars(select(Phase.state).where(Phase.tier_pk == tier.id)).all()
    derived = derive_tier_state(PhaseState(state) for state in phase_states)
    previous = TierState(tier.state)
    if derived is previous:
        return
    tier.state = derived
    tier.updated_at = utcnow()
    session.flush()
    _record(
        session,
        tier.run,
        None,
        "tier.state_changed",
        previous.value,
        derived.value,
        None,
        extra={"tier_id": tier.tier_id},
    )


def _compare_and_set(
    session: Session,
    row: Run | Phase,
    entity: str,
    entity_id: str,
    expected: enum.StrEnum,
    changes: dict[str, Any],
) -> None:
    """``UPDATE ... SET changes WHERE id = row.id AND state = expected``; exactly one row must
    change, or the state moved under us and the caller's move is refused."""
    model = type(row)
    result = session.execute(
        update(model)
        .where(model.id == row.id, model.state == expected)
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        actual = session.scalar(select(model.state).where(model.id == row.id))
        raise IllegalTransitionError(entity, entity_id, str(actual), str(changes["state"]))
    # The row now holds exactly what was written: mirror it on the object instead of reading
    # it back (one SELECT less per move; a phase makes four moves).
    for key, value in changes.items():
        local = getattr(row, key) + 1 if key == "version" else value
        set_committed_value(row, key, local)


def _record(
    session: Session,
    run: Run,
    phase: Phase | None,
    event_type: str,
    previous: str,
    new: str,
    reason: str | None,
    *,
    extra: dict[str, Any] | None = None,
) -> None:
    from autopack.events.service import append_event

    payload: dict[str, Any] = {"from": previous, "to": new}
    if reason:
        payload["reason"] = reason
    if extra:
        payload.update(extra)
    append_event(
        session, run, event_type, payload, phase_id=phase.phase_id if phase is not None else None
    )
