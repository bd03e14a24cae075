"""The live OpenAI adapter: Chat Completions (``POST {base_url}/chat/completions``) through the
official ``openai`` SDK (3.x, on ``httpx2``), for OpenAI's API and for OpenAI-compatible servers
(Ollama, vLLM, llama.cpp's server) alike.

Every call is streamed with ``stream_options.include_usage``, so that a silent server is a stall
detected within ``CallPolicy.stall_timeout`` and the deadline is checked between chunks; the SDK's
own retries are off and ``autopack.llm.calls`` retries instead. The chunks are assembled into one
``chat.completion`` body (id, created, model, the first choice's message content or refusal and
finish reason, usage with ``prompt_tokens_details.cached_tokens``), which ``wire.parse_openai``
parses: that body is the Completion's ``raw``, which record mode writes to a cassette and replay
parses with the same parser. A stream without a usage chunk is refused (ResponseFormatError): the
call could not be accounted against the budgets.

What is sent depends on the server. OpenAI's own API gets ``max_completion_tokens`` and no
``temperature``: its current (reasoning) models reject ``max_tokens`` and any temperature but the
default, and ``max_completion_tokens`` bounds reasoning and reply tokens together, so the budget's
worst case still holds. An OpenAI-compatible server gets ``max_tokens`` and ``temperature``, which
Ollama, vLLM and llama.cpp all read. ``stop`` is sent when not empty.
Without an API key (a local server) the SDK is given the placeholder ``not-needed``, which it sends
as ``Authorization: Bearer not-needed`` (local servers ignore it). The SDK is given everything
explicitly and consults nothing else: the key and the base URL are always passed (it would
otherwise read ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``), and the organization, project and admin
key it takes from ``OPENAI_ORG_ID``, ``OPENAI_PROJECT_ID`` and ``OPENAI_ADMIN_KEY``, and the headers
of ``OPENAI_CUSTOM_HEADERS``, are dropped. The key is never put in a message, details or a raw body.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, NoReturn

import httpx2
import openai
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionUserMessageParam,
)

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
    Message,
    ProviderError,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# What the SDK is given when there is no key: it refuses to start without one, and a local server
# does not check it.
NO_KEY_PLACEHOLDER = "not-needed"


class OpenAIProvider(LiveAdapter):
    """Completions from OpenAI Chat Completions or a compatible server. Thread-safe."""

    name = "openai"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        policy: CallPolicy = CallPolicy(),
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        official_api: bool | None = None,
    ) -> None:
        self.policy = policy
        # OpenAI's own API (no base_url given) takes its newer parameters; see the module doc.
        self.official_api = base_url is None if official_api is None else official_api
        self.base_url = base_url or DEFAULT_BASE_URL
        self._api_key = api_key if api_key and api_key.strip() else None
        self._sleep = sleep
        self._clock = clock
        self._host = httpx2.URL(self.base_url).host or self.base_url
        self._client = openai.OpenAI(
            api_key=self._api_key or NO_KEY_PLACEHOLDER,
            base_url=self.base_url,
            # Our loop retries (calls.call_with_retries): the SDK's retries would sleep and try
            # again with no notion of the call's total deadline.
            max_retries=0,
            timeout=httpx2.Timeout(policy.stall_timeout, connect=policy.connect_timeout),
        )
        # What the SDK picked up from the environment on its own (OPENAI_ORG_ID, OPENAI_PROJECT_ID,
        # OPENAI_ADMIN_KEY, OPENAI_CUSTOM_HEADERS) would be sent with every request, to whichever
        # server base_url names; only what Autopack was configured with may be sent.
        self._client.organization = None
        self._client.project = None
        self._client.admin_api_key = None
        self._client._custom_headers = {}

    # --- one try ---------------------------------------------------------------------------

    def _try(
        self, request: CompletionRequest, attempt: Attempt, context: CallContext
    ) -> Completion:
        timeout = http_timeout(attempt)
        events = 0
        try:
            with self._client.chat.completions.with_streaming_response.create(
                model=request.model,
                messages=_messages(request.messages),
                max_tokens=openai.omit if self.official_api else request.max_tokens,
                max_completion_tokens=request.max_tokens if self.official_api else openai.omit,
                temperature=openai.omit if self.official_api else request.temperature,
                stop=list(request.stop) or openai.omit,
                stream=True,
                stream_options={"include_usage": True},
                timeout=timeout,
            ) as response:
                http = response.http_response
                content_type = http.headers.get("content-type", "")
                if content_type.startswith("application/json"):
                    # A compatible server that ignores `stream` answers with the whole body.
                    text = http.read().decode("utf-8", errors="replace")
                    body = self._load(text, "the body", request, context)
                else:
                    assembler = _Assembler(self, request, context)
                    for event in iter_sse(http.iter_bytes(), on_chunk=attempt.check_deadline):
                        events += 1
                        if assembler.feed(event):
                            break
                    else:
                        if not assembler.complete:
                            raise self._error(
                                f"the stream ended before [DONE] (after {events} events)",
                                request,
                                context,
                                retryable=True,
                            )
                    body = assembler.body()
        except openai.APIStatusError as exc:
            raise self._status_error(exc, request, context) from None
        except openai.APIConnectionError as exc:  # includes APITimeoutError
            cause = exc.__cause__ or exc
            message = transport_failure(cause, timeout=timeout, host=self._host, events=None)
            raise self._error(message, request, context, retryable=True) from None
        except httpx2.TransportError as exc:  # reading the stream: a stall, a dropped connection
            message = transport_failure(exc, timeout=timeout, host=self._host, events=events)
            raise self._error(message, request, context, retryable=True) from None
        return self._parse(body, request, context)

    def _parse_wire(self, body: Any) -> Completion:
        return wire.parse_openai(body)

    # --- errors ----------------------------------------------------------------------------

    def _status_error(
        self, exc: openai.APIStatusError, request: CompletionRequest, context: CallContext
    ) -> ProviderError:
        status = exc.status_code
        # The SDK hands over the inner `error` object of an `{"error": {...}}` body; a compatible
        # server may send `{"error": "text"}`, or not JSON at all.
        body = exc.body
        error: dict[str, Any] = body if isinstance(body, dict) else {}
        text = error.get("message")
        if not isinstance(text, str):
            text = body if isinstance(body, str) and body.strip() else None
            text = snippet(text) if text else None
        kind = error.get("type") if isinstance(error.get("type"), str) else None
        code = str(error["code"]) if error.get("code") is not None else None
        label = "/".join(part for part in (kind, code) if part) or exc.response.reason_phrase
        summary = f"{status} {label}: {text}" if text else f"{status} {label}"
        retryable = is_retryable_status(status)
        if not retryable and wire.is_context_too_long(text, kind, code):
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
                "code": code,
                "message": text,
                "request_id": exc.request_id,
            },
        )

    def _envelope_error(
        self, exc: ProviderError, request: CompletionRequest, context: CallContext, where: str
    ) -> ProviderError:
        """An ``{"error": ...}`` body that came with a 200 (in the stream, say): mapped by its
        type and code as ``wire`` maps it for replay."""
        details = exc.details if isinstance(exc.details, dict) else {}
        kind, code, text = details.get("type"), details.get("code"), details.get("message")
        label = "/".join(str(part) for part in (kind, code) if part)
        summary = f"{label}: {text} ({where})"
        retryable = exc.retryable
        if not retryable and wire.is_context_too_long(str(text), str(kind), str(code)):
            summary = f"context too long ({summary})"
        return self._error(
            summary,
            request,
            context,
            retryable=retryable,
            details={"type": kind, "code": code, "message": text, "where": where},
        )


def _messages(messages: Iterable[Message]) -> list[ChatCompletionMessageParam]:
    converted: list[ChatCompletionMessageParam] = []
    for message in messages:
        if message.role == "system":
            converted.append(
                ChatCompletionSystemMessageParam(role="system", content=message.content)
            )
        elif message.role == "assistant":
            converted.append(
                ChatCompletionAssistantMessageParam(role="assistant", content=message.content)
            )
        else:
            converted.append(ChatCompletionUserMessageParam(role="user", content=message.content))
    return converted


class _Assembler:
    """Builds one ``chat.completion`` body from the stream's ``chat.completion.chunk`` events:
    the first choice's content and refusal deltas concatenated, its finish reason, and the usage
    of the final chunk (``choices: []``) that ``include_usage`` asks for. ``[DONE]`` ends it."""

    def __init__(self, owner: OpenAIProvider, request: CompletionRequest, ctx: CallContext):
        self._owner = owner
        self._request = request
        self._context = ctx
        self._head: dict[str, Any] | None = None
        self._content: list[str] | None = None
        self._refusal: list[str] | None = None
        self._role = "assistant"
        self._finish: Any = None
        self._usage: Any = None
        self.done = False

    @property
    def complete(self) -> bool:
        """Whether the reply is whole even without ``[DONE]`` (some servers leave it out)."""
        return self.done or (self._finish is not None and self._usage is not None)

    def feed(self, sse: ServerSentEvent) -> bool:
        """Apply one event; True at ``[DONE]``."""
        if sse.data.strip() == "[DONE]":
            self.done = True
            return True
        chunk = self._owner._load(sse.data, "a stream chunk", self._request, self._context)
        if not isinstance(chunk, dict):
            self._fail("chunk", f"expected an object, got {type(chunk).__name__}")
        if "error" in chunk and "choices" not in chunk:
            # Parsed as replay parses a recorded error body, so both map an error type alike.
            try:
                wire.parse_openai(chunk)
            except ProviderError as exc:
                raise self._owner._envelope_error(
                    exc, self._request, self._context, "sent in the stream"
                ) from None
            raise AssertionError("an error envelope always parses to a ProviderError")
        if self._head is None:
            self._head = {
                key: chunk[key]
                for key in ("id", "created", "model", "system_fingerprint", "service_tier")
                if key in chunk
            }
        if chunk.get("usage") is not None:
            self._usage = chunk["usage"]
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            self._fail("chunk.choices", "expected a list")
        for choice in choices:
            if not isinstance(choice, dict):
                self._fail("chunk.choices[]", "expected an object")
            if choice.get("index", 0) != 0:
                continue  # one choice is asked for; another is not part of this reply
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                self._fail("chunk.choices[0].delta", "expected an object")
            if isinstance(delta.get("role"), str):
                self._role = delta["role"]
            self._content = self._text(self._content, delta.get("content"))
            self._refusal = self._text(self._refusal, delta.get("refusal"))
            if choice.get("finish_reason") is not None:
                self._finish = choice["finish_reason"]
        return False

    def _text(self, parts: list[str] | None, piece: Any) -> list[str] | None:
        # None until a delta carries the field: content that never came is null, not "" (a
        # refusal has null content), as in the non-streamed body.
        if piece is None:
            return parts
        if not isinstance(piece, str):
            self._fail("chunk.choices[0].delta", f"expected text, got {type(piece).__name__}")
        if parts is None:
            parts = []
        parts.append(piece)
        return parts

    def body(self) -> dict[str, Any]:
        """The assembled ``chat.completion`` body (``wire.parse_openai`` checks its fields)."""
        if self._head is None:
            self._fail("stream", "no chunk before the end of the stream")
        if self._usage is None:
            # Without usage the call cannot be accounted, and an unaccounted call breaks the
            # budget guarantee; a server that ignores include_usage is not usable as it is.
            self._fail(
                "usage",
                "missing: the stream sent no usage chunk, so the reply's tokens cannot be "
                "accounted (the server must honour stream_options.include_usage)",
            )
        content = None if self._content is None else "".join(self._content)
        refusal = None if self._refusal is None else "".join(self._refusal)
        if refusal and not content:
            # Streams open with an empty content delta; a refused reply has null content, which
            # is how wire.parse_openai recognises a refusal.
            content = None
        body: dict[str, Any] = {
            "id": self._head.get("id"),
            "object": "chat.completion",
            "created": self._head.get("created"),
            "model": self._head.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": self._role,
                        "content": content,
                        "refusal": refusal,
                    },
                    "logprobs": None,
                    "finish_reason": self._finish,
                }
            ],
            "usage": self._usage,
        }
        for key in ("system_fingerprint", "service_tier"):
            if key in self._head:
                body[key] = self._head[key]
        return body

    def _fail(self, path: str, problem: str) -> NoReturn:
        raise self._owner._format_error(
            f"unexpected openai response: {path}: {problem}",
            self._request,
            self._context,
            [{"loc": path, "message": problem}],
        )
