"""Requests, completions and call context: the values that cross the Provider protocol."""

from __future__ import annotations

from pathlib import Path

import pytest

from autopack.errors import AutopackError
from autopack.llm.provider import (
    CallContext,
    Completion,
    CompletionRequest,
    InvalidRequestError,
    Message,
    Provider,
    ProviderError,
    ReplayMissError,
    ResponseFormatError,
)
from autopack.llm.replay import ReplayProvider


def _request(**overrides: object) -> CompletionRequest:
    values: dict[str, object] = {
        "model": "claude-sonnet-5-5",
        "messages": (Message("system", "be brief"), Message("user", "hello")),
        "max_tokens": 100,
    }
    values.update(overrides)
    return CompletionRequest(**values)  # type: ignore[arg-type]


def test_requests_are_hashable_values() -> None:
    a = _request()
    b = _request(messages=[Message("system", "be brief"), Message("user", "hello")])
    assert a == b
    assert hash(a) == hash(b)
    assert isinstance(b.messages, tuple)
    assert {a: 1}[b] == 1


def test_integer_temperature_is_the_same_request_as_a_float_one() -> None:
    assert _request(temperature=0) == _request(temperature=0.0)
    assert _request(temperature=1).temperature == 1.0


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"model": " "}, "model name"),
        ({"messages": ()}, "at least one message"),
        ({"max_tokens": 0}, "at least 1"),
        ({"max_tokens": True}, "integer"),
        ({"temperature": 2.5}, "within [0, 2]"),
        ({"temperature": float("nan")}, "within [0, 2]"),
        ({"stop": ("",)}, "non-empty"),
        ({"messages": ("hello",)}, "Message values"),
    ],
)
def test_invalid_requests_are_refused(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidRequestError, match=fragment.replace("[", r"\[")):
        _request(**overrides)


def test_message_role_is_checked() -> None:
    with pytest.raises(InvalidRequestError, match="role"):
        Message("tool", "x")  # type: ignore[arg-type]


def test_canonical_round_trip() -> None:
    request = _request(stop=("END",), temperature=0.3)
    assert CompletionRequest.from_canonical(request.canonical()) == request


def test_from_canonical_rejects_other_shapes() -> None:
    with pytest.raises(InvalidRequestError, match="unknown request fields"):
        CompletionRequest.from_canonical({**_request().canonical(), "tools": []})
    with pytest.raises(InvalidRequestError, match=r"messages\[0\]"):
        CompletionRequest.from_canonical({**_request().canonical(), "messages": [["user", "x"]]})


def test_last_user_message() -> None:
    request = _request(
        messages=(Message("user", "first"), Message("assistant", "ok"), Message("user", "second"))
    )
    assert request.last_user_message == "second"
    assert _request(messages=(Message("system", "s"),)).last_user_message == ""


def test_completion_token_totals() -> None:
    completion = Completion(
        text="x",
        model="m",
        provider="p",
        input_tokens=10,
        output_tokens=5,
        cache_read_tokens=3,
        cache_write_tokens=2,
        stop_reason="max_tokens",
    )
    assert completion.prompt_tokens == 15
    assert completion.total_tokens == 20
    assert completion.truncated


def test_call_context_describes_itself() -> None:
    assert (
        CallContext("r1", "p2", 3, "auditor").describe() == "run r1, phase p2, attempt 3, auditor"
    )
    assert CallContext(role="planner").describe() == "planner"


def test_errors_are_domain_errors_with_retryable() -> None:
    assert issubclass(ProviderError, AutopackError)
    assert issubclass(ReplayMissError, ProviderError)
    error = ResponseFormatError("bad", provider="openai")
    assert error.retryable is False
    assert ProviderError("x", provider="a", retryable=True).retryable


def test_replay_provider_satisfies_the_protocol(tmp_path: Path) -> None:
    cassette = tmp_path / "empty.jsonl"
    cassette.write_text("", encoding="utf-8")
    provider: Provider = ReplayProvider(cassette)
    assert isinstance(provider, Provider)
    assert provider.name == "replay"
