"""Cassettes: recorded model replies, served offline and deterministically by the `replay` provider.

A cassette is a JSONL file (UTF-8, one JSON object per line, blank lines ignored)::

    {"key": "<request key>", "provider": "anthropic" | "openai", "model": "...",
     "request": {"model", "messages", "max_tokens", "temperature", "stop"},
     "response": <the provider's response body, exactly as its API returns it>,
     "note": "optional free text", "redacted": true (only when a secret was blanked)}

``key`` is ``request_key(request)``: the SHA-256 (lowercase hex) of the request's canonical JSON,
which is ``json.dumps(request.canonical(), sort_keys=True, separators=(",", ":"),
ensure_ascii=True, allow_nan=False)`` encoded as ASCII. Every field is always present, numbers are
as Python's ``json`` writes them (``max_tokens`` an integer, ``temperature`` a float such as
``0.0``, written in the shortest form that reads back to the same float), strings are escaped to
ASCII, and nothing about the call (run, phase, attempt) is part of it. That makes the key the same
on every machine and every Python version. Should the request ever gain fields, they will enter
the canonical JSON only when they differ from their default, so existing cassettes keep their keys.

Serving rules (``ReplayProvider``): entries with the same key are served in file order, one per
call; once they are used up the last one is served again for every further call. A request with
no entry raises ReplayMissError, which says who asked, for which model, the key, the start of the
last user message and how to record the reply. A response body that is a provider error envelope
is replayed as that ProviderError (so a recorded failure replays as a failure).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from autopack.errors import ConfigurationError
from autopack.llm.provider import (
    STOP_END_TURN,
    CallContext,
    Completion,
    CompletionRequest,
    InvalidRequestError,
    ProviderError,
    ReplayMissError,
    ResponseFormatError,
)
from autopack.llm.wire import WIRE_FORMATS, build_response, parse_response

REPLAY_PROVIDER_NAME = "replay"
REDACTED = "[REDACTED]"
_ENTRY_FIELDS = {"key", "provider", "model", "request", "response", "note", "redacted"}
_KEY_PATTERN = re.compile(r"^[0-9a-f]{64}$")
# Keys that carry transport metadata rather than the response body. An SDK object dumped whole
# (or a careless recorder) could bring them along; credentials and session data among them must
# never reach a file that is meant to be committed and shared.
_HEADER_LIKE_KEYS = {
    "headers",
    "request_headers",
    "response_headers",
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "api_key",
    "openai-organization",
    "openai-project",
    "anthropic-organization-id",
    "cookie",
    "set-cookie",
}
# Shorter "secrets" are not redacted: blanking every occurrence of a 3-letter string would corrupt
# the recorded text, and no real credential is that short.
_MIN_SECRET_LENGTH = 8
_SNIPPET_CHARS = 200


class CassetteError(ConfigurationError):
    """A cassette file that cannot be read or has a malformed line."""

    code = "cassette_invalid"


def canonical_request_json(request: CompletionRequest) -> str:
    """The one canonical JSON text of a request (see the module docstring)."""
    return json.dumps(
        request.canonical(),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    )


def request_key(request: CompletionRequest) -> str:
    """SHA-256 hex digest of ``canonical_request_json(request)``: the request's cassette key."""
    return hashlib.sha256(canonical_request_json(request).encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class CassetteEntry:
    """One line of a cassette, checked and with its response already parsed."""

    line: int
    key: str
    provider: str
    model: str
    request: dict[str, Any]
    response: dict[str, Any]
    outcome: Completion | ProviderError
    note: str | None = None
    redacted: bool = False


def load_cassette(path: Path | str) -> list[CassetteEntry]:
    """Read and check every line of a cassette; a bad line is a CassetteError naming the file and
    the line. Responses are parsed here, so a broken cassette fails when it is opened, not in the
    middle of a run."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CassetteError(
            f"cassette {path} cannot be read: {exc.strerror or exc}", details={"path": str(path)}
        ) from exc
    entries: list[CassetteEntry] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        entries.append(_parse_line(path, number, line))
    return entries


class ReplayProvider:
    """Serves completions from a cassette; never touches the network.

    Thread-safe: the executor's threads may share one instance; each key's position advances
    under a lock, so concurrent identical requests still get the entries in file order.
    """

    name = REPLAY_PROVIDER_NAME

    def __init__(self, cassette_path: Path | str) -> None:
        self.path = Path(cassette_path)
        self.entries = load_cassette(self.path)
        self._by_key: dict[str, list[CassetteEntry]] = {}
        for entry in self.entries:
            self._by_key.setdefault(entry.key, []).append(entry)
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()

    def complete(self, request: CompletionRequest, *, context: CallContext) -> Completion:
        key = request_key(request)
        with self._lock:
            queue = self._by_key.get(key)
            if not queue:
                raise self._miss(request, key, context)
            position = self._served.get(key, 0)
            self._served[key] = position + 1
        entry = queue[min(position, len(queue) - 1)]
        outcome = entry.outcome
        if isinstance(outcome, ProviderError):
            # A fresh exception per call: the stored one must not collect tracebacks or contexts
            # of earlier calls.
            raise ProviderError(
                f"{outcome.message} (replayed from {self.path} line {entry.line})",
                provider=outcome.provider,
                retryable=outcome.retryable,
                model=request.model,
                status_code=outcome.status_code,
                retry_after=outcome.retry_after,
                context=context,
                details=outcome.details,
            )
        return replace(outcome, provider=self.name)

    def unused_entries(self) -> list[CassetteEntry]:
        """Entries no call has been served yet (a demo or test can assert there are none)."""
        with self._lock:
            served = dict(self._served)
        unused: list[CassetteEntry] = []
        for key, queue in self._by_key.items():
            unused.extend(queue[served.get(key, 0) :])
        return sorted(unused, key=lambda entry: entry.line)

    def _miss(self, request: CompletionRequest, key: str, context: CallContext) -> ReplayMissError:
        text = request.last_user_message
        snippet = json.dumps(text[:_SNIPPET_CHARS], ensure_ascii=False)
        if len(text) > _SNIPPET_CHARS:
            snippet += "…"
        same_model = sum(1 for entry in self.entries if entry.model == request.model)
        return ReplayMissError(
            f"no recorded reply in cassette {self.path} for this request "
            f"({context.describe()}; model {request.model}; key {key}). "
            f"The last user message begins: {snippet}. "
            f"The cassette holds {same_model} replies for {request.model}, none for this exact "
            "request (messages, max_tokens, temperature and stop must all match). Record it by "
            "running the plan against the real provider with `--record CASSETTE`.",
            provider=REPLAY_PROVIDER_NAME,
            retryable=False,
            model=request.model,
            context=context,
            details={
                "cassette": str(self.path),
                "key": key,
                "model": request.model,
                "run_id": context.run_id,
                "phase_id": context.phase_id,
                "attempt": context.attempt,
                "role": context.role,
            },
        )


class CassetteWriter:
    """Appends entries to a cassette: for tests, the demo's cassette builder and record mode.

    It writes only what it is given, minus transport metadata: header-like keys anywhere in the
    response (``headers``, ``authorization``, ``x-api-key``, cookies ...) are dropped, and every
    occurrence of a string passed in ``redact`` (API keys, other secrets) is replaced by
    ``[REDACTED]`` in the request and the response. Such an entry is marked ``"redacted": true``;
    its key stays the key of the original request, so replay still finds it.

    Each entry is one ``write`` of one line followed by fsync, so a recording cut short by a crash
    leaves every finished entry intact. ``mode="overwrite"`` starts a new file.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        redact: Iterable[str] = (),
        mode: Literal["append", "overwrite"] = "append",
    ) -> None:
        self.path = Path(path)
        self._secrets = sorted(
            {secret for secret in redact if len(secret) >= _MIN_SECRET_LENGTH},
            key=len,
            reverse=True,  # longest first, so a secret containing another is blanked whole
        )
        self._lock = threading.Lock()
        if mode == "overwrite":
            self.path.write_bytes(b"")

    def append(
        self,
        request: CompletionRequest,
        response: Mapping[str, Any],
        *,
        provider: str,
        note: str | None = None,
    ) -> str:
        """Write one entry; returns its key. The response must parse (or be an error envelope)."""
        if provider not in WIRE_FORMATS:
            raise CassetteError(
                f"unknown provider {provider!r} for a cassette entry; known: "
                f"{', '.join(WIRE_FORMATS)}"
            )
        body = _drop_header_like(dict(response))
        try:
            parse_response(provider, body)
        except ResponseFormatError as exc:
            raise CassetteError(f"refusing to record a malformed response: {exc.message}") from exc
        except ProviderError:
            pass  # an error envelope: recorded so that replay fails the same way
        key = request_key(request)
        canonical = request.canonical()
        redacted_request = self._redact(canonical)
        redacted_body = self._redact(body)
        entry: dict[str, Any] = {
            "key": key,
            "provider": provider,
            "model": request.model,
            "request": redacted_request,
            "response": redacted_body,
        }
        if note is not None:
            entry["note"] = self._redact(note)
        if redacted_request != canonical or redacted_body != body:
            entry["redacted"] = True
        line = json.dumps(entry, ensure_ascii=True, allow_nan=False) + "\n"
        with self._lock, self.path.open("a", encoding="ascii") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        return key

    def append_reply(
        self,
        request: CompletionRequest,
        text: str,
        *,
        provider: str,
        input_tokens: int,
        output_tokens: int,
        stop_reason: str = STOP_END_TURN,
        cache_read_tokens: int = 0,
        model: str | None = None,
        note: str | None = None,
    ) -> str:
        """Build a response body in the provider's wire format and append it (demo, tests)."""
        body = build_response(
            provider,
            text,
            model=model or request.model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            stop_reason=stop_reason,
            cache_read_tokens=cache_read_tokens,
        )
        return self.append(request, body, provider=provider, note=note)

    def _redact(self, value: Any) -> Any:
        if not self._secrets:
            return value
        if isinstance(value, str):
            for secret in self._secrets:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {self._redact(k): self._redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._redact(item) for item in value]
        return value


