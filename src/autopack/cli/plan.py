"""``autopack plan``: check plan files without touching the database, and draft new plans with
the planner model."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from autopack.cli import context
from autopack.errors import ConfigurationError, InvalidInputError
from autopack.executor.environment import build_provider, load_router
from autopack.llm.provider import Provider
from autopack.planner.service import (
    PlanDraftRejected,
    PlannerCall,
    PlannerProviderError,
    draft_plan,
)
from autopack.plans.loader import MalformedPlanError, PlanValidationError, load_plan
from autopack.plans.models import Plan
from autopack.runs.models import Complexity
from autopack.settings import Settings

app = typer.Typer(help="Check and draft plans (see docs/plans.md).", no_args_is_help=True)

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


@app.command("new")
def new(
    idea: Annotated[
        str, typer.Argument(metavar="IDEA", help="What to build, in a sentence or a paragraph.")
    ],
    repo: Annotated[
        Path,
        typer.Option(
            "--repo",
            help="The repository to plan for: a local directory (its files and tests shape "
            "the plan).",
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the plan to this file instead of standard output; an existing file is "
            "refused unless --force.",
        ),
    ] = None,
    complexity: Annotated[
        Complexity,
        typer.Option(
            "--complexity",
            case_sensitive=False,
            help="Picks the planner model from routing: low, medium or high.",
        ),
    ] = Complexity.MEDIUM,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the --output file.")] = False,
) -> None:
    """Draft a plan for IDEA with the planner model, from a map of the repository: validated,
    repaired once when invalid, printed as YAML (or written to --output). Exits 1 when the model's
    plan is invalid twice, and then writes nothing."""
    if output is not None:
        _check_output(output, force=force)
    settings = context.load_settings()
    provider = _provider(settings)
    with context.open_database(settings) as ctx:
        try:
            draft = draft_plan(
                idea,
                repo.resolve(),
                provider=provider,
                router=load_router(ctx.settings),
                complexity=complexity.value,
                sessions=ctx.session_factory,
            )
        except (PlanDraftRejected, PlannerProviderError) as exc:
            _report_usage(exc.calls)
            raise
    if output is None:
        typer.echo(draft.yaml, nl=False)
    else:
        _write_plan(output, draft.yaml, force=force)
    err = context.stderr()
    tiers, phases = len(draft.plan.tiers), len(draft.plan.phases)
    err.print(
        Text(f"drafted a plan of {plural(tiers, 'tier')} and {plural(phases, 'phase')}"),
        soft_wrap=True,
    )
    repair = "yes (the first reply was invalid)" if draft.repaired else "no"
    err.print(Text(f"  {'model:':<9}{draft.model}  repair round: {repair}"), soft_wrap=True)
    _report_usage(draft.calls)
    if output is not None:
        err.print(Text(f"wrote {output}", style="green"), soft_wrap=True)


def _check_output(output: Path, *, force: bool) -> None:
    """Refuse before the model is paid for: an existing file without --force, a missing folder."""
    if output.is_dir():
        raise InvalidInputError(f"{output} is a directory; give a file name for the plan")
    if output.exists() and not force:
        raise InvalidInputError(f"{output} exists; pass --force to overwrite it")
    if not output.parent.is_dir():
        raise InvalidInputError(f"cannot write {output}: the directory {output.parent} is missing")


def _provider(settings: Settings) -> Provider:
    try:
        return build_provider(settings)
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"cannot draft a plan without a model provider: {exc.message}", details=exc.details
        ) from None


def _write_plan(output: Path, text: str, *, force: bool) -> None:
    try:
        # "x" refuses a file that appeared since the check rather than overwriting it.
        with output.open("w" if force else "x", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InvalidInputError(f"cannot write {output}: {reason}") from None


def _report_usage(calls: Sequence[PlannerCall]) -> None:
    tokens_in = sum(call.input_tokens for call in calls)
    tokens_out = sum(call.output_tokens for call in calls)
    cost = sum(call.cost_usd for call in calls)
    context.stderr().print(
        Text(
            f"  {'usage:':<9}{plural(len(calls), 'call')}, {tokens_in:,} tokens in / "
            f"{tokens_out:,} out, ${cost:.6f}"
        ),
        soft_wrap=True,
    )
