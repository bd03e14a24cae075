"""The memory's HTTP shapes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class MemoryHitRead(BaseModel):
    id: str
    score: float = Field(description="Higher is better; with fusion, the reciprocal-rank score")
    project: str | None = None
    path: str | None = Field(default=None, description="Code chunks: the file, from the repo root")
    start_line: int | None = None
    end_line: int | None = None
    text: str = Field(description="The indexed text (a code chunk, a summary, a fix)")
    payload: dict[str, Any] = Field(
        description="Everything stored with the point (commit, content_hash, run_id, ...)"
    )


class MemorySearchResult(BaseModel):
    query: str
    collection: str
    hits: list[MemoryHitRead]


class MemoryStatsRead(BaseModel):
    mode: Literal["embedded", "server"] = Field(
        description="`embedded`: Qdrant local mode on disk; `server`: a Qdrant server"
    )
    status: Literal["ok", "unreachable"]
    location: str = Field(description="The memory directory, or the server's address")
    embedder: str | None = Field(description="The embedding model; null: lexical retrieval only")
    collections: dict[str, int] = Field(description="Points per collection")
    error: str | None = None


class MemoryHealth(BaseModel):
    """The memory's part of /health; it never makes the server unhealthy."""

    mode: Literal["embedded", "server"] | None
    status: Literal["ok", "unreachable", "not_configured"]
    collections: dict[str, int]
