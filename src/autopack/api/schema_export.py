"""The OpenAPI schema as the dashboard's generated client sees it.

``python -m autopack.api.schema_export [PATH]`` writes it (default:
``src/frontend/api/openapi.json``); ``npm run generate:api`` turns that file into the
TypeScript types. A test fails when the committed file differs from what the app serves, so
the client can never drift from the API.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from autopack.api.app import create_app
from autopack.settings import Settings

DEFAULT_PATH = Path("src/frontend/api/openapi.json")


def current_schema() -> dict[str, Any]:
    """The schema of an app built from defaults only: no environment, no .env file, no
    database connection (the schema does not depend on any of them)."""
    settings = Settings(_env_file=None, database_url="sqlite://")
    return create_app(settings).openapi()


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT_PATH
    path.write_text(render(current_schema()), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
