"""HTTP routes of the vector memory: search it and read its stats (read scope, as every GET)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from autopack.api.responses import json_response
from autopack.api.schemas import ERROR_RESPONSES, NO_NUL
from autopack.memory.provider import MemoryProvider
from autopack.memory.schemas import MemoryHitRead, MemorySearchResult, MemoryStatsRead
from autopack.memory.service import SHORT_NAMES, resolve_collection

router = APIRouter(prefix="/memory", tags=["memory"], responses=ERROR_RESPONSES)


def _provider(request: Request) -> MemoryProvider:
    provider: MemoryProvider = request.app.state.memory
    return provider


def _hit(point_id: str, score: float, payload: dict[str, Any]) -> MemoryHitRead:
    def _int(key: str) -> int | None:
        value = payload.get(key)
        return value if isinstance(value, int) else None

    return MemoryHitRead(
        id=point_id,
        score=score,
        project=payload.get("project"),
        path=payload.get("path"),
        start_line=_int("start_line"),
        end_line=_int("end_line"),
        text=str(payload.get("text", "")),
        payload={key: value for key, value in payload.items() if key != "text"},
    )


@router.get("/search", response_model=MemorySearchResult)
def search_memory(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=2000, pattern=NO_NUL)],
    project: Annotated[str | None, Query(max_length=128, pattern=NO_NUL)] = None,
    collection: Annotated[
        str, Query(description=f"One of: {', '.join(SHORT_NAMES)}", max_length=64)
    ] = "code",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Response:
    """Search a memory collection (lexical, fused with dense when an embedder is set). 422 for
    an unknown collection; 503 `memory_unavailable` when the Qdrant server cannot be reached."""
    name = resolve_collection(collection)
    hits = _provider(request).get().search(name, q, project=project, limit=limit)
    return json_response(
        MemorySearchResult(
            query=q,
            collection=name,
            hits=[_hit(hit.id, hit.score, hit.payload) for hit in hits],
        )
    )


@router.get("/stats", response_model=MemoryStatsRead)
def get_memory_stats(request: Request) -> Response:
    """Mode (embedded or server), whether the memory answers, points per collection."""
    stats = _provider(request).get().stats()
    return json_response(
        MemoryStatsRead(
            mode=stats.mode,
            status=stats.status,
            location=stats.location,
            embedder=stats.embedder,
            collections=stats.collections,
            error=stats.error,
        )
    )
