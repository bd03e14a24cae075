"""``autopack memory``: index a project's repository into the vector memory, search it, and
show what it holds. The CLI opens the memory itself (never through a running server); in the
embedded mode only one process may have the memory directory open at a time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from autopack.cli import context
from autopack.cli.plan import plural
from autopack.errors import InvalidInputError
from autopack.memory.service import SHORT_NAMES, MemoryService
from autopack.projects import service as projects

app = typer.Typer(help="Index, search and inspect the vector memory.", no_args_is_help=True)


def _repo_of(project: str) -> Path:
    """The project's repository, as registered in the database; a local path only."""
    with context.open_database() as ctx, ctx.session() as session:
        repo = projects.get_project(session, project).repo
    if not repo:
        raise InvalidInputError(f"project {project!r} has no repository; give one with --repo")
    path = Path(repo).expanduser()
    if not path.is_dir():
        raise InvalidInputError(
            f"project {project!r}'s repository {repo!r} is not a local directory; clone it and "
            "give the clone with --repo"
        )
    return path


@app.command("index")
def index(
    project: Annotated[str, typer.Option("--project", help="The project the chunks belong to.")],
    repo: Annotated[
        Path | None,
        typer.Option(
            "--repo",
            help="The git repository to index (default: the project's, from the database).",
        ),
    ] = None,
) -> None:
    """Index the files committed at HEAD of a repository: only files changed since the last
    index are read again; deleted files are removed."""
    settings = context.load_settings()
    path = repo if repo is not None else _repo_of(project)
    memory = MemoryService.from_settings(settings)
    try:
        report = memory.index_repository(project, path)
    finally:
        memory.close()
    since = "everything" if report.full else f"since {(report.previous_commit or '')[:12]}"
    context.stdout().print(
        f"indexed {project} at {report.commit[:12]} ({since}): "
        f"{plural(len(report.files_indexed), 'file')} ({plural(report.chunks_upserted, 'chunk')}), "
        f"{len(report.files_deleted)} deleted, {len(report.files_skipped)} skipped "
        "(binary or too large)"
    )


@app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="What to look for: identifiers, words, an error.")],
    project: Annotated[
        str | None, typer.Option("--project", help="Only this project's points.")
    ] = None,
    collection: Annotated[
        str, typer.Option("--collection", help=f"One of: {', '.join(SHORT_NAMES)}.")
    ] = "code",
    limit: Annotated[int, typer.Option("--limit", min=1, max=100, help="Most hits.")] = 10,
) -> None:
    """Search a memory collection, best hits first."""
    memory = MemoryService.from_settings(context.load_settings())
    try:
        hits = memory.search(collection, query, project=project, limit=limit)
    finally:
        memory.close()
    if not hits:
        context.stdout().print("no hits")
        return
    table = Table("score", "project", "where", "text")
    for hit in hits:
        payload = hit.payload
        if "path" in payload:
            where = f"{payload['path']}:{payload.get('start_line')}-{payload.get('end_line')}"
        else:
            where = str(payload.get("run_id", "")) + " " + str(payload.get("phase_id", ""))
        first = next((ln for ln in str(payload.get("text", "")).splitlines() if ln.strip()), "")
        table.add_row(f"{hit.score:.3f}", str(payload.get("project") or "-"), where, first[:80])
    context.stdout().print(table)


@app.command("stats")
def stats(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (the API's schema) instead of a table.")
    ] = False,
) -> None:
    """The memory's mode (embedded or server), whether it answers, and its collections' sizes."""
    memory = MemoryService.from_settings(context.load_settings())
    try:
        result = memory.stats()
    finally:
        memory.close()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "mode": result.mode,
                    "status": result.status,
                    "location": result.location,
                    "embedder": result.embedder,
                    "collections": result.collections,
                    "error": result.error,
                },
                indent=2,
            )
        )
        return
    out = context.stdout()
    out.print(f"mode: {result.mode} ({result.location})")
    out.print(f"status: {result.status}" + (f" ({result.error})" if result.error else ""))
    out.print(f"embedder: {result.embedder or 'none (lexical only)'}")
    table = Table("collection", "points")
    for name, size in result.collections.items():
        table.add_row(name, str(size))
    out.print(table)
