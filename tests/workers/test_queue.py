"""The job queue beside the run state, on the real PostgreSQL: a job is deferred in the same
transaction as the change that makes a run runnable (so a rollback leaves none), and the
reconciler makes good a job that was lost or whose worker died."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from procrastinate import App, PsycopgConnector
from procrastinate.manager import JobManager
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from autopack.api.app import create_app
from autopack.db.engine import create_session_factory
from autopack.errors import ConfigurationError
from autopack.executor.service import ensure_project
from autopack.runs.service import cancel_run, create_run, get_run
from autopack.runs.states import RunState, transition_run
from autopack.settings import Settings
from autopack.workers.app import conninfo
from autopack.workers.queue import RUN_QUEUE, RUN_TASK, run_lock, runs_with_live_jobs
from autopack.workers.reconciler import enqueue_lost_runs, reconcile_once
from tests.cli.support import assert_clean_failure, clean_env, make_invoke
from tests.conftest import make_settings
from tests.executor.support import make_plan
from tests.factories import V7_BODY

pytestmark = pytest.mark.postgres


@pytest.fixture
def dialect() -> str:
    return "postgresql"


@pytest.fixture
def queue_settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        database_url, tmp_path / "runs", executor_backend="workers", stale_heartbeat_seconds=2
    )


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return create_session_factory(engine, enqueue_runs=True)


def jobs(sessions: sessionmaker[Session]) -> list[tuple[str, str, str, dict[str, str]]]:
    with sessions() as session:
        rows = session.execute(
            text("SELECT lock, status, task_name, args FROM procrastinate_jobs ORDER BY id")
        ).all()
    return [(lock, status, task, args) for lock, status, task, args in rows]


def new_run(sessions: sessionmaker[Session]) -> str:
    with sessions() as session:
        ensure_project(session, "calc", "/nowhere/calc")
        return create_run(session, make_plan()).run_id


def test_a_created_run_has_its_job_in_the_same_transaction(
    sessions: sessionmaker[Session],
) -> None:
    run_id = new_run(sessions)
    assert jobs(sessions) == [(run_lock(run_id), "todo", RUN_TASK, {"run_id": run_id})]


def test_a_rolled_back_change_leaves_no_job(sessions: sessionmaker[Session]) -> None:
    run_id = new_run(sessions)
    with sessions() as session:
        run = get_run(session, run_id)
        transition_run(session, run, RunState.RUNNING)
        transition_run(session, run, RunState.PAUSED, reason="waiting")
        transition_run(session, run, RunState.QUEUED, reason="approved")
        assert session.execute(text("SELECT count(*) FROM procrastinate_jobs")).scalar() == 2
        session.rollback()
    assert jobs(sessions) == [(run_lock(run_id), "todo", RUN_TASK, {"run_id": run_id})]
    with sessions() as session:
        assert get_run(session, run_id).state is RunState.QUEUED


def test_sessions_without_workers_defer_nothing(engine: Engine) -> None:
    plain = create_session_factory(engine)
    with plain() as session:
        ensure_project(session, "calc", "/nowhere/calc")
        create_run(session, make_plan())
    assert jobs(plain) == []


def test_a_run_queued_again_gets_a_new_job(sessions: sessionmaker[Session]) -> None:
    run_id = new_run(sessions)
    with sessions() as session:
        session.execute(text("UPDATE procrastinate_jobs SET status = 'succeeded'"))
        run = get_run(session, run_id)
        transition_run(session, run, RunState.RUNNING)
        transition_run(session, run, RunState.PAUSED, reason="waiting")
        transition_run(session, run, RunState.QUEUED, reason="approved")
        session.commit()
    assert [status for _, status, _, _ in jobs(sessions)] == ["succeeded", "todo"]


def test_a_lost_job_is_enqueued_again_by_the_reconciler(
    sessions: sessionmaker[Session], queue_settings: Settings
) -> None:
    """The crash between the state change and the job cannot happen (one transaction), but a
    job can still be lost afterwards (deleted by hand, a queue restored from a backup): the
    reconciler finds the runnable run without a job and defers one."""
    kept, lost = new_run(sessions), new_run(sessions)
    with sessions() as session:
        session.execute(
            text("DELETE FROM procrastinate_jobs WHERE lock = :l"), {"l": run_lock(lost)}
        )
        session.commit()
    assert enqueue_lost_runs(sessions, queue_settings) == [lost]
    with sessions() as session:
        assert runs_with_live_jobs(session) == {kept, lost}
    # Nothing more to do on the next tick; an ended run needs no job.
    assert enqueue_lost_runs(sessions, queue_settings) == []
    with sessions() as session:
        cancel_run(session, kept)
        session.execute(text("DELETE FROM procrastinate_jobs"))
        session.commit()
    assert enqueue_lost_runs(sessions, queue_settings) == [lost]


@pytest.fixture
def manager(queue_settings: Settings) -> Iterator[tuple[asyncio.AbstractEventLoop, JobManager]]:
    loop = asyncio.new_event_loop()
    app = App(connector=PsycopgConnector(conninfo=conninfo(queue_settings)))
    loop.run_until_complete(app.open_async())
    yield loop, app.job_manager
    loop.run_until_complete(app.close_async())
    loop.close()


def test_a_job_whose_worker_died_is_put_back_and_its_run_not_enqueued_twice(
    sessions: sessionmaker[Session],
    queue_settings: Settings,
    manager: tuple[asyncio.AbstractEventLoop, JobManager],
) -> None:
    loop, jobs_ = manager
    run_id = new_run(sessions)
    with sessions() as session:
        # A worker took the job and then stopped proving it is alive (kill -9).
        worker = session.scalar(
            text(
                "INSERT INTO procrastinate_workers (last_heartbeat) "
                "VALUES (now() - interval '1 hour') RETURNING id"
            )
        )
        session.execute(
            text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w"), {"w": worker}
        )
        session.commit()
    done = loop.run_until_complete(reconcile_once(jobs_, sessions, queue_settings))
    assert len(done.retried_jobs) == 1 and done.enqueued_runs == []
    assert [(lock, status) for lock, status, _, _ in jobs(sessions)] == [(run_lock(run_id), "todo")]
    with sessions() as session:
        assert (
            session.execute(text("SELECT queue_name FROM procrastinate_jobs")).scalar() == RUN_QUEUE
        )


def test_the_api_defers_a_job_with_each_run_it_creates_when_workers_execute(
    queue_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    with TestClient(create_app(queue_settings)) as client:
        response = client.post("/api/runs", json=V7_BODY)
        assert response.status_code == 201, response.text
        run_id = response.json()["run_id"]
        # serve executes nothing itself: the run waits for a worker.
        assert client.app.state.executor_pool is None  # type: ignore[attr-defined]
    assert jobs(sessions) == [(run_lock(run_id), "todo", RUN_TASK, {"run_id": run_id})]


def test_workers_need_postgresql(tmp_path: Path) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path / 'a.db'}", tmp_path, executor_backend="workers", db_bootstrap=True
    )
    with pytest.raises(ConfigurationError, match="PostgreSQL"), TestClient(create_app(settings)):
        pass


def test_the_worker_command_refuses_the_embedded_database(tmp_path: Path) -> None:
    invoke = make_invoke(clean_env(AUTOPACK_RUNS_DIR=str(tmp_path)))
    result = invoke("worker")
    assert_clean_failure(result)
    assert "autopack worker needs PostgreSQL: set DATABASE_URL" in result.output


def test_health_reports_the_workers_and_the_queue(
    queue_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    new_run(sessions)
    with sessions() as session:
        session.execute(text("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now())"))
        session.execute(
            text(
                "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1h')"
            )
        )
        session.commit()
    with TestClient(create_app(queue_settings)) as client:
        executor = client.get("/health").json()["executor"]
    assert executor == {"mode": "workers", "threads": 0, "busy": 0, "workers": 1, "waiting": 1}
