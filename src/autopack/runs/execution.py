"""The services the executor records its progress through: claiming work, heartbeats, attempts
and usage. Every state change still goes through ``runs.states``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from autopack.db.base import utcnow
from autopack.events.models import Event
from autopack.events.service import append_event
from autopack.observability import metrics
from autopack.projects.models import Project
from autopack.runs.models import Attempt, Phase, Run, Tier
from autopack.runs.states import PHASE_ACTIVE_STATES, RunState
from autopack.usage.models import LlmCall, LlmRole
from autopack.usage.service import record_llm_call


def load_run(session: Session, run_id: str) -> Run:
    return session.scalars(select(Run).where(Run.run_id == run_id)).one()


def project_of(session: Session, run: Run) -> Project:
    return session.get_one(Project, run.project_pk)


def phases_in_order(session: Session, run: Run) -> list[Phase]:
    return list(
        session.scalars(
            select(Phase)
            .join(Tier, Phase.tier_pk == Tier.id)
            .where(Phase.run_pk == run.id)
            .order_by(Tier.tier_index, Phase.phase_index)
        )
    )


def heartbeat(session: Session, phase: Phase, worker_id: str) -> bool:
    """Prove the executor holding ``phase`` is alive. False when another executor holds it now
    (the caller must stop working on it)."""
    result = session.execute(
        update(Phase)
        .where(Phase.id == phase.id, Phase.claimed_by == worker_id)
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def stale_phases(session: Session, stale_after: timedelta) -> list[Phase]:
    """Phases in an active state whose executor stopped proving it is alive."""
    cutoff = utcnow() - stale_after
    return list(
        session.scalars(
            select(Phase).where(
                Phase.state.in_(PHASE_ACTIVE_STATES),
                (Phase.heartbeat_at.is_(None)) | (Phase.heartbeat_at < cutoff),
            )
        )
    )


def live_holder(session: Session, run: Run, stale_after: timedelta) -> str | None:
    """The executor working on ``run`` now, if one has proved it is alive recently."""
    cutoff = utcnow() - stale_after
    return session.scalar(
        select(Phase.claimed_by).where(
            Phase.run_pk == run.id,
            Phase.state.in_(PHASE_ACTIVE_STATES),
            Phase.heartbeat_at >= cutoff,
        )
    )


def resumable_run_ids(session: Session, stale_after: timedelta) -> list[str]:
    """RUNNING runs that no live executor holds: their executor crashed or was stopped."""
    cutoff = utcnow() - stale_after
    live = (
        select(Phase.run_pk)
        .where(Phase.state.in_(PHASE_ACTIVE_STATES), Phase.heartbeat_at >= cutoff)
        .scalar_subquery()
    )
    return list(
        session.scalars(
            select(Run.run_id)
            .where(Run.state == RunState.RUNNING, Run.id.not_in(live), Run.updated_at < cutoff)
            .order_by(Run.created_at)
        )
    )


def runnable_run_ids(session: Session) -> list[str]:
    """Queued runs, oldest first: what an idle executor picks up."""
    return list(
        session.scalars(
            select(Run.run_id).where(Run.state == RunState.QUEUED).order_by(Run.created_at, Run.id)
        )
    )


def start_attempt(session: Session, phase: Phase, model: str | None) -> Attempt:
    number = (
        session.scalar(select(func.max(Attempt.number)).where(Attempt.phase_pk == phase.id)) or 0
    ) + 1
    attempt = Attempt(phase_pk=phase.id, number=number, model=model, started_at=utcnow())
    session.add(attempt)
    phase.attempts_count = number
    session.flush()
    return attempt


# How much of an attempt's test output and diff its row keeps (characters): the tail of the
# output (where the failures are), the head of the diff. The artifacts keep them whole.
TEST_OUTPUT_LIMIT = 64 * 1024
DIFF_LIMIT = 256 * 1024


def cap_test_output(text: str, limit: int = TEST_OUTPUT_LIMIT) -> str:
    """The last ``limit`` characters of a test log, after a line saying how many were cut."""
    text = _storable(text)
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    return f"[{cut} characters cut from the start of the output]\n{text[-limit:]}"


def cap_diff(text: str, limit: int = DIFF_LIMIT) -> str:
    """The first ``limit`` characters of a diff, followed by a line saying it was cut."""
    text = _storable(text)
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    return f"{text[:limit]}\n[diff cut: {cut} more characters not stored; see diff.patch]\n"


def _storable(text: str) -> str:
    # PostgreSQL text cannot hold NUL, which a test may well print.
    return text.replace("\x00", "\\x00")


@dataclass
class AttemptOutcome:
    outcome: str  # "success" | "edit_error" | "governance" | "tests_failed" | "audit_revise" ...
    failure_reason: str | None = None
    failure_signature: str | None = None
    edits: list[Any] | None = None
    governance_verdict: dict[str, Any] | None = None
    test_result: dict[str, Any] | None = None
    auditor_verdict: dict[str, Any] | None = None
    feedback: str | None = None


def finish_attempt(session: Session, attempt: Attempt, result: AttemptOutcome) -> None:
    now = utcnow()
    attempt.outcome = result.outcome
    attempt.failure_reason = result.failure_reason
    attempt.failure_signature = result.failure_signature
    attempt.edits = result.edits
    attempt.governance_verdict = result.governance_verdict
    attempt.test_result = result.test_result
    attempt.auditor_verdict = result.auditor_verdict
    attempt.feedback = result.feedback
    attempt.finished_at = now
    attempt.duration_ms = int((now - attempt.started_at).total_seconds() * 1000)
    session.flush()
    metrics.count_attempt(result.outcome)


def record_usage(
    session: Session,
    run: Run,
    phase: Phase,
    attempt: Attempt,
    *,
    provider: str,
    model: str,
    role: LlmRole,
    input_tokens: int,
    output_tokens: int,
    cost_usd: Decimal,
    latency_ms: int,
    outcome: str,
    error: str | None = None,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> None:
    """One model call: to the llm_calls ledger, and counted on the attempt, phase, tier and run
    (in the caller's transaction, so the ledger and the counters never disagree).
    ``input_tokens`` is the whole prompt; the cache counts say how much of it was read from or
    written to the provider's prompt cache."""
    record_llm_call(
        session,
        LlmCall(
            provider=provider,
            model=model,
            role=role,
            run_pk=run.id,
            phase_id=phase.phase_id,
            attempt_number=attempt.number,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
            cost_usd=cost_usd,
            latency_ms=latency_ms,
            outcome=outcome,
            error=error,
        ),
    )
    tokens = input_tokens + output_tokens
    if role is LlmRole.BUILDER:
        attempt.prompt_tokens += input_tokens
        attempt.completion_tokens += output_tokens
    attempt.cost_usd += cost_usd
    phase.tokens_used += tokens
    phase.cost_usd += cost_usd
    tier = session.get_one(Tier, phase.tier_pk)
    tier.tokens_used += tokens
    tier.cost_usd += cost_usd
    # Counters move with a plain UPDATE so a stale copy of the run never overwrites them.
    session.execute(
        update(Run)
        .where(Run.id == run.id)
        .values(tokens_used=Run.tokens_used + tokens, cost_usd=Run.cost_usd + cost_usd)
        .execution_options(synchronize_session=False)
    )
    append_event(
        session,
        run,
        "llm.call",
        {
            "role": role.value,
            "model": model,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cost_usd": str(cost_usd),
            "outcome": outcome,
            "attempt": attempt.number,
        },
        phase_id=phase.phase_id,
    )
    session.flush()
    metrics.count_llm_usage(
        model=model,
        role=role.value,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
        cost_usd=cost_usd,
    )


@dataclass(frozen=True)
class AttemptHistory:
    """What a phase's finished attempts say about the next one (rebuilt from the database, so
    an executor resuming after a crash continues exactly where the crashed one was)."""

    counted: int  # attempts that count against max_attempts (interrupted ones do not)
    consecutive_failures: int
    feedback: str | None  # what the last failed attempt left for the next one
    last_failure: tuple[str, str | None] | None  # (signature, model) of the last failure


INTERRUPTED = "interrupted"


def attempt_history(session: Session, phase: Phase) -> AttemptHistory:
    attempts = session.scalars(
        select(Attempt)
        .where(Attempt.phase_pk == phase.id, Attempt.finished_at.is_not(None))
        .order_by(Attempt.number)
    ).all()
    counted = [attempt for attempt in attempts if attempt.outcome != INTERRUPTED]
    failures = 0
    for attempt in reversed(counted):
        if attempt.outcome == "success":
            break
        failures += 1
    last = counted[-1] if counted and counted[-1].outcome != "success" else None
    return AttemptHistory(
        counted=len(counted),
        consecutive_failures=failures,
        feedback=last.feedback if last is not None else None,
        last_failure=(last.failure_signature or "", last.model) if last is not None else None,
    )


def count_ci_run(session: Session, run: Run) -> None:
    session.execute(
        update(Run)
        .where(Run.id == run.id)
        .values(ci_runs_used=Run.ci_runs_used + 1)
        .execution_options(synchronize_session=False)
    )


def is_cancelled(session: Session, run_pk: int) -> bool:
    state = session.scalar(select(Run.state).where(Run.id == run_pk))
    return state is RunState.CANCELLED


def active_phase(session: Session, run: Run) -> Phase | None:
    return session.scalar(
        select(Phase).where(Phase.run_pk == run.id, Phase.state.in_(PHASE_ACTIVE_STATES))
    )


def executor_failures_in_a_row(session: Session, run: Run) -> int:
    """``executor.failed`` events of ``run`` since its last phase was completed (or adopted
    after a crash): how many times in a row executing it failed."""
    rows = session.execute(
        select(Event.type, Event.payload)
        .where(
            Event.run_pk == run.id,
            Event.type.in_(("executor.failed", "phase.state_changed", "phase.recovered")),
        )
        .order_by(Event.id.desc())
    )
    failures = 0
    for kind, payload in rows:
        if kind == "executor.failed":
            failures += 1
        elif kind == "phase.recovered" or (payload or {}).get("to") == "COMPLETE":
            break
    return failures
