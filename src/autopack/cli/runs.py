"""``autopack runs``: create, list, show and cancel runs, through the runs service."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from autopack.cli import context
from autopack.cli.plan import plural, read_plan
from autopack.runs import service
from autopack.runs.schemas import Page, RunDetail, RunSummary
from autopack.runs.states import PhaseState, RunState, TierState
from autopack.runs.views import RunFilter, list_run_summaries, read_run_detail

app = typer.Typer(help="Create, list, show and cancel runs.", no_args_is_help=True)

STATE_STYLES: dict[str, str] = {
    RunState.QUEUED: "cyan",
    RunState.RUNNING: "bold blue",
    RunState.PAUSED: "yellow",
    RunState.DONE_SUCCESS: "green",
    RunState.CANCELLED: "dim",
    PhaseState.EXECUTING: "bold blue",
    PhaseState.CI_RUNNING: "bold blue",
    PhaseState.GATE: "blue",
    PhaseState.BLOCKED: "yellow",
    PhaseState.COMPLETE: "green",
    PhaseState.FAILED: "red",
    PhaseState.SKIPPED: "dim",
    TierState.PENDING: "cyan",
    TierState.IN_PROGRESS: "bold blue",
}

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (the API's schema) instead of a table.")
]


def _state(state: str) -> Text:
    style = STATE_STYLES.get(state, "red" if state.startswith("DONE_FAILED") else "")
    return Text(state, style=style)


def _time(value: datetime | None, *, seconds: bool = True) -> str:
    """A UTC timestamp, to the second (or the minute, in tables)."""
    if value is None:
        return "-"
    return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _tokens(used: int, cap: int | None) -> str:
    return f"{used:,}/{cap:,}" if cap is not None else f"{used:,}/-"


def _compact(count: int) -> str:
    """``950``, ``12.5k``, ``400k``, ``1.2M``: token counts that fit a table cell."""
    for factor, suffix in ((1_000_000, "M"), (1_000, "k")):
        if count >= factor:
            text = f"{count / factor:.1f}".removesuffix(".0")
            return f"{text}{suffix}"
    return str(count)


def _compact_tokens(used: int, cap: int | None) -> str:
    return f"{_compact(used)}/{_compact(cap)}" if cap is not None else f"{_compact(used)}/-"


def _money(value: Decimal) -> str:
    return f"${value:,.2f}" if value >= Decimal("0.01") or value == 0 else f"${value:.4f}"


def _cost(used: Decimal, cap: Decimal | None) -> str:
    return f"{_money(used)}/{_money(cap)}" if cap is not None else f"{_money(used)}/-"


def _echo_json(model: Page[RunSummary] | RunDetail) -> None:
    typer.echo(model.model_dump_json(indent=2))


@app.command("list")
def list_runs(
    state: Annotated[
        RunState | None,
        typer.Option(
            case_sensitive=False,
            metavar="STATE",
            help="Only runs in this state: QUEUED, RUNNING, PAUSED, DONE_SUCCESS, "
            "DONE_FAILED_* or CANCELLED (any case).",
        ),
    ] = None,
    project: Annotated[str | None, typer.Option(help="Only runs of this project.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Show at most this many.")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many (newest first).")] = 0,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first."""
    with context.open_database() as ctx, ctx.session() as session:
        items, total = list_run_summaries(
            session, RunFilter(state=state, project=project), limit=limit, offset=offset
        )
    if as_json:
        _echo_json(Page[RunSummary](items=items, total=total, limit=limit, offset=offset))
        return
    out = context.stdout()
    if not items:
        out.print("No runs." if total == 0 else f"No runs past {offset} (of {total}).")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("RUN ID", no_wrap=True)
    table.add_column("PROJECT", no_wrap=True)
    table.add_column("STATE", no_wrap=True)
    table.add_column("PHASES", justify="right", no_wrap=True)
    table.add_column("TOKENS", justify="right", no_wrap=True)
    table.add_column("COST", justify="right", no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    for item in items:
        table.add_row(
            Text(item.run_id),
            Text(item.project),
            _state(item.state),
            f"{item.phases_complete}/{item.phases_total}",
            _compact_tokens(item.budget.tokens_used, item.budget.token_cap),
            _cost(item.budget.cost_usd, item.budget.cost_cap_usd),
            _time(item.created_at, seconds=False),
        )
    out.print(table)
    shown = f"{offset + 1}-{offset + len(items)} of {total}" if total > len(items) else str(total)
    out.print(Text(f"{shown} run{'s' if total != 1 else ''}", style="dim"))


@app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    as_json: JsonOption = False,
) -> None:
    """Show a run: its state, budgets and every tier and phase."""
    with context.open_database() as ctx, ctx.session() as session:
        detail = read_run_detail(session, run_id)
    if as_json:
        _echo_json(detail)
        return
    context.stdout().print(_detail_view(detail), soft_wrap=False)


