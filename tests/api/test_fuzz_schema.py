"""The API fuzzed against its own OpenAPI schema with schemathesis (docs/api.md).

Every operation of ``/openapi.json`` gets generated requests, valid and invalid (positive and
negative generation), sent in-process through schemathesis' ASGI transport to an app running
inside its lifespan on a SQLite database holding one project and one run. Every request carries
the bootstrap admin key, so the fuzzer reaches the routes rather than the 401. Each response
must:

- not be a server error (``not_a_server_error``: no 5xx);
- have a status code the operation documents (``status_code_conformance``);
- have the content type documented for that status (``content_type_conformance``);
- match the documented body schema (``response_schema_conformance``) and headers
  (``response_headers_conformance``).

Not checked: that every schema-valid request is accepted and every schema-invalid one refused
(``positive_data_acceptance``, ``negative_data_rejection``). Pydantic accepts more than the JSON
Schema it publishes says (``" 1e3 "`` as a decimal, a Unix time as a date-time), so those checks
would hold the schema to pydantic's every leniency; the invalid requests are still sent, and
must still get a documented 4xx, never a 5xx.

Bounded for CI: the schema's examples plus at most ``MAX_EXAMPLES`` generated cases per
operation and generation mode, a fixed seed with deterministic generation (the same cases on every
run, no example database), no shrinking and no deadline. Schemathesis' coverage phase is off: it
enumerates boundary values without a bound (about 800 cases for the plan body alone, which
quadruples the run time). The module runs in under 30 s on two (busy) cores.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import settings
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import ASGIClient, get_client, shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from autopack.api.app import create_app
from tests.conftest import make_settings
from tests.factories import plan_body

ADMIN_KEY = "apk_fuzz-admin-key-0123456789abcdef"
MAX_EXAMPLES = 25
SEED = 20_240_601
STREAM_OPERATION = "GET /api/runs/{run_id}/events/stream"

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "no-shrink": True,
            "database": "none",
        },
        # Stateful testing (links between operations) is out of scope: the seeded project and run
        # give the path parameters something to find. Coverage: see the module docstring.
        "phases": {"stateful": {"enabled": False}, "coverage": {"enabled": False}},
    }
)

# The schema, as the app serves it. Building the app reads no settings; the lifespan (below)
# is what connects to the database.
schema = schemathesis.openapi.from_dict(create_app().openapi(), config=CONFIG)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def fuzz_app(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[tuple[object, ASGIClient]]:
    """The app in its lifespan on a fresh SQLite copy, with one project and one run to find."""
    root = tmp_path_factory.mktemp("fuzz")
    database = root / "autopack.db"
    shutil.copyfile(sqlite_template, database)
    settings = make_settings(
        f"sqlite:///{database}",
        root / "runs",
        api_key=SecretStr(ADMIN_KEY),
        # Thousands of mutating requests a minute: the limit would answer most of them with 429
        # (documented, but the fuzzer would then test the limiter instead of the routes).
        rate_limit_per_minute=0,
    )
    app = create_app(settings)
    with get_client(app) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        assert client.post("/api/projects", json={"name": "default"}).status_code in (201, 409)
        created = client.post("/api/runs", json=plan_body(run_id="run-1"))
        assert created.status_code == 201, created.text
        try:
            yield app, client
        finally:
            shutdown_lifespans()


@schema.parametrize()
@settings(deadline=None)
def test_api_conforms_to_its_schema(
    case: schemathesis.Case, fuzz_app: tuple[object, ASGIClient]
) -> None:
    app, client = fuzz_app
    excluded = []
    if case.operation.label == STREAM_OPERATION:
        # A 200 is an endless text/event-stream: the transport cuts it after a few events, and
        # its body (events, not JSON) has no JSON schema to validate against. Every other
        # check still applies, 5xx included.
        excluded.append(response_schema_conformance)
    case.call_and_validate(
        session=client,
        app=app,
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        checks=CHECKS,
        excluded_checks=excluded,
    )
