"""The live Anthropic adapter: the Messages API (``POST /v1/messages``) through the official
``anthropic`` SDK (2.x, which sends ``anthropic-version: 2026-10-21`` and runs on ``httpx2``).

Every call is streamed, so that a silent server is a stall detected within
``CallPolicy.stall_timeout`` (the read timeout of every read) and the deadline is checked between
events; the SDK's own retries are off and ``autopack.llm.calls`` retries instead. The SSE events
are assembled into the Messages API response body (``{"type": "message", ...}``) exactly as the
non-streaming API would return it, and that body is parsed by ``wire.parse_anthropic``: it is the
Completion's ``raw``, which record mode writes to a cassette and replay parses with the same
parser, so a replayed call is the live call bit for bit.

The request: ``system`` messages go to the ``system`` parameter (all of them, in order, wherever
they stood); the others are the ``messages``. ``max_tokens`` and ``stop_sequences`` come from the
request. ``temperature`` is NOT sent: the API version this SDK speaks rejects every sampling
parameter (``temperature``, ``top_p``, ``top_k``) with a 400, whatever its value, and the SDK no
longer has them. It stays part of the request (and of its cassette key) for the other providers.

The SDK is given everything explicitly, so it consults nothing else: with an explicit ``api_key``
it reads no credential variable, profile or federation file; the base URL is always passed (it
would otherwise come from ``ANTHROPIC_BASE_URL`` or a profile); headers it takes from
``ANTHROPIC_CUSTOM_HEADERS`` are dropped; tracing is off rather than configured by
``ANTHROPIC_OPEN_TELEMETRY*``. The key is never put in a message, details or a raw body.
"""

from __future__ import annotations

import copy
import time
from typing import Any, NoReturn

import anthropic
import httpx2
from anthropic.types import (
    AssistantMessageParam,
    MessageParam,
    TextBlockParam,
    UserMessageParam,
)

from autopack.errors import ConfigurationError
from autopack.llm import wire
from autopack.llm.adapter import LiveAdapter, snippet
from autopack.llm.calls import (
    Attempt,
    CallPolicy,
    Clock,
    ServerSentEvent,
    Sleep,
    http_timeout,
    is_retryable_status,
    iter_sse,
    parse_retry_after,
    transport_failure,
)
from autopack.llm.provider import (
    CallContext,
    Completion,
    CompletionRequest,
    ProviderError,
)

DEFAULT_BASE_URL = "https://api.anthropic.com"


