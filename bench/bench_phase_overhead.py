"""Benchmark: the executor's orchestration overhead per phase, against the raw git work.

A plan of N phases (default 20) runs against a tiny generated git repository with the replay
provider (the builder's replies recorded once, in the Anthropic wire format, by a scripted model
in an unmeasured warm-up run) and the test command ``true``. Each phase changes one file, by a
whole-file or a search/replace edit. The floor is the same sequence of git operations done raw
with ``subprocess`` on a separate clone, timed in the same process, in alternating rounds:
per phase ``git reset --hard`` + ``git clean -ffdx``, write the same file contents, ``bash -c
true``, ``git add -A``, ``git commit``, ``git rev-parse HEAD`` (and in the first phase the
baseline's ``git worktree add`` / ``true`` / ``git worktree remove``, which Autopack does once
per run). The figures are per-phase wall times of both, the median overhead (autopack - floor)
in ms and the ratio autopack / floor; the issue's target is a ratio of at most 2x. Timings are
reported, never asserted: the exit status is non-zero only when the benchmark cannot run.

    python bench/bench_phase_overhead.py                  # sqlite, then postgresql
    python bench/bench_phase_overhead.py --db sqlite --phases 40 --rounds 5

See ``bench/README.md`` for how to read the output. Results are also written as JSON to
``bench/results/phase_overhead-<db>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import inspect
import json
import math
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, cast

import psycopg
from bench_get_run import (  # bench/ is the script's directory
    DEFAULT_PG_URL,
    git_commit,
    percentile,
    positive,
    throwaway_postgres,
)
from sqlalchemy import select
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.orm import Session, sessionmaker

from autopack.db import migrate
from autopack.db.engine import create_db_engine, create_session_factory
from autopack.errors import AutopackError
from autopack.events import service as events_service
from autopack.events.models import Event
from autopack.executor import context as context_module
from autopack.executor import edits as edits_module
from autopack.executor import governance as governance_module
from autopack.executor import runner as runner_module
from autopack.executor import testrun as testrun_module
from autopack.executor import workspace as workspace_module
from autopack.executor.artifacts import RunArtifacts
from autopack.executor.environment import build_environment
from autopack.executor.service import execute, submit
from autopack.executor.workspace import Workspace, git_environment
from autopack.llm.pricing import prompt_tokens_upper_bound
from autopack.llm.provider import CallContext, Completion, CompletionRequest, Provider
from autopack.llm.replay import CassetteWriter, ReplayProvider
from autopack.llm.wire import build_response, parse_response
from autopack.plans.loader import validate_plan
from autopack.plans.models import Plan
from autopack.runs import execution as execution_module
from autopack.runs import states as states_module
from autopack.runs.models import Run
from autopack.settings import Settings

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

TARGET_RATIO = 2.0
TEST_CMD = "true"
PROJECT = "bench-overhead"
SHELL = next(
    (shell for shell in ("/bin/bash", "/usr/bin/bash", "/bin/sh") if os.access(shell, os.X_OK)),
    "/bin/sh",
)
_IDENTITY = {
    "GIT_AUTHOR_NAME": "Floor",
    "GIT_AUTHOR_EMAIL": "floor@localhost",
    "GIT_COMMITTER_NAME": "Floor",
    "GIT_COMMITTER_EMAIL": "floor@localhost",
}

Db = Literal["sqlite", "postgresql"]
DBS: tuple[Db, ...] = ("sqlite", "postgresql")


class BenchError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------
# the project and the plan


@dataclass(frozen=True)
class PhaseWork:
    """One phase: the file it changes, the builder's reply, and the file's content after it."""

    phase_id: str
    tier_id: str
    path: str
    edit: Literal["whole-file", "search-replace"]
    reply: str
    content: str


@dataclass(frozen=True)
class Script:
    files: dict[str, str]
    phases: list[PhaseWork]

    def plan(self, run_id: str) -> Plan:
        return validate_plan(
            {
                "project": PROJECT,
                "run": {
                    "run_id": run_id,
                    "goal": "Grow the generated modules, one function at a time.",
                },
                "tiers": [
                    {"tier_id": tier_id, "name": f"Tier {tier_id}"}
                    for tier_id in dict.fromkeys(work.tier_id for work in self.phases)
                ],
                "phases": [
                    {
                        "phase_id": work.phase_id,
                        "tier_id": work.tier_id,
                        "name": f"Add a function to {work.path}",
                        "description": f"Add the next function to {work.path}; nothing else.",
                        "task_category": "feature",
                        "complexity": "low",
                        "scope": {"paths": [work.path], "test_cmd": TEST_CMD},
                    }
                    for work in self.phases
                ],
            }
        )


def _function(name: str, value: int) -> str:
    return f"def {name}(x: int) -> int:\n    return x + {value}\n"


def make_script(phases: int, tiers: int, modules: int) -> Script:
    """A tiny project (``modules`` modules of one function each, a README) and ``phases`` phases,
    spread evenly over ``tiers`` tiers, each adding a function to one module: even phases by a
    search/replace edit, odd ones by rewriting the whole file."""
    files = {
        ".gitignore": "__pycache__/\n",
        "README.md": "# generated\n\nA project for `bench/bench_phase_overhead.py`.\n",
        "pkg/__init__.py": '"""Generated modules."""\n',
    }
    last: dict[str, str] = {}
    for m in range(modules):
        path = f"pkg/mod_{m}.py"
        last[path] = _function(f"base_{m}", m)
        files[path] = f'"""Module {m}."""\n\n\n{last[path]}'
    contents = dict(files)
    work: list[PhaseWork] = []
    per_tier = math.ceil(phases / tiers)
    for n in range(phases):
        path = f"pkg/mod_{n % modules}.py"
        new_function = _function(f"step_{n:03d}", n)
        before = contents[path]
        after = f"{before}\n\n{new_function}"
        if n % 2 == 0:
            edit: Literal["whole-file", "search-replace"] = "search-replace"
            block = (
                f"{path}\n<<<<<<< SEARCH\n{last[path]}=======\n"
                f"{last[path]}\n\n{new_function}>>>>>>> REPLACE\n"
            )
        else:
            edit = "whole-file"
            block = f"{path}\n<<<<<<< FILE\n{after}>>>>>>> FILE\n"
        contents[path] = after
        last[path] = new_function
        work.append(
            PhaseWork(
                phase_id=f"p{n + 1:03d}",
                tier_id=f"t{n // per_tier + 1}",
                path=path,
                edit=edit,
                reply=f"Adding step_{n:03d} to {path}.\n\n{block}",
                content=after,
            )
        )
    return Script(files=files, phases=work)


def _git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=dict(env) if env is not None else {**git_environment(os.environ), **_IDENTITY},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def make_project(path: Path, files: Mapping[str, str]) -> Path:
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    _git(path, "init", "-q", "-b", "main")
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "--no-verify", "-m", "generated project")
    return path


# --------------------------------------------------------------------------------------------
# the model


class ScriptedProvider:
    """Answers each builder call with its phase's prepared reply, as an Anthropic Messages
    response body, and records the exchange to a cassette (like ``autopack.demo.record``)."""

    name = "anthropic"

    def __init__(self, replies: Mapping[str, str], writer: CassetteWriter) -> None:
        self.replies = dict(replies)
        self.writer = writer

    def complete(self, request: CompletionRequest, *, context: CallContext) -> Completion:
        text = self.replies.get(context.phase_id or "")
        if text is None or context.role != "builder":
            raise BenchError(f"no scripted reply for {context.describe()}")
        body = build_response(
            "anthropic",
            text,
            model=request.model,
            input_tokens=max(1, prompt_tokens_upper_bound(request.messages) * 3 // 4),
            output_tokens=max(1, len(text.encode("utf-8")) // 4),
        )
        self.writer.append(request, body, provider="anthropic", note=context.phase_id)
        return parse_response("anthropic", body)


# --------------------------------------------------------------------------------------------
# autopack


@dataclass
class PhaseTimes:
    """The phases of one run: wall time of each, and how much of it was spent waiting on git
    commands and on the test command (the rest is in-process: database, ORM, Python)."""

    total_s: list[float] = field(default_factory=list)
    git_s: list[float] = field(default_factory=list)
    git_calls: list[int] = field(default_factory=list)
    test_s: list[float] = field(default_factory=list)


# Functions timed during every Autopack run: (owner, attribute, what it is). ``runner`` imported
# ``run_tests`` and ``_git`` into its own namespace, which is where its calls look them up.
_TIMED: tuple[tuple[Any, str, Literal["git", "test"]], ...] = (
    (workspace_module._Git, "run", "git"),
    (runner_module, "_git", "git"),
    (runner_module, "run_tests", "test"),
)


@contextlib.contextmanager
def timed_phases(profile: cProfile.Profile | None = None) -> Iterator[PhaseTimes]:
    """Times every ``PhaseExecutor.execute`` call (claim to commit, heartbeat thread joined), in
    call order, and within it the git and test commands, by wrapping those functions for the
    duration; with ``profile``, the phases also run under that profiler (and nothing else of the
    run does). The executor calls all of them from the thread that runs ``execute``."""
    times = PhaseTimes()
    spent = {"git": 0.0, "test": 0.0}
    calls = {"git": 0, "test": 0}
    originals: list[tuple[Any, str, Any]] = []

    def timing(function: Callable[..., Any], kind: str) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[kind] += time.perf_counter() - began
                calls[kind] += 1

        return wrapper

    phase_cls = runner_module.PhaseExecutor
    execute_phase = phase_cls.execute

    def phase(self: runner_module.PhaseExecutor) -> None:
        before = dict(spent), dict(calls)
        if profile is not None:
            profile.enable()
        began = time.perf_counter()
        try:
            execute_phase(self)
        finally:
            times.total_s.append(time.perf_counter() - began)
            if profile is not None:
                profile.disable()
            times.git_s.append(spent["git"] - before[0]["git"])
            times.git_calls.append(calls["git"] - before[1]["git"])
            times.test_s.append(spent["test"] - before[0]["test"])

    try:
        for owner, name, kind in _TIMED:
            original = getattr(owner, name)
            originals.append((owner, name, original))
            setattr(owner, name, timing(original, kind))
        originals.append((phase_cls, "execute", execute_phase))
        phase_cls.execute = phase  # type: ignore[method-assign]
        yield times
    finally:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)


@dataclass
class AutopackRun:
    run_id: str
    phase_s: list[float]
    times: PhaseTimes
    execute_s: float
    event_spans_s: list[float]
    tree: str


class Autopack:
    """Submits and executes runs of the script in this process, on one database."""

    def __init__(self, settings: Settings, script: Script, project: Path) -> None:
        self.settings = settings
        self.script = script
        self.project = project
        self.engine = create_db_engine(settings)
        migrate.upgrade(self.engine)
        self.sessions: sessionmaker[Session] = create_session_factory(self.engine)
        settings.runs_dir.mkdir(parents=True, exist_ok=True)
        self.cassette = settings.runs_dir / "bench.cassette.jsonl"
        self._runs = 0

    def close(self) -> None:
        self.engine.dispose()

    def _run(
        self, name: str, provider: Provider, profile: cProfile.Profile | None = None
    ) -> AutopackRun:
        self._runs += 1
        run_id = f"bench-{name}-{self._runs}"
        submit(self.sessions, self.script.plan(run_id), str(self.project))
        env = build_environment(self.settings, self.sessions, provider=provider)
        with timed_phases(profile) as times:
            began = time.perf_counter()
            outcome = execute(env, run_id).value
            execute_s = time.perf_counter() - began
        with self.sessions() as session:
            run = session.scalars(select(Run).where(Run.run_id == run_id)).one()
            if outcome != "DONE_SUCCESS":
                raise BenchError(f"run {run_id} ended {outcome}: {run.failure_reason}")
            spans = self._event_spans(session, run.id)
        workspace = self.settings.runs_dir.resolve() / run_id / "workspace"
        return AutopackRun(
            run_id=run_id,
            phase_s=times.total_s,
            times=times,
            execute_s=execute_s,
            event_spans_s=spans,
            tree=_git(workspace, "rev-parse", "HEAD^{tree}"),
        )

    @staticmethod
    def _event_spans(session: Session, run_pk: int) -> list[float]:
        """Per phase: from its ``QUEUED -> EXECUTING`` event to its ``-> COMPLETE`` event."""
        started: dict[str, datetime] = {}
        spans: list[float] = []
        events = session.scalars(
            select(Event)
            .where(Event.run_pk == run_pk, Event.type == "phase.state_changed")
            .order_by(Event.id)
        )
        for event in events:
            to, phase_id = event.payload.get("to"), event.phase_id or ""
            if event.payload.get("from") == "QUEUED" and to == "EXECUTING":
                started[phase_id] = event.created_at
            elif to == "COMPLETE" and phase_id in started:
                spans.append((event.created_at - started.pop(phase_id)).total_seconds())
        return spans

    def record(self) -> AutopackRun:
        """The warm-up run: the scripted model answers and the cassette is written."""
        replies = {work.phase_id: work.reply for work in self.script.phases}
        writer = CassetteWriter(self.cassette, mode="overwrite")
        return self._run("record", ScriptedProvider(replies, writer))

    def replay(self, profile: cProfile.Profile | None = None) -> AutopackRun:
        return self._run("replay", ReplayProvider(self.cassette), profile)


# --------------------------------------------------------------------------------------------
# the floor


@dataclass
class FloorRun:
    phase_s: list[float]
    tree: str


def floor_run(project: Path, dest: Path, script: Script) -> FloorRun:
    """The same git work as Autopack's phases, done raw on a fresh clone (the clone untimed)."""
    env = {**git_environment(os.environ), **_IDENTITY}
    _git(dest.parent, "clone", "-q", "--", str(project), dest.name, env=env)
    base = _git(dest, "rev-parse", "HEAD", env=env)
    last = base
    times: list[float] = []
    for index, work in enumerate(script.phases):
        began = time.perf_counter()
        _git(dest, "reset", "-q", "--hard", last, env=env)
        _git(dest, "clean", "-q", "-ffdx", env=env)
        if index == 0:  # the baseline, once per run
            checkout = dest.parent / f"{dest.name}-baseline"
            _git(dest, "worktree", "add", "--force", "--detach", str(checkout), base, env=env)
            subprocess.run([SHELL, "-c", TEST_CMD], cwd=checkout, check=True)
            _git(dest, "worktree", "remove", "--force", str(checkout), env=env)
        (dest / work.path).write_text(work.content, encoding="utf-8")
        subprocess.run([SHELL, "-c", TEST_CMD], cwd=dest, check=True)
        _git(dest, "add", "-A", env=env)
        _git(dest, "commit", "-q", "--no-verify", "-m", f"phase {work.phase_id}", env=env)
        last = _git(dest, "rev-parse", "HEAD", env=env)
        times.append(time.perf_counter() - began)
    return FloorRun(phase_s=times, tree=_git(dest, "rev-parse", "HEAD^{tree}", env=env))


