"""A Builder reply → edits → new file contents, strictly (the format: ``docs/edit-format.md``).

Two steps, both pure (no file system): :func:`parse_reply` turns the reply into :class:`Edit`
values and the commentary around them; :func:`apply_edits` applies the edits, in order, to the
contents a ``read`` callable returns, and gives the new content of every changed file (``None``:
deleted). Nothing here guesses: a search text that is missing or matches twice, a diff hunk that
does not fit, a block without a path, is an error whose message tells the model exactly what to fix,
because that message is what the next attempt is given.

Files are handled as lines whose line endings are kept apart from their text: a SEARCH matches
line texts, so LF and CRLF files are edited alike, unchanged lines keep their endings and new lines
take the file's own (most common) ending. Whether paths are safe to write is not decided here but
by ``autopack.executor.governance``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

from autopack.errors import AutopackError

SEARCH_START = "<<<<<<< SEARCH"
DIVIDER = "======="
REPLACE_END = ">>>>>>> REPLACE"
FILE_START = "<<<<<<< FILE"
FILE_END = ">>>>>>> FILE"
DELETE_START = "<<<<<<< DELETE"
DELETE_END = ">>>>>>> DELETE"

_MARKERS = frozenset(
    {SEARCH_START, DIVIDER, REPLACE_END, FILE_START, FILE_END, DELETE_START, DELETE_END}
)
_STARTS = {SEARCH_START: "SEARCH", FILE_START: "FILE", DELETE_START: "DELETE"}
_ENDS = {REPLACE_END: "SEARCH", FILE_END: "FILE", DELETE_END: "DELETE"}
_END_OF = {"SEARCH": REPLACE_END, "FILE": FILE_END, "DELETE": DELETE_END}

# Something that was meant to be a marker but is not one exactly (wrong count of angle brackets,
# lower case, a trailing colon): refused, because taking it as text would hide the model's mistake.
_NEAR_MARKER = re.compile(r"^\s*(<{5,9}|>{5,9})\s*(SEARCH|REPLACE|FILE|DELETE)\b", re.IGNORECASE)
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w.+#-]*)\s*$")
_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(?: .*)?$")
# Hunks without line numbers (`@@ @@`, or aider's `@@ ... @@`): placed by a unique match only.
_BARE_HUNK_HEADER = re.compile(r"^@@(?: \.\.\.)? @@\s*$")
_GIT_EXTENDED_HEADER = re.compile(
    r"^(index [0-9a-fA-F]+\.\.[0-9a-fA-F]+( \d+)?|new file mode \d+|deleted file mode \d+"
    r"|old mode \d+|new mode \d+|similarity index \d+%|dissimilarity index \d+%)\s*$"
)
_GIT_UNSUPPORTED = re.compile(
    r"^(rename from |rename to |copy from |copy to |Binary files |GIT bin)"
)
# Characters no path of ours holds but markdown decoration does (`**x.py**`, `"x.py"`, `# x.py`).
_NOT_IN_PATH = re.compile(r"[\s*?\"<>|`]")
DEV_NULL = "/dev/null"

#: Most lines of the file quoted back when a search text is not found.
CLOSEST_LINES_SHOWN = 30
_QUOTED_LINE_CHARS = 200


class EditError(AutopackError):
    code = "edit_error"


class EditParseError(EditError):
    """The reply is not well formed; ``line`` is the 1-based reply line, ``expected`` what was."""

    code = "edit_parse_error"

    def __init__(self, line: int | None, problem: str, expected: str) -> None:
        where = f"Reply line {line}: " if line is not None else ""
        super().__init__(
            f"{where}{problem}; expected {expected}.",
            details={"line": line, "problem": problem, "expected": expected},
        )
        self.line = line
        self.expected = expected


class NoEditsError(EditParseError):
    code = "no_edits"

    def __init__(self) -> None:
        super().__init__(
            None,
            "the reply contains no edits",
            "at least one SEARCH/REPLACE block, FILE block, DELETE block or unified diff",
        )


class EditApplyError(EditError):
    """An edit does not apply. ``reason`` is stable: ``search_not_found``, ``search_ambiguous``,
    ``file_exists``, ``file_missing``, ``hunk_not_found``, ``hunk_ambiguous``, ``hunk_position``,
    ``delete_incomplete``."""

    code = "edit_apply_error"

    def __init__(self, edit: Edit, index: int, reason: str, message: str) -> None:
        super().__init__(
            f"Edit {index} ({edit.describe()}) for {edit.path}: {message}",
            details={"edit": index, "path": edit.path, "reply_line": edit.line, "reason": reason},
        )
        self.path = edit.path
        self.edit_index = index
        self.reason = reason


@dataclass(frozen=True)
class SearchReplace:
    """Replace the one place ``search`` occurs by ``replace``; an empty ``search`` creates the file.

    Both are whole lines, each ending with ``\\n`` (as parsed), or empty."""

    path: str
    search: str
    replace: str
    line: int = 0

    def describe(self) -> str:
        return f"SEARCH block at reply line {self.line}"


@dataclass(frozen=True)
class WholeFile:
    """Create ``path`` or overwrite it with ``content``."""

    path: str
    content: str
    line: int = 0

    def describe(self) -> str:
        return f"FILE block at reply line {self.line}"


@dataclass(frozen=True)
class DeleteFile:
    path: str
    line: int = 0

    def describe(self) -> str:
        return f"DELETE block at reply line {self.line}"


@dataclass(frozen=True)
class Hunk:
    """One ``@@`` hunk; ``old_start`` is None for a hunk without line numbers."""

    header: str
    old_start: int | None
    old_lines: tuple[str, ...]
    new_lines: tuple[str, ...]
    old_no_eol: bool = False
    new_no_eol: bool = False
    line: int = 0


@dataclass(frozen=True)
class FilePatch:
    """The unified diff of one file (``create``: from /dev/null, ``delete``: to /dev/null)."""

    path: str
    hunks: tuple[Hunk, ...]
    create: bool = False
    delete: bool = False
    line: int = 0

    def describe(self) -> str:
        return f"diff at reply line {self.line}"


Edit = SearchReplace | WholeFile | DeleteFile | FilePatch


@dataclass(frozen=True)
class ParsedReply:
    edits: list[Edit]
    commentary: str

    @property
    def paths(self) -> list[str]:
        """The paths the edits touch, each once, in order of first mention."""
        return list(dict.fromkeys(edit.path for edit in self.edits))


# --- parsing --------------------------------------------------------------------------------


def parse_reply(text: str) -> ParsedReply:
    """Parse a Builder reply. Raises :class:`EditParseError` (:class:`NoEditsError` when the reply
    holds no edit at all)."""
    # Replies are read as LF text: a CR before LF is transport, not content (file line endings are
    # decided by the file being edited, see _Text).
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    return _ReplyParser(lines).parse()


def _marker(line: str) -> str | None:
    stripped = line.rstrip()
    return stripped if stripped in _MARKERS else None


def _fence(line: str) -> tuple[bool, str]:
    """(is a fence line, its language)."""
    match = _FENCE.match(line)
    return (True, match.group(2).lower()) if match else (False, "")


def _clean_path(raw: str) -> str | None:
    """The path on a path line, or None when the line is not a path (never guessed at)."""
    candidate = raw.strip()
    if len(candidate) >= 2 and candidate.startswith("`") and candidate.endswith("`"):
        candidate = candidate[1:-1].strip()
    while candidate.startswith("./"):
        candidate = candidate[2:]
    if (
        not candidate
        or _NOT_IN_PATH.search(candidate)
        or candidate.startswith("#")
        or candidate.endswith(":")
        or _fence(candidate)[0]
        or _marker(candidate) is not None
    ):
        return None
    return candidate


class _ReplyParser:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.edits: list[Edit] = []
        self.commentary: dict[int, str] = {}
        # Lines before `floor` belong to an earlier block and cannot be a later block's path.
        self.floor = 0
        self.fence_open = False

    def parse(self) -> ParsedReply:
        lines = self.lines
        i = 0
        while i < len(lines):
            line = lines[i]
            marker = _marker(line)
            is_fence, language = _fence(line)
            if marker in _STARTS:
                i = self._block(i, _STARTS[marker])
            elif marker is not None:
                block = _ENDS.get(marker, "SEARCH")
                raise EditParseError(
                    i + 1,
                    f"{marker!r} outside a block",
                    f"a file path line and {_start_of(block)!r} before it",
                )
            elif _NEAR_MARKER.match(line):
                raise EditParseError(
                    i + 1,
                    f"malformed marker {line.strip()!r}",
                    "one of "
                    + ", ".join(repr(m) for m in sorted(_MARKERS - {DIVIDER}))
                    + " exactly, alone on its line",
                )
            elif is_fence and self.fence_open and not language:
                # The closing fence of a fenced block whose opening fence was consumed with it.
                self.fence_open = False
                self.floor = i + 1
                i += 1
            elif is_fence and self._diff_starts(self._next_filled(i + 1)):
                i = self._fenced_diff(i)
            elif self._diff_starts(i):
                patches, i = _DiffParser(lines, i, len(lines), fenced=False).parse()
                self.edits.extend(patches)
                self.floor = i
            elif _HUNK_HEADER.match(line) or _BARE_HUNK_HEADER.match(line):
                raise EditParseError(
                    i + 1,
                    "a '@@' hunk without a file header",
                    "'--- a/<path>' and '+++ b/<path>' lines before the first hunk of a file",
                )
            else:
                self.commentary[i] = line
                i += 1
        if not self.edits:
            raise NoEditsError()
        text = "\n".join(self.commentary[k] for k in sorted(self.commentary))
        return ParsedReply(edits=self.edits, commentary=re.sub(r"\n{3,}", "\n\n", text).strip())

    def _next_filled(self, i: int) -> int:
        while i < len(self.lines) and not self.lines[i].strip():
            i += 1
        return i

    def _diff_starts(self, i: int) -> bool:
        lines = self.lines
        if i >= len(lines):
            return False
        if lines[i].startswith("diff --git "):
            return True
        return _is_file_header(lines, i, len(lines))

    def _fenced_diff(self, i: int) -> int:
        end = i + 1
        while end < len(self.lines) and not (
            _fence(self.lines[end])[0] and not _fence(self.lines[end])[1]
        ):
            end += 1
        if end >= len(self.lines):
            raise EditParseError(
                i + 1, "the diff fence is not closed", "a closing ``` line after the diff"
            )
        patches, stop = _DiffParser(self.lines, i + 1, end, fenced=True).parse()
        assert stop == end
        self.edits.extend(patches)
        self.floor = end + 1
        return end + 1

    def _is_opening_fence(self, j: int) -> bool:
        """Whether the fence line ``j`` (still commentary) opens a fence rather than closes one."""
        is_fence, language = _fence(self.lines[j])
        if not is_fence:
            return False
        if language:
            return True
        before = sum(1 for k in self.commentary if k < j and _fence(self.commentary[k])[0])
        return before % 2 == 0

    def _path_before(self, i: int, block: str) -> str:
        """The path of the block opened at line ``i``, taken from the line before it (or before
        its opening fence). Consumes those lines and the fence from the commentary."""
        j = i - 1
        used: list[int] = []
        if j >= self.floor and self._is_opening_fence(j):
            used.append(j)
            j -= 1
        found = "nothing" if j < self.floor else repr(self.lines[j].strip())
        path = _clean_path(self.lines[j]) if j >= self.floor else None
        if path is None:
            raise EditParseError(
                i + 1,
                f"the {_start_of(block)!r} block has no file path (the line before it is {found})",
                "the file's relative path alone on the line before the block (or before its "
                "opening ``` fence), optionally in backticks",
            )
        used.append(j)
        if len(used) == 1 and j - 1 >= self.floor and self._is_opening_fence(j - 1):
            used.append(j - 1)
        for k in used:
            self.commentary.pop(k, None)
        self.fence_open = self.fence_open or len(used) == 2
        return path

    def _block(self, i: int, block: str) -> int:
        path = self._path_before(i, block)
        if block == "SEARCH":
            search, j = self._section(i, i + 1, block, stop=DIVIDER)
            replace, j = self._section(i, j + 1, block, stop=REPLACE_END)
            edit: Edit = SearchReplace(path, _join(search), _join(replace), line=i + 1)
        elif block == "FILE":
            content, j = self._section(i, i + 1, block, stop=FILE_END)
            edit = WholeFile(path, _join(content), line=i + 1)
        else:
            j = i + 1
            if j >= len(self.lines) or _marker(self.lines[j]) != DELETE_END:
                found = repr(self.lines[j]) if j < len(self.lines) else "the end of the reply"
                raise EditParseError(
                    j + 1,
                    f"found {found} inside the DELETE block opened at line {i + 1}",
                    f"{DELETE_END!r} on the line right after {DELETE_START!r} "
                    "(a delete block has nothing between its markers)",
                )
            edit = DeleteFile(path, line=i + 1)
        self.edits.append(edit)
        self.floor = j + 1
        return j + 1

    def _section(self, opened: int, i: int, block: str, *, stop: str) -> tuple[list[str], int]:
        """Lines from ``i`` up to the marker ``stop``; (the lines, the index of ``stop``)."""
        body: list[str] = []
        while i < len(self.lines):
            marker = _marker(self.lines[i])
            if marker == stop:
                return body, i
            if marker in _STARTS:
                raise EditParseError(
                    i + 1,
                    f"{marker!r} inside the {block} block opened at line {opened + 1}",
                    f"{_END_OF[block]!r} to close that block first (block text cannot contain "
                    "marker lines; use a unified diff for such files)",
                )
            if marker == REPLACE_END and stop == DIVIDER:
                raise EditParseError(
                    i + 1,
                    f"{REPLACE_END!r} before {DIVIDER!r} in the SEARCH block opened at line "
                    f"{opened + 1}",
                    f"{DIVIDER!r} between the search text and the replacement",
                )
            if marker == DIVIDER and block == "SEARCH":
                raise EditParseError(
                    i + 1,
                    f"a second {DIVIDER!r} in the SEARCH block opened at line {opened + 1}",
                    f"{REPLACE_END!r} to end the replacement",
                )
            if marker in _ENDS:
                raise EditParseError(
                    i + 1,
                    f"{marker!r} closes the {block} block opened at line {opened + 1}",
                    f"{_END_OF[block]!r}",
                )
            body.append(self.lines[i])
            i += 1
        expected = (
            f"{DIVIDER!r} and then {REPLACE_END!r}" if stop == DIVIDER else repr(_END_OF[block])
        )
        raise EditParseError(
            opened + 1,
            f"the {block} block opened here is not terminated",
            f"{expected} before the end of the reply",
        )


def _start_of(block: str) -> str:
    return {"SEARCH": SEARCH_START, "FILE": FILE_START, "DELETE": DELETE_START}[block]


def _join(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _is_file_header(lines: list[str], i: int, end: int) -> bool:
    return i + 1 < end and lines[i].startswith("--- ") and lines[i + 1].startswith("+++ ")


def _header_path(raw: str) -> str:
    # `--- a/x.py\t2024-01-01 10:00` (diff -u puts a timestamp after a tab).
    return raw.split("\t", 1)[0].strip()


class _DiffParser:
    """Unified diff between ``start`` and ``end``. Fenced: every line must belong to the diff;
    bare: the diff ends at the first line that does not (the commentary goes on from there)."""

    def __init__(self, lines: list[str], start: int, end: int, *, fenced: bool) -> None:
        self.lines = lines
        self.start = start
        self.end = end
        self.fenced = fenced

    def _error(self, i: int, problem: str, expected: str) -> EditParseError:
        return EditParseError(i + 1, problem, expected)

    def parse(self) -> tuple[list[FilePatch], int]:
        lines, end = self.lines, self.end
        patches: list[FilePatch] = []
        git_header: int | None = None
        i = self.start
        while i < end:
            line = lines[i]
            if line.startswith("diff --git "):
                if git_header is not None:
                    raise self._no_file_header(git_header)
                git_header = i
                i += 1
            elif git_header is not None and _GIT_EXTENDED_HEADER.match(line):
                i += 1
            elif _GIT_UNSUPPORTED.match(line):
                raise self._error(
                    i,
                    f"unsupported diff line {line.strip()!r} (renames, copies and binary "
                    "patches are not supported)",
                    "a text diff of one path; to rename, delete the old file and create the new",
                )
            elif _is_file_header(lines, i, end):
                patch, i = self._file_patch(i)
                patches.append(patch)
                git_header = None
            elif not line.strip():
                if self.fenced:
                    i += 1
                    continue
                following = i
                while following < end and not lines[following].strip():
                    following += 1
                if following < end and (
                    lines[following].startswith("diff --git ")
                    or _is_file_header(lines, following, end)
                ):
                    i = following
                    continue
                break
            elif git_header is not None:
                raise self._no_file_header(git_header)
            elif self.fenced:
                raise self._error(
                    i,
                    f"unexpected line {line!r} in the diff",
                    "'--- a/<path>' and '+++ b/<path>', a '@@ -l,n +l,n @@' hunk header, or hunk "
                    "lines starting with ' ', '+', '-' or '\\'",
                )
            else:
                break
        if git_header is not None:
            raise self._no_file_header(git_header)
        # Only entered where a diff starts, which yields a patch or raises.
        assert patches
        return patches, i

    def _no_file_header(self, i: int) -> EditParseError:
        return self._error(
            i,
            f"{self.lines[i].strip()!r} is not followed by '--- ' and '+++ ' lines (mode changes, "
            "renames and empty new files are not supported)",
            "'--- a/<path>' and '+++ b/<path>' and at least one hunk",
        )

    def _file_patch(self, i: int) -> tuple[FilePatch, int]:
        lines = self.lines
        old = _header_path(lines[i][4:])
        new = _header_path(lines[i + 1][4:])
        create, delete = old == DEV_NULL, new == DEV_NULL
        if create and delete:
            raise self._error(i, "both sides of the diff are /dev/null", "a file path on one side")
        # git's a/ and b/ prefixes are dropped only in git's own shape (both present, or one side
        # /dev/null), so that a real top-level directory named `a` is never mistaken for one.
        if create:
            path = new[2:] if new.startswith("b/") else new
        elif delete:
            path = old[2:] if old.startswith("a/") else old
        else:
            if old.startswith("a/") and new.startswith("b/"):
                old, new = old[2:], new[2:]
            if old != new:
                raise self._error(
                    i,
                    f"the diff goes from {old!r} to {new!r} (renames are not supported)",
                    "the same path after '--- ' and '+++ ' (delete the old file and create the "
                    "new one to rename)",
                )
            path = new
        cleaned = _clean_path(path)
        if cleaned is None:
            raise self._error(i, f"{path!r} is not a file path", "'--- a/<relative path>'")
        header_line = i
        i += 2
        hunks: list[Hunk] = []
        while i < self.end and lines[i].startswith("@@"):
            hunk, i = self._hunk(i)
            hunks.append(hunk)
        if not hunks:
            found = repr(lines[i]) if i < self.end else "the end of the diff"
            raise self._error(
                i,
                f"the diff of {cleaned!r} has no hunk (found {found})",
                "a '@@ -l,n +l,n @@' line",
            )
        return (
            FilePatch(cleaned, tuple(hunks), create=create, delete=delete, line=header_line + 1),
            i,
        )

    def _hunk(self, i: int) -> tuple[Hunk, int]:
        lines, end = self.lines, self.end
        header = lines[i].rstrip()
        numbered = _HUNK_HEADER.match(header)
        if numbered is None and not _BARE_HUNK_HEADER.match(header):
            raise self._error(
                i,
                f"malformed hunk header {header!r}",
                "'@@ -<old start>,<old count> +<new start>,<new count> @@' (or '@@ @@')",
            )
        old: list[str] = []
        new: list[str] = []
        last_tag = ""
        no_eol = {"old": False, "new": False}
        h = i
        i += 1

        def add(tag: str, text: str) -> None:
            nonlocal last_tag
            if tag in " -":
                old.append(text)
            if tag in " +":
                new.append(text)
            last_tag = tag

        def mark_no_eol(at: int) -> None:
            if not last_tag:
                raise self._error(
                    at, "'\\ No newline at end of file' before any hunk line", "a hunk line first"
                )
            if last_tag in " -":
                no_eol["old"] = True
            if last_tag in " +":
                no_eol["new"] = True

        if numbered is not None:
            old_count = int(numbered.group(2)) if numbered.group(2) is not None else 1
            new_count = int(numbered.group(4)) if numbered.group(4) is not None else 1
            # The counts say where the hunk ends, as in patch(1): a blank line is then an empty
            # context line (models often drop its leading space), never the end of the hunk.
            while len(old) < old_count or len(new) < new_count:
                line = lines[i] if i < end else None
                if line is None or line[:1] not in ("", " ", "+", "-", "\\"):
                    found = repr(lines[i]) if i < len(lines) else "the end of the reply"
                    raise self._error(
                        i,
                        f"the hunk {header!r} of line {h + 1} declares {old_count} old and "
                        f"{new_count} new lines but has {len(old)} old and {len(new)} new "
                        f"lines when {found} comes",
                        "hunk lines matching the counts of the '@@' header",
                    )
                if line.startswith("\\"):
                    mark_no_eol(i)
                else:
                    add(line[:1] or " ", line[1:])
                if len(old) > old_count or len(new) > new_count:
                    raise self._error(
                        i,
                        f"the hunk {header!r} of line {h + 1} has more lines than its header "
                        f"declares ({old_count} old, {new_count} new)",
                        "hunk lines matching the counts of the '@@' header",
                    )
                i += 1
            if i < end and lines[i].startswith("\\"):
                mark_no_eol(i)
                i += 1
            # A counted hunk followed by more hunk lines was miscounted: taking the rest as
            # commentary would silently apply part of what the model meant. (A markdown rule
            # `---` after a bare diff is not a hunk line.)
            if (
                i < end
                and lines[i][:1] in ("+", "-", " ")
                and lines[i].strip()
                and not re.fullmatch(r"-{3,}\s*", lines[i])
                and not _is_file_header(lines, i, end)
            ):
                raise self._error(
                    i,
                    f"the hunk {header!r} of line {h + 1} has more lines than its header "
                    f"declares ({old_count} old, {new_count} new)",
                    "hunk lines matching the counts of the '@@' header",
                )
            old_start: int | None = int(numbered.group(1))
        else:
            consumed = i
            pending_blank = 0
            while i < end:
                line = lines[i]
                if (
                    line.startswith("@@")
                    or line.startswith("diff --git ")
                    or _is_file_header(lines, i, end)
                ):
                    break
                if not line:
                    pending_blank += 1
                elif line[0] in " +-\\":
                    for _ in range(pending_blank):
                        add(" ", "")
                    pending_blank = 0
                    if line[0] == "\\":
                        mark_no_eol(i)
                    else:
                        add(line[0], line[1:])
                    consumed = i + 1
                else:
                    break
                i += 1
            # Blank lines after the last hunk line separate the diff from what follows.
            i = consumed
            old_start = None
        return (
            Hunk(
                header=header,
                old_start=old_start,
                old_lines=tuple(old),
                new_lines=tuple(new),
                old_no_eol=no_eol["old"],
                new_no_eol=no_eol["new"],
                line=h + 1,
            ),
            i,
        )


# --- applying -------------------------------------------------------------------------------


def apply_edits(edits: Sequence[Edit], read: Callable[[str], str | None]) -> dict[str, str | None]:
    """Apply ``edits`` in order and return the new content of each file they change (``None``:
    deleted), in order of first mention. ``read(path)`` gives a file's current text, exactly as
    stored (no newline translation), or None when it does not exist; it is called once per path.

    All or nothing: the first edit that does not apply raises :class:`EditApplyError` and nothing
    is returned. Edits to the same file chain: each sees the result of the previous ones."""
    originals: dict[str, str | None] = {}
    current: dict[str, str | None] = {}
    for index, edit in enumerate(edits, start=1):
        if edit.path not in current:
            originals[edit.path] = current[edit.path] = read(edit.path)
        current[edit.path] = _apply_one(edit, index, current[edit.path])
    return {path: text for path, text in current.items() if text != originals[path]}


def _apply_one(edit: Edit, index: int, content: str | None) -> str | None:
    def fail(reason: str, message: str) -> EditApplyError:
        return EditApplyError(edit, index, reason, message)

    if isinstance(edit, DeleteFile):
        if content is None:
            raise fail("file_missing", f"{edit.path} does not exist, so it cannot be deleted.")
        return None
    if isinstance(edit, WholeFile):
        newline = _Text.parse(content).newline() if content is not None else "\n"
        bodies = _Text.parse(edit.content).bodies
        return _Text(bodies, [newline] * len(bodies)).render()
    if isinstance(edit, SearchReplace):
        return _apply_search_replace(edit, content, fail)
    return _apply_patch(edit, content, fail)


_Fail = Callable[[str, str], EditApplyError]


def _apply_search_replace(edit: SearchReplace, content: str | None, fail: _Fail) -> str:
    search = _Text.parse(edit.search).bodies
    replace = _Text.parse(edit.replace).bodies
    if not search:
        if content is not None:
            raise fail(
                "file_exists",
                f"the SEARCH text is empty, which creates a new file, but {edit.path} already "
                "exists. To change it, put lines copied from it in SEARCH; to replace it "
                "entirely, use a FILE block.",
            )
        return _Text(replace, ["\n"] * len(replace)).render()
    if content is None:
        raise fail(
            "file_missing",
            f"{edit.path} does not exist. A SEARCH block changes an existing file; to create "
            "one, leave SEARCH empty or use a FILE block.",
        )
    text = _Text.parse(content)
    found = _locate(text.bodies, search, None)
    if isinstance(found, _Miss):
        raise fail(*found.explain(None, edit.path, text.bodies, search))
    text.replace(found, len(search), replace)
    return text.render()


def _apply_patch(edit: FilePatch, content: str | None, fail: _Fail) -> str | None:
    if edit.create and content is not None:
        raise fail(
            "file_exists",
            f"the diff creates {edit.path} ('--- /dev/null') but it already exists; diff "
            "against its current content instead.",
        )
    if not edit.create and content is None:
        raise fail("file_missing", f"{edit.path} does not exist, so the diff cannot change it.")
    text = _Text.parse(content or "")
    delta = 0
    for number, hunk in enumerate(edit.hunks, start=1):
        where = f"hunk {number} ({hunk.header} at reply line {hunk.line})"
        old, new = list(hunk.old_lines), list(hunk.new_lines)
        if not old:
            if hunk.old_start is None and text.bodies:
                raise fail(
                    "hunk_position",
                    f"{where} has no context or removed lines and no line numbers, so there is "
                    "no way to know where it goes; give '@@ -l,n +l,n @@' numbers or context.",
                )
            position = (hunk.old_start or 0) + delta
            if not 0 <= position <= len(text.bodies):
                raise fail(
                    "hunk_position",
                    f"{where} inserts after line {position} but {edit.path} has "
                    f"{len(text.bodies)} lines.",
                )
        else:
            stated = hunk.old_start - 1 + delta if hunk.old_start is not None else None
            found = _locate(text.bodies, old, stated)
            if isinstance(found, _Miss):
                raise fail(*found.explain(where, edit.path, text.bodies, old))
            position = found
        final: _Final = "keep"
        if hunk.new_no_eol:
            final = "none"
        elif hunk.old_no_eol:
            final = "eol"
        text.replace(position, len(old), new, final)
        delta += len(new) - len(old)
    if edit.delete:
        if text.bodies:
            raise fail(
                "delete_incomplete",
                f"the diff deletes {edit.path} ('+++ /dev/null') but its removed lines leave "
                f"{len(text.bodies)} of its lines; remove every line, or use a DELETE block.",
            )
        return None
    return text.render()


_Final = Literal["keep", "eol", "none"]


@dataclass
class _Text:
    """A file as line texts and their endings (``\\n``, ``\\r\\n``, or ``""`` for a last line
    without one), so that matching ignores endings and rendering restores them."""

    bodies: list[str]
    eols: list[str]

    @classmethod
    def parse(cls, content: str) -> _Text:
        parts = content.split("\n")
        bodies: list[str] = []
        eols: list[str] = []
        for part in parts[:-1]:
            if part.endswith("\r"):
                bodies.append(part[:-1])
                eols.append("\r\n")
            else:
                bodies.append(part)
                eols.append("\n")
        if parts[-1]:
            bodies.append(parts[-1])
            eols.append("")
        return cls(bodies, eols)

    def newline(self) -> str:
        """The file's own line ending: CRLF when most of its lines end so, else LF."""
        crlf = self.eols.count("\r\n")
        return "\r\n" if crlf > self.eols.count("\n") else "\n"

    def render(self) -> str:
        return "".join(body + eol for body, eol in zip(self.bodies, self.eols, strict=True))

    def replace(self, start: int, count: int, new: list[str], final: _Final = "keep") -> None:
        """Replace ``count`` lines from ``start`` by ``new``. At the end of the file, ``final``
        says whether the last line ends with a newline: as before (keep), or not (none), or does
        (eol)."""
        newline = self.newline()
        at_end = start + count == len(self.bodies)
        had_none = bool(self.eols) and self.eols[-1] == ""
        self.bodies[start : start + count] = new
        self.eols[start : start + count] = [newline] * len(new)
        if at_end and self.bodies:
            none = final == "none" or (final == "keep" and had_none)
            self.eols[-1] = "" if none else (self.eols[-1] or newline)


