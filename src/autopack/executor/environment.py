"""Building what the executor needs from Settings: the model provider, routing, the base
environment of test commands and the secrets to keep out of everything written."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker

from autopack.errors import ConfigurationError
from autopack.executor.artifacts import secret_values
from autopack.executor.runner import ExecutorEnvironment
from autopack.llm.live import LiveProviders
from autopack.llm.provider import CredentialCheck, Provider
from autopack.llm.record import RecordingProvider
from autopack.llm.replay import CassetteWriter, ReplayProvider
from autopack.llm.routing import Router, load_routing
from autopack.memory.provider import MemoryProvider
from autopack.plans.models import Plan
from autopack.settings import Settings, process_environment, secret_env_names


def worker_id() -> str:
    """Names this executor in claims and heartbeats: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def load_router(settings: Settings) -> Router:
    """The routing of these settings: AUTOPACK_ROUTING_FILE, else the shipped profile's file."""
    return Router(load_routing(settings.routing_file, profile=settings.routing_profile))


def build_provider(settings: Settings, router: Router | None = None) -> Provider:
    """Where model calls go: a replay cassette when one is set (offline), else the live Anthropic
    and OpenAI APIs chosen per model by routing, recorded to a cassette in record mode. Building
    it needs no key: a missing key is reported when a run that needs it starts."""
    if settings.replay_cassette is not None and settings.record_cassette is not None:
        raise ConfigurationError(
            "AUTOPACK_REPLAY_CASSETTE and AUTOPACK_RECORD_CASSETTE are both set: replay serves "
            "recorded replies, record makes live calls; set only one"
        )
    if settings.replay_cassette is not None:
        return ReplayProvider(settings.replay_cassette)
    live = LiveProviders(settings, router or load_router(settings))
    if settings.record_cassette is not None:
        writer = CassetteWriter(settings.record_cassette, redact=secret_values(settings))
        return RecordingProvider(live, writer)
    return live


def build_environment(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    provider: Provider | None = None,
    memory: MemoryProvider | None = None,
) -> ExecutorEnvironment:
    """What the executor needs, from ``settings``. ``memory`` is the vector memory runs use;
    the caller owns it (opens it lazily, closes it): see ``run_memory``."""
    router = load_router(settings)
    return ExecutorEnvironment(
        settings=settings,
        sessions=sessions,
        provider=provider or build_provider(settings, router),
        router=router,
        base_env=process_environment(),
        secrets=secret_values(settings),
        secret_env_names=secret_env_names(),
        worker_id=worker_id(),
        memory=memory if settings.memory_enabled else None,
    )


@contextmanager
def run_memory(settings: Settings) -> Iterator[MemoryProvider | None]:
    """The vector memory for runs executed in this process (None when ``memory_enabled`` is
    off), closed at the end. It is opened on first use, so a memory that cannot be opened costs
    a run its retrieval, never its start."""
    if not settings.memory_enabled:
        yield None
        return
    memory = MemoryProvider(settings)
    try:
        yield memory
    finally:
        memory.close()


def missing_credentials(env: ExecutorEnvironment, plan: Plan) -> list[str]:
    """What keys a run of ``plan`` would lack: checked before the run is created (``autopack
    run``) and again when it starts (a run created through the API)."""
    if not isinstance(env.provider, CredentialCheck):
        return []
    phases = [(phase.task_category, phase.complexity.value) for phase in plan.phases]
    return env.provider.missing_credentials(env.router.reachable_models(phases, plan.run.models))
