"""From chunks to files: what the executor's context selection (and its benchmark) asks of the
code index. Chunks are what is searched; files are what a phase reads and edits, so hits are
grouped by path, each file ranked by its best chunk.

``select_context`` is the policy ``bench/bench_memory_context.py`` measures as "excerpts + tail"
on this repository's history: the ranked files as excerpts, then the head of every other file
the query matches at all. The caller's token budget decides how far down the list it gets."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Literal

from autopack.memory.service import CODE, MemoryService

# Chunks fetched per query: enough for a file whose best chunk is not in the first few to still
# be seen, few enough that a search stays cheap.
CHUNK_LIMIT = 120
# Lines shown around a hit chunk when an excerpt is cut from the current file.
EXCERPT_MARGIN = 2
# The tail of ``select_context``: every chunk the query matches (a repository's worth), and the
# head shown of each file found only there.
TAIL_CHUNK_LIMIT = 10_000
HEAD_LINES = 60


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


@dataclass(frozen=True)
class Selected:
    """A file offered to a prompt: an ``excerpt`` of its matching chunks, or its ``head``."""

    path: str
    text: str
    score: float
    kind: Literal["excerpt", "head"]


def head(text: str, lines: int = HEAD_LINES) -> str:
    """The first ``lines`` lines of ``text``, the rest marked as not shown."""
    all_lines = text.splitlines()
    if len(all_lines) <= lines:
        return "\n".join(all_lines)
    return "\n".join([*all_lines[:lines], f"[… lines {lines + 1}-{len(all_lines)} not shown …]"])


def select_context(
    memory: MemoryService,
    project: str,
    query: str,
    read: Callable[[str], str | None],
    *,
    exclude: Collection[str] = (),
) -> list[Selected]:
    """What the code index offers a prompt for ``query``, best first: each ranked file as an
    excerpt cut from its current text (``read``), then the head of each file that only a search
    over every chunk matches. Files in ``exclude`` (shown whole already) and files that no longer
    exist are skipped."""
    chosen: list[Selected] = []
    seen = set(exclude)
    for hit in rank_files(memory, project, query):
        if hit.path in seen:
            continue
        seen.add(hit.path)
        text = excerpt(hit, read)
        if text is not None and text.strip():
            chosen.append(Selected(hit.path, text, hit.score, "excerpt"))
    for hit in rank_files(memory, project, query, chunk_limit=TAIL_CHUNK_LIMIT):
        if hit.path in seen:
            continue
        seen.add(hit.path)
        whole = read(hit.path)
        if whole is not None and whole.strip():
            chosen.append(Selected(hit.path, head(whole), hit.score, "head"))
    return chosen