@dataclass(frozen=True)
class _Miss:
    """Why a block of lines could not be placed: ``positions`` are its (0-based) matches."""

    positions: tuple[int, ...]
    relaxed: bool
    stated: int | None

    def explain(
        self, hunk: str | None, path: str, bodies: list[str], needle: list[str]
    ) -> tuple[str, str]:
        """(reason, message) for a SEARCH text (``hunk`` None) or for the diff hunk ``hunk``."""
        if hunk is None:
            kind, subject, s, verb_is, advice = (
                "search",
                "the search text",
                "es",
                "is",
                "Add lines before or after it so that it matches only the place you mean.",
            )
        else:
            kind, subject, s, verb_is, advice = (
                "hunk",
                f"the context and removed lines of {hunk}",
                "",
                "are",
                "Add context lines so that they match only the place you mean.",
            )
        stated = (
            f"line {self.stated + 1} (where its header puts it)" if self.stated is not None else ""
        )
        count = len(self.positions)
        places = ", ".join(str(p + 1) for p in self.positions)
        if self.positions and not self.relaxed:
            if stated:
                return (
                    f"{kind}_ambiguous",
                    f"{subject} {'do' if hunk else 'does'} not match {path} at {stated} but "
                    f"match{s} {count} other places, at lines {places}; expected exactly one. "
                    + advice,
                )
            return (
                f"{kind}_ambiguous",
                f"{subject} match{s} {count} places in {path}, at lines {places}; expected "
                "exactly one. " + advice,
            )
        nor = f", nor at {stated}" if stated else ""
        if self.positions:
            return (
                f"{kind}_ambiguous",
                f"{subject} {verb_is} not in {path} exactly{nor}; ignoring trailing whitespace "
                f"{'they' if hunk else 'it'} match{s} {count} places, at lines {places}; "
                "expected exactly one. " + advice,
            )
        where = f" at {stated} nor anywhere else" if stated else ""
        if not bodies:
            return (
                f"{kind}_not_found",
                f"{subject} {'were' if hunk else 'was'} not found in {path}: the file is empty. "
                "To give it content, use a FILE block.",
            )
        return (
            f"{kind}_not_found",
            f"{subject} {'were' if hunk else 'was'} not found in {path}{where}. "
            f"{_closest_lines(bodies, needle)}Copy the lines exactly as they are in the file "
            "(only trailing whitespace and the final newline may differ).",
        )


