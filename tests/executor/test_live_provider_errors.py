"""What the executor does with a live provider's outcomes, through the real `openai` adapter and
a local server: a reply cut off at max_tokens fails the attempt cleanly and is retried; an error
that will never succeed (401) ends the run with the provider's reason, after one request."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from autopack.executor.environment import build_provider
from autopack.llm.routing import default_routing_text
from autopack.runs.states import PhaseState, RunState
from autopack.settings import Settings
from tests.executor.support import (
    GOOD_REPLY,
    Harness,
    load_record,
    make_plan,
    make_project,
    venv_first_on_path,
)
from tests.llm.fake_servers import FakeOpenAIServer, HttpError, Reply

SECRET = "sk-live-errors-canary-77aa01"


@pytest.fixture(autouse=True)
def _venv_python(monkeypatch: pytest.MonkeyPatch) -> None:
    venv_first_on_path(monkeypatch)


def live(settings: Settings, server: FakeOpenAIServer, tmp_path: Path) -> Settings:
    routing = tmp_path / "routing.yaml"
    routing.write_text(default_routing_text().replace("provider: anthropic", "provider: openai"))
    return settings.model_copy(
        update={
            "routing_file": routing,
            "openai_base_url": server.base_url,
            "openai_api_key": SecretStr(SECRET),
            "llm_max_retries": 2,
            "llm_backoff_max_seconds": 0.1,
        }
    )


def test_a_reply_cut_off_at_max_tokens_fails_the_attempt_and_is_retried(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    project = make_project(tmp_path / "project")
    with FakeOpenAIServer(
        [Reply(GOOD_REPLY[:40], stop_reason="max_tokens"), Reply(GOOD_REPLY)]
    ) as server:
        configured = live(settings, server, tmp_path)
        h = Harness(configured, session_factory, build_provider(configured))
        run_id, state = h.run(make_plan(), project)

    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_SUCCESS, record.run["failure_reason"]
    first, second = record.attempts["p1"]
    assert first["outcome"] == "truncated" and "max_tokens" in first["failure_reason"]
    assert second["outcome"] == "success"
    assert [call["outcome"] for call in record.llm_calls] == ["truncated", "ok"]
    assert "cut off at max_tokens" in server.requests[1].body["messages"][-1]["content"]


def test_a_401_ends_the_run_with_the_providers_reason_after_one_request(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    project = make_project(tmp_path / "project")
    refusal = {
        "error": {
            "message": "Incorrect API key provided",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    with FakeOpenAIServer([HttpError(401, refusal)]) as server:
        configured = live(settings, server, tmp_path)
        h = Harness(configured, session_factory, build_provider(configured))
        run_id, state = h.run(make_plan(), project)

    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_FAILED_ENVIRONMENT
    assert len(server.requests) == 1
    reason = record.run["failure_reason"]
    assert reason.startswith("openai: 401") and "Incorrect API key provided" in reason, reason
    assert SECRET not in reason
    assert record.phase()["state"] is PhaseState.FAILED
    (call,) = record.llm_calls
    assert call["outcome"] == "error" and call["provider"] == "openai"
