"""The frontend image's nginx (``nginx.conf``), run for real in front of a real backend: security
headers on every response (nginx's own error pages and proxied API errors included) and each
sent once, caching, compression, the body limit, the ``/api`` proxy keeping its prefix, request
ids and forwarded headers, health checks, a 502 when the backend is down, and Server-Sent Events
arriving through the proxy as they happen. See ``nginx_harness`` for how the container's names
are mapped onto this machine.
"""

from __future__ import annotations

import gzip
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from autopack.api.dashboard import CONTENT_SECURITY_POLICY
from autopack.settings import Settings
from tests.deploy.nginx_harness import (
    Site,
    start_site,
    start_site_without_backend,
    stop_site,
    tail,
)
from tests.factories import plan_body

IMMUTABLE = "public, max-age=31536000, immutable"
# Exact values: every response through nginx carries each of these once.
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
PERMISSIONS_POLICY = "permissions-policy"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def running_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    site = start_site(tmp_path_factory.mktemp("nginx-site"))
    try:
        yield site
    finally:
        stop_site(site)


@pytest.fixture
def site(running_site: Site) -> Iterator[Site]:
    """The running site; the logs a test caused are printed at its teardown, which pytest shows
    when the test failed."""
    offsets = running_site.log_offsets()
    yield running_site
    print(running_site.logs_since(offsets))


@pytest.fixture(scope="module")
def site_without_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    site = start_site_without_backend(tmp_path_factory.mktemp("nginx-no-backend"))
    try:
        yield site
    finally:
        stop_site(site)


@pytest.fixture(scope="module")
def dist(running_site: Site) -> Path:
    return running_site.nginx.root


@pytest.fixture(scope="module")
def entry_script(dist: Path) -> str:
    """The path of the script index.html loads (a hashed file under /assets/)."""
    found = re.search(r'<script[^>]+src="(/assets/[^"]+\.js)"', (dist / "index.html").read_text())
    assert found is not None, "dist/index.html loads no /assets/*.js script"
    return found.group(1)