# --------------------------------------------------------------------------------------------
# profile


# Self time of functions is put in one of these buckets (first match wins) by the function's
# file or, for built-ins, its name: an exclusive split of the profiled wall time.
_BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("spawn child (fork/exec)", ("fork_exec",)),
    # Popen.wait(timeout=...) polls waitpid(WNOHANG) with sleeps of 1, 2, 4... ms (CPython 3.11);
    # subprocess.run(timeout=...) goes through it once the child's pipes are closed.
    ("sleep in Popen.wait(timeout)", ("time.sleep",)),
    (
        "wait for child / thread",
        ("waitpid", "waitid", "_thread.lock", "select.poll", "posix.read", "selectors.py"),
    ),
    ("database driver", ("sqlite3", "psycopg")),
    ("sqlalchemy", ("sqlalchemy",)),
    ("pydantic", ("/pydantic", "pydantic_core")),
    ("autopack", ("/autopack/",)),
    ("subprocess/threading (py)", ("/subprocess.py", "/threading.py")),
    ("file system", ("posix.", "io.open", "_io.", "pathlib.py", "shutil.py", "tempfile.py")),
)


# Operations whose inclusive time (and number of calls) is reported per phase, found in the
# profile by their code object.
def _operations() -> tuple[tuple[str, Callable[..., Any]], ...]:
    return (
        ("git commands (_Git.run)", workspace_module._Git.run),
        ("  Workspace.reset_hard", Workspace.reset_hard),
        ("  Workspace.tracked_files", Workspace.tracked_files),
        ("  Workspace.diff", Workspace.diff),
        ("  Workspace.commit_all", Workspace.commit_all),
        ("  Workspace.resolve", Workspace.resolve),
        ("test command (run_tests)", testrun_module.run_tests),
        ("  baseline (first phase)", runner_module.RunExecutor.baseline),
        ("Session.commit", Session.commit),
        ("Session.flush", Session.flush),
        ("Session.execute", Session.execute),
        ("Session.get_one", Session.get_one),
        ("Session.refresh", Session.refresh),
        ("SQL statements (do_execute)", DefaultDialect.do_execute),
        ("check_still_running", runner_module.RunExecutor.check_still_running),
        ("transition_phase", states_module.transition_phase),
        ("append_event", events_service.append_event),
        ("start_attempt", execution_module.start_attempt),
        ("record_usage", execution_module.record_usage),
        ("finish_attempt", execution_module.finish_attempt),
        ("build_context", context_module.build_context),
        ("ReplayProvider.complete", ReplayProvider.complete),
        ("parse_reply", edits_module.parse_reply),
        ("apply_edits", edits_module.apply_edits),
        ("check_changes (governance)", governance_module.check_changes),
        ("write_changes", governance_module.write_changes),
        ("RunArtifacts.write", RunArtifacts.write),
        ("heartbeat thread start", runner_module._Heartbeat.__enter__),
        ("heartbeat thread stop", runner_module._Heartbeat.__exit__),
    )


