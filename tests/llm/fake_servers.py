"""Fake model servers on 127.0.0.1 that speak the Anthropic and OpenAI wire formats.

Each server runs a ``ThreadingHTTPServer`` in a daemon thread on a free port and is used as a
context manager (or through the ``fake_anthropic`` / ``fake_openai`` fixtures below)::

    script = [HttpError(429, body, headers={"Retry-After": "1"}), Reply("hi")]
    with FakeAnthropicServer(script) as server:
        provider = AnthropicProvider(api_key="k", base_url=server.base_url)
        ...
        assert len(server.requests) == 2

A server is scripted with a list of behaviours, served one per request in order (a request past
the end of the script gets a 418 error that says so), or given a ``responder`` that computes the
behaviour from the request's JSON body (an end-to-end run through a provider). Every request is
recorded (method, path, headers, JSON body, arrival time on ``time.monotonic``).

Replies are streamed exactly as the real APIs stream them when the request asks for ``stream``
(Anthropic: named SSE events ``message_start`` ... ``message_stop`` with a ``ping``; OpenAI:
``data: {chunk}`` lines, the usage chunk when ``stream_options.include_usage`` is set, then
``data: [DONE]``), and sent as one JSON body otherwise.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self

import pytest

from autopack.llm.wire import (
    build_anthropic_error,
    build_anthropic_response,
    build_openai_error,
    build_openai_response,
)

# --- behaviours ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A successful reply. ``stop_reason`` is in Autopack's vocabulary (``end_turn``,
    ``max_tokens``, ...); the OpenAI server sends the matching ``finish_reason``."""

    text: str = "Hello from the fake server."
    input_tokens: int = 12
    output_tokens: int = 7
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0  # Anthropic only
    stop_reason: str = "end_turn"
    model: str | None = None  # None: the model the request named
    chunks: int = 3  # how many text deltas the text is streamed in
    include_usage: bool = True  # OpenAI: False streams no usage chunk even when asked for one
    as_json: bool = False  # answer with one JSON body even when the request asks for a stream
    refusal: str | None = None  # OpenAI: a refusal instead of the text (content null)


@dataclass(frozen=True)
class HttpError:
    """An HTTP error: ``body`` is sent as JSON (a dict) or as text (a str)."""

    status: int
    body: dict[str, Any] | str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hang:
    """Read the request and never answer (until the server is closed)."""


@dataclass(frozen=True)
class Stall:
    """Send the status, the headers and the first ``after_events`` events of ``reply``, then
    nothing more."""

    reply: Reply = field(default_factory=Reply)
    after_events: int = 2


@dataclass(frozen=True)
class Drop:
    """Send the first ``after_events`` events of ``reply``, then close the connection."""

    reply: Reply = field(default_factory=Reply)
    after_events: int = 2


@dataclass(frozen=True)
class Malformed:
    """A reply that is not valid JSON: a streamed event's data, or the whole body."""

    text: str = '{"id": "broken", "type": '


@dataclass(frozen=True)
class StreamError:
    """Stream ``after_events`` events of a reply, then an error in the stream (Anthropic's
    ``event: error``; OpenAI's ``data: {"error": ...}``)."""

    error_type: str = "overloaded_error"
    message: str = "Overloaded"
    after_events: int = 1


@dataclass(frozen=True)
class Raw:
    """Exactly these bytes as a 200 body (a hand-written event stream, say)."""

    body: bytes
    content_type: str = "text/event-stream; charset=utf-8"


Behaviour = Reply | HttpError | Hang | Stall | Drop | Malformed | StreamError | Raw
Responder = Callable[[dict[str, Any]], "Behaviour | str"]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lowercased
    body: Any  # the JSON body, or None when it was not JSON
    raw: bytes
    time: float  # time.monotonic() when the request had been read


# --- the servers -----------------------------------------------------------------------------


