"""Files cut into chunks for the memory index: Python at top-level functions and classes,
other text at blank lines, packed into windows of about ``WINDOW_LINES`` lines."""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass

WINDOW_LINES = 60
# A top-level function or class longer than this is cut into windows of WINDOW_LINES lines.
MAX_DEFINITION_LINES = 120


@dataclass(frozen=True)
class Chunk:
    """Lines ``start_line``..``end_line`` (1-based, inclusive) of ``path``."""

    path: str
    start_line: int
    end_line: int
    text: str

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def chunk_file(path: str, text: str) -> list[Chunk]:
    """The chunks of one file. Python that does not parse is chunked as text."""
    if path.endswith((".py", ".pyi")):
        try:
            return _python_chunks(path, text)
        except (SyntaxError, ValueError):
            pass
    return _text_chunks(path, text.splitlines())


def _python_chunks(path: str, text: str) -> list[Chunk]:
    lines = text.splitlines()
    module = ast.parse(text)
    chunks: list[Chunk] = []
    covered: set[int] = set()
    for node in module.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        end = node.end_lineno or node.lineno
        covered.update(range(start, end + 1))
        if end - start + 1 > MAX_DEFINITION_LINES:
            chunks += _windows(path, lines, start, end)
        else:
            chunks.append(_chunk(path, lines, start, end))
    # The rest of the module (imports, constants, statements) as one chunk, or windows of it.
    rest = [n for n in range(1, len(lines) + 1) if n not in covered and lines[n - 1].strip()]
    if rest:
        text_of_rest = "\n".join(lines[n - 1] for n in rest)
        if len(rest) <= MAX_DEFINITION_LINES:
            chunks.append(Chunk(path, rest[0], rest[-1], text_of_rest))
        else:
            for i in range(0, len(rest), WINDOW_LINES):
                part = rest[i : i + WINDOW_LINES]
                chunks.append(Chunk(path, part[0], part[-1], "\n".join(lines[n - 1] for n in part)))
    return sorted(chunks, key=lambda chunk: chunk.start_line)


def _text_chunks(path: str, lines: list[str]) -> list[Chunk]:
    """Blank-line separated blocks, packed into chunks of at most WINDOW_LINES lines; a longer
    block is cut into windows."""
    blocks: list[tuple[int, int]] = []
    start: int | None = None
    for number, line in enumerate(lines, start=1):
        if line.strip():
            start = number if start is None else start
        elif start is not None:
            blocks.append((start, number - 1))
            start = None
    if start is not None:
        blocks.append((start, len(lines)))
    chunks: list[Chunk] = []
    current: tuple[int, int] | None = None
    for first, last in blocks:
        if last - first + 1 > WINDOW_LINES:
            if current:
                chunks.append(_chunk(path, lines, *current))
                current = None
            chunks += _windows(path, lines, first, last)
        elif current is None:
            current = (first, last)
        elif last - current[0] + 1 <= WINDOW_LINES:
            current = (current[0], last)
        else:
            chunks.append(_chunk(path, lines, *current))
            current = (first, last)
    if current:
        chunks.append(_chunk(path, lines, *current))
    return chunks


def _windows(path: str, lines: list[str], start: int, end: int) -> list[Chunk]:
    return [
        _chunk(path, lines, first, min(first + WINDOW_LINES - 1, end))
        for first in range(start, end + 1, WINDOW_LINES)
    ]


def _chunk(path: str, lines: list[str], start: int, end: int) -> Chunk:
    return Chunk(path, start, end, "\n".join(lines[start - 1 : end]))
