"""The dashboard served by the app: its files with the right types and caching, the SPA
fallback, the API's 404s left alone, no way out of the directory, a clear answer when it has
not been built, and the security headers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from autopack.api.app import create_app
from autopack.api.dashboard import (
    CONTENT_SECURITY_POLICY,
    dashboard_dir,
    not_built_message,
    repository_root,
)
from autopack.settings import Settings
from tests.conftest import make_settings

INDEX = '<!doctype html><html><body><div id="root"></div></body></html>\n'
SCRIPT = "console.log('autopack dashboard');\n"
SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
PASSWD = Path("/etc/passwd")


@pytest.fixture
def database(sqlite_template: Path, tmp_path: Path) -> str:
    """The dashboard does not depend on the database: SQLite is enough."""
    path = tmp_path / "autopack.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "app-abc123.js").write_text(SCRIPT)
    (root / "assets" / "app-abc123.css").write_text("body { margin: 0 }\n")
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>\n")
    (root / ".secret").write_text("hidden\n")
    (root / "leak").symlink_to(PASSWD)
    return root


def _client(database: str, tmp_path: Path, dashboard: Path) -> TestClient:
    settings = make_settings(database, tmp_path / "runs", dashboard_dir=dashboard)
    return TestClient(create_app(settings))


@pytest.fixture
def client(database: str, tmp_path: Path, dist: Path) -> Iterator[TestClient]:
    with _client(database, tmp_path, dist) as client:
        yield client


def _assert_security_headers(response: object, *, csp: bool) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    for name, value in SECURITY.items():
        assert headers.get(name) == value, name
    if csp:
        assert headers.get("content-security-policy") == CONTENT_SECURITY_POLICY
    else:
        assert "content-security-policy" not in headers


def test_assets_are_served_with_their_type_and_cached_for_good(client: TestClient) -> None:
    response = client.get("/assets/app-abc123.js")
    assert response.status_code == 200
    assert response.text == SCRIPT
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    _assert_security_headers(response, csp=True)
    css = client.get("/assets/app-abc123.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    icon = client.get("/favicon.svg")
    assert icon.headers["content-type"] == "image/svg+xml"
    assert icon.headers["cache-control"] == "no-cache"


def test_index_and_the_spa_fallback(client: TestClient) -> None:
    for path in ("/", "/index.html", "/runs/abc", "/runs/abc/phases/p1", "/settings?tab=keys"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.text == INDEX, path
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        _assert_security_headers(response, csp=True)
    head = client.head("/runs/abc")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == "text/html; charset=utf-8"


def test_revalidation_answers_304(client: TestClient) -> None:
    first = client.get("/")
    etag = first.headers["etag"]
    again = client.get("/", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert client.get("/", headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/api/nope", "/api", "/api/runs/x/nothing", "/health/x", "/docs/x", "/metrics/x"],
)
def test_api_paths_stay_json_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "Not Found", "details": None}
    }
    _assert_security_headers(response, csp=False)


def test_other_methods_and_missing_assets_are_404(client: TestClient) -> None:
    for response in (
        client.post("/runs/abc"),
        client.delete("/"),
        client.get("/assets/missing-000.js"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/..%2f..%2fetc/passwd",
        "/..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/assets/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/assets/..%5c..%5cindex.html",
        "/.secret",
        "/index.html%00.js",
    ],
)
def test_nothing_outside_the_directory_is_served(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, (path, response.status_code)
    assert "root:" not in response.text and "hidden" not in response.text


def test_a_link_out_of_the_directory_is_not_followed(client: TestClient) -> None:
    response = client.get("/leak")
    assert "root:" not in response.text
    assert response.text == INDEX  # not a file of the dashboard: the SPA fallback


def test_the_api_and_docs_are_unchanged(client: TestClient) -> None:
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    _assert_security_headers(health, csp=False)
    runs = client.get("/api/runs")
    assert runs.status_code == 200 and runs.json()["items"] == []
    _assert_security_headers(runs, csp=False)
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    _assert_security_headers(docs, csp=False)  # Swagger UI runs inline script
    assert client.get("/openapi.json").status_code == 200
    too_big = client.post("/api/runs", content=b"x" * 2_000_000)
    assert too_big.status_code == 413
    _assert_security_headers(too_big, csp=False)


def test_not_built_is_503_saying_how_to_build(database: str, tmp_path: Path) -> None:
    empty = tmp_path / "nothing-built"
    with _client(database, tmp_path, empty) as client:
        for path in ("/", "/runs/abc"):
            page = client.get(path, headers={"Accept": "text/html,application/xhtml+xml"})
            assert page.status_code == 503
            assert page.headers["content-type"].startswith("text/html")
            text = " ".join(page.text.split())
            assert "The dashboard has not been built" in text
            assert "npm ci &amp;&amp; npm run build" in text
            assert str(repository_root()) in text and "AUTOPACK_DASHBOARD_DIR" in text
            _assert_security_headers(page, csp=True)
        as_json = client.get("/", headers={"Accept": "application/json"})
        assert as_json.status_code == 503
        error = as_json.json()["error"]
        assert error["code"] == "dashboard_not_built"
        assert "npm ci && npm run build" in error["message"]
        assert error["details"] == {"dashboard_dir": str(empty)}
        # The API does not need the dashboard.
        assert client.get("/api/runs").status_code == 200
        assert client.get("/health").status_code == 200
        assert client.get("/api/nope").status_code == 404


def test_default_directory_is_dist_of_the_repository(tmp_path: Path) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.dashboard_dir is None
    assert dashboard_dir(settings) == repository_root() / "dist"
    assert (repository_root() / "src" / "autopack" / "__init__.py").is_file()
    built = tmp_path / "built"
    built.mkdir()
    custom = Settings(_env_file=None, dashboard_dir=built)  # type: ignore[call-arg]
    assert not_built_message(custom) is not None
    (built / "index.html").write_text(INDEX)
    assert not_built_message(custom) is None
