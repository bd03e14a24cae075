"""With authentication on, every operation under /api needs a key with its scope.

The first test walks the OpenAPI schema, so a route added later is checked without anyone
remembering to: no key and a wrong key are 401, a key whose scope falls short is 403, the right
scope passes (whatever the route then answers to dummy parameters: 404 and 422 are fine).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session, sessionmaker

from autopack.api.app import create_app
from autopack.auth import service
from autopack.auth.schemas import Scope
from autopack.settings import Settings
from tests.auth.support import bearer, create_key
from tests.conftest import make_settings
from tests.factories import plan_body

SAFE = {"get", "head", "options"}


@dataclass
class Secured:
    client: TestClient
    keys: dict[Scope, str]
    revoked: str


@pytest.fixture
def secured(settings: Settings, session_factory: sessionmaker[Session]) -> Iterator[Secured]:
    keys = {scope: create_key(session_factory, f"{scope.value}-key", scope) for scope in Scope}
    revoked = create_key(session_factory, "old", Scope.ADMIN)
    with session_factory() as session:
        service.revoke_key(session, "old")
    with TestClient(create_app(settings)) as client:
        yield Secured(client, keys, revoked)


def expected_scope(path: str, method: str) -> Scope:
    """The rule, written out independently of the code that applies it."""
    if path.startswith("/api/keys"):
        return Scope.ADMIN
    return Scope.READ if method in SAFE else Scope.WRITE


def api_operations() -> list[tuple[str, str]]:
    schema = create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]
    return [
        (method, path)
        for path, item in schema["paths"].items()
        if path.startswith("/api")
        for method in item
    ]


OPERATIONS = api_operations()


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Response:
    url = re.sub(r"\{[^}]+\}", "no-such-thing", path)
    return client.request(method.upper(), url, headers=headers)


def _assert_unauthorized(response: Response, what: str) -> None:
    assert response.status_code == 401, f"{what}: {response.status_code} {response.text}"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


def test_the_schema_has_the_operations_to_walk() -> None:
    assert len(OPERATIONS) >= 19
    assert ("get", "/api/runs/{run_id}/events/stream") in OPERATIONS
    assert ("post", "/api/keys") in OPERATIONS


def test_every_api_operation_needs_a_key_with_its_scope(secured: Secured) -> None:
    client = secured.client
    for method, path in OPERATIONS:
        what = f"{method.upper()} {path}"
        _assert_unauthorized(_call(client, method, path, {}), f"{what} without a key")
        wrong = "apk_" + "x" * 43
        _assert_unauthorized(_call(client, method, path, bearer(wrong)), f"{what}, wrong key")
        _assert_unauthorized(
            _call(client, method, path, bearer(secured.revoked)), f"{what}, revoked key"
        )
        needed = expected_scope(path, method)
        for scope, key in secured.keys.items():
            response = _call(client, method, path, bearer(key))
            if scope.includes(needed):
                assert response.status_code not in (401, 403), (
                    f"{what} with a {scope} key: {response.status_code} {response.text}"
                )
            else:
                assert response.status_code == 403, (
                    f"{what} with a {scope} key (needs {needed}): {response.status_code}"
                )
                assert response.json()["error"]["code"] == "forbidden"


def test_health_and_ready_stay_open(secured: Secured) -> None:
    assert secured.client.get("/health").status_code == 200
    assert secured.client.get("/ready").status_code == 200
    assert secured.client.get("/api/runs").status_code == 401


def test_the_x_api_key_header_works_too(secured: Secured) -> None:
    client = secured.client
    assert client.get("/api/runs", headers={"X-API-Key": secured.keys[Scope.READ]}).is_success
    response = client.post(
        "/api/runs", json=plan_body("by-header"), headers={"X-API-Key": secured.keys[Scope.WRITE]}
    )
    assert response.status_code == 201
    wrong = client.get("/api/runs", headers={"X-API-Key": "apk_wrong"})
    _assert_unauthorized(wrong, "a wrong X-API-Key")
    # Another scheme in Authorization is no key.
    basic = client.get("/api/runs", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    _assert_unauthorized(basic, "Basic auth")


def test_no_key_is_echoed_or_logged(secured: Secured, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = secured.client
    presented = "apk_" + "S3cretS3cret" * 3
    responses = [
        client.get("/api/runs", headers=bearer(presented)),
        client.post("/api/runs", json=plan_body("r1"), headers=bearer(secured.keys[Scope.READ])),
        client.post("/api/runs", json=plan_body("r2"), headers=bearer(secured.keys[Scope.WRITE])),
        client.get("/api/runs/r2/events", headers=bearer(secured.keys[Scope.READ])),
        client.get("/api/runs", headers=bearer(secured.revoked)),
    ]
    secrets = [presented, secured.revoked, *secured.keys.values()]
    for response in responses:
        for secret in secrets:
            assert secret not in response.text
    for secret in secrets:
        assert secret not in caplog.text


def test_the_event_stream_takes_the_key_in_a_header(secured: Secured) -> None:
    client = secured.client
    write = bearer(secured.keys[Scope.WRITE])
    assert client.post("/api/runs", json=plan_body("streamed"), headers=write).status_code == 201
    assert client.post("/api/runs/streamed/cancel", headers=write).status_code == 200
    url = "/api/runs/streamed/events/stream"
    with client.stream("GET", url, headers=bearer(secured.keys[Scope.READ])) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())  # the run is finished: the stream ends
    assert "run.cancelled" in body or "CANCELLED" in body
    assert client.get(url).status_code == 401


def test_last_used_is_written_at_most_once_a_minute(
    secured: Secured, session_factory: sessionmaker[Session]
) -> None:
    def last_used() -> Any:
        with session_factory() as session:
            return {key.name: key.last_used_at for key in service.list_keys(session)}

    assert last_used()["read-key"] is None
    headers = bearer(secured.keys[Scope.READ])
    assert secured.client.get("/api/runs", headers=headers).status_code == 200
    first = last_used()["read-key"]
    assert first is not None
    time.sleep(0.05)
    for _ in range(3):
        assert secured.client.get("/api/projects", headers=headers).status_code == 200
    assert last_used()["read-key"] == first
    assert last_used()["write-key"] is None


def test_authentication_is_off_without_keys(client: TestClient) -> None:
    assert client.get("/api/runs").status_code == 200
    assert client.post("/api/runs", json=plan_body("open")).status_code == 201
    # A key sent anyway is ignored while authentication is off.
    assert client.get("/api/runs", headers=bearer("apk_whatever")).status_code == 200


def test_a_key_created_by_another_process_takes_effect_within_seconds(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    assert client.get("/api/runs").status_code == 200
    key = create_key(session_factory, "late", Scope.READ)  # as `autopack keys create` does
    deadline = time.monotonic() + 2.5
    while client.get("/api/runs").status_code != 401:
        assert time.monotonic() < deadline, "the new key did not turn authentication on"
        time.sleep(0.1)
    assert client.get("/api/runs", headers=bearer(key)).status_code == 200


def test_keys_managed_through_the_api(client: TestClient) -> None:
    # Open (no key yet): anyone may create the first key, which turns authentication on at once.
    created = client.post("/api/keys", json={"name": "boss", "scope": "admin"})
    assert created.status_code == 201, created.text
    admin = created.json()["key"]
    assert created.json()["scope"] == "admin"
    assert client.get("/api/keys").status_code == 401
    headers = bearer(admin)
    reader = client.post("/api/keys", json={"name": "reader"}, headers=headers).json()
    assert reader["scope"] == "read"
    listed = client.get("/api/keys", headers=headers).json()
    assert [key["name"] for key in listed] == ["boss", "reader"]
    assert all("key" not in key for key in listed)
    assert client.get("/api/keys", headers=bearer(reader["key"])).status_code == 403
    duplicate = client.post("/api/keys", json={"name": "reader"}, headers=headers)
    assert duplicate.status_code == 409
    revoked = client.post("/api/keys/reader/revoke", headers=headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    # Revoked through this server: refused at once, not after the cache's second.
    refused = client.get("/api/runs", headers=bearer(reader["key"]))
    _assert_unauthorized(refused, "a revoked key")
    assert "revoked" in refused.json()["error"]["message"]
    assert client.post("/api/keys/reader/revoke", headers=headers).status_code == 409
    assert client.post("/api/keys/nobody/revoke", headers=headers).status_code == 404


def test_the_bootstrap_key_is_an_admin_key(database_url: str, tmp_path: Any) -> None:
    bootstrap = "apk_bootstrap-" + "k" * 30
    settings = make_settings(database_url, tmp_path / "runs", api_key=bootstrap)
    with TestClient(create_app(settings)) as client:
        # Authentication is on with no key in the database.
        _assert_unauthorized(client.get("/api/runs"), "no key")
        _assert_unauthorized(client.get("/api/runs", headers=bearer(bootstrap + "x")), "near")
        _assert_unauthorized(client.get("/api/runs", headers=bearer(bootstrap[:-1])), "prefix")
        assert client.get("/api/runs", headers=bearer(bootstrap)).status_code == 200
        assert client.get("/api/keys", headers={"X-API-Key": bootstrap}).json() == []
        made = client.post(
            "/api/keys", json={"name": "w", "scope": "write"}, headers=bearer(bootstrap)
        )
        assert made.status_code == 201
        assert client.get("/api/runs", headers=bearer(made.json()["key"])).status_code == 200


def test_require_auth_keeps_the_api_closed_without_keys(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    key = create_key(session_factory, "only", Scope.ADMIN)
    with TestClient(create_app(settings, require_auth=True)) as client:
        assert client.get("/api/runs", headers=bearer(key)).status_code == 200
        assert client.post("/api/keys/only/revoke", headers=bearer(key)).status_code == 200
        # The last key is gone: the API stays closed instead of opening up.
        _assert_unauthorized(client.get("/api/runs"), "no key, none left")
        assert client.get("/health").status_code == 200
