"""Governance: what a change set may touch, checked before anything is written.

:func:`check_changes` judges a change set (path → new content, ``None`` = delete) against the
workspace and the phase's rules and lists every violation, so that one failed attempt tells the
model everything that is wrong at once. :func:`write_changes` writes a change set only with a clean
verdict for exactly that change set, and walks every path again at write time without following any
symlink, so that a link swapped in after the check cannot lead a write out of the workspace.
:func:`read_workspace_file` is the matching safe reader for ``apply_edits``. Path patterns
(``scope.paths``, ``protected_paths``) are described in ``docs/edit-format.md`` (Governance).
"""

from __future__ import annotations

import enum
import errno
import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from autopack.errors import AutopackError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO swapped in for a file must fail the open, not hang the executor.
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# What open() says when a no-follow walk meets a symlink, a file where a directory should be, or
# a FIFO without a reader.
_UNSAFE_ERRNOS = frozenset({errno.ELOOP, errno.ENOTDIR, errno.ENXIO, errno.EISDIR})
_DRIVE = re.compile(r"^[A-Za-z]:")


class GovernanceError(AutopackError):
    code = "governance_error"


class GovernanceViolationError(GovernanceError):
    """A change set was to be written without a clean verdict; ``verdict`` lists why."""

    code = "governance_violation"

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.summary(), details=verdict.to_dict())
        self.verdict = verdict


class UnsafeWriteError(GovernanceError):
    """The workspace changed under a checked change set (a symlink appeared, say): refused."""

    code = "unsafe_write"


class UnreadableFileError(GovernanceError):
    """A file the edits need cannot be read safely: a path governance refuses, a symlink, not a
    regular file, or not UTF-8 text."""

    code = "unreadable_file"


class Rule(enum.StrEnum):
    ABSOLUTE_PATH = "absolute_path"
    PATH_TRAVERSAL = "path_traversal"
    INVALID_PATH = "invalid_path"
    GIT_INTERNAL = "git_internal"
    SYMLINK_ESCAPE = "symlink_escape"
    SYMLINK = "symlink"
    PATH_CONFLICT = "path_conflict"
    OUTSIDE_SCOPE = "outside_scope"
    PROTECTED_PATH = "protected_path"
    BINARY_CONTENT = "binary_content"
    TOO_LARGE = "too_large"
    TOO_MANY_FILES = "too_many_files"
    TOTAL_TOO_LARGE = "total_too_large"


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule; ``path`` is None for a rule about the whole change set."""

    path: str | None
    rule: Rule
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "rule": self.rule.value, "message": self.message}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement of one change set. ``fingerprint`` ties it to that change set and workspace:
    :func:`write_changes` refuses a verdict given for anything else."""

    violations: tuple[Violation, ...]
    fingerprint: str = field(repr=False)

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        """The verdict as the model is told it."""
        if self.ok:
            return "Governance: the change set is allowed."
        lines = [f"Governance refused the change set ({len(self.violations)} violations):"]
        lines += [
            f"- {v.path + ': ' if v.path is not None else ''}{v.message} [{v.rule.value}]"
            for v in self.violations
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "violations": [v.to_dict() for v in self.violations]}


@dataclass(frozen=True, slots=True)
class GovernanceLimits:
    """Size limits of one change set; None = no limit. Deletions count as files of 0 bytes."""

    max_files: int | None = 100
    max_file_bytes: int | None = 1_000_000
    max_total_bytes: int | None = 5_000_000
    allow_binary: bool = False


# --- patterns -------------------------------------------------------------------------------


def _pattern_segments(pattern: str) -> list[str]:
    cleaned = pattern.strip().strip("/")
    return [segment for segment in cleaned.split("/") if segment not in ("", ".")]


def _match_segments(pattern: list[str], segments: list[str]) -> bool:
    if not pattern:
        return not segments
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match_segments(rest, segments[k:]) for k in range(len(segments) + 1))
    return bool(segments) and fnmatchcase(segments[0], head) and _match_segments(rest, segments[1:])


def path_matches(pattern: str, path: str) -> bool:
    """Whether ``pattern`` covers the normalised relative ``path``: it matches the path itself or
    one of its parent directories, segment by segment (``*``, ``?`` and ``[...]`` within one
    segment, ``**`` any number of segments), anchored at the workspace root, case-sensitively."""
    pattern_segments = _pattern_segments(pattern)
    if not pattern_segments:
        return True
    segments = path.split("/")
    return any(_match_segments(pattern_segments, segments[:k]) for k in range(1, len(segments) + 1))


