"""Response bodies of the events API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class EventRead(BaseModel):
    id: int = Field(description="Monotonically increasing; resume a stream after it")
    run_id: str
    phase_id: str | None
    type: str
    payload: dict[str, Any]
    created_at: datetime


class EventPage(BaseModel):
    items: list[EventRead]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null when this page was the last so far"
    )
