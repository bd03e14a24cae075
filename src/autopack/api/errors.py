"""One error envelope for every error, and the one place that maps domain errors to HTTP."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from autopack import errors
from autopack.plans.loader import format_loc

logger = logging.getLogger(__name__)

# Most specific first: the first class an error is an instance of decides its status.
STATUS_BY_ERROR: list[tuple[type[errors.AutopackError], int]] = [
    (errors.NotFoundError, 404),
    (errors.IllegalTransitionError, 409),
    (errors.ConflictError, 409),
    (errors.InvalidInputError, 422),
    (errors.UpstreamError, 502),
    (errors.SchemaNotReadyError, 503),
    (errors.DatabaseUnavailableError, 503),
    (errors.MemoryUnavailableError, 503),
    (errors.ConfigurationError, 500),
]

CODE_BY_STATUS = {
    400: "malformed_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    500: "internal_error",
    502: "upstream_error",
    503: "unavailable",
}


def error_response(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"code": code, "message": message, "details": details}},
    )


def status_for(exc: errors.AutopackError) -> int:
    if exc.code == "malformed_input":
        return 400
    for error_class, status in STATUS_BY_ERROR:
        if isinstance(exc, error_class):
            return status
    return 500


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.AutopackError)
    async def _domain(request: Request, exc: errors.AutopackError) -> JSONResponse:
        return error_response(status_for(exc), exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "loc": format_loc([str(p) if not isinstance(p, int) else p for p in err["loc"]]),
                "message": err["msg"],
            }
            for err in exc.errors()
        ]
        first = problems[0] if problems else {"loc": "(request)", "message": "invalid"}
        return error_response(
            422, "invalid_input", f"invalid request: {first['loc']}: {first['message']}", problems
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = CODE_BY_STATUS.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        response = error_response(exc.status_code, code, message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(OperationalError)
    async def _database(request: Request, exc: OperationalError) -> JSONResponse:
        logger.warning("database unavailable: %s", type(exc.orig).__name__)
        return error_response(503, "database_unavailable", "the database is unavailable")

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        # PostgreSQL text cannot hold NUL: a NUL in any path, query or body value reaches the
        # driver, which refuses it. That is the caller's input, not a server fault.
        if "NUL" in str(exc.orig):
            return error_response(
                422, "invalid_input", "text values cannot contain NUL (0x00) characters"
            )
        logger.exception("database refused a value on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "an unexpected error occurred")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "an unexpected error occurred")