# --- checking -------------------------------------------------------------------------------


def _is_git_name(segment: str) -> bool:
    # Case-insensitive, and with the trailing dots and spaces Windows file systems drop and the
    # 8.3 short name, as git itself refuses them: `.GIT`, `.git.` and `GIT~1` all reach the
    # repository on some file system.
    name = segment.casefold()
    return name.rstrip(". ") == ".git" or name == "git~1"


def _path_violations(path: str) -> tuple[list[Violation], bool]:
    """Violations visible in the path string alone; (violations, whether the path is usable for
    the checks that follow)."""

    def bad(rule: Rule, message: str) -> tuple[list[Violation], bool]:
        return [Violation(path, rule, message)], False

    if not path:
        return bad(Rule.INVALID_PATH, "the path is empty")
    if any(ord(char) < 0x20 or char == "\x7f" for char in path):
        return bad(Rule.INVALID_PATH, "the path contains control characters")
    if path.startswith(("/", "~")) or _DRIVE.match(path):
        return bad(
            Rule.ABSOLUTE_PATH, "the path is absolute; paths are relative to the workspace root"
        )
    if "\\" in path:
        return bad(Rule.INVALID_PATH, "the path contains a backslash; separate parts with '/'")
    segments = path.split("/")
    if ".." in segments:
        return bad(Rule.PATH_TRAVERSAL, "the path contains '..'; it must stay in the workspace")
    if "" in segments or "." in segments:
        normal = "/".join(s for s in segments if s not in ("", "."))
        return bad(
            Rule.INVALID_PATH,
            f"the path is not normalised (empty or '.' parts); write it as {normal!r}",
        )
    if any(_is_git_name(segment) for segment in segments):
        return [
            Violation(path, Rule.GIT_INTERNAL, "the path is inside git's own data (.git)")
        ], False
    return [], True


