"""What the live adapters (``anthropic_provider``, ``openai_provider``) share: errors that name the
provider and never carry its key, and the strict parsing of the body a stream was assembled into.

Each adapter sets ``name`` and ``_api_key`` and names its ``wire`` parser (``_parse_wire``) and how
its error envelopes read (``_envelope_error``); the rest is here, so that the two speak about
failures in one voice.
"""

from __future__ import annotations

from typing import Any

from autopack.llm.calls import (
    Attempt,
    CallPolicy,
    Clock,
    Sleep,
    call_with_retries,
    json_object,
    redact,
)
from autopack.llm.provider import (
    CallContext,
    Completion,
    CompletionRequest,
    ProviderError,
    ResponseFormatError,
)

SNIPPET_CHARS = 300


def snippet(text: str) -> str:
    """``text`` on one line, cut to SNIPPET_CHARS: for quoting a body in an error."""
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[:SNIPPET_CHARS] + "…"


class LiveAdapter:
    """Base of the live adapters: the retry loop around ``_try``, error construction and body
    parsing."""

    name: str
    base_url: str
    policy: CallPolicy
    _api_key: str | None
    _client: Any  # the SDK's client
    _clock: Clock
    _sleep: Sleep

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def close(self) -> None:
        self._client.close()

    def complete(self, request: CompletionRequest, *, context: CallContext) -> Completion:
        return call_with_retries(
            lambda attempt: self._try(request, attempt, context),
            provider=self.name,
            model=request.model,
            context=context,
            policy=self.policy,
            clock=self._clock,
            sleep=self._sleep,
        )

    def _try(
        self, request: CompletionRequest, attempt: Attempt, context: CallContext
    ) -> Completion:
        """One try of the call, within ``attempt``'s timeouts."""
        raise NotImplementedError

    def _parse_wire(self, body: Any) -> Completion:
        raise NotImplementedError

    def _parse(self, body: Any, request: CompletionRequest, context: CallContext) -> Completion:
        body = redact(body, self._api_key)
        try:
            return self._parse_wire(body)
        except ResponseFormatError as exc:
            raise self._format_error(exc.message, request, context, exc.details) from None
        except ProviderError as exc:  # an error envelope sent as a 200 body
            raise self._envelope_error(exc, request, context, "in the reply") from None

    def _load(self, text: str, what: str, request: CompletionRequest, context: CallContext) -> Any:
        try:
            return json_object(text)
        except ValueError as exc:
            quoted = redact(text[:SNIPPET_CHARS], self._api_key)
            raise self._format_error(
                f"{what} of the reply is not valid JSON ({exc}): {quoted!r}",
                request,
                context,
                {"data": quoted},
            ) from None

    def _envelope_error(
        self, exc: ProviderError, request: CompletionRequest, context: CallContext, where: str
    ) -> ProviderError:
        raise NotImplementedError

    def _error(
        self,
        message: str,
        request: CompletionRequest,
        context: CallContext,
        *,
        retryable: bool,
        status_code: int | None = None,
        retry_after: float | None = None,
        details: Any = None,
    ) -> ProviderError:
        return ProviderError(
            str(redact(f"{self.name}: {message}", self._api_key)),
            provider=self.name,
            retryable=retryable,
            model=request.model,
            status_code=status_code,
            retry_after=retry_after,
            context=context,
            details=redact(details, self._api_key),
        )

    def _format_error(
        self, message: str, request: CompletionRequest, context: CallContext, details: Any = None
    ) -> ResponseFormatError:
        error = ResponseFormatError(
            str(redact(f"{self.name}: {message}", self._api_key)),
            provider=self.name,
            details=redact(details, self._api_key),
        )
        error.model = request.model
        error.context = context
        return error
