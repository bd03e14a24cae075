"""The llm_calls ledger: recording calls and summarising usage. Reports read only the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from autopack.projects.models import Project
from autopack.runs.models import Run
from autopack.usage.models import LlmCall
from autopack.usage.schemas import UsageRow, UsageSummary


def record_llm_call(session: Session, call: LlmCall) -> LlmCall:
    """Add a call to the ledger in the caller's transaction."""
    session.add(call)
    session.flush()
    return call


@dataclass(frozen=True)
class UsageFilter:
    run_id: str | None = None
    project: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def usage_summary(session: Session, filters: UsageFilter) -> UsageSummary:
    query = select(
        LlmCall.model,
        LlmCall.provider,
        LlmCall.role,
        func.count(LlmCall.id),
        func.coalesce(func.sum(LlmCall.input_tokens), 0),
        func.coalesce(func.sum(LlmCall.output_tokens), 0),
        func.coalesce(func.sum(LlmCall.cache_read_tokens), 0),
        func.coalesce(func.sum(LlmCall.cache_write_tokens), 0),
        func.coalesce(func.sum(LlmCall.cost_usd), 0),
    ).group_by(LlmCall.model, LlmCall.provider, LlmCall.role)
    if filters.run_id is not None or filters.project is not None:
        query = query.join(Run, LlmCall.run_pk == Run.id)
    if filters.run_id is not None:
        query = query.where(Run.run_id == filters.run_id)
    if filters.project is not None:
        query = query.join(Project, Run.project_pk == Project.id).where(
            Project.name == filters.project
        )
    if filters.since is not None:
        query = query.where(LlmCall.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(LlmCall.created_at < filters.until)
    rows = [
        UsageRow(
            model=model,
            provider=provider,
            role=role,
            calls=int(calls),
            input_tokens=int(tokens_in),
            output_tokens=int(tokens_out),
            cache_read_tokens=int(cache_read),
            cache_write_tokens=int(cache_write),
            cost_usd=Decimal(str(cost)),
        )
        for (
            model,
            provider,
            role,
            calls,
            tokens_in,
            tokens_out,
            cache_read,
            cache_write,
            cost,
        ) in session.execute(query)
    ]
    rows.sort(key=lambda row: (-row.cost_usd, row.model, row.role))
    return UsageSummary(
        calls=sum(row.calls for row in rows),
        input_tokens=sum(row.input_tokens for row in rows),
        output_tokens=sum(row.output_tokens for row in rows),
        cache_read_tokens=sum(row.cache_read_tokens for row in rows),
        cache_write_tokens=sum(row.cache_write_tokens for row in rows),
        total_tokens=sum(row.input_tokens + row.output_tokens for row in rows),
        cost_usd=sum((row.cost_usd for row in rows), Decimal(0)),
        by_model_role=rows,
    )
