"""The Builder's prompt context, fitted to a token budget (ARCHITECTURE §5, step 3).

Priority: the phase's scope files, then its read-only context, retrieved snippets and the repo map.
The task, learned rules and the previous attempt's failure are small and decide whether a retry
can succeed, so room for them is taken first (each capped to a share of the budget, truncated
rather than dropped); files fill what is left in priority order. A file that does not fit whole is
shown as a marked head when a useful part fits, else left out, and every omission is named both in
the prompt and in the result.

The budget covers the user message only: the caller subtracts the system prompt and the reply's
``max_tokens`` first. Token counts come from an ``estimate`` callable owned by the LLM module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from autopack.errors import AutopackError
from autopack.executor.governance import path_matches
from autopack.executor.repomap import (
    ReadFn,
    RepoMap,
    TokenEstimator,
    build_repo_map,
    looks_binary,
    normalize_path,
)

if TYPE_CHECKING:
    from autopack.plans.models import PhaseSpec
    from autopack.runs.models import Phase

Snippet = tuple[str, str, float]
MessageList = list[tuple[Literal["system", "user"], str]]

# Shares of the budget the essential sections may take before they are truncated. Together they
# leave at least 20% for files, and in practice they are far below their caps.
TASK_SHARE = 0.25
RULES_SHARE = 0.15
FAILURE_SHARE = 0.30
KNOWN_FIX_SHARE = 0.10
# A head of a file shorter than this is more confusing than useful: the file is left out instead.
MIN_HEAD_TOKENS = 48
# The prompt names at most this many omitted items; the result lists them all.
MAX_OMISSIONS_LISTED = 20
# Default for ``describe_failure``: one test's output excerpt, head and tail kept.
MAX_EXCERPT_CHARS = 2_000

_LANGUAGE_TAGS = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".jsx": "jsx",
    ".mjs": "javascript",
    ".ts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".sh": "bash",
    ".md": "markdown",
    ".json": "json",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".html": "html",
    ".css": "css",
    ".sql": "sql",
}


class ContextBudgetError(AutopackError):
    """The budget cannot hold even the task, its rules and the previous failure, truncated."""

    code = "context_budget_too_small"


@dataclass(frozen=True)
class PhaseBrief:
    """What the context needs of a phase, whichever form it comes in (plan or database row)."""

    name: str
    description: str = ""
    task_category: str | None = None
    complexity: str = "medium"
    paths: tuple[str, ...] = ()
    read_only_context: tuple[str, ...] = ()
    acceptance_criteria: tuple[str, ...] = ()
    test_cmd: str | None = None
    phase_id: str | None = None

    @classmethod
    def from_spec(cls, spec: PhaseSpec) -> PhaseBrief:
        return cls(
            name=spec.name,
            description=spec.description,
            task_category=spec.task_category,
            complexity=str(spec.complexity),
            paths=tuple(spec.scope.paths),
            read_only_context=tuple(spec.scope.read_only_context),
            acceptance_criteria=tuple(spec.scope.acceptance_criteria),
            test_cmd=spec.scope.test_cmd,
            phase_id=spec.phase_id,
        )

    @classmethod
    def from_record(cls, phase: Phase) -> PhaseBrief:
        """From a ``phases`` row, whose scope is the plan's scope stored as JSON."""
        scope: dict[str, Any] = phase.scope or {}
        return cls(
            name=phase.name,
            description=phase.description or "",
            task_category=phase.task_category,
            complexity=str(phase.complexity),
            paths=tuple(str(path) for path in scope.get("paths") or ()),
            read_only_context=tuple(str(path) for path in scope.get("read_only_context") or ()),
            acceptance_criteria=tuple(str(item) for item in scope.get("acceptance_criteria") or ()),
            test_cmd=scope.get("test_cmd"),
            phase_id=phase.phase_id,
        )


@dataclass(frozen=True)
class ContextSection:
    key: str
    title: str
    content: str

    def render(self) -> str:
        return f"## {self.title}\n\n{self.content}"


@dataclass(frozen=True)
class Omission:
    """Something left out of the prompt. ``kind``: editable, read_only, retrieved or repo_map."""

    path: str
    kind: str
    reason: str


