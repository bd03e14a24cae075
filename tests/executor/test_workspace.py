"""The run's git workspace, against real git repositories made in tmp_path. The central promise:
the user's repository (working tree, .git, refs, stash) is byte-identical after a run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autopack.executor.workspace import (
    PHASE_TRAILER,
    RUN_TRAILER,
    Workspace,
    WorkspaceError,
    git_environment,
    promote,
)
from tests.executor.support import git

RUN = "run-20240101-000000-abc123"


def commit_file(repo: Path, name: str, text: str, message: str = "change") -> str:
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / ".gitignore").write_text("*.log\n")
    (repo / "README.md").write_text("# demo\n")
    (repo / "src").mkdir()
    (repo / "src" / "lib.py").write_text("def add(a, b):\n    return a + b\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


def snapshot(repo: Path) -> dict[str, object]:
    """Every byte under the repository (working tree and .git) plus git's own view of its refs."""
    files = {
        str(path.relative_to(repo)): path.read_bytes()
        for path in sorted(repo.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }
    return {
        "files": files,
        "dirs": sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_dir()),
        "refs": git(repo, "for-each-ref"),
        "head": git(repo, "symbolic-ref", "HEAD"),
        "stash": git(repo, "stash", "list"),
    }


def test_create_clones_the_base_commit_on_the_run_branch(project: Path, runs_dir: Path) -> None:
    head = git(project, "rev-parse", "HEAD")

    ws = Workspace.create(str(project), RUN, runs_dir)

    assert ws.path == runs_dir.absolute() / RUN / "workspace"
    assert ws.branch == f"autopack/{RUN}"
    assert ws.base_commit == head == ws.head()
    assert git(ws.path, "symbolic-ref", "HEAD") == f"refs/heads/autopack/{RUN}"
    assert (ws.path / "src" / "lib.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert git(ws.path, "status", "--porcelain") == ""
    assert ws.dirty_source == ()
    assert ws.tracked_files() == [".gitignore", "README.md", "src/lib.py"]
    assert not (ws.path / ".git" / "hooks").exists()


def test_the_users_repository_is_byte_identical_after_a_whole_run(
    project: Path, runs_dir: Path
) -> None:
    git(project, "branch", "feature")
    (project / "README.md").write_text("stashed\n")
    git(project, "stash", "-q")
    (project / "src" / "lib.py").write_text("# edited, not committed\n")
    (project / "notes.txt").write_text("untracked\n")
    (project / "debug.log").write_text("ignored\n")
    # Only the mtime changes: a plain `git status` would refresh the index and rewrite it.
    os.utime(project / "README.md", (1, 1))
    before = snapshot(project)

    ws = Workspace.create(str(project), RUN, runs_dir)
    (ws.path / "new.py").write_text("x = 1\n")
    first = ws.commit_all("phase 1", trailers={PHASE_TRAILER: "P1"})
    assert first is not None
    (ws.path / "junk.txt").write_text("junk\n")
    ws.diff(ws.base_commit)
    ws.changed_paths(ws.base_commit)
    ws.find_commit_with_trailer(PHASE_TRAILER, "P1")
    ws.reset_hard(ws.base_commit)
    Workspace.create(str(project), RUN, runs_dir)
    ws.remove()

    assert snapshot(project) == before


def test_a_dirty_source_runs_from_head_and_lists_the_changes(project: Path, runs_dir: Path) -> None:
    (project / "src" / "lib.py").write_text("broken\n")
    (project / "staged.py").write_text("staged\n")
    git(project, "add", "staged.py")
    git(project, "mv", "README.md", "READ.md")
    (project / "scratch" / "deep").mkdir(parents=True)
    (project / "scratch" / "deep" / "n.txt").write_text("untracked\n")
    (project / "build.log").write_text("ignored\n")

    ws = Workspace.create(str(project), RUN, runs_dir)

    assert ws.dirty_source == (
        "READ.md",
        "README.md",
        "scratch/deep/n.txt",
        "src/lib.py",
        "staged.py",
    )
    assert (ws.path / "src" / "lib.py").read_text().startswith("def add")
    assert (ws.path / "README.md").exists()
    assert not (ws.path / "staged.py").exists()
    assert not (ws.path / "scratch").exists()


def test_ref_picks_a_branch_a_tag_or_a_commit(project: Path, runs_dir: Path) -> None:
    first = git(project, "rev-parse", "HEAD")
    git(project, "tag", "v1")
    git(project, "checkout", "-q", "-b", "feature")
    feature = commit_file(project, "feature.py", "f = 1\n")
    git(project, "checkout", "-q", "main")
    main = commit_file(project, "main.py", "m = 1\n")

    assert Workspace.create(str(project), "r-head", runs_dir).base_commit == main
    assert (
        Workspace.create(str(project), "r-branch", runs_dir, ref="feature").base_commit == feature
    )
    assert Workspace.create(str(project), "r-tag", runs_dir, ref="v1").base_commit == first
    by_sha = Workspace.create(str(project), "r-sha", runs_dir, ref=first[:10])
    assert by_sha.base_commit == first
    assert not (by_sha.path / "main.py").exists()


def test_creating_again_reopens_the_workspace_with_its_original_base(
    project: Path, runs_dir: Path
) -> None:
    ws = Workspace.create(str(project), RUN, runs_dir)
    (ws.path / "work.py").write_text("in progress\n")
    commit_file(project, "later.py", "the user moved on\n")
    (project / "dirty.txt").write_text("x\n")

    again = Workspace.create(str(project), RUN, runs_dir, ref="main")

    assert again.path == ws.path
    assert again.base_commit == ws.base_commit
    assert (again.path / "work.py").read_text() == "in progress\n"
    assert again.dirty_source == ("dirty.txt",)


def test_reopening_from_another_source_is_refused(
    project: Path, runs_dir: Path, tmp_path: Path
) -> None:
    Workspace.create(str(project), RUN, runs_dir)
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(project), str(other))

    with pytest.raises(WorkspaceError, match="was cloned from"):
        Workspace.create(str(other), RUN, runs_dir)


