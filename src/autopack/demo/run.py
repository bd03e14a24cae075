"""Running the demo: a fresh copy of the demo project, the demo plan, the recorded replies."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from autopack.db import migrate
from autopack.db.engine import create_db_engine, create_session_factory
from autopack.demo import CASSETTE_FILE, demo_plan, prepare_project
from autopack.executor.environment import build_environment
from autopack.executor.service import execute, submit
from autopack.llm.provider import Provider
from autopack.llm.replay import ReplayProvider
from autopack.memory.provider import MemoryProvider
from autopack.runs.service import new_run_id
from autopack.settings import Settings


def run_demo(
    runs_dir: Path | None = None,
    *,
    settings: Settings | None = None,
    provider: Provider | None = None,
    quiet: bool = False,
    on_start: Callable[[str], None] | None = None,
) -> str:
    """Run the demo to its end; returns the run's final state. ``runs_dir`` (for a throwaway
    run) means a fresh embedded database there; otherwise ``settings``' database is used."""
    if settings is None:
        settings = Settings(_env_file=None, runs_dir=runs_dir or Path(".autonomous_runs"))
    engine = create_db_engine(settings)
    try:
        migrate.ensure_schema(
            engine, bootstrap=settings.uses_embedded_database or settings.db_bootstrap
        )
        sessions = create_session_factory(engine)
        repo = prepare_project(settings.runs_dir / "demo-project")
        run_id = new_run_id().replace("run-", "demo-", 1)
        submit(sessions, demo_plan(run_id), str(repo.resolve()))
        if on_start is not None:
            on_start(run_id)
        env = build_environment(
            settings, sessions, provider=provider or ReplayProvider(CASSETTE_FILE)
        )
        # The demo's test command (`python -m pytest`) runs under the Python running Autopack,
        # whose pytest is pinned: its output is part of the recorded prompts.
        path = f"{Path(sys.executable).parent}{os.pathsep}{env.base_env.get('PATH', '')}"
        memory = MemoryProvider(demo_memory_settings(settings))
        try:
            # Replies are replayed by prompt, so the prompts must not depend on what earlier
            # runs left behind: a fresh memory of the demo's own, and no learned rules.
            env = replace(
                env, base_env={**env.base_env, "PATH": path}, memory=memory, learned_rules=False
            )
            return execute(env, run_id).value
        finally:
            memory.close()
    finally:
        engine.dispose()


def demo_memory_settings(settings: Settings) -> Settings:
    """The demo's vector memory: local mode in an emptied ``demo-memory`` directory under the
    runs directory, lexical retrieval only, whatever the settings say for other runs."""
    directory = settings.runs_dir / "demo-memory"
    shutil.rmtree(directory, ignore_errors=True)
    return settings.model_copy(
        update={
            "memory_enabled": True,
            "memory_dir": directory,
            "qdrant_host": None,
            "qdrant_url": None,
            "embeddings_base_url": None,
            "embeddings_model": None,
        }
    )
