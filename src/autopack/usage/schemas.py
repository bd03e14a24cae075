"""Response bodies of the usage API."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from autopack.usage.models import LlmRole


class UsageRow(BaseModel):
    model: str
    provider: str
    role: LlmRole
    calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: Decimal


class UsageSummary(BaseModel):
    """Tokens and cost from the llm_calls ledger, in total and by model and role."""

    calls: int
    # Prompt tokens, all of them; the cache counts say how many of those the provider's prompt
    # cache served (cache_read) or stored (cache_write), billed at their own prices.
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    total_tokens: int
    cost_usd: Decimal
    by_model_role: list[UsageRow]


Bucket = Literal["hour", "day"]


class UsagePoint(BaseModel):
    """The calls of one model in one role within one bucket of time."""

    start: datetime = Field(description="Start of the bucket (UTC)")
    model: str
    role: LlmRole
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


class UsageTimeseries(BaseModel):
    """Tokens and cost from the llm_calls ledger per hour or day (UTC), model and role."""

    bucket: Bucket
    points: list[UsagePoint] = Field(description="Ordered by start, then model and role")
