"""The run's isolated git workspace (ARCHITECTURE §5 step 1).

A project is a git repository: a local path (the root of a working tree, or a bare repository) or a
URL (``https://``, ``ssh://``, ``file://``, ``user@host:path``). Each run works in its own clone at
``<runs_dir>/<run_id>/workspace``, on the branch ``autopack/<run_id>`` created at the base commit.
The base commit is the source's ``HEAD`` (or the ``ref`` given: a branch, tag or commit), resolved
once, when the workspace is created; it is recorded in the workspace so that a restart uses the
same one even if the user has committed since.

**The user's repository is never written.** A local source is cloned with ``git clone
--no-checkout`` (objects are hard-linked where the file system allows; git never modifies an object
file, so sharing them is safe), never with ``git worktree add``, which would write into the user's
``.git`` and reserve a branch there. Every git command reading the source runs with
``GIT_OPTIONAL_LOCKS=0`` (``git status`` would otherwise refresh and rewrite the index) and with
fsmonitor off (it would start a daemon with a socket inside ``.git``). Working tree, index,
``HEAD``, refs, config and stash are the same, byte for byte, before and after a run. The one
command that writes the source is :func:`promote`, which a user asks for explicitly.

When ``runs_dir`` lies inside the source's working tree (``.autonomous_runs`` relative to a
checkout), the workspace would show up there as an untracked directory, so creation is refused
unless git ignores that directory.

**A dirty source** (uncommitted changes, staged or not, and untracked files that are not ignored):
the run starts from the committed ``HEAD`` anyway, and the uncommitted changes are not part of it.
:attr:`Workspace.dirty_source` lists the paths concerned so that the caller can warn the user;
nothing is refused and nothing in the user's tree is touched.

**Isolation from the user's git setup.** Git runs with a small environment of its own
(:func:`git_environment`): no system config, no terminal prompt, ``LC_ALL=C``, hooks disabled
(``core.hooksPath=/dev/null``), signing off, automatic gc off, and an identity set on every command
so that commits work on machines that have none configured (CI). Only ``PATH``, ``HOME``, the SSH
agent and proxy settings pass from the base environment the caller gives: ``HOME`` brings the
user's global config, which remote clones may need for credentials; without a base environment
git reads no user config at all.

**Crash safety.** :meth:`Workspace.create` clones into a scratch directory and renames it into
place, so a workspace either exists whole or not at all; called again for the same run it reopens
the existing workspace. Opening removes lock files that a killed git left behind, so the caller
must own the run (the executor that holds its heartbeat). Commits carry trailers
(``Autopack-Run``, ``Autopack-Phase``) so that a restarted executor finds a phase already committed
with :meth:`Workspace.find_commit_with_trailer` instead of committing it twice.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from autopack.errors import AutopackError

BRANCH_PREFIX = "autopack/"
DEFAULT_AUTHOR = "Autopack <autopack@localhost>"
RUN_TRAILER = "Autopack-Run"
PHASE_TRAILER = "Autopack-Phase"
DEFAULT_TIMEOUT_S = 300.0

WORKSPACE_DIRNAME = "workspace"
# Scratch directories next to the workspace: a clone in progress, and the merge of a promotion.
_PARTIAL_DIRNAME = "workspace.partial"
_MERGE_DIRNAME = "promote-merge"
_PROMOTE_REF = "refs/autopack/promote"
_TARGET_REF = "refs/autopack/target"

_IDENTITY_NAME, _IDENTITY_EMAIL = "Autopack", "autopack@localhost"
# Per-command config: these beat anything in the repository's or the user's config files.
_CONFIG_OVERRIDES = (
    "core.hooksPath=/dev/null",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "core.fsmonitor=false",
    "gc.auto=0",
    "maintenance.auto=false",
    f"user.name={_IDENTITY_NAME}",
    f"user.email={_IDENTITY_EMAIL}",
)
_FIXED_ENV = {
    "LC_ALL": "C",
    "LANG": "C",
    "GIT_TERMINAL_PROMPT": "0",
    "GCM_INTERACTIVE": "never",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_EDITOR": ":",
    "GIT_PAGER": "cat",
}
# What a clone of a remote may legitimately need from the caller's environment. Everything else
# (GIT_DIR, GIT_INDEX_FILE, GIT_WORK_TREE above all) would redirect git away from the workspace.
_PASSTHROUGH_ENV = (
    "PATH",
    "HOME",
    "TMPDIR",
    "SSH_AUTH_SOCK",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_SSL_CAINFO",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)
_DIFF_OPTIONS = (
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-renames",
    "--src-prefix=a/",
    "--dst-prefix=b/",
)
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCP_LIKE = re.compile(r"^[^/:]+:")
_TRAILER_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_IDENTITY = re.compile(r"^\s*([^<>]+?)\s*<([^<>\s]+)>\s*$")
_STALE_LOCKS = ("index.lock", "HEAD.lock", "config.lock", "packed-refs.lock")


class WorkspaceError(AutopackError):
    """The workspace cannot be created or used as asked; the message names the path or ref."""

    code = "workspace_error"


class InvalidBranchError(WorkspaceError):
    """A branch name git does not accept."""

    code = "invalid_branch"


class GitCommandError(WorkspaceError):
    """A git command failed in a way this module did not expect; ``details`` has its stderr."""

    code = "git_command_failed"


def git_environment(base_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every git child: the few variables of ``base_env`` that a remote clone
    may need, plus fixed values that keep the user's setup and the locale out of git's behaviour.
    Without ``base_env`` the environment is minimal and git reads no user config at all."""
    env = {name: base_env[name] for name in _PASSTHROUGH_ENV if base_env and name in base_env}
    env.setdefault("PATH", _default_path())
    env.update(_FIXED_ENV)
    return env


