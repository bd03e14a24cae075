"""OpenAIProvider through the real ``openai`` SDK against a fake Chat Completions server.

Timeouts are a fraction of a second and backoff a few milliseconds, so the file runs in seconds;
the only timing assertions are lower bounds the server's own Retry-After imposes and the upper
bound of the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from autopack.llm.calls import CallPolicy
from autopack.llm.openai_provider import NO_KEY_PLACEHOLDER, OpenAIProvider
from autopack.llm.provider import (
    CallContext,
    CompletionRequest,
    Message,
    Provider,
    ProviderError,
    ResponseFormatError,
)
from autopack.llm.wire import build_openai_error, parse_openai
from tests.llm.fake_servers import (
    Drop,
    FakeOpenAIServer,
    Hang,
    HttpError,
    Malformed,
    Reply,
    Stall,
    StreamError,
)

SECRET = "sk-proj-THIS-IS-A-TEST-SECRET-0123456789"
CONTEXT = CallContext(run_id="run-1", phase_id="phase-2", attempt=3, role="auditor")
FAST = CallPolicy(
    connect_timeout=1.0,
    stall_timeout=1.0,
    deadline=5.0,
    max_retries=3,
    backoff_initial=0.01,
    backoff_max=0.05,
)
REQUEST = CompletionRequest(
    model="gpt-test-1",
    messages=(
        Message("system", "You are the auditor."),
        Message("user", "Review this diff."),
        Message("assistant", "Which one?"),
        Message("user", "The last one."),
    ),
    max_tokens=256,
    temperature=0.2,
    stop=("</verdict>", "STOP"),
)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


def _provider(
    server: FakeOpenAIServer, policy: CallPolicy = FAST, api_key: str | None = SECRET
) -> OpenAIProvider:
    return OpenAIProvider(api_key=api_key, base_url=server.base_url, policy=policy)


def _fail(provider: OpenAIProvider, request: CompletionRequest = REQUEST) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        provider.complete(request, context=CONTEXT)
    return caught.value


def _error_body(kind: str, message: str, code: str | None = None) -> dict[str, Any]:
    return build_openai_error(kind, message, code)


def _assert_no_secret(error: ProviderError) -> None:
    assert SECRET not in error.message
    assert SECRET not in repr(error.details)
    assert SECRET not in str(error)


# --- replies ---------------------------------------------------------------------------------


def test_is_a_provider(server: FakeOpenAIServer) -> None:
    provider = _provider(server)
    assert isinstance(provider, Provider)
    assert provider.name == "openai"
    assert SECRET not in repr(provider)


def test_normal_reply(server: FakeOpenAIServer) -> None:
    server.add(Reply("LGTM", input_tokens=100, output_tokens=3, cache_read_tokens=64, chunks=4))
    completion = _provider(server).complete(REQUEST, context=CONTEXT)
    assert completion.text == "LGTM"
    assert completion.model == "gpt-test-1"
    assert completion.provider == "openai"
    assert completion.stop_reason == "end_turn"
    # OpenAI counts cached tokens inside prompt_tokens; Autopack bills them apart.
    assert (completion.input_tokens, completion.cache_read_tokens) == (100, 64)
    assert (completion.output_tokens, completion.cache_write_tokens) == (3, 0)
    raw = completion.raw
    assert raw is not None
    assert raw["object"] == "chat.completion"
    assert raw["choices"][0]["message"]["content"] == "LGTM"
    assert raw["choices"][0]["finish_reason"] == "stop"
    assert raw["usage"]["prompt_tokens"] == 164
    assert raw["usage"]["prompt_tokens_details"]["cached_tokens"] == 64
    assert parse_openai(raw) == completion


def test_reply_sent_as_one_json_body_is_accepted(server: FakeOpenAIServer) -> None:
    server.add(Reply("whole", as_json=True, cache_read_tokens=2))
    completion = _provider(server).complete(REQUEST, context=CONTEXT)
    assert (completion.text, completion.cache_read_tokens) == ("whole", 2)
    assert parse_openai(completion.raw or {}) == completion


def test_request_on_the_wire(server: FakeOpenAIServer) -> None:
    server.add(Reply())
    _provider(server).complete(REQUEST, context=CONTEXT)
    [sent] = server.requests
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.body == {
        "model": "gpt-test-1",
        "messages": [
            {"role": "system", "content": "You are the auditor."},
            {"role": "user", "content": "Review this diff."},
            {"role": "assistant", "content": "Which one?"},
            {"role": "user", "content": "The last one."},
        ],
        "max_tokens": 256,
        "temperature": 0.2,
        "stop": ["</verdict>", "STOP"],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert sent.headers["x-stainless-retry-count"] == "0"


def test_openais_own_api_gets_max_completion_tokens_and_no_temperature(
    server: FakeOpenAIServer,
) -> None:
    """Its reasoning models (gpt-5 and later) refuse `max_tokens` and a non-default temperature."""
    server.add(Reply())
    provider = OpenAIProvider(
        api_key=SECRET, base_url=server.base_url, policy=FAST, official_api=True
    )
    provider.complete(REQUEST, context=CONTEXT)
    body = server.requests[0].body
    assert body["max_completion_tokens"] == 256
    assert "max_tokens" not in body and "temperature" not in body
    assert OpenAIProvider(api_key=SECRET).official_api is True
    assert OpenAIProvider(base_url="http://127.0.0.1:1/v1").official_api is False


def test_no_stop_sequences_sends_no_stop(server: FakeOpenAIServer) -> None:
    server.add(Reply())
    request = CompletionRequest(model="m", messages=(Message("user", "hi"),), max_tokens=5)
    _provider(server).complete(request, context=CONTEXT)
    body = server.requests[0].body
    assert "stop" not in body
    assert body["temperature"] == 0.0


def test_local_server_without_a_key(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "admin-from-the-environment")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-from-the-environment")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-from-the-environment")
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "X-Leak: yes")
    server.add(Reply("local"))
    provider = _provider(server, api_key=None)
    assert provider.complete(REQUEST, context=CONTEXT).text == "local"
    [sent] = server.requests  # it reached the configured server, not OPENAI_BASE_URL
    assert sent.headers["authorization"] == f"Bearer {NO_KEY_PLACEHOLDER}"
    assert "openai-organization" not in sent.headers
    assert "openai-project" not in sent.headers
    assert "x-leak" not in sent.headers
    assert "from-the-environment" not in repr(sent.headers)


def test_responder_mode_computes_the_reply() -> None:
    with FakeOpenAIServer(responder=lambda body: body["messages"][-1]["content"].upper()) as echo:
        provider = OpenAIProvider(base_url=echo.base_url, policy=FAST)
        assert provider.complete(REQUEST, context=CONTEXT).text == "THE LAST ONE."
        assert len(echo.requests) == 1


def test_truncated_reply_is_a_completion(server: FakeOpenAIServer) -> None:
    server.add(Reply("half an ans", stop_reason="max_tokens", output_tokens=256))
    completion = _provider(server).complete(REQUEST, context=CONTEXT)
    assert completion.stop_reason == "max_tokens"
    assert completion.truncated
    assert completion.raw is not None
    assert completion.raw["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize("as_json", [False, True])
def test_refusal(server: FakeOpenAIServer, as_json: bool) -> None:
    server.add(Reply(refusal="I can't help with that.", as_json=as_json))
    completion = _provider(server).complete(REQUEST, context=CONTEXT)
    assert completion.stop_reason == "refusal"
    assert completion.text == ""
    assert completion.raw is not None
    assert completion.raw["choices"][0]["message"]["refusal"] == "I can't help with that."
    assert parse_openai(completion.raw) == completion


# --- retries ---------------------------------------------------------------------------------


def test_429_waits_for_retry_after_then_succeeds(server: FakeOpenAIServer) -> None:
    server.add(
        HttpError(
            429,
            _error_body("requests", "Rate limit reached", "rate_limit_exceeded"),
            {"Retry-After": "1"},
        ),
        Reply("after the wait"),
    )
    completion = _provider(server).complete(REQUEST, context=CONTEXT)
    assert completion.text == "after the wait"
    first, second = server.requests
    assert second.time - first.time >= 1.0


def test_500_is_retried(server: FakeOpenAIServer) -> None:
    server.add(HttpError(500, _error_body("server_error", "oops")), Reply("second time"))
    assert _provider(server).complete(REQUEST, context=CONTEXT).text == "second time"
    assert len(server.requests) == 2


def test_error_in_the_stream_is_retried(server: FakeOpenAIServer) -> None:
    server.add(StreamError("server_error", "The server had an error", after_events=2), Reply("ok"))
    assert _provider(server).complete(REQUEST, context=CONTEXT).text == "ok"
    assert len(server.requests) == 2


def test_dropped_stream_is_retried(server: FakeOpenAIServer) -> None:
    server.add(Drop(after_events=2), Reply("whole"))
    assert _provider(server).complete(REQUEST, context=CONTEXT).text == "whole"
    assert len(server.requests) == 2


def test_retries_exhausted(server: FakeOpenAIServer) -> None:
    server.add(*[HttpError(503, _error_body("server_error", "unavailable"))] * 4)
    error = _fail(_provider(server))
    assert len(server.requests) == 4  # max_retries=3
    assert error.retryable
    assert error.status_code == 503
    assert error.message.startswith("openai: 503 server_error: unavailable")
    assert "gave up after 4 tries in" in error.message
    assert error.model == REQUEST.model
    assert error.context == CONTEXT


def test_no_answer_ends_within_the_deadline(server: FakeOpenAIServer) -> None:
    server.add(*[Hang()] * 20)
    policy = CallPolicy(
        stall_timeout=0.5, deadline=2.0, max_retries=10, backoff_initial=0.05, backoff_max=0.1
    )
    started = time.monotonic()
    error = _fail(_provider(server, policy))
    elapsed = time.monotonic() - started
    assert elapsed < 2.0 + 1.5
    assert error.retryable
    assert error.message.startswith("openai: no reply within the 2 s deadline")


def test_stall_in_the_middle_of_the_stream(server: FakeOpenAIServer) -> None:
    server.add(Stall(after_events=2))
    error = _fail(_provider(server, CallPolicy(stall_timeout=0.5, deadline=5.0, max_retries=0)))
    assert error.retryable
    assert "timed out" in error.message
    assert "stalled" in error.message


# --- errors that are not retried -------------------------------------------------------------


def test_malformed_json_is_not_retried(server: FakeOpenAIServer) -> None:
    server.add(Malformed(), Reply())
    error = _fail(_provider(server))
    assert isinstance(error, ResponseFormatError)
    assert not error.retryable
    assert len(server.requests) == 1
    assert error.message.startswith("openai: ")
    assert "not valid JSON" in error.message


def test_stream_without_usage_cannot_be_accounted(server: FakeOpenAIServer) -> None:
    server.add(Reply(include_usage=False), Reply())
    error = _fail(_provider(server))
    assert isinstance(error, ResponseFormatError)
    assert not error.retryable
    assert len(server.requests) == 1
    assert error.message.startswith("openai: unexpected openai response: usage: missing")
    assert error.model == REQUEST.model
    assert error.context == CONTEXT


def test_401_is_not_retried_and_hides_the_key(server: FakeOpenAIServer) -> None:
    message = f"Incorrect API key provided: {SECRET}."
    server.add(HttpError(401, _error_body("invalid_request_error", message, "invalid_api_key")))
    error = _fail(_provider(server))
    assert not error.retryable
    assert len(server.requests) == 1
    assert error.status_code == 401
    assert error.message == (
        "openai: 401 invalid_request_error/invalid_api_key: Incorrect API key provided: [REDACTED]."
    )
    _assert_no_secret(error)


def test_the_key_never_reaches_a_raw_body(server: FakeOpenAIServer) -> None:
    server.add(Reply(f"your key is {SECRET}"))
    completion = _provider(server).complete(REQUEST, context=CONTEXT)
    assert SECRET not in repr(completion.raw)


def test_context_too_long(server: FakeOpenAIServer) -> None:
    message = "This model's maximum context length is 128000 tokens. You requested 130000 tokens."
    body = _error_body("invalid_request_error", message, "context_length_exceeded")
    server.add(HttpError(400, body), Reply())
    error = _fail(_provider(server))
    assert not error.retryable
    assert len(server.requests) == 1
    assert error.message.startswith("openai: context too long (400 invalid_request_error")
    assert error.details["code"] == "context_length_exceeded"


def test_compatible_server_plain_text_error(server: FakeOpenAIServer) -> None:
    server.add(HttpError(404, "model 'qwen:404b' not found"))
    error = _fail(_provider(server, api_key=None))
    assert not error.retryable
    assert error.message == "openai: 404 Not Found: model 'qwen:404b' not found"
