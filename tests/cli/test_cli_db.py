"""``autopack db``: upgrade, downgrade and current against Settings' database."""

from __future__ import annotations

from pathlib import Path

from autopack.db import migrate
from autopack.db.engine import create_db_engine
from tests.cli.support import Invoke, assert_clean_failure, clean_env, make_invoke
from tests.conftest import create_pg_database, drop_pg_database, make_settings

HEAD = migrate.head_revision()


def sqlite_cli(path: Path, runs_dir: Path) -> Invoke:
    return make_invoke(
        clean_env(
            DATABASE_URL=f"sqlite:///{path}",
            AUTOPACK_RUNS_DIR=str(runs_dir),
            AUTOPACK_DB_STARTUP_TIMEOUT_SECONDS="0",
        )
    )


def test_current_on_a_migrated_database(cli: Invoke) -> None:
    result = cli("db", "current")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == f"current revision: {HEAD}"
    assert lines[2] == f"head revision:    {HEAD}"
    assert lines[3] == "status:           up to date"


def test_current_hides_the_password(runs_dir: Path) -> None:
    url = "postgresql://autopack:s3cret-pw@127.0.0.1:1/autopack"
    result = make_invoke(clean_env(DATABASE_URL=url, AUTOPACK_DB_STARTUP_TIMEOUT_SECONDS="0"))(
        "db", "current"
    )
    assert result.exit_code == 1
    assert "s3cret-pw" not in result.output
    assert "cannot reach the database postgresql+psycopg://autopack:***@127.0.0.1:1/autopack" in (
        result.stderr
    )
    assert "Traceback" not in result.output


def test_upgrade_then_current_on_a_fresh_sqlite_file(tmp_path: Path, runs_dir: Path) -> None:
    path = tmp_path / "new" / "dir" / "autopack.db"
    cli = sqlite_cli(path, runs_dir)

    before = cli("db", "current")
    assert before.exit_code == 0, before.output
    assert "current revision: (none: no Autopack schema)" in before.stdout
    assert "behind; run `autopack db upgrade`" in before.stdout

    upgraded = cli("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert f"created the schema at revision {HEAD} (head)" in upgraded.stdout
    assert path.is_file()

    again = cli("db", "upgrade")
    assert again.exit_code == 0, again.output
    assert f"already at revision {HEAD}" in again.stdout

    assert "status:           up to date" in cli("db", "current").stdout


def test_downgrade_asks_first(tmp_path: Path, runs_dir: Path) -> None:
    cli = sqlite_cli(tmp_path / "autopack.db", runs_dir)
    assert cli("db", "upgrade").exit_code == 0

    refused = cli("db", "downgrade", "base", input="n\n")
    assert refused.exit_code == 1
    assert "This can delete data" in refused.stdout
    assert f"current revision: {HEAD}" in cli("db", "current").stdout

    done = cli("db", "downgrade", "base", "--yes")
    assert done.exit_code == 0, done.output
    assert f"downgraded from {HEAD} to (none: no Autopack schema)" in done.stdout
    assert "current revision: (none" in cli("db", "current").stdout


def test_upgrade_to_an_unknown_revision(tmp_path: Path, runs_dir: Path) -> None:
    result = sqlite_cli(tmp_path / "autopack.db", runs_dir)("db", "upgrade", "-r", "nope")
    assert_clean_failure(result)
    assert result.stderr.startswith("error: cannot upgrade to 'nope'")


def test_runs_commands_refuse_an_unmigrated_postgres(runs_dir: Path) -> None:
    url = create_pg_database()
    try:
        result = make_invoke(clean_env(DATABASE_URL=url))("runs", "list")
        assert_clean_failure(result)
        assert "the database has no Autopack schema" in result.stderr
        assert "autopack db upgrade" in result.stderr
    finally:
        drop_pg_database(url)


def test_embedded_default_migrates_itself(cli_no_db: Invoke, runs_dir: Path) -> None:
    result = cli_no_db("runs", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "No runs."
    assert (runs_dir / "autopack.db").is_file()
    assert "status:           up to date" in cli_no_db("db", "current").stdout


def test_invalid_setting_names_the_variable(runs_dir: Path) -> None:
    result = make_invoke(clean_env(AUTOPACK_PORT="http"))("db", "current")
    assert_clean_failure(result)
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: the configuration is invalid")
    assert lines[1].startswith("  AUTOPACK_PORT: ")


def test_upgrade_of_the_embedded_default_creates_its_directory(
    cli_no_db: Invoke, runs_dir: Path
) -> None:
    assert not runs_dir.exists()
    result = cli_no_db("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert (runs_dir / "autopack.db").is_file()
    assert f"sqlite:///{runs_dir / 'autopack.db'}" in result.stdout


def test_revision_writes_nothing_when_models_and_migrations_agree(cli: Invoke) -> None:
    versions = migrate.MIGRATIONS_DIR / "versions"
    before = sorted(p.name for p in versions.glob("*.py"))
    result = cli("db", "revision", "-m", "nothing")
    assert result.exit_code == 0, result.output
    assert "nothing to generate" in result.stdout
    assert sorted(p.name for p in versions.glob("*.py")) == before


def test_revision_generates_the_missing_schema_change(tmp_path: Path) -> None:
    """A database at head that lacks a table the models declare: autogenerate writes a migration
    creating it, numbered after the head (into a scratch directory here, not the package)."""
    engine = create_db_engine(make_settings(f"sqlite:///{tmp_path / 'dev.db'}", tmp_path))
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE api_keys")
    scratch = tmp_path / "versions"
    scratch.mkdir()
    path = migrate.new_revision(engine, "restore api keys", versions_dir=scratch)
    engine.dispose()
    assert path is not None and path.parent == scratch
    text = path.read_text()
    assert f"down_revision: str | None = '{HEAD}'" in text
    assert "op.create_table('api_keys'" in text
    assert path.name.startswith(f"{int(HEAD) + 1:04d}_")


def test_revision_refuses_a_database_behind_head(tmp_path: Path) -> None:
    cli = sqlite_cli(tmp_path / "empty.db", tmp_path / "runs")
    result = cli("db", "revision", "-m", "x")
    assert_clean_failure(result)
    assert "autopack db upgrade" in result.output
