"""The providers' wire formats: response bodies to Completion, and Completion-like data back to
response bodies.

Two formats are understood, each as its provider documents it:

* Anthropic Messages API (``POST /v1/messages``), a ``{"type": "message", ...}`` body;
* OpenAI Chat Completions (``POST /v1/chat/completions``), a ``{"object": "chat.completion",
  ...}`` body, which OpenAI-compatible servers (Ollama, vLLM, llama.cpp) also speak.

Parsing is strict: a body of any other shape is a ResponseFormatError (never retryable) whose
message names the provider and the path of the offending field, because a reply we half
understood could be billed wrongly or applied wrongly. Error envelopes (``{"type": "error"}`` /
``{"error": {...}}``) become a ProviderError whose ``retryable`` follows the error's type.

The builders are the inverse: the demo's cassette, the tests and the fake servers of the
provider tests produce bodies in exactly the format the real APIs return.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal, NoReturn, get_args

from autopack.llm.provider import (
    STOP_END_TURN,
    STOP_MAX_TOKENS,
    STOP_REFUSAL,
    STOP_SEQUENCE,
    STOP_TOOL_USE,
    Completion,
    ProviderError,
    ResponseFormatError,
)

WireFormat = Literal["anthropic", "openai"]
WIRE_FORMATS: tuple[str, ...] = get_args(WireFormat)

# OpenAI finish_reason -> our stop reason. "stop" covers both a natural end and a stop sequence;
# OpenAI does not say which, and only "the reply was cut short" matters to the executor.
_OPENAI_FINISH = {
    "stop": STOP_END_TURN,
    "length": STOP_MAX_TOKENS,
    "content_filter": STOP_REFUSAL,
    "tool_calls": STOP_TOOL_USE,
    "function_call": STOP_TOOL_USE,
}
_OPENAI_FINISH_OUT = {
    STOP_END_TURN: "stop",
    STOP_SEQUENCE: "stop",
    STOP_MAX_TOKENS: "length",
    STOP_REFUSAL: "content_filter",
    STOP_TOOL_USE: "tool_calls",
}

# Error types after which the same request may well succeed: rate limits, overload, server side
# failures. Anything else (bad request, authentication, permission, quota) will not get better.
_ANTHROPIC_RETRYABLE = {"rate_limit_error", "overloaded_error", "api_error", "timeout_error"}
_ANTHROPIC_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_OPENAI_RETRYABLE = {"server_error", "rate_limit_exceeded", "rate_limit_error", "timeout"}
# How providers say that a prompt does not fit the model's context window. Such a request never
# succeeds as it is, so the caller must be told precisely (to shrink the prompt), not "bad request".
_CONTEXT_TOO_LONG_CODES = {
    "context_length_exceeded",  # OpenAI
    "exceed_context_size_error",  # llama.cpp server
    "prompt_too_long",
}
_CONTEXT_TOO_LONG_PHRASES = (
    "prompt is too long",  # Anthropic: "prompt is too long: 210000 tokens > 200000 maximum"
    "exceed context limit",  # Anthropic: "input length and `max_tokens` exceed context limit"
    "maximum context length",  # OpenAI and vLLM: "This model's maximum context length is ..."
    "context_length_exceeded",
    "exceeds the available context size",  # llama.cpp server
    "exceeds the context length",  # Ollama
)


# --- parsing ---------------------------------------------------------------------------------


def parse_response(provider: str, body: Mapping[str, Any] | str | bytes) -> Completion:
    """Parse a response body of the given wire format ("anthropic" or "openai")."""
    if provider == "anthropic":
        return parse_anthropic(body)
    if provider == "openai":
        return parse_openai(body)
    raise ResponseFormatError(
        f"unknown wire format {provider!r}; known: {', '.join(WIRE_FORMATS)}", provider=provider
    )


def parse_anthropic(body: Mapping[str, Any] | str | bytes) -> Completion:
    """A Messages API response body -> Completion (text blocks joined; other blocks ignored)."""
    data = _load("anthropic", body)
    if data.get("type") == "error":
        raise _anthropic_error(data)
    reader = _Reader("anthropic", data)
    if reader.str_("type") != "message":
        reader.fail("type", f"expected 'message', got {data['type']!r}")
    if reader.str_("role") != "assistant":
        reader.fail("role", f"expected 'assistant', got {data['role']!r}")
    model = reader.str_("model")
    blocks = reader.list_("content")
    texts: list[str] = []
    for position, block in enumerate(blocks):
        path = f"content[{position}]"
        if not isinstance(block, dict):
            reader.fail(path, f"expected an object, got {_kind(block)}")
        kind = block.get("type")
        if not isinstance(kind, str):
            reader.fail(f"{path}.type", f"expected a string, got {_kind(kind)}")
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                reader.fail(f"{path}.text", f"expected a string, got {_kind(text)}")
            texts.append(text)
        # Thinking, tool_use and other block kinds carry no reply text for us; they are kept in
        # `raw` for the artifacts, not guessed into the text.
    stop_reason = reader.str_("stop_reason")
    usage = reader.dict_("usage")
    return Completion(
        text="".join(texts),
        model=model,
        provider="anthropic",
        input_tokens=reader.count(usage, "usage", "input_tokens"),
        output_tokens=reader.count(usage, "usage", "output_tokens"),
        cache_read_tokens=reader.count(usage, "usage", "cache_read_input_tokens", optional=True),
        cache_write_tokens=reader.count(
            usage, "usage", "cache_creation_input_tokens", optional=True
        ),
        stop_reason=stop_reason,
        raw=dict(data),
    )


def parse_openai(body: Mapping[str, Any] | str | bytes) -> Completion:
    """A Chat Completions response body -> Completion (the first choice).

    ``input_tokens`` is ``prompt_tokens`` minus ``prompt_tokens_details.cached_tokens``: OpenAI
    counts cached tokens inside the prompt, we bill them separately (see ``Completion``).
    """
    data = _load("openai", body)
    if "error" in data and "choices" not in data:
        raise _openai_error(data)
    reader = _Reader("openai", data)
    # OpenAI always sends `object`; some compatible servers leave it out, which is harmless.
    if "object" in data and data["object"] != "chat.completion":
        reader.fail("object", f"expected 'chat.completion', got {data['object']!r}")
    model = reader.str_("model")
    choices = reader.list_("choices")
    if not choices:
        reader.fail("choices", "expected at least one choice, got none")
    choice = choices[0]
    if not isinstance(choice, dict):
        reader.fail("choices[0]", f"expected an object, got {_kind(choice)}")
    message = choice.get("message")
    if not isinstance(message, dict):
        reader.fail("choices[0].message", f"expected an object, got {_kind(message)}")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        reader.fail("choices[0].message.content", f"expected a string, got {_kind(content)}")
    finish = choice.get("finish_reason")
    if not isinstance(finish, str):
        reader.fail("choices[0].finish_reason", f"expected a string, got {_kind(finish)}")
    stop_reason = _OPENAI_FINISH.get(finish, finish)
    if content is None and isinstance(message.get("refusal"), str):
        stop_reason = STOP_REFUSAL
    if "usage" not in data or data["usage"] is None:
        # Without usage the call cannot be accounted, and an unaccounted call breaks the budget
        # guarantee; a compatible server that omits it is not usable as it is.
        reader.fail("usage", "missing: the reply's tokens cannot be accounted")
    usage = reader.dict_("usage")
    prompt_tokens = reader.count(usage, "usage", "prompt_tokens")
    details = usage.get("prompt_tokens_details")
    cached = 0
    if details is not None:
        if not isinstance(details, dict):
            reader.fail("usage.prompt_tokens_details", f"expected an object, got {_kind(details)}")
        cached = reader.count(details, "usage.prompt_tokens_details", "cached_tokens", True)
    if cached > prompt_tokens:
        reader.fail(
            "usage.prompt_tokens_details.cached_tokens",
            f"{cached} cached tokens exceed the {prompt_tokens} prompt tokens",
        )
    return Completion(
        text=content or "",
        model=model,
        provider="openai",
        input_tokens=prompt_tokens - cached,
        output_tokens=reader.count(usage, "usage", "completion_tokens"),
        cache_read_tokens=cached,
        stop_reason=stop_reason,
        raw=dict(data),
    )


# --- building --------------------------------------------------------------------------------


def build_response(
    provider: str,
    text: str,
    *,
    model: str,
    input_tokens: int,
    output_tokens: int,
    stop_reason: str = STOP_END_TURN,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> dict[str, Any]:
    """A response body in the given wire format; see the two builders below."""
    if provider == "anthropic":
        return build_anthropic_response(
            text,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            stop_reason=stop_reason,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
        )
    if provider == "openai":
        if cache_write_tokens:
            raise ValueError("OpenAI does not report cache writes")
        return build_openai_response(
            text,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            stop_reason=stop_reason,
            cache_read_tokens=cache_read_tokens,
        )
    raise ValueError(f"unknown wire format {provider!r}; known: {', '.join(WIRE_FORMATS)}")


def build_anthropic_response(
    text: str,
    *,
    model: str,
    input_tokens: int,
    output_tokens: int,
    stop_reason: str = STOP_END_TURN,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    message_id: str | None = None,
) -> dict[str, Any]:
    """A Messages API response body with one text block.

    The id is derived from the content when not given, so that a cassette built twice from the
    same data is byte for byte the same file.
    """
    return {
        "id": message_id or "msg_" + _digest(model, text, input_tokens, output_tokens)[:24],
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": cache_write_tokens,
            "cache_read_input_tokens": cache_read_tokens,
            "output_tokens": output_tokens,
        },
    }


def build_openai_response(
    text: str,
    *,
    model: str,
    input_tokens: int,
    output_tokens: int,
    stop_reason: str = STOP_END_TURN,
    cache_read_tokens: int = 0,
    completion_id: str | None = None,
    created: int = 0,
) -> dict[str, Any]:
    """A Chat Completions response body with one choice.

    ``input_tokens`` are the uncached prompt tokens, as in Completion; the body reports
    ``prompt_tokens = input_tokens + cache_read_tokens`` the way OpenAI does. ``created`` is 0
    by default for reproducible cassettes (OpenAI puts the Unix time there).
    """
    prompt_tokens = input_tokens + cache_read_tokens
    return {
        "id": completion_id or "chatcmpl-" + _digest(model, text, input_tokens, output_tokens)[:24],
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": _OPENAI_FINISH_OUT.get(stop_reason, stop_reason),
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": prompt_tokens + output_tokens,
            "prompt_tokens_details": {"cached_tokens": cache_read_tokens},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }


def build_anthropic_error(error_type: str, message: str) -> dict[str, Any]:
    """An Anthropic error body, e.g. ``("overloaded_error", "Overloaded")``."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


