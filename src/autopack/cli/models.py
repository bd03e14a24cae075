"""``autopack models``: the routing in force, resolved from the settings — which models serve
which role at which complexity, their prices and limits, and whether their provider has a key."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from autopack.cli import context
from autopack.executor.environment import load_router
from autopack.llm.live import LiveProviders
from autopack.llm.routing import COMPLEXITIES, ROLES, Router
from autopack.settings import Settings


def models(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the resolved routing as JSON.")
    ] = False,
) -> None:
    """Print the resolved routing: its source, every model with its provider, prices (USD per
    million tokens), window and key status, the chain of each role and complexity, the category
    overrides, escalation and auditor triggers."""
    settings = context.load_settings()
    router = load_router(settings)
    report = routing_report(settings, router)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    out = context.stdout()
    out.print(Text(f"routing: {report['source']}", style="bold"), soft_wrap=True)
    if settings.replay_cassette is not None:
        out.print(
            Text(f"model calls are replayed from {settings.replay_cassette} (offline)"),
            soft_wrap=True,
        )
    table = Table(
        "model",
        "provider",
        "input",
        "output",
        "cache read",
        "cache write",
        "context",
        "max output",
        "key",
    )
    for name, model in report["models"].items():
        table.add_row(
            name,
            model["provider"],
            model["input_usd_per_mtok"],
            model["output_usd_per_mtok"],
            model["cache_read_usd_per_mtok"],
            model["cache_write_usd_per_mtok"] or "-",
            f"{model['context_window']:,}",
            f"{model['max_output_tokens']:,}",
            Text(model["key"], style="green" if model["key"] != "missing" else "red"),
        )
    out.print(table)
    chains = Table("role", *COMPLEXITIES, "max tokens")
    for role in ROLES:
        row = report["roles"][role]
        chains.add_row(
            role, *(" → ".join(row[c]) for c in COMPLEXITIES), str(report["max_tokens"][role])
        )
    out.print(chains)
    if report["categories"]:
        categories = Table("category", "builder", "auditor", "audit")
        for name, category in report["categories"].items():
            categories.add_row(
                name,
                _chains_text(category["builder"]),
                _chains_text(category["auditor"]),
                category["audit"],
            )
        out.print(categories)
    auditor = report["auditor"]
    out.print(
        Text(
            f"escalation: one step along the chain every "
            f"{report['escalation']['after_failures']} consecutive failed attempts\n"
            f"auditor reviews: categories {', '.join(auditor['categories'])}; complexities "
            f"{', '.join(auditor['complexities'])}; after "
            f"{auditor['after_failures'] if auditor['after_failures'] is not None else 'no'} "
            "consecutive failures"
        ),
        soft_wrap=True,
    )


def routing_report(settings: Settings, router: Router) -> dict[str, Any]:
    """The resolved routing as plain data (what ``--json`` prints)."""
    config = router.config
    live = LiveProviders(settings, router)
    models: dict[str, Any] = {}
    for name, spec in config.models.items():
        missing = live.missing_credentials([name])
        models[name] = {
            "provider": spec.provider,
            "input_usd_per_mtok": str(spec.input_usd_per_mtok),
            "output_usd_per_mtok": str(spec.output_usd_per_mtok),
            "cache_read_usd_per_mtok": str(spec.cache_read_price),
            "cache_write_usd_per_mtok": (
                str(spec.cache_write_usd_per_mtok)
                if spec.cache_write_usd_per_mtok is not None
                else None
            ),
            "context_window": spec.context_window,
            "max_output_tokens": spec.max_output_tokens,
            "key": "missing" if missing else _key_status(settings, spec.provider),
        }
    source = (
        str(settings.routing_file)
        if settings.routing_file is not None
        else f"shipped profile {settings.routing_profile!r} (AUTOPACK_ROUTING_PROFILE)"
    )
    return {
        "source": source,
        "models": models,
        "roles": {
            role: {c: list(router.chain(role, c)[0]) for c in COMPLEXITIES} for role in ROLES
        },
        "max_tokens": {role: getattr(config.limits.max_tokens, role) for role in ROLES},
        "categories": {
            name: {
                "builder": category.builder.model_dump(exclude_none=True)
                if category.builder
                else {},
                "auditor": category.auditor.model_dump(exclude_none=True)
                if category.auditor
                else {},
                "audit": category.audit,
            }
            for name, category in config.categories.items()
        },
        "escalation": {"after_failures": config.escalation.after_failures},
        "auditor": {
            "categories": list(config.auditor.categories),
            "complexities": list(config.auditor.complexities),
            "after_failures": config.auditor.after_failures,
        },
    }


def _key_status(settings: Settings, provider: str) -> str:
    if provider == "anthropic":
        return "set"
    if settings.openai_api_key is not None:
        return "set"
    return f"none needed ({settings.openai_base_url})"


def _chains_text(chains: dict[str, list[str]]) -> str:
    return "; ".join(f"{c}: {' → '.join(chain)}" for c, chain in chains.items()) or "-"
