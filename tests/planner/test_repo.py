"""What the planner reads of a repository: its files (as git sees them) and its test setup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autopack.executor.repomap import workspace_reader
from autopack.planner.repo import (
    RepositoryError,
    TestSetup,
    detect_tests,
    list_files,
    snapshot,
)
from tests.executor.support import git
from tests.planner.support import make_repo


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root


def test_a_git_checkout_lists_tracked_and_untracked_files_but_not_ignored(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo")
    write(repo, {"new.py": "x = 1\n", "__pycache__/calc.cpython-311.pyc": "junk", "build.log": ""})
    (repo / ".gitignore").write_text("__pycache__/\n*.log\n")
    files = list_files(repo)
    assert "new.py" in files
    assert "calc.py" in files
    assert not any(name.startswith("__pycache__") or name.endswith(".log") for name in files)


def test_listing_a_checkout_writes_nothing_in_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    index = (repo / ".git" / "index").read_bytes()
    status = git(repo, "status", "--porcelain")
    snapshot(repo)
    assert (repo / ".git" / "index").read_bytes() == index
    assert git(repo, "status", "--porcelain") == status


def test_a_plain_directory_is_walked_without_vendored_folders(tmp_path: Path) -> None:
    root = write(tmp_path, {"app.js": "", "node_modules/x/index.js": "", "src/a.py": ""})
    assert list_files(root) == ["app.js", "src/a.py"]


def test_a_missing_repository_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError) as caught:
        snapshot(tmp_path / "nowhere")
    assert "not a local directory" in caught.value.message


def test_the_map_names_files_and_symbols(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    text = snapshot(repo).repo_map.text()
    assert "calc.py" in text
    assert "def add(a, b)" in text


def detect(root: Path) -> list[TestSetup]:
    return detect_tests(list_files(root), workspace_reader(root))


def test_pytest_is_detected_from_its_files(tmp_path: Path) -> None:
    found = detect(make_repo(tmp_path / "repo"))
    assert found[0].command == "python -m pytest -q"
    assert "pytest.ini" in found[0].evidence
    assert "tests/test_calc.py" in found[0].evidence


@pytest.mark.parametrize(
    ("files", "command"),
    [
        ({"package.json": json.dumps({"scripts": {"test": "vitest run"}})}, "npm test"),
        (
            {"package.json": json.dumps({"scripts": {"test": "jest"}}), "yarn.lock": ""},
            "yarn test",
        ),
        ({"go.mod": "module x\n"}, "go test ./..."),
        ({"Cargo.toml": "[package]\n"}, "cargo test"),
        ({"pom.xml": "<project/>"}, "mvn -q test"),
        ({"build.gradle": "", "gradlew": ""}, "./gradlew test"),
        ({"Makefile": "all:\n\ttrue\ntest:\n\t./run-tests\n"}, "make test"),
        ({"pyproject.toml": "[tool.pytest.ini_options]\n"}, "python -m pytest -q"),
    ],
)
def test_other_test_setups_are_detected(
    tmp_path: Path, files: dict[str, str], command: str
) -> None:
    assert [setup.command for setup in detect(write(tmp_path, files))] == [command]


def test_npm_placeholder_and_unrelated_files_detect_nothing(tmp_path: Path) -> None:
    placeholder = 'echo "Error: no test specified" && exit 1'
    files = {
        "package.json": json.dumps({"scripts": {"test": placeholder}}),
        "pyproject.toml": "[project]\nname = 'x'\n",
        "Makefile": "build:\n\ttrue\n",
    }
    assert detect(write(tmp_path, files)) == []
