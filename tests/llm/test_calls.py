"""The call policy's arithmetic: backoff, Retry-After, the deadline, and the SSE decoder.

A fake clock stands in for time: ``sleep`` advances it, so no test waits.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from autopack.llm.calls import (
    Attempt,
    CallPolicy,
    DeadlineError,
    ServerSentEvent,
    backoff_delay,
    call_with_retries,
    is_retryable_status,
    iter_sse,
    parse_retry_after,
    redact,
)
from autopack.llm.provider import CallContext, ProviderError, ResponseFormatError

CONTEXT = CallContext(run_id="r1", phase_id="p1", attempt=2)


@dataclass
class FakeTime:
    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def _retryable(message: str = "test: 503 overloaded", **kwargs: Any) -> ProviderError:
    return ProviderError(message, provider="test", retryable=True, **kwargs)


def _run(
    attempt: Callable[[Attempt], Any],
    policy: CallPolicy,
    fake: FakeTime,
    rand: Callable[[], float] = lambda: 1.0,
) -> Any:
    return call_with_retries(
        attempt,
        provider="test",
        model="m1",
        context=CONTEXT,
        policy=policy,
        clock=fake.clock,
        sleep=fake.sleep,
        rand=rand,
    )


class Script:
    """An attempt function that plays a list of outcomes (exceptions raised, values returned),
    spending ``cost`` seconds of fake time on each try."""

    def __init__(self, fake: FakeTime, outcomes: list[Any], cost: float = 0.0) -> None:
        self.fake = fake
        self.outcomes = list(outcomes)
        self.cost = cost
        self.attempts: list[Attempt] = []

    def __call__(self, attempt: Attempt) -> Any:
        self.attempts.append(attempt)
        self.fake.now += self.cost
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


# --- policy ----------------------------------------------------------------------------------


def test_policy_defaults() -> None:
    policy = CallPolicy()
    assert (policy.connect_timeout, policy.stall_timeout, policy.deadline) == (10.0, 120.0, 600.0)
    assert (policy.max_retries, policy.backoff_initial, policy.backoff_max) == (4, 1.0, 30.0)
    assert policy.max_tries == 5


@pytest.mark.parametrize(
    "overrides",
    [
        {"connect_timeout": 0},
        {"stall_timeout": -1},
        {"deadline": float("inf")},
        {"deadline": float("nan")},
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"max_retries": True},
        {"backoff_initial": 0},
        {"backoff_max": 0},
        {"backoff_max": "30"},
    ],
)
def test_policy_rejects_nonsense(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="CallPolicy"):
        CallPolicy(**overrides)


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_retryable_statuses(status: int) -> None:
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_not_retryable_statuses(status: int) -> None:
    assert not is_retryable_status(status)


# --- backoff ---------------------------------------------------------------------------------


def test_backoff_caps_double_up_to_the_maximum() -> None:
    policy = CallPolicy(backoff_initial=1.0, backoff_max=30.0)
    caps = [backoff_delay(policy, failures, lambda: 1.0) for failures in range(1, 8)]
    assert caps == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff_delay(policy, 10_000, lambda: 1.0) == 30.0  # no overflow


def test_backoff_max_below_the_initial_delay_caps_every_wait() -> None:
    policy = CallPolicy(backoff_initial=1.0, backoff_max=0.25)
    assert [backoff_delay(policy, n, lambda: 1.0) for n in (1, 2, 5)] == [0.25, 0.25, 0.25]


def test_backoff_is_full_jitter() -> None:
    policy = CallPolicy(backoff_initial=1.0, backoff_max=30.0)
    assert backoff_delay(policy, 3, lambda: 0.0) == 0.0
    assert backoff_delay(policy, 3, lambda: 0.25) == 1.0
    assert backoff_delay(policy, 3, lambda: 0.5) == 2.0


# --- Retry-After -----------------------------------------------------------------------------


def test_retry_after_seconds_and_milliseconds() -> None:
    assert parse_retry_after({"Retry-After": "1"}) == 1.0
    assert parse_retry_after({"retry-after": " 2.5 "}) == 2.5
    assert parse_retry_after({"Retry-After-Ms": "250"}) == 0.25
    # retry-after-ms is the more precise of the two and wins
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "junk", "retry-after": "3"}) == 3.0


def test_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    later = email.utils.formatdate(now + 30, usegmt=True)
    earlier = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after({"Retry-After": later}, now=lambda: now) == pytest.approx(30.0)
    assert parse_retry_after({"Retry-After": earlier}, now=lambda: now) == 0.0


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf", ""])
def test_retry_after_unusable(value: str) -> None:
    assert parse_retry_after({"Retry-After": value}) is None


def test_retry_after_absent() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after({}) is None
    assert parse_retry_after({"content-type": "application/json"}) is None


# --- the retry loop ----------------------------------------------------------------------------


def test_success_first_try_does_not_sleep() -> None:
    fake = FakeTime()
    script = Script(fake, ["done"])
    assert _run(script, CallPolicy(), fake) == "done"
    assert fake.sleeps == []
    assert [a.number for a in script.attempts] == [1]


def test_retryable_errors_back_off_then_succeed() -> None:
    fake = FakeTime()
    policy = CallPolicy(backoff_initial=1.0, backoff_max=30.0)
    script = Script(fake, [_retryable(), _retryable(), "done"])
    assert _run(script, policy, fake, rand=lambda: 0.5) == "done"
    assert fake.sleeps == [0.5, 1.0]  # half of the caps 1 and 2 (full jitter, rand = 0.5)
    assert [a.number for a in script.attempts] == [1, 2, 3]


def test_retry_after_is_honoured_exactly() -> None:
    fake = FakeTime()
    policy = CallPolicy(backoff_initial=1.0, backoff_max=2.0)
    script = Script(fake, [_retryable(retry_after=7.0), _retryable(retry_after=0.0), "done"])
    assert _run(script, policy, fake) == "done"
    assert fake.sleeps == [7.0]  # beyond backoff_max: the server's word wins; 0 is no sleep


def test_retry_after_beyond_the_deadline_gives_up_at_once() -> None:
    fake = FakeTime()
    policy = CallPolicy(deadline=10.0)
    error = _retryable("test: 429 rate_limit_error: slow down", status_code=429, retry_after=60.0)
    script = Script(fake, [error], cost=1.0)
    with pytest.raises(ProviderError) as caught:
        _run(script, policy, fake)
    assert fake.sleeps == []
    assert len(script.attempts) == 1
    exc = caught.value
    assert exc.retryable
    assert exc.status_code == 429
    assert exc.retry_after == 60.0
    assert exc.message.startswith("test: 429 rate_limit_error: slow down")
    assert "asked to wait 60 s" in exc.message
    assert "9 s left of the 10 s deadline" in exc.message
    assert "1 try" in exc.message
    assert exc.model == "m1"
    assert exc.context == CONTEXT


def test_non_retryable_error_is_raised_at_once() -> None:
    fake = FakeTime()
    error = ProviderError("test: 401 authentication_error: no", provider="test", retryable=False)
    script = Script(fake, [error, "never"])
    with pytest.raises(ProviderError) as caught:
        _run(script, CallPolicy(), fake)
    assert caught.value is error
    assert fake.sleeps == []


def test_format_errors_are_not_retried() -> None:
    fake = FakeTime()
    error = ResponseFormatError("test: bad body", provider="test")
    script = Script(fake, [error, "never"])
    with pytest.raises(ResponseFormatError):
        _run(script, CallPolicy(), fake)
    assert len(script.attempts) == 1


def test_retries_exhausted_names_tries_and_seconds() -> None:
    fake = FakeTime()
    policy = CallPolicy(max_retries=2, backoff_initial=1.0)
    last = _retryable("test: 529 overloaded_error: Overloaded", status_code=529)
    script = Script(fake, [_retryable(), _retryable(), last], cost=0.5)
    with pytest.raises(ProviderError) as caught:
        _run(script, policy, fake)
    exc = caught.value
    assert len(script.attempts) == 3
    assert exc.retryable
    assert exc.status_code == 529
    assert exc.message == (
        "test: 529 overloaded_error: Overloaded (gave up after 3 tries in 4.5 s)"
    )  # 3 tries of 0.5 s, sleeps of 1 and 2 s
    assert exc.__cause__ is last
    assert exc.details["tries"] == 3


def test_never_sleeps_past_the_deadline() -> None:
    fake = FakeTime()
    policy = CallPolicy(deadline=10.0, max_retries=10, backoff_initial=1.0, backoff_max=30.0)
    script = Script(fake, [_retryable(f"test: fail {n}") for n in range(11)], cost=4.0)
    start = fake.now
    with pytest.raises(ProviderError) as caught:
        _run(script, policy, fake)
    # try 1 ends at 4 s, sleep 1 s, try 2 ends at 9 s; the next wait (2 s) does not fit in the
    # 1 s left, so the call ends there instead of sleeping past its deadline.
    assert fake.sleeps == [1.0]
    assert fake.now - start == 9.0
    exc = caught.value
    assert exc.retryable
    assert exc.message == (
        "test: no reply within the 10 s deadline (2 tries in 9 s; last error: fail 1)"
    )


def test_each_try_gets_what_is_left_of_the_deadline() -> None:
    fake = FakeTime()
    policy = CallPolicy(connect_timeout=5.0, stall_timeout=3.0, deadline=10.0)
    seen: list[tuple[float, float]] = []

    def attempt(a: Attempt) -> str:
        seen.append((a.connect_timeout(), a.read_timeout()))
        fake.now += 8.5
        if a.number == 1:
            raise _retryable(retry_after=0.5)
        return "done"

    assert _run(attempt, policy, fake) == "done"
    assert seen == [(5.0, 3.0), (1.0, 1.0)]  # the second try starts with 1 s left


def test_deadline_error_from_a_try_ends_the_call() -> None:
    fake = FakeTime()

    def attempt(a: Attempt) -> str:
        fake.now += 3.0
        a.check_deadline()
        return "not reached"

    with pytest.raises(ProviderError) as caught:
        _run(attempt, CallPolicy(deadline=2.0), fake)
    assert caught.value.retryable
    assert "no reply within the 2 s deadline (1 try in 3 s)" in caught.value.message


def test_check_deadline_raises_only_after_the_deadline() -> None:
    fake = FakeTime(now=0.0)
    attempt = Attempt(1, 0.0, 5.0, CallPolicy(), fake.clock)
    fake.now = 4.9
    attempt.check_deadline()
    assert attempt.remaining() == pytest.approx(0.1)
    fake.now = 5.0
    with pytest.raises(DeadlineError):
        attempt.check_deadline()
    assert attempt.remaining() == 0.0


# --- server-sent events ------------------------------------------------------------------------


def test_sse_decoding_across_chunk_boundaries() -> None:
    body = (
        b": keep-alive comment\r\n"
        b'event: message_start\r\ndata: {"a": 1}\r\n\r\n'
        b"data: first line\ndata: second line\n\n"
        b"event: text\ndata: caf\xc3\xa9\n\n"
        b"retry: 100\n\n"  # no data: not dispatched
        b'event: cut\ndata: {"incomplete"'  # no blank line: dropped
    )
    # Cut everywhere, including between the two bytes of the UTF-8 "é".
    chunks = [body[i : i + 3] for i in range(0, len(body), 3)]
    calls: list[None] = []
    events = list(iter_sse(chunks, on_chunk=lambda: calls.append(None)))
    assert events == [
        ServerSentEvent("message_start", '{"a": 1}'),
        ServerSentEvent(None, "first line\nsecond line"),
        ServerSentEvent("text", "café"),
    ]
    assert len(calls) == len(chunks)


def test_sse_on_chunk_can_stop_the_stream() -> None:
    def stop() -> None:
        raise DeadlineError

    with pytest.raises(DeadlineError):
        list(iter_sse([b"data: x\n\n"], on_chunk=stop))


def test_redact_blanks_a_secret_everywhere() -> None:
    secret = "sk-very-secret-1234"
    value = {"a": f"key {secret}", secret: [secret, 1, None], "n": 2}
    assert redact(value, secret) == {
        "a": "key [REDACTED]",
        "[REDACTED]": ["[REDACTED]", 1, None],
        "n": 2,
    }
    assert redact(value, None) is value
