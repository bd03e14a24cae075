"""Prometheus metrics, served at ``/metrics`` (text exposition format).

Two kinds of metrics, kept in two kinds of registry:

- **Process metrics** (:data:`PROCESS_REGISTRY`, module level): what this process's executors
  did — phase durations, attempts, model tokens and cost. They are counted where the work
  happens (``runs.states.transition_phase``, ``runs.execution.finish_attempt`` and
  ``record_usage``), code that knows nothing of an app, so they need one shared place per
  process. It is our own registry rather than ``prometheus_client``'s global default one, so
  that importing Autopack registers nothing in an embedding application's registry. Being
  per process, several apps built in one process (the tests) share these counters: tests read
  them as differences, never as absolute values. An ``autopack worker`` process counts its own.
- **App metrics** (:class:`AppMetrics`, one registry per app): the HTTP request metrics, the
  database-derived gauges, process/platform/GC facts, and a bridge to the process metrics.
  Building two apps in one process therefore never registers a name twice.

The run gauges (``autopack_runs``, ``autopack_run_budget_remaining``) are computed at scrape time
from the database, so they are right whichever process executes the runs.

Who may scrape is decided in one place, :func:`metrics_allowed`.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import fastapi.routing
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autopack.api.errors import error_response
from autopack.auth.security import gatekeeper, presented_key
from autopack.observability.request_id import RequestIdMiddleware
from autopack.runs.service import count_runs_by_state, running_budgets
from autopack.runs.states import RunState

if TYPE_CHECKING:
    from autopack.api.deps import Database

logger = logging.getLogger(__name__)

UNMATCHED = "<unmatched>"

# --- process metrics (counted by the executor) ----------------------------------------------

PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)

# Phases take from seconds (a trivial edit) to hours (long test suites, many attempts).
PHASE_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)

PHASE_DURATION = Histogram(
    "autopack_phase_duration_seconds",
    "Time from a phase's first start to its terminal state, by that state",
    ["state"],
    buckets=PHASE_DURATION_BUCKETS,
    registry=PROCESS_REGISTRY,
)
ATTEMPTS = Counter(
    "autopack_attempts",
    "Builder attempts finished, by outcome",
    ["outcome"],
    registry=PROCESS_REGISTRY,
)
LLM_TOKENS = Counter(
    "autopack_llm_tokens",
    "Model tokens, by model, role and kind (input is the whole prompt; cache_read and "
    "cache_write are the parts of it read from or written to the provider's cache)",
    ["model", "role", "kind"],
    registry=PROCESS_REGISTRY,
)
LLM_COST = Counter(
    "autopack_llm_cost_usd",
    "Model spend in US dollars, by model and role",
    ["model", "role"],
    registry=PROCESS_REGISTRY,
)


def observe_phase_finished(state: str, seconds: float) -> None:
    PHASE_DURATION.labels(state=state).observe(max(seconds, 0.0))


def count_attempt(outcome: str) -> None:
    ATTEMPTS.labels(outcome=outcome).inc()


def count_llm_usage(
    *,
    model: str,
    role: str,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    cost_usd: Decimal,
) -> None:
    for kind, tokens in (
        ("input", input_tokens),
        ("output", output_tokens),
        ("cache_read", cache_read_tokens),
        ("cache_write", cache_write_tokens),
    ):
        # inc(0) still creates the series: every kind of a model shows, 0 until used.
        LLM_TOKENS.labels(model=model, role=role, kind=kind).inc(max(tokens, 0))
    LLM_COST.labels(model=model, role=role).inc(max(float(cost_usd), 0.0))


# --- app metrics ----------------------------------------------------------------------------


class _Bridge:
    """Exposes another registry's metrics through an app's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


class RunsCollector:
    """``autopack_runs`` and ``autopack_run_budget_remaining``, read from the database at scrape
    time (two queries). A database that cannot be read leaves them out of that scrape."""

    def __init__(self, database: Callable[[], Database | None]) -> None:
        self.database = database

    def describe(self) -> Iterable[Metric]:
        # Lets the registry learn the names without a query (it would otherwise collect()).
        return [self._runs_family(), self._budget_family()]

    def collect(self) -> Iterable[Metric]:
        database = self.database()
        if database is None:  # not started yet
            return []
        try:
            with database.read_session() as session:
                counts = count_runs_by_state(session)
                budgets = running_budgets(session)
        except Exception as exc:
            logger.warning("metrics: cannot read runs from the database: %s", type(exc).__name__)
            return []
        runs = self._runs_family()
        for state in RunState:
            runs.add_metric([state.value], counts.get(state, 0))
        remaining = self._budget_family()
        for budget in budgets:
            if budget.token_cap is not None:
                remaining.add_metric(
                    [budget.run_id, "tokens"], budget.token_cap - budget.tokens_used
                )
            if budget.cost_cap_usd is not None:
                remaining.add_metric(
                    [budget.run_id, "cost_usd"], float(budget.cost_cap_usd - budget.cost_usd)
                )
        return [runs, remaining]

    @staticmethod
    def _runs_family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "autopack_runs", "Runs in the database, by state", labels=["state"]
        )

    @staticmethod
    def _budget_family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "autopack_run_budget_remaining",
            "What a RUNNING run may still spend of its caps, by dimension (tokens, cost_usd); "
            "runs without a cap in a dimension have no series for it",
            labels=["run_id", "dimension"],
        )


