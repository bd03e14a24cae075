"""The dashboard's API client is generated from the app's OpenAPI schema, never hand-written.

The committed schema (``src/frontend/api/openapi.json``) must be exactly what the app serves;
``src/frontend/api/schema.test.ts`` (Vitest) checks the TypeScript generated from it. Together
they fail whenever the API changes and the client was not regenerated.
"""

from __future__ import annotations

import json
from pathlib import Path

from autopack.api.schema_export import DEFAULT_PATH, current_schema, render

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = REPO_ROOT / DEFAULT_PATH
REGENERATE = "run `.venv/bin/python -m autopack.api.schema_export && npm run generate:api`"


def test_the_committed_schema_is_what_the_app_serves() -> None:
    committed = COMMITTED.read_text(encoding="utf-8")
    current = render(current_schema())
    if committed != current:
        old, new = json.loads(committed), json.loads(current)
        changed = sorted(
            set(old["paths"]) ^ set(new["paths"])
            | {
                p
                for p in set(old["paths"]) & set(new["paths"])
                if old["paths"][p] != new["paths"][p]
            }
        )
        raise AssertionError(
            f"{DEFAULT_PATH} is stale (paths that differ: {changed or 'none; components differ'}); "
            + REGENERATE
        )


def test_every_operation_the_dashboard_calls_exists_in_the_schema() -> None:
    # The dashboard calls the API only through generated paths; a renamed route breaks its build
    # (tsc), and this names the routes it relies on for anyone reading the API side.
    paths = current_schema()["paths"]
    for path in (
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/runs/{run_id}/events/stream",
        "/api/runs/{run_id}/cancel",
        "/api/runs/{run_id}/phases/{phase_id}/retry",
        "/health",
    ):
        assert path in paths, path
