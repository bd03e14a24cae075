"""Provider wire formats: real response shapes in, Completion out, and the inverse builders."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from autopack.llm.provider import ProviderError, ResponseFormatError
from autopack.llm.wire import (
    build_anthropic_error,
    build_anthropic_response,
    build_openai_error,
    build_openai_response,
    build_response,
    parse_anthropic,
    parse_openai,
    parse_response,
)

# As the Messages API documents a response (a thinking block included, which carries no text).
ANTHROPIC_BODY: dict[str, Any] = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-5-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "Let me see", "signature": "abc"},
        {"type": "text", "text": "Hello"},
        {"type": "text", "text": ", world"},
    ],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 2095,
        "cache_creation_input_tokens": 10,
        "cache_read_input_tokens": 1000,
        "output_tokens": 503,
        "service_tier": "standard",
    },
}

# As Chat Completions documents a response.
OPENAI_BODY: dict[str, Any] = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-5.4-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello!", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 1900,
        "completion_tokens": 10,
        "total_tokens": 1910,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_44709d6fcb",
}


def test_anthropic_response() -> None:
    completion = parse_anthropic(ANTHROPIC_BODY)
    assert completion.text == "Hello, world"
    assert completion.model == "claude-sonnet-5-5-20250929"
    assert completion.provider == "anthropic"
    assert (completion.input_tokens, completion.output_tokens) == (2095, 503)
    assert (completion.cache_read_tokens, completion.cache_write_tokens) == (1000, 10)
    assert completion.stop_reason == "end_turn"
    assert completion.raw == ANTHROPIC_BODY


def test_anthropic_cache_fields_are_optional_and_nullable() -> None:
    body = copy.deepcopy(ANTHROPIC_BODY)
    del body["usage"]["cache_creation_input_tokens"]
    body["usage"]["cache_read_input_tokens"] = None
    completion = parse_anthropic(json.dumps(body))
    assert (completion.cache_read_tokens, completion.cache_write_tokens) == (0, 0)


@pytest.mark.parametrize("reason", ["max_tokens", "stop_sequence", "tool_use", "refusal"])
def test_anthropic_stop_reasons_pass_through(reason: str) -> None:
    body = {**ANTHROPIC_BODY, "stop_reason": reason}
    assert parse_anthropic(body).stop_reason == reason


def test_openai_response_separates_cached_tokens() -> None:
    completion = parse_openai(OPENAI_BODY)
    assert completion.text == "Hello!"
    assert completion.provider == "openai"
    assert completion.input_tokens == 1900 - 1024
    assert completion.cache_read_tokens == 1024
    assert completion.prompt_tokens == 1900
    assert completion.output_tokens == 10
    assert completion.stop_reason == "end_turn"


@pytest.mark.parametrize(
    ("finish", "reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        ("tool_calls", "tool_use"),
        ("something_new", "something_new"),
    ],
)
def test_openai_finish_reasons_are_normalised(finish: str, reason: str) -> None:
    body = copy.deepcopy(OPENAI_BODY)
    body["choices"][0]["finish_reason"] = finish
    assert parse_openai(body).stop_reason == reason


def test_openai_compatible_server_without_details_or_object() -> None:
    # What Ollama / llama.cpp send: no prompt_tokens_details, sometimes no `object`.
    body = copy.deepcopy(OPENAI_BODY)
    del body["object"]
    body["usage"] = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    completion = parse_openai(body)
    assert (completion.input_tokens, completion.cache_read_tokens) == (12, 0)


def test_openai_refusal_has_no_text() -> None:
    body = copy.deepcopy(OPENAI_BODY)
    body["choices"][0]["message"] = {"role": "assistant", "content": None, "refusal": "No."}
    completion = parse_openai(body)
    assert (completion.text, completion.stop_reason) == ("", "refusal")


def _without(body: dict[str, Any], *path: str | int) -> dict[str, Any]:
    body = copy.deepcopy(body)
    target: Any = body
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return body


def _with(body: dict[str, Any], value: Any, *path: str | int) -> dict[str, Any]:
    body = copy.deepcopy(body)
    target: Any = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("{not json", "not valid JSON: Expecting property name"),
        (b'{"a": "\xc3\x28"}', "not UTF-8"),
        ("[1, 2]", "must be a JSON object, got a list"),
        (_without(ANTHROPIC_BODY, "usage"), "usage: missing"),
        (_without(ANTHROPIC_BODY, "usage", "output_tokens"), "usage.output_tokens: missing"),
        (_with(ANTHROPIC_BODY, -1, "usage", "input_tokens"), "non-negative integer, got -1"),
        (_with(ANTHROPIC_BODY, "12", "usage", "input_tokens"), "non-negative integer, got '12'"),
        (_with(ANTHROPIC_BODY, "completion", "type"), "type: expected 'message'"),
        (_with(ANTHROPIC_BODY, "user", "role"), "role: expected 'assistant'"),
        (_with(ANTHROPIC_BODY, "hi", "content"), "content: expected a list, got a string"),
        (_with(ANTHROPIC_BODY, ["x"], "content"), r"content\[0\]: expected an object"),
        (_with(ANTHROPIC_BODY, 5, "content", 1, "text"), r"content\[1\].text: expected a string"),
        (_with(ANTHROPIC_BODY, None, "stop_reason"), "stop_reason: expected a string, got null"),
    ],
)
def test_malformed_anthropic_bodies_are_not_retryable(body: Any, fragment: str) -> None:
    with pytest.raises(ResponseFormatError, match=fragment) as info:
        parse_anthropic(body)
    assert info.value.retryable is False
    assert info.value.provider == "anthropic"
    assert "anthropic" in info.value.message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("", "not valid JSON"),
        (_with(OPENAI_BODY, [], "choices"), "choices: expected at least one choice"),
        (_with(OPENAI_BODY, "text_completion", "object"), "object: expected 'chat.completion'"),
        (_without(OPENAI_BODY, "usage"), "usage: missing: the reply's tokens cannot be"),
        (_with(OPENAI_BODY, None, "choices", 0, "finish_reason"), "finish_reason: expected"),
        (_with(OPENAI_BODY, 3, "choices", 0, "message", "content"), "content: expected a string"),
        (_with(OPENAI_BODY, 5000, "usage", "prompt_tokens_details", "cached_tokens"), "exceed"),
        (_without(OPENAI_BODY, "usage", "completion_tokens"), "usage.completion_tokens: missing"),
    ],
)
def test_malformed_openai_bodies_are_not_retryable(body: Any, fragment: str) -> None:
    with pytest.raises(ResponseFormatError, match=fragment) as info:
        parse_openai(body)
    assert info.value.retryable is False


@pytest.mark.parametrize(
    ("body", "retryable", "status"),
    [
        (build_anthropic_error("overloaded_error", "Overloaded"), True, 529),
        (build_anthropic_error("rate_limit_error", "slow down"), True, 429),
        (build_anthropic_error("invalid_request_error", "prompt is too long"), False, 400),
        (build_anthropic_error("authentication_error", "invalid x-api-key"), False, 401),
    ],
)
def test_anthropic_error_envelopes(body: dict[str, Any], retryable: bool, status: int) -> None:
    with pytest.raises(ProviderError) as info:
        parse_anthropic(body)
    assert not isinstance(info.value, ResponseFormatError)
    assert (info.value.retryable, info.value.status_code) == (retryable, status)
    assert body["error"]["message"] in info.value.message


@pytest.mark.parametrize(
    ("body", "retryable"),
    [
        (build_openai_error("server_error", "oops"), True),
        (build_openai_error("requests", "Rate limit reached", "rate_limit_exceeded"), True),
        (build_openai_error("invalid_request_error", "too long", "context_length_exceeded"), False),
        (build_openai_error("insufficient_quota", "quota", "insufficient_quota"), False),
        ({"error": "model not found"}, False),
    ],
)
def test_openai_error_envelopes(body: dict[str, Any], retryable: bool) -> None:
    with pytest.raises(ProviderError) as info:
        parse_openai(body)
    assert info.value.retryable is retryable


def test_unknown_wire_format() -> None:
    with pytest.raises(ResponseFormatError, match="unknown wire format 'gemini'"):
        parse_response("gemini", {})


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
@pytest.mark.parametrize("stop_reason", ["end_turn", "max_tokens"])
def test_builders_round_trip(provider: str, stop_reason: str) -> None:
    body = build_response(
        provider,
        "déjà vu\n```py\nx = 1\n```",
        model="m-1",
        input_tokens=120,
        output_tokens=34,
        stop_reason=stop_reason,
        cache_read_tokens=7,
    )
    # What a real API sends is JSON text: go through it.
    completion = parse_response(provider, json.dumps(body))
    assert completion.text == "déjà vu\n```py\nx = 1\n```"
    assert (completion.model, completion.provider) == ("m-1", provider)
    assert (completion.input_tokens, completion.cache_read_tokens) == (120, 7)
    assert completion.output_tokens == 34
    assert completion.stop_reason == stop_reason


def test_builders_are_deterministic_and_shaped_like_the_apis() -> None:
    a = build_anthropic_response("x", model="m", input_tokens=1, output_tokens=2)
    assert a == build_anthropic_response("x", model="m", input_tokens=1, output_tokens=2)
    assert a["id"].startswith("msg_")
    assert set(a) == {
        "id",
        "type",
        "role",
        "model",
        "content",
        "stop_reason",
        "stop_sequence",
        "usage",
    }
    o = build_openai_response("x", model="m", input_tokens=5, output_tokens=2, cache_read_tokens=3)
    assert o["id"].startswith("chatcmpl-")
    assert o["usage"]["prompt_tokens"] == 8
    assert o["usage"]["total_tokens"] == 10
    assert o["choices"][0]["finish_reason"] == "stop"
    assert (
        build_openai_response(
            "x", model="m", input_tokens=1, output_tokens=1, stop_reason="max_tokens"
        )["choices"][0]["finish_reason"]
        == "length"
    )


def test_openai_has_no_cache_writes() -> None:
    with pytest.raises(ValueError, match="cache writes"):
        build_response(
            "openai", "x", model="m", input_tokens=1, output_tokens=1, cache_write_tokens=1
        )
