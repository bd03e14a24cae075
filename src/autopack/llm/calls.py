"""How a live model call is made: its time limits, its retries, and the transport helpers that the
provider adapters (``anthropic_provider``, ``openai_provider``) share.

A call is bounded three ways by its ``CallPolicy``:

* ``connect_timeout``: the longest wait to open a connection;
* ``stall_timeout``: the longest silence allowed, before the first byte of a reply and between two
  streamed events (a live stream that stops sending is a stalled call, not a slow one);
* ``deadline``: the whole call, every try and every backoff sleep included. No try is started,
  and no sleep is begun, that cannot finish within it.

Between tries ``call_with_retries`` sleeps with exponential backoff and full jitter (a uniformly
random wait between 0 and ``min(backoff_max, backoff_initial * 2 ** (failures - 1))``), unless the
server said how long to wait (``Retry-After`` in seconds or as an HTTP date, or
``retry-after-ms``): then it waits exactly that, or gives up at once when that wait does not fit
in what is left of the deadline. Only retryable ProviderErrors are retried (408, 409, 429, 5xx,
529 overloaded, connection failures, timeouts and stalls); anything else is raised at once.

The clock, the sleep and the random source are parameters, so the arithmetic is tested without
waiting. Nothing here reads settings: the adapters are given a policy.
"""

from __future__ import annotations

import email.utils
import json
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2

from autopack.llm.provider import CallContext, ProviderError

T = TypeVar("T")

Clock = Callable[[], float]
Sleep = Callable[[float], None]

