"""Many requests at once on few threads and connections: every request finishes, none waits out a
pool timeout (sessions live and die inside one threadpool hop, so a request waiting for a
connection can never block the one that would give it back)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from autopack.api.app import create_app
from tests.conftest import make_settings
from tests.factories import plan_body


def test_concurrent_reads_and_writes_on_one_thread_and_one_connection(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        database_url,
        tmp_path / "runs",
        http_threads=1,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout_seconds=5,
    )
    app = create_app(settings)

    async def scenario() -> list[int]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                assert (await client.post("/api/runs", json=plan_body("busy"))).status_code == 201
                requests = [client.get("/api/runs/busy") for _ in range(20)]
                requests += [client.get("/api/runs") for _ in range(10)]
                requests += [
                    client.post("/api/runs", json=plan_body(f"more-{i}")) for i in range(10)
                ]
                requests += [client.get("/api/projects/default/issues") for _ in range(5)]
                responses = await asyncio.gather(*requests)
                return [response.status_code for response in responses]

    statuses = asyncio.run(scenario())
    # A stall would wait out the 5 s pool timeout, then fail the waiting requests.
    assert sorted(set(statuses)) == [200, 201]
    assert statuses.count(201) == 10
