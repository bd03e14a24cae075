"""Appending and reading events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from autopack.db.base import utcnow
from autopack.events.models import Event

if TYPE_CHECKING:
    from autopack.runs.models import Run

# Namespace of the per-run advisory lock taken while an event is written (see append_event).
_EVENT_LOCK_NAMESPACE = 0x41505645  # "APVE"


def append_event(
    session: Session,
    run: Run,
    event_type: str,
    payload: dict[str, Any] | None = None,
    *,
    phase_id: str | None = None,
) -> Event:
    """Add an event to ``run``'s log in the caller's transaction.

    On PostgreSQL a transaction-scoped advisory lock per run makes the writers of one run's events
    commit in id order, so a reader that resumes "after id N" can never miss an event that was
    committed late with a smaller id. (SQLite serialises writers already.)
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(CAST(:ns AS integer), CAST(:run AS integer))"),
            {"ns": _EVENT_LOCK_NAMESPACE, "run": run.id},
        )
    event = Event(
        run_pk=run.id,
        phase_id=phase_id,
        type=event_type,
        payload=payload or {},
        created_at=utcnow(),
    )
    session.add(event)
    session.flush()
    return event


def list_events(
    session: Session, run_pk: int, *, after_id: int = 0, limit: int = 100
) -> list[Event]:
    return list(
        session.scalars(
            select(Event)
            .where(Event.run_pk == run_pk, Event.id > after_id)
            .order_by(Event.id)
            .limit(limit)
        )
    )


def count_events(session: Session, run_pk: int) -> int:
    return (
        session.scalar(select(func.count()).select_from(Event).where(Event.run_pk == run_pk)) or 0
    )
