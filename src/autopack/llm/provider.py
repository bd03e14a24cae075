"""The Provider protocol and the values that cross it: requests, completions, call context, errors.

Every model call in Autopack goes through ``Provider.complete``. A *request* is the model-visible
part of a call (model, messages, limits); it is hashable and has one canonical JSON form, because
the replay cassettes are keyed by it (``autopack.llm.replay.request_key``). The *call context*
(run, phase, attempt, role) travels next to the request, never inside it: the same prompt sent by
attempt 1 and attempt 3 is the same request, and an error or ledger row still knows who asked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args, runtime_checkable

from autopack.errors import AutopackError

MessageRole = Literal["system", "user", "assistant"]
MESSAGE_ROLES: frozenset[str] = frozenset(get_args(MessageRole))

# Normalised stop reasons (Anthropic's vocabulary, which OpenAI's finish reasons map onto).
# Providers may surface others as they are; these are the ones the executor acts on.
STOP_END_TURN = "end_turn"
STOP_MAX_TOKENS = "max_tokens"
STOP_SEQUENCE = "stop_sequence"
STOP_TOOL_USE = "tool_use"
STOP_REFUSAL = "refusal"


@dataclass(frozen=True, slots=True)
class Message:
    role: MessageRole
    content: str

    def __post_init__(self) -> None:
        if self.role not in MESSAGE_ROLES:
            raise InvalidRequestError(
                f"message role must be one of {sorted(MESSAGE_ROLES)}, got {self.role!r}"
            )
        if not isinstance(self.content, str):
            raise InvalidRequestError(
                f"message content must be a string, got {type(self.content).__name__}"
            )


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """What is sent to a model. Frozen and made of tuples so it can be hashed and used as a key.

    ``temperature`` is stored as a float whatever number it was given as, so that ``0`` and ``0.0``
    are the same request (and the same cassette key).
    """

    model: str
    messages: tuple[Message, ...]
    max_tokens: int
    temperature: float = 0.0
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise InvalidRequestError("a completion request needs a model name")
        # Lists are accepted for convenience but stored as tuples: a list would make the frozen
        # request unhashable and let a caller mutate a request after it was keyed.
        object.__setattr__(self, "messages", tuple(self.messages))
        object.__setattr__(self, "stop", tuple(self.stop))
        if not self.messages:
            raise InvalidRequestError("a completion request needs at least one message")
        for message in self.messages:
            if not isinstance(message, Message):
                raise InvalidRequestError(
                    f"messages must be Message values, got {type(message).__name__}"
                )
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int):
            raise InvalidRequestError(f"max_tokens must be an integer, got {self.max_tokens!r}")
        if self.max_tokens < 1:
            raise InvalidRequestError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, int | float):
            raise InvalidRequestError(f"temperature must be a number, got {self.temperature!r}")
        temperature = float(self.temperature)
        if not math.isfinite(temperature) or not 0.0 <= temperature <= 2.0:
            raise InvalidRequestError(f"temperature must be within [0, 2], got {temperature}")
        object.__setattr__(self, "temperature", temperature)
        for stop in self.stop:
            if not isinstance(stop, str) or not stop:
                raise InvalidRequestError(f"stop sequences must be non-empty strings: {stop!r}")

    @property
    def last_user_message(self) -> str:
        """The content of the last ``user`` message ("" when there is none); used in errors."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.content
        return ""

    def canonical(self) -> dict[str, Any]:
        """The request as plain JSON data: what a cassette stores and what its key hashes."""
        return {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stop": list(self.stop),
        }

    @classmethod
    def from_canonical(cls, data: Any) -> CompletionRequest:
        """The inverse of ``canonical``; raises InvalidRequestError on any other shape."""
        if not isinstance(data, dict):
            raise InvalidRequestError(f"a request must be an object, got {type(data).__name__}")
        unknown = set(data) - {"model", "messages", "max_tokens", "temperature", "stop"}
        if unknown:
            raise InvalidRequestError(f"unknown request fields: {sorted(unknown)}")
        messages = data.get("messages")
        if not isinstance(messages, list):
            raise InvalidRequestError("request.messages must be a list")
        parsed: list[Message] = []
        for position, message in enumerate(messages):
            if not isinstance(message, dict) or set(message) != {"role", "content"}:
                raise InvalidRequestError(
                    f"request.messages[{position}] must be an object with exactly `role` and "
                    "`content`"
                )
            parsed.append(Message(role=message["role"], content=message["content"]))
        stop = data.get("stop", [])
        if not isinstance(stop, list):
            raise InvalidRequestError("request.stop must be a list")
        return cls(
            model=data.get("model"),  # type: ignore[arg-type]  # checked in __post_init__
            messages=tuple(parsed),
            max_tokens=data.get("max_tokens"),  # type: ignore[arg-type]
            temperature=data.get("temperature", 0.0),
            stop=tuple(stop),
        )


