"""CORS, off unless ``AUTOPACK_CORS_ORIGINS`` names the origins allowed.

Middleware must be added when the app is built, but settings are only known once it has started
(``create_app()`` with no settings reads them in its lifespan). So this middleware builds
Starlette's ``CORSMiddleware`` from the settings on the first request, or nothing at all when no
origin is allowed.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from autopack.settings import Settings

# Keys travel in headers, never in cookies: no credentials, so no origin can ride a session.
ALLOWED_HEADERS = ["Authorization", "X-API-Key", "Content-Type", "Last-Event-ID"]
EXPOSED_HEADERS = ["Retry-After", "WWW-Authenticate"]


class CORSFromSettings:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._handler: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._handler is None:
            settings: Settings | None = getattr(scope["app"].state, "settings", None)
            if settings is None:  # not started: nothing to serve anyway
                await self.app(scope, receive, send)
                return
            self._handler = self._build(settings)
        await self._handler(scope, receive, send)

    def _build(self, settings: Settings) -> ASGIApp:
        origins = settings.cors_origin_list
        if not origins:
            return self.app
        return CORSMiddleware(
            self.app,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            allow_credentials=False,
            max_age=600,
        )
