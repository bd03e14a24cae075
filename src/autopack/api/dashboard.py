"""The dashboard: the built React app (``npm run build`` writes ``dist/``), served by the API
itself, so that ``autopack serve`` and ``uvicorn autopack.main:app`` both have it.

It is the app router's fallback (``install_dashboard``): it only sees requests that no route
answers, after every other route, whatever is added later. For GET and HEAD:

- a path naming a file under the dashboard directory is that file (``/assets/*`` cached for a
  year, as Vite puts a hash of the content in their names; anything else, ``index.html`` above
  all, revalidated on every use);
- any other path is ``index.html``, so that the client-side routes (``/runs/abc``) survive a
  reload — except under ``/api/``, ``/health``, ``/ready``, ``/metrics``, ``/docs``, ``/redoc``
  and ``/openapi.json``, and missing ``/assets/*`` files, which stay the JSON 404 envelope;
- with no ``index.html`` (the dashboard was not built), 503 with a page saying how to build it
  (the JSON envelope, code ``dashboard_not_built``, to a client that asks for JSON).

Every dashboard response carries a strict Content-Security-Policy (the built app needs no
inline script or style); ``SecurityHeadersMiddleware`` adds the headers every response gets.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

import autopack
from autopack.settings import Settings

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Vite names what it puts under assets/ by a hash of the content: a name never changes meaning.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Paths that are never the dashboard's: a miss there is the API's JSON 404.
NOT_DASHBOARD = ("/api", "/health", "/ready", "/metrics", "/docs", "/redoc", "/openapi.json")
ASSETS = "assets"
INDEX = "index.html"
# Types set here rather than guessed: the platform's MIME table varies (and nosniff is on).
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
}


def repository_root() -> Path:
    """The directory holding ``src/`` (and ``package.json``): ``/app`` in the Docker image."""
    return Path(autopack.__file__).resolve().parents[2]


def dashboard_dir(settings: Settings) -> Path:
    """Where the built dashboard is: AUTOPACK_DASHBOARD_DIR, else ``dist/`` of the repository."""
    if settings.dashboard_dir is not None:
        return settings.dashboard_dir
    return repository_root() / "dist"


def not_built_message(settings: Settings) -> str | None:
    """What to do when the dashboard has not been built; None when it has."""
    if (dashboard_dir(settings) / INDEX).is_file():
        return None
    return (
        f"The dashboard has not been built: run `npm ci && npm run build` in "
        f"{repository_root()} (or set AUTOPACK_DASHBOARD_DIR to a built dashboard)"
    )


def install_dashboard(app: FastAPI) -> None:
    """Serve the dashboard for whatever no route of ``app`` answers."""
    app.router.default = DashboardFallback(app.router.default)


def route_path(scope: Scope) -> str:
    """The request's path as the routes see it (without the ASGI root_path, if the server
    includes it), decoded by the server: `%2e%2e%2f` is `../` here."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def is_dashboard_path(path: str) -> bool:
    return not any(path == prefix or path.startswith(prefix + "/") for prefix in NOT_DASHBOARD)


class DashboardFallback:
    """The app router's default: the dashboard for GET and HEAD, else what the router did
    before (the 404 envelope)."""

    def __init__(self, not_found: ASGIApp) -> None:
        self.not_found = not_found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or not is_dashboard_path(route_path(scope))
        ):
            await self.not_found(scope, receive, send)
            return
        settings: Settings = scope["app"].state.settings
        request = Request(scope, receive)
        response = _respond(request, dashboard_dir(settings), settings)
        if response is None:
            await self.not_found(scope, receive, send)
            return
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        await response(scope, receive, send)


def _respond(request: Request, root: Path, settings: Settings) -> Response | None:
    """The dashboard's answer to a GET or HEAD of ``request``'s path; None for a 404."""
    parts = [part for part in route_path(request.scope).split("/") if part]
    # Nothing that climbs out, hides (dot files) or smuggles a separator or NUL is a file.
    if any(part.startswith(".") or "\\" in part or "\x00" in part for part in parts):
        return None
    if parts:
        found = _file_under(root, parts)
        if found is not None:
            cache = IMMUTABLE if parts[0] == ASSETS and len(parts) > 1 else REVALIDATE
            return _file(request, found, cache)
        if parts[0] == ASSETS:
            return None  # a missing script is not the page: the browser would choke on HTML
    index = root / INDEX
    if not index.is_file():
        return _not_built(request, settings)
    return _file(request, index, REVALIDATE)


def _file_under(root: Path, parts: list[str]) -> Path | None:
    """The regular file ``root/<parts>`` if it is one and really lies under ``root`` (a
    symbolic link pointing elsewhere does not count)."""
    try:
        base = root.resolve()
        candidate = base.joinpath(*parts).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate


def _file(request: Request, path: Path, cache_control: str) -> Response:
    stat = os.stat(path)
    response = FileResponse(
        path,
        stat_result=stat,
        media_type=MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream"),
        headers={"Cache-Control": cache_control},
    )
    etag = response.headers.get("etag")
    if etag is not None and etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control})
    return response


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _not_built(request: Request, settings: Settings) -> Response:
    message = not_built_message(settings) or "The dashboard has not been built"
    accept = request.headers.get("accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return JSONResponse(
            {
                "error": {
                    "code": "dashboard_not_built",
                    "message": message,
                    "details": {"dashboard_dir": str(dashboard_dir(settings))},
                }
            },
            status_code=503,
            headers={"Cache-Control": "no-store"},
        )
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Autopack: dashboard not built</title></head>\n<body><h1>Autopack</h1>\n"
        f"<p>{html.escape(message)}.</p>\n"
        '<p>The API is up: see <a href="/docs">/docs</a> and <a href="/health">/health</a>.'
        "</p></body></html>\n"
    )
    return HTMLResponse(page, status_code=503, headers={"Cache-Control": "no-store"})
