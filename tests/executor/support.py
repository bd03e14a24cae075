"""Helpers of the executor's integration tests: tiny real git projects, plans, a scripted model
that speaks the real wire format, and readers of what a run left in the database.

Everything is real (git, the test command's subprocess, the database) except the model: the
``ScriptedProvider`` answers each call with the next prepared reply, serialised to an Anthropic
Messages response body by ``build_response`` and parsed back by ``parse_response``, exactly as a
live call would be.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from autopack.events.models import Event
from autopack.executor.environment import build_environment
from autopack.executor.runner import ExecutorEnvironment
from autopack.executor.service import execute, submit
from autopack.issues.models import Issue
from autopack.llm.pricing import prompt_tokens_upper_bound
from autopack.llm.provider import CallContext, Completion, CompletionRequest, Provider
from autopack.llm.wire import build_response, parse_response
from autopack.plans.loader import validate_plan
from autopack.plans.models import Plan
from autopack.runs.models import Attempt, Phase, Run
from autopack.runs.states import RunState
from autopack.settings import Settings
from autopack.usage.models import LlmCall

VENV_BIN = Path(sys.executable).parent
TEST_CMD = "python -m pytest -q"

# --- git and tiny projects ----------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    """The test's own git: no user or system config and a fixed identity."""
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(cwd),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        # Read-only for real: `git status` must not refresh the index of the repository it checks.
        "GIT_OPTIONAL_LOCKS": "0",
    }
    identity = ("-c", "user.name=Tester", "-c", "user.email=tester@example.com")
    result = subprocess.run(
        ["git", *identity, "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


CALC_PY = """\
def add(a, b):
    return a + b


def mul(a, b):
    return a * b
"""

TEST_CALC_PY = """\
from calc import add, mul


def test_add():
    assert add(2, 3) == 5


def test_mul():
    assert mul(2, 3) == 6
"""

PROJECT_FILES: dict[str, str] = {
    ".gitignore": "__pycache__/\n.pytest_cache/\n",
    "pytest.ini": "[pytest]\naddopts = -p no:cacheprovider\ntestpaths = tests\n",
    "README.md": "# calc\n",
    "calc.py": CALC_PY,
    "tests/test_calc.py": TEST_CALC_PY,
}


def make_project(path: Path, files: Mapping[str, str] | None = None) -> Path:
    """A git repository at ``path`` holding ``files`` (the calc project by default), committed
    once on ``main``: two passing tests under ``python -m pytest -q``."""
    path.mkdir(parents=True)
    for name, text in (files or PROJECT_FILES).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "calc: add and mul")
    return path


def venv_first_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test commands say ``python``: make it this venv's, which has pytest."""
    monkeypatch.setenv("PATH", f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}")


def repo_state(repo: Path) -> dict[str, Any]:
    """Everything a run must leave alone in a user's checkout: every byte of the working tree and
    of ``.git`` (the index included), plus git's view of HEAD, refs, stash and status."""
    files = {
        str(p.relative_to(repo)): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }
    return {
        "files": files,
        "index": (repo / ".git" / "index").read_bytes(),
        "head": git(repo, "rev-parse", "HEAD"),
        "head_ref": git(repo, "symbolic-ref", "HEAD"),
        "refs": git(repo, "for-each-ref"),
        "stash": git(repo, "stash", "list"),
        "status": git(repo, "status", "--porcelain=v1", "--untracked-files=all"),
    }


# --- builder replies ----------------------------------------------------------------------------


def search_replace(path: str, search: str, replace: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def whole_file(path: str, content: str) -> str:
    return f"{path}\n<<<<<<< FILE\n{content}>>>>>>> FILE\n"


# A correct change to calc.py with a test for it (scope: calc.py, tests/test_calc.py).
GOOD_REPLY = "Add sub.\n\n" + search_replace(
    "calc.py",
    "def mul(a, b):\n    return a * b\n",
    "def mul(a, b):\n    return a * b\n\n\ndef sub(a, b):\n    return a - b\n",
)
# Breaks the existing test_add.
BREAKING_REPLY = search_replace(
    "calc.py", "def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a - b\n"
)
APPROVE = '{"verdict": "approve", "summary": "Looks right.", "issues": []}'


# --- the scripted model -------------------------------------------------------------------------


@dataclass
class Call:
    request: CompletionRequest
    context: CallContext


Reply = str | Callable[[CompletionRequest, CallContext], str]


class ScriptedProvider:
    """Answers calls with prepared replies, in order, through the Anthropic wire format, and
    records every request it gets.

    ``usage``: ``"plausible"`` reports about 3/4 of the prompt's byte bound as input tokens and a
    quarter of the reply's bytes as output (like ``autopack.demo.record``); ``"worst"`` reports the
    worst case the budget reserved: the prompt's full upper bound and the whole ``max_tokens``;
    ``"cached"`` is plausible with half the prompt read from the provider's cache and 100 tokens
    written to it.
    """

    name = "anthropic"

    def __init__(self, replies: Iterable[Reply] = (), *, usage: str = "plausible") -> None:
        self.replies: list[Reply] = list(replies)
        self.usage = usage
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    @property
    def requests(self) -> list[CompletionRequest]:
        return [call.request for call in self.calls]

    def complete(self, request: CompletionRequest, *, context: CallContext) -> Completion:
        with self._lock:
            self.calls.append(Call(request, context))
            if not self.replies:
                raise AssertionError(f"the script has no reply left for {context.describe()}")
            reply = self.replies.pop(0)
        text = reply(request, context) if callable(reply) else reply
        if self.usage == "worst":
            input_tokens = prompt_tokens_upper_bound(request.messages)
            output_tokens = request.max_tokens
        else:
            input_tokens = max(1, prompt_tokens_upper_bound(request.messages) * 3 // 4)
            output_tokens = max(1, len(text.encode("utf-8")) // 4)
        cache_read = cache_write = 0
        if self.usage == "cached":
            cache_read, cache_write = input_tokens // 2, 100
            input_tokens -= cache_read + cache_write
        body = build_response(
            "anthropic",
            text,
            model=request.model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
        )
        return parse_response("anthropic", body)


def prompt_text(request: CompletionRequest) -> str:
    return "\n".join(message.content for message in request.messages)


# --- plans and runs -----------------------------------------------------------------------------


def phase_spec(phase_id: str = "p1", **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "phase_id": phase_id,
        "tier_id": "t1",
        "name": f"Phase {phase_id}",
        "description": "Add sub(a, b) to calc.py.",
        "task_category": "feature",
        "complexity": "low",
        "scope": {"paths": ["calc.py", "tests/test_calc.py"], "test_cmd": TEST_CMD},
    }
    scope = overrides.pop("scope", None)
    spec.update(overrides)
    if scope is not None:
        spec["scope"] = {**spec["scope"], **scope}
    return spec


def make_plan(
    *phases: dict[str, Any], run: Mapping[str, Any] | None = None, project: str = "calc"
) -> Plan:
    return validate_plan(
        {
            "project": project,
            "run": {"goal": "grow calc", **(run or {})},
            "tiers": [{"tier_id": "t1", "name": "Tier one"}],
            "phases": list(phases) or [phase_spec()],
        }
    )


@dataclass
class Harness:
    """One test's executor: its settings and database, and the scripted model."""

    settings: Settings
    sessions: sessionmaker[Session]
    provider: Provider
    env: ExecutorEnvironment = field(init=False)

    def __post_init__(self) -> None:
        self.env = build_environment(self.settings, self.sessions, provider=self.provider)

    def submit(self, plan: Plan, repo: Path | str) -> str:
        return submit(self.sessions, plan, str(repo))

    def run(self, plan: Plan, repo: Path | str) -> tuple[str, RunState]:
        run_id = self.submit(plan, repo)
        return run_id, execute(self.env, run_id)


@dataclass
class RunRecord:
    """What the database holds about one run, detached from any session."""

    run: dict[str, Any]
    phases: dict[str, dict[str, Any]]
    attempts: dict[str, list[dict[str, Any]]]
    llm_calls: list[dict[str, Any]]
    issues: list[dict[str, Any]]
    events: list[dict[str, Any]]

    def phase(self, phase_id: str = "p1") -> dict[str, Any]:
        return self.phases[phase_id]

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == kind]


def _columns(row: Any) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


def load_record(sessions: sessionmaker[Session], run_id: str) -> RunRecord:
    with sessions() as session:
        run = session.scalars(select(Run).where(Run.run_id == run_id)).one()
        phases = session.scalars(
            select(Phase).where(Phase.run_pk == run.id).order_by(Phase.phase_index)
        ).all()
        attempts: dict[str, list[dict[str, Any]]] = {}
        for phase in phases:
            rows = session.scalars(
                select(Attempt).where(Attempt.phase_pk == phase.id).order_by(Attempt.number)
            ).all()
            attempts[phase.phase_id] = [_columns(row) for row in rows]
        calls = session.scalars(
            select(LlmCall).where(LlmCall.run_pk == run.id).order_by(LlmCall.id)
        ).all()
        issues = session.scalars(
            select(Issue).where(Issue.project_pk == run.project_pk).order_by(Issue.id)
        ).all()
        events = session.scalars(
            select(Event).where(Event.run_pk == run.id).order_by(Event.id)
        ).all()
        return RunRecord(
            run=_columns(run),
            phases={phase.phase_id: _columns(phase) for phase in phases},
            attempts=attempts,
            llm_calls=[_columns(row) for row in calls],
            issues=[_columns(row) for row in issues],
            events=[_columns(row) for row in events],
        )


def workspace_of(settings: Settings, run_id: str) -> Path:
    return settings.runs_dir.resolve() / run_id / "workspace"


def attempt_dir(settings: Settings, run_id: str, phase_id: str, number: int) -> Path:
    return settings.runs_dir.resolve() / run_id / "phases" / phase_id / f"attempt-{number}"


def process_alive(pid: int) -> bool:
    """True when ``pid`` is a live process (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def live_group_members(pgid: int) -> list[int]:
    """The live (non-zombie) processes of process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members
