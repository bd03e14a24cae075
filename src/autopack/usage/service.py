"""The llm_calls ledger: recording calls and summarising usage. Reports read only the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column, select
from sqlalchemy.orm import Session

from autopack.errors import InvalidInputError
from autopack.projects.models import Project
from autopack.runs.models import Run
from autopack.usage.models import LlmCall
from autopack.usage.schemas import Bucket, UsagePoint, UsageRow, UsageSummary, UsageTimeseries


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


# How each dialect truncates a timestamp to the start of its bucket, in UTC. The units are SQL
# literals, not parameters: PostgreSQL must see the same expression in SELECT and GROUP BY.
_SQLITE_FORMATS: dict[str, str] = {"hour": "%Y-%m-%d %H:00:00", "day": "%Y-%m-%d 00:00:00"}
_MICRO_USD = Decimal("0.000001")


def _bucket_start(dialect: str, bucket: Bucket) -> ColumnElement[Any]:
    if dialect == "postgresql":
        # In UTC whatever the session's time zone: timezone('UTC', timestamptz) is the UTC wall
        # clock time, which date_trunc then truncates.
        utc = func.timezone(literal_column("'UTC'"), LlmCall.created_at)
        return func.date_trunc(literal_column(f"'{bucket}'"), utc)
    # SQLite holds the timestamps as UTC text (db.base.UTCDateTime).
    return func.strftime(literal_column(f"'{_SQLITE_FORMATS[bucket]}'"), LlmCall.created_at)


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_bound(name: str, value: datetime) -> datetime:
    """A bound given in a query: naive means UTC; one that cannot be put in UTC is refused."""
    try:
        return _as_utc(value)
    except OverflowError:
        raise InvalidInputError(
            f"{name} is out of range", details=[{"loc": f"query.{name}", "message": "out of range"}]
        ) from None


def usage_timeseries(
    session: Session,
    bucket: Bucket,
    *,
    since: datetime | None = None,
    project: str | None = None,
) -> UsageTimeseries:
    """Calls, tokens and cost per bucket (hour or day, UTC), model and role, oldest first;
    aggregated by the database."""
    start = _bucket_start(session.get_bind().dialect.name, bucket).label("start")
    query = select(
        start,
        LlmCall.model,
        LlmCall.role,
        func.count(LlmCall.id),
        func.coalesce(func.sum(LlmCall.input_tokens), 0),
        func.coalesce(func.sum(LlmCall.output_tokens), 0),
        func.coalesce(func.sum(LlmCall.cost_usd), 0),
    ).group_by(start, LlmCall.model, LlmCall.role)
    if project is not None:
        query = (
            query.join(Run, LlmCall.run_pk == Run.id)
            .join(Project, Run.project_pk == Project.id)
            .where(Project.name == project)
        )
    if since is not None:
        query = query.where(LlmCall.created_at >= _utc_bound("since", since))
    query = query.order_by(start, LlmCall.model, LlmCall.role)
    points = [
        UsagePoint(
            start=_as_utc(when),
            model=model,
            role=role,
            calls=int(calls),
            input_tokens=int(tokens_in),
            output_tokens=int(tokens_out),
            cost_usd=Decimal(str(cost)).quantize(_MICRO_USD),
        )
        for when, model, role, calls, tokens_in, tokens_out, cost in session.execute(query)
    ]
    return UsageTimeseries(bucket=bucket, points=points)
