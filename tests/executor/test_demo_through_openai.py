"""End to end through a live adapter: the demo plan runs through the `openai` provider (the real
SDK) against a local server speaking Chat Completions, recorded with record mode; the recording
then replays offline to the same commits and the same ledger."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from autopack.db.engine import create_db_engine, create_session_factory
from autopack.demo import CASSETTE_FILE
from autopack.demo.run import run_demo
from autopack.executor.environment import build_provider
from autopack.llm.live import LiveProviders
from autopack.llm.provider import CallContext, CompletionRequest, Message, ProviderError
from autopack.llm.record import RecordingProvider
from autopack.llm.replay import ReplayProvider, load_cassette
from autopack.llm.routing import default_routing_text
from autopack.settings import Settings
from tests.conftest import make_settings
from tests.executor.support import RunRecord, load_record, workspace_of
from tests.llm.fake_servers import FakeOpenAIServer, HttpError, Reply

SECRET = "sk-e2e-openai-canary-5f1d0c2a9b"


def demo_replies() -> Any:
    """What the fake server answers: the demo's recorded replies, found by the request as the
    adapter sent it on the wire (so a request the executor would not make gets no answer)."""
    demo = ReplayProvider(CASSETTE_FILE)

    def respond(body: dict[str, Any]) -> Reply | HttpError:
        request = CompletionRequest(
            model=body["model"],
            messages=tuple(Message(m["role"], m["content"]) for m in body["messages"]),
            max_tokens=body["max_tokens"],
            temperature=body["temperature"],
            stop=tuple(body.get("stop", ())),
        )
        try:
            reply = demo.complete(request, context=CallContext(role="fake-server"))
        except ProviderError as exc:
            return HttpError(400, {"error": {"message": exc.message, "type": "invalid_request"}})
        return Reply(
            text=reply.text,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            cache_read_tokens=reply.cache_read_tokens,
            stop_reason=reply.stop_reason,
        )

    return respond


def run(settings: Settings, provider: Any) -> tuple[str, RunRecord, list[tuple[str, str]]]:
    started: dict[str, str] = {}
    state = run_demo(settings=settings, provider=provider, on_start=lambda r: started.update(r=r))
    engine = create_db_engine(settings)
    try:
        sessions: sessionmaker[Session] = create_session_factory(engine)
        record = load_record(sessions, started["r"])
    finally:
        engine.dispose()
    log = subprocess.run(
        ["git", "log", "--format=%T %s", f"autopack/{started['r']}"],
        cwd=workspace_of(settings, started["r"]),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    trees = [tuple(line.split(" ", 1)) for line in log.splitlines()]
    return state, record, trees  # type: ignore[return-value]


def test_the_demo_runs_through_the_openai_provider_and_its_recording_replays_the_same(
    tmp_path: Path,
) -> None:
    # The default routing with every model served over the OpenAI wire format: the same prompts,
    # prices and limits as the demo, so the demo's replies answer them.
    routing = tmp_path / "routing.yaml"
    routing.write_text(default_routing_text().replace("provider: anthropic", "provider: openai"))
    cassette = tmp_path / "recorded.jsonl"

    with FakeOpenAIServer(responder=demo_replies()) as server:
        live_settings = make_settings(
            f"sqlite:///{tmp_path / 'live.db'}",
            tmp_path / "live",
            routing_file=routing,
            openai_base_url=server.base_url,
            openai_api_key=SecretStr(SECRET),
            record_cassette=cassette,
            db_bootstrap=True,
        )
        provider = build_provider(live_settings)
        assert isinstance(provider, RecordingProvider)
        assert isinstance(provider.inner, LiveProviders)
        live_state, live, live_trees = run(live_settings, provider)
        requests = list(server.requests)

    assert live_state == "DONE_SUCCESS", live.run["failure_reason"]
    assert len(requests) == len(live.llm_calls) == len(load_cassette(CASSETTE_FILE))
    assert {r.headers["authorization"] for r in requests} == {f"Bearer {SECRET}"}
    assert {call["provider"] for call in live.llm_calls} == {"openai"}
    assert all(call["outcome"] == "ok" for call in live.llm_calls)
    entries = load_cassette(cassette)
    assert len(entries) == len(requests) and {e.provider for e in entries} == {"openai"}
    assert SECRET not in cassette.read_text()

    replay_settings = make_settings(
        f"sqlite:///{tmp_path / 'replay.db'}",
        tmp_path / "replay",
        routing_file=routing,
        replay_cassette=cassette,
        db_bootstrap=True,
    )
    replay_state, replayed, replay_trees = run(replay_settings, build_provider(replay_settings))

    assert replay_state == "DONE_SUCCESS", replayed.run["failure_reason"]
    assert replay_trees == live_trees and len(live_trees) > 1

    def ledger(record: RunRecord) -> list[tuple[Any, ...]]:
        return [
            (c["model"], c["role"], c["input_tokens"], c["output_tokens"], c["cost_usd"])
            for c in record.llm_calls
        ]

    assert ledger(replayed) == ledger(live)
    assert replayed.run["cost_usd"] == live.run["cost_usd"] > 0