def _find_all(haystack: list[str], needle: list[str]) -> list[int]:
    size = len(needle)
    first = needle[0]
    return [
        i
        for i in range(len(haystack) - size + 1)
        if haystack[i] == first and haystack[i : i + size] == needle
    ]


def _locate(bodies: list[str], needle: list[str], stated: int | None) -> int | _Miss:
    """Where ``needle`` is in ``bodies``: exactly at ``stated`` (a diff's own position), or at
    the only exact match, or else at the only match ignoring trailing whitespace."""
    exact = _find_all(bodies, needle)
    if stated is not None and stated in exact:
        return stated
    if len(exact) == 1:
        return exact[0]
    if exact:
        return _Miss(tuple(exact), relaxed=False, stated=stated)
    relaxed = _find_all([b.rstrip() for b in bodies], [n.rstrip() for n in needle])
    if len(relaxed) == 1:
        return relaxed[0]
    return _Miss(tuple(relaxed), relaxed=True, stated=stated)


_TOKEN = re.compile(r"\w+|[^\w\s]")
#: Windows of the file compared with difflib when looking for the closest lines; the rest are
#: ranked out first by a cheap count of shared tokens, so that a large file stays fast.
_CLOSEST_CANDIDATES = 200


def _closest_lines(bodies: list[str], needle: list[str]) -> str:
    """The lines of the file most like ``needle`` (difflib ratio over windows of its size),
    numbered, so that the model can copy them right."""
    size = min(len(needle), len(bodies))
    starts = range(len(bodies) - size + 1)
    if len(starts) > _CLOSEST_CANDIDATES:
        vocabulary = {token for line in needle for token in _TOKEN.findall(line)}
        shared = [sum(t in vocabulary for t in _TOKEN.findall(line)) for line in bodies]
        window = sum(shared[:size])
        scores = [window]
        for start in starts[1:]:
            window += shared[start + size - 1] - shared[start - 1]
            scores.append(window)
        ranked = sorted(starts, key=lambda start: (-scores[start], start))
        candidates = sorted(ranked[:_CLOSEST_CANDIDATES])
    else:
        candidates = list(starts)
    matcher = SequenceMatcher(None, autojunk=False)
    matcher.set_seq2("\n".join(needle))
    best_ratio, best_start = -1.0, 0
    for start in candidates:
        matcher.set_seq1("\n".join(bodies[start : start + size]))
        if matcher.real_quick_ratio() <= best_ratio or matcher.quick_ratio() <= best_ratio:
            continue
        ratio = matcher.ratio()
        if ratio > best_ratio:
            best_ratio, best_start = ratio, start
    shown = min(size, CLOSEST_LINES_SHOWN)
    width = len(str(best_start + shown))
    quoted = []
    for number in range(best_start, best_start + shown):
        line = bodies[number]
        if len(line) > _QUOTED_LINE_CHARS:
            line = line[:_QUOTED_LINE_CHARS] + "…"
        quoted.append(f"{number + 1:>{width}} | {line}")
    more = f"\n(and {size - shown} more lines)" if size > shown else ""
    return "The closest lines in the file are:\n" + "\n".join(quoted) + more + "\n"
