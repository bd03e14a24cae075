"""HTTP routes of events: paged reads, and a Server-Sent Events stream resumable by id."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, Request
from sqlalchemy.orm import Session, sessionmaker
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from autopack.api.deps import DatabaseDep, SettingsDep
from autopack.api.schemas import ERROR_RESPONSES, SQL_BIGINT_MAX
from autopack.events import service
from autopack.events.models import Event
from autopack.events.schemas import EventPage, EventRead
from autopack.runs.service import get_run, run_is_finished

router = APIRouter(prefix="/runs/{run_id}/events", tags=["events"], responses=ERROR_RESPONSES)


def _read(event: Event, run_id: str) -> EventRead:
    return EventRead(
        id=event.id,
        run_id=run_id,
        phase_id=event.phase_id,
        type=event.type,
        payload=event.payload,
        created_at=event.created_at,
    )


@router.get("", response_model=EventPage)
def list_run_events(
    run_id: str,
    db: DatabaseDep,
    after: Annotated[
        int, Query(ge=0, le=SQL_BIGINT_MAX, description="Only events with a larger id")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    """A run's events in order, one page at a time."""
    with db.read_session() as session:
        run = get_run(session, run_id)
        events = service.list_events(session, run.id, after_id=after, limit=limit)
    return EventPage(
        items=[_read(event, run_id) for event in events],
        next_after=events[-1].id if len(events) == limit else None,
    )


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def stream_run_events(
    run_id: str,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    after: Annotated[
        int | None, Query(ge=0, le=SQL_BIGINT_MAX, description="Resume after this event id")
    ] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventSourceResponse:
    """The run's events as Server-Sent Events, live. Reconnecting with ``Last-Event-ID`` (or
    ``?after=``) resumes after that event. The stream ends once the run has finished and every
    event has been sent."""
    run_pk = await run_in_threadpool(_run_pk, db.read_session, run_id)
    cursor = after or 0
    # An id that is not one (not ASCII digits, or past any id) is ignored, as browsers expect.
    resumed = (last_event_id or "").strip()
    if resumed.isascii() and resumed.isdigit() and int(resumed) <= SQL_BIGINT_MAX:
        cursor = max(cursor, int(resumed))
    poll = settings.sse_poll_interval_seconds

    async def events() -> AsyncIterator[ServerSentEvent]:
        nonlocal cursor
        while not await request.is_disconnected():
            batch, finished = await run_in_threadpool(_poll, db.read_session, run_pk, cursor)
            for event in batch:
                cursor = event.id
                yield ServerSentEvent(
                    id=str(event.id),
                    event=event.type,
                    data=json.dumps(_read(event, run_id).model_dump(mode="json")),
                )
            if batch:
                continue
            if finished:
                return
            await anyio.sleep(poll)

    return EventSourceResponse(events(), ping=15)


def _run_pk(factory: sessionmaker[Session], run_id: str) -> int:
    with factory() as session:
        return get_run(session, run_id).id


def _poll(factory: sessionmaker[Session], run_pk: int, cursor: int) -> tuple[list[Event], bool]:
    with factory() as session:
        # The state is read before the events: if the run had finished, every event its final
        # transition wrote is already visible.
        finished = run_is_finished(session, run_pk)
        return service.list_events(session, run_pk, after_id=cursor, limit=200), finished
