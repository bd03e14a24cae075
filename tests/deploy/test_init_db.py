"""``scripts/init-db.sql`` on the real PostgreSQL 15, run the way the postgres image runs it.

The image runs each file of ``/docker-entrypoint-initdb.d/`` once, as the superuser, connected to
``POSTGRES_DB``, with ``psql -v ON_ERROR_STOP=1``. Here it runs the same way (the file
unchanged: it names the current database, not ``autopack``) on a throwaway database with
another name, owned by the superuser, while a plain role ``autopack`` exists: the set-up in which
its grants matter. Afterwards ``autopack db upgrade``, connected as ``autopack``, must succeed,
where on a database without the script it fails (since PostgreSQL 15 only the database owner
may create objects in the public schema).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from autopack.db import migrate
from tests.conftest import PG_ADMIN_URL, create_pg_database, drop_pg_database
from tests.deploy.support import INIT_DB_SQL

pytestmark = pytest.mark.postgres

ROLE = "autopack"


def _conninfo(url: str, user: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if user is not None:
        parsed = parsed.set(username=user, password=None)
    return parsed.render_as_string(hide_password=False)


def _admin(sql: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(_conninfo(PG_ADMIN_URL), autocommit=True, connect_timeout=5) as conn:
        cursor = conn.execute(sql, params or None)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def autopack_role() -> Iterator[bool]:
    """The login role `autopack` (created when missing, and then dropped at the end). Yields
    whether it is a superuser (a pre-existing one might be). One test uses it, so that no
    other test process can drop it from under another."""
    rows = _admin("SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = %s", ROLE)
    created = False
    if not rows:
        try:
            _admin(f"CREATE ROLE {ROLE} LOGIN PASSWORD 'autopack'")
            created = True
        except psycopg.errors.DuplicateObject:  # created meanwhile by someone else
            pass
        rows = _admin("SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = %s", ROLE)
    superuser, can_login = rows[0]
    if not can_login:
        pytest.skip(f"the existing role {ROLE} cannot log in; not changing it")
    yield bool(superuser)
    if created:
        _admin(f"DROP ROLE IF EXISTS {ROLE}")


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """Two empty databases owned by the superuser: one for the script, one without it."""
    with_script = create_pg_database(prefix="autopack_initdb")
    without = create_pg_database(prefix="autopack_noinit")
    yield with_script, without
    drop_pg_database(with_script)
    drop_pg_database(without)


def _run_script(url: str) -> subprocess.CompletedProcess[str]:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed (it comes with PostgreSQL's client package)")
    return subprocess.run(
        [
            psql,
            "-v",
            "ON_ERROR_STOP=1",
            "--no-psqlrc",
            "-d",
            _conninfo(url),
            "-f",
            str(INIT_DB_SQL),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _upgrade_as_role(url: str) -> subprocess.CompletedProcess[str]:
    """`autopack db upgrade` (as the image's wrapper runs it) connected as the role."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AUTOPACK_") and not name.startswith("DATABASE_URL")
    }
    env["DATABASE_URL"] = (
        make_url(url).set(username=ROLE, password="autopack").render_as_string(hide_password=False)
    )
    return subprocess.run(
        [sys.executable, "-m", "autopack", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_init_script_lets_the_application_role_migrate(
    autopack_role: bool, databases: tuple[str, str]
) -> None:
    database, without_script = databases

    # The control first: without the script, the plain role may not create the schema
    # (PostgreSQL 15 and newer). A superuser role may; then there is nothing to show.
    with psycopg.connect(_conninfo(without_script), connect_timeout=5) as conn:
        server_version = conn.info.server_version
    if not autopack_role and server_version >= 150000:
        refused = _upgrade_as_role(without_script)
        assert refused.returncode != 0, refused.stdout
        assert "permission denied for schema public" in refused.stderr, refused.stderr

    first = _run_script(database)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "ERROR" not in first.stderr, first.stderr
    # Running it again changes nothing and fails nowhere.
    second = _run_script(database)
    assert second.returncode == 0, second.stdout + second.stderr

    name = make_url(database).database
    with psycopg.connect(_conninfo(database), autocommit=True, connect_timeout=5) as conn:
        extensions = {row[0] for row in conn.execute("SELECT extname FROM pg_extension")}
        assert "uuid-ossp" in extensions
        assert conn.execute("SELECT uuid_generate_v4() IS NOT NULL").fetchone() == (True,)
        settings = conn.execute(
            "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d "
            "ON d.oid = s.setdatabase WHERE d.datname = %s AND s.setrole = 0",
            (name,),
        ).fetchone()
        assert settings is not None and "TimeZone=UTC" in settings[0], settings
        privileges = conn.execute(
            "SELECT has_schema_privilege(%s, 'public', 'CREATE'), "
            "has_database_privilege(%s, %s, 'CREATE')",
            (ROLE, ROLE, name),
        ).fetchone()
        assert privileges == (True, True), privileges
        defaults = conn.execute(
            "SELECT defaclobjtype FROM pg_default_acl a JOIN pg_namespace n "
            "ON n.oid = a.defaclnamespace WHERE n.nspname = 'public'"
        ).fetchall()
        assert {row[0] for row in defaults} >= {"r", "S"}, defaults

    # A new session of the application role starts in UTC (the database default), unless the
    # client asks for another zone (PGTZ).
    env_tz = os.environ.get("PGTZ")
    with psycopg.connect(_conninfo(database, user=ROLE), connect_timeout=5) as conn:
        zone = conn.execute("SHOW timezone").fetchone()
        if env_tz is None:
            assert zone == ("UTC",), zone

    upgraded = _upgrade_as_role(database)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert "created the schema" in upgraded.stdout, upgraded.stdout
    with psycopg.connect(_conninfo(database), autocommit=True, connect_timeout=5) as conn:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        assert version == (migrate.head_revision(),)
        owners = {
            row[0]
            for row in conn.execute(
                "SELECT tableowner FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
        assert owners == {ROLE}, owners
