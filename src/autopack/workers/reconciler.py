"""Making good what a lost job would have done, from the database's run state.

Every worker process runs :func:`reconcile_forever` beside its procrastinate worker. Each tick:

1. Jobs left ``doing`` by a worker whose heartbeat stopped (killed, its machine gone) are put back
   to ``todo`` (procrastinate does not do this by itself). They hold their run's lock until then.
2. Runnable runs with no job waiting or running get one: QUEUED runs, and RUNNING runs whose
   executor's heartbeat is stale. Jobs are deferred in the same transaction as the state change,
   so this finds only what was lost afterwards (a job deleted by hand, a job that ended while
   another executor still held the run).
3. Approvals past their timeout are decided (the in-process executor's loop does this in the
   embedded mode), which queues their runs again.

Step 2 and 3 run under a transaction-level advisory lock, so one worker does them per tick.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from procrastinate.manager import JobManager
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from autopack.approvals.service import expire_due
from autopack.runs import execution
from autopack.settings import Settings
from autopack.workers.queue import RUN_QUEUE, enqueue_run, runs_with_live_jobs

logger = logging.getLogger(__name__)

RECONCILE_LOCK_KEY = 0x4150_5243  # "APRC"


@dataclass(frozen=True)
class Reconciled:
    retried_jobs: list[int]
    enqueued_runs: list[str]


async def reconcile_forever(
    manager: JobManager, sessions: sessionmaker[Session], settings: Settings
) -> None:
    interval = settings.heartbeat_interval_seconds
    while True:
        try:
            done = await reconcile_once(manager, sessions, settings)
            if done.retried_jobs or done.enqueued_runs:
                logger.info(
                    "reconciled: jobs retried %s, runs enqueued %s",
                    done.retried_jobs,
                    done.enqueued_runs,
                )
        except Exception:  # the database may be away; the next tick tries again
            logger.warning("reconciling failed", exc_info=True)
        await asyncio.sleep(interval)


async def reconcile_once(
    manager: JobManager, sessions: sessionmaker[Session], settings: Settings
) -> Reconciled:
    retried: list[int] = []
    stalled = await manager.get_stalled_jobs(
        queue=RUN_QUEUE, seconds_since_heartbeat=settings.stale_heartbeat_seconds
    )
    for job in stalled:
        try:
            await manager.retry_job(job)
        except Exception:  # another worker's reconciler got there first
            logger.debug("job %s was not retried here", job.id, exc_info=True)
            continue
        assert job.id is not None
        retried.append(job.id)
    enqueued = await asyncio.to_thread(enqueue_lost_runs, sessions, settings)
    return Reconciled(retried_jobs=retried, enqueued_runs=enqueued)


def enqueue_lost_runs(sessions: sessionmaker[Session], settings: Settings) -> list[str]:
    """Defer a job for every runnable run that has none; the run ids. Empty when another
    worker holds the reconciler's lock this tick."""
    with sessions() as session:
        # Runs whose approval expired move to QUEUED here, with their job (it commits per
        # approval, so it runs before the lock's transaction begins).
        expire_due(session, settings.approval_timeout_action)
    with sessions() as session:
        locked = session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": RECONCILE_LOCK_KEY}
        )
        if not locked:
            return []
        stale = timedelta(seconds=settings.stale_heartbeat_seconds)
        wanted = execution.runnable_run_ids(session) + execution.resumable_run_ids(session, stale)
        live = runs_with_live_jobs(session)
        lost = [run_id for run_id in dict.fromkeys(wanted) if run_id not in live]
        for run_id in lost:
            enqueue_run(session, run_id)
        session.commit()
        return lost
