"""Helpers of the worker tests: a PostgreSQL database of their own, a cassette for a small plan,
`autopack worker` processes, and readers of what the runs left (attempts, commits)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from autopack.db import migrate
from autopack.db.engine import create_db_engine, create_session_factory
from autopack.demo.record import ScriptedProvider
from autopack.events.models import Event
from autopack.executor.environment import build_environment
from autopack.executor.service import execute, submit
from autopack.llm.replay import CassetteWriter
from autopack.plans.models import Plan
from autopack.runs.models import Attempt, Phase, Run
from autopack.runs.states import RunState
from autopack.settings import Settings
from tests.conftest import create_pg_database, drop_pg_database, make_settings
from tests.executor.support import (
    GOOD_REPLY,
    git,
    make_plan,
    make_project,
    phase_spec,
    search_replace,
)

AUTOPACK = str(Path(sys.executable).parent / "autopack")
HEARTBEAT_SECONDS = 0.5
STALE_SECONDS = 3.0

# Two phases, each a real edit checked by the project's real tests.
DIV_REPLY = "Add div.\n\n" + search_replace(
    "calc.py",
    "def sub(a, b):\n    return a - b\n",
    "def sub(a, b):\n    return a - b\n\n\ndef div(a, b):\n    return a / b\n",
)


def small_plan(test_cmd: str) -> Plan:
    return make_plan(
        phase_spec("p1", scope={"test_cmd": test_cmd}),
        phase_spec("p2", description="Add div(a, b) to calc.py.", scope={"test_cmd": test_cmd}),
    )


def record_cassette(
    workdir: Path, plan: Plan, cassette: Path, replies: tuple[str, ...] = (GOOD_REPLY, DIV_REPLY)
) -> None:
    """Execute ``plan`` once in this process with the scripted ``replies``, recording each
    request and reply: the workers then replay them (each run of the plan asks exactly the
    same). ``plan`` runs against ``workdir / "project"``."""
    reply_files = []
    for number, reply in enumerate(replies):
        path = workdir / f"reply-{number}.md"
        path.write_text(reply, encoding="utf-8")
        reply_files.append(path)
    provider = ScriptedProvider(reply_files, CassetteWriter(cassette, mode="overwrite"))
    settings = make_settings(
        f"sqlite:///{workdir / 'record.db'}", workdir / "record-runs", memory_enabled=False
    )
    engine = create_db_engine(settings)
    migrate.upgrade(engine)
    try:
        sessions = create_session_factory(engine)
        env = build_environment(settings, sessions, provider=provider)
        run_id = submit(sessions, plan, str(workdir / "project"))
        final = execute(env, run_id)
    finally:
        engine.dispose()
    assert final is RunState.DONE_SUCCESS, final
    assert not provider.replies


@dataclass
class WorkerFarm:
    """A PostgreSQL database with the queue, a project, and `autopack worker` processes."""

    root: Path
    database_url: str
    plan: Plan
    cassette: Path
    engine: Engine = field(init=False)
    sessions: sessionmaker[Session] = field(init=False)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine = create_db_engine(self.settings())
        # Sessions that defer a job with each run, as the API's do with workers.
        self.sessions = create_session_factory(self.engine, enqueue_runs=True)

    @property
    def project(self) -> Path:
        return self.root / "project"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def settings(self) -> Settings:
        return make_settings(
            self.database_url,
            self.runs_dir,
            executor_backend="workers",
            memory_enabled=False,
            heartbeat_interval_seconds=HEARTBEAT_SECONDS,
            stale_heartbeat_seconds=STALE_SECONDS,
        )

    def worker_env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("AUTOPACK_") and key != "DATABASE_URL"
        }
        env.update(
            DATABASE_URL=self.database_url,
            AUTOPACK_RUNS_DIR=str(self.runs_dir),
            AUTOPACK_EXECUTOR_BACKEND="workers",
            AUTOPACK_REPLAY_CASSETTE=str(self.cassette),
            AUTOPACK_MEMORY_ENABLED="false",
            AUTOPACK_HEARTBEAT_INTERVAL_SECONDS=str(HEARTBEAT_SECONDS),
            AUTOPACK_STALE_HEARTBEAT_SECONDS=str(STALE_SECONDS),
            AUTOPACK_WORKER_SHUTDOWN_SECONDS="5",
            AUTOPACK_LOG_LEVEL="info",
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        return env

    def start_worker(self, concurrency: int = 2, **env: str) -> subprocess.Popen[bytes]:
        """An `autopack worker` subprocess; ``env``: more variables (settings) for it."""
        log = (self.root / f"worker-{len(self.workers)}.log").open("wb")
        process = subprocess.Popen(
            [AUTOPACK, "worker", "--concurrency", str(concurrency)],
            cwd=self.root,
            env={**self.worker_env(), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.root.glob("worker-*.log"))
        )

    def submit(self, count: int) -> list[str]:
        return [submit(self.sessions, self.plan, str(self.project)) for _ in range(count)]

    def states(self) -> Counter[str]:
        with self.sessions() as session:
            return Counter(state.value for state in session.scalars(select(Run.state)).all())

    def wait_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            # A worker the test killed (-9) or stopped (SIGTERM: 0) is expected to be gone.
            failed = [p.args for p in self.workers if p.poll() not in (None, 0, -9)]
            assert not failed, f"a worker failed: {failed}\n{self.logs()}"
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}: {self.states()}\n{self.logs()}")

    def wait_all_ended(self, timeout: float) -> None:
        def ended() -> bool:
            states = self.states()
            return sum(states.values()) > 0 and not (
                states[RunState.QUEUED.value] or states[RunState.RUNNING.value]
            )

        self.wait_until(ended, timeout, "every run to end")

    def stop(self, grace_seconds: float = 15) -> None:
        """SIGTERM to every worker, then SIGKILL to those still there after ``grace_seconds``."""
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for process in self.workers:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.engine.dispose()

    # --- what the runs left ------------------------------------------------------------------

    def attempts_per_phase(self) -> dict[tuple[str, str], list[str]]:
        """(run, phase) -> the outcomes of its attempts, in order."""
        with self.sessions() as session:
            rows = session.execute(
                select(Run.run_id, Phase.phase_id, Attempt.outcome)
                .join(Phase, Phase.run_pk == Run.id)
                .join(Attempt, Attempt.phase_pk == Phase.id)
                .order_by(Run.run_id, Phase.phase_id, Attempt.number)
            ).all()
        result: dict[tuple[str, str], list[str]] = {}
        for run_id, phase_id, outcome in rows:
            result.setdefault((run_id, phase_id), []).append(str(outcome))
        return result

    def commits_per_phase(self, run_id: str) -> Counter[str]:
        """Commits on the run's integration branch, counted by their Autopack-Phase trailer."""
        workspace = self.runs_dir / run_id / "workspace"
        trailers = git(
            workspace,
            "log",
            "--format=%(trailers:key=Autopack-Phase,valueonly)",
            f"autopack/{run_id}",
        )
        return Counter(line.strip() for line in trailers.splitlines() if line.strip())

    def events(self, run_id: str, kind: str) -> list[dict[str, Any]]:
        with self.sessions() as session:
            rows = session.scalars(
                select(Event.payload)
                .join(Run, Run.id == Event.run_pk)
                .where(Run.run_id == run_id, Event.type == kind)
                .order_by(Event.id)
            ).all()
        return [dict(row or {}) for row in rows]

    def phases_in(self, *states: str) -> list[tuple[str, str, str | None]]:
        with self.sessions() as session:
            rows = session.execute(
                select(Run.run_id, Phase.phase_id, Phase.claimed_by)
                .join(Phase, Phase.run_pk == Run.id)
                .where(Phase.state.in_(states))
            ).all()
        return [(r, p, c) for r, p, c in rows]


@contextmanager
def worker_farm(test_cmd: str, *, record: bool = True) -> Iterator[WorkerFarm]:
    """``record``: record the plan's model replies first (else the cassette is empty: for runs
    that are stopped before their first model call)."""
    url = create_pg_database("autopack_workers")
    with tempfile.TemporaryDirectory(prefix="autopack-workers-") as tmp:
        root = Path(tmp)
        plan = small_plan(test_cmd)
        make_project(root / "project")
        cassette = root / "cassette.jsonl"
        if record:
            record_cassette(root, plan, cassette)
        else:
            cassette.write_text("", encoding="utf-8")
        engine = create_db_engine(make_settings(url, root / "runs"))
        migrate.upgrade(engine)
        engine.dispose()
        farm = WorkerFarm(root, url, plan, cassette)
        try:
            yield farm
        finally:
            farm.stop()
            drop_pg_database(url)
