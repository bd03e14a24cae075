"""AnthropicProvider through the real ``anthropic`` SDK against a fake Messages API server.

Timeouts are a fraction of a second and backoff a few milliseconds, so the file runs in seconds;
the only timing assertions are lower bounds the server's own Retry-After imposes and the upper
bound of the deadline.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from autopack.errors import ConfigurationError
from autopack.llm.anthropic_provider import AnthropicProvider
from autopack.llm.calls import CallPolicy
from autopack.llm.provider import (
    CallContext,
    CompletionRequest,
    Message,
    Provider,
    ProviderError,
    ResponseFormatError,
)
from autopack.llm.wire import build_anthropic_error, parse_anthropic
from tests.llm.fake_servers import (
    Drop,
    FakeAnthropicServer,
    Hang,
    HttpError,
    Malformed,
    Raw,
    Reply,
    Stall,
    StreamError,
)

SECRET = "sk-ant-api03-THIS-IS-A-TEST-SECRET-0123456789"
CONTEXT = CallContext(run_id="run-1", phase_id="phase-2", attempt=3, role="builder")
FAST = CallPolicy(
    connect_timeout=1.0,
    stall_timeout=1.0,
    deadline=5.0,
    max_retries=3,
    backoff_initial=0.01,
    backoff_max=0.05,
)
REQUEST = CompletionRequest(
    model="claude-test-1",
    messages=(
        Message("system", "You are the builder."),
        Message("user", "Add a function."),
        Message("assistant", "Which file?"),
        Message("user", "calc.py"),
    ),
    max_tokens=512,
    temperature=0.7,
    stop=("</edits>",),
)


@pytest.fixture
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as fake:
        yield fake


def _provider(server: FakeAnthropicServer, policy: CallPolicy = FAST) -> AnthropicProvider:
    return AnthropicProvider(api_key=SECRET, base_url=server.base_url, policy=policy)


def _fail(provider: AnthropicProvider, request: CompletionRequest = REQUEST) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        provider.complete(request, context=CONTEXT)
    return caught.value


def _error_body(kind: str, message: str) -> dict[str, Any]:
    return build_anthropic_error(kind, message)


def _assert_no_secret(error: ProviderError) -> None:
    assert SECRET not in error.message
    assert SECRET not in repr(error.details)
    assert SECRET not in str(error)


# --- replies ---------------------------------------------------------------------------------


def test_is_a_provider(server: FakeAnthropicServer) -> None:
    provider = _provider(server)
    assert isinstance(provider, Provider)
    assert provider.name == "anthropic"
    assert SECRET not in repr(provider)


def test_normal_reply(server: FakeAnthropicServer) -> None:
    server.add(
        Reply(
            "def add(a, b):\n    return a + b\n",
            input_tokens=120,
            output_tokens=17,
            cache_read_tokens=30,
            cache_write_tokens=40,
            chunks=5,
        )
    )
    completion = _provider(server).complete(REQUEST, context=CONTEXT)
    assert completion.text == "def add(a, b):\n    return a + b\n"
    assert completion.model == "claude-test-1"
    assert completion.provider == "anthropic"
    assert completion.stop_reason == "end_turn"
    assert (completion.input_tokens, completion.output_tokens) == (120, 17)
    assert (completion.cache_read_tokens, completion.cache_write_tokens) == (30, 40)
    # The raw body is a Messages API response, and it parses back to the same completion: what
    # record mode writes is what replay serves.
    raw = completion.raw
    assert raw is not None
    assert raw["type"] == "message"
    assert raw["content"] == [{"type": "text", "text": completion.text}]
    assert raw["usage"]["output_tokens"] == 17
    assert parse_anthropic(raw) == completion


def test_reply_sent_as_one_json_body_is_accepted(server: FakeAnthropicServer) -> None:
    server.add(Reply("whole", as_json=True, cache_read_tokens=2))
    completion = _provider(server).complete(REQUEST, context=CONTEXT)
    assert (completion.text, completion.cache_read_tokens) == ("whole", 2)
    assert parse_anthropic(completion.raw or {}) == completion


def test_request_on_the_wire(server: FakeAnthropicServer) -> None:
    server.add(Reply())
    _provider(server).complete(REQUEST, context=CONTEXT)
    [sent] = server.requests
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.body == {
        "model": "claude-test-1",
        "max_tokens": 512,
        "system": "You are the builder.",
        "messages": [
            {"role": "user", "content": "Add a function."},
            {"role": "assistant", "content": "Which file?"},
            {"role": "user", "content": "calc.py"},
        ],
        "stop_sequences": ["</edits>"],
        "stream": True,
        # No temperature: the API version of SDK 2.x refuses sampling parameters.
    }
    # SDK 2.x sends an API key as a bearer token (the API accepts it as it accepts x-api-key).
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert sent.headers["anthropic-version"]
    assert sent.headers["x-stainless-retry-count"] == "0"


def test_several_system_messages_are_kept_apart(server: FakeAnthropicServer) -> None:
    server.add(Reply())
    request = CompletionRequest(
        model="claude-test-2",
        messages=(Message("system", "one"), Message("user", "hi"), Message("system", "two")),
        max_tokens=10,
    )
    _provider(server).complete(request, context=CONTEXT)
    body = server.requests[0].body
    assert body["system"] == [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert "stop_sequences" not in body


def test_environment_and_profiles_are_not_consulted(
    server: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-from-the-environment")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "token-from-the-environment")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("ANTHROPIC_CUSTOM_HEADERS", "X-Leak: yes\nAuthorization: Bearer leaked")
    monkeypatch.setenv("ANTHROPIC_PROFILE", "missing-profile")
    monkeypatch.setenv("ANTHROPIC_CONFIG_DIR", str(tmp_path))
    server.add(Reply())
    _provider(server).complete(REQUEST, context=CONTEXT)
    [sent] = server.requests  # it reached the configured server, not ANTHROPIC_BASE_URL
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert "x-leak" not in sent.headers
    assert "from-the-environment" not in repr(sent.headers)


def test_an_api_key_is_required() -> None:
    with pytest.raises(ConfigurationError, match="anthropic"):
        AnthropicProvider(api_key="  ")


def test_truncated_reply_is_a_completion(server: FakeAnthropicServer) -> None:
    server.add(Reply("half an ans", stop_reason="max_tokens", output_tokens=512))
    completion = _provider(server).complete(REQUEST, context=CONTEXT)
    assert completion.stop_reason == "max_tokens"
    assert completion.truncated
    assert completion.text == "half an ans"


def _events(*events: dict[str, Any]) -> bytes:
    return b"".join(
        f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event in events
    )


def test_thinking_and_tool_blocks_are_assembled(server: FakeAnthropicServer) -> None:
    start: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-test-1",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 50, "cache_read_input_tokens": 5, "output_tokens": 1},
    }

    def delta(index: int, **fields: Any) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": index, "delta": fields}

    def block(index: int, **fields: Any) -> dict[str, Any]:
        return {"type": "content_block_start", "index": index, "content_block": fields}

    stream = _events(
        {"type": "message_start", "message": start},
        block(0, type="thinking", thinking="", signature=""),
        delta(0, type="thinking_delta", thinking="Let me "),
        delta(0, type="thinking_delta", thinking="think."),
        delta(0, type="signature_delta", signature="sig=="),
        {"type": "content_block_stop", "index": 0},
        block(1, type="text", text=""),
        delta(1, type="text_delta", text="Calling a tool."),
        {"type": "content_block_stop", "index": 1},
        {"type": "a_future_event", "whatever": True},
        block(2, type="tool_use", id="toolu_1", name="read", input={}),
        delta(2, type="input_json_delta", partial_json='{"path": "ca'),
        delta(2, type="input_json_delta", partial_json='lc.py"}'),
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 40, "input_tokens": 50, "cache_read_input_tokens": None},
        },
        {"type": "message_stop"},
    )
    server.add(Raw(stream))
    completion = _provider(server).complete(REQUEST, context=CONTEXT)
    assert completion.text == "Calling a tool."
    assert completion.stop_reason == "tool_use"
    assert (completion.input_tokens, completion.cache_read_tokens) == (50, 5)
    assert completion.output_tokens == 40
    assert completion.raw is not None
    assert completion.raw["content"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig=="},
        {"type": "text", "text": "Calling a tool."},
        {"type": "tool_use", "id": "toolu_1", "name": "read", "input": {"path": "calc.py"}},
    ]
    assert parse_anthropic(completion.raw) == completion


def test_events_out_of_order_are_a_format_error(server: FakeAnthropicServer) -> None:
    server.add(Raw(_events({"type": "content_block_start", "index": 0, "content_block": {}})))
    error = _fail(_provider(server))
    assert isinstance(error, ResponseFormatError)
    assert error.message == (
        "anthropic: unexpected anthropic stream: content_block_start: received before message_start"
    )
    assert len(server.requests) == 1


# --- retries ---------------------------------------------------------------------------------


def test_429_waits_for_retry_after_then_succeeds(server: FakeAnthropicServer) -> None:
    server.add(
        HttpError(429, _error_body("rate_limit_error", "slow down"), {"Retry-After": "1"}),
        Reply("after the wait"),
    )
    completion = _provider(server).complete(REQUEST, context=CONTEXT)
    assert completion.text == "after the wait"
    first, second = server.requests
    assert second.time - first.time >= 1.0


def test_retry_after_beyond_the_deadline_gives_up_at_once(server: FakeAnthropicServer) -> None:
    server.add(
        HttpError(429, _error_body("rate_limit_error", "slow down"), {"retry-after": "30"}),
        Reply(),
    )
    error = _fail(_provider(server))
    assert len(server.requests) == 1
    assert error.retryable
    assert error.retry_after == 30.0
    assert error.message.startswith("anthropic: 429 rate_limit_error: slow down")
    assert "asked to wait 30 s" in error.message


@pytest.mark.parametrize(
    ("status", "kind"), [(500, "api_error"), (529, "overloaded_error"), (503, "api_error")]
)
def test_server_errors_are_retried(server: FakeAnthropicServer, status: int, kind: str) -> None:
    server.add(HttpError(status, _error_body(kind, "try again")), Reply("second time"))
    assert _provider(server).complete(REQUEST, context=CONTEXT).text == "second time"
    assert len(server.requests) == 2


def test_error_event_in_the_stream_is_retried(server: FakeAnthropicServer) -> None:
    server.add(StreamError("overloaded_error", "Overloaded", after_events=2), Reply("recovered"))
    assert _provider(server).complete(REQUEST, context=CONTEXT).text == "recovered"
    assert len(server.requests) == 2


def test_error_event_maps_like_an_http_error(server: FakeAnthropicServer) -> None:
    server.add(StreamError("overloaded_error", "Overloaded"))
    error = _fail(_provider(server, CallPolicy(max_retries=0)))
    assert error.retryable
    assert error.status_code == 529
    assert error.message.startswith("anthropic: 529 overloaded_error: Overloaded")


def test_dropped_stream_is_retried(server: FakeAnthropicServer) -> None:
    server.add(Drop(after_events=3), Reply("whole"))
    assert _provider(server).complete(REQUEST, context=CONTEXT).text == "whole"
    assert len(server.requests) == 2


def test_retries_exhausted(server: FakeAnthropicServer) -> None:
    server.add(*[HttpError(529, _error_body("overloaded_error", "Overloaded"))] * 4)
    error = _fail(_provider(server))
    assert len(server.requests) == 4  # max_retries=3
    assert error.retryable
    assert error.status_code == 529
    assert error.message.startswith("anthropic: 529 overloaded_error: Overloaded")
    assert "gave up after 4 tries in" in error.message
    assert error.model == REQUEST.model
    assert error.context == CONTEXT


def test_no_answer_ends_within_the_deadline(server: FakeAnthropicServer) -> None:
    server.add(*[Hang()] * 20)
    policy = CallPolicy(
        stall_timeout=0.5, deadline=2.0, max_retries=10, backoff_initial=0.05, backoff_max=0.1
    )
    started = time.monotonic()
    error = _fail(_provider(server, policy))
    elapsed = time.monotonic() - started
    assert elapsed < 2.0 + 1.5
    assert error.retryable
    assert error.message.startswith("anthropic: no reply within the 2 s deadline")
    assert "timed out" in error.message


def test_stall_in_the_middle_of_the_stream(server: FakeAnthropicServer) -> None:
    server.add(Stall(after_events=4))
    policy = CallPolicy(stall_timeout=0.5, deadline=5.0, max_retries=0)
    error = _fail(_provider(server, policy))
    assert error.retryable
    assert "timed out" in error.message
    assert "stalled" in error.message
    assert "after 4 events" in error.message


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = AnthropicProvider(
        api_key=SECRET, base_url=f"http://127.0.0.1:{port}", policy=CallPolicy(max_retries=0)
    )
    error = _fail(provider)
    assert error.retryable
    assert error.message.startswith("anthropic: could not connect to 127.0.0.1")


# --- errors that are not retried -------------------------------------------------------------


def test_malformed_json_is_not_retried(server: FakeAnthropicServer) -> None:
    server.add(Malformed(), Reply())
    error = _fail(_provider(server))
    assert isinstance(error, ResponseFormatError)
    assert not error.retryable
    assert len(server.requests) == 1
    assert error.message.startswith("anthropic: ")
    assert "not valid JSON" in error.message
    assert error.model == REQUEST.model
    assert error.context == CONTEXT


def test_401_is_not_retried_and_hides_the_key(server: FakeAnthropicServer) -> None:
    server.add(
        HttpError(401, _error_body("authentication_error", "invalid x-api-key")),
        Reply(),
    )
    error = _fail(_provider(server))
    assert not error.retryable
    assert len(server.requests) == 1
    assert error.status_code == 401
    assert error.message == "anthropic: 401 authentication_error: invalid x-api-key"
    _assert_no_secret(error)


def test_a_key_echoed_by_the_server_is_redacted(server: FakeAnthropicServer) -> None:
    server.add(HttpError(403, _error_body("permission_error", f"key {SECRET} may not do this")))
    error = _fail(_provider(server))
    assert not error.retryable
    assert "403 permission_error: key [REDACTED] may not do this" in error.message
    _assert_no_secret(error)


def test_the_key_never_reaches_a_raw_body(server: FakeAnthropicServer) -> None:
    server.add(Reply(f"your key is {SECRET}"))
    completion = _provider(server).complete(REQUEST, context=CONTEXT)
    assert SECRET not in repr(completion.raw)
    assert completion.text == "your key is [REDACTED]"


def test_context_too_long(server: FakeAnthropicServer) -> None:
    message = "prompt is too long: 210000 tokens > 200000 maximum"
    server.add(HttpError(400, _error_body("invalid_request_error", message)), Reply())
    error = _fail(_provider(server))
    assert not error.retryable
    assert len(server.requests) == 1
    assert error.status_code == 400
    assert error.message.startswith("anthropic: context too long (400 invalid_request_error")
    assert message in error.message


def test_other_bad_request(server: FakeAnthropicServer) -> None:
    server.add(
        HttpError(400, _error_body("invalid_request_error", "messages: roles must alternate"))
    )
    error = _fail(_provider(server))
    assert not error.retryable
    assert error.message == ("anthropic: 400 invalid_request_error: messages: roles must alternate")
    assert error.details["type"] == "invalid_request_error"


def test_error_body_that_is_not_json(server: FakeAnthropicServer) -> None:
    server.add(HttpError(404, "<html>no such route</html>"))
    error = _fail(_provider(server))
    assert not error.retryable
    assert error.message == "anthropic: 404 Not Found: <html>no such route</html>"
