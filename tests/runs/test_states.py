"""The state machines: the exact tables of ARCHITECTURE §4, one transition function each,
events written with the row, conditional claims, derived tier state."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from autopack.errors import IllegalTransitionError
from autopack.events.models import Event
from autopack.runs.models import Phase, Run, Tier
from autopack.runs.states import (
    PHASE_TRANSITIONS,
    RUN_TRANSITIONS,
    PhaseState,
    RunState,
    TierState,
    can_transition_phase,
    can_transition_run,
    derive_tier_state,
    transition_phase,
    transition_run,
)
from tests.factories import make_run

R, P = RunState, PhaseState
FAILED_RUN_STATES = [
    R.DONE_FAILED_BUDGET_EXHAUSTED,
    R.DONE_FAILED_POLICY_VIOLATION,
    R.DONE_FAILED_REQUIRES_HUMAN_REVIEW,
    R.DONE_FAILED_ENVIRONMENT,
]

# Written out by hand from ARCHITECTURE §4, so that a change to the table must change this too.
EXPECTED_RUN_MOVES = {
    (R.QUEUED, R.RUNNING),
    (R.RUNNING, R.PAUSED),
    (R.PAUSED, R.RUNNING),
    (R.RUNNING, R.DONE_SUCCESS),
    *((R.RUNNING, failed) for failed in FAILED_RUN_STATES),
    (R.RUNNING, R.CANCELLED),
    (R.QUEUED, R.CANCELLED),
    (R.PAUSED, R.CANCELLED),
    # Beyond §4: the effects of a decided approval (approved: back to the queue; rejected: ended).
    (R.PAUSED, R.QUEUED),
    (R.PAUSED, R.DONE_FAILED_REQUIRES_HUMAN_REVIEW),
}
EXPECTED_PHASE_MOVES = {
    (P.QUEUED, P.EXECUTING),
    (P.EXECUTING, P.CI_RUNNING),
    (P.CI_RUNNING, P.GATE),
    (P.GATE, P.COMPLETE),
    (P.EXECUTING, P.FAILED),
    (P.CI_RUNNING, P.FAILED),
    (P.GATE, P.FAILED),
    (P.BLOCKED, P.FAILED),
    (P.GATE, P.EXECUTING),
    (P.EXECUTING, P.BLOCKED),
    (P.GATE, P.BLOCKED),
    (P.BLOCKED, P.EXECUTING),
    (P.QUEUED, P.SKIPPED),
}


def test_run_table_is_exactly_the_architecture() -> None:
    assert set(RUN_TRANSITIONS) == EXPECTED_RUN_MOVES
    for current, requested in itertools.product(RunState, RunState):
        assert can_transition_run(current, requested) == (
            (current, requested) in EXPECTED_RUN_MOVES
        )


def test_phase_table_is_exactly_the_architecture() -> None:
    assert set(PHASE_TRANSITIONS) == EXPECTED_PHASE_MOVES
    for current, requested in itertools.product(PhaseState, PhaseState):
        assert can_transition_phase(current, requested) == (
            (current, requested) in EXPECTED_PHASE_MOVES
        )


def test_failed_to_queued_only_by_explicit_retry() -> None:
    assert not can_transition_phase(P.FAILED, P.QUEUED)
    assert can_transition_phase(P.FAILED, P.QUEUED, explicit_retry=True)
    # explicit_retry opens no other door
    assert not can_transition_phase(P.COMPLETE, P.QUEUED, explicit_retry=True)


def test_reopening_a_run_is_only_from_a_failed_state_and_only_on_request() -> None:
    for failed in FAILED_RUN_STATES:
        assert not can_transition_run(failed, R.QUEUED)
        assert can_transition_run(failed, R.QUEUED, reopen=True)
    assert not can_transition_run(R.DONE_SUCCESS, R.QUEUED, reopen=True)
    assert not can_transition_run(R.CANCELLED, R.QUEUED, reopen=True)


def test_every_state_is_reachable() -> None:
    """No state that nothing can ever enter (a mistake of the original system)."""
    reachable_runs = {R.QUEUED} | {to for _, to in RUN_TRANSITIONS}
    assert reachable_runs == set(RunState)
    reachable_phases = {P.QUEUED} | {to for _, to in PHASE_TRANSITIONS}
    assert reachable_phases == set(PhaseState)


def _events(session: Session, run: Run) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.run_pk == run.id).order_by(Event.id)))


def test_transition_writes_row_and_event_together(session: Session) -> None:
    run = make_run(session)
    before = len(_events(session, run))
    transition_run(session, run, R.RUNNING)
    session.commit()
    assert run.state is R.RUNNING and run.started_at is not None
    events = _events(session, run)
    assert len(events) == before + 1
    assert events[-1].type == "run.state_changed"
    assert events[-1].payload == {"from": "QUEUED", "to": "RUNNING"}


def test_rolled_back_transition_leaves_neither_row_nor_event(
    session: Session, session_factory: sessionmaker[Session]
) -> None:
    run = make_run(session)
    run_id = run.run_id
    before = len(_events(session, run))
    transition_run(session, run, R.RUNNING)
    session.rollback()
    with session_factory() as fresh:
        stored = fresh.scalars(select(Run).where(Run.run_id == run_id)).one()
        assert stored.state is R.QUEUED
        assert len(_events(fresh, stored)) == before


def test_illegal_transition_names_both_states_and_changes_nothing(session: Session) -> None:
    run = make_run(session)
    with pytest.raises(IllegalTransitionError) as caught:
        transition_run(session, run, R.DONE_SUCCESS)
    assert "QUEUED" in str(caught.value) and "DONE_SUCCESS" in str(caught.value)
    assert caught.value.current == "QUEUED" and caught.value.requested == "DONE_SUCCESS"
    session.rollback()
    session.refresh(run)
    assert run.state is R.QUEUED


def test_stale_object_loses_to_the_committed_state(
    session: Session, session_factory: sessionmaker[Session]
) -> None:
    """A writer holding an outdated copy cannot overwrite a move someone else made."""
    run = make_run(session)
    with session_factory() as other:
        other_run = other.scalars(select(Run).where(Run.id == run.id)).one()
        transition_run(other, other_run, R.CANCELLED)
        other.commit()
    # `run` still believes it is QUEUED; QUEUED -> RUNNING is legal on paper but lost the race.
    with pytest.raises(IllegalTransitionError) as caught:
        transition_run(session, run, R.RUNNING)
    assert caught.value.current == "CANCELLED"
    session.rollback()


def test_run_version_increments_on_every_transition(session: Session) -> None:
    run = make_run(session)
    first = run.version
    transition_run(session, run, R.RUNNING)
    transition_run(session, run, R.PAUSED)
    session.commit()
    assert run.version == first + 2


def test_terminal_state_sets_finished_and_reason(session: Session) -> None:
    run = make_run(session)
    transition_run(session, run, R.RUNNING)
    transition_run(session, run, R.DONE_FAILED_ENVIRONMENT, reason="git is missing")
    session.commit()
    assert run.finished_at is not None
    assert run.failure_reason == "git is missing"


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([], TierState.PENDING),
        ([P.QUEUED, P.QUEUED], TierState.PENDING),
        ([P.EXECUTING, P.QUEUED], TierState.IN_PROGRESS),
        ([P.COMPLETE, P.QUEUED], TierState.IN_PROGRESS),
        ([P.BLOCKED], TierState.IN_PROGRESS),
        ([P.COMPLETE, P.COMPLETE], TierState.COMPLETE),
        ([P.COMPLETE, P.SKIPPED], TierState.COMPLETE),
        ([P.SKIPPED, P.SKIPPED], TierState.SKIPPED),
        ([P.COMPLETE, P.FAILED, P.QUEUED], TierState.FAILED),
    ],
)
def test_tier_state_is_derived_from_its_phases(
    states: list[PhaseState], expected: TierState
) -> None:
    assert derive_tier_state(states) is expected


def _walk_to_complete(session: Session, phase: Phase) -> None:
    for state in (P.EXECUTING, P.CI_RUNNING, P.GATE, P.COMPLETE):
        transition_phase(session, phase, state)


def test_tier_follows_its_phases_with_events(session: Session) -> None:
    run = make_run(session)
    tier = session.scalars(select(Tier).where(Tier.run_pk == run.id, Tier.tier_id == "T1")).one()
    first, second = tier.phases
    transition_phase(session, first, P.EXECUTING)
    assert tier.state is TierState.IN_PROGRESS
    transition_phase(session, first, P.CI_RUNNING)
    transition_phase(session, first, P.GATE)
    transition_phase(session, first, P.COMPLETE)
    assert tier.state is TierState.IN_PROGRESS
    _walk_to_complete(session, second)
    session.commit()
    assert tier.state is TierState.COMPLETE
    tier_events = [e.payload for e in _events(session, run) if e.type == "tier.state_changed"]
    assert tier_events == [
        {"from": "PENDING", "to": "IN_PROGRESS", "tier_id": "T1"},
        {"from": "IN_PROGRESS", "to": "COMPLETE", "tier_id": "T1"},
    ]


def test_retry_reopens_a_failed_tier(session: Session) -> None:
    run = make_run(session)
    phase = session.scalars(select(Phase).where(Phase.run_pk == run.id)).first()
    assert phase is not None
    transition_phase(session, phase, P.EXECUTING)
    transition_phase(session, phase, P.FAILED, reason="tests failed")
    assert phase.tier.state is TierState.FAILED and phase.failure_reason == "tests failed"
    with pytest.raises(IllegalTransitionError):
        transition_phase(session, phase, P.QUEUED)
    transition_phase(session, phase, P.QUEUED, explicit_retry=True)
    session.commit()
    assert phase.state is P.QUEUED and phase.failure_reason is None
    assert phase.tier.state is TierState.PENDING


def test_concurrent_claims_let_exactly_one_win(
    dialect: str, session: Session, session_factory: sessionmaker[Session]
) -> None:
    """Many threads claim the same queued phase (QUEUED -> EXECUTING): exactly one wins."""
    run = make_run(session)
    phase_pk = session.scalars(select(Phase.id).where(Phase.run_pk == run.id)).first()
    session.commit()  # hold no transaction (on SQLite, no lock) while the contenders race
    contenders = 16
    barrier = threading.Barrier(contenders)
    wins: list[str] = []
    losses: list[str] = []

    def claim(worker: str) -> None:
        with session_factory() as own:
            phase = own.get_one(Phase, phase_pk)
            own.commit()  # every contender now holds a copy that says QUEUED
            barrier.wait()
            try:
                transition_phase(own, phase, P.EXECUTING, values={"claimed_by": worker})
                own.commit()
                wins.append(worker)
            except IllegalTransitionError as exc:
                own.rollback()
                assert exc.current == "EXECUTING"
                losses.append(worker)

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(wins) == 1, (wins, losses)
    assert len(losses) == contenders - 1
    with session_factory() as check:
        phase = check.get_one(Phase, phase_pk)
        assert phase.state is P.EXECUTING and phase.claimed_by == wins[0]
        claims = [
            e
            for e in _events(check, phase.run)
            if e.type == "phase.state_changed" and e.payload["to"] == "EXECUTING"
        ]
        assert len(claims) == 1