def test_open_recovers_from_a_killed_git(project: Path, runs_dir: Path) -> None:
    ws = Workspace.create(str(project), RUN, runs_dir)
    (ws.path / ".git" / "index.lock").write_text("")
    (ws.path / "a.py").write_text("a\n")

    reopened = Workspace.open(ws.path)

    assert reopened.run_id == RUN
    assert reopened.base_commit == ws.base_commit
    assert reopened.branch == ws.branch
    assert reopened.commit_all("after the crash") is not None


def test_a_half_made_clone_is_replaced(project: Path, runs_dir: Path) -> None:
    partial = runs_dir / RUN / "workspace.partial"
    partial.mkdir(parents=True)
    (partial / "leftover").write_text("from a crash\n")

    ws = Workspace.create(str(project), RUN, runs_dir)

    assert not partial.exists()
    assert ws.head() == git(project, "rev-parse", "HEAD")


def test_open_refuses_a_directory_that_is_not_a_workspace(project: Path, tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not an Autopack workspace"):
        Workspace.open(project)
    with pytest.raises(WorkspaceError, match="not an Autopack workspace"):
        Workspace.open(tmp_path / "nowhere")


def test_reset_hard_restores_a_known_commit_exactly(project: Path, runs_dir: Path) -> None:
    ws = Workspace.create(str(project), RUN, runs_dir)
    (ws.path / "kept.py").write_text("kept\n")
    good = ws.commit_all("good phase")
    assert good is not None
    (ws.path / "bad.py").write_text("bad\n")
    ws.commit_all("bad phase")
    (ws.path / "src" / "lib.py").write_text("broken\n")
    (ws.path / "README.md").unlink()
    (ws.path / "new" / "dir").mkdir(parents=True)
    (ws.path / "new" / "dir" / "x.txt").write_text("untracked\n")
    (ws.path / "trace.log").write_text("ignored\n")
    git(ws.path, "init", "-q", "nested")

    ws.reset_hard(good)

    assert ws.head() == good
    assert git(ws.path, "rev-parse", ws.branch) == good
    assert git(ws.path, "status", "--porcelain", "--ignored") == ""
    assert sorted(p.name for p in ws.path.iterdir()) == [
        ".git",
        ".gitignore",
        "README.md",
        "kept.py",
        "src",
    ]


def test_reset_hard_to_an_unknown_commit_names_it(project: Path, runs_dir: Path) -> None:
    ws = Workspace.create(str(project), RUN, runs_dir)
    with pytest.raises(WorkspaceError, match="no commit 'deadbeef'"):
        ws.reset_hard("deadbeef")


def test_commit_all_stages_everything_and_returns_none_when_nothing_changed(
    project: Path, runs_dir: Path
) -> None:
    ws = Workspace.create(str(project), RUN, runs_dir)
    assert ws.commit_all("nothing yet") is None

    (ws.path / "src" / "lib.py").write_text("changed\n")
    (ws.path / "README.md").unlink()
    (ws.path / "pkg").mkdir()
    (ws.path / "pkg" / "mod.py").write_text("new\n")
    (ws.path / "out.log").write_text("ignored by the project\n")
    commit = ws.commit_all("# Phase one\n\nbody line", author="Bot <bot@example.com>")

    assert commit is not None and commit == ws.head()
    assert git(ws.path, "show", "--name-status", "--format=", commit).splitlines() == [
        "D\tREADME.md",
        "A\tpkg/mod.py",
        "M\tsrc/lib.py",
    ]
    assert git(ws.path, "log", "-1", "--format=%an <%ae>|%cn <%ce>") == (
        "Bot <bot@example.com>|Bot <bot@example.com>"
    )
    assert git(ws.path, "log", "-1", "--format=%B") == "# Phase one\n\nbody line"
    assert ws.commit_all("again") is None


def test_commit_all_ignores_the_users_hooks_signing_and_missing_identity(
    project: Path, runs_dir: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    hooks = home / "hooks"
    hooks.mkdir(parents=True)
    for hook in ("pre-commit", "commit-msg", "prepare-commit-msg", "post-checkout"):
        (hooks / hook).write_text("#!/bin/sh\necho hook ran >&2\nexit 1\n")
        (hooks / hook).chmod(0o755)
    (home / ".gitconfig").write_text(
        f"[core]\n\thooksPath = {hooks}\n[commit]\n\tgpgSign = true\n"
        "[user]\n\tuseConfigOnly = true\n"
    )
    base_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_DIR": str(project / ".git"),
        "GIT_INDEX_FILE": str(project / ".git" / "index"),
    }

    ws = Workspace.create(str(project), RUN, runs_dir, base_env=base_env)
    (ws.path / "a.py").write_text("a\n")
    commit = ws.commit_all("works anyway")

    assert commit is not None
    assert git(ws.path, "log", "-1", "--format=%an <%ae>") == "Autopack <autopack@localhost>"


def test_bad_commit_input_is_refused(project: Path, runs_dir: Path) -> None:
    ws = Workspace.create(str(project), RUN, runs_dir)
    (ws.path / "a.py").write_text("a\n")
    with pytest.raises(WorkspaceError, match="message"):
        ws.commit_all("  ")
    with pytest.raises(WorkspaceError, match="Name <email>"):
        ws.commit_all("m", author="nobody")
    with pytest.raises(WorkspaceError, match="trailer key"):
        ws.commit_all("m", trailers={"Bad Key": "x"})
    with pytest.raises(WorkspaceError, match="one-line"):
        ws.commit_all("m", trailers={PHASE_TRAILER: "a\nb"})
    assert ws.head() == ws.base_commit


def test_phase_commits_are_found_by_trailer(project: Path, runs_dir: Path) -> None:
    ws = Workspace.create(str(project), RUN, runs_dir)
    (ws.path / "one.py").write_text("1\n")
    one = ws.commit_all("phase one", trailers={RUN_TRAILER: RUN, PHASE_TRAILER: "P1"})
    (ws.path / "two.py").write_text("2\n")
    two = ws.commit_all("phase two\n\nP1 is mentioned here", trailers={PHASE_TRAILER: "P2"})

    assert ws.find_commit_with_trailer(PHASE_TRAILER, "P1") == one
    assert ws.find_commit_with_trailer(PHASE_TRAILER, "P2") == two
    assert ws.find_commit_with_trailer(RUN_TRAILER, RUN) == one
    assert ws.find_commit_with_trailer(PHASE_TRAILER, "P3") is None
    assert one is not None and two is not None
    assert ws.is_ancestor(one) and ws.is_ancestor(ws.base_commit, two)
    assert not ws.is_ancestor(two, one)

    ws.reset_hard(one)
    assert ws.find_commit_with_trailer(PHASE_TRAILER, "P2") is None


def test_diff_of_the_working_tree_includes_new_files_and_leaves_the_index(
    project: Path, runs_dir: Path
) -> None:
    ws = Workspace.create(str(project), RUN, runs_dir)
    (ws.path / "src" / "lib.py").write_text("def add(a, b):\n    return b + a\n")
    (ws.path / "src" / "new_mod.py").write_text("NEW = True\n")
    (ws.path / "README.md").unlink()
    (ws.path / "ignored.log").write_text("no\n")

    diff = ws.diff(ws.base_commit)

    assert "diff --git a/src/new_mod.py b/src/new_mod.py" in diff
    assert "+NEW = True" in diff
    assert "-    return a + b\n+    return b + a" in diff
    assert "deleted file mode" in diff
    assert "ignored.log" not in diff
    assert ws.changed_paths(ws.base_commit) == ["README.md", "src/lib.py", "src/new_mod.py"]
    status = git(ws.path, "status", "--porcelain").splitlines()
    assert sorted(line.strip() for line in status) == [
        "?? src/new_mod.py",
        "D README.md",
        "M src/lib.py",
    ]


def test_diff_between_commits(project: Path, runs_dir: Path) -> None:
    ws = Workspace.create(str(project), RUN, runs_dir)
    (ws.path / "a.py").write_text("a\n")
    first = ws.commit_all("a")
    (ws.path / "b.py").write_text("b\n")
    second = ws.commit_all("b")
    assert first is not None and second is not None

    assert "b/b.py" in ws.diff(first, second)
    assert "a.py" not in ws.diff(first, second)
    assert ws.changed_paths(ws.base_commit, second) == ["a.py", "b.py"]
    assert ws.diff(second) == ""
    with pytest.raises(WorkspaceError, match="no commit '--output=x'"):
        ws.diff("--output=x")


def test_read_text_stays_inside_the_workspace(
    project: Path, runs_dir: Path, tmp_path: Path
) -> None:
    ws = Workspace.create(str(project), RUN, runs_dir)
    (ws.path / "blob.bin").write_bytes(b"\x00\x01\x02")
    (tmp_path / "secret.txt").write_text("secret\n")
    (ws.path / "escape").symlink_to(tmp_path / "secret.txt")

    assert ws.read_text("src/lib.py") == "def add(a, b):\n    return a + b\n"
    assert ws.read_text("missing.py") is None
    assert ws.read_text("src") is None
    assert ws.read_text("blob.bin") is None
    for bad in ("../project/README.md", "/etc/passwd", ".git/config", "escape", ""):
        with pytest.raises(WorkspaceError, match="outside the workspace"):
            ws.read_text(bad)


def test_tracked_files_can_include_new_ones(project: Path, runs_dir: Path) -> None:
    ws = Workspace.create(str(project), RUN, runs_dir)
    (ws.path / "new.py").write_text("n\n")
    (ws.path / "x.log").write_text("ignored\n")

    assert "new.py" not in ws.tracked_files()
    assert ws.tracked_files(include_untracked=True) == [
        ".gitignore",
        "README.md",
        "new.py",
        "src/lib.py",
    ]


def test_a_url_source_is_cloned(project: Path, runs_dir: Path, tmp_path: Path) -> None:
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(project), str(bare))
    git(project, "checkout", "-q", "-b", "topic")
    topic = commit_file(project, "topic.py", "t\n")
    git(project, "push", "-q", str(bare), "topic")
    url = bare.as_uri()

    ws = Workspace.create(url, RUN, runs_dir)
    on_topic = Workspace.create(url, "run-topic", runs_dir, ref="topic")

    assert ws.source == url
    assert ws.base_commit == git(bare, "rev-parse", "main")
    assert (ws.path / "README.md").exists()
    assert ws.dirty_source == ()
    assert on_topic.base_commit == topic
    assert (on_topic.path / "topic.py").exists()
    assert Workspace.create(url, RUN, runs_dir).path == ws.path
    with pytest.raises(WorkspaceError, match=r"has no branch, tag or commit 'nope'"):
        Workspace.create(url, "run-nope", runs_dir, ref="nope")
    assert not (runs_dir / "run-nope" / "workspace").exists()


