"""``autopack plan``: check plan files without touching the database."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from autopack.cli import context
from autopack.errors import InvalidInputError
from autopack.plans.loader import MalformedPlanError, PlanValidationError, load_plan
from autopack.plans.models import Plan

app = typer.Typer(help="Check plans (see docs/plans.md).", no_args_is_help=True)

STDIN = "-"
FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}


def plan_format(source: str) -> str | None:
    """The format a file's extension names (``.json``, ``.yaml``, ``.yml``); None: guess."""
    if source == STDIN:
        return None
    return FORMATS.get(Path(source).suffix.lower())


def read_plan(source: str) -> Plan:
    """Read and validate the plan in file ``source`` (``-``: standard input).

    Errors name the file: MalformedPlanError (unreadable, not JSON/YAML) or PlanValidationError,
    whose details list every problem with its location.
    """
    name = "standard input" if source == STDIN else source
    try:
        data = sys.stdin.buffer.read() if source == STDIN else Path(source).read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise MalformedPlanError(f"cannot read the plan file {name}: {reason}") from None
    try:
        return load_plan(data, fmt=plan_format(source))
    except PlanValidationError as exc:
        count = len(exc.details) if isinstance(exc.details, list) else 1
        problems = "1 problem" if count == 1 else f"{count} problems"
        raise PlanValidationError(
            f"{name} is not a valid plan ({problems}):", details=exc.details
        ) from None
    except InvalidInputError as exc:
        raise type(exc)(f"{name}: {exc.message}", details=exc.details) from None


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


@app.command("validate")
def validate(
    file: Annotated[
        str,
        typer.Argument(
            metavar="FILE",
            help="Plan file (.json, .yaml or .yml; other names are guessed), or - for stdin.",
        ),
    ],
) -> None:
    """Check a plan: print a summary and exit 0, or print every problem and exit 1."""
    plan = read_plan(file)
    name = "standard input" if file == STDIN else file
    out = context.stdout()
    out.print(Text(f"{name}: valid plan", style="green"), soft_wrap=True)
    phases_per_tier = {tier.tier_id: 0 for tier in plan.tiers}
    for phase in plan.phases:
        phases_per_tier[phase.tier_id] += 1
    tiers = ", ".join(f"{tier_id}: {plural(n, 'phase')}" for tier_id, n in phases_per_tier.items())
    lines = [
        ("run", plan.run.run_id or "(generated)"),
        ("project", plan.project or "default"),
        ("tiers", f"{len(plan.tiers)} ({tiers})"),
        ("phases", str(len(plan.phases))),
    ]
    for label, value in lines:
        out.print(Text(f"  {label + ':':<9}{value}"), soft_wrap=True)
