"""Who may call the HTTP API: API keys, scopes and the per-key rate limit, as FastAPI
dependencies.

Authentication is on when ``AUTOPACK_API_KEY`` is set or the database holds an unrevoked key
(or ``autopack serve`` insists on it, see ``create_app``); off otherwise, for local use. When it
is on, every route under ``/api`` needs a key whose scope covers the route's: ``read`` for
GET/HEAD/OPTIONS, ``write`` for every other method, and what a router declares beyond that with
``require_scope`` (key management: ``admin``). The method rule is applied to the whole ``/api``
router at once (``API_ACCESS``), so a new route is protected the moment it is included.

Keys are accepted as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. A missing,
unknown or revoked key is 401 with ``WWW-Authenticate: Bearer``; a key without the scope, 403.
Neither message, nor any log line, carries the key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, params
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from autopack.api.deps import Database
from autopack.auth import service
from autopack.auth.schemas import Scope
from autopack.auth.service import KeyMatch
from autopack.db.base import utcnow
from autopack.settings import Settings

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# How long the answer to "is authentication on?" and a key's lookup are reused. A key created
# (or revoked) by another process takes effect within this long; one created or revoked through
# this server's API at once. Reusing them spares the database a query on every request.
CACHE_SECONDS = 1.0
# Most lookups kept: the cache holds only keys that exist, so this is never reached in practice.
CACHE_LIMIT = 1024
# A key's last_used_at is written at most this often: not one write per request.
USE_RECORD_INTERVAL = timedelta(minutes=1)
BOOTSTRAP_NAME = "AUTOPACK_API_KEY"


@dataclass(frozen=True)
class Principal:
    """The key a request was made with."""

    name: str
    scope: Scope
    # None for the bootstrap key (AUTOPACK_API_KEY), which has no row.
    key_id: int | None

    @property
    def rate_identity(self) -> str:
        # The two namespaces keep a stored key that happens to be named like the bootstrap
        # key from sharing its budget.
        return f"key:{self.name}" if self.key_id is not None else f"env:{self.name}"


def scope_for_method(method: str) -> Scope:
    return Scope.READ if method.upper() in SAFE_METHODS else Scope.WRITE


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status_code=401, detail=message, headers={"WWW-Authenticate": "Bearer"})


class Gatekeeper:
    """One per app (``app.state.gatekeeper``): whether authentication is on, which key a
    request presents, and the rate limit. Its caches are only touched on the event loop."""

    def __init__(
        self, settings: Settings, database: Database, *, require_auth: bool = False
    ) -> None:
        self._database = database
        bootstrap = settings.api_key.get_secret_value() if settings.api_key else ""
        # Compared as digests: equal lengths, so compare_digest leaks not even the key's length.
        self._bootstrap = _digest(bootstrap) if bootstrap else None
        self._always_on = require_auth or self._bootstrap is not None
        self._enabled = False
        self._enabled_until = 0.0
        self._keys: dict[str, tuple[KeyMatch | None, float]] = {}
        self._used: dict[int, datetime] = {}
        self._limit = settings.rate_limit_per_minute
        self._limiter = MovingWindowRateLimiter(MemoryStorage()) if self._limit else None
        self._limit_item = RateLimitItemPerMinute(max(self._limit, 1))

    async def enabled(self) -> bool:
        if self._always_on:
            return True
        now = time.monotonic()
        if now >= self._enabled_until:
            self._enabled = await run_in_threadpool(self._has_active_keys)
            self._enabled_until = time.monotonic() + CACHE_SECONDS
        return self._enabled

    def forget(self) -> None:
        """Drop what is cached: a key was just created or revoked through this server."""
        self._enabled_until = 0.0
        self._keys.clear()

    async def identify(self, key: str) -> Principal:
        """The principal ``key`` stands for, or 401."""
        if self._bootstrap is not None and hmac.compare_digest(_digest(key), self._bootstrap):
            return Principal(BOOTSTRAP_NAME, Scope.ADMIN, None)
        digest = service.hash_key(key)
        now = time.monotonic()
        match, until = self._keys.get(digest, (None, 0.0))
        if now >= until:
            match = await run_in_threadpool(self._find, key)
            if len(self._keys) >= CACHE_LIMIT:
                self._keys.clear()
            # Unknown keys are not kept: anyone can present any number of them.
            if match is not None:
                self._keys[digest] = (match, time.monotonic() + CACHE_SECONDS)
        if match is None or match.scope is None:
            raise _unauthorized("the API key is not valid")
        if match.revoked:
            raise _unauthorized(f"the API key {match.name!r} has been revoked")
        await self._record_use(match)
        return Principal(match.name, match.scope, match.id)

    def check_rate(self, identity: str) -> None:
        """Count one mutating request of ``identity``; 429 with Retry-After past the limit."""
        if self._limiter is None or self._limiter.hit(self._limit_item, identity):
            return
        stats = self._limiter.get_window_stats(self._limit_item, identity)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise HTTPException(
            status_code=429,
            detail=f"rate limit exceeded: at most {self._limit} changes a minute; "
            f"retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )

    async def _record_use(self, match: KeyMatch) -> None:
        now = utcnow()
        last = max(
            (when for when in (self._used.get(match.id), match.last_used_at) if when is not None),
            default=None,
        )
        if last is not None and now - last < USE_RECORD_INTERVAL:
            return
        self._used[match.id] = now
        try:
            await run_in_threadpool(self._write_use, match.id, now)
        except SQLAlchemyError as exc:
            # Bookkeeping only: the request goes on (a busy SQLite, say); next minute retries.
            logger.warning(
                "could not record the use of API key %r: %s", match.name, type(exc).__name__
            )

    def _has_active_keys(self) -> bool:
        with self._database.read_session() as session:
            return service.has_active_keys(session)

    def _find(self, key: str) -> KeyMatch | None:
        with self._database.read_session() as session:
            return service.find_key(session, key)

    def _write_use(self, key_id: int, when: datetime) -> None:
        with self._database.session() as session:
            service.record_use(session, key_id, when)


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def gatekeeper(request: Request) -> Gatekeeper:
    keeper: Gatekeeper = request.app.state.gatekeeper
    return keeper


# Declared as security schemes so that the OpenAPI schema (and /docs) documents both ways of
# sending a key. auto_error=False: the absence of one is decided below, in one message.
_bearer = HTTPBearer(auto_error=False, description="An Autopack API key: `Bearer apk_...`")
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An Autopack API key: `apk_...`"
)


async def authenticate(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header_key: Annotated[str | None, Security(_api_key_header)],
) -> Principal | None:
    """The request's principal; None when authentication is off."""
    keeper = gatekeeper(request)
    if not await keeper.enabled():
        return None
    presented = bearer.credentials if bearer is not None else header_key
    if not presented:
        raise _unauthorized(
            "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
        )
    principal = await keeper.identify(presented.strip())
    # For access logs: who made the request (the key's name, never the key).
    request.state.api_key_name = principal.name
    return principal


