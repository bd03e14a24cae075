"""What the planner knows of a repository: its files, a map of them and its test setup.

The repository is a local directory and is only read. In a git checkout the files are what
``git ls-files`` lists (tracked, plus untracked files git does not ignore), so build output and
ignored files stay out of the prompt; any other directory is walked, skipping the directories the
repository map always skips.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from autopack.errors import InvalidInputError
from autopack.executor.repomap import (
    SKIPPED_DIRS,
    ReadFn,
    RepoMap,
    build_repo_map,
    workspace_reader,
)
from autopack.executor.workspace import git_environment

# Files whose symbols are read for the map; the rest are named by path only. Reading every file
# of a very large repository would take long and the map is cut to a token budget anyway.
MAX_READ_FILES = 4_000
# A walk of a directory that is not a repository stops here (a home directory, say).
MAX_LISTED_FILES = 50_000
GIT_TIMEOUT_S = 60.0
# The npm init placeholder: a package.json whose test script is this has no tests.
_NPM_NO_TESTS = "no test specified"


class RepositoryError(InvalidInputError):
    """The repository to plan for is not a readable local directory."""

    code = "repository_unreadable"


@dataclass(frozen=True)
class TestSetup:
    """A test command the repository appears to support, and the files that suggest it."""

    __test__ = False  # not a pytest test class, despite its name

    command: str
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class RepoSnapshot:
    root: Path
    files: tuple[str, ...]
    repo_map: RepoMap
    tests: tuple[TestSetup, ...]


def snapshot(root: Path) -> RepoSnapshot:
    """List, map and inspect the repository at ``root`` (a local directory)."""
    if not root.is_dir():
        raise RepositoryError(
            f"the repository {root} is not a local directory: the planner reads a checkout",
            details=[{"loc": "repo", "message": "not a directory"}],
        )
    files = list_files(root)
    read = workspace_reader(root)
    return RepoSnapshot(
        root=root,
        files=tuple(files),
        repo_map=build_repo_map(files, _read_shallowest(files, read)),
        tests=tuple(detect_tests(files, read)),
    )


def list_files(root: Path) -> list[str]:
    """Relative POSIX paths of the repository's files, sorted."""
    listed = _git_files(root)
    return sorted(listed) if listed is not None else _walk(root)


def _git_files(root: Path) -> list[str] | None:
    """``git ls-files`` of ``root``; None when it is not inside a git work tree."""
    command = [
        "git",
        "-c",
        "core.fsmonitor=false",
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
    ]
    try:
        result = subprocess.run(
            command,
            cwd=root,
            env=git_environment(),
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    names = result.stdout.decode("utf-8", errors="replace").split("\0")
    # A file deleted but not yet staged is still in the index: list what is really there.
    return [name for name in dict.fromkeys(names) if name and (root / name).is_file()]


def _walk(root: Path) -> list[str]:
    found: list[str] = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            name for name in dirnames if name not in SKIPPED_DIRS and not name.endswith(".egg-info")
        )
        base = Path(directory).relative_to(root)
        for name in sorted(filenames):
            found.append((base / name).as_posix())
            if len(found) >= MAX_LISTED_FILES:
                return sorted(found)
    return sorted(found)


def _read_shallowest(files: Sequence[str], read: ReadFn) -> ReadFn:
    """``read`` for the files nearest the root; deeper files past the limit read as empty, so
    the map still names them."""
    by_depth = sorted(files, key=lambda path: (path.count("/"), path))
    allowed = frozenset(by_depth[:MAX_READ_FILES])
    return lambda path: read(path) if path in allowed else ""


def detect_tests(files: Sequence[str], read: ReadFn) -> list[TestSetup]:
    """Test commands the repository's files suggest, most specific first."""
    names = set(files)
    found: list[TestSetup] = []
    python = _python_evidence(files, read)
    if python:
        found.append(TestSetup("python -m pytest -q", python))
    if "package.json" in names and (script := _npm_test_script(read("package.json"))):
        runner = "pnpm" if "pnpm-lock.yaml" in names else "yarn" if "yarn.lock" in names else "npm"
        found.append(TestSetup(f"{runner} test", (f"package.json scripts.test: {script}",)))
    if "go.mod" in names:
        found.append(TestSetup("go test ./...", ("go.mod",)))
    if "Cargo.toml" in names:
        found.append(TestSetup("cargo test", ("Cargo.toml",)))
    if "pom.xml" in names:
        found.append(TestSetup("mvn -q test", ("pom.xml",)))
    gradle = [name for name in ("build.gradle", "build.gradle.kts") if name in names]
    if gradle:
        command = "./gradlew test" if "gradlew" in names else "gradle test"
        found.append(TestSetup(command, tuple(gradle)))
    if "Makefile" in names and re.search(r"^test\s*:", read("Makefile") or "", re.M):
        found.append(TestSetup("make test", ("Makefile target test",)))
    return found


def _python_evidence(files: Sequence[str], read: ReadFn) -> tuple[str, ...]:
    evidence: list[str] = []
    configs = {
        "pytest.ini": None,
        "pyproject.toml": "[tool.pytest",
        "setup.cfg": "[tool:pytest]",
        "tox.ini": "[pytest]",
    }
    for name, marker in configs.items():
        if name in files and (marker is None or marker in (read(name) or "")):
            evidence.append(name)
    tests = [
        path
        for path in sorted(files, key=lambda name: (name.count("/"), name))
        if PurePosixPath(path).name == "conftest.py"
        or re.fullmatch(r"test_\w+\.py|\w+_test\.py", PurePosixPath(path).name)
    ]
    evidence.extend(tests[: max(0, 3 - len(evidence))])
    return tuple(evidence)


def _npm_test_script(text: str | None) -> str | None:
    try:
        package = json.loads(text or "")
    except ValueError:
        return None
    scripts = package.get("scripts") if isinstance(package, dict) else None
    script = scripts.get("test") if isinstance(scripts, dict) else None
    if not isinstance(script, str) or not script.strip() or _NPM_NO_TESTS in script:
        return None
    return script.strip()
