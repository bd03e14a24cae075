"""Background execution inside ``autopack serve``: a few threads that pick up queued runs (new
ones, and runs an approved approval queued again), and runs whose executor died, and execute them
with RunExecutor. The database is the queue: a run is claimed by its conditional QUEUED ->
RUNNING move, so two threads never execute one run."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from autopack.approvals.service import expire_due
from autopack.executor.runner import ExecutorEnvironment
from autopack.executor.service import execute_if_free
from autopack.runs import execution

logger = logging.getLogger(__name__)


class ExecutorPool:
    def __init__(self, env: ExecutorEnvironment, threads: int, poll_seconds: float = 1.0) -> None:
        self.env = env
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, name=f"autopack-executor-{i}", daemon=True)
            for i in range(threads)
        ]

    @property
    def threads(self) -> int:
        """How many executor threads the pool has."""
        return len(self._threads)

    @property
    def busy(self) -> int:
        """How many of them are executing a run now."""
        with self._busy_lock:
            return self._busy

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop picking up runs. A run in flight is left to finish or, at exit, to be resumed by
        the next executor (its heartbeat goes stale): nothing is lost but the attempt."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            run_id = self._next_run()
            if run_id is None:
                self._stop.wait(self.poll_seconds)
                continue
            if not self._execute(run_id):
                self._stop.wait(self.poll_seconds)

    def _execute(self, run_id: str) -> bool:
        """Execute one run, counted as busy meanwhile. False when the executor failed."""
        with self._busy_lock:
            self._busy += 1
        try:
            execute_if_free(self.env, run_id)
        except Exception:
            logger.exception("run %s: the executor failed; it will be resumed", run_id)
            return False
        finally:
            with self._busy_lock:
                self._busy -= 1
        return True

    def _next_run(self) -> str | None:
        stale = timedelta(seconds=self.env.settings.stale_heartbeat_seconds)
        try:
            with self.env.sessions() as session:
                # Approvals past their timeout are decided here too, so that a run whose
                # approval expired (as approved) is queued again and picked up below.
                expire_due(session, self.env.settings.approval_timeout_action)
                queued = execution.runnable_run_ids(session)
                if queued:
                    return queued[0]
                resumable = execution.resumable_run_ids(session, stale)
                return resumable[0] if resumable else None
        except Exception:
            logger.warning("cannot look for runs to execute", exc_info=True)
            return None
