"""Crash safety: `kill -9` the executor at several points of the demo run, resume it, and get the
outcome the run would have had — every phase complete, each committed exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autopack.demo import CASSETTE_FILE

AUTOPACK = str(Path(sys.executable).parent / "autopack")


def _env(runs_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AUTOPACK_") and key != "DATABASE_URL"
    }
    env.update(
        AUTOPACK_RUNS_DIR=str(runs_dir),
        AUTOPACK_HEARTBEAT_INTERVAL_SECONDS="0.2",
        AUTOPACK_STALE_HEARTBEAT_SECONDS="1",
        AUTOPACK_REPLAY_CASSETTE=str(CASSETTE_FILE),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def _events(db: Path) -> list[tuple[str, str | None, str]]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db, timeout=1) as connection:
            return list(
                connection.execute("SELECT type, phase_id, payload FROM events ORDER BY id")
            )
    except sqlite3.OperationalError:
        return []


def _run_id(db: Path) -> str:
    with sqlite3.connect(db) as connection:
        return str(connection.execute("SELECT run_id FROM runs").fetchone()[0])


def _git(path: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=path, capture_output=True, text=True, check=True
    ).stdout


# (event type, phase, text in the payload): kill -9 as soon as this event is written.
KILL_POINTS = {
    "mid-builder-call": ("attempt.started", "frequencies", '"attempt": 1'),
    "tests-running": ("phase.state_changed", "input-limit", '"to": "CI_RUNNING"'),
    "between-phases": ("phase.state_changed", "slugify", '"to": "COMPLETE"'),
    "auditor-requested": ("audit.requested", "input-limit", ""),
    "retry-after-failure": ("issue.recorded", "frequencies", ""),
}


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_killed_executor_resumes_to_the_same_outcome(point: str, tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    db = runs_dir / "autopack.db"
    kind, phase, fragment = KILL_POINTS[point]
    process = subprocess.Popen(
        [AUTOPACK, "demo"],
        cwd=tmp_path,
        env=_env(runs_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    killed = False
    while time.monotonic() < deadline and process.poll() is None:
        if any(
            event_type == kind and event_phase == phase and fragment in payload
            for event_type, event_phase, payload in _events(db)
        ):
            os.killpg(process.pid, signal.SIGKILL)  # the executor and its test processes
            killed = True
            break
        time.sleep(0.01)
    process.wait(timeout=30)
    assert killed, f"the demo ended before reaching {point}: {process.stderr.read()!r}"  # type: ignore[union-attr]
    run_id = _run_id(db)

    time.sleep(1.5)  # let the dead executor's heartbeat go stale
    resumed = subprocess.run(
        [AUTOPACK, "runs", "resume", run_id],
        cwd=tmp_path,
        env=_env(runs_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    with sqlite3.connect(db) as connection:
        state, head = connection.execute("SELECT state, head_commit FROM runs").fetchone()
        phases = dict(connection.execute("SELECT phase_id, state FROM phases"))
        successes = dict(
            connection.execute(
                "SELECT p.phase_id, count(*) FROM attempts a JOIN phases p ON a.phase_pk = p.id "
                "WHERE a.outcome = 'success' GROUP BY p.phase_id"
            )
        )
        failed_tests = connection.execute(
            "SELECT count(*) FROM attempts a JOIN phases p ON a.phase_pk = p.id "
            "WHERE p.phase_id = 'frequencies' AND a.outcome = 'tests_failed'"
        ).fetchone()[0]
    assert state == "DONE_SUCCESS"
    assert set(phases.values()) == {"COMPLETE"}
    assert successes == {"slugify": 1, "frequencies": 1, "input-limit": 1, "readme": 1}
    # The retry story is the one the uninterrupted run tells: one failure, then the fix.
    assert failed_tests == 1

    workspace = runs_dir / run_id / "workspace"
    trailers = _git(
        workspace, "log", "--format=%(trailers:key=Autopack-Phase,valueonly)", "--no-merges"
    ).split()
    assert sorted(trailers) == ["frequencies", "input-limit", "readme", "slugify"]  # no duplicates
    assert _git(workspace, "rev-parse", "HEAD").strip() == head
    assert _git(workspace, "status", "--porcelain") == ""
