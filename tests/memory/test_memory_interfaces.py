"""The memory through its interfaces: dense retrieval through a real HTTP embeddings server
(the wire format, in a thread), the server mode against a Qdrant that is not there, the CLI,
the API and /health, on both databases."""

from __future__ import annotations

import hashlib
import json
import math
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from autopack.api.app import create_app
from autopack.errors import UpstreamError
from autopack.memory import lexical
from autopack.memory.embedders import OpenAICompatibleEmbedder
from autopack.memory.service import MemoryService
from autopack.settings import Settings
from tests.cli.support import Invoke
from tests.conftest import make_settings
from tests.memory.test_memory_core import git

DIMENSIONS = 64


def token_vector(text: str) -> list[float]:
    """A deterministic embedding for tests only: each token adds to a few hashed dimensions, so
    texts sharing words are close (cosine). It stands in for a real model behind the wire."""
    vector = [0.0] * DIMENSIONS
    for token in lexical.tokenize(text):
        digest = hashlib.sha256(token.encode()).digest()
        vector[digest[0] % DIMENSIONS] += 1.0
        vector[digest[1] % DIMENSIONS] += 0.5
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


class EmbeddingsHandler(BaseHTTPRequestHandler):
    requests: list[dict[str, object]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/embeddings" or self.headers.get("Authorization") != "Bearer ek":
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b'{"error": "no"}')
            return
        type(self).requests.append(body)
        data = [
            {"object": "embedding", "index": i, "embedding": token_vector(text)}
            for i, text in enumerate(body["input"])
        ]
        # Out of order on purpose: clients must use `index`.
        reply = json.dumps({"object": "list", "data": data[::-1], "model": body["model"]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(reply.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def embeddings_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EmbeddingsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def small_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "auth.py").write_text(
        "def verify_password_hash(stored, attempt):\n    return stored == attempt\n"
    )
    (repo / "cache.py").write_text("def evict_stale_entries(cache):\n    cache.clear()\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "c")
    return repo


def test_dense_retrieval_is_fused_with_lexical(
    tmp_path: Path, small_repo: Path, embeddings_url: str
) -> None:
    settings = make_settings(
        "sqlite://",
        tmp_path / "runs",
        embeddings_base_url=embeddings_url,
        embeddings_model="test-embed",
        embeddings_api_key="ek",
    )
    memory = MemoryService.from_settings(settings)
    try:
        memory.index_repository("p", small_repo)
        assert EmbeddingsHandler.requests[-1]["model"] == "test-embed"
        embedded = len(EmbeddingsHandler.requests)
        hits = memory.search("code", "verify password hash", project="p")
        assert len(EmbeddingsHandler.requests) == embedded + 1  # the query went through it
        assert hits[0].payload["path"] == "auth.py"
        # A reciprocal-rank-fusion score, not a BM25 or cosine one.
        assert 0 < hits[0].score <= 1
        assert memory.stats().embedder == "test-embed"
        # Dense alone still finds a text sharing words when lexical has nothing exact.
        assert memory.search("code", "stale entries evict")[0].payload["path"] == "cache.py"
    finally:
        memory.close()


def test_embedder_errors_are_clear(embeddings_url: str) -> None:
    bad_key = OpenAICompatibleEmbedder(embeddings_url, "m", "wrong")
    with pytest.raises(UpstreamError, match="answered 401"):
        bad_key.embed(["x"])
    down = OpenAICompatibleEmbedder(f"http://127.0.0.1:{free_port()}/v1", "m", timeout=2)
    with pytest.raises(UpstreamError, match="cannot be reached"):
        down.embed(["x"])


def test_server_mode_when_no_qdrant_answers(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    settings = make_settings("sqlite://", tmp_path / "runs", qdrant_url=url)
    memory = MemoryService.from_settings(settings)
    try:
        stats = memory.stats()
        assert (stats.mode, stats.status, stats.location) == ("server", "unreachable", url)
    finally:
        memory.close()
    assert not (tmp_path / "runs" / "memory").exists()


def test_health_reports_memory_without_deciding_health(settings: Settings, tmp_path: Path) -> None:
    with TestClient(create_app(settings)) as client:
        body = client.get("/health").json()
        assert body["status"] == "healthy"
        assert body["memory"] == {
            "mode": "embedded",
            "status": "ok",
            "collections": {
                "autopack_code": 0,
                "autopack_summaries": 0,
                "autopack_fixes": 0,
                "autopack_rules": 0,
            },
        }
    down = settings.model_copy(update={"qdrant_url": f"http://127.0.0.1:{free_port()}"})
    with TestClient(create_app(down)) as client:
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "healthy"
        assert health.json()["memory"] == {
            "mode": "server",
            "status": "unreachable",
            "collections": {},
        }
        assert client.get("/api/memory/stats").json()["status"] == "unreachable"
        failed = client.get("/api/memory/search", params={"q": "xylophone"})
        assert failed.status_code == 503
        assert failed.json()["error"]["code"] == "memory_unavailable"


def test_api_search_and_stats(settings: Settings, small_repo: Path) -> None:
    with TestClient(create_app(settings)) as client:
        client.app.state.memory.get().index_repository("p", small_repo)  # type: ignore[attr-defined]
        found = client.get(
            "/api/memory/search", params={"q": "evict_stale_entries", "project": "p"}
        )
        assert found.status_code == 200, found.text
        body = found.json()
        assert body["collection"] == "autopack_code"
        top = body["hits"][0]
        assert (top["path"], top["start_line"], top["end_line"]) == ("cache.py", 1, 2)
        assert "evict_stale_entries" in top["text"]
        assert top["payload"]["project"] == "p" and "text" not in top["payload"]
        stats = client.get("/api/memory/stats").json()
        assert stats["mode"] == "embedded" and stats["status"] == "ok"
        assert stats["collections"]["autopack_code"] == 2
        bad = client.get("/api/memory/search", params={"q": "x", "collection": "nope"})
        assert bad.status_code == 422


def test_cli_index_search_stats(cli: Invoke, small_repo: Path, runs_dir: Path) -> None:
    created = cli("memory", "index", "--project", "p", "--repo", str(small_repo))
    assert created.exit_code == 0, created.output
    assert "2 files (2 chunks)" in created.output
    again = cli("memory", "index", "--project", "p", "--repo", str(small_repo))
    assert "0 files (0 chunks)" in again.output, again.output
    found = cli("memory", "search", "verify_password_hash", "--project", "p")
    assert found.exit_code == 0, found.output
    assert "auth.py:1-2" in found.output
    stats = cli("memory", "stats", "--json")
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.output)["collections"]["autopack_code"] == 2
    assert (runs_dir / "memory").is_dir()
    table = cli("memory", "stats")
    assert "embedded" in table.output and "autopack_code" in table.output


def test_cli_index_uses_the_projects_repository(
    cli: Invoke, small_repo: Path, database_url: str, runs_dir: Path
) -> None:
    from autopack.cli import context
    from autopack.projects import service as projects
    from autopack.projects.schemas import ProjectCreate

    missing = cli("memory", "index", "--project", "nope")
    assert missing.exit_code == 1 and "does not exist" in missing.output
    settings = make_settings(database_url, runs_dir)
    with context.open_database(settings) as ctx, ctx.session() as session:
        projects.register_project(session, ProjectCreate(name="shop", repo=str(small_repo)))
        session.commit()
    done = cli("memory", "index", "--project", "shop")
    assert done.exit_code == 0, done.output
    assert "2 files" in done.output