def _code_key(function: Callable[..., Any]) -> tuple[str, int, str]:
    code = inspect.unwrap(function).__code__
    return code.co_filename, code.co_firstlineno, code.co_name


_StatKey = tuple[str, int, str]
_StatValue = tuple[int, int, float, float, Any]


def _entries(stats: pstats.Stats) -> dict[_StatKey, _StatValue]:
    return cast("dict[_StatKey, _StatValue]", stats.stats)  # type: ignore[attr-defined]


def _short(key: _StatKey) -> str:
    filename, line, name = key
    if filename == "~":
        return name
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({name})"


def _bucket(key: _StatKey) -> str:
    text = key[2] if key[0] == "~" else key[0]
    for label, needles in _BUCKETS:
        if any(needle in text for needle in needles):
            return label
    return "other"


def summarise_profile(profile: cProfile.Profile, phases: int, total_s: float) -> dict[str, Any]:
    entries = _entries(pstats.Stats(profile))
    per = 1000.0 / phases
    buckets: dict[str, float] = defaultdict(float)
    for key, (_, _, tottime, _, _) in entries.items():
        buckets[_bucket(key)] += tottime
    operations = []
    for label, function in _operations():
        found = entries.get(_code_key(function))
        if found is not None:
            operations.append(
                {
                    "operation": label,
                    "ms_per_phase": found[3] * per,
                    "calls_per_phase": found[1] / phases,
                }
            )
    spawned = sum(v[1] for k, v in entries.items() if "fork_exec" in k[2])
    by_self = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:15]
    ours = [item for item in entries.items() if "/autopack/" in item[0][0]]
    by_cumulative = sorted(ours, key=lambda item: item[1][3], reverse=True)[:25]
    return {
        "profiled_phases_s": total_s,
        "ms_per_phase": total_s * per,
        "child_processes_per_phase": spawned / phases,
        "self_time_ms_per_phase": dict(
            sorted(((k, v * per) for k, v in buckets.items()), key=lambda kv: -kv[1])
        ),
        "operations": operations,
        "top_self_time": [
            {"function": _short(k), "calls": v[1], "tottime_ms": v[2] * 1000} for k, v in by_self
        ],
        "top_autopack_cumulative": [
            {"function": _short(k), "calls": v[1], "cumtime_ms": v[3] * 1000}
            for k, v in by_cumulative
        ],
    }


