"""Secure by default: ``autopack serve`` refuses a non-loopback address while the API would be
open to anyone who can reach it.

On a loopback address (127.0.0.0/8, ::1, ``localhost``) only this machine's users can connect,
and authentication may stay off. Anywhere else the server starts only when authentication is on
(``AUTOPACK_API_KEY`` is set, or the database holds an unrevoked key) or ``--insecure`` says
that something in front of Autopack does the authentication.
"""

from __future__ import annotations

import ipaddress

from rich.text import Text

from autopack.auth import service
from autopack.cli import context
from autopack.errors import ConfigurationError
from autopack.settings import Settings


def is_loopback(host: str) -> bool:
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        # Any other host name may resolve to a public address: not loopback.
        return False


def _has_active_keys(settings: Settings) -> bool:
    # wait=True and the schema guardrail, as the server's own start-up would apply them.
    with context.open_database(settings, wait=True) as ctx, ctx.session() as session:
        return service.has_active_keys(session)


def check_exposure(settings: Settings, host: str, *, insecure: bool) -> bool:
    """Whether the server must keep authentication on even when no key exists (so that
    revoking the last key locks the API rather than opening it). Raises ConfigurationError for
    a public address without authentication, unless ``insecure``; warns loudly then."""
    if is_loopback(host):
        return False
    if insecure:
        context.stderr().print(
            Text(
                f"WARNING: --insecure: serving on {host} without requiring API keys. Anyone "
                "who can reach this address may read, create and cancel runs (and spend model "
                "credits) unless something in front of Autopack authenticates them.",
                style="bold red",
            ),
            soft_wrap=True,
        )
        return False
    if settings.api_key is not None or _has_active_keys(settings):
        return True
    raise ConfigurationError(
        f"refusing to serve on {host} with authentication off: anyone who can reach it could "
        "read, create and cancel runs. Create a key with `autopack keys create --name NAME "
        "--scope admin`, or set AUTOPACK_API_KEY (or AUTOPACK_API_KEY_FILE); or pass "
        "--insecure when something in front of Autopack authenticates requests. Bind "
        "127.0.0.1 to serve this machine only."
    )
