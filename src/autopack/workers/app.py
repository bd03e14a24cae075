"""The procrastinate App of a worker process: its connection to PostgreSQL and its tasks.

The one task, ``autopack.execute_run``, calls the same step as the in-process executor
(:func:`autopack.executor.service.execute_if_free`): whichever executes a run, the run's state in
the database says what is left, so a job that runs twice resumes, never repeats.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from procrastinate import App, JobContext, PsycopgConnector

from autopack.db.engine import normalise_url
from autopack.executor.runner import ExecutorEnvironment
from autopack.executor.service import execute_if_free
from autopack.settings import Settings
from autopack.workers.queue import RUN_QUEUE, RUN_TASK

logger = logging.getLogger(__name__)

# A task that procrastinate defers once a year. Registering a periodic task makes procrastinate
# run its periodic deferrer beside the worker, and that side task is what notices a lost
# database and stops the worker (procrastinate issue #1597: without it the worker keeps taking
# jobs while its heartbeat is silently dead); the worker process then reconnects (process.py).
KEEPALIVE_TASK = "autopack.keepalive"
MAINTENANCE_QUEUE = "autopack-maintenance"


def conninfo(settings: Settings) -> str:
    """The libpq connection string of ``DATABASE_URL`` (procrastinate speaks psycopg itself)."""
    url = normalise_url(settings.database_url_value())
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class BusyCount:
    """How many jobs this process is executing now (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def __enter__(self) -> None:
        with self._lock:
            self._value += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._value -= 1

    @property
    def value(self) -> int:
        with self._lock:
            return self._value


def build_app(settings: Settings, env: ExecutorEnvironment, busy: BusyCount, pool_size: int) -> App:
    connector = PsycopgConnector(
        conninfo=conninfo(settings),
        min_size=1,
        max_size=pool_size,
        kwargs={"connect_timeout": settings.db_connect_timeout_seconds},
    )
    app = App(connector=connector)

    @app.task(name=RUN_TASK, queue=RUN_QUEUE, pass_context=True)
    def execute_run(context: JobContext, run_id: str) -> None:
        job_id = context.job.id if context.job is not None else None
        logger.info("job %s: run %s", job_id, run_id)
        with busy:
            execute_if_free(env, run_id)

    @app.periodic(cron="0 0 1 1 *", periodic_id="keepalive")
    @app.task(name=KEEPALIVE_TASK, queue=MAINTENANCE_QUEUE)
    def keepalive(timestamp: int) -> None:
        del timestamp  # nothing to do: the task exists for its deferrer (see KEEPALIVE_TASK)

    del execute_run, keepalive
    return app


def worker_options(settings: Settings, name: str, concurrency: int) -> dict[str, Any]:
    """procrastinate's worker settings, from Autopack's: a worker proves it is alive as often as
    an executor does, and is given up on after the same stale time."""
    return {
        "queues": [RUN_QUEUE, MAINTENANCE_QUEUE],
        "name": name,
        "concurrency": concurrency,
        "install_signal_handlers": False,
        "listen_notify": True,
        # Polling finds jobs when a notification is missed (after a reconnect, LISTEN is gone).
        "fetch_job_polling_interval": 2.0,
        "abort_job_polling_interval": 2.0,
        "update_heartbeat_interval": settings.heartbeat_interval_seconds,
        "stalled_worker_timeout": settings.stale_heartbeat_seconds,
        "shutdown_graceful_timeout": settings.worker_shutdown_seconds,
    }
