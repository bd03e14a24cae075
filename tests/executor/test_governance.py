"""Governance on real files and real symlinks: every rule, the verdict, and safe writes."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from autopack.executor.edits import apply_edits, parse_reply
from autopack.executor.governance import (
    GovernanceError,
    GovernanceLimits,
    GovernanceViolationError,
    UnreadableFileError,
    UnsafeWriteError,
    Verdict,
    check_changes,
    path_matches,
    read_workspace_file,
    workspace_reader,
    write_changes,
)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    (root / "README.md").write_text("# readme\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    target = tmp_path / "outside"
    target.mkdir()
    (target / "passwd").write_text("root:x:0:0\n")
    return target


def rules(verdict: Verdict) -> list[tuple[str | None, str]]:
    return [(v.path, v.rule.value) for v in verdict.violations]


def check(
    root: Path,
    changes: Mapping[str, str | bytes | None],
    *,
    scope_paths: Sequence[str] = (),
    protected_paths: Sequence[str] = (),
    limits: GovernanceLimits | None = None,
) -> list[tuple[str | None, str]]:
    verdict = check_changes(
        changes, root, scope_paths=scope_paths, protected_paths=protected_paths, limits=limits
    )
    return rules(verdict)


# --- paths --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("../x", "path_traversal"),
        ("a/../../x", "path_traversal"),
        ("src/..", "path_traversal"),
        ("/etc/passwd", "absolute_path"),
        ("~/x", "absolute_path"),
        ("C:/x", "absolute_path"),
        ("src\\x.py", "invalid_path"),
        ("src//x.py", "invalid_path"),
        ("./src/x.py", "invalid_path"),
        ("src/", "invalid_path"),
        ("", "invalid_path"),
        ("a\nb", "invalid_path"),
        (".git/config", "git_internal"),
        ("sub/.git/hooks/x", "git_internal"),
        (".GIT/x", "git_internal"),
        (".Git", "git_internal"),
        (".git./hooks/pre-commit", "git_internal"),
        ("GIT~1/config", "git_internal"),
    ],
)
def test_unsafe_paths_are_refused(workspace: Path, path: str, rule: str) -> None:
    assert check(workspace, {path: "x\n"}) == [(path, rule)]


def test_git_lookalikes_that_are_ordinary_files_are_allowed(workspace: Path) -> None:
    changes = {".gitignore": "*.pyc\n", "docs/.github/x.md": "x\n", "src/git/x.py": "x\n"}
    assert check(workspace, changes) == []


def test_symlinked_directory_leading_outside_is_refused(workspace: Path, outside: Path) -> None:
    (workspace / "link").symlink_to(outside)
    verdict = check_changes({"link/passwd": "owned\n"}, workspace)
    assert rules(verdict) == [("link/passwd", "symlink_escape")]
    assert verdict.violations[0].message == "link is a symlink that leads outside the workspace"
    assert str(outside) not in verdict.summary()
    with pytest.raises(GovernanceViolationError):
        write_changes(workspace, {"link/passwd": "owned\n"}, verdict)
    assert (outside / "passwd").read_text() == "root:x:0:0\n"


def test_symlink_to_etc_is_refused(workspace: Path) -> None:
    (workspace / "link").symlink_to("/etc")
    assert check(workspace, {"link/passwd": "x\n", "link/new": "x\n"}) == [
        ("link/new", "symlink_escape"),
        ("link/passwd", "symlink_escape"),
    ]


def test_symlinked_file_and_dangling_symlink_leading_outside(
    workspace: Path, outside: Path
) -> None:
    (workspace / "p").symlink_to(outside / "passwd")
    (workspace / "dangling").symlink_to(outside / "missing")
    (workspace / "up").symlink_to("..")
    assert check(workspace, {"p": "x\n", "dangling": "x\n", "up/ws2/x": "x\n"}) == [
        ("dangling", "symlink_escape"),
        ("p", "symlink_escape"),
        ("up/ws2/x", "symlink_escape"),
    ]


def test_symlink_inside_the_workspace_is_refused_naming_the_real_path(workspace: Path) -> None:
    (workspace / "alias").symlink_to(workspace / "src")
    (workspace / "gitlink").symlink_to(".git")
    verdict = check_changes({"alias/pkg/mod.py": "y\n", "gitlink/config": "x\n"}, workspace)
    assert rules(verdict) == [("alias/pkg/mod.py", "symlink"), ("gitlink/config", "symlink")]
    assert verdict.violations[0].message == (
        "alias is a symlink to src; Autopack does not write through symlinks: change "
        "src/pkg/mod.py instead"
    )


def test_protected_and_out_of_scope_paths(workspace: Path) -> None:
    changes = {"src/pkg/mod.py": "y\n", "README.md": "z\n", "setup.cfg": "q\n"}
    verdict = check_changes(
        changes, workspace, scope_paths=["src/", "README.md"], protected_paths=["*.md"]
    )
    assert rules(verdict) == [("README.md", "protected_path"), ("setup.cfg", "outside_scope")]
    assert verdict.violations[0].message == "the path is protected (by *.md) and is never changed"
    assert verdict.violations[1].message == (
        "the path is outside the paths this phase may change: src/, README.md"
    )
    assert check(workspace, changes) == []


def test_deleting_is_governed_like_writing(workspace: Path) -> None:
    assert check(workspace, {"README.md": None}, protected_paths=["README.md"]) == [
        ("README.md", "protected_path")
    ]
    assert check(workspace, {"src": None}) == [("src", "path_conflict")]


def test_path_conflicts_with_the_workspace_and_within_the_change_set(workspace: Path) -> None:
    changes = {"README.md/x": "a\n", "src/pkg": "b\n", "new": "c\n", "new/inner": "d\n"}
    assert check(workspace, changes) == [
        ("README.md/x", "path_conflict"),
        ("new/inner", "path_conflict"),
        ("src/pkg", "path_conflict"),
    ]


# --- content and limits -------------------------------------------------------------------------


def test_binary_content_is_refused_unless_allowed(workspace: Path) -> None:
    changes: dict[str, str | bytes | None] = {
        "nul.txt": "a\0b",
        "img.png": b"\x89PNG\r\n\x1a\n\0\0",
        "latin1.txt": b"caf\xe9\n",
        "ok.txt": "café\n".encode(),
    }
    assert check(workspace, changes) == [
        ("img.png", "binary_content"),
        ("latin1.txt", "binary_content"),
        ("nul.txt", "binary_content"),
    ]
    assert check(workspace, changes, limits=GovernanceLimits(allow_binary=True)) == []


def test_size_and_count_limits(workspace: Path) -> None:
    limits = GovernanceLimits(max_files=2, max_file_bytes=10, max_total_bytes=15)
    changes: dict[str, str | bytes | None] = {"a": "x" * 11, "b": "é" * 5, "c": None}
    verdict = check_changes(changes, workspace, limits=limits)
    assert rules(verdict) == [
        ("a", "too_large"),
        (None, "too_many_files"),
        (None, "total_too_large"),
    ]
    assert verdict.violations[0].message == (
        "the content is 11 bytes, over the limit of 10 bytes per file"
    )
    assert verdict.violations[1].message == "the change set touches 3 files, over the limit of 2"
    assert check(workspace, {"huge.txt": "x" * 2_000_000}) == [
        ("huge.txt", "too_large"),
    ]


def test_every_violation_is_listed_and_summarised(workspace: Path) -> None:
    verdict = check_changes(
        {"../x": "a", ".git/config": "b", "big": "c" * 20},
        workspace,
        scope_paths=["src"],
        limits=GovernanceLimits(max_file_bytes=10),
    )
    assert rules(verdict) == [
        ("../x", "path_traversal"),
        (".git/config", "git_internal"),
        (".git/config", "outside_scope"),
        ("big", "outside_scope"),
        ("big", "too_large"),
    ]
    assert not verdict.ok
    assert verdict.summary().splitlines()[:2] == [
        "Governance refused the change set (5 violations):",
        "- ../x: the path contains '..'; it must stay in the workspace [path_traversal]",
    ]
    assert verdict.to_dict()["violations"][0] == {
        "path": "../x",
        "rule": "path_traversal",
        "message": "the path contains '..'; it must stay in the workspace",
    }


# --- patterns -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("src", "src/a.py", True),
        ("src/", "src/x/y/z.py", True),
        ("./src", "src/a.py", True),
        ("src", "srcs/a.py", False),
        ("src", "src", True),
        ("src/*.py", "src/a.py", True),
        ("src/*.py", "src/sub/a.py", False),
        ("src/**/*.py", "src/a.py", True),
        ("src/**/*.py", "src/sub/deep/a.py", True),
        ("**/*.pem", "keys/x.pem", True),
        ("**/*.pem", "x.pem", True),
        ("*.md", "docs/x.md", False),
        ("*", ".env", True),
        ("packages/*/src", "packages/core/src/a.py", True),
        ("docs/[ab].md", "docs/a.md", True),
        ("docs/?.md", "docs/ab.md", False),
        ("Src", "src/a.py", False),
        ("**", "anything/at/all", True),
        (".", "x", True),
    ],
)
def test_path_patterns(pattern: str, path: str, expected: bool) -> None:
    assert path_matches(pattern, path) is expected


# --- writing ------------------------------------------------------------------------------------


def test_a_clean_change_set_is_written_byte_for_byte(workspace: Path) -> None:
    changes: dict[str, str | bytes | None] = {
        "src/pkg/mod.py": "x = 2\r\n",
        "src/new/deep/file.py": "y = 1\n",
        "README.md": None,
        "gone/already.txt": None,
    }
    verdict = check_changes(changes, workspace, scope_paths=["src", "README.md", "gone"])
    assert verdict.ok, verdict.summary()
    assert verdict.summary() == "Governance: the change set is allowed."
    write_changes(workspace, changes, verdict)
    assert (workspace / "src/pkg/mod.py").read_bytes() == b"x = 2\r\n"
    assert (workspace / "src/new/deep/file.py").read_bytes() == b"y = 1\n"
    assert not (workspace / "README.md").exists()
    # Writing again is harmless (a resumed attempt may redo its write).
    write_changes(workspace, changes, verdict)


def test_write_keeps_the_file_mode(workspace: Path) -> None:
    script = workspace / "run.sh"
    script.write_text("echo a\n")
    script.chmod(0o755)
    changes: dict[str, str | bytes | None] = {"run.sh": "echo b\n"}
    write_changes(workspace, changes, check_changes(changes, workspace))
    assert script.read_text() == "echo b\n"
    assert script.stat().st_mode & 0o777 == 0o755


def test_write_needs_a_clean_verdict_for_the_same_changes(workspace: Path) -> None:
    changes: dict[str, str | bytes | None] = {"src/a.py": "a\n"}
    verdict = check_changes(changes, workspace)
    with pytest.raises(GovernanceError, match="another change set"):
        write_changes(workspace, {"src/a.py": "b\n"}, verdict)
    with pytest.raises(GovernanceError, match="another change set"):
        write_changes(workspace, {**changes, "src/b.py": "b\n"}, verdict)
    assert not (workspace / "src/a.py").exists()


def test_write_refuses_a_directory_symlink_swapped_in_after_the_check(
    workspace: Path, outside: Path
) -> None:
    changes: dict[str, str | bytes | None] = {
        "src/aaa.py": "fine\n",
        "src/pkg/passwd": "owned\n",
    }
    verdict = check_changes(changes, workspace)
    assert verdict.ok
    os.rename(workspace / "src" / "pkg", workspace / "moved")
    (workspace / "src" / "pkg").symlink_to(outside)
    with pytest.raises(UnsafeWriteError, match="src/pkg is now a symlink"):
        write_changes(workspace, changes, verdict)
    assert (outside / "passwd").read_text() == "root:x:0:0\n"
    # Refused before anything was written.
    assert not (workspace / "src" / "aaa.py").exists()


def test_write_refuses_a_file_symlink_swapped_in_after_the_check(
    workspace: Path, outside: Path
) -> None:
    changes: dict[str, str | bytes | None] = {"src/pkg/mod.py": "owned\n"}
    verdict = check_changes(changes, workspace)
    (workspace / "src/pkg/mod.py").unlink()
    (workspace / "src/pkg/mod.py").symlink_to(outside / "passwd")
    with pytest.raises(UnsafeWriteError):
        write_changes(workspace, changes, verdict)
    assert (outside / "passwd").read_text() == "root:x:0:0\n"


def test_write_refuses_a_symlink_that_appears_between_its_own_checks_and_the_write(
    workspace: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The final open uses O_NOFOLLOW and each directory is opened without following links, so
    even a swap after write_changes' own re-check cannot lead outside."""
    from autopack.executor import governance

    changes: dict[str, str | bytes | None] = {"src/pkg/passwd": "owned\n", "src/x.py": "x\n"}
    verdict = check_changes(changes, workspace)

    def swap(root: str, path: str) -> None:
        if not (workspace / "src" / "pkg").is_symlink():
            os.rename(workspace / "src" / "pkg", workspace / "moved")
            (workspace / "src" / "pkg").symlink_to(outside)

    monkeypatch.setattr(governance, "_refuse_symlinks", swap)
    with pytest.raises(UnsafeWriteError, match="src/pkg is now a symlink or not a directory"):
        write_changes(workspace, changes, verdict)
    assert (outside / "passwd").read_text() == "root:x:0:0\n"

    (workspace / "src" / "pkg").unlink()
    os.rename(workspace / "moved", workspace / "src" / "pkg")
    (workspace / "src" / "pkg" / "passwd").symlink_to(outside / "passwd")
    monkeypatch.setattr(governance, "_refuse_symlinks", lambda root, path: None)
    with pytest.raises(UnsafeWriteError, match="it is now a symlink"):
        write_changes(workspace, changes, verdict)
    assert (outside / "passwd").read_text() == "root:x:0:0\n"


