"""``autopack worker``: one process executing runs from the job queue, until SIGTERM/SIGINT.

It runs procrastinate's worker (``concurrency`` runs at once, each in a thread of its own) and
the reconciler beside it. When the database goes away the worker stops; this loop reconnects
with a backoff (1 s doubling to 30 s) and carries on. The runs it was executing keep going in
their threads meanwhile; one whose database write fell in the outage fails its job, and is
resumed once its heartbeat is stale, not repeated (the executor's crash rules).

The first SIGTERM or SIGINT stops taking jobs and waits ``AUTOPACK_WORKER_SHUTDOWN_SECONDS``
for the runs in flight; what is left then is abandoned (the process exits) and resumes on
another worker once its heartbeat is stale. A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.orm import Session, sessionmaker

from autopack.executor.runner import ExecutorEnvironment
from autopack.settings import Settings
from autopack.workers.app import BusyCount, build_app, worker_options
from autopack.workers.reconciler import reconcile_forever

logger = logging.getLogger(__name__)

BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
# A worker that ran this long before it stopped starts its backoff again from the first step.
HEALTHY_SECONDS = 60.0


def run_worker(
    settings: Settings,
    env: ExecutorEnvironment,
    sessions: sessionmaker[Session],
    concurrency: int,
) -> int:
    """Run until a signal stops it; the exit status."""
    busy = BusyCount()
    stop = asyncio.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        # Sync tasks run in the loop's default executor: room for every job at once, plus the
        # reconciler and procrastinate's own blocking calls.
        loop.set_default_executor(
            ThreadPoolExecutor(max_workers=concurrency + 4, thread_name_prefix="autopack-job")
        )
        signals = 0

        def abandon() -> None:
            # procrastinate's own graceful timeout cannot stop a sync job's thread: it waits
            # for it, however long the run takes. This is the timeout that holds.
            if busy.value:
                logger.warning(
                    "%d run(s) still executing after %g s; exiting (they resume on another "
                    "worker once their heartbeat is stale)",
                    busy.value,
                    settings.worker_shutdown_seconds,
                )
                logging.shutdown()
                os._exit(0)

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            if signals > 1:
                logger.warning("second signal: exiting now")
                os._exit(1)
            logger.info("stopping: no new jobs; waiting for the runs in flight")
            stop.set()
            loop.call_later(settings.worker_shutdown_seconds, abandon)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        await _serve(settings, env, sessions, concurrency, busy, stop)

    asyncio.run(main())
    return 0


async def _serve(
    settings: Settings,
    env: ExecutorEnvironment,
    sessions: sessionmaker[Session],
    concurrency: int,
    busy: BusyCount,
    stop: asyncio.Event,
) -> None:
    backoff = BACKOFF_FIRST_SECONDS
    options = worker_options(settings, env.worker_id, concurrency)
    while not stop.is_set():
        started = time.monotonic()
        app = build_app(settings, env, busy, pool_size=concurrency + 4)
        try:
            async with app.open_async():
                worker = asyncio.create_task(app.run_worker_async(**options))
                reconciler = asyncio.create_task(
                    reconcile_forever(app.job_manager, sessions, settings)
                )
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({worker, stopping}, return_when=asyncio.FIRST_COMPLETED)
                reconciler.cancel()
                stopping.cancel()
                if not worker.done():
                    worker.cancel()  # procrastinate's graceful stop
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
                logger.info("worker %s stopped", env.worker_id)
        except Exception as exc:
            logger.warning("worker stopped: %s", _first_line(exc))
        if stop.is_set():
            return
        if time.monotonic() - started > HEALTHY_SECONDS:
            backoff = BACKOFF_FIRST_SECONDS
        logger.info("reconnecting in %.0f s", backoff)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=backoff)
        backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