class AppMetrics:
    """One app's registry: its HTTP metrics, the run gauges, and the process metrics."""

    def __init__(self, database: Callable[[], Database | None]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "autopack_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "autopack_http_request_duration_seconds",
            "Time to answer an HTTP request (to the end of the body; event streams count "
            "their whole life), by method and route template",
            ["method", "route"],
            registry=self.registry,
        )
        self.registry.register(RunsCollector(database))
        self.registry.register(_Bridge(PROCESS_REGISTRY))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method=method, route=route, status=str(status)).inc()
        self.http_duration.labels(method=method, route=route).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@dataclass(frozen=True)
class _RouteEntry:
    route: BaseRoute  # the route object Starlette/FastAPI puts in scope["route"]
    template: str  # its full path template, prefixes of included routers and mounts included
    matches: Callable[[Scope], tuple[Match, Scope]]


class RouteTemplates:
    """The full path template of the route that answered a request (``/api/runs/{run_id}``),
    never the raw path: raw paths would make a series per run id.

    FastAPI keeps included routers as a tree, and ``scope["route"]`` is then the route as
    declared, its path relative to the router's prefix. The full templates come from FastAPI's
    own flattening (``iter_route_contexts``, what its OpenAPI generation uses), built once and
    again whenever a route appears that was not there. A request refused before routing (413)
    is matched against the same table; a path no route matches is ``<unmatched>``."""

    def __init__(self) -> None:
        self._entries: list[_RouteEntry] = []
        self._by_route: dict[int, str] = {}
        self._built_for: int | None = None

    def template(self, scope: Scope) -> str:
        app = scope.get("app")
        routes: Sequence[BaseRoute] = getattr(app, "routes", ())
        if self._built_for != id(app):
            self._build(routes, id(app))
        route = scope.get("route")
        if route is not None:
            found = self._by_route.get(id(route))
            if found is None:
                self._build(routes, id(app))  # a route added after the first request
                found = self._by_route.get(id(route))
            if found is not None:
                return found
        partial = None
        for entry in self._entries:
            match, _ = entry.matches(scope)
            if match is Match.FULL:
                return entry.template
            if match is Match.PARTIAL and partial is None:
                partial = entry.template
        return partial or UNMATCHED

    def _build(self, routes: Sequence[BaseRoute], app_id: int) -> None:
        entries = _route_entries(routes)
        by_route: dict[int, str] = {}
        seen_twice: set[int] = set()
        for entry in entries:
            key = id(entry.route)
            if key in by_route and by_route[key] != entry.template:
                seen_twice.add(key)  # one route under two prefixes: decided by matching
            by_route[key] = entry.template
        for key in seen_twice:
            del by_route[key]
        self._entries, self._by_route, self._built_for = entries, by_route, app_id


def _route_entries(routes: Sequence[BaseRoute]) -> list[_RouteEntry]:
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    if flatten is None:
        # FastAPI before included routers were kept as a tree: its routes are flat already.
        return [
            _RouteEntry(route, _template_of(route, getattr(route, "path", None)), route.matches)
            for route in routes
        ]
    return [
        _RouteEntry(
            context.original_route,
            _template_of(context.original_route, context.path_format or context.path),
            context.matches,
        )
        for context in flatten(routes)
    ]


def _template_of(route: BaseRoute, path: str | None) -> str:
    if not path:
        return UNMATCHED
    if isinstance(route, Mount) and not path.endswith("{path}"):
        return f"{path.rstrip('/')}/{{path}}"
    return path


class HttpMetricsMiddleware:
    """Counts and times every HTTP response by method, route template and status (pure ASGI:
    event streams pass through unbuffered)."""

    def __init__(self, app: ASGIApp, metrics: AppMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # the app failed before answering
        started = time.perf_counter()

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            self.metrics.observe_request(
                str(scope.get("method", "")),
                self.templates.template(scope),
                status,
                time.perf_counter() - started,
            )


# --- the endpoint ---------------------------------------------------------------------------


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; False for anything else, names
    included (a name proves nothing)."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


async def metrics_allowed(request: Request) -> bool:
    """Whether this request may read /metrics: anyone when ``AUTOPACK_METRICS_PUBLIC`` is true,
    else a client on a loopback address, or one presenting a valid API key (any scope)."""
    settings = getattr(request.app.state, "settings", None)
    if settings is not None and settings.metrics_public:
        return True
    if is_loopback(request.client.host if request.client else None):
        return True
    key = presented_key(request)
    if key is None:
        return False
    try:
        await gatekeeper(request).identify(key)
    except HTTPException:
        return False
    return True


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    if not await metrics_allowed(request):
        return error_response(
            403,
            "forbidden",
            "/metrics is served to loopback clients and to requests with a valid API key, "
            "or to anyone with AUTOPACK_METRICS_PUBLIC=true",
        )
    app_metrics: AppMetrics = request.app.state.metrics
    # The run gauges query the database, which must not block the event loop.
    body = await run_in_threadpool(app_metrics.exposition)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def install_observability(app: FastAPI) -> AppMetrics:
    """Request ids, the access log, the HTTP metrics and ``/metrics`` on ``app``.

    The two middlewares wrap the whole middleware stack, Starlette's error middleware included
    (``add_middleware`` can only put them inside it): that way a 500 from an unhandled error,
    and any refusal a later-added middleware makes, is counted and carries ``X-Request-ID``.
    """
    app_metrics = AppMetrics(lambda: getattr(app.state, "database", None))
    app.state.metrics = app_metrics
    app.include_router(router)
    build_stack = app.build_middleware_stack

    def build_wrapped_stack() -> ASGIApp:
        return RequestIdMiddleware(HttpMetricsMiddleware(build_stack(), app_metrics))

    app.build_middleware_stack = build_wrapped_stack  # type: ignore[method-assign]
    return app_metrics
