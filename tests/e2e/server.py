"""The server the browser tests drive: a real ``autopack serve`` holding a finished demo run.

``python -m tests.e2e.server --port PORT --dir DIR`` (``tests/e2e/playwright.config.ts`` starts
it and stops it):

1. runs the demo to its end (replayed from its cassette) in an embedded database under DIR, so
   the dashboard has a finished run with every kind of record to show, and adds a candidate
   learned rule;
2. starts a local server speaking OpenAI's Chat Completions wire format that answers with the
   demo's recorded replies, each after a short delay, so a run created during the tests takes
   long enough to watch live and to cancel; a request the demo never made gets a 400, which
   ends that run DONE_FAILED_ENVIRONMENT with a FAILED phase (the retry flow uses that);
3. runs ``autopack serve`` on that database with API keys on (``E2E_API_KEY``), one executor
   thread, every model served by that local server, and the built dashboard (``dist/``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from autopack.db.engine import create_db_engine, create_session_factory
from autopack.demo import CASSETTE_FILE
from autopack.demo.run import run_demo
from autopack.llm.routing import default_routing_text
from autopack.rules.models import Rule, RuleStage
from autopack.settings import Settings
from tests.executor.test_demo_through_openai import demo_replies
from tests.llm.fake_servers import FakeOpenAIServer, HttpError, Reply

REPO_ROOT = Path(__file__).resolve().parents[2]


def slowed(responder: Any, delay_seconds: float) -> Any:
    def respond(body: dict[str, Any]) -> Reply | HttpError:
        time.sleep(delay_seconds)
        reply: Reply | HttpError = responder(body)
        return reply

    return respond


def seed_rule(settings: Settings) -> None:
    """A candidate learned rule for the rules page to approve and retire (rules are learned from
    recurring issues across runs, which one demo run does not make)."""
    engine = create_db_engine(settings)
    try:
        with create_session_factory(engine)() as session:
            session.add(
                Rule(
                    scope_pattern="textkit/**",
                    task_categories=["feature"],
                    text="Run the whole test suite before editing shared helpers in textkit/.",
                    stage=RuleStage.CANDIDATE,
                    evidence_issue_keys=["tests:test_words"],
                )
            )
            session.commit()
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--delay", type=float, default=1.5, help="seconds before each reply")
    args = parser.parse_args()
    if not os.environ.get("E2E_API_KEY"):
        parser.error("E2E_API_KEY must be set: the key the server requires")

    root: Path = args.dir.resolve()
    shutil.rmtree(root, ignore_errors=True)
    runs_dir = root / "runs"
    runs_dir.mkdir(parents=True)
    # The demo's routing with every model served over the OpenAI wire format, so the demo's
    # replies answer the same prompts.
    routing = root / "routing.yaml"
    routing.write_text(default_routing_text().replace("provider: anthropic", "provider: openai"))

    # The demo as `autopack demo` runs it: the default routing, replies replayed.
    settings = Settings(_env_file=None, runs_dir=runs_dir, replay_cassette=CASSETTE_FILE)  # type: ignore[call-arg]
    state = run_demo(settings=settings, quiet=True)
    if state != "DONE_SUCCESS":
        print(f"e2e server: the demo ended {state}, not DONE_SUCCESS", file=sys.stderr)
        return 1

    seed_rule(settings)

    venv_bin = Path(sys.executable).parent
    with FakeOpenAIServer(responder=slowed(demo_replies(), args.delay)) as model_server:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AUTOPACK_", "DATABASE_URL", "ANTHROPIC_", "OPENAI_"))
        }
        env.update(
            {
                "AUTOPACK_RUNS_DIR": str(runs_dir),
                "AUTOPACK_ROUTING_FILE": str(routing),
                "AUTOPACK_OPENAI_BASE_URL": model_server.base_url,
                "OPENAI_API_KEY": "sk-e2e-not-a-real-key",
                "AUTOPACK_API_KEY": os.environ["E2E_API_KEY"],
                "AUTOPACK_EXECUTOR_THREADS": "1",
                "AUTOPACK_DASHBOARD_DIR": str(REPO_ROOT / "dist"),
                "AUTOPACK_SSE_POLL_INTERVAL_SECONDS": "0.2",
                # Warnings and errors only: the test log shows what went wrong, not every request.
                "AUTOPACK_LOG_LEVEL": "warning",
                # The demo's test command (`python -m pytest`) runs under this Python.
                "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        server = subprocess.Popen(
            [str(venv_bin / "autopack"), "serve", "--host", "127.0.0.1", "--port", str(args.port)],
            cwd=root,
            env=env,
        )

        def stop(signum: int, _frame: Any) -> None:
            server.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        return server.wait()


if __name__ == "__main__":
    raise SystemExit(main())