class AnthropicProvider(LiveAdapter):
    """Completions from the Anthropic Messages API. Thread-safe (the SDK client is)."""

    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        policy: CallPolicy = CallPolicy(),
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigurationError("anthropic: an API key is required (ANTHROPIC_API_KEY)")
        self.policy = policy
        self.base_url = base_url or DEFAULT_BASE_URL
        self._api_key = api_key
        self._sleep = sleep
        self._clock = clock
        self._host = httpx2.URL(self.base_url).host or self.base_url
        self._client = anthropic.Anthropic(
            api_key=api_key,
            base_url=self.base_url,
            # Our loop retries (calls.call_with_retries): the SDK's retries would sleep and try
            # again with no notion of the call's total deadline.
            max_retries=0,
            timeout=httpx2.Timeout(policy.stall_timeout, connect=policy.connect_timeout),
            open_telemetry=False,
        )
        # The SDK merges ANTHROPIC_CUSTOM_HEADERS from the environment into every request; only
        # what Autopack was configured with may be sent.
        self._client._custom_headers = {}

    # --- one try ---------------------------------------------------------------------------

    def _try(
        self, request: CompletionRequest, attempt: Attempt, context: CallContext
    ) -> Completion:
        system = [
            TextBlockParam(type="text", text=m.content)
            for m in request.messages
            if m.role == "system"
        ]
        messages: list[MessageParam] = [
            AssistantMessageParam(role="assistant", content=m.content)
            if m.role == "assistant"
            else UserMessageParam(role="user", content=m.content)
            for m in request.messages
            if m.role != "system"
        ]
        timeout = http_timeout(attempt)
        events = 0
        try:
            with self._client.messages.with_streaming_response.create(
                model=request.model,
                max_tokens=request.max_tokens,
                messages=messages,
                # One system message is sent as a string (the common form); several as blocks,
                # so that none is merged into another with an invented separator.
                system=(system[0]["text"] if len(system) == 1 else system) or anthropic.omit,
                stop_sequences=list(request.stop) or anthropic.omit,
                stream=True,
                timeout=timeout,
            ) as response:
                http = response.http_response
                content_type = http.headers.get("content-type", "")
                if content_type.startswith("application/json"):
                    # A compatible server that ignores `stream` answers with the whole body.
                    text = http.read().decode("utf-8", errors="replace")
                    body = self._load(text, "the body", request, context)
                else:
                    stream = iter_sse(http.iter_bytes(), on_chunk=attempt.check_deadline)
                    assembler = _Assembler(self, request, context)
                    for event in stream:
                        events += 1
                        if assembler.feed(event):
                            break
                    else:
                        raise self._error(
                            f"the stream ended before message_stop (after {events} events)",
                            request,
                            context,
                            retryable=True,
                        )
                    body = assembler.message
        except anthropic.APIStatusError as exc:
            raise self._status_error(exc, request, context) from None
        except anthropic.APIConnectionError as exc:  # includes APITimeoutError
            cause = exc.__cause__ or exc
            message = transport_failure(cause, timeout=timeout, host=self._host, events=None)
            raise self._error(message, request, context, retryable=True) from None
        except httpx2.TransportError as exc:  # reading the stream: a stall, a dropped connection
            message = transport_failure(exc, timeout=timeout, host=self._host, events=events)
            raise self._error(message, request, context, retryable=True) from None
        return self._parse(body, request, context)

    def _parse_wire(self, body: Any) -> Completion:
        return wire.parse_anthropic(body)

    # --- errors ----------------------------------------------------------------------------

    def _status_error(
        self, exc: anthropic.APIStatusError, request: CompletionRequest, context: CallContext
    ) -> ProviderError:
        status = exc.status_code
        body = exc.body
        error = body.get("error") if isinstance(body, dict) else None
        kind = error.get("type") if isinstance(error, dict) else None
        text = error.get("message") if isinstance(error, dict) else None
        if not isinstance(text, str):
            text = snippet(body) if isinstance(body, str) and body.strip() else None
        label = str(kind) if isinstance(kind, str) and kind else exc.response.reason_phrase
        summary = f"{status} {label}: {text}" if text else f"{status} {label}"
        retryable = is_retryable_status(status)
        if not retryable and wire.is_context_too_long(text, kind, exc.error_code):
            summary = f"context too long ({summary})"
        return self._error(
            summary,
            request,
            context,
            retryable=retryable,
            status_code=status,
            retry_after=parse_retry_after(exc.response.headers),
            details={
                "status": status,
                "type": kind,
                "message": text,
                "error_code": exc.error_code,
                "request_id": exc.request_id,
            },
        )

    def _envelope_error(
        self, exc: ProviderError, request: CompletionRequest, context: CallContext, where: str
    ) -> ProviderError:
        """An error body that came with a 200 (an ``event: error`` mid-stream, say): mapped by
        its type as ``wire`` maps it for replay, with the status that type stands for."""
        details = exc.details if isinstance(exc.details, dict) else {}
        kind, text = details.get("type"), details.get("message")
        status = f"{exc.status_code} " if exc.status_code else ""
        summary = f"{status}{kind}: {text} ({where})"
        retryable = exc.retryable
        if not retryable and wire.is_context_too_long(str(text), str(kind)):
            summary = f"context too long ({summary})"
        return self._error(
            summary,
            request,
            context,
            retryable=retryable,
            status_code=exc.status_code,
            details={"type": kind, "message": text, "where": where},
        )


