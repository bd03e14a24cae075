"""Building what the executor needs from Settings: the model provider, routing, the base
environment of test commands and the secrets to keep out of everything written."""

from __future__ import annotations

import os
import socket
import uuid

from sqlalchemy.orm import Session, sessionmaker

from autopack.errors import ConfigurationError
from autopack.executor.artifacts import secret_values
from autopack.executor.runner import ExecutorEnvironment
from autopack.llm.provider import Provider
from autopack.llm.replay import ReplayProvider
from autopack.llm.routing import Router, load_routing
from autopack.settings import Settings, process_environment, secret_env_names


def worker_id() -> str:
    """Names this executor in claims and heartbeats: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def build_provider(settings: Settings) -> Provider:
    if settings.replay_cassette is not None:
        return ReplayProvider(settings.replay_cassette)
    raise ConfigurationError(
        "no model provider is configured: set AUTOPACK_REPLAY_CASSETTE to replay a recorded "
        "cassette (live Anthropic and OpenAI providers are not available yet)"
    )


def build_environment(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    provider: Provider | None = None,
) -> ExecutorEnvironment:
    return ExecutorEnvironment(
        settings=settings,
        sessions=sessions,
        provider=provider or build_provider(settings),
        router=Router(load_routing(settings.routing_file)),
        base_env=process_environment(),
        secrets=secret_values(settings),
        secret_env_names=secret_env_names(),
        worker_id=worker_id(),
    )