def test_write_refuses_a_fifo_instead_of_hanging(workspace: Path) -> None:
    changes: dict[str, str | bytes | None] = {"src/pipe": "x\n"}
    verdict = check_changes(changes, workspace)
    os.mkfifo(workspace / "src" / "pipe")
    with pytest.raises(UnsafeWriteError):
        write_changes(workspace, changes, verdict)


# --- reading ------------------------------------------------------------------------------------


def test_safe_reader(workspace: Path, outside: Path) -> None:
    (workspace / "crlf.txt").write_bytes(b"a\r\nb\r\n")
    (workspace / "bin").write_bytes(b"\xff\xfe")
    (workspace / "link").symlink_to(outside)
    (workspace / "flink").symlink_to(outside / "passwd")
    read = workspace_reader(workspace)
    assert read("crlf.txt") == "a\r\nb\r\n"
    assert read("missing.txt") is None
    assert read("nodir/missing.txt") is None
    for refused in ["link/passwd", "flink", "../outside/passwd", ".git/config", "bin", "src"]:
        with pytest.raises(UnreadableFileError):
            read_workspace_file(workspace, refused)


def test_missing_workspace_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GovernanceError, match="does not exist"):
        check_changes({"a": "b"}, tmp_path / "nope")


# --- end to end ---------------------------------------------------------------------------------


def test_reply_to_workspace(workspace: Path) -> None:
    reply = (
        "Bumping x.\n\nsrc/pkg/mod.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n"
        "\nsrc/pkg/new.py\n<<<<<<< FILE\nNEW = True\n>>>>>>> FILE\n"
    )
    parsed = parse_reply(reply)
    changes = apply_edits(parsed.edits, workspace_reader(workspace))
    verdict = check_changes(changes, workspace, scope_paths=["src/pkg"])
    assert verdict.ok
    write_changes(workspace, changes, verdict)
    assert (workspace / "src/pkg/mod.py").read_text() == "x = 2\n"
    assert (workspace / "src/pkg/new.py").read_text() == "NEW = True\n"
    assert parsed.commentary == "Bumping x."
