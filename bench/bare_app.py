"""The baseline of ``bench_get_run.py``: a bare FastAPI app with one endpoint that returns a
constant JSON document — the exact body Autopack returned for ``GET /api/runs/{id}``.

Served by uvicorn as a factory (``uvicorn --factory bare_app:app_from_env --app-dir bench``).
Two environment variables configure it:

``AUTOPACK_BENCH_BODY_FILE``
    path of the captured JSON body (required);
``AUTOPACK_BENCH_BARE_MODE``
    how the endpoint returns it:

    ``jsonresponse`` (default)
        the parsed document (a dict), serialised on every request by ``JSONResponse``
        (``json.dumps``). The fairest "bare FastAPI" baseline: it pays for JSON encoding of the
        same document, but for no validation, database or ORM work;
    ``dict``
        the dict returned as it is, so FastAPI runs ``jsonable_encoder`` over it and then
        ``JSONResponse`` (FastAPI's default path for an endpoint without a response model);
    ``raw``
        the captured bytes, pre-serialised, in a plain ``Response``: the floor of the stack
        (uvicorn + Starlette routing), no encoding at all.

The endpoint lives at ``/api/runs/{run_id}``, the same route shape as Autopack's, so the routing
work is alike too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

BODY_FILE_VAR = "AUTOPACK_BENCH_BODY_FILE"
MODE_VAR = "AUTOPACK_BENCH_BARE_MODE"

BareMode = Literal["jsonresponse", "dict", "raw"]
BARE_MODES: tuple[BareMode, ...] = ("jsonresponse", "dict", "raw")


def create_bare_app(body: bytes, mode: BareMode = "jsonresponse") -> FastAPI:
    """A FastAPI app whose only endpoint returns ``body`` (a JSON document) in the given mode."""
    document: dict[str, Any] = json.loads(body)
    app = FastAPI(title="bare baseline", openapi_url=None, docs_url=None, redoc_url=None)

    if mode == "jsonresponse":

        @app.get("/api/runs/{run_id}")
        async def get_run_jsonresponse(run_id: str) -> Response:
            return JSONResponse(document)

    elif mode == "dict":

        @app.get("/api/runs/{run_id}")
        async def get_run_dict(run_id: str) -> dict[str, Any]:
            return document

    elif mode == "raw":

        @app.get("/api/runs/{run_id}")
        async def get_run_raw(run_id: str) -> Response:
            return Response(content=body, media_type="application/json")

    else:
        raise ValueError(f"unknown bare mode {mode!r}; expected one of {BARE_MODES}")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy"}

    return app


def app_from_env() -> FastAPI:
    """The uvicorn factory: reads the body file and the mode from the environment."""
    body = Path(os.environ[BODY_FILE_VAR]).read_bytes()
    mode = os.environ.get(MODE_VAR, "jsonresponse")
    if mode not in BARE_MODES:
        raise ValueError(f"{MODE_VAR}={mode!r}; expected one of {BARE_MODES}")
    return create_bare_app(body, mode)