def _inside(root: str, target: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def _filesystem_violations(root: str, path: str, deleting: bool) -> list[Violation]:
    """What the workspace as it is now says about ``path``: symlinks on the way, files where
    directories are needed, a directory where a file is."""
    segments = path.split("/")
    current = root
    for index, segment in enumerate(segments):
        current = os.path.join(current, segment)
        prefix = "/".join(segments[: index + 1])
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            return []
        if stat.S_ISLNK(info.st_mode):
            target = os.path.realpath(current)
            if not _inside(root, target):
                # The target outside is not quoted: it would tell the model about the host.
                return [
                    Violation(
                        path,
                        Rule.SYMLINK_ESCAPE,
                        f"{prefix} is a symlink that leads outside the workspace",
                    )
                ]
            real = os.path.relpath(target, root).replace(os.sep, "/")
            rest = "/".join([real, *segments[index + 1 :]])
            return [
                Violation(
                    path,
                    Rule.SYMLINK,
                    f"{prefix} is a symlink to {real}; Autopack does not write through "
                    f"symlinks: change {rest} instead",
                )
            ]
        last = index == len(segments) - 1
        if not last and not stat.S_ISDIR(info.st_mode):
            return [Violation(path, Rule.PATH_CONFLICT, f"{prefix} is a file, not a directory")]
        if last and stat.S_ISDIR(info.st_mode):
            what = "delete the files in it one by one" if deleting else "it cannot become a file"
            return [Violation(path, Rule.PATH_CONFLICT, f"{path} is a directory; {what}")]
        if last and not stat.S_ISREG(info.st_mode):
            return [Violation(path, Rule.PATH_CONFLICT, f"{path} is not a regular file")]
    return []


def _encoded(content: str | bytes) -> tuple[bytes, bool]:
    """(the bytes written, whether they are text: UTF-8 without NUL)."""
    if isinstance(content, bytes):
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            return content, False
        return content, b"\0" not in content
    try:
        data = content.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates: a str decoded from bytes with surrogateescape, i.e. not UTF-8 text.
        return content.encode("utf-8", "surrogateescape"), False
    return data, "\0" not in content


def _resolve_root(root: Path | str) -> str:
    try:
        resolved = Path(root).resolve(strict=True)
    except OSError as exc:
        raise GovernanceError(f"the workspace {root} does not exist") from exc
    if not resolved.is_dir():
        raise GovernanceError(f"the workspace {root} is not a directory")
    return str(resolved)


def _fingerprint(root: str, changes: Mapping[str, str | bytes | None]) -> str:
    digest = hashlib.sha256(root.encode("utf-8", "surrogateescape"))
    for path in sorted(changes):
        content = changes[path]
        digest.update(b"\0" + path.encode("utf-8", "surrogateescape") + b"\0")
        if content is None:
            digest.update(b"delete")
        else:
            digest.update(hashlib.sha256(_encoded(content)[0]).digest())
    return digest.hexdigest()


def _human(size: int) -> str:
    return f"{size:,} bytes"


def check_changes(
    changes: Mapping[str, str | bytes | None],
    root: Path | str,
    *,
    scope_paths: Iterable[str] = (),
    protected_paths: Iterable[str] = (),
    limits: GovernanceLimits | None = None,
) -> Verdict:
    """Judge ``changes`` (path → new content, None = delete) for the workspace at ``root``.

    ``scope_paths``: the phase's allowed paths (empty: anywhere); ``protected_paths``: the
    project's. Returns every violation, per path in sorted order, then those of the whole set."""
    limits = limits or GovernanceLimits()
    scope = list(scope_paths)
    protected = list(protected_paths)
    real_root = _resolve_root(root)
    violations: list[Violation] = []
    written = {path for path, content in changes.items() if content is not None}
    total = 0
    for path in sorted(changes):
        content = changes[path]
        found, usable = _path_violations(path)
        if usable:
            found += _filesystem_violations(real_root, path, content is None)
            segments = path.split("/")
            for k in range(1, len(segments)):
                parent = "/".join(segments[:k])
                if parent in written and content is not None:
                    found.append(
                        Violation(
                            path,
                            Rule.PATH_CONFLICT,
                            f"{parent} is written as a file in the same change set",
                        )
                    )
        if usable or found[0].rule is Rule.GIT_INTERNAL:
            if scope and not any(path_matches(pattern, path) for pattern in scope):
                found.append(
                    Violation(
                        path,
                        Rule.OUTSIDE_SCOPE,
                        "the path is outside the paths this phase may change: " + ", ".join(scope),
                    )
                )
            hits = [pattern for pattern in protected if path_matches(pattern, path)]
            if hits:
                found.append(
                    Violation(
                        path,
                        Rule.PROTECTED_PATH,
                        f"the path is protected (by {', '.join(hits)}) and is never changed",
                    )
                )
        if content is not None:
            data, is_text = _encoded(content)
            total += len(data)
            if not is_text and not limits.allow_binary:
                found.append(
                    Violation(
                        path,
                        Rule.BINARY_CONTENT,
                        "the content is not text (it has NUL bytes or is not valid UTF-8)",
                    )
                )
            if limits.max_file_bytes is not None and len(data) > limits.max_file_bytes:
                found.append(
                    Violation(
                        path,
                        Rule.TOO_LARGE,
                        f"the content is {_human(len(data))}, over the limit of "
                        f"{_human(limits.max_file_bytes)} per file",
                    )
                )
        violations += found
    if limits.max_files is not None and len(changes) > limits.max_files:
        violations.append(
            Violation(
                None,
                Rule.TOO_MANY_FILES,
                f"the change set touches {len(changes)} files, over the limit of "
                f"{limits.max_files}",
            )
        )
    if limits.max_total_bytes is not None and total > limits.max_total_bytes:
        violations.append(
            Violation(
                None,
                Rule.TOTAL_TOO_LARGE,
                f"the change set writes {_human(total)}, over the limit of "
                f"{_human(limits.max_total_bytes)} in all",
            )
        )
    return Verdict(tuple(violations), _fingerprint(real_root, changes))


# --- writing and reading --------------------------------------------------------------------


def _unsafe(path: str, what: str) -> UnsafeWriteError:
    return UnsafeWriteError(f"{path}: {what}; refused, nothing more was written")


def _open_parent(root: str, path: str, *, create: bool) -> int | None:
    """A descriptor of ``path``'s directory reached from ``root`` one component at a time, never
    following a symlink (O_NOFOLLOW on each); None when it is missing and ``create`` is off."""
    segments = path.split("/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for index, segment in enumerate(segments[:-1]):
            try:
                child = os.open(segment, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    os.close(fd)
                    return None
                os.mkdir(segment, 0o777, dir_fd=fd)
                child = os.open(segment, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in _UNSAFE_ERRNOS:
                    prefix = "/".join(segments[: index + 1])
                    raise _unsafe(path, f"{prefix} is now a symlink or not a directory") from exc
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _refuse_symlinks(root: str, path: str) -> None:
    current = root
    for segment in path.split("/"):
        current = os.path.join(current, segment)
        try:
            info = os.lstat(current)
        except (FileNotFoundError, NotADirectoryError):
            return
        if stat.S_ISLNK(info.st_mode):
            raise _unsafe(path, f"{os.path.relpath(current, root)} is now a symlink")


def _write_one(root: str, path: str, content: str | bytes | None) -> None:
    name = path.rsplit("/", 1)[-1]
    parent = _open_parent(root, path, create=content is not None)
    if parent is None:
        return
    try:
        if content is None:
            try:
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                return  # already gone: deleting is idempotent, a resumed attempt may redo it
            if not stat.S_ISREG(info.st_mode):
                raise _unsafe(path, "it is no longer a regular file")
            os.unlink(name, dir_fd=parent)
            return
        data = _encoded(content)[0]
        try:
            fd = os.open(name, _WRITE_FLAGS, 0o666, dir_fd=parent)
        except OSError as exc:
            if exc.errno in _UNSAFE_ERRNOS:
                raise _unsafe(path, "it is now a symlink or not a regular file") from exc
            raise
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _unsafe(path, "it is not a regular file")
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    finally:
        os.close(parent)


def write_changes(
    root: Path | str, changes: Mapping[str, str | bytes | None], verdict: Verdict
) -> None:
    """Write ``changes`` into the workspace, given the clean ``verdict`` that
    :func:`check_changes` returned for exactly this change set and workspace.

    Contents are written byte for byte (no newline translation); parent directories are created;
    None deletes (a file already gone is fine). Every path is walked again without following any
    symlink, so a symlink that appeared since the check is refused (:class:`UnsafeWriteError`).
    All paths are re-checked before the first write, but a failure in the middle of writing can
    leave earlier files written: the executor resets the workspace after a failed attempt."""
    if not verdict.ok:
        raise GovernanceViolationError(verdict)
    real_root = _resolve_root(root)
    if verdict.fingerprint != _fingerprint(real_root, changes):
        raise GovernanceError(
            "the verdict was given for another change set or workspace; check these changes first"
        )
    for path in changes:
        _refuse_symlinks(real_root, path)
    # Deletions first, so that a file can give way to a directory of the same name.
    order = sorted(changes, key=lambda p: (changes[p] is not None, p))
    for path in order:
        _write_one(real_root, path, changes[path])


def read_workspace_file(root: Path | str, path: str) -> str | None:
    """The text of ``path`` in the workspace exactly as stored (CRLF kept), or None when it does
    not exist. Refuses (:class:`UnreadableFileError`) what governance would refuse to write as a
    path (absolute, ``..``, ``.git``...), symlinks anywhere on the way, non-regular files and
    non-UTF-8 content: what is read may be quoted back to the model."""
    found, usable = _path_violations(path)
    if not usable:
        raise UnreadableFileError(f"{path}: {found[0].message}", details=found[0].to_dict())
    real_root = _resolve_root(root)
    try:
        parent = _open_parent(real_root, path, create=False)
    except UnsafeWriteError as exc:
        raise UnreadableFileError(f"{path}: a part of the path is a symlink or a file") from exc
    if parent is None:
        return None
    try:
        fd = os.open(path.rsplit("/", 1)[-1], _READ_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in _UNSAFE_ERRNOS:
            raise UnreadableFileError(f"{path}: it is a symlink or not a regular file") from exc
        raise
    finally:
        os.close(parent)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnreadableFileError(f"{path}: it is not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(f"{path}: it is not UTF-8 text") from exc


def workspace_reader(root: Path | str) -> Callable[[str], str | None]:
    """``read`` for :func:`autopack.executor.edits.apply_edits` over the workspace at ``root``."""
    return lambda path: read_workspace_file(root, path)
