"""From chunks to files: what the executor's context selection (and its benchmark) asks of the
code index. Chunks are what is searched; files are what a phase reads and edits, so hits are
grouped by path, each file ranked by its best chunk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from autopack.memory.service import CODE, MemoryService

# Chunks fetched per query: enough for a file whose best chunk is not in the first few to still
# be seen, few enough that a search stays cheap.
CHUNK_LIMIT = 120
# Lines shown around a hit chunk when an excerpt is cut from the current file.
EXCERPT_MARGIN = 2


@dataclass(frozen=True)
class FileHit:
    """A file of the index, its best chunk's score, and the line ranges (1-based, inclusive,
    ascending, merged) of its chunks that matched."""

    path: str
    score: float
    ranges: tuple[tuple[int, int], ...]


def rank_files(
    memory: MemoryService, project: str, query: str, *, chunk_limit: int = CHUNK_LIMIT
) -> list[FileHit]:
    """The project's indexed files that match ``query``, best first."""
    hits = memory.search(CODE, query, project=project, limit=chunk_limit)
    best: dict[str, float] = {}
    ranges: dict[str, list[tuple[int, int]]] = {}
    for hit in hits:
        path = hit.payload.get("path")
        start, end = hit.payload.get("start_line"), hit.payload.get("end_line")
        if not isinstance(path, str) or not isinstance(start, int) or not isinstance(end, int):
            continue
        best[path] = max(best.get(path, hit.score), hit.score)
        ranges.setdefault(path, []).append((start, end))
    ranked = sorted(best, key=lambda path: (-best[path], path))
    return [FileHit(path, best[path], _merge(ranges[path])) for path in ranked]


def _merge(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def excerpt(hit: FileHit, read: Callable[[str], str | None]) -> str | None:
    """The hit's line ranges cut from the file as it is now (``read`` returns its text, None
    when it is gone), a few lines of margin around each, gaps marked. The index may describe
    another commit than the one being worked on: the ranges only say where to look."""
    text = read(hit.path)
    if text is None:
        return None
    lines = text.splitlines()
    if not lines:
        return None
    spans = _merge(
        [
            (max(1, start - EXCERPT_MARGIN), min(len(lines), end + EXCERPT_MARGIN))
            for start, end in hit.ranges
            if start <= len(lines)
        ]
    )
    if not spans:
        return None
    parts: list[str] = []
    previous_end = 0
    for start, end in spans:
        if start > previous_end + 1:
            parts.append(f"[… lines {previous_end + 1}-{start - 1} not shown …]")
        parts.extend(lines[start - 1 : end])
        previous_end = end
    if previous_end < len(lines):
        parts.append(f"[… lines {previous_end + 1}-{len(lines)} not shown …]")
    return "\n".join(parts)