@dataclass(frozen=True, slots=True)
class Completion:
    """A model's reply, normalised across providers.

    Token fields follow what each token is billed as, so that cost is one formula for every
    provider: ``input_tokens`` are prompt tokens billed at the full input price (cache reads and
    cache writes NOT included), ``cache_read_tokens`` those served from the provider's prompt
    cache, ``cache_write_tokens`` those written to it. Anthropic reports them this way already;
    OpenAI's ``prompt_tokens`` includes its ``cached_tokens``, which ``wire`` subtracts.
    """

    text: str
    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    stop_reason: str = STOP_END_TURN
    raw: dict[str, Any] | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def prompt_tokens(self) -> int:
        """Every token of the prompt, however it was billed."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def total_tokens(self) -> int:
        """What a token cap counts: the whole prompt plus the output."""
        return self.prompt_tokens + self.output_tokens

    @property
    def truncated(self) -> bool:
        """True when the reply stopped because it ran out of ``max_tokens``."""
        return self.stop_reason == STOP_MAX_TOKENS


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is asking: for error messages and the llm_calls ledger. Never part of a request key."""

    run_id: str | None = None
    phase_id: str | None = None
    attempt: int | None = None
    role: str = "builder"

    def describe(self) -> str:
        """``run r1, phase p2, attempt 3, builder`` (parts that are unknown are left out)."""
        parts = []
        if self.run_id is not None:
            parts.append(f"run {self.run_id}")
        if self.phase_id is not None:
            parts.append(f"phase {self.phase_id}")
        if self.attempt is not None:
            parts.append(f"attempt {self.attempt}")
        parts.append(self.role)
        return ", ".join(parts)


@runtime_checkable
class Provider(Protocol):
    """A source of completions: a real API adapter, the replay cassette, or a test fake.

    ``complete`` returns a Completion or raises ProviderError; ``retryable`` on the error tells
    the caller whether the same request may succeed later (rate limits, overload, timeouts) or
    never will (bad request, authentication, a replay miss).
    """

    name: str

    def complete(self, request: CompletionRequest, *, context: CallContext) -> Completion: ...


@runtime_checkable
class CredentialCheck(Protocol):
    """A provider that can tell, before a run starts, which models it cannot serve for want of a
    key (live providers); replay needs no key and does not implement it."""

    def missing_credentials(self, models: Iterable[str]) -> list[str]:
        """One human-readable problem per missing credential; empty when every model is served."""
        ...


class InvalidRequestError(AutopackError):
    """A CompletionRequest that cannot be built (a programming error in the caller)."""

    code = "invalid_llm_request"


class ProviderError(AutopackError):
    """A model call that did not produce a completion.

    ``retryable`` is the one thing a caller must look at: True when the same request may succeed
    later (rate limited, overloaded, server error, timeout), False when it never will.
    ``retry_after`` carries the provider's hint in seconds when it gave one.
    """

    code = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        retryable: bool,
        model: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
        context: CallContext | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message, details=details)
        self.provider = provider
        self.retryable = retryable
        self.model = model
        self.status_code = status_code
        self.retry_after = retry_after
        self.context = context


class ResponseFormatError(ProviderError):
    """A response body that is not the provider's documented shape. Never retryable: the same
    server would most likely answer the same way, and guessing at a reply is worse than failing."""

    code = "provider_response_invalid"

    def __init__(self, message: str, *, provider: str, details: Any = None) -> None:
        super().__init__(message, provider=provider, retryable=False, details=details)


class ReplayMissError(ProviderError):
    """The replay cassette holds no answer for this request."""

    code = "replay_miss"
