"""X-Request-ID: generated, honoured when sane, replaced when not, and on every response —
errors, refusals made before routing (413) and unhandled errors (500) included."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from autopack.api.app import create_app
from autopack.observability.request_id import accept_request_id
from autopack.settings import Settings

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def dialect() -> str:
    # Nothing here depends on the database: one dialect is enough.
    return "sqlite"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_a_request_id_is_generated_and_echoed(client: TestClient) -> None:
    first = client.get("/health").headers["X-Request-ID"]
    second = client.get("/health").headers["X-Request-ID"]
    assert GENERATED.fullmatch(first) and GENERATED.fullmatch(second)
    assert first != second


@pytest.mark.parametrize("incoming", ["abc-123", "a.b_c-D", "7" * 128])
def test_a_sane_incoming_request_id_is_honoured(client: TestClient, incoming: str) -> None:
    response = client.get("/api/runs", headers={"X-Request-ID": incoming})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["", "has space", "x" * 129, 'quote"d', "semi;colon", "new\tline", "ünïcode"],
)
def test_a_bad_incoming_request_id_is_replaced(client: TestClient, incoming: str) -> None:
    response = client.get("/health", headers={"X-Request-ID": incoming.encode("utf-8")})
    echoed = response.headers["X-Request-ID"]
    assert GENERATED.fullmatch(echoed), echoed
    assert echoed != incoming


def test_error_responses_carry_the_request_id(client: TestClient) -> None:
    missing = client.get("/api/nothing-here", headers={"X-Request-ID": "req-404"})
    assert missing.status_code == 404
    assert missing.headers["X-Request-ID"] == "req-404"
    # The envelope keeps its shape: the id is in the header, not the body.
    assert missing.json() == {
        "error": {"code": "not_found", "message": "Not Found", "details": None}
    }
    wrong = client.delete("/api/runs", headers={"X-Request-ID": "req-405"})
    assert wrong.status_code == 405
    assert wrong.headers["X-Request-ID"] == "req-405"


def test_a_body_refused_before_routing_carries_the_request_id(
    client: TestClient, settings: Settings
) -> None:
    body = b"x" * (settings.max_request_body_bytes + 1)
    refused = client.post(
        "/api/runs",
        content=body,
        headers={"Content-Type": "application/json", "X-Request-ID": "req-413"},
    )
    assert refused.status_code == 413
    assert refused.headers["X-Request-ID"] == "req-413"
    assert refused.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:
        # No Content-Length: the limit is found by counting a streamed body.
        for _ in range(settings.max_request_body_bytes // 1024 + 2):
            yield b"y" * 1024

    streamed = client.post("/api/runs", content=chunks(), headers={"Content-Type": "text/plain"})
    assert streamed.status_code == 413
    assert GENERATED.fullmatch(streamed.headers["X-Request-ID"])


def test_an_unhandled_error_carries_the_request_id(client: TestClient) -> None:
    response = client.get("/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "req-500"
    assert response.json()["error"]["code"] == "internal_error"


def test_accept_request_id() -> None:
    assert accept_request_id("ok-1") == "ok-1"
    assert GENERATED.fullmatch(accept_request_id(None))
    assert GENERATED.fullmatch(accept_request_id("../etc/passwd"))
