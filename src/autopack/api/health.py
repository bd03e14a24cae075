"""Liveness (``/health``) and readiness (``/ready``), at the root where the deployment guide
curls them; both also say what this server's executor threads are doing."""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from autopack import __version__
from autopack.db import migrate
from autopack.executor.worker import ExecutorPool
from autopack.memory.provider import MemoryProvider
from autopack.memory.schemas import MemoryHealth
from autopack.settings import Settings
from autopack.workers.queue import queue_status

router = APIRouter(tags=["health"])


class DatabaseHealth(BaseModel):
    status: Literal["ok", "unreachable"]
    dialect: str
    latency_ms: float | None
    schema_revision: str | None = None
    schema_head: str | None = None
    error: str | None = None


class ExecutorHealth(BaseModel):
    mode: Literal["in_process", "workers", "disabled"] = Field(
        description="`in_process`: this server executes queued runs in its own threads; "
        "`workers`: `autopack worker` processes execute them, from the job queue in PostgreSQL; "
        "`disabled`: nothing executes them here (AUTOPACK_EXECUTOR_THREADS=0, or no usable "
        "model set-up)"
    )
    threads: int = Field(description="Executor threads of this server")
    busy: int = Field(
        description="Runs being executed now: by this server's threads, or (workers) by workers"
    )
    workers: int | None = Field(
        default=None,
        description="Worker processes alive (heartbeat within AUTOPACK_STALE_HEARTBEAT_SECONDS); "
        "workers mode only, null when the queue cannot be read",
    )
    waiting: int | None = Field(
        default=None, description="Run jobs waiting for a worker (workers mode only)"
    )


class HealthReport(BaseModel):
    status: Literal["healthy", "unhealthy"]
    version: str
    database: DatabaseHealth
    executor: ExecutorHealth
    memory: MemoryHealth | None = Field(
        default=None,
        description="The vector memory (`/health` only): informative, it never makes the server "
        "unhealthy; the database alone decides",
    )


class ReadinessReport(HealthReport):
    ready: bool


def check_database(engine: Engine, *, with_schema: bool) -> DatabaseHealth:
    """A real round trip to the database (and, for readiness, its schema revision)."""
    started = time.perf_counter()
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        revision = migrate.current_revision(engine) if with_schema else None
    except Exception as exc:  # any failure to talk to the database means "unreachable"
        return DatabaseHealth(
            status="unreachable",
            dialect=engine.dialect.name,
            latency_ms=None,
            error=type(exc).__name__,
        )
    return DatabaseHealth(
        status="ok",
        dialect=engine.dialect.name,
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
        schema_revision=revision,
    )


def executor_health(pool: ExecutorPool | None) -> ExecutorHealth:
    """What the app's executor pool (``app.state.executor_pool``) is doing."""
    if pool is None:
        return ExecutorHealth(mode="disabled", threads=0, busy=0)
    return ExecutorHealth(mode="in_process", threads=pool.threads, busy=pool.busy)


def _executor(request: Request) -> ExecutorHealth:
    settings: Settings = request.app.state.settings
    if not settings.uses_workers:
        return executor_health(getattr(request.app.state, "executor_pool", None))
    try:
        with request.app.state.database.read_session() as session:
            queue = queue_status(session, settings.stale_heartbeat_seconds)
    except SQLAlchemyError:
        return ExecutorHealth(mode="workers", threads=0, busy=0)
    return ExecutorHealth(
        mode="workers",
        threads=0,
        busy=queue.running,
        workers=queue.workers,
        waiting=queue.waiting,
    )


def _memory(request: Request) -> MemoryHealth | None:
    provider: MemoryProvider | None = getattr(request.app.state, "memory", None)
    return provider.health() if provider is not None else None


@router.get("/health", response_model=HealthReport, responses={503: {"model": HealthReport}})
async def health(request: Request) -> JSONResponse:
    """Liveness including a database round trip: 503 when the database is unreachable."""
    database = await run_in_threadpool(check_database, request.app.state.engine, with_schema=False)
    healthy = database.status == "ok"
    report = HealthReport(
        status="healthy" if healthy else "unhealthy",
        version=__version__,
        database=database,
        executor=await run_in_threadpool(_executor, request),
        memory=await run_in_threadpool(_memory, request),
    )
    return JSONResponse(report.model_dump(mode="json"), status_code=200 if healthy else 503)


@router.get("/ready", response_model=ReadinessReport, responses={503: {"model": ReadinessReport}})
async def ready(request: Request) -> JSONResponse:
    """Readiness: the database answers and its schema is at this Autopack's head revision."""
    database = await run_in_threadpool(check_database, request.app.state.engine, with_schema=True)
    database.schema_head = request.app.state.schema_head
    is_ready = database.status == "ok" and database.schema_revision == database.schema_head
    report = ReadinessReport(
        status="healthy" if database.status == "ok" else "unhealthy",
        version=__version__,
        database=database,
        executor=await run_in_threadpool(_executor, request),
        ready=is_ready,
    )
    return JSONResponse(report.model_dump(mode="json"), status_code=200 if is_ready else 503)