@dataclass(frozen=True)
class BuilderContext:
    sections: tuple[ContextSection, ...]
    included_files: tuple[str, ...]
    truncated_files: tuple[str, ...]
    omitted: tuple[Omission, ...]
    estimated_tokens: int
    budget: int

    @property
    def omitted_files(self) -> tuple[str, ...]:
        """The phase's own files (scope and read-only context) left out; see ``omitted`` for
        retrieved snippets and the map."""
        return tuple(item.path for item in self.omitted if item.kind in ("editable", "read_only"))

    def section(self, key: str) -> ContextSection | None:
        return next((section for section in self.sections if section.key == key), None)

    def user_message(self) -> str:
        return _join_sections(self.sections)

    def render_messages(self, system_prompt: str) -> MessageList:
        """One system message and one user message holding every section."""
        return [("system", system_prompt), ("user", self.user_message())]


def _join_sections(sections: Sequence[ContextSection]) -> str:
    return "\n\n".join(section.render() for section in sections)


# --- scope paths -------------------------------------------------------------------------------


def scope_matches(entry: str, path: str) -> bool:
    """Whether a workspace file is covered by a scope entry (a file, a directory or a glob).

    Governance's matcher decides, so the Builder is shown exactly the files it may write.
    """
    return path_matches(normalize_path(entry), normalize_path(path))