class _Assembler:
    """Builds the Messages API response body from the stream's events, as the API documents
    them: ``message_start`` carries the message with empty content; blocks open, grow by deltas
    and close; ``message_delta`` sets the stop reason and the cumulative usage; ``message_stop``
    ends it. Event types it does not know are skipped (the API may add them within a version)."""

    def __init__(self, owner: AnthropicProvider, request: CompletionRequest, ctx: CallContext):
        self._owner = owner
        self._request = request
        self._context = ctx
        self._message: dict[str, Any] | None = None
        self._tool_json: dict[int, str] = {}

    @property
    def message(self) -> dict[str, Any]:
        assert self._message is not None
        return self._message

    def feed(self, sse: ServerSentEvent) -> bool:
        """Apply one event; True when the message is complete."""
        if sse.event == "ping":
            return False
        data = self._load(sse.data, f"the {sse.event or 'unnamed'} event")
        if not isinstance(data, dict):
            self._fail(sse.event or "event", f"expected an object, got {type(data).__name__}")
        kind = data.get("type", sse.event)
        if kind == "error" or sse.event == "error":
            self._stream_error(data)
        if kind == "ping":
            return False
        if kind == "message_start":
            message = data.get("message")
            if not isinstance(message, dict):
                self._fail("message_start.message", "expected an object")
            self._message = copy.deepcopy(message)
            self._message.setdefault("content", [])
            if not isinstance(self._message["content"], list):
                self._fail("message_start.message.content", "expected a list")
            return False
        if self._message is None:
            self._fail(str(kind), "received before message_start")
        content: list[Any] = self._message["content"]
        if kind == "content_block_start":
            index = self._index(data, kind)
            block = data.get("content_block")
            if index != len(content) or not isinstance(block, dict):
                self._fail(f"{kind}[{index}]", "expected the next block, as an object")
            content.append(copy.deepcopy(block))
        elif kind == "content_block_delta":
            index = self._index(data, kind)
            if index >= len(content):
                self._fail(f"{kind}.index", f"block {index} was never started")
            self._apply_delta(content[index], index, data.get("delta"))
        elif kind == "content_block_stop":
            index = self._index(data, kind)
            if index in self._tool_json and index < len(content):
                raw = self._tool_json.pop(index)
                content[index]["input"] = self._load(raw, f"the tool input of block {index}")
        elif kind == "message_delta":
            delta = data.get("delta") or {}
            usage = data.get("usage") or {}
            if not isinstance(delta, dict) or not isinstance(usage, dict):
                self._fail("message_delta", "delta and usage must be objects")
            self._message.update(copy.deepcopy(delta))
            totals = self._message.setdefault("usage", {})
            if not isinstance(totals, dict):
                self._fail("message_start.message.usage", "expected an object")
            # Usage on message_delta is cumulative: it replaces what message_start said, except
            # for the counts it leaves out (or sends as null), which keep their earlier values.
            totals.update({k: copy.deepcopy(v) for k, v in usage.items() if v is not None})
        elif kind == "message_stop":
            return True
        return False

    def _apply_delta(self, block: Any, index: int, delta: Any) -> None:
        if not isinstance(delta, dict) or not isinstance(block, dict):
            self._fail(f"content_block_delta[{index}].delta", "expected an object")
        kind = delta.get("type")
        field, key = {
            "text_delta": ("text", "text"),
            "thinking_delta": ("thinking", "thinking"),
        }.get(str(kind), (None, None))
        if field is not None and key is not None:
            piece = delta.get(key)
            if not isinstance(piece, str):
                self._fail(f"content_block_delta[{index}].delta.{key}", "expected a string")
            current = block.get(field) or ""
            block[field] = current + piece
        elif kind == "signature_delta":
            block["signature"] = delta.get("signature")
        elif kind == "input_json_delta":
            self._tool_json[index] = self._tool_json.get(index, "") + str(
                delta.get("partial_json") or ""
            )
        elif kind == "citations_delta":
            block.setdefault("citations", []).append(copy.deepcopy(delta.get("citation")))

    def _load(self, text: str, what: str) -> Any:
        return self._owner._load(text, what, self._request, self._context)

    def _index(self, data: dict[str, Any], kind: str) -> int:
        index = data.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            self._fail(f"{kind}.index", f"expected a non-negative integer, got {index!r}")
        return index

    def _stream_error(self, data: dict[str, Any]) -> NoReturn:
        # Parsed as replay parses a recorded error body, so both map an error type the same way.
        try:
            wire.parse_anthropic({"type": "error", "error": data.get("error")})
        except ProviderError as exc:
            raise self._owner._envelope_error(
                exc, self._request, self._context, "sent in the stream"
            ) from None
        raise AssertionError("an error envelope always parses to a ProviderError")

    def _fail(self, path: str, problem: str) -> NoReturn:
        raise self._owner._format_error(
            f"unexpected anthropic stream: {path}: {problem}",
            self._request,
            self._context,
            [{"loc": path, "message": problem}],
        )