# HTTP statuses after which the same request may well succeed. 409 is a lock or concurrency
# conflict on the provider's side (both SDKs retry it too); 529 is Anthropic's "overloaded".
_RETRYABLE_STATUSES = frozenset({408, 409, 429})


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """The time limits and retry budget of one model call (see the module docstring)."""

    connect_timeout: float = 10.0
    stall_timeout: float = 120.0
    deadline: float = 600.0
    max_retries: int = 4
    backoff_initial: float = 1.0
    backoff_max: float = 30.0

    def __post_init__(self) -> None:
        for name in (
            "connect_timeout",
            "stall_timeout",
            "deadline",
            "backoff_initial",
            "backoff_max",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"CallPolicy.{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"CallPolicy.{name} must be a positive number, got {value!r}")
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            raise ValueError(
                f"CallPolicy.max_retries must be a non-negative integer, got {self.max_retries!r}"
            )

    @property
    def max_tries(self) -> int:
        return self.max_retries + 1


def is_retryable_status(status: int) -> bool:
    """True for the HTTP statuses after which the same request may succeed: 408, 409, 429, 5xx."""
    return status in _RETRYABLE_STATUSES or status >= 500


def backoff_delay(policy: CallPolicy, failures: int, rand: Callable[[], float]) -> float:
    """The wait after ``failures`` consecutive failed tries: full jitter over the exponential cap.

    Full jitter (rather than a fixed delay plus a little noise) spreads the retries of many
    clients hit by the same outage over the whole window instead of bunching them up again.
    """
    exponent = min(max(failures - 1, 0), 64)  # 2**64 seconds is already far past any cap
    cap = min(policy.backoff_max, policy.backoff_initial * 2.0**exponent)
    return rand() * cap


def parse_retry_after(
    headers: Mapping[str, str] | None, *, now: Callable[[], float] = time.time
) -> float | None:
    """The server's requested wait in seconds, or None when it gave no usable one.

    ``retry-after-ms`` (sent by both Anthropic and OpenAI, more precise) wins over
    ``Retry-After``, which may be a number of seconds or an HTTP date (compared with ``now``, a
    wall clock). A date in the past is a wait of 0. Header names are matched case-insensitively.
    """
    if not headers:
        return None
    lowered = {name.lower(): value for name, value in headers.items()}
    milliseconds = _non_negative_number(lowered.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000.0
    value = lowered.get("retry-after")
    if value is None:
        return None
    seconds = _non_negative_number(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT; a zone-less one is read as such
        return None
    return max(0.0, when.timestamp() - now())


def _non_negative_number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number


def seconds(value: float) -> str:
    """A duration for a message: ``2``, ``0.5``, ``12.3`` (no trailing zeros, at most 0.1 s)."""
    return f"{round(value, 1):g}"


def tries(count: int) -> str:
    return f"{count} {'try' if count == 1 else 'tries'}"


class DeadlineError(Exception):
    """Raised inside a try when the call's deadline passes; ``call_with_retries`` turns it into
    the call's final ProviderError (retryable: a later call has a fresh deadline)."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of a call: what an adapter needs to bound its own waits by the call's deadline."""

    number: int
    started_at: float
    deadline_at: float
    policy: CallPolicy
    clock: Clock

    def remaining(self) -> float:
        """Seconds left before the call's deadline (never negative)."""
        return max(0.0, self.deadline_at - self.clock())

    def connect_timeout(self) -> float:
        return max(_MIN_WAIT, min(self.policy.connect_timeout, self.remaining()))

    def read_timeout(self) -> float:
        """The longest silence this try may wait for: the stall limit, or less near the deadline."""
        return max(_MIN_WAIT, min(self.policy.stall_timeout, self.remaining()))

    def check_deadline(self) -> None:
        """Called between streamed events: a stream that keeps sending must still end in time."""
        if self.clock() >= self.deadline_at:
            raise DeadlineError


# Timeouts of 0 mean "no timeout" to some transports; a try that starts this close to the deadline
# fails almost at once instead.
_MIN_WAIT = 0.001


def call_with_retries(
    attempt: Callable[[Attempt], T],
    *,
    provider: str,
    model: str,
    context: CallContext,
    policy: CallPolicy,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    rand: Callable[[], float] = random.random,
) -> T:
    """Run ``attempt`` until it returns, retrying retryable ProviderErrors within the policy.

    ``attempt`` raises ProviderError (``retryable`` says whether to try again; ``retry_after``
    carries the server's hint) or DeadlineError. A non-retryable error is raised as it is. When
    the tries or the deadline run out, the last error is raised again with how many tries and
    seconds the call took; such an error stays retryable (the caller may try again later).
    """
    started_at = clock()
    deadline_at = started_at + policy.deadline
    last: ProviderError | None = None
    made = 0

    def final(message: str, cause: ProviderError | None) -> ProviderError:
        return ProviderError(
            f"{provider}: {message}",
            provider=provider,
            retryable=True,
            model=model,
            status_code=cause.status_code if cause else None,
            retry_after=cause.retry_after if cause else None,
            context=context,
            details={
                "tries": made,
                "elapsed_s": round(clock() - started_at, 3),
                "deadline_s": policy.deadline,
                "last_error": cause.message if cause else None,
                "last_error_details": cause.details if cause else None,
            },
        )

    def out_of_time(cause: ProviderError | None) -> ProviderError:
        elapsed = clock() - started_at
        tail = f"; last error: {_without_prefix(cause.message, provider)}" if cause else ""
        return final(
            f"no reply within the {seconds(policy.deadline)} s deadline "
            f"({tries(made)} in {seconds(elapsed)} s{tail})",
            cause,
        )

    while True:
        if clock() >= deadline_at:
            raise out_of_time(last)
        made += 1
        try:
            return attempt(Attempt(made, started_at, deadline_at, policy, clock))
        except DeadlineError:
            raise out_of_time(last) from None
        except ProviderError as exc:
            if not exc.retryable:
                raise
            last = exc
        if made >= policy.max_tries:
            elapsed = clock() - started_at
            raise final(
                f"{_without_prefix(last.message, provider)} "
                f"(gave up after {tries(made)} in {seconds(elapsed)} s)",
                last,
            ) from last
        remaining = deadline_at - clock()
        if last.retry_after is not None:
            wait = last.retry_after
            if wait >= remaining:
                raise final(
                    f"{_without_prefix(last.message, provider)} (the server asked to wait "
                    f"{seconds(wait)} s before retrying, more than the {seconds(max(remaining, 0))}"
                    f" s left of the {seconds(policy.deadline)} s deadline; gave up after "
                    f"{tries(made)} in {seconds(clock() - started_at)} s)",
                    last,
                ) from last
        else:
            wait = backoff_delay(policy, made, rand)
            if wait >= remaining:
                raise out_of_time(last) from last
        if wait > 0:
            sleep(wait)


def _without_prefix(message: str, provider: str) -> str:
    return message.removeprefix(f"{provider}: ")


# --- transport ---------------------------------------------------------------------------------


def http_timeout(attempt: Attempt) -> httpx2.Timeout:
    """The per-request timeouts of a try (the SDKs take an ``httpx2.Timeout``). httpx applies the
    read timeout to every single read, so it bounds the wait for the first byte and every silence
    between two chunks of the stream alike."""
    connect, read = attempt.connect_timeout(), attempt.read_timeout()
    return httpx2.Timeout(connect=connect, read=read, write=read, pool=connect)


def transport_failure(
    exc: BaseException, *, timeout: httpx2.Timeout, host: str, events: int | None
) -> str:
    """What went wrong below HTTP, for a message. ``exc`` is the httpx2 exception (the cause of
    the SDK's APITimeoutError / APIConnectionError, or raised while reading a stream); ``events``
    is how many stream events had arrived, None when the reply had not begun."""
    if isinstance(exc, httpx2.ConnectTimeout | httpx2.PoolTimeout):
        limit = seconds(_of(timeout.connect))
        return f"timed out connecting to {host} (no connection within {limit} s)"
    if isinstance(exc, httpx2.WriteTimeout):
        return f"timed out sending the request to {host} ({seconds(_of(timeout.write))} s)"
    if isinstance(exc, httpx2.TimeoutException):
        if events is None:
            return f"timed out: no reply from {host} within {seconds(_of(timeout.read))} s"
        return (
            f"timed out: the stream from {host} stalled (no data for "
            f"{seconds(_of(timeout.read))} s after {events} events)"
        )
    where = "before the reply" if events is None else f"after {events} stream events"
    if isinstance(exc, httpx2.ConnectError):
        return f"could not connect to {host}: {_describe(exc)}"
    if isinstance(exc, httpx2.TransportError):
        return f"the connection to {host} failed {where}: {_describe(exc)}"
    return f"the request to {host} failed {where}: {_describe(exc)}"


def _of(value: float | None) -> float:
    return value if value is not None else math.inf


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def json_object(text: str) -> Any:
    """``json.loads`` that refuses NaN and Infinity (not JSON, and no token count)."""
    return json.loads(text, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# --- server-sent events ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str | None
    data: str


def iter_sse(chunks: Iterable[bytes], *, on_chunk: Callable[[], None]) -> Iterator[ServerSentEvent]:
    """Decode a ``text/event-stream`` body into events, calling ``on_chunk`` after every chunk
    received (the adapters check the deadline there, so a stream that trickles still ends).

    Lines are split on bytes and decoded whole, so a UTF-8 character cut between two network
    chunks is not mangled. Comments (``:`` lines, used as keep-alives) and unknown fields are
    skipped; an event with no ``data`` is not dispatched (per the SSE specification).
    """
    buffer = b""
    event: str | None = None
    data: list[str] = []
    for chunk in chunks:
        on_chunk()
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            line = raw.removesuffix(b"\r").decode("utf-8", errors="replace")
            if not line:
                if data:
                    yield ServerSentEvent(event, "\n".join(data))
                event, data = None, []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    # An event not ended by a blank line is incomplete (the connection dropped mid-event) and is
    # discarded, as the specification says: half a JSON document must not be parsed as a reply.


def redact(value: object, secret: str | None) -> object:
    """``value`` with every occurrence of ``secret`` blanked out, in strings nested anywhere."""
    if not secret:
        return value
    if isinstance(value, str):
        return value.replace(secret, "[REDACTED]")
    if isinstance(value, dict):
        return {redact(k, secret): redact(v, secret) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item, secret) for item in value]
    return value
