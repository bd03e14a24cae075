"""``create_app``: the one app factory, used by the tests, ``autopack serve`` and uvicorn alike."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Scope

from autopack import __version__
from autopack.api.cors import CORSFromSettings
from autopack.api.dashboard import install_dashboard
from autopack.api.deps import Database
from autopack.api.errors import install_error_handlers
from autopack.api.health import router as health_router
from autopack.api.middleware import BodySizeLimitMiddleware, SecurityHeadersMiddleware
from autopack.api.schemas import ACCESS_ERROR_RESPONSES, ERROR_RESPONSES
from autopack.approvals.router import router as approvals_router
from autopack.auth.router import router as keys_router
from autopack.auth.security import API_ACCESS, Gatekeeper
from autopack.db import migrate
from autopack.db.engine import create_db_engine, wait_for_database
from autopack.errors import ConfigurationError
from autopack.events.router import router as events_router
from autopack.executor.environment import build_environment, load_router
from autopack.executor.worker import ExecutorPool
from autopack.issues.router import router as issues_router
from autopack.memory.provider import MemoryProvider
from autopack.memory.router import router as memory_router
from autopack.observability.logging import ensure_logging
from autopack.observability.metrics import install_observability
from autopack.planner.router import router as planner_router
from autopack.plans.models import Plan
from autopack.projects.router import router as projects_router
from autopack.rules.router import router as rules_router
from autopack.runs.router import router as runs_router
from autopack.settings import Settings
from autopack.usage.router import router as usage_router

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, require_auth: bool = False) -> FastAPI:
    """Build the API. Settings (when not given), the engine and the schema check happen at
    start-up (the lifespan), not here: importing ``autopack.main`` reads nothing.

    ``require_auth``: keep authentication on even while no key exists (``autopack serve`` on a
    public address), so that revoking the last key locks the API instead of opening it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings or Settings()
        # Under a plain `uvicorn autopack.main:app` nothing has configured logging yet.
        ensure_logging(resolved)
        engine = create_db_engine(resolved)
        try:
            await run_in_threadpool(
                wait_for_database, engine, resolved.db_startup_timeout_seconds, _log_retry
            )
            # The embedded SQLite default migrates itself: zero set-up on a fresh machine.
            bootstrap = resolved.db_bootstrap or resolved.uses_embedded_database
            status = await run_in_threadpool(migrate.ensure_schema, engine, bootstrap=bootstrap)
            database = Database.for_engine(engine, enqueue_runs=resolved.uses_workers)
        except Exception:
            engine.dispose()
            raise
        # Database work of requests runs in anyio's thread pool. A few threads serve a single
        # process best: dozens of threads trading the GIL on every row fetched cost more than
        # they overlap (measured in bench/bench_get_run.py).
        anyio.to_thread.current_default_thread_limiter().total_tokens = resolved.http_threads
        app.state.settings = resolved
        app.state.engine = engine
        app.state.database = database
        app.state.gatekeeper = Gatekeeper(resolved, app.state.database, require_auth=require_auth)
        app.state.router = load_router(resolved)
        # Opened on first use: a Qdrant server that is down never keeps the API from starting.
        # The executor's threads share it (local mode allows one client per directory).
        app.state.memory = MemoryProvider(resolved)
        pool = _start_executors(resolved, app.state.database, app.state.memory)
        app.state.executor_pool = pool
        app.state.schema_head = status.head
        try:
            yield
        finally:
            if pool is not None:
                pool.stop()
            app.state.memory.close()
            engine.dispose()

    app = FastAPI(
        title="Autopack",
        version=__version__,
        description="Self-hosted orchestrator for autonomous, governed, budgeted coding runs.",
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        responses={422: ERROR_RESPONSES[422]},
    )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=_body_limit)
    # Outermost, so that refusals (401, 413, 429) carry the CORS headers a browser needs to
    # read them.
    app.add_middleware(CORSFromSettings)
    install_error_handlers(app)
    app.include_router(health_router)
    # Request ids, the access log, HTTP metrics and /metrics, outside every other layer.
    install_observability(app)
    # Every route under /api goes through this one router, which applies the key and scope
    # check and the rate limit (autopack.auth.security): a route added here cannot be left open.
    api = APIRouter(prefix="/api", dependencies=API_ACCESS, responses=ACCESS_ERROR_RESPONSES)
    for router in (
        runs_router,
        events_router,
        issues_router,
        usage_router,
        projects_router,
        planner_router,
        approvals_router,
        rules_router,
        memory_router,
        keys_router,
    ):
        api.include_router(router)
    app.include_router(api)
    # Last: whatever no route answers (a GET of `/`, `/runs/abc`, `/assets/...`).
    install_dashboard(app)
    _wrap_outermost(app, SecurityHeadersMiddleware)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _wrap_outermost(app: FastAPI, middleware: Callable[[ASGIApp], ASGIApp]) -> None:
    """Put ``middleware`` around the whole stack, Starlette's error middleware included (as
    ``install_observability`` does), so that it sees every response, a 500 too."""
    build_stack = app.build_middleware_stack

    def build_wrapped_stack() -> ASGIApp:
        return middleware(build_stack())

    app.build_middleware_stack = build_wrapped_stack  # type: ignore[method-assign]


def _start_executors(
    settings: Settings, database: Database, memory: MemoryProvider
) -> ExecutorPool | None:
    """Execute queued runs in background threads. No model key is needed to start: a run whose
    models lack a key ends at its start with a message naming the key."""
    if settings.executor_threads == 0:
        return None
    if settings.uses_workers:
        logger.info("runs are executed by `autopack worker` processes (AUTOPACK_EXECUTOR_BACKEND)")
        return None
    try:
        env = build_environment(settings, database.session, memory=memory)
    except ConfigurationError as exc:
        logger.warning("runs will not be executed by this server: %s", exc.message)
        return None
    pool = ExecutorPool(env, settings.executor_threads)
    pool.start()
    return pool


def _log_retry(delay: float) -> None:
    logger.warning("database not reachable yet; retrying in %.1f s", delay)


def _operation_id(route: APIRoute) -> str:
    # Operation ids are the route functions' names: stable, and what the generated client uses.
    return route.name


def _body_limit(scope: Scope) -> int:
    state = scope["app"].state
    settings: Settings | None = getattr(state, "settings", None)
    return (
        settings.max_request_body_bytes
        if settings
        else Settings.model_fields["max_request_body_bytes"].default
    )


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI schema, plus the Plan schema that run creation reads by hand (it accepts
    JSON and YAML bodies, so FastAPI cannot declare it)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    plan_schema = Plan.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in plan_schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components["Plan"] = plan_schema
    app.openapi_schema = schema
    return schema
