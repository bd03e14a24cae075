"""A run whose models lack a key stops at its start, naming the key and the models, before any
workspace, test or model call; the API and `autopack run` start without any key."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from autopack.executor.environment import build_provider, load_router, missing_credentials
from autopack.llm.live import LiveProviders
from autopack.runs.states import PhaseState, RunState
from autopack.settings import Settings
from tests.executor.support import (
    Harness,
    load_record,
    make_plan,
    make_project,
    phase_spec,
    workspace_of,
)


def live_harness(settings: Settings, sessions: sessionmaker[Session]) -> Harness:
    return Harness(settings, sessions, build_provider(settings))


def test_a_run_without_the_key_its_models_need_ends_at_start_naming_it(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    project = make_project(tmp_path / "project")
    h = live_harness(settings, session_factory)
    assert isinstance(h.env.provider, LiveProviders)

    run_id, state = h.run(make_plan(phase_spec(complexity="low")), project)

    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_FAILED_ENVIRONMENT
    reason = record.run["failure_reason"]
    assert reason.startswith("cannot start: ANTHROPIC_API_KEY is not set"), reason
    # Every model of the low builder chain (and the auditor's) is named, not only the first.
    for model in ("claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5"):
        assert model in reason
    assert record.llm_calls == []
    assert record.phase()["state"] is PhaseState.QUEUED
    assert not workspace_of(settings, run_id).exists()


def test_a_model_of_the_other_provider_in_the_overrides_needs_its_key(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    with_anthropic = settings.model_copy(
        update={"anthropic_api_key": SecretStr("sk-ant-test-0000")}
    )
    h = live_harness(with_anthropic, session_factory)
    plan = make_plan(run={"models": {"builder": ["claude-haiku-5-5", "gpt-5.4"]}})

    (problem,) = missing_credentials(h.env, plan)

    assert problem.startswith("OPENAI_API_KEY is not set"), problem
    assert problem.endswith("routing selects gpt-5.4")


def test_a_local_openai_compatible_server_needs_no_key(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    local = settings.model_copy(
        update={"routing_profile": "local", "openai_base_url": "http://127.0.0.1:9/v1"}
    )
    h = live_harness(local, session_factory)
    assert sorted(load_router(local).config.models) == ["qwen2.5-coder:32b", "qwen2.5-coder:7b"]
    assert missing_credentials(h.env, make_plan()) == []


def test_replay_needs_no_key(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    cassette = tmp_path / "c.jsonl"
    cassette.write_text("")
    replay = settings.model_copy(update={"replay_cassette": cassette})
    assert missing_credentials(live_harness(replay, session_factory).env, make_plan()) == []
