"""Run jobs: the wake-ups that tell a worker to execute a run.

The database's run state is the source of truth; a job only says "look at this run". One job is
deferred in the same transaction as the state change that makes a run runnable (its creation, or
a move back to QUEUED), so a rolled-back change leaves no job and a committed one always has
one. Jobs carry the lock ``run:<run_id>``: procrastinate starts a job only when no other job with
its lock is running, so one run is executed by one worker at a time, while different runs go to
different workers. A job that is lost anyway (deleted, or its worker died) is made good by the
reconciler (:mod:`autopack.workers.reconciler`).

Only sessions from a factory made with ``enqueue_runs=True`` defer jobs
(:func:`autopack.db.engine.create_session_factory`; the hook is ``runs.states.wake_run``), which
the API and the CLI do when ``AUTOPACK_EXECUTOR_BACKEND=workers``. Everything else (SQLite, the
in-process executor, the demo) never touches procrastinate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from procrastinate import SyncPsycopgConnector
from procrastinate.jobs import Job
from procrastinate.manager import JobManager
from sqlalchemy import text
from sqlalchemy.orm import Session

RUN_TASK = "autopack.execute_run"
RUN_QUEUE = "runs"
_LOCK_PREFIX = "run:"

# Defers through the caller's own connection only; never opened, so it holds no pool. It is
# separate from the worker's App, whose async connector refuses a sync connection.
_DEFERRER = JobManager(SyncPsycopgConnector())


def run_lock(run_id: str) -> str:
    return f"{_LOCK_PREFIX}{run_id}"


def enqueue_run(session: Session, run_id: str) -> int:
    """Defer a job for ``run_id`` on ``session``'s connection (PostgreSQL through psycopg 3),
    inside its open transaction; returns the job's id."""
    raw: Any = session.connection().connection.driver_connection
    job = _DEFERRER.defer_job(
        Job(
            id=None,
            queue=RUN_QUEUE,
            lock=run_lock(run_id),
            queueing_lock=None,
            task_name=RUN_TASK,
            task_kwargs={"run_id": run_id},
        ),
        connection=raw,
    )
    assert job.id is not None
    return job.id


def runs_with_live_jobs(session: Session) -> set[str]:
    """Runs that have a job waiting or running: those need no new one."""
    locks = session.scalars(
        text(
            "SELECT DISTINCT lock FROM procrastinate_jobs "
            "WHERE queue_name = :queue AND status IN ('todo', 'doing') AND lock LIKE :prefix"
        ),
        {"queue": RUN_QUEUE, "prefix": f"{_LOCK_PREFIX}%"},
    )
    return {lock.removeprefix(_LOCK_PREFIX) for lock in locks}


@dataclass(frozen=True)
class QueueStatus:
    workers: int  # worker processes that proved they are alive within the stale time
    waiting: int  # run jobs not started yet
    running: int  # run jobs being executed


def queue_status(session: Session, stale_seconds: float) -> QueueStatus:
    workers = session.scalar(
        text(
            "SELECT count(*) FROM procrastinate_workers "
            "WHERE last_heartbeat >= now() - make_interval(secs => :stale)"
        ),
        {"stale": stale_seconds},
    )
    rows = session.execute(
        text(
            "SELECT status::text, count(*) FROM procrastinate_jobs "
            "WHERE queue_name = :queue AND status IN ('todo', 'doing') GROUP BY status"
        ),
        {"queue": RUN_QUEUE},
    ).all()
    counts = {str(status): int(count) for status, count in rows}
    return QueueStatus(
        workers=int(workers or 0),
        waiting=int(counts.get("todo", 0)),
        running=int(counts.get("doing", 0)),
    )