def assert_security_headers(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_list(name) == [value], f"{name} on {where}"
    permissions = response.headers.get_list(PERMISSIONS_POLICY)
    assert len(permissions) == 1, f"{PERMISSIONS_POLICY} on {where}"
    assert "camera=()" in permissions[0] and "microphone=()" in permissions[0]
    names = [name.decode("latin-1").lower() for name, _ in response.headers.raw]
    repeated = sorted({name for name in names if names.count(name) > 1})
    assert not repeated, f"headers sent more than once on {where}: {repeated}"


def big_json_body(size: int) -> bytes:
    return b'{"padding": "' + b"x" * size + b'"}'


# --- security headers --------------------------------------------------------------------------

Request = Callable[[httpx.Client, str], httpx.Response]
HEADER_CASES: dict[str, tuple[Request, int]] = {
    "index": (lambda client, script: client.get("/"), 200),
    "asset": (lambda client, script: client.get(script), 200),
    "client-route": (lambda client, script: client.get("/runs/some-run"), 200),
    "favicon": (lambda client, script: client.get("/favicon.svg"), 200),
    "api": (lambda client, script: client.get("/api/runs"), 200),
    "api-404": (lambda client, script: client.get("/api/runs/nope"), 404),
    "api-422": (lambda client, script: client.post("/api/runs", json={"run": {}}), 422),
    "health": (lambda client, script: client.get("/health"), 200),
    "missing-asset": (lambda client, script: client.get("/assets/nope.js"), 404),
    "nginx-413": (
        lambda client, script: client.post(
            "/api/runs",
            content=big_json_body(3 * MIB),
            headers={"Content-Type": "application/json"},
        ),
        413,
    ),
}


@pytest.mark.parametrize("case", list(HEADER_CASES))
def test_every_response_carries_the_security_headers_once(
    site: Site, entry_script: str, case: str
) -> None:
    make, status = HEADER_CASES[case]
    with site.client() as client:
        response = make(client, entry_script)
    assert response.status_code == status, response.text[:500]
    assert_security_headers(response)


def test_a_backend_that_is_down_is_a_502_with_the_headers(site_without_backend: Site) -> None:
    with site_without_backend.client() as client:
        for path in ("/api/runs", "/health", "/ready"):
            response = client.get(path)
            assert response.status_code == 502, path
            assert_security_headers(response)
            assert response.headers.get("cache-control") is None, path
        # The dashboard itself is still served.
        index = client.get("/")
    assert index.status_code == 200
    assert_security_headers(index)


# --- the dashboard's files -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/index.html", "/runs/some-run", "/usage"])
def test_index_and_client_routes_answer_index_html_revalidated(
    site: Site, dist: Path, path: str
) -> None:
    with site.client() as client:
        response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content == (dist / "index.html").read_bytes()
    assert response.headers.get_list("cache-control") == ["no-cache"]


def test_hashed_assets_are_immutable(site: Site, dist: Path, entry_script: str) -> None:
    with site.client() as client:
        response = client.get(entry_script, headers={"Accept-Encoding": "identity"})
        assert response.status_code == 200
        assert "javascript" in response.headers["content-type"]
        assert response.content == (dist / entry_script.lstrip("/")).read_bytes()
        assert response.headers.get_list("cache-control") == [IMMUTABLE]

        # A conditional request's 304 keeps the caching and the security headers.
        etag = response.headers["etag"]
        revalidated = client.get(entry_script, headers={"If-None-Match": etag})
    assert revalidated.status_code == 304
    assert revalidated.headers.get_list("cache-control") == [IMMUTABLE]
    assert_security_headers(revalidated)


def test_a_missing_asset_is_a_404_not_the_page(site: Site, dist: Path) -> None:
    with site.client() as client:
        response = client.get("/assets/nope.js")
    assert response.status_code == 404
    assert response.content != (dist / "index.html").read_bytes()
    # Not cached for a year: the file may exist after the next deployment.
    assert response.headers.get_list("cache-control") == ["no-cache"]


# --- compression ---------------------------------------------------------------------------------


def test_text_is_gzipped_when_asked_for(site: Site, dist: Path, entry_script: str) -> None:
    original = (dist / entry_script.lstrip("/")).read_bytes()
    with site.client() as client:
        with client.stream("GET", entry_script, headers={"Accept-Encoding": "gzip"}) as stream:
            raw = b"".join(stream.iter_raw())
        plain = client.get(entry_script, headers={"Accept-Encoding": "identity"})
        index = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert stream.headers.get("content-encoding") == "gzip"
    assert "Accept-Encoding" in stream.headers.get("vary", "")
    assert len(raw) < len(original)
    assert gzip.decompress(raw) == original
    assert_security_headers(stream)
    assert plain.headers.get("content-encoding") is None
    assert plain.content == original
    # index.html is under gzip_min_length (1 kB): not worth compressing.
    if len((dist / "index.html").read_bytes()) < 1024:
        assert index.headers.get("content-encoding") is None


# --- the API through the proxy -------------------------------------------------------------------


def test_the_api_prefix_is_kept(site: Site) -> None:
    with site.client() as client:
        runs = client.get("/api/runs", headers={"X-Request-ID": "nginx-test-prefix"})
        missing = client.get("/api/runs/nope")
    # The backend's JSON, not the dashboard (which /runs would be if /api were stripped).
    assert runs.status_code == 200
    assert runs.headers["content-type"] == "application/json"
    assert {"items", "total"} <= set(runs.json())
    assert logged_request(site, "nginx-test-prefix")["path"] == "/api/runs"
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_api_caching_is_left_to_the_backend(site: Site) -> None:
    assert site.backend is not None
    direct_url = f"http://127.0.0.1:{site.backend.port}"
    for path in ("/api/runs", "/api/runs/nope", "/health"):
        with site.client() as client:
            proxied = client.get(path)
        direct = httpx.get(direct_url + path, timeout=10)
        assert proxied.status_code == direct.status_code, path
        assert proxied.headers.get_list("cache-control") == direct.headers.get_list(
            "cache-control"
        ), path
        assert IMMUTABLE not in proxied.headers.get_list("cache-control")


def test_the_health_checks_are_the_backends(site: Site) -> None:
    with site.client() as client:
        health = client.get("/health")
        ready = client.get("/ready")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "healthy"
    assert body["database"]["dialect"] == "sqlite"
    assert ready.status_code == 200
    assert ready.headers["content-type"] == "application/json"


def test_request_ids_reach_the_backend_and_come_back(site: Site) -> None:
    with site.client() as client:
        sent = client.get("/api/runs", headers={"X-Request-ID": "nginx-test.id-1"})
        unsent = client.get("/api/runs")
    assert sent.headers.get_list("x-request-id") == ["nginx-test.id-1"]
    assert logged_request(site, "nginx-test.id-1")["path"] == "/api/runs"
    ids = unsent.headers.get_list("x-request-id")
    assert len(ids) == 1 and re.fullmatch(r"[0-9a-f]{32}", ids[0])
    assert logged_request(site, ids[0])["path"] == "/api/runs"
    # The id made up for a caller that sent none is nginx's own ($request_id): the one in its
    # access log is the one the backend used.
    wait_for_text(site.nginx.access_log, f'{ids[0]} 200 "GET /api/runs HTTP/1.1"')


def test_forwarded_headers_are_nginxs(site: Site) -> None:
    """The backend sees the caller's address (not nginx's, nor one the caller made up), the
    caller's Host with its port, and nginx's scheme."""
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with site.client(transport=transport) as client:
        response = client.get(
            "/api/runs",
            headers={
                "X-Request-ID": "nginx-test-forwarded",
                "X-Forwarded-For": "203.0.113.9",
                "X-Forwarded-Proto": "https",
            },
        )
        # FastAPI's trailing-slash redirect is built from the Host and the scheme it was given.
        # The caller's Host here is a published port that is not nginx's (Docker's 8080:80):
        # nginx's own rewrite of the backend's Location (proxy_redirect) would put its own port.
        redirect = client.get(
            "/api/runs/",
            headers={"X-Forwarded-Proto": "https", "Host": "dashboard.example:8080"},
        )
    assert response.status_code == 200
    assert logged_request(site, "nginx-test-forwarded")["client"] == "127.0.0.2"
    assert redirect.status_code == 307
    assert redirect.headers["location"] == "http://dashboard.example:8080/api/runs"


def test_the_body_limit_is_the_apis(site: Site) -> None:
    """nginx lets through every body the API would accept (its default limit) and refuses a
    larger one itself, with the API's JSON envelope: past the limit the API answers before
    reading the body and closes, which nginx, still sending it, can turn into a 502."""
    limit = Settings.model_fields["max_request_body_bytes"].default
    at_limit = big_json_body(limit - len(big_json_body(0)))
    assert len(at_limit) == limit

    def post(body: bytes, request_id: str) -> httpx.Response:
        headers = {"Content-Type": "application/json", "X-Request-ID": request_id}
        with site.client() as client:
            return client.post("/api/runs", content=body, headers=headers)

    over = post(at_limit + b" ", "nginx-test-over-limit")
    far_over = post(big_json_body(3 * MIB), "nginx-test-far-over-limit")
    accepted = post(at_limit, "nginx-test-at-limit")
    for response in (over, far_over):
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/json"
        error = response.json()["error"]
        assert error["code"] == "payload_too_large"
        assert error["details"] == {"max_bytes": limit}
        assert_security_headers(response)
    # Read by the API, which then finds it is no plan.
    assert accepted.status_code == 422, accepted.text[:300]
    assert accepted.json()["error"]["code"] == "invalid_plan"
    # The refusals were nginx's: the backend, which logged the later request, saw neither.
    logged_request(site, "nginx-test-at-limit")
    logged = {line.get("request_id") for line in backend_log_lines(site)}
    assert not logged & {"nginx-test-over-limit", "nginx-test-far-over-limit"}


# --- Server-Sent Events --------------------------------------------------------------------------


def read_event(lines: Iterator[str]) -> dict[str, str]:
    """The next event of a stream (ping comments skipped)."""
    event: dict[str, str] = {}
    for line in lines:
        if line == "":
            if event:
                return event
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        event[name] = value.removeprefix(" ")
    raise AssertionError(f"the stream ended before a whole event (read {event})")


def read_until(lines: Iterator[str], kind: str) -> tuple[dict[str, str], float]:
    """Events up to the first of type ``kind``; with how long it took to arrive."""
    started = time.monotonic()
    seen = []
    while True:
        event = read_event(lines)
        seen.append(event.get("event"))
        if event.get("event") == kind:
            return event, time.monotonic() - started
        assert len(seen) < 100, seen


def test_events_stream_through_the_proxy_as_they_happen(site: Site) -> None:
    with site.client() as client:
        created = client.post("/api/runs", json=plan_body(run_id="nginx-sse", tiers=1))
    assert created.status_code == 201, created.text
    # Reads time out after 3 s: each event must arrive on its own, not when the stream ends
    # (gzip, for one, would hold small writes back until its buffer fills).
    timeout = httpx.Timeout(10, read=3)
    with (
        httpx.Client(base_url=site.url, timeout=timeout) as stream_client,
        stream_client.stream("GET", "/api/runs/nginx-sse/events/stream") as stream,
        site.client() as client,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers.get("content-encoding") is None
        assert stream.headers.get_list("cache-control") == ["no-store"]
        assert_security_headers(stream)
        lines = stream.iter_lines()
        _, waited = read_until(lines, "run.created")
        assert waited < 3

        # The run is queued and nothing executes it: the stream stays open, and an event
        # written now reaches this reader through nginx promptly.
        issue = {"issue_key": "nginx:sse", "severity": "minor", "source": "tests"}
        assert client.post("/api/runs/nginx-sse/issues", json=issue).status_code == 201
        recorded, waited = read_until(lines, "issue.recorded")
        assert waited < 3
        assert json.loads(recorded["data"])["payload"]["issue_key"] == "nginx:sse"

        # Cancelling finishes the run: its last event arrives, then the stream ends.
        assert client.post("/api/runs/nginx-sse/cancel").status_code == 200
        changed, waited = read_until(lines, "run.state_changed")
        assert waited < 3
        assert "CANCELLED" in changed["data"]
        rest = list(lines)
    assert not any(line.startswith("data:") for line in rest), rest


def backend_log_lines(site: Site) -> list[dict[str, Any]]:
    lines = []
    for text in site.backend_log().splitlines():
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            lines.append(value)
    return lines


def logged_request(site: Site, request_id: str, seconds: float = 5) -> dict[str, Any]:
    """The backend's access log line of a request (written once the response is done, which
    may be a moment after the client has it)."""
    deadline = time.monotonic() + seconds
    while True:
        found = [line for line in backend_log_lines(site) if line.get("request_id") == request_id]
        if found:
            assert len(found) == 1, found
            return found[0]
        assert time.monotonic() < deadline, f"the backend logged no request {request_id}"
        time.sleep(0.05)


def wait_for_text(path: Path, text: str, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while text not in tail(path):
        assert time.monotonic() < deadline, f"{text!r} is not in {path}"
        time.sleep(0.05)
