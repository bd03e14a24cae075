"""Live model providers: each request goes to the adapter of its model's provider.

The routing file says which provider serves a model (``provider: anthropic`` or ``openai``);
``LiveProviders`` holds one adapter per provider and sends each request to the right one. Adapters
are built on first use, so a process with no key at all starts (the API must), and a missing key
is reported for the models that need it, before a run starts (``missing_credentials``), instead
of failing in the middle of a phase.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from autopack.llm.provider import (
    CallContext,
    Completion,
    CompletionRequest,
    Provider,
    ProviderError,
)
from autopack.llm.routing import Router
from autopack.settings import Settings

if TYPE_CHECKING:
    from autopack.llm.calls import CallPolicy

LIVE_PROVIDER_NAME = "live"


def call_policy(settings: Settings) -> CallPolicy:
    """Timeouts, deadline and retries of every live call, from the settings."""
    # Imported here so that a process that never calls a live model does not load the SDKs.
    from autopack.llm.calls import CallPolicy

    return CallPolicy(
        connect_timeout=settings.llm_connect_timeout_seconds,
        stall_timeout=settings.llm_stall_timeout_seconds,
        deadline=settings.llm_call_deadline_seconds,
        max_retries=settings.llm_max_retries,
        backoff_max=settings.llm_backoff_max_seconds,
    )


class LiveProviders:
    """The Anthropic and OpenAI adapters behind one Provider, chosen per request by routing."""

    name = LIVE_PROVIDER_NAME

    def __init__(self, settings: Settings, router: Router) -> None:
        self.settings = settings
        self.router = router
        self._adapters: dict[str, Provider] = {}
        self._lock = threading.Lock()

    def complete(self, request: CompletionRequest, *, context: CallContext) -> Completion:
        provider = self.router.spec(request.model).provider
        return self._adapter(provider, request.model, context).complete(request, context=context)

    def missing_credentials(self, models: Iterable[str]) -> list[str]:
        """One sentence per provider whose key is missing, naming the models that need it."""
        needing: dict[str, list[str]] = {}
        for model in sorted(set(models)):
            provider = self.router.spec(model).provider
            if self._credential_problem(provider) is not None:
                needing.setdefault(provider, []).append(model)
        return [
            f"{self._credential_problem(provider)}; routing selects {', '.join(models)}"
            for provider, models in needing.items()
        ]

    def _credential_problem(self, provider: str) -> str | None:
        if provider == "anthropic" and self.settings.anthropic_api_key is None:
            return (
                "ANTHROPIC_API_KEY is not set (nor ANTHROPIC_API_KEY_FILE), and Anthropic's API "
                "needs it"
            )
        if (
            provider == "openai"
            and self.settings.openai_api_key is None
            and self.settings.openai_base_url is None
        ):
            return (
                "OPENAI_API_KEY is not set (nor OPENAI_API_KEY_FILE), and OpenAI's API needs it "
                "(a local OpenAI-compatible server set with AUTOPACK_OPENAI_BASE_URL needs none)"
            )
        return None

    def _adapter(self, provider: str, model: str, context: CallContext) -> Provider:
        with self._lock:
            adapter = self._adapters.get(provider)
            if adapter is None:
                problem = self._credential_problem(provider)
                if problem is not None:
                    raise ProviderError(
                        f"{provider}: {problem} (model {model})",
                        provider=provider,
                        retryable=False,
                        model=model,
                        context=context,
                    )
                adapter = self._build(provider)
                self._adapters[provider] = adapter
            return adapter

    def _build(self, provider: str) -> Provider:
        settings = self.settings
        if provider == "anthropic":
            from autopack.llm.anthropic_provider import AnthropicProvider

            key = settings.anthropic_api_key
            assert key is not None  # checked by _credential_problem
            return AnthropicProvider(
                api_key=key.get_secret_value(),
                base_url=settings.anthropic_base_url,
                policy=call_policy(settings),
            )
        if provider == "openai":
            from autopack.llm.openai_provider import OpenAIProvider

            openai_key = settings.openai_api_key
            return OpenAIProvider(
                api_key=openai_key.get_secret_value() if openai_key is not None else None,
                base_url=settings.openai_base_url,
                policy=call_policy(settings),
            )
        raise ProviderError(
            f"unknown provider {provider!r} in the routing file", provider=provider, retryable=False
        )