def _drop_header_like(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _drop_header_like(item)
            for key, item in value.items()
            if not (isinstance(key, str) and key.lower() in _HEADER_LIKE_KEYS)
        }
    if isinstance(value, list):
        return [_drop_header_like(item) for item in value]
    return value


def _parse_line(path: Path, number: int, line: bytes) -> CassetteEntry:
    def fail(problem: str) -> CassetteError:
        return CassetteError(
            f"cassette {path} line {number}: {problem}",
            details={"path": str(path), "line": number, "message": problem},
        )

    try:
        data = json.loads(line)
    except UnicodeDecodeError as exc:
        raise fail(f"not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise fail(f"not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(data, dict):
        raise fail(f"expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - _ENTRY_FIELDS)
    if unknown:
        raise fail(f"unknown fields {unknown}; an entry has {sorted(_ENTRY_FIELDS)}")
    for required in ("provider", "request", "response"):
        if required not in data:
            raise fail(f"missing `{required}`")
    provider = data["provider"]
    if provider not in WIRE_FORMATS:
        raise fail(f"provider must be one of {list(WIRE_FORMATS)}, got {provider!r}")
    redacted = data.get("redacted", False)
    if not isinstance(redacted, bool):
        raise fail("`redacted` must be true or false")
    try:
        request = CompletionRequest.from_canonical(data["request"])
    except InvalidRequestError as exc:
        raise fail(f"invalid request: {exc.message}") from None
    computed = request_key(request)
    key = data.get("key")
    if key is None:
        if redacted:
            raise fail("a redacted entry must keep the `key` of its original request")
        key = computed
    elif not isinstance(key, str) or not _KEY_PATTERN.match(key):
        raise fail("`key` must be 64 lowercase hex digits (a SHA-256)")
    elif key != computed and not redacted:
        # The stored request is what a human reads and edits; a key that no longer matches it
        # would silently serve this reply to a different prompt than the one shown.
        raise fail(
            f"`key` {key} does not match its request (which hashes to {computed}); "
            "drop the key to have it computed, or restore the request"
        )
    model = data.get("model", request.model)
    if model != request.model:
        raise fail(f"`model` {model!r} differs from request.model {request.model!r}")
    note = data.get("note")
    if note is not None and not isinstance(note, str):
        raise fail("`note` must be a string")
    response = data["response"]
    if not isinstance(response, dict):
        raise fail("`response` must be a JSON object (the provider's response body)")
    outcome: Completion | ProviderError
    try:
        outcome = parse_response(provider, response)
    except ResponseFormatError as exc:
        raise fail(exc.message) from None
    except ProviderError as exc:
        outcome = exc
    return CassetteEntry(
        line=number,
        key=key,
        provider=provider,
        model=request.model,
        request=data["request"],
        response=response,
        outcome=outcome,
        note=note,
        redacted=redacted,
    )
