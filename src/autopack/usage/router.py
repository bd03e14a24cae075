"""HTTP route of the usage summary (tokens and cost, from the llm_calls ledger)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter

from autopack.api.deps import DatabaseDep
from autopack.api.schemas import ERROR_RESPONSES
from autopack.usage.schemas import UsageSummary
from autopack.usage.service import UsageFilter, usage_summary

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
