"""Request ids: every HTTP response carries ``X-Request-ID``, and every record logged while the
request is handled carries ``request_id``.

A pure ASGI middleware (no ``BaseHTTPMiddleware``: it would buffer the event streams). It is
installed outside every other layer, Starlette's error middleware included (``install``), so
that refusals made before routing (413 from the body limit, 401/429 from the API gate) and
unhandled errors (500) carry the header too.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autopack.observability.logging import bound_log_context

HEADER = "X-Request-ID"
_HEADER_KEY = HEADER.lower().encode("latin-1")
# What a caller's id may look like: anything else (too long, spaces, quotes, control
# characters) could break log lines or the header itself, and is replaced by a fresh id.
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Probes and scrapes come every few seconds: their request lines are logged at debug only.
QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})

access_logger = logging.getLogger("autopack.http")


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(value: str | None) -> str:
    """The caller's id when it is a sane one, else a fresh one."""
    if value is not None and _ACCEPTABLE.fullmatch(value):
        return value
    return new_request_id()


def _incoming(scope: Scope) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == _HEADER_KEY:
            return str(value.decode("latin-1"))
    return None


class RequestIdMiddleware:
    """Resolves the request id, echoes it on the response, binds it for logs while the request
    is handled, and writes one access line when the response is done."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accept_request_id(_incoming(scope))
        # Also in the request's state: handlers that run after the context variable is reset
        # (Starlette's error middleware calls them as the exception unwinds) can still read it.
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500  # what the client gets if the app fails before answering
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        with bound_log_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                _log_request(scope, status, time.perf_counter() - started)


def _log_request(scope: Scope, status: int, seconds: float) -> None:
    path = str(scope.get("path", ""))
    level = logging.DEBUG if path in QUIET_PATHS else logging.INFO
    if not access_logger.isEnabledFor(level):
        return
    client = scope.get("client")
    # The query string is left out: it is the part of a URL most likely to carry a secret.
    access_logger.log(
        level,
        "%s %s %d",
        scope.get("method", ""),
        path,
        status,
        extra={
            "method": scope.get("method", ""),
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "client": client[0] if client else None,
        },
    )
