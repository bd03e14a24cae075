"""Cassettes: the request key, replay hits and misses, queue order, malformed files, the writer."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from autopack.llm.provider import (
    CallContext,
    CompletionRequest,
    Message,
    ProviderError,
    ReplayMissError,
)
from autopack.llm.replay import (
    REDACTED,
    CassetteError,
    CassetteWriter,
    ReplayProvider,
    canonical_request_json,
    load_cassette,
    request_key,
)
from autopack.llm.wire import build_anthropic_error, build_anthropic_response

# A fixed request and its key, computed once and written down: if this test fails, every
# recorded cassette in the world stops matching. Change the key scheme only on purpose.
KNOWN_REQUEST = CompletionRequest(
    model="claude-sonnet-4-5",
    messages=(
        Message("system", "You are the builder."),
        Message("user", "Add a function `add(a, b)` to calc.py — naïve is fine."),
    ),
    max_tokens=8192,
    temperature=0.0,
    stop=("</edits>",),
)
KNOWN_CANONICAL = (
    '{"max_tokens":8192,"messages":[{"content":"You are the builder.","role":"system"},'
    '{"content":"Add a function `add(a, b)` to calc.py \\u2014 na\\u00efve is fine.",'
    '"role":"user"}],"model":"claude-sonnet-4-5","stop":["</edits>"],"temperature":0.0}'
)
KNOWN_KEY = "d9aa30e4856315f6f3627d959e0afb8291d41ad8e1d2e39919204b568272edf4"

CONTEXT = CallContext(run_id="run-1", phase_id="phase-2", attempt=3, role="builder")


def _request(text: str = "hello", **overrides: Any) -> CompletionRequest:
    values: dict[str, Any] = {
        "model": "claude-sonnet-5-5",
        "messages": (Message("user", text),),
        "max_tokens": 256,
    }
    values.update(overrides)
    return CompletionRequest(**values)


def test_request_key_is_a_known_constant() -> None:
    assert canonical_request_json(KNOWN_REQUEST) == KNOWN_CANONICAL
    assert request_key(KNOWN_REQUEST) == KNOWN_KEY


def test_request_key_ignores_call_context_but_not_the_request() -> None:
    base = _request()
    assert request_key(base) == request_key(_request(temperature=0))
    variants = [
        _request("hello "),
        _request(max_tokens=257),
        _request(temperature=0.5),
        _request(stop=("x",)),
        _request(model="gpt-5.4"),
        _request(messages=(Message("system", "hello"),)),
    ]
    keys = {request_key(variant) for variant in variants}
    assert len(keys) == len(variants)
    assert request_key(base) not in keys


def _write(path: Path, *entries: dict[str, Any] | str) -> Path:
    lines = [entry if isinstance(entry, str) else json.dumps(entry) for entry in entries]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _entry(request: CompletionRequest, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "key": request_key(request),
        "provider": "anthropic",
        "model": request.model,
        "request": request.canonical(),
        "response": build_anthropic_response(
            text, model=request.model, input_tokens=10, output_tokens=5
        ),
        **extra,
    }


def test_replay_hit(tmp_path: Path) -> None:
    request = _request()
    provider = ReplayProvider(_write(tmp_path / "c.jsonl", _entry(request, "hi there")))
    completion = provider.complete(request, context=CONTEXT)
    assert completion.text == "hi there"
    assert completion.provider == "replay"
    assert (completion.input_tokens, completion.output_tokens) == (10, 5)
    assert completion.raw is not None and completion.raw["type"] == "message"
    assert provider.unused_entries() == []


def test_same_key_is_served_in_file_order_then_the_last_repeats(tmp_path: Path) -> None:
    request, other = _request(), _request("other")
    cassette = _write(
        tmp_path / "c.jsonl",
        _entry(request, "first"),
        _entry(other, "unrelated"),
        "",
        _entry(request, "second"),
    )
    provider = ReplayProvider(cassette)
    served = [provider.complete(request, context=CONTEXT).text for _ in range(4)]
    assert served == ["first", "second", "second", "second"]
    assert [entry.line for entry in provider.unused_entries()] == [2]


def test_concurrent_calls_each_get_their_own_entry(tmp_path: Path) -> None:
    request = _request()
    cassette = _write(tmp_path / "c.jsonl", *[_entry(request, f"r{i}") for i in range(20)])
    provider = ReplayProvider(cassette)
    results: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        text = provider.complete(request, context=CONTEXT).text
        with lock:
            results.append(text)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == sorted(f"r{i}" for i in range(20))


def test_miss_names_who_asked_the_key_the_prompt_and_how_to_record(tmp_path: Path) -> None:
    cassette = _write(tmp_path / "demo.jsonl", _entry(_request(), "hi"))
    provider = ReplayProvider(cassette)
    prompt = "Fix the failing test in calc.py.\n" + "x" * 300
    missing = _request(prompt)
    with pytest.raises(ReplayMissError) as info:
        provider.complete(missing, context=CONTEXT)
    error = info.value
    message = error.message
    for fragment in (
        str(cassette),
        "run run-1, phase phase-2, attempt 3, builder",
        "model claude-sonnet-5-5",
        request_key(missing),
        json.dumps(prompt[:200])[:-1],  # the first 200 characters, escaped
        "--record",
        "holds 1 replies for claude-sonnet-5-5",
    ):
        assert fragment in message
    assert "x" * 201 not in message
    assert error.retryable is False
    assert error.context == CONTEXT
    assert error.details["key"] == request_key(missing)


def test_recorded_errors_replay_as_errors(tmp_path: Path) -> None:
    request = _request()
    entry = _entry(request, "unused")
    entry["response"] = build_anthropic_error("overloaded_error", "Overloaded")
    provider = ReplayProvider(_write(tmp_path / "c.jsonl", entry))
    with pytest.raises(ProviderError) as info:
        provider.complete(request, context=CONTEXT)
    assert info.value.retryable is True
    assert info.value.context == CONTEXT
    assert "line 1" in info.value.message


def test_key_may_be_left_out_and_is_computed(tmp_path: Path) -> None:
    request = _request()
    entry = _entry(request, "hand written")
    del entry["key"]
    del entry["model"]
    provider = ReplayProvider(_write(tmp_path / "c.jsonl", entry))
    assert provider.complete(request, context=CONTEXT).text == "hand written"


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ('{"provider": "anthropic",', "line 2: not valid JSON"),
        ("[1]", "line 2: expected a JSON object, got list"),
        ('{"provider": "anthropic"}', "line 2: missing `request`"),
        ("BAD_PROVIDER", "line 2: provider must be one of"),
        ("BAD_KEY", "line 2: `key` must be 64 lowercase hex digits"),
        ("STALE_KEY", "line 2: `key` .* does not match its request"),
        ("BAD_RESPONSE", "line 2: unexpected anthropic response: usage: missing"),
        ("BAD_REQUEST", "line 2: invalid request: max_tokens must be at least 1"),
        ("EXTRA_FIELD", r"line 2: unknown fields \['headers'\]"),
        ("OTHER_MODEL", "line 2: `model` 'gpt-5.4' differs from request.model"),
    ],
)
def test_malformed_cassette_lines_name_the_file_and_line(
    tmp_path: Path, line: str, fragment: str
) -> None:
    good = _entry(_request(), "ok")
    variants: dict[str, dict[str, Any]] = {
        "BAD_PROVIDER": {**good, "provider": "gemini"},
        "BAD_KEY": {**good, "key": "abc"},
        "STALE_KEY": {**good, "key": request_key(_request("edited"))},
        "BAD_RESPONSE": {
            **good,
            "response": {k: v for k, v in good["response"].items() if k != "usage"},
        },
        "BAD_REQUEST": {**good, "request": {**good["request"], "max_tokens": 0}, "key": None},
        "EXTRA_FIELD": {**good, "headers": {"x-api-key": "sk"}},
        "OTHER_MODEL": {**good, "model": "gpt-5.4"},
    }
    if line in variants:
        entry = {k: v for k, v in variants[line].items() if v is not None}
        line = json.dumps(entry)
    cassette = _write(tmp_path / "broken.jsonl", good, line)
    with pytest.raises(CassetteError, match=fragment) as info:
        ReplayProvider(cassette)
    assert str(cassette) in info.value.message
    assert info.value.details["line"] == 2


def test_missing_cassette_file(tmp_path: Path) -> None:
    with pytest.raises(CassetteError, match=r"nope.jsonl cannot be read"):
        load_cassette(tmp_path / "nope.jsonl")


def test_writer_output_replays(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    writer = CassetteWriter(path)
    first, second = _request("one"), _request("two", model="gpt-5.4")
    key = writer.append_reply(
        first, "answer one", provider="anthropic", input_tokens=7, output_tokens=3, note="demo"
    )
    assert key == request_key(first)
    writer.append_reply(
        second,
        "answer two",
        provider="openai",
        input_tokens=9,
        output_tokens=4,
        stop_reason="max_tokens",
    )
    provider = ReplayProvider(path)
    assert provider.complete(first, context=CONTEXT).text == "answer one"
    two = provider.complete(second, context=CONTEXT)
    assert (two.text, two.stop_reason, two.input_tokens) == ("answer two", "max_tokens", 9)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["note"] == "demo"
    assert json.loads(lines[1])["response"]["object"] == "chat.completion"


def test_writer_is_deterministic(tmp_path: Path) -> None:
    for name in ("a.jsonl", "b.jsonl"):
        writer = CassetteWriter(tmp_path / name)
        writer.append_reply(_request(), "x", provider="anthropic", input_tokens=1, output_tokens=1)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_writer_overwrite_starts_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text("old\n", encoding="utf-8")
    CassetteWriter(path, mode="overwrite").append_reply(
        _request(), "x", provider="anthropic", input_tokens=1, output_tokens=1
    )
    assert len(path.read_text(encoding="utf-8").splitlines()) == 1


def test_writer_drops_header_like_fields_and_redacts_secrets(tmp_path: Path) -> None:
    secret = "sk-ant-api03-SECRETSECRETSECRET"
    request = _request(f"my key is {secret}, keep it safe")
    body = build_anthropic_response("ok " + secret, model="m", input_tokens=1, output_tokens=1)
    body["headers"] = {"x-api-key": secret, "request-id": "req_1"}
    body["usage"]["Authorization"] = "Bearer " + secret
    path = tmp_path / "c.jsonl"
    writer = CassetteWriter(path, redact=[secret, "short"])
    writer.append(request, body, provider="anthropic")
    text = path.read_text(encoding="utf-8")
    assert secret not in text
    assert "headers" not in text and "Authorization" not in text
    entry = json.loads(text)
    assert entry["redacted"] is True
    assert entry["request"]["messages"][0]["content"] == f"my key is {REDACTED}, keep it safe"
    # Replay still finds it by the original request's key.
    completion = ReplayProvider(path).complete(request, context=CONTEXT)
    assert completion.text == f"ok {REDACTED}"


def test_writer_refuses_malformed_responses_and_unknown_providers(tmp_path: Path) -> None:
    writer = CassetteWriter(tmp_path / "c.jsonl")
    with pytest.raises(CassetteError, match="malformed response"):
        writer.append(_request(), {"type": "message"}, provider="anthropic")
    with pytest.raises(CassetteError, match="unknown provider"):
        writer.append(_request(), {}, provider="gemini")
    # An error envelope is a legitimate recording.
    writer.append(_request(), build_anthropic_error("api_error", "boom"), provider="anthropic")
    assert len(load_cassette(tmp_path / "c.jsonl")) == 1