class FakeServer:
    """Shared machinery; use FakeAnthropicServer or FakeOpenAIServer."""

    path: ClassVar[str]
    base_path: ClassVar[str]

    def __init__(self, script: Iterable[Behaviour] = (), *, responder: Responder | None = None):
        self._script: list[Behaviour] = list(script)
        self._responder = responder
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.requests: list[RecordedRequest] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> Self:
        handler = _make_handler(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            # A short poll makes close() quick: shutdown() waits for the loop's next poll.
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()  # releases handlers that hang or stall
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "the server is not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """What to give the provider (OpenAI's includes ``/v1``, Anthropic's does not)."""
        return self.url + self.base_path

    def add(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self._script.extend(behaviours)

    @property
    def bodies(self) -> list[Any]:
        return [request.body for request in self.requests]

    # serving

    def _record(self, request: RecordedRequest) -> Behaviour:
        with self._lock:
            self.requests.append(request)
            if request.path.split("?")[0] != self.path:
                message = f"fake server: no route {request.path}; it serves POST {self.path}"
                return HttpError(404, self.error_body("not_found_error", message))
            if self._responder is not None:
                outcome = self._responder(request.body if isinstance(request.body, dict) else {})
                return Reply(text=outcome) if isinstance(outcome, str) else outcome
            if self._script:
                return self._script.pop(0)
        return HttpError(
            418, self.error_body("invalid_request_error", "fake server: the script is used up")
        )

    def serve(self, handler: BaseHTTPRequestHandler, body: Any, behaviour: Behaviour) -> None:
        stream = isinstance(body, dict) and body.get("stream") is True
        model = str(body.get("model", "fake-model")) if isinstance(body, dict) else "fake-model"
        if isinstance(behaviour, HttpError):
            payload = behaviour.body
            data = json.dumps(payload) if isinstance(payload, dict) else payload
            content_type = "application/json" if isinstance(payload, dict) else "text/plain"
            _send(handler, behaviour.status, data.encode(), content_type, behaviour.headers)
        elif isinstance(behaviour, Raw):
            _send(handler, 200, behaviour.body, behaviour.content_type)
        elif isinstance(behaviour, Hang):
            self._stop.wait()
        elif isinstance(behaviour, Malformed):
            if stream:
                _start_stream(handler)
                _write(handler, self.malformed_event(behaviour.text))
            else:
                _send(handler, 200, behaviour.text.encode(), "application/json")
        elif isinstance(behaviour, Reply):
            if stream and not behaviour.as_json:
                _start_stream(handler)
                for event in self.stream_events(behaviour, model, body):
                    _write(handler, event)
            else:
                _send(handler, 200, json.dumps(self.json_body(behaviour, model)).encode())
        elif isinstance(behaviour, Stall | Drop):
            _start_stream(handler)
            events = self.stream_events(behaviour.reply, model, body)
            for event in events[: behaviour.after_events]:
                _write(handler, event)
            if isinstance(behaviour, Stall):
                self._stop.wait()
            # A Drop returns: HTTP/1.0 closes the connection when the handler ends.
        elif isinstance(behaviour, StreamError):
            _start_stream(handler)
            for event in self.stream_events(Reply(), model, body)[: behaviour.after_events]:
                _write(handler, event)
            _write(handler, self.error_event(behaviour.error_type, behaviour.message))

    # wire format, per server

    def stream_events(self, reply: Reply, model: str, request: Any) -> list[bytes]:
        raise NotImplementedError

    def json_body(self, reply: Reply, model: str) -> dict[str, Any]:
        raise NotImplementedError

    def error_body(self, error_type: str, message: str) -> dict[str, Any]:
        raise NotImplementedError

    def error_event(self, error_type: str, message: str) -> bytes:
        raise NotImplementedError

    def malformed_event(self, text: str) -> bytes:
        raise NotImplementedError


class FakeAnthropicServer(FakeServer):
    """``POST /v1/messages`` in the Anthropic Messages API format."""

    path = "/v1/messages"
    base_path = ""

    def stream_events(self, reply: Reply, model: str, request: Any) -> list[bytes]:
        message_id = "msg_fake0123456789"
        pieces = _split(reply.text, reply.chunks)
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": reply.model or model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {
                            "input_tokens": reply.input_tokens,
                            "cache_creation_input_tokens": reply.cache_write_tokens,
                            "cache_read_input_tokens": reply.cache_read_tokens,
                            "output_tokens": 1,
                        },
                    },
                },
            ),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            ("ping", {"type": "ping"}),
        ]
        for piece in pieces:
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
            )
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": reply.output_tokens},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        return [_sse(data, event=name) for name, data in events]

    def json_body(self, reply: Reply, model: str) -> dict[str, Any]:
        return build_anthropic_response(
            reply.text,
            model=reply.model or model,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            stop_reason=reply.stop_reason,
            cache_read_tokens=reply.cache_read_tokens,
            cache_write_tokens=reply.cache_write_tokens,
        )

    def error_body(self, error_type: str, message: str) -> dict[str, Any]:
        return build_anthropic_error(error_type, message)

    def error_event(self, error_type: str, message: str) -> bytes:
        return _sse(build_anthropic_error(error_type, message), event="error")

    def malformed_event(self, text: str) -> bytes:
        return f"event: message_start\ndata: {text}\n\n".encode()


_OPENAI_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


class FakeOpenAIServer(FakeServer):
    """``POST /v1/chat/completions`` in the OpenAI Chat Completions format."""

    path = "/v1/chat/completions"
    base_path = "/v1"

    def stream_events(self, reply: Reply, model: str, request: Any) -> list[bytes]:
        base = {
            "id": "chatcmpl-fake0123456789",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": reply.model or model,
            "system_fingerprint": "fp_fake",
        }
        wants_usage = isinstance(request, dict) and bool(
            (request.get("stream_options") or {}).get("include_usage")
        )

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            extra = {"usage": None} if wants_usage else {}
            return {**base, "choices": [choice], **extra}

        chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
        if reply.refusal is not None:
            chunks += [chunk({"refusal": piece}) for piece in _split(reply.refusal, reply.chunks)]
        else:
            chunks += [chunk({"content": piece}) for piece in _split(reply.text, reply.chunks)]
        chunks.append(chunk({}, _OPENAI_FINISH.get(reply.stop_reason, reply.stop_reason)))
        if wants_usage and reply.include_usage:
            prompt = reply.input_tokens + reply.cache_read_tokens
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": reply.output_tokens,
                "total_tokens": prompt + reply.output_tokens,
                "prompt_tokens_details": {"cached_tokens": reply.cache_read_tokens},
                "completion_tokens_details": {"reasoning_tokens": 0},
            }
            chunks.append({**base, "choices": [], "usage": usage})
        return [_sse(data) for data in chunks] + [b"data: [DONE]\n\n"]

    def json_body(self, reply: Reply, model: str) -> dict[str, Any]:
        body = build_openai_response(
            reply.text,
            model=reply.model or model,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            stop_reason=reply.stop_reason,
            cache_read_tokens=reply.cache_read_tokens,
        )
        if reply.refusal is not None:
            body["choices"][0]["message"].update(content=None, refusal=reply.refusal)
        if not reply.include_usage:
            del body["usage"]
        return body

    def error_body(self, error_type: str, message: str) -> dict[str, Any]:
        return build_openai_error(error_type, message)

    def error_event(self, error_type: str, message: str) -> bytes:
        return _sse(build_openai_error(error_type, message))

    def malformed_event(self, text: str) -> bytes:
        return f"data: {text}\n\n".encode()


# --- HTTP plumbing ---------------------------------------------------------------------------


def _make_handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: every response closes its connection, so a stream needs no chunked encoding
        # and a client never reuses a connection that a hanging behaviour still holds.
        protocol_version = "HTTP/1.0"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = None
            request = RecordedRequest(
                method="POST",
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                raw=raw,
                time=time.monotonic(),
            )
            behaviour = server._record(request)
            # A client that gave up (a timeout under test) leaves nothing to answer.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                server.serve(self, body, behaviour)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


def _send(
    handler: BaseHTTPRequestHandler,
    status: int,
    data: bytes,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)
    handler.wfile.flush()


def _start_stream(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
    handler.send_header("Cache-Control", "no-cache")
    handler.end_headers()
    handler.wfile.flush()


def _write(handler: BaseHTTPRequestHandler, event: bytes) -> None:
    handler.wfile.write(event)
    handler.wfile.flush()


def _sse(data: dict[str, Any], *, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def _split(text: str, parts: int) -> list[str]:
    if not text:
        return []
    parts = max(1, min(parts, len(text)))
    size = -(-len(text) // parts)
    return [text[i : i + size] for i in range(0, len(text), size)]


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropicServer]:
    """A started, empty FakeAnthropicServer; script it with ``add``."""
    server = FakeAnthropicServer()
    with server:
        yield server


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A started, empty FakeOpenAIServer; script it with ``add``."""
    server = FakeOpenAIServer()
    with server:
        yield server
