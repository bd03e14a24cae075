"""What a run asks of the vector memory (ARCHITECTURE §5, steps 3 and 8): index the workspace at
the start and after each commit, retrieve code for a phase's context, look up a known fix for a
failure, and store phase summaries and fixes.

Memory helps a run; it never decides one. Every call here swallows the memory's failures (a
Qdrant server that is down, a memory directory another process holds): the run goes on with
what the plan names, and the first problem is kept in ``problem`` for the runner to report once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TypeVar

from autopack.errors import AutopackError
from autopack.executor.context import fence
from autopack.memory.provider import MemoryProvider
from autopack.memory.retrieval import select_context
from autopack.memory.service import MemoryService

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A failure's text added to the retrieval query of a retry (tracebacks name the files at fault).
FAILURE_QUERY_CHARS = 2_000
# What a known fix may bring into a prompt: the context caps it again to its share.
MAX_FIX_DIFF_CHARS = 6_000
MAX_KNOWN_FIXES = 2
SUMMARY_CHARS = 4_000


class RunMemory:
    """The memory as one run of one project sees it."""

    def __init__(self, provider: MemoryProvider | None, project: str, run_id: str) -> None:
        self.provider = provider
        self.project = project
        self.run_id = run_id
        self.problem: str | None = None
        self._reported = False

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def take_problem(self) -> str | None:
        """The first problem met, once: the runner records it as an event."""
        if self.problem is None or self._reported:
            return None
        self._reported = True
        return self.problem

    def _use(self, what: str, action: Callable[[MemoryService], T], default: T) -> T:
        if self.provider is None:
            return default
        try:
            return action(self.provider.get())
        except (AutopackError, OSError, ValueError, RuntimeError) as exc:
            message = exc.message if isinstance(exc, AutopackError) else str(exc)
            self._note(f"{what}: {message}")
        except Exception as exc:  # qdrant-client's transport errors have no common base
            self._note(f"{what}: {type(exc).__name__}: {exc}")
        return default

    def _note(self, problem: str) -> None:
        logger.warning("vector memory not used: %s", problem)
        if self.problem is None:
            self.problem = problem

    # --- indexing ---------------------------------------------------------------------------

    def index(self, workspace: Path) -> None:
        """Index the workspace's HEAD (incrementally: only what changed since the project's
        last index)."""

        def index(memory: MemoryService) -> None:
            report = memory.index_repository(self.project, workspace)
            logger.info(
                "memory indexed %s at %s: %d files, %d removed",
                self.project,
                report.commit[:12],
                len(report.files_indexed),
                len(report.files_deleted),
            )

        self._use("indexing the workspace", index, None)

    # --- context ----------------------------------------------------------------------------

    def snippets(
        self,
        query: str,
        read: Callable[[str], str | None],
        *,
        exclude: Collection[str] = (),
    ) -> list[tuple[str, str, float]]:
        """(path, text, score) of what the code index offers for ``query``, best first
        (``retrieval.select_context``: excerpts of the ranked files, then heads of the other
        matches), cut from the workspace as it is now; files in ``exclude`` (shown whole
        already) skipped. The context keeps what its budget holds."""

        def retrieve(memory: MemoryService) -> list[tuple[str, str, float]]:
            return [
                (item.path, item.text, item.score)
                for item in select_context(memory, self.project, query, read, exclude=exclude)
            ]

        return self._use("retrieving context", retrieve, [])

    def known_fixes(self, signature: str) -> list[str]:
        """How this failure was fixed before in this project, as text for the retry prompt."""

        def lookup(memory: MemoryService) -> list[str]:
            return [
                _describe_fix(hit.payload)
                for hit in memory.find_fixes(self.project, signature, limit=MAX_KNOWN_FIXES)
            ]

        return self._use("looking up known fixes", lookup, [])

    # --- remembering ------------------------------------------------------------------------

    def store_summary(self, phase_id: str, summary: str) -> None:
        self._use(
            "storing the phase summary",
            lambda memory: memory.add_summary(
                self.project, self.run_id, phase_id, summary[:SUMMARY_CHARS]
            ),
            None,
        )

    def store_rule(self, rule_id: int, text: str) -> None:
        """A learned rule's text, searchable beside the fixes (its stage lives in the database)."""
        self._use(
            "storing a learned rule",
            lambda memory: memory.add_rule(self.project, rule_id, text),
            None,
        )

    def store_fix(self, phase_id: str, signature: str, fix: str, diff: str) -> None:
        self._use(
            "storing a fix",
            lambda memory: memory.add_fix(
                self.project, self.run_id, phase_id, signature, fix, diff[:MAX_FIX_DIFF_CHARS]
            ),
            None,
        )


def _describe_fix(payload: dict[str, object]) -> str:
    fix = str(payload.get("fix") or "").strip()
    diff = str(payload.get("diff") or "").strip()
    where = f"phase {payload.get('phase_id')} of run {payload.get('run_id')}"
    text = f"Fixed before in {where}: {fix}" if fix else f"Fixed before in {where}."
    if diff:
        text += "\n\nThe change that made it pass:\n\n" + fence(diff, "diff")
    return text
