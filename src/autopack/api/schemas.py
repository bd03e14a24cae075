"""Bodies shared by every part of the API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

# The largest id or offset a request may carry: SQL's BIGINT. Past it the database (or the SQLite
# driver) fails on the query instead of finding nothing, so larger values are refused with 422.
SQL_BIGINT_MAX = 2**63 - 1
# For names in query strings: PostgreSQL text cannot hold NUL, so a NUL would fail the query
# (a 500) instead of finding nothing; refused with 422 instead.
NO_NUL = r"^[^\x00]*$"


class ErrorBody(BaseModel):
    code: str = Field(description="Stable, machine-readable error code")
    message: str = Field(description="What is wrong, for a person")
    details: Any = Field(default=None, description="Structured detail, e.g. each invalid field")


class ErrorEnvelope(BaseModel):
    """The shape of every error response."""

    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in {
        400: "Malformed request",
        404: "Not found",
        409: "Conflict with the current state",
        413: "Request body too large",
        422: "Invalid input",
        503: "Database unavailable",
    }.items()
}


# What every route under /api may also answer once authentication is on (docs/security.md).
ACCESS_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in {
        401: "No valid API key (missing, unknown or revoked)",
        403: "The API key's scope does not cover this operation",
        429: "Too many changes a minute for this key; see Retry-After",
    }.items()
}