def expand_scope(entries: Sequence[str], files: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Each entry with the workspace files it covers, sorted; an entry may cover none (yet)."""
    normalized = sorted({normalize_path(path) for path in files if path.strip()})
    return [
        (entry, [path for path in normalized if scope_matches(entry, path)]) for entry in entries
    ]


# --- text helpers ------------------------------------------------------------------------------


def fence(text: str, tag: str = "") -> str:
    """A fenced block whose fence is longer than any backtick run inside (CommonMark's rule), so
    file contents can never close it early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    marker = "`" * max(3, longest + 1)
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"{marker}{tag}\n{body}{marker}"


def _language_tag(path: str) -> str:
    return _LANGUAGE_TAGS.get(PurePosixPath(path).suffix.lower(), "")


def _largest_fitting(count: int, fits: Callable[[int], bool]) -> int:
    """Largest k in [0, count] with fits(k), assuming fits is monotone and fits(0) is not
    consulted (0 means nothing fitted)."""
    low, high = 0, count
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def head_tail(text: str, max_tokens: int, estimate: TokenEstimator) -> str:
    """``text`` cut to ``max_tokens`` keeping its head (a third) and tail (the rest), where the
    reason for a failure and the final assertion usually are; "" when not even the marker fits."""
    if estimate(text) <= max_tokens:
        return text
    lines = text.splitlines()

    def by_lines(kept: int) -> str:
        head = max(1, kept // 3)
        tail = kept - head
        middle = f"[… {len(lines) - kept} lines omitted …]"
        return "\n".join([*lines[:head], middle, *(lines[len(lines) - tail :] if tail else [])])

    kept = _largest_fitting(len(lines) - 1, lambda k: estimate(by_lines(k)) <= max_tokens)
    if kept >= 2:
        return by_lines(kept)

    # Few, very long lines (minified output, a one-line traceback): cut by characters instead.
    def by_chars(kept_chars: int) -> str:
        head = kept_chars // 3
        tail = kept_chars - head
        middle = f"\n[… {len(text) - kept_chars} characters omitted …]\n"
        return text[:head] + middle + (text[len(text) - tail :] if tail else "")

    chars = _largest_fitting(len(text) - 1, lambda k: estimate(by_chars(k)) <= max_tokens)
    if chars == 0:
        marker = by_chars(0)
        return marker if estimate(marker) <= max_tokens else ""
    return by_chars(chars)


def _clip_chars(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = limit // 3
    tail = limit - head
    return f"{text[:head]}\n[… {len(text) - limit} characters omitted …]\n{text[-tail:]}"


def describe_failure(
    reason: str,
    *,
    failing_tests: Sequence[tuple[str, str]] = (),
    apply_errors: Sequence[str] = (),
    governance_violations: Sequence[str] = (),
    auditor_issues: Sequence[str] = (),
    max_excerpt_chars: int = MAX_EXCERPT_CHARS,
) -> str:
    """The previous attempt's failure as the text ``build_context`` feeds back.

    ``failing_tests`` holds (test id, output excerpt) for tests that fail now but passed in the
    baseline; each excerpt is cut to ``max_excerpt_chars``, keeping head and tail.
    """
    parts = [f"Reason: {reason.strip()}"]
    if failing_tests:
        lines = ["New failing tests:"]
        for test_id, excerpt in failing_tests:
            lines.append(f"- {test_id}")
            clipped = _clip_chars(excerpt.strip("\n"), max_excerpt_chars)
            # Indented, not fenced: the whole failure is fenced in the prompt.
            lines.extend(f"    {line}" for line in clipped.splitlines())
        parts.append("\n".join(lines))
    for title, items in (
        ("Edits that could not be applied:", apply_errors),
        ("Governance violations:", governance_violations),
        ("Auditor issues:", auditor_issues),
    ):
        if items:
            parts.append("\n".join([title, *(f"- {item}" for item in items)]))
    return "\n\n".join(parts)


# --- assembly ----------------------------------------------------------------------------------


@dataclass
class _Block:
    """One file, snippet or the map inside a section, with what it means for the result.
    ``rank`` is its place in the priority order: blocks are shown, and dropped, by it."""

    rank: int
    section: str
    path: str
    kind: str
    text: str
    truncated: bool = False


@dataclass
class _Assembly:
    essentials_head: list[ContextSection]
    essentials_tail: list[ContextSection]
    # Scope entries that match no file yet: named first in the editable section.
    editable_intro: str = ""
    blocks: list[_Block] = field(default_factory=list)
    omitted: list[Omission] = field(default_factory=list)

    def sections(self) -> list[ContextSection]:
        sections = list(self.essentials_head)
        for key, title in _FILE_SECTIONS:
            ranked = sorted(self.blocks, key=lambda block: block.rank)
            members = [block.text for block in ranked if block.section == key]
            if key == "editable" and self.editable_intro:
                members.insert(0, self.editable_intro)
            if members:
                sections.append(ContextSection(key, title, "\n\n".join(members)))
        note = _omission_note(self.omitted)
        if note:
            sections.append(ContextSection("omitted", OMITTED_TITLE, note))
        sections.extend(self.essentials_tail)
        return sections

    def text(self) -> str:
        return _join_sections(self.sections())


OMITTED_TITLE = "Left out of this context"
_FILE_SECTIONS = (
    ("editable", "Files you may edit"),
    ("read_only", "Read-only context"),
    ("retrieved", "Retrieved context"),
    ("repo_map", "Repository map"),
)


def _omission_note(omitted: Sequence[Omission], total: int | None = None) -> str:
    """Lines naming the first omitted items; ``total`` (default: all given) sets the count of
    the closing "and N more" line, so a caller can price the note without listing everything."""
    total = len(omitted) if total is None else total
    if total == 0:
        return ""
    lines = [
        f"- {item.path} ({item.kind.replace('_', '-')}: {item.reason})"
        for item in omitted[:MAX_OMISSIONS_LISTED]
    ]
    if total > MAX_OMISSIONS_LISTED:
        lines.append(f"- … and {total - MAX_OMISSIONS_LISTED} more")
    return "\n".join(lines)


def _file_block(path: str, text: str, *, label: str = "", truncated_note: str = "") -> str:
    # The path alone in backticks, as an edit block's path line may be written: a model that
    # imitates the context then writes a valid path line (a "### path" heading is refused).
    heading = f"`{path}`{f' ({label})' if label else ''}"
    parts = [heading, fence(text, _language_tag(path))]
    if truncated_note:
        parts.append(truncated_note)
    return "\n".join(parts)


def _truncated_block(
    path: str, text: str, max_tokens: int, estimate: TokenEstimator, *, label: str = ""
) -> str | None:
    """The longest head of ``text`` (whole lines) whose block fits, or None if too little does."""
    if max_tokens < MIN_HEAD_TOKENS:
        return None
    lines = text.splitlines(keepends=True)

    def block(kept: int) -> str:
        note = (
            f"[truncated: lines 1-{kept} of {len(lines)} shown. Edit only text shown here, with"
            " SEARCH/REPLACE blocks; never rewrite this file whole.]"
        )
        return _file_block(path, "".join(lines[:kept]), label=label, truncated_note=note)

    kept = _largest_fitting(len(lines) - 1, lambda k: estimate(block(k)) <= max_tokens)
    return block(kept) if kept else None


def task_section(phase: PhaseBrief, budget: int, estimate: TokenEstimator) -> ContextSection:
    """The phase's facts and description; a long description is cut to a share of ``budget``."""
    facts = [f"Phase: {phase.name}" + (f" ({phase.phase_id})" if phase.phase_id else "")]
    facts.append(f"Category: {phase.task_category or 'unspecified'}")
    facts.append(f"Complexity: {phase.complexity}")
    if phase.paths:
        facts.append("Paths you may write: " + ", ".join(f"`{path}`" for path in phase.paths))
    else:
        facts.append("Paths you may write: any file of the repository (the phase sets no scope)")
    if phase.test_cmd:
        facts.append(f"Test command: `{phase.test_cmd}`")
    head = "\n".join(facts)
    description = phase.description.strip()
    if description:
        room = int(budget * TASK_SHARE) - estimate(head) - 2
        description = head_tail(description, max(room, 0), estimate) or description[:200]
        return ContextSection("task", "Task", f"{head}\n\n{description}")
    return ContextSection("task", "Task", head)


def acceptance_section(phase: PhaseBrief) -> ContextSection | None:
    if not phase.acceptance_criteria:
        return None
    criteria = "\n".join(f"- {item}" for item in phase.acceptance_criteria)
    return ContextSection("acceptance", "Acceptance criteria", criteria)


def _rules_section(
    rules: Sequence[str], budget: int, estimate: TokenEstimator
) -> ContextSection | None:
    texts = [" ".join(rule.split()) for rule in rules if rule.strip()]
    if not texts:
        return None
    cap = max(int(budget * RULES_SHARE), 1)
    lines: list[str] = []
    for rule in texts:
        if estimate("\n".join([*lines, f"- {rule}"])) > cap:
            break
        lines.append(f"- {rule}")
    if not lines:
        # The first rule always goes in, cut to the cap: rules are never silently lost.
        first = head_tail(texts[0], max(cap - 2, 1), estimate) or texts[0][:80]
        lines.append("- " + " ".join(first.split()))
    left = len(texts) - len(lines)
    if left:
        lines.append(f"- ({left} more rule{'s' if left != 1 else ''} left out for room)")
    intro = "Follow these rules, learned from earlier runs of this project:"
    return ContextSection("rules", "Learned rules", intro + "\n\n" + "\n".join(lines))


def _failure_section(
    failure: str | None, budget: int, estimate: TokenEstimator
) -> ContextSection | None:
    if failure is None or not failure.strip():
        return None
    intro = "The previous attempt at this phase was rejected. Fix the cause below; keep the goal."
    cap = max(int(budget * FAILURE_SHARE) - estimate(intro) - 4, 1)
    text = head_tail(failure.strip("\n"), cap, estimate) or failure.strip()[:200]
    return ContextSection("failure", "Previous attempt failed", f"{intro}\n\n{fence(text)}")


def _known_fixes_section(
    fixes: Sequence[str], budget: int, estimate: TokenEstimator
) -> ContextSection | None:
    texts = [fix.strip() for fix in fixes if fix.strip()]
    if not texts:
        return None
    intro = (
        "Memory holds how this same failure was fixed before in this project. Use it if it "
        "applies here; it may not."
    )
    cap = max(int(budget * KNOWN_FIX_SHARE) - estimate(intro) - 4, 1)
    shown: list[str] = []
    for text in texts:
        room = cap - estimate("\n\n".join(shown)) - 2
        if room <= MIN_HEAD_TOKENS:
            break
        shown.append(head_tail(text, room, estimate) or text[:200])
    if not shown:
        shown.append(head_tail(texts[0], cap, estimate) or texts[0][:200])
    return ContextSection("known_fix", "Known fix", intro + "\n\n" + "\n\n".join(shown))


REPLY_SECTION = ContextSection(
    "reply",
    "Your reply",
    "Reply with edits in the format of the system prompt, only to paths you may write.",
)


def build_context(
    phase: PhaseBrief,
    *,
    files: Sequence[str],
    read: ReadFn,
    budget: int,
    estimate: TokenEstimator,
    rules: Sequence[str] = (),
    previous_failure: str | None = None,
    known_fixes: Sequence[str] = (),
    snippets: Sequence[Snippet] = (),
    repo_map: RepoMap | None = None,
) -> BuilderContext:
    """The Builder's user message for ``phase``, with ``estimated_tokens <= budget``.

    ``files`` are the workspace's files (relative paths, ignored files excluded), ``read`` returns
    one file's text or None. ``snippets`` are (path, text, score) from memory, best used first;
    ``known_fixes`` are how the previous attempt's failure was fixed in earlier runs.
    ``repo_map`` defaults to a map built from ``files``; pass a cached one to save the work.
    Raises ``ContextBudgetError`` when the budget cannot hold the essential sections.
    """
    if budget <= 0:
        raise ContextBudgetError(f"context budget must be positive, got {budget}")
    head = [task_section(phase, budget, estimate)]
    if (criteria := acceptance_section(phase)) is not None:
        head.append(criteria)
    tail = [
        section
        for section in (
            _rules_section(rules, budget, estimate),
            _failure_section(previous_failure, budget, estimate),
            _known_fixes_section(known_fixes, budget, estimate),
            REPLY_SECTION,
        )
        if section is not None
    ]
    assembly = _Assembly(essentials_head=head, essentials_tail=tail)
    essentials = estimate(assembly.text())
    if essentials > budget:
        raise ContextBudgetError(
            f"context budget of {budget} tokens cannot hold the task, rules and previous failure"
            f" ({essentials} tokens even truncated)",
            details={"budget": budget, "essential_tokens": essentials},
        )

    # Scope files are read again by the map: one read per file is enough.
    texts: dict[str, str | None] = {}

    def read_once(path: str) -> str | None:
        if path not in texts:
            texts[path] = read(path)
        return texts[path]

    candidates = _candidates(phase, files, read_once, snippets, assembly)
    if repo_map is None:
        repo_map = build_repo_map(files, read_once)
    _fill(assembly, candidates, repo_map, phase, budget, estimate)

    # Block costs were summed one by one; tokenizers are not additive, so the joined text is
    # measured and the lowest-priority blocks go until it fits.
    text = assembly.text()
    while estimate(text) > budget and assembly.blocks:
        dropped = max(assembly.blocks, key=lambda block: block.rank)
        assembly.blocks.remove(dropped)
        assembly.omitted.append(Omission(dropped.path, dropped.kind, "no room"))
        text = assembly.text()
    shown = sorted(assembly.blocks, key=lambda block: block.rank)
    included = [block.path for block in shown if block.kind in ("editable", "read_only")]
    truncated = [block.path for block in shown if block.truncated]
    return BuilderContext(
        sections=tuple(assembly.sections()),
        included_files=tuple(included),
        truncated_files=tuple(truncated),
        omitted=tuple(assembly.omitted),
        estimated_tokens=estimate(text),
        budget=budget,
    )


@dataclass
class _Candidate:
    path: str
    kind: str
    text: str
    label: str = ""


def _candidates(
    phase: PhaseBrief,
    files: Sequence[str],
    read: ReadFn,
    snippets: Sequence[Snippet],
    assembly: _Assembly,
) -> list[_Candidate]:
    """Every file and snippet worth showing, in priority order, deduplicated; unreadable ones
    are recorded as omissions and new (not yet existing) scope files as a line of the intro."""
    seen: set[str] = set()
    candidates: list[_Candidate] = []
    new_entries: list[str] = []

    def add(path: str, kind: str) -> None:
        if path in seen:
            return
        seen.add(path)
        text = read(path)
        if text is None or looks_binary(text):
            assembly.omitted.append(Omission(path, kind, "binary, unreadable or too large"))
            return
        candidates.append(_Candidate(path, kind, text))

    for entry, matched in expand_scope(phase.paths, files):
        if not matched:
            new_entries.append(entry)
        for path in matched:
            add(path, "editable")
    if new_entries:
        listed = ", ".join(f"`{entry}`" for entry in new_entries)
        assembly.editable_intro = f"Not in the repository yet (create as needed): {listed}"
    for entry, matched in expand_scope(phase.read_only_context, files):
        if not matched:
            assembly.omitted.append(Omission(normalize_path(entry), "read_only", "not found"))
        for path in matched:
            add(path, "read_only")
    for path, text, score in sorted(snippets, key=lambda item: -item[2]):
        clean = normalize_path(path)
        if clean in seen or not text.strip():
            # Already shown whole above: a retrieved excerpt of it adds nothing.
            continue
        candidates.append(_Candidate(clean, "retrieved", text, label=f"excerpt, score {score:.2f}"))
    return candidates


_MAP_LEFT_OUT = Omission("repository map", "repo_map", "no room")
_GROUPS = ("editable", "read_only", "retrieved")


def _fill(
    assembly: _Assembly,
    candidates: Sequence[_Candidate],
    repo_map: RepoMap,
    phase: PhaseBrief,
    budget: int,
    estimate: TokenEstimator,
) -> None:
    """Fill the room left by the essentials, group by group in priority order (scope files,
    read-only context, retrieved snippets, then the repo map).

    Within a group, first every file that fits whole, in order; then, for those that did not, a
    marked head while a useful part fits, else an omission. So one large file in a directory
    scope is cut rather than crowding out its small siblings, but never pushes a lower group
    ahead of it. Room for the omission note is kept as if everything undecided were left out.

    Costs are added up block by block (measuring the whole text each time would be quadratic);
    ``build_context`` measures the joined result once at the end.
    """
    used = estimate(assembly.text())
    started = {"editable"} if assembly.editable_intro else set()
    titles = dict(_FILE_SECTIONS)
    separator = estimate("\n\n")
    # Everything not yet shown or left out, by rank; the last rank is the map's.
    undecided: dict[int, Omission] = {
        index: Omission(candidate.path, candidate.kind, "no room")
        for index, candidate in enumerate(candidates)
    }
    map_rank = len(candidates)
    undecided[map_rank] = _MAP_LEFT_OUT

    def room_for(section: str, key: int) -> int:
        del undecided[key]
        # Only the listed head of the note is built: the rest is a count.
        listed = list(islice(chain(assembly.omitted, undecided.values()), MAX_OMISSIONS_LISTED))
        note = _omission_note(listed, len(assembly.omitted) + len(undecided))
        reserve = estimate(f"## {OMITTED_TITLE}\n\n{note}\n\n") if note else 0
        header = 0 if section in started else estimate(f"## {titles[section]}\n\n\n\n")
        # What one more block may cost, its separator from the next section paid for.
        return budget - used - reserve - header - separator

    def add(block: _Block) -> None:
        nonlocal used
        if block.section not in started:
            used += estimate(f"## {titles[block.section]}\n\n\n\n")
            started.add(block.section)
        assembly.blocks.append(block)
        used += estimate(block.text) + separator

    for kind in _GROUPS:
        deferred: list[int] = []
        for index, candidate in enumerate(candidates):
            if candidate.kind != kind:
                continue
            whole = _file_block(candidate.path, candidate.text, label=candidate.label)
            if estimate(whole) <= room_for(kind, index):
                add(_Block(index, kind, candidate.path, kind, whole))
            else:
                # Undecided again: its head is tried once the group's whole files are in.
                undecided[index] = Omission(candidate.path, candidate.kind, "no room")
                deferred.append(index)
        for index in deferred:
            candidate = candidates[index]
            head = _truncated_block(
                candidate.path,
                candidate.text,
                room_for(kind, index),
                estimate,
                label=candidate.label,
            )
            if head is None:
                assembly.omitted.append(Omission(candidate.path, candidate.kind, "no room"))
                continue
            add(_Block(index, kind, candidate.path, kind, head, truncated=True))

    room = room_for("repo_map", map_rank)
    if not repo_map.files:
        return
    rendered = repo_map.render(room, scope_paths=phase.paths, estimate=estimate)
    if not rendered or rendered.startswith("… "):
        # A map that only says how many files it does not show is not worth its tokens.
        assembly.omitted.append(_MAP_LEFT_OUT)
        return
    add(_Block(map_rank, "repo_map", "repository map", "repo_map", rendered))
