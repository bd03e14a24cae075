"""Record mode: each completed live call lands in the cassette, keys blanked, and replays as the
same completion."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pydantic import SecretStr

from autopack.errors import ConfigurationError
from autopack.executor.environment import build_provider
from autopack.llm.live import LiveProviders
from autopack.llm.provider import (
    CallContext,
    Completion,
    CompletionRequest,
    Message,
    ProviderError,
)
from autopack.llm.record import RecordingProvider
from autopack.llm.replay import CassetteWriter, ReplayProvider, load_cassette
from autopack.llm.wire import build_openai_response, parse_openai
from autopack.settings import Settings
from tests.conftest import make_settings

SECRET = "sk-test-record-canary-0123456789"
CONTEXT = CallContext(run_id="r1", phase_id="p1", attempt=1)


def request(text: str = "add sub") -> CompletionRequest:
    return CompletionRequest(
        model="gpt-5.4", messages=(Message("user", text),), max_tokens=100, temperature=0
    )


class Answering:
    """A live provider stand-in answering with a real Chat Completions body."""

    name = "openai"

    def __init__(self, text: str, *, raw: bool = True, error: ProviderError | None = None):
        self.text, self.raw, self.error = text, raw, error

    def complete(self, request: CompletionRequest, *, context: CallContext) -> Completion:
        if self.error is not None:
            raise self.error
        body = build_openai_response(
            self.text, model=request.model, input_tokens=50, output_tokens=7, cache_read_tokens=3
        )
        completion = parse_openai(body)
        return completion if self.raw else dataclasses.replace(completion, raw=None)


def settings(tmp_path: Path, **overrides: object) -> Settings:
    return make_settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "runs", **overrides)


def test_a_recorded_call_replays_as_the_same_completion_without_the_key(tmp_path: Path) -> None:
    cassette = tmp_path / "run.jsonl"
    recorder = RecordingProvider(
        Answering(f"done; the key was {SECRET}"), CassetteWriter(cassette, redact=[SECRET])
    )
    live = recorder.complete(request(), context=CONTEXT)

    assert SECRET not in cassette.read_text()
    (entry,) = load_cassette(cassette)
    assert entry.redacted and entry.provider == "openai"
    replayed = ReplayProvider(cassette).complete(request(), context=CONTEXT)
    assert replayed.provider == "replay"
    expected = dataclasses.replace(live, text=live.text.replace(SECRET, "[REDACTED]"))
    assert dataclasses.replace(replayed, provider="openai") == expected


def test_a_failed_call_is_not_recorded(tmp_path: Path) -> None:
    cassette = tmp_path / "run.jsonl"
    failure = ProviderError("openai: 500 server_error", provider="openai", retryable=True)
    recorder = RecordingProvider(Answering("x", error=failure), CassetteWriter(cassette))
    with pytest.raises(ProviderError, match="500"):
        recorder.complete(request(), context=CONTEXT)
    assert not cassette.exists() or cassette.read_text() == ""


def test_a_completion_without_its_body_cannot_be_recorded(tmp_path: Path) -> None:
    recorder = RecordingProvider(Answering("x", raw=False), CassetteWriter(tmp_path / "c.jsonl"))
    with pytest.raises(ProviderError, match="cannot be recorded"):
        recorder.complete(request(), context=CONTEXT)


def test_build_provider_chooses_replay_record_or_live(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    cassette.write_text("")
    assert isinstance(build_provider(settings(tmp_path)), LiveProviders)
    assert isinstance(build_provider(settings(tmp_path, replay_cassette=cassette)), ReplayProvider)
    recording = build_provider(
        settings(tmp_path, record_cassette=tmp_path / "new.jsonl", openai_api_key=SecretStr(SECRET))
    )
    assert isinstance(recording, RecordingProvider)
    assert isinstance(recording.inner, LiveProviders)
    assert SECRET in recording.writer._secrets  # the keys are blanked in what it writes
    with pytest.raises(ConfigurationError, match="set only one"):
        build_provider(settings(tmp_path, replay_cassette=cassette, record_cassette=cassette))
