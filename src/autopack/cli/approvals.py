"""``autopack approvals``: list, approve and reject approval requests, through the approvals
service (the same as the API's routes)."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from pydantic import TypeAdapter
from rich.table import Table
from rich.text import Text

from autopack.approvals import service
from autopack.approvals.models import ApprovalStatus
from autopack.approvals.schemas import ApprovalRead
from autopack.cli import context
from autopack.errors import InvalidInputError

app = typer.Typer(help="List, approve and reject approval requests.", no_args_is_help=True)

_APPROVAL_LIST = TypeAdapter(list[ApprovalRead])

ApprovalIdArgument = Annotated[int, typer.Argument(min=1, help="The approval's id.")]
ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why; recorded with the decision and who made it.")
]


def _who() -> str:
    """Who decides from the command line: ``cli:<login name>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name for this uid (a bare container)
        return "cli:unknown"


@app.command("list")
def list_approvals(
    show_all: Annotated[
        bool, typer.Option("--all", help="Every approval, decided ones too (default: pending).")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Show at most this many.")] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (the API's schema) instead of a table.")
    ] = False,
) -> None:
    """List pending approvals, newest first (expired ones are decided first, as
    AUTOPACK_APPROVAL_TIMEOUT_ACTION says)."""
    with context.open_database() as ctx, ctx.session() as session:
        service.expire_due(session, ctx.settings.approval_timeout_action)
        status = None if show_all else ApprovalStatus.PENDING
        items, total = service.list_approvals(session, status, limit=limit, offset=0)
    if as_json:
        typer.echo(_APPROVAL_LIST.dump_json(items, indent=2).decode())
        return
    out = context.stdout()
    if not items:
        out.print("No approvals." if show_all else "No pending approvals.")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("ID", "RUN ID", "PHASE", "KIND", "STATUS", "PATHS", "CREATED", "EXPIRES"):
        table.add_column(column, no_wrap=column != "PATHS")
    table.add_column("DECIDED BY")
    for item in items:
        paths = item.subject.get("paths") or []
        table.add_row(
            str(item.id),
            Text(item.run_id),
            Text(item.phase_id or "-"),
            Text(item.kind),
            Text(item.status.value),
            Text(", ".join(str(p) for p in paths) or "-"),
            item.created_at.strftime("%Y-%m-%d %H:%M"),
            item.expires_at.strftime("%Y-%m-%d %H:%M") if item.expires_at else "never",
            Text(item.decided_by or "-"),
        )
    out.print(table)
    out.print(Text(f"{len(items)} of {total}", style="dim"))


@app.command("approve")
def approve(approval_id: ApprovalIdArgument, reason: ReasonOption) -> None:
    """Approve a pending request: its run is queued again and continues the blocked phase with
    the approved change (`autopack serve` picks it up; or `autopack runs resume RUN`)."""
    _decide(approval_id, approve=True, reason=reason)


@app.command("reject")
def reject(approval_id: ApprovalIdArgument, reason: ReasonOption) -> None:
    """Reject a pending request: the phase fails with the reason and the run ends
    DONE_FAILED_REQUIRES_HUMAN_REVIEW."""
    _decide(approval_id, approve=False, reason=reason)


def _decide(approval_id: int, *, approve: bool, reason: str) -> None:
    if not reason.strip():
        raise InvalidInputError("--reason must say why (it is recorded with the decision)")
    with context.open_database() as ctx, ctx.session() as session:
        service.decide(session, approval_id, approve=approve, who=_who(), reason=reason)
        decided = service.read_approval(session, approval_id)
    verb = "approved" if approve else "rejected"
    then = "queued again" if approve else "ended"
    context.stdout().print(
        Text(
            f"approval {decided.id} {verb} by {decided.decided_by}; run {decided.run_id} {then}",
            style="green" if approve else "yellow",
        ),
        soft_wrap=True,
    )
