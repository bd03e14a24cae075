"""Events: every state change writes one; paged reads; a live SSE stream resumable by id."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from autopack.runs.models import Run
from autopack.runs.states import RunState, transition_run
from tests.factories import plan_body


def _parse_sse(text: str) -> list[dict[str, Any]]:
    events = []
    text = text.replace("\r\n", "\n")  # the SSE spec allows CRLF, LF or CR line ends
    for block in text.strip().split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            key, _, value = line.partition(": ")
            fields[key] = value
        if "data" in fields:
            fields["data"] = json.loads(fields["data"])
            events.append(fields)
    return events


def _move(factory: sessionmaker[Session], run_id: str, *states: RunState) -> None:
    with factory() as session:
        run = session.scalars(select(Run).where(Run.run_id == run_id)).one()
        for state in states:
            transition_run(session, run, state)
            session.commit()


def test_events_page_in_order_with_a_cursor(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    client.post("/api/runs", json=plan_body("ev"))
    _move(session_factory, "ev", RunState.RUNNING, RunState.PAUSED, RunState.RUNNING)
    first = client.get("/api/runs/ev/events", params={"limit": 2}).json()
    assert [e["type"] for e in first["items"]] == ["run.created", "run.state_changed"]
    assert first["next_after"] == first["items"][-1]["id"]
    rest = client.get("/api/runs/ev/events", params={"after": first["next_after"]}).json()
    assert [e["payload"]["to"] for e in rest["items"]] == ["PAUSED", "RUNNING"]
    assert rest["next_after"] is None
    ids = [e["id"] for e in first["items"] + rest["items"]]
    assert ids == sorted(ids) and len(set(ids)) == 4


def test_events_of_other_runs_do_not_mix(client: TestClient) -> None:
    client.post("/api/runs", json=plan_body("a"))
    client.post("/api/runs", json=plan_body("b"))
    client.post("/api/runs/b/cancel")
    assert [e["type"] for e in client.get("/api/runs/a/events").json()["items"]] == ["run.created"]


def test_stream_of_a_finished_run_replays_and_ends(client: TestClient) -> None:
    client.post("/api/runs", json=plan_body("done"))
    client.post("/api/runs/done/cancel")
    with client.stream("GET", "/api/runs/done/events/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _parse_sse(response.read().decode())
    assert [e["event"] for e in events] == ["run.created", "run.state_changed"]
    assert [int(e["id"]) for e in events] == [e["data"]["id"] for e in events]


def test_stream_resumes_after_last_event_id(client: TestClient) -> None:
    client.post("/api/runs", json=plan_body("resume"))
    client.post("/api/runs/resume/cancel")
    first_id = client.get("/api/runs/resume/events").json()["items"][0]["id"]
    with client.stream(
        "GET", "/api/runs/resume/events/stream", headers={"Last-Event-ID": str(first_id)}
    ) as response:
        events = _parse_sse(response.read().decode())
    assert [e["data"]["payload"].get("to") for e in events] == ["CANCELLED"]
    with client.stream("GET", f"/api/runs/resume/events/stream?after={first_id}") as response:
        assert len(_parse_sse(response.read().decode())) == 1


def test_unusable_last_event_ids_replay_from_the_start(client: TestClient) -> None:
    # Both were 500s: an id past BIGINT overflowed the query (the schema fuzzer found the same
    # on ?offset=), and "²" (latin-1, so a valid header) passes str.isdigit() but not int().
    # A browser's id is a hint: one that cannot be an id is ignored.
    client.post("/api/runs", json=plan_body("odd-ids"))
    client.post("/api/runs/odd-ids/cancel")
    for last_event_id in (b"\xb2", str(2**64).encode(), b"x"):
        with client.stream(
            "GET", "/api/runs/odd-ids/events/stream", headers={"Last-Event-ID": last_event_id}
        ) as response:
            assert response.status_code == 200
            assert len(_parse_sse(response.read().decode())) == 2


def test_cursors_past_bigint_are_422(client: TestClient) -> None:
    client.post("/api/runs", json=plan_body("big"))
    huge = 2**63
    for url in (
        f"/api/runs?offset={huge}",
        f"/api/runs/big/events?after={huge}",
        f"/api/runs/big/events/stream?after={huge}",
    ):
        response = client.get(url)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["error"]["code"] == "invalid_input"
    assert client.get(f"/api/runs?offset={huge - 1}").json()["items"] == []


def test_stream_delivers_events_live_as_they_happen(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    client.post("/api/runs", json=plan_body("live"))
    received: list[tuple[float, str]] = []

    def writer() -> None:
        time.sleep(0.3)
        _move(session_factory, "live", RunState.RUNNING)
        time.sleep(0.3)
        _move(session_factory, "live", RunState.CANCELLED)

    started = time.monotonic()
    thread = threading.Thread(target=writer)
    thread.start()
    with client.stream("GET", "/api/runs/live/events/stream") as response:
        buffer = ""
        for chunk in response.iter_text():
            buffer += chunk.replace("\r\n", "\n")
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                for event in _parse_sse(block + "\n\n"):
                    received.append(
                        (time.monotonic() - started, event["data"]["payload"].get("to", ""))
                    )
    thread.join()
    assert [to for _, to in received] == ["", "RUNNING", "CANCELLED"]
    # the RUNNING event arrived while the run was still going, not at the end
    assert received[1][0] < received[2][0] - 0.1


def test_stream_of_unknown_run_is_404(client: TestClient) -> None:
    response = client.get("/api/runs/ghost/events/stream")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
