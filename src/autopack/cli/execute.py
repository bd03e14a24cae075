"""``autopack run`` and ``autopack demo``: execute a plan in this process, with a live view of
its events, and exit 0 only when the run ends DONE_SUCCESS."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.text import Text
from sqlalchemy.orm import Session, sessionmaker

from autopack.cli import context
from autopack.cli.plan import read_plan
from autopack.cli.runs import _detail_view
from autopack.db.engine import create_session_factory
from autopack.errors import ConfigurationError
from autopack.events.service import list_events
from autopack.executor.environment import build_environment, missing_credentials, run_memory
from autopack.executor.service import execute, promote_run, submit
from autopack.runs.service import get_run
from autopack.runs.states import RunState
from autopack.runs.views import read_run_detail


def run(
    plan_file: Annotated[str, typer.Argument(help="The plan (YAML or JSON); `-` reads stdin.")],
    repo: Annotated[
        str, typer.Option("--repo", help="The project's git repository: a path or a URL.")
    ],
    record: Annotated[
        Path | None,
        typer.Option(
            "--record",
            metavar="CASSETTE",
            help="Call the live models and append every request and reply to CASSETTE.",
        ),
    ] = None,
    replay: Annotated[
        Path | None,
        typer.Option(
            "--replay",
            metavar="CASSETTE",
            help="Serve every model call from CASSETTE (offline; recorded with --record).",
        ),
    ] = None,
) -> None:
    """Create a run of PLAN_FILE for the repository and execute it here, showing its progress.
    Exits 0 only when the run ends DONE_SUCCESS."""
    if record is not None and replay is not None:
        raise ConfigurationError("--record and --replay cannot be used together")
    plan = read_plan(plan_file)
    source = str(Path(repo).resolve()) if Path(repo).exists() else repo
    settings = context.load_settings()
    if record is not None:
        settings = settings.model_copy(update={"record_cassette": record, "replay_cassette": None})
    if replay is not None:
        settings = settings.model_copy(update={"replay_cassette": replay, "record_cassette": None})
    with context.open_database(settings) as ctx, run_memory(ctx.settings) as memory:
        env = build_environment(ctx.settings, ctx.session_factory, memory=memory)
        problems = missing_credentials(env, plan)
        if problems:
            raise ConfigurationError(
                "the run cannot start: " + "; ".join(problems), details=problems
            )
        # This process executes the run itself: no worker job for it, even with workers on (a
        # worker would race this process for it). Should this process die, the workers'
        # reconciler takes the run over once its heartbeat is stale.
        run_id = submit(create_session_factory(ctx.engine), plan, source, env.router)
        with _follow(ctx.session_factory, run_id):
            final = execute(env, run_id)
        _finish(ctx.session_factory, run_id, final)


def demo() -> None:
    """Run the bundled demo offline: a small Python library, a plan of two tiers and four
    phases, and recorded model replies. Leaves a run the API and dashboard can show."""
    from autopack.demo.run import run_demo

    with context.open_database() as ctx:
        started: dict[str, Any] = {}
        follower: list[Any] = []

        def on_start(run_id: str) -> None:
            started["run_id"] = run_id
            follower.append(_follow(ctx.session_factory, run_id))
            follower[0].__enter__()

        try:
            final = run_demo(settings=ctx.settings, on_start=on_start)
        finally:
            if follower:
                follower[0].__exit__(None, None, None)
        _finish(ctx.session_factory, started["run_id"], RunState(final))


def _finish(sessions: sessionmaker[Session], run_id: str, final: RunState) -> None:
    with sessions() as session:
        detail = read_run_detail(session, run_id)
    out = context.stdout()
    out.print()
    out.print(_detail_view(detail), soft_wrap=False)
    if final is not RunState.DONE_SUCCESS:
        raise typer.Exit(1)


@contextmanager
def _follow(sessions: sessionmaker[Session], run_id: str) -> Iterator[None]:
    """While the block runs: print the run's events as they are written, under a live table of
    its tiers and phases with attempts, tokens and cost against the caps (on a terminal)."""
    stop = threading.Event()
    out = context.stdout()
    live = Live(console=out, refresh_per_second=4, transient=True, auto_refresh=out.is_terminal)

    def follow() -> None:
        cursor = 0
        while True:
            with sessions() as session:
                run = get_run(session, run_id)
                events = list_events(session, run.id, after_id=cursor, limit=200)
                detail = read_run_detail(session, run_id) if out.is_terminal else None
            for event in events:
                cursor = event.id
                live.console.print(
                    _event_line(event.type, event.phase_id, event.payload), soft_wrap=True
                )
            if detail is not None:
                live.update(_detail_view(detail))
            if not events and stop.is_set():
                return
            if not events:
                stop.wait(0.2)

    thread = threading.Thread(target=follow, name="autopack-follow", daemon=True)
    with live:
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)


def _event_line(kind: str, phase_id: str | None, payload: dict[str, Any]) -> Text:
    where = f"[{phase_id}] " if phase_id else ""
    if kind.endswith("state_changed"):
        subject = kind.split(".")[0]
        if subject == "tier":
            subject = f"tier {payload.get('tier_id')}"
        reason = f" ({payload['reason']})" if payload.get("reason") else ""
        style = (
            "green"
            if payload.get("to") in ("COMPLETE", "DONE_SUCCESS")
            else ("red" if str(payload.get("to", "")).startswith(("FAILED", "DONE_FAILED")) else "")
        )
        return Text(
            f"{where}{subject} {payload.get('from')} -> {payload.get('to')}{reason}", style=style
        )
    if kind == "llm.call":
        return Text(
            f"{where}{payload.get('role')} {payload.get('model')}: "
            f"{payload.get('input_tokens')} in / {payload.get('output_tokens')} out, "
            f"${payload.get('cost_usd')}",
            style="dim",
        )
    details = ", ".join(f"{key}={value}" for key, value in payload.items())
    return Text(f"{where}{kind} {details}", style="dim")


def resume(run_id: Annotated[str, typer.Argument(help="The run's id.")]) -> None:
    """Continue a run whose executor stopped (a crash, a kill, a reboot), here, from where the
    database says it was: the phase in flight restarts from the last good commit, and a phase
    whose commit was already made is not made again. Exits 0 only on DONE_SUCCESS."""
    with context.open_database() as ctx:
        with ctx.session() as session:
            state = get_run(session, run_id).state
        if state not in (RunState.QUEUED, RunState.RUNNING):
            context.stderr().print(Text(f"run {run_id} is {state.value}: nothing to resume"))
            _finish(ctx.session_factory, run_id, state)
            return
        with run_memory(ctx.settings) as memory:
            env = build_environment(ctx.settings, ctx.session_factory, memory=memory)
            with _follow(ctx.session_factory, run_id):
                final = execute(env, run_id)
        _finish(ctx.session_factory, run_id, final)


def promote(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    branch: Annotated[
        str | None,
        typer.Option("--branch", help="Target branch (default: the project's default branch)."),
    ] = None,
) -> None:
    """Merge a DONE_SUCCESS run whose tiers are all clean into the project's repository
    (fast-forward when possible). Nothing else ever writes your repository."""
    with context.open_database() as ctx:
        promotion = promote_run(ctx.session_factory, ctx.settings, run_id, branch)
    context.stdout().print(
        Text(
            f"promoted {run_id}: {promotion.branch} is now at {promotion.commit}",
            style="green",
        )
    )