def test_a_bare_local_repository_is_a_source(project: Path, runs_dir: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(project), str(bare))

    ws = Workspace.create(str(bare), RUN, runs_dir)

    assert ws.base_commit == git(project, "rev-parse", "HEAD")
    assert ws.dirty_source == ()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing", "does not exist"),
        (lambda tmp: (tmp / "plain").mkdir() or tmp / "plain", "is not a git repository"),
        (lambda tmp: tmp / "project" / "src", "is not the root of a git repository"),
    ],
    ids=["missing", "not-a-repo", "subdirectory"],
)
def test_a_path_that_is_not_a_repository_is_named(
    project: Path, runs_dir: Path, tmp_path: Path, make: object, message: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(WorkspaceError, match=message) as caught:
        Workspace.create(str(path), RUN, runs_dir)
    assert str(path) in str(caught.value)
    assert "Traceback" not in str(caught.value) and "fatal:" not in str(caught.value)


def test_an_empty_repository_is_refused(runs_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    git(tmp_path, "init", "-q", str(empty))
    bare = tmp_path / "empty.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))

    with pytest.raises(WorkspaceError, match=f"{empty} has no commits yet"):
        Workspace.create(str(empty), RUN, runs_dir)
    with pytest.raises(WorkspaceError, match="has no commits yet"):
        Workspace.create(bare.as_uri(), RUN, runs_dir)
    assert not (runs_dir / RUN / "workspace").exists()


def test_an_unknown_ref_is_named(project: Path, runs_dir: Path) -> None:
    with pytest.raises(WorkspaceError, match=r"has no branch, tag or commit 'no-such-branch'"):
        Workspace.create(str(project), RUN, runs_dir, ref="no-such-branch")
    with pytest.raises(WorkspaceError, match="has no branch, tag or commit '--all'"):
        Workspace.create(str(project), RUN, runs_dir, ref="--all")
    with pytest.raises(WorkspaceError, match="base ref is empty"):
        Workspace.create(str(project), RUN, runs_dir, ref=" ")


@pytest.mark.parametrize("run_id", ["", "../up", "a/b", "x.lock", "-rf", "a..b", "dot."])
def test_a_run_id_unfit_for_a_branch_is_refused(project: Path, runs_dir: Path, run_id: str) -> None:
    with pytest.raises(WorkspaceError, match="cannot name a workspace"):
        Workspace.create(str(project), run_id, runs_dir)


def test_runs_dir_inside_the_project_must_be_ignored(project: Path) -> None:
    with pytest.raises(WorkspaceError, match="not ignored by git"):
        Workspace.create(str(project), RUN, project / ".autonomous_runs")
    assert not (project / ".autonomous_runs").exists()

    (project / ".git" / "info" / "exclude").write_text(".autonomous_runs/\n")
    before = git(project, "status", "--porcelain")
    ws = Workspace.create(str(project), RUN, project / ".autonomous_runs")
    assert ws.dirty_source == ()
    assert git(project, "status", "--porcelain") == before == ""


def test_remove_deletes_only_the_workspace(project: Path, runs_dir: Path) -> None:
    ws = Workspace.create(str(project), RUN, runs_dir)
    (runs_dir / RUN / "summary.md").write_text("kept\n")

    ws.remove()
    ws.remove()

    assert not ws.path.exists()
    assert (runs_dir / RUN / "summary.md").exists()
    assert (project / "README.md").exists()


def test_git_environment_keeps_only_what_git_needs() -> None:
    env = git_environment(
        {
            "PATH": "/opt/bin",
            "HOME": "/home/u",
            "GIT_DIR": "/x",
            "OPENAI_API_KEY": "sk",
            "LANG": "fr",
        }
    )

    assert env["PATH"] == "/opt/bin" and env["HOME"] == "/home/u"
    assert "GIT_DIR" not in env and "OPENAI_API_KEY" not in env
    assert env["LC_ALL"] == "C" and env["LANG"] == "C"
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_CONFIG_NOSYSTEM"] == "1"
    minimal = git_environment()
    assert "HOME" not in minimal and minimal["PATH"]


# --- promote --------------------------------------------------------------------------------------


def finished_run(project: Path, runs_dir: Path, run_id: str = RUN) -> tuple[Workspace, str]:
    ws = Workspace.create(str(project), run_id, runs_dir)
    (ws.path / "feature.py").write_text("done = True\n")
    tip = ws.commit_all("phase", trailers={PHASE_TRAILER: "P1"})
    assert tip is not None
    return ws, tip


def test_promote_fast_forwards_the_checked_out_branch(project: Path, runs_dir: Path) -> None:
    ws, tip = finished_run(project, runs_dir)

    assert promote(ws, str(project), "main") == tip

    assert git(project, "rev-parse", "main") == tip
    assert (project / "feature.py").read_text() == "done = True\n"
    assert git(project, "status", "--porcelain") == ""
    assert promote(ws, str(project), "main") == tip
    assert git(ws.path, "for-each-ref", "refs/autopack") == ""


def test_promote_moves_a_branch_that_is_not_checked_out(project: Path, runs_dir: Path) -> None:
    ws, tip = finished_run(project, runs_dir)
    git(project, "checkout", "-q", "-b", "elsewhere")

    assert promote(ws, str(project), "main") == tip

    assert git(project, "rev-parse", "main") == tip
    assert git(project, "symbolic-ref", "HEAD") == "refs/heads/elsewhere"
    assert not (project / "feature.py").exists()


def test_promote_creates_a_missing_branch(project: Path, runs_dir: Path) -> None:
    ws, tip = finished_run(project, runs_dir)

    assert promote(ws, str(project), "autopack-result") == tip
    assert git(project, "rev-parse", "autopack-result") == tip


def test_promote_merges_when_the_target_moved(project: Path, runs_dir: Path) -> None:
    ws, tip = finished_run(project, runs_dir)
    moved = commit_file(project, "user.py", "user work\n")

    merged = promote(ws, str(project), "main")

    assert git(project, "rev-parse", "main") == merged
    assert git(project, "log", "-1", "--format=%P", merged).split() == [moved, tip]
    assert (project / "feature.py").exists() and (project / "user.py").exists()
    assert git(project, "status", "--porcelain") == ""
    assert ws.head() == tip
    assert not (runs_dir / RUN / "promote-merge").exists()


def test_promote_refuses_a_dirty_checked_out_target(project: Path, runs_dir: Path) -> None:
    ws, _ = finished_run(project, runs_dir)
    (project / "README.md").write_text("local edit\n")
    before = snapshot(project)

    with pytest.raises(WorkspaceError, match=r"uncommitted changes \(README.md\)"):
        promote(ws, str(project), "main")

    assert snapshot(project) == before


def test_promote_refuses_a_conflict_and_writes_nothing(project: Path, runs_dir: Path) -> None:
    ws = Workspace.create(str(project), RUN, runs_dir)
    (ws.path / "README.md").write_text("# from the run\n")
    ws.commit_all("run edit")
    commit_file(project, "README.md", "# from the user\n")
    before = snapshot(project)

    with pytest.raises(WorkspaceError, match=r"merge conflicts in README\.md") as caught:
        promote(ws, str(project), "main")

    assert caught.value.details == {"conflicts": ["README.md"]}
    assert snapshot(project) == before
    assert not (runs_dir / RUN / "promote-merge").exists()


def test_promote_pushes_to_a_url(project: Path, runs_dir: Path, tmp_path: Path) -> None:
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(project), str(bare))
    ws = Workspace.create(bare.as_uri(), RUN, runs_dir)
    (ws.path / "feature.py").write_text("done\n")
    tip = ws.commit_all("phase")

    assert promote(ws, bare.as_uri(), "main") == tip
    assert git(bare, "rev-parse", "main") == tip


def test_promote_refuses_a_bad_branch_name(project: Path, runs_dir: Path) -> None:
    ws, _ = finished_run(project, runs_dir)
    for name in ("bad..name", "-x", "with space"):
        with pytest.raises(WorkspaceError, match="not a valid branch name"):
            promote(ws, str(project), name)


def test_promote_updates_a_linked_worktree_that_has_the_target(
    project: Path, runs_dir: Path, tmp_path: Path
) -> None:
    ws, tip = finished_run(project, runs_dir)
    linked = tmp_path / "linked"
    git(project, "worktree", "add", "-q", "-b", "release", str(linked), ws.base_commit)

    assert promote(ws, str(project), "release") == tip

    assert (linked / "feature.py").exists()
    assert git(linked, "status", "--porcelain") == ""
    assert git(project, "rev-parse", "main") == ws.base_commit


def test_a_git_that_hangs_is_stopped_with_a_clear_error(project: Path, runs_dir: Path) -> None:
    with pytest.raises(WorkspaceError, match=r"git rev-parse timed out after 1e-06s in "):
        Workspace.create(str(project), RUN, runs_dir, timeout_s=0.000001)