def profile_run(autopack: Autopack) -> tuple[AutopackRun, cProfile.Profile]:
    """One more replayed run, its phases (only) under cProfile."""
    profile = cProfile.Profile()
    return autopack.replay(profile), profile


# --------------------------------------------------------------------------------------------
# one database


@dataclass
class Options:
    phases: int
    tiers: int
    modules: int
    rounds: int
    profile: bool
    pg_url: str


@dataclass
class Stats:
    samples: int
    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float


def stats_of(seconds: Sequence[float]) -> Stats:
    ordered = sorted(s * 1000 for s in seconds)
    return Stats(
        samples=len(ordered),
        median_ms=percentile(ordered, 50),
        p90_ms=percentile(ordered, 90),
        mean_ms=statistics.fmean(ordered) if ordered else math.nan,
        min_ms=ordered[0] if ordered else math.nan,
        max_ms=ordered[-1] if ordered else math.nan,
    )


def bench_db(db: Db, options: Options, workdir: Path) -> dict[str, Any]:
    script = make_script(options.phases, options.tiers, options.modules)
    project = make_project(workdir / "project", script.files)
    with contextlib.ExitStack() as stack:
        values: dict[str, Any] = {"runs_dir": workdir / "runs", "db_startup_timeout_seconds": 0}
        if db == "postgresql":
            values["database_url"] = stack.enter_context(throwaway_postgres(options.pg_url))
        settings = Settings(_env_file=None, **values)
        autopack = Autopack(settings, script, project)
        stack.callback(autopack.close)

        warmup = autopack.record()
        floor_run(project, workdir / "floor-warmup", script)
        autopack_runs: list[AutopackRun] = []
        floor_runs: list[FloorRun] = []
        # ABBA order (floor, autopack, autopack, floor, ...) so that drift weighs on both alike.
        for r in range(options.rounds):
            for which in ("floor", "autopack") if r % 2 == 0 else ("autopack", "floor"):
                if which == "floor":
                    floor_runs.append(floor_run(project, workdir / f"floor-{r}", script))
                else:
                    autopack_runs.append(autopack.replay())
        profile: dict[str, Any] | None = None
        if options.profile:
            profiled, profiler = profile_run(autopack)
            profile = summarise_profile(profiler, options.phases, sum(profiled.phase_s))

    trees = {run.tree for run in [warmup, *autopack_runs]} | {run.tree for run in floor_runs}
    if len(trees) != 1:
        raise BenchError(f"Autopack and the floor did not end on the same tree: {sorted(trees)}")

    def everything(runs: Sequence[AutopackRun | FloorRun]) -> list[float]:
        return [s for run in runs for s in run.phase_s]

    def firsts(runs: Sequence[AutopackRun | FloorRun]) -> list[float]:
        return [run.phase_s[0] for run in runs]

    def rest(runs: Sequence[AutopackRun | FloorRun]) -> list[float]:
        return [s for run in runs for s in run.phase_s[1:]]

    ap, fl = stats_of(everything(autopack_runs)), stats_of(everything(floor_runs))
    ap_rest, fl_rest = stats_of(rest(autopack_runs)), stats_of(rest(floor_runs))
    ap_first, fl_first = stats_of(firsts(autopack_runs)), stats_of(firsts(floor_runs))
    per_run_fixed = [run.execute_s - sum(run.phase_s) for run in autopack_runs]
    split = [run.times for run in autopack_runs]
    git_ms = stats_of([s for t in split for s in t.git_s]).median_ms
    test_ms = stats_of([s for t in split for s in t.test_s]).median_ms
    in_process = [
        total - git - test
        for t in split
        for total, git, test in zip(t.total_s, t.git_s, t.test_s, strict=True)
    ]
    ratio = ap.median_ms / fl.median_ms
    return {
        "benchmark": "phase_overhead",
        "db": db,
        "phases": options.phases,
        "tiers": options.tiers,
        "modules": options.modules,
        "rounds": options.rounds,
        "test_cmd": TEST_CMD,
        "edits": {
            "search-replace": sum(w.edit == "search-replace" for w in script.phases),
            "whole-file": sum(w.edit == "whole-file" for w in script.phases),
        },
        "autopack": asdict(ap),
        "floor": asdict(fl),
        "overhead_median_ms": ap.median_ms - fl.median_ms,
        "overhead_p90_ms": ap.p90_ms - fl.p90_ms,
        "ratio": {"median": ratio, "p90": ap.p90_ms / fl.p90_ms},
        "without_first_phase": {
            "autopack": asdict(ap_rest),
            "floor": asdict(fl_rest),
            "ratio_median": ap_rest.median_ms / fl_rest.median_ms,
        },
        "first_phase": {
            "note": "includes the once-per-run baseline (git worktree add, true, remove)",
            "autopack": asdict(ap_first),
            "floor": asdict(fl_first),
        },
        "autopack_events_span": asdict(
            stats_of([s for run in autopack_runs for s in run.event_spans_s])
        ),
        "autopack_per_run_fixed_ms": stats_of(per_run_fixed).median_ms,
        "autopack_split_median": {
            "git_ms": git_ms,
            "git_commands": statistics.median(c for t in split for c in t.git_calls),
            "test_command_ms": test_ms,
            "in_process_ms": stats_of(in_process).median_ms,
        },
        "rounds_median_ms": {
            "autopack": [stats_of(run.phase_s).median_ms for run in autopack_runs],
            "floor": [stats_of(run.phase_s).median_ms for run in floor_runs],
        },
        "warmup_autopack_median_ms": stats_of(warmup.phase_s).median_ms,
        "target_ratio": TARGET_RATIO,
        "target_met": ratio <= TARGET_RATIO,
        "profile": profile,
        "environment": environment(),
    }