def _detail_view(detail: RunDetail) -> Group:
    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold", no_wrap=True)
    header.add_column(overflow="fold")
    budget = detail.budget
    rows: list[tuple[str, str | Text]] = [
        ("run", detail.run_id),
        ("project", detail.project),
        ("state", _state(detail.state)),
    ]
    if detail.failure_reason:
        rows.append(("reason", detail.failure_reason))
    if detail.goal:
        rows.append(("goal", detail.goal))
    rows += [
        ("safety", f"{detail.safety_profile.value}, scope {detail.run_scope}"),
        ("phases", f"{detail.phases_complete}/{detail.phases_total} complete"),
        ("tokens", _tokens(budget.tokens_used, budget.token_cap)),
        ("cost", _cost(budget.cost_usd, budget.cost_cap_usd)),
    ]
    if budget.max_phases is not None or budget.max_duration_minutes is not None:
        limits = []
        if budget.max_phases is not None:
            limits.append(f"max {budget.max_phases} phases")
        if budget.max_duration_minutes is not None:
            limits.append(f"max {budget.max_duration_minutes} min")
        rows.append(("limits", ", ".join(limits)))
    if detail.integration_branch:
        rows.append(("branch", detail.integration_branch))
    rows += [
        ("created", _time(detail.created_at)),
        ("started", _time(detail.started_at)),
        ("finished", _time(detail.finished_at)),
    ]
    for label, value in rows:
        header.add_row(label, value if isinstance(value, Text) else Text(value))

    phases = Table(box=None, pad_edge=False, header_style="bold")
    phases.add_column("TIER / PHASE", no_wrap=True)
    phases.add_column("NAME", overflow="fold")
    phases.add_column("STATE", no_wrap=True)
    phases.add_column("COMPLEXITY", no_wrap=True)
    phases.add_column("ATTEMPTS", justify="right", no_wrap=True)
    phases.add_column("TOKENS", justify="right", no_wrap=True)
    phases.add_column("COST", justify="right", no_wrap=True)
    for tier in detail.tiers:
        phases.add_row(
            Text(tier.tier_id, style="bold"),
            Text(tier.name, style="bold"),
            _state(tier.state),
            "",
            "",
            f"{tier.tokens_used:,}",
            _money(tier.cost_usd),
        )
        for phase in tier.phases:
            attempts = f"{phase.attempts_count}" + (
                f"/{phase.max_attempts}" if phase.max_attempts is not None else ""
            )
            phases.add_row(
                Text(f"  {phase.phase_id}"),
                Text(phase.name),
                _state(phase.state),
                phase.complexity.value,
                attempts,
                f"{phase.tokens_used:,}",
                _money(phase.cost_usd),
            )
    return Group(header, Text(""), phases)


@app.command("cancel")
def cancel(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    reason: Annotated[str | None, typer.Option(help="Why; recorded in the run's events.")] = None,
) -> None:
    """Cancel a queued, running or paused run."""
    with context.open_database() as ctx, ctx.session() as session:
        before = service.get_run(session, run_id).state
        run = service.cancel_run(session, run_id, reason=reason)
        context.stdout().print(
            Text.assemble(f"run {run.run_id}: {before} -> ", _state(run.state)), soft_wrap=True
        )


@app.command("create")
def create(
    plan_file: Annotated[
        str,
        typer.Argument(
            metavar="PLAN_FILE",
            help="Plan file (.json, .yaml or .yml; other names are guessed), or - for stdin.",
        ),
    ],
) -> None:
    """Validate a plan and create a QUEUED run from it; prints the new run's id."""
    plan = read_plan(plan_file)
    with context.open_database() as ctx, ctx.session() as session:
        run = service.create_run(session, plan)
        project = run.project.name
        run_id = run.run_id
    context.stderr().print(
        Text(
            f"created run in project {project}: {plural(len(plan.tiers), 'tier')}, "
            f"{plural(len(plan.phases), 'phase')}, QUEUED",
            style="green",
        ),
        soft_wrap=True,
    )
    typer.echo(run_id)