def _default_path() -> str:
    # Where this process found git comes first, so a git installed outside /usr/bin still works.
    found = shutil.which("git")
    return os.pathsep.join([str(Path(found).parent), os.defpath] if found else [os.defpath])


@dataclass(frozen=True)
class _Git:
    env: Mapping[str, str]
    timeout_s: float

    def run(
        self,
        cwd: Path,
        *args: str,
        stdin: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        command = ["git", *(part for item in _CONFIG_OVERRIDES for part in ("-c", item)), *args]
        try:
            result = subprocess.run(
                command,
                cwd=cwd,
                env={**self.env, **(extra_env or {})},
                input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise GitCommandError(
                f"git {args[0]} timed out after {self.timeout_s:g}s in {cwd}",
                details={"args": list(args), "cwd": str(cwd)},
            ) from exc
        except OSError as exc:
            raise WorkspaceError(f"cannot run git in {cwd}: {exc}") from exc
        if check and result.returncode != 0:
            raise GitCommandError(
                f"git {args[0]} failed in {cwd}: {_last_line(result.stderr)}",
                details={
                    "args": list(args),
                    "cwd": str(cwd),
                    "returncode": result.returncode,
                    "stderr": result.stderr,
                },
            )
        return result

    def out(self, cwd: Path, *args: str, extra_env: Mapping[str, str] | None = None) -> str:
        """The stdout of a command that prints one value."""
        return self.run(cwd, *args, extra_env=extra_env).stdout.strip()

    def lines(self, cwd: Path, *args: str, extra_env: Mapping[str, str] | None = None) -> list[str]:
        """The NUL-separated items printed by a ``-z`` command."""
        stdout = self.run(cwd, *args, extra_env=extra_env).stdout
        return [item for item in stdout.split("\0") if item]

    def commit_or_none(self, cwd: Path, rev: str) -> str | None:
        if rev.startswith("-"):
            return None  # it would be read as an option
        result = self.run(cwd, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}", check=False)
        return result.stdout.strip() if result.returncode == 0 else None


def _last_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no message"


# --- the source repository -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """Where the project comes from: ``key`` is the URL, or the resolved path of a local
    repository, which then also has ``root``."""

    key: str
    root: Path | None = None
    bare: bool = False


def _is_url(source: str) -> bool:
    if _URL.match(source):
        return True
    return bool(_SCP_LIKE.match(source)) and not Path(source).exists()


def _source_key(source: str) -> str:
    return source if _is_url(source) else str(Path(source).resolve())


def _locate_source(source: str, git: _Git) -> _Source:
    if not source.strip():
        raise WorkspaceError("the project repository is empty: give a path or a URL")
    if _is_url(source):
        return _Source(key=source)
    path = Path(source).resolve()
    if not path.is_dir():
        raise WorkspaceError(f"project repository {source} does not exist or is not a directory")
    probe = git.run(path, "rev-parse", "--is-bare-repository", check=False)
    if probe.returncode != 0:
        raise WorkspaceError(f"{source} is not a git repository")
    if probe.stdout.strip() == "true":
        return _Source(key=str(path), root=path, bare=True)
    top = git.run(path, "rev-parse", "--show-toplevel", check=False)
    toplevel = Path(top.stdout.strip()).resolve() if top.returncode == 0 else None
    if toplevel != path:
        inside = f" (it lies inside the repository {toplevel})" if toplevel else ""
        raise WorkspaceError(f"{source} is not the root of a git repository{inside}")
    return _Source(key=str(path), root=path)


def _resolve_local_base(root: Path, ref: str | None, git: _Git) -> str:
    commit = git.commit_or_none(root, ref or "HEAD")
    if commit is not None:
        return commit
    if ref is None:
        raise WorkspaceError(f"git repository {root} has no commits yet")
    raise WorkspaceError(f"git repository {root} has no branch, tag or commit {ref!r}")


def _resolve_cloned_base(clone: Path, source: _Source, ref: str | None, git: _Git) -> str:
    """The base commit of a remote source, looked up in the fresh clone, where the remote's
    branches are ``origin/*``."""
    if ref is None:
        commit = git.commit_or_none(clone, "HEAD")
        if commit is None:
            raise WorkspaceError(f"git repository {source.key} has no commits yet")
        return commit
    for candidate in (f"refs/remotes/origin/{ref}", f"refs/tags/{ref}", ref):
        commit = git.commit_or_none(clone, candidate)
        if commit is not None:
            return commit
    raise WorkspaceError(f"git repository {source.key} has no branch, tag or commit {ref!r}")


def _dirty_paths(worktree: Path, git: _Git) -> tuple[str, ...]:
    """Paths with uncommitted changes, staged or not, and untracked files git does not ignore.
    Runs with optional locks off, so the user's index is not refreshed in passing."""
    items = git.lines(worktree, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    paths: set[str] = set()
    expect_origin = False
    for item in items:
        if expect_origin:
            # The second name of a rename or copy entry: the path it came from.
            paths.add(item)
            expect_origin = False
            continue
        status, path = item[:2], item[3:]
        paths.add(path)
        expect_origin = "R" in status or "C" in status
    return tuple(sorted(paths))


def _refuse_unignored_inside(source: _Source, run_dir: Path, git: _Git) -> None:
    if source.root is None or source.bare:
        return
    try:
        relative = run_dir.resolve().relative_to(source.root)
    except ValueError:
        return
    ignored = git.run(
        source.root, "check-ignore", "-q", "--", f"{relative.as_posix()}/", check=False
    )
    if ignored.returncode != 0:
        raise WorkspaceError(
            f"the run directory {run_dir} lies inside the project repository {source.key} and is "
            "not ignored by git there: the workspace would change the user's working tree. Set "
            "AUTOPACK_RUNS_DIR outside the repository, or add it to the repository's .gitignore"
        )


# --- the workspace -------------------------------------------------------------------------------


def _check_run_id(run_id: str) -> None:
    if not _RUN_ID.match(run_id) or ".." in run_id or run_id.endswith((".lock", ".")):
        raise WorkspaceError(
            f"run id {run_id!r} cannot name a workspace: use letters, digits, '.', '_' and '-'"
        )


def _format_trailers(trailers: Mapping[str, str]) -> str:
    lines = []
    for key, value in trailers.items():
        if not _TRAILER_KEY.match(key):
            raise WorkspaceError(f"commit trailer key {key!r} must be letters, digits and '-'")
        if not value.strip() or "\n" in value or "\r" in value:
            raise WorkspaceError(f"commit trailer {key} must have a one-line value")
        lines.append(f"{key}: {value.strip()}")
    return "\n".join(lines)


def _parse_identity(author: str) -> tuple[str, str]:
    match = _IDENTITY.match(author)
    if not match:
        raise WorkspaceError(f"commit author {author!r} must look like 'Name <email>'")
    return match.group(1), match.group(2)


class Workspace:
    """One run's clone, on its own branch. Build it with :meth:`create` or :meth:`open`."""

    def __init__(
        self,
        *,
        path: Path,
        run_id: str,
        base_commit: str,
        source: str,
        git: _Git,
        dirty_source: Sequence[str] = (),
    ) -> None:
        self.path = path
        self.run_id = run_id
        self.branch = f"{BRANCH_PREFIX}{run_id}"
        self.base_commit = base_commit
        self.source = source
        #: Paths with uncommitted changes in the user's checkout when the workspace was created or
        #: reopened by :meth:`create`: those changes are not part of the run (empty for a URL).
        self.dirty_source: tuple[str, ...] = tuple(dirty_source)
        self._git = git

    def __repr__(self) -> str:
        return f"Workspace(path={self.path!s}, branch={self.branch}, base={self.base_commit[:12]})"

    # --- creation ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        source: str,
        run_id: str,
        runs_dir: Path,
        *,
        ref: str | None = None,
        base_env: Mapping[str, str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Workspace:
        """The workspace of ``run_id``, cloned from ``source`` at ``ref`` (default ``HEAD``).

        If it exists already (an executor restarted after a crash) it is reopened as it is, with
        its original base commit, whatever ``ref`` says now; it must come from the same source.
        """
        _check_run_id(run_id)
        if ref is not None and not ref.strip():
            raise WorkspaceError("the base ref is empty: give a branch, tag or commit, or none")
        git = _Git(git_environment(base_env), timeout_s)
        run_dir = runs_dir.absolute() / run_id
        path = run_dir / WORKSPACE_DIRNAME
        if path.exists():
            return cls._reopen(path, source, git)
        located = _locate_source(source, git)
        _refuse_unignored_inside(located, run_dir, git)
        dirty: tuple[str, ...] = ()
        if located.root is not None and not located.bare:
            dirty = _dirty_paths(located.root, git)
        base = cls._clone_into_place(located, run_id, run_dir, ref, git)
        return cls(
            path=path,
            run_id=run_id,
            base_commit=base,
            source=located.key,
            git=git,
            dirty_source=dirty,
        )

    @classmethod
    def _clone_into_place(
        cls, source: _Source, run_id: str, run_dir: Path, ref: str | None, git: _Git
    ) -> str:
        """Clone into a scratch directory, then rename it: a crash leaves no half workspace."""
        # A local base is resolved in the user's repository itself, before cloning: what the
        # user calls HEAD (or ref) there is what the run starts from.
        local_base = _resolve_local_base(source.root, ref, git) if source.root else None
        partial = run_dir / _PARTIAL_DIRNAME
        shutil.rmtree(partial, ignore_errors=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        git.run(
            run_dir, "clone", "-q", "--no-checkout", "--template=", "--", source.key, partial.name
        )
        base = local_base or _resolve_cloned_base(partial, source, ref, git)
        cls._set_up_clone(partial, run_id, base, source.key, git)
        partial.rename(run_dir / WORKSPACE_DIRNAME)
        return base

    @staticmethod
    def _set_up_clone(clone: Path, run_id: str, base: str, source_key: str, git: _Git) -> None:
        branch_ref = f"refs/heads/{BRANCH_PREFIX}{run_id}"
        for key, value in (("runid", run_id), ("base", base), ("source", source_key)):
            git.run(clone, "config", f"autopack.{key}", value)
        git.run(clone, "update-ref", branch_ref, base)
        git.run(clone, "symbolic-ref", "HEAD", branch_ref)
        # After --no-checkout the index is empty: a hard reset fills index and files from HEAD.
        git.run(clone, "reset", "-q", "--hard")

    @classmethod
    def _reopen(cls, path: Path, source: str, git: _Git) -> Workspace:
        workspace = cls._load(path, git)
        if workspace.source != _source_key(source):
            raise WorkspaceError(
                f"the workspace {path} of run {workspace.run_id} was cloned from "
                f"{workspace.source}, not from {source}"
            )
        root = Path(workspace.source)
        if not _is_url(workspace.source) and (root / ".git").exists():
            workspace.dirty_source = _dirty_paths(root, git)
        return workspace

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        base_env: Mapping[str, str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Workspace:
        """An existing workspace, e.g. to resume a run; the caller must own the run, since locks
        left by a killed git are removed."""
        return cls._load(path.absolute(), _Git(git_environment(base_env), timeout_s))

    @classmethod
    def _load(cls, path: Path, git: _Git) -> Workspace:
        if not (path / ".git").is_dir():
            raise WorkspaceError(f"{path} is not an Autopack workspace (no .git directory)")
        values = {}
        for key in ("runid", "base", "source"):
            result = git.run(path, "config", "--local", "--get", f"autopack.{key}", check=False)
            if result.returncode != 0:
                raise WorkspaceError(f"{path} is not an Autopack workspace (autopack.{key} unset)")
            values[key] = result.stdout.strip()
        workspace = cls(
            path=path,
            run_id=values["runid"],
            base_commit=values["base"],
            source=values["source"],
            git=git,
        )
        workspace._remove_stale_locks()
        head = git.run(path, "symbolic-ref", "-q", "HEAD", check=False).stdout.strip()
        if head != f"refs/heads/{workspace.branch}":
            raise WorkspaceError(f"the workspace {path} is not on its branch {workspace.branch}")
        return workspace

    def _remove_stale_locks(self) -> None:
        git_dir = self.path / ".git"
        for name in (*_STALE_LOCKS, f"refs/heads/{self.branch}.lock"):
            (git_dir / name).unlink(missing_ok=True)

    # --- reading ----------------------------------------------------------------------------

    def head(self) -> str:
        return self._git.out(self.path, "rev-parse", "--verify", "HEAD")

    def resolve(self, rev: str) -> str:
        """The full id of commit ``rev``, or a :class:`WorkspaceError` naming it."""
        commit = self._git.commit_or_none(self.path, rev)
        if commit is None:
            raise WorkspaceError(f"no commit {rev!r} in the workspace {self.path}")
        return commit

    def is_ancestor(self, ancestor: str, descendant: str = "HEAD") -> bool:
        """Whether ``ancestor`` is ``descendant`` or one of its ancestors."""
        result = self._git.run(
            self.path,
            "merge-base",
            "--is-ancestor",
            self.resolve(ancestor),
            self.resolve(descendant),
            check=False,
        )
        if result.returncode > 1:
            raise GitCommandError(
                f"git merge-base failed in {self.path}: {_last_line(result.stderr)}"
            )
        return result.returncode == 0

    def tracked_files(self, *, include_untracked: bool = False) -> list[str]:
        """Files in the index (at ``HEAD`` right after a commit or reset), sorted; with
        ``include_untracked``, also new files that git does not ignore."""
        extra = ("--others", "--exclude-standard") if include_untracked else ()
        return sorted(set(self._git.lines(self.path, "ls-files", "-z", "--cached", *extra)))

    def read_text(self, rel_path: str) -> str | None:
        """The working-tree file as UTF-8 text; None when it does not exist, is not a regular
        file, or is binary. Paths leaving the workspace or entering ``.git`` are refused."""
        target = self._inside(rel_path)
        try:
            data = target.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        if b"\0" in data:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def _inside(self, rel_path: str) -> Path:
        relative = PurePosixPath(rel_path)
        root = self.path.resolve()
        resolved = (root / relative).resolve()
        escapes = relative.is_absolute() or ".." in relative.parts or not relative.parts
        if escapes or not resolved.is_relative_to(root) or resolved.is_relative_to(root / ".git"):
            raise WorkspaceError(f"path {rel_path!r} is outside the workspace files")
        return resolved

    def diff(self, base: str, head: str | None = None) -> str:
        """Unified diff from ``base`` to ``head``; ``head`` None means the working tree as it is,
        new untracked files included (the index is left as it was)."""
        return self._git.run(self.path, "diff", *_DIFF_OPTIONS, *self._endpoints(base, head)).stdout

    def changed_paths(self, base: str, head: str | None = None) -> list[str]:
        """Paths added, modified or deleted from ``base`` to ``head`` (None: the working tree)."""
        args = ("diff", "--name-only", "-z", *_DIFF_OPTIONS, *self._endpoints(base, head))
        return sorted(self._git.lines(self.path, *args))

    def _endpoints(self, base: str, head: str | None) -> tuple[str, str, str]:
        end = self._full(head) if head is not None else self._working_tree()
        return self._full(base), end, "--"

    def _working_tree(self) -> str:
        """A tree object of the working tree as ``git add -A`` would stage it, built in a
        scratch copy of the index so that the real one is not touched."""
        with tempfile.TemporaryDirectory(prefix="autopack-index-") as scratch:
            index = Path(scratch) / "index"
            real_index = self.path / ".git" / "index"
            if real_index.exists():
                shutil.copyfile(real_index, index)
            env = {"GIT_INDEX_FILE": str(index)}
            self._git.run(self.path, "add", "-A", extra_env=env)
            return self._git.out(self.path, "write-tree", extra_env=env)

    def find_commit_with_trailer(self, key: str, value: str) -> str | None:
        """The newest commit since the base on this branch whose message has the trailer
        ``key: value`` (e.g. ``Autopack-Phase: P3``), or None."""
        if not _TRAILER_KEY.match(key):
            raise WorkspaceError(f"commit trailer key {key!r} must be letters, digits and '-'")
        fmt = f"--format=%H%x1f%(trailers:key={key},valueonly,separator=%x1f)"
        log = self._git.out(
            self.path, "log", "--no-show-signature", fmt, f"{self.base_commit}..HEAD", "--"
        )
        for line in log.splitlines():
            commit, *values = line.split("\x1f")
            if value.strip() in (item.strip() for item in values):
                return commit
        return None

    # --- writing ----------------------------------------------------------------------------

    def reset_hard(self, commit: str) -> None:
        """Back to ``commit`` exactly: the branch points there, and changed, untracked and
        ignored files are gone (a failed attempt, or a phase interrupted by a crash)."""
        # A full commit id needs no lookup (one git process less per attempt).
        target = commit if _FULL_SHA.match(commit) else self.resolve(commit)
        self._remove_stale_locks()
        self._git.run(self.path, "reset", "-q", "--hard", target)
        # -ff also removes nested repositories the attempt may have created.
        self._git.run(self.path, "clean", "-q", "-ffdx")

    def commit_all(
        self,
        message: str,
        *,
        author: str = DEFAULT_AUTHOR,
        trailers: Mapping[str, str] | None = None,
    ) -> str | None:
        """Stage every change (new, modified, deleted) and commit it on the run's branch; the new
        commit id, or None when nothing changed. No hook runs and nothing is signed."""
        if not message.strip():
            raise WorkspaceError("a commit message is required")
        name, email = _parse_identity(author)
        text = message.strip()
        if trailers:
            text = f"{text}\n\n{_format_trailers(trailers)}"
        self._git.run(self.path, "add", "-A")
        staged = self._git.run(self.path, "diff", "--cached", "--quiet", "HEAD", "--", check=False)
        if staged.returncode == 0:
            return None
        if staged.returncode != 1:
            raise GitCommandError(f"git diff failed in {self.path}: {_last_line(staged.stderr)}")
        return self._commit_index(text, name, email)

    def stage_all(self) -> None:
        """Stage the working tree as it is now (new, modified and deleted files)."""
        self._git.run(self.path, "add", "-A")

    def staged_diff(self, base: str) -> str:
        """Unified diff from ``base`` to what is staged: with :meth:`stage_all` and
        :meth:`commit_staged`, one attempt's change costs two git processes fewer than
        :meth:`diff` plus :meth:`commit_all`, and what the tests create later is not committed."""
        return self._git.run(
            self.path, "diff", "--cached", *_DIFF_OPTIONS, self._full(base), "--"
        ).stdout

    def commit_staged(
        self,
        message: str,
        *,
        author: str = DEFAULT_AUTHOR,
        trailers: Mapping[str, str] | None = None,
    ) -> str:
        """Commit exactly what is staged (which must not be empty) on the run's branch."""
        if not message.strip():
            raise WorkspaceError("a commit message is required")
        name, email = _parse_identity(author)
        text = message.strip()
        if trailers:
            text = f"{text}\n\n{_format_trailers(trailers)}"
        return self._commit_index(text, name, email)

    def _full(self, rev: str) -> str:
        return rev if _FULL_SHA.match(rev) else self.resolve(rev)

    def _commit_index(self, text: str, name: str, email: str) -> str:
        identity = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }
        self._git.run(
            self.path,
            "commit",
            "-q",
            "--no-verify",
            "--cleanup=whitespace",
            "-F",
            "-",
            stdin=f"{text}\n",
            extra_env=identity,
        )
        return self.head()

    def remove(self) -> None:
        """Delete the workspace directory (the run's other artifacts stay); no-op when gone."""
        for directory in (self.path, self.path.parent / _MERGE_DIRNAME):
            if directory.exists():
                shutil.rmtree(directory)

    # --- promotion (see promote) --------------------------------------------------------------

    def _fetch_target(self, source: _Source, target_ref: str) -> str | None:
        """The target branch's commit in the source, copied into this workspace; None when the
        source has no such branch."""
        listed = self._git.out(self.path, "ls-remote", "--", source.key, target_ref)
        if not any(line.split("\t")[-1] == target_ref for line in listed.splitlines()):
            return None
        self._git.run(
            self.path, "fetch", "-q", "--no-tags", "--", source.key, f"+{target_ref}:{_TARGET_REF}"
        )
        return self._git.out(self.path, "rev-parse", "--verify", _TARGET_REF)

    def _promotion_commit(self, current: str | None, target_branch: str) -> str:
        """A commit that contains this run's branch and descends from ``current``: the branch
        tip itself when that is a fast-forward, else a merge made in a scratch worktree."""
        tip = self._git.out(self.path, "rev-parse", "--verify", f"refs/heads/{self.branch}")
        if current is None or self.is_ancestor(current, tip):
            return tip
        if self.is_ancestor(tip, current):
            return current
        return self._merge(current, tip, target_branch)

    def _merge(self, onto: str, tip: str, target_branch: str) -> str:
        scratch = self.path.parent / _MERGE_DIRNAME
        self._discard_worktree(scratch)
        self._git.run(self.path, "worktree", "add", "-q", "--detach", str(scratch), onto)
        try:
            subject = f"Merge {self.branch} into {target_branch}"
            trailer = f"{RUN_TRAILER}: {self.run_id}"
            args = ("merge", "-q", "--no-ff", "--no-verify", "-m", subject, "-m", trailer, tip)
            merged = self._git.run(scratch, *args, check=False)
            if merged.returncode != 0:
                conflicts = self._git.lines(scratch, "diff", "--name-only", "-z", "--diff-filter=U")
                reason = (
                    f"the merge conflicts in {', '.join(conflicts)}"
                    if conflicts
                    else f"the merge failed ({_last_line(merged.stderr)})"
                )
                raise WorkspaceError(
                    f"cannot promote {self.branch} into {target_branch}: {reason}",
                    details={"conflicts": conflicts},
                )
            return self._git.out(scratch, "rev-parse", "--verify", "HEAD")
        finally:
            self._discard_worktree(scratch)

    def _discard_worktree(self, scratch: Path) -> None:
        if scratch.exists():
            self._git.run(self.path, "worktree", "remove", "--force", str(scratch), check=False)
            shutil.rmtree(scratch, ignore_errors=True)
        self._git.run(self.path, "worktree", "prune")


def _worktree_on_branch(root: Path, branch_ref: str, git: _Git) -> Path | None:
    """The working tree (main or linked) of the source that has ``branch_ref`` checked out."""
    worktree: Path | None = None
    for line in git.out(root, "worktree", "list", "--porcelain").splitlines():
        if line.startswith("worktree "):
            worktree = Path(line.removeprefix("worktree "))
        elif line == f"branch {branch_ref}":
            return worktree
    return None


def _publish_local(
    workspace: Workspace, root: Path, ref: str, old: str | None, new: str, git: _Git
) -> None:
    checked_out = _worktree_on_branch(root, ref, git)
    if checked_out is not None:
        dirty = _dirty_paths(checked_out, git)
        if dirty:
            shown = ", ".join(dirty[:5]) + (", ..." if len(dirty) > 5 else "")
            raise WorkspaceError(
                f"cannot promote into {ref.removeprefix('refs/heads/')}: it is checked out in "
                f"{checked_out} with uncommitted changes ({shown}); commit or stash them first",
                details={"dirty_paths": list(dirty)},
            )
    git.run(root, "fetch", "-q", "--no-tags", "--", str(workspace.path), _PROMOTE_REF)
    if checked_out is not None:
        git.run(checked_out, "merge", "-q", "--ff-only", "--no-verify", new)
        return
    message = f"autopack: promote run {workspace.run_id}"
    updated = git.run(root, "update-ref", "-m", message, ref, new, old or "", check=False)
    if updated.returncode != 0:
        raise WorkspaceError(
            f"cannot promote into {ref.removeprefix('refs/heads/')} of {root}: the branch "
            f"moved while promoting ({_last_line(updated.stderr)}); promote again"
        )


def promote(workspace: Workspace, source: str, target_branch: str) -> str:
    """Bring the run's branch into ``target_branch`` of the source repository and return the
    branch's new commit. This is the one operation that writes the user's repository.

    A fast-forward when the target has not moved since the run started, else a merge commit
    (made in the workspace, never in the user's tree). A target that does not exist is created.
    For a local source the commits are fetched into it and the branch is moved with a
    compare-and-swap; if the branch is checked out (in any worktree) its files are updated with
    ``git merge --ff-only``, and a dirty tree there is refused. For a URL the result is pushed
    (never forced). Merge conflicts are refused and nothing is written. Promoting twice is
    harmless: the second time nothing changes.
    """
    git = workspace._git
    check = git.run(workspace.path, "check-ref-format", "--branch", target_branch, check=False)
    if check.returncode != 0 or target_branch.startswith("-"):
        raise InvalidBranchError(f"{target_branch!r} is not a valid branch name")
    ref = f"refs/heads/{target_branch}"
    located = _locate_source(source, git)
    try:
        current = workspace._fetch_target(located, ref)
        new = workspace._promotion_commit(current, target_branch)
        if new == current:
            return new
        git.run(workspace.path, "update-ref", _PROMOTE_REF, new)
        if located.root is not None:
            _publish_local(workspace, located.root, ref, current, new, git)
        else:
            git.run(workspace.path, "push", "-q", "--no-verify", "--", located.key, f"{new}:{ref}")
        return new
    finally:
        for scratch_ref in (_PROMOTE_REF, _TARGET_REF):
            git.run(workspace.path, "update-ref", "-d", scratch_ref, check=False)