# --------------------------------------------------------------------------------------------
# reporting


def environment() -> dict[str, Any]:
    versions: dict[str, str] = {}
    for package in ("autopack", "sqlalchemy", "pydantic"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    versions["psycopg"] = psycopg.__version__
    git = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "git": git.stdout.strip(),
        "packages": versions,
    }


def render(result: dict[str, Any]) -> str:
    edits = result["edits"]
    lines = [
        f"phase overhead  db={result['db']}  {result['phases']} phases in {result['tiers']} "
        f"tier(s)  {result['rounds']} rounds  test_cmd={result['test_cmd']!r}  edits "
        f"{edits['search-replace']} search/replace + {edits['whole-file']} whole-file",
        f"  {'per phase':<22} {'median ms':>9} {'p90 ms':>8} {'mean ms':>8} {'min ms':>8} "
        f"{'max ms':>8} {'n':>4}",
    ]
    rows = (
        ("floor (raw git)", result["floor"]),
        ("autopack", result["autopack"]),
        ("autopack (events)", result["autopack_events_span"]),
        ("floor, phase 1", result["first_phase"]["floor"]),
        ("autopack, phase 1", result["first_phase"]["autopack"]),
    )
    for name, s in rows:
        lines.append(
            f"  {name:<22} {s['median_ms']:>9.2f} {s['p90_ms']:>8.2f} {s['mean_ms']:>8.2f} "
            f"{s['min_ms']:>8.2f} {s['max_ms']:>8.2f} {s['samples']:>4}"
        )
    verdict = "met" if result["target_met"] else "NOT met"
    ratio = result["ratio"]
    lines.append(
        f"  overhead (autopack - floor): median {result['overhead_median_ms']:.2f} ms  "
        f"p90 {result['overhead_p90_ms']:.2f} ms;  per-run fixed cost (clone, run "
        f"transitions, summary) {result['autopack_per_run_fixed_ms']:.1f} ms"
    )
    lines.append(
        f"  ratio autopack/floor: median {ratio['median']:.2f}x  p90 {ratio['p90']:.2f}x  "
        f"(without phase 1: {result['without_first_phase']['ratio_median']:.2f}x)  "
        f"(target <= {result['target_ratio']:g}x: {verdict})"
    )
    split = result["autopack_split_median"]
    lines.append(
        f"  autopack per phase, medians: git {split['git_ms']:.2f} ms in "
        f"{split['git_commands']:g} commands, test command {split['test_command_ms']:.2f} ms, "
        f"in-process (database, ORM, Python) {split['in_process_ms']:.2f} ms"
    )
    profile = result.get("profile")
    if profile:
        lines.append(
            f"  profile (one more run, its phases under cProfile): {profile['ms_per_phase']:.1f} "
            f"ms/phase, {profile['child_processes_per_phase']:.1f} child processes/phase"
        )
        lines.append("    self time by kind, ms/phase:")
        for kind, ms in profile["self_time_ms_per_phase"].items():
            lines.append(f"      {kind:<28} {ms:>7.2f}")
        lines.append("    operations (inclusive), ms/phase  calls/phase:")
        for op in profile["operations"]:
            lines.append(
                f"      {op['operation']:<34} {op['ms_per_phase']:>7.2f} "
                f"{op['calls_per_phase']:>7.2f}"
            )
    return "\n".join(lines)


