"""Responses serialised by pydantic directly.

A route that returns a model lets FastAPI re-validate it (in another threadpool hop, for sync
routes) before serialising it. The hottest reads — the dashboard polls them — build a validated
model already, so they return its JSON as it is; ``response_model`` still documents the shape.
"""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    return Response(
        content=model.model_dump_json(), status_code=status_code, media_type="application/json"
    )
