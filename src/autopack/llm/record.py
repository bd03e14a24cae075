"""Record mode: a live provider whose every reply is also written to a cassette.

``autopack run PLAN --record cassette.jsonl`` runs against the real models and appends each
request with the provider's response body (exactly as the adapter parsed it) to the cassette;
``--replay cassette.jsonl`` then serves the same replies offline, so the run repeats bit for bit.
Secrets are blanked by the CassetteWriter (the keys are passed to it); failed calls are not
recorded (a replay of them is a replay miss, which fails the same attempt).
"""

from __future__ import annotations

from collections.abc import Iterable

from autopack.llm.provider import (
    CallContext,
    Completion,
    CompletionRequest,
    CredentialCheck,
    Provider,
    ProviderError,
)
from autopack.llm.replay import CassetteWriter


class RecordingProvider:
    """Wraps a provider; appends each completed call to a cassette before returning it."""

    def __init__(self, inner: Provider, writer: CassetteWriter) -> None:
        self.inner = inner
        self.writer = writer
        self.name = inner.name

    def complete(self, request: CompletionRequest, *, context: CallContext) -> Completion:
        completion = self.inner.complete(request, context=context)
        if completion.raw is None:
            raise ProviderError(
                f"{completion.provider}: the reply carries no response body, so it cannot be "
                f"recorded into {self.writer.path}",
                provider=completion.provider,
                retryable=False,
                model=request.model,
                context=context,
            )
        self.writer.append(request, completion.raw, provider=completion.provider)
        return completion

    def missing_credentials(self, models: Iterable[str]) -> list[str]:
        if isinstance(self.inner, CredentialCheck):
            return self.inner.missing_credentials(models)
        return []