def write_result(result: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"phase_overhead-{result['db']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# CLI


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Autopack's orchestration time per phase (replay provider, test command "
        "`true`) against the raw git work of the same phases, timed in the same run.",
    )
    parser.add_argument(
        "--db",
        choices=[*DBS, "both"],
        default="both",
        help="database behind Autopack (default: both, one after the other)",
    )
    parser.add_argument("--phases", type=positive, default=20, help="phases in the plan")
    parser.add_argument("--tiers", type=positive, default=2, help="tiers the phases fill")
    parser.add_argument(
        "--modules", type=positive, default=4, help="generated modules the phases edit in turn"
    )
    parser.add_argument(
        "--rounds",
        type=positive,
        default=4,
        help="measured runs of each (Autopack, floor), in ABBA order",
    )
    parser.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="skip the extra run under cProfile that gives the breakdown",
    )
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help="admin URL of a PostgreSQL server; a throwaway database is created next to it",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = Options(
        phases=args.phases,
        tiers=min(args.tiers, args.phases),
        modules=args.modules,
        rounds=args.rounds,
        profile=args.profile,
        pg_url=args.pg_url,
    )
    dbs: tuple[Db, ...] = DBS if args.db == "both" else (cast(Db, args.db),)
    failed = False
    for db in dbs:
        with tempfile.TemporaryDirectory(prefix=f"autopack-bench-{db}-") as tmp:
            try:
                result = bench_db(db, options, Path(tmp))
            except (BenchError, AutopackError, psycopg.Error, subprocess.CalledProcessError) as exc:
                print(f"db={db}: benchmark could not run: {exc}", file=sys.stderr)
                failed = True
                continue
        print(render(result))
        print(f"  -> {write_result(result).relative_to(REPO_ROOT)}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
