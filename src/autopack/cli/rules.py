"""``autopack rules``: list learned rules, approve hints and candidates, retire rules, through
the rules service (the same as the API's ``/api/rules`` routes)."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table
from rich.text import Text

from autopack.api.schemas import SQL_BIGINT_MAX
from autopack.cli import context
from autopack.errors import InvalidInputError
from autopack.rules import service
from autopack.rules.models import RuleStage
from autopack.rules.schemas import RuleRead, RuleStageChange
from autopack.runs.schemas import Page

app = typer.Typer(help="List, approve and retire learned rules.", no_args_is_help=True)

# Longest text shown in the table (the whole text is in --json).
TEXT_WIDTH = 72

STAGE_STYLES: dict[str, str] = {
    RuleStage.CANDIDATE: "cyan",
    RuleStage.ACTIVE: "green",
    RuleStage.RETIRED: "dim",
}

RuleIdArgument = Annotated[int, typer.Argument(min=1, max=SQL_BIGINT_MAX, help="The rule's id.")]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why; recorded with the stage change.")
]


def _stages() -> str:
    return ", ".join(stage.value for stage in RuleStage)


def _shorten(text: str, width: int = TEXT_WIDTH) -> str:
    """The text on one line (whitespace collapsed), cut to ``width`` characters with ``…``."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


@app.command("list")
def list_rules(
    stage: Annotated[
        RuleStage | None,
        typer.Option(
            case_sensitive=False,
            metavar="STAGE",
            help=f"Only rules at this stage: {_stages()}.",
        ),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(help="Only this project's own rules (not the ones for all projects)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Show at most this many.")] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (the API's schema) instead of a table.")
    ] = False,
) -> None:
    """List learned rules, newest first."""
    with context.open_database() as ctx, ctx.session() as session:
        items, total = service.list_rules(
            session, stage=stage, project=project, limit=limit, offset=0
        )
    if as_json:
        page = Page[RuleRead](items=items, total=total, limit=limit, offset=0)
        typer.echo(page.model_dump_json(indent=2))
        return
    out = context.stdout()
    if not items:
        out.print("No rules.")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("ID", "STAGE", "PROJECT", "CATEGORIES", "SCOPE", "HITS/MISSES"):
        table.add_column(column, no_wrap=True, justify="right" if column == "ID" else "left")
    table.add_column("TEXT")
    for item in items:
        table.add_row(
            str(item.id),
            Text(item.stage.value, style=STAGE_STYLES.get(item.stage, "")),
            Text(item.project or "all projects"),
            Text(", ".join(str(c) for c in item.task_categories) or "any"),
            Text(item.scope_pattern or "any path"),
            f"{item.hit_count}/{item.miss_count}",
            Text(_shorten(item.text)),
        )
    out.print(table)
    shown = f"{len(items)} of {total}" if total > len(items) else str(total)
    out.print(Text(f"{shown} rule{'s' if total != 1 else ''}", style="dim"))


@app.command("approve")
def approve(rule_id: RuleIdArgument, reason: ReasonOption = None) -> None:
    """Make a rule active (a hint or a candidate).

    From now on it reaches the prompts of the phases it matches. An active or retired rule
    cannot be approved."""
    _transition(rule_id, RuleStage.ACTIVE, reason)


@app.command("retire")
def retire(rule_id: RuleIdArgument, reason: ReasonOption = None) -> None:
    """Retire a rule: it never reaches a prompt again. A retired rule cannot be retired again."""
    _transition(rule_id, RuleStage.RETIRED, reason)


def _transition(rule_id: int, to: RuleStage, reason: str | None) -> None:
    text = reason.strip() if reason is not None else ""
    try:
        change = RuleStageChange(reason=text or None)
    except ValidationError as exc:
        raise InvalidInputError(
            "invalid --reason: at most 2000 characters, and no NUL character"
        ) from exc
    with context.open_database() as ctx, ctx.session() as session:
        rule = service.transition_rule(session, rule_id, to, reason=change.reason)
        stage = RuleStage(rule.stage)
    context.stdout().print(
        Text.assemble(
            f"rule {rule_id} is now ", (stage.value, STAGE_STYLES.get(stage, "bold")), "."
        ),
        soft_wrap=True,
    )