def presented_key(request: Request) -> str | None:
    """The key a request carries (``Authorization: Bearer`` or ``X-API-Key``), for routes that
    check one outside the dependency chain (``/metrics``)."""
    authorization = request.headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    header = request.headers.get("x-api-key", "").strip()
    return header or None


PrincipalDep = Annotated[Principal | None, Depends(authenticate)]


class RequireScope:
    """A dependency: the request's key must cover ``minimum`` and its method's scope."""

    def __init__(self, minimum: Scope = Scope.READ) -> None:
        self.minimum = minimum

    def needed(self, method: str) -> Scope:
        by_method = scope_for_method(method)
        return self.minimum if self.minimum.includes(by_method) else by_method

    async def __call__(self, request: Request, principal: PrincipalDep) -> None:
        if principal is None:
            return
        needed = self.needed(request.method)
        if not principal.scope.includes(needed):
            raise HTTPException(
                status_code=403,
                detail=f"the API key {principal.name!r} has the scope {principal.scope.value}; "
                f"{request.method} {request.url.path} needs {needed.value}",
            )


async def rate_limit(request: Request, principal: PrincipalDep) -> None:
    """Mutating requests count against the key's budget (the client address's when
    authentication is off). Reads are not limited: the dashboard polls them."""
    if request.method.upper() in SAFE_METHODS:
        return
    if principal is not None:
        identity = principal.rate_identity
    else:
        identity = f"client:{request.client.host if request.client else 'unknown'}"
    gatekeeper(request).check_rate(identity)


def require_scope(scope: Scope) -> params.Depends:
    """A router's (or a route's) scope beyond the method rule, for its ``dependencies``."""
    dependency: params.Depends = Depends(RequireScope(scope))
    return dependency


# Every route under /api: the method rule, then the rate limit (after authentication, so that
# an anonymous caller cannot spend a key's budget).
API_ACCESS: list[params.Depends] = [require_scope(Scope.READ), Depends(rate_limit)]
