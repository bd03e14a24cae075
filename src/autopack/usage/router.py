"""HTTP routes of usage (tokens and cost, from the llm_calls ledger): the summary, and the same
over time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from autopack.api.deps import DatabaseDep
from autopack.api.schemas import ERROR_RESPONSES, NO_NUL
from autopack.usage.schemas import Bucket, UsageSummary, UsageTimeseries
from autopack.usage.service import UsageFilter, usage_summary, usage_timeseries

router = APIRouter(prefix="/usage", tags=["usage"], responses=ERROR_RESPONSES)


@router.get("", response_model=UsageSummary)
def get_usage_summary(
    db: DatabaseDep,
    run_id: str | None = None,
    project: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> UsageSummary:
    """Tokens and cost in total and by model and role, optionally for one run or project."""
    with db.read_session() as session:
        return usage_summary(
            session, UsageFilter(run_id=run_id, project=project, since=since, until=until)
        )


@router.get("/timeseries", response_model=UsageTimeseries)
def get_usage_timeseries(
    db: DatabaseDep,
    bucket: Bucket = "day",
    since: datetime | None = None,
    project: Annotated[str | None, Query(max_length=128, pattern=NO_NUL)] = None,
) -> UsageTimeseries:
    """Calls, tokens and cost per hour or day (UTC), model and role, oldest first; from `since`
    (a time without an offset is UTC), of one project or all."""
    with db.read_session() as session:
        return usage_timeseries(session, bucket, since=since, project=project)