def build_openai_error(error_type: str, message: str, code: str | None = None) -> dict[str, Any]:
    """An OpenAI error body, e.g. ``("invalid_request_error", msg, "context_length_exceeded")``."""
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def is_context_too_long(message: str | None, *codes: str | None) -> bool:
    """True when an error (its message, type or code) says the prompt exceeds the context window.

    Used by the live adapters to report "context too long" precisely and never retry it.
    """
    if any(code in _CONTEXT_TOO_LONG_CODES for code in codes if code):
        return True
    text = (message or "").lower()
    return any(phrase in text for phrase in _CONTEXT_TOO_LONG_PHRASES)


# --- helpers ---------------------------------------------------------------------------------


def _load(provider: str, body: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
    if isinstance(body, str | bytes):
        try:
            body = json.loads(body)
        except UnicodeDecodeError as exc:
            raise ResponseFormatError(
                f"{provider} response is not UTF-8 text (byte {exc.start})", provider=provider
            ) from None
        except json.JSONDecodeError as exc:
            raise ResponseFormatError(
                f"{provider} response is not valid JSON: {exc.msg} at line {exc.lineno}, "
                f"column {exc.colno}",
                provider=provider,
            ) from None
    if not isinstance(body, Mapping):
        raise ResponseFormatError(
            f"{provider} response must be a JSON object, got {_kind(body)}", provider=provider
        )
    return dict(body)


def _anthropic_error(data: dict[str, Any]) -> ProviderError:
    error = data.get("error")
    error = error if isinstance(error, dict) else {}
    kind = str(error.get("type") or "unknown_error")
    message = str(error.get("message") or "(no message)")
    return ProviderError(
        f"anthropic error {kind}: {message}",
        provider="anthropic",
        retryable=kind in _ANTHROPIC_RETRYABLE,
        status_code=_ANTHROPIC_STATUS.get(kind),
        details={"type": kind, "message": message},
    )


def _openai_error(data: dict[str, Any]) -> ProviderError:
    error = data.get("error")
    if not isinstance(error, dict):
        # Some compatible servers send `{"error": "text"}`.
        error = {"message": error}
    kind = str(error.get("type") or "unknown_error")
    code = error.get("code")
    message = str(error.get("message") or "(no message)")
    retryable = kind in _OPENAI_RETRYABLE or code in _OPENAI_RETRYABLE
    label = f"{kind}/{code}" if code else kind
    return ProviderError(
        f"openai error {label}: {message}",
        provider="openai",
        retryable=retryable,
        details={"type": kind, "code": code, "message": message},
    )


class _Reader:
    """Typed access to a response body; every failure names the provider and the field path."""

    def __init__(self, provider: str, data: dict[str, Any]) -> None:
        self.provider = provider
        self.data = data

    def fail(self, path: str, problem: str) -> NoReturn:
        raise ResponseFormatError(
            f"unexpected {self.provider} response: {path}: {problem}",
            provider=self.provider,
            details=[{"loc": path, "message": problem}],
        )

    def _get(self, key: str) -> Any:
        if key not in self.data:
            self.fail(key, "missing")
        return self.data[key]

    def str_(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {_kind(value)}")
        return value

    def list_(self, key: str) -> list[Any]:
        value = self._get(key)
        if not isinstance(value, list):
            self.fail(key, f"expected a list, got {_kind(value)}")
        return value

    def dict_(self, key: str) -> dict[str, Any]:
        value = self._get(key)
        if not isinstance(value, dict):
            self.fail(key, f"expected an object, got {_kind(value)}")
        return value

    def count(self, obj: dict[str, Any], where: str, key: str, optional: bool = False) -> int:
        """A token count: a non-negative integer (absent or null is 0 when ``optional``)."""
        value = obj.get(key)
        if value is None:
            if optional:
                return 0
            self.fail(f"{where}.{key}", "missing")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(f"{where}.{key}", f"expected a non-negative integer, got {value!r}")
        return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=True).encode("ascii")).hexdigest()
