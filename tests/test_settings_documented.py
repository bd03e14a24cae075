"""Every setting is documented (``.env.example``, ``docs/configuration.md``), the documentation
names nothing that does not exist, and settings really are read from where the documentation
says they are."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic.fields import FieldInfo

from autopack.errors import ConfigurationError
from autopack.settings import Settings, env_names, secret_env_names

ROOT = Path(__file__).resolve().parents[1]
ENV_EXAMPLE = ROOT / ".env.example"
CONFIG_DOC = ROOT / "docs" / "configuration.md"
SETTINGS_SOURCE = ROOT / "src" / "autopack" / "settings.py"

FIELDS: dict[str, FieldInfo] = dict(Settings.model_fields)
ALL_ENV_NAMES: list[str] = [env for name, field in FIELDS.items() for env in env_names(name, field)]
# Every variable Autopack reads: each setting's names, plus the *_FILE twins of the secrets.
KNOWN_VARIABLES: set[str] = set(ALL_ENV_NAMES) | set(secret_env_names())
SECRET_FIELDS: list[str] = [
    name
    for name, field in FIELDS.items()
    if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("secret") is True
]
# Settings read from a name of their own (DATABASE_URL) rather than AUTOPACK_<FIELD>.
ALIASED_FIELDS: list[str] = [
    name for name, field in FIELDS.items() if env_names(name, field) != [f"AUTOPACK_{name.upper()}"]
]

# The end of .env.example, from this line on, is for docker-compose.yml (variables Compose
# interpolates, such as POSTGRES_PASSWORD), not for Settings; tests/deploy/test_compose.py checks
# that section against the compose file.
COMPOSE_SECTION = re.compile(r"^# --- docker compose only -*$", flags=re.MULTILINE)
# `NAME=value` or `# NAME=` (a documented but unset variable) in .env.example.
ASSIGNMENT = re.compile(r"^(?P<commented>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
# Names that look like Autopack configuration wherever they appear in the documentation.
VARIABLE_LIKE = re.compile(r"\b(?:AUTOPACK_[A-Z0-9_]+|[A-Z][A-Z0-9_]*_FILE)\b")
# First cell of a Markdown table row: | `NAME` | ...
TABLE_ROW = re.compile(r"^\|\s*`(?P<name>[A-Za-z0-9_]+)`\s*\|(?P<rest>.*)$")
REGENERATE = (
    "update .env.example and docs/configuration.md so that they list exactly the fields of "
    "autopack.settings.Settings (name, default, description)"
)


def _render_default(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _env_example_settings_text() -> str:
    """.env.example up to its docker compose section: the part that documents Settings."""
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    compose = COMPOSE_SECTION.search(text)
    return text if compose is None else text[: compose.start()]


def _env_example_assignments() -> dict[str, tuple[bool, str]]:
    """name -> (commented out, value) for each `NAME=` / `# NAME=` line of .env.example's
    settings part."""
    found: dict[str, tuple[bool, str]] = {}
    for line in _env_example_settings_text().splitlines():
        match = ASSIGNMENT.match(line.strip())
        if match:
            found[match["name"]] = (match["commented"] is not None, match["value"].strip())
    return found


def _doc_table_rows() -> dict[str, list[str]]:
    """name -> the other cells of its row, for each table row of docs/configuration.md."""
    rows: dict[str, list[str]] = {}
    for line in CONFIG_DOC.read_text(encoding="utf-8").splitlines():
        match = TABLE_ROW.match(line.strip())
        if match:
            rows[match["name"]] = [cell.strip() for cell in match["rest"].strip().split("|")]
    return rows


def _settings_sections() -> list[str]:
    """The section comments of settings.py (`# --- storage ----`), in order."""
    source = SETTINGS_SOURCE.read_text(encoding="utf-8")
    return re.findall(r"^\s*# --- (.+?) -+\s*$", source, flags=re.MULTILINE)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No Autopack variable in the environment and an empty working directory (no .env)."""
    for name in list(os.environ):
        if name.upper() in KNOWN_VARIABLES or name.upper().startswith("AUTOPACK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- documentation ---------------------------------------------------------------------------


def test_there_are_settings_to_document() -> None:
    assert FIELDS, "Settings has no fields"
    assert "AUTOPACK_PORT" in ALL_ENV_NAMES
    assert "DATABASE_URL" in ALL_ENV_NAMES


@pytest.mark.parametrize("env_name", ALL_ENV_NAMES)
def test_every_setting_is_in_env_example(env_name: str) -> None:
    assert env_name in _env_example_assignments(), (
        f"{env_name} is a setting but .env.example has no `{env_name}=` or `# {env_name}=` line; "
        + REGENERATE
    )


@pytest.mark.parametrize("env_name", ALL_ENV_NAMES)
def test_every_setting_is_in_configuration_doc(env_name: str) -> None:
    assert env_name in _doc_table_rows(), (
        f"{env_name} is a setting but docs/configuration.md has no table row for it; " + REGENERATE
    )


@pytest.mark.parametrize("name", list(FIELDS))
def test_env_example_shows_description_and_default(name: str) -> None:
    field = FIELDS[name]
    env = env_names(name, field)[0]
    text = _env_example_settings_text()
    assert field.description, f"Settings.{name} has no description"
    assert f"# {field.description}" in text, (
        f".env.example does not carry the description of {env} ({field.description!r}); "
        + REGENERATE
    )
    assignments = _env_example_assignments()
    assert env in assignments, f".env.example has no `{env}=` line; " + REGENERATE
    commented, value = assignments[env]
    if name in SECRET_FIELDS:
        assert commented and not value, f".env.example must leave the secret {env} as `# {env}=`"
        assert f"{env}_FILE" in text, f".env.example must mention {env}_FILE for the secret {env}"
    elif field.default is None:
        assert commented, f"{env} has no default; .env.example must show it as `# {env}=`"
    else:
        expected = _render_default(field.default)
        assert not commented and value == expected, (
            f".env.example shows {env}={value!r}, but the default is {expected!r}; " + REGENERATE
        )


@pytest.mark.parametrize("name", list(FIELDS))
def test_configuration_doc_shows_description_and_default(name: str) -> None:
    field = FIELDS[name]
    env = env_names(name, field)[0]
    rows = _doc_table_rows()
    assert env in rows, f"docs/configuration.md has no table row for {env}; " + REGENERATE
    default_cell, description_cell = [*rows[env], "", ""][:2]
    if field.default is None:
        assert "`" not in default_cell, f"{env} has no default, docs show {default_cell!r}"
    else:
        expected = f"`{_render_default(field.default)}`"
        assert default_cell == expected, (
            f"docs/configuration.md gives {env} the default {default_cell}, "
            f"but it is {expected}; " + REGENERATE
        )
    assert field.description and field.description in description_cell, (
        f"docs/configuration.md does not carry the description of {env}; " + REGENERATE
    )
    if name in SECRET_FIELDS:
        assert f"{env}_FILE" in description_cell, f"docs must mention {env}_FILE for {env}"


@pytest.mark.parametrize("path", [ENV_EXAMPLE, CONFIG_DOC], ids=lambda path: path.name)
def test_documentation_names_no_unknown_variable(path: Path) -> None:
    text = _env_example_settings_text() if path == ENV_EXAMPLE else path.read_text(encoding="utf-8")
    named = set(VARIABLE_LIKE.findall(text))
    if path == ENV_EXAMPLE:
        named |= set(_env_example_assignments())
    else:
        named |= set(_doc_table_rows())
    unknown = sorted(named - KNOWN_VARIABLES)
    assert not unknown, (
        f"{path.name} documents {', '.join(unknown)}, which Settings does not read "
        "(a renamed or removed setting?); " + REGENERATE
    )


def test_env_example_follows_the_sections_of_settings() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    sections = _settings_sections()
    assert sections, "settings.py has no `# --- section ---` comments any more"
    positions = []
    for section in sections:
        match = re.search(rf"^# --- {re.escape(section)} -*$", text, flags=re.MULTILINE)
        assert match, f".env.example has no `# --- {section} ---` section comment"
        positions.append(match.start())
    assert positions == sorted(positions), ".env.example's sections are not in settings.py order"


def test_env_example_copied_to_dotenv_gives_the_defaults(clean_env: Path) -> None:
    (clean_env / ".env").write_text(ENV_EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    assert Settings() == Settings(_env_file=None)


# --- where settings are read from ------------------------------------------------------------


def test_defaults_without_any_configuration(clean_env: Path) -> None:
    settings = Settings()
    assert settings.port == 8000
    assert settings.database_url is None
    assert settings.uses_embedded_database


def test_read_from_environment(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOPACK_PORT", "9123")
    monkeypatch.setenv("DATABASE_URL", "postgresql://autopack@db:5432/autopack")
    settings = Settings()
    assert settings.port == 9123
    assert settings.database_url_value() == "postgresql://autopack@db:5432/autopack"
    assert not settings.uses_embedded_database


def test_init_arguments_win_over_environment(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOPACK_PORT", "9123")
    assert Settings(port=9555).port == 9555


def test_invalid_environment_value_is_refused(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOPACK_PORT", "notanumber")
    with pytest.raises(ValueError, match="port"):
        Settings()


def test_there_are_secrets() -> None:
    assert {"database_url", "anthropic_api_key", "openai_api_key"} <= set(SECRET_FIELDS)


@pytest.mark.parametrize("name", SECRET_FIELDS)
def test_secret_read_from_file_variant(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    env = env_names(name, FIELDS[name])[0]
    secret_file = clean_env / "secret"
    secret_file.write_text("  the-value\n", encoding="utf-8")
    monkeypatch.setenv(f"{env}_FILE", str(secret_file))
    value = getattr(Settings(), name)
    assert value is not None and value.get_secret_value() == "the-value", (
        f"{env}_FILE did not set {name} (stripped)"
    )


def test_database_url_from_file(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = clean_env / "database_url"
    secret_file.write_text("postgresql://autopack:s3cret@db/autopack\n", encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL_FILE", str(secret_file))
    settings = Settings()
    assert settings.database_url_value() == "postgresql://autopack:s3cret@db/autopack"
    assert "s3cret" not in repr(settings)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = error
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def test_value_and_file_variant_together_is_an_error(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = clean_env / "key"
    secret_file.write_text("from-file", encoding="utf-8")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-env")
    monkeypatch.setenv("ANTHROPIC_API_KEY_FILE", str(secret_file))
    with pytest.raises(Exception) as raised:  # pydantic may wrap it: checked below
        Settings()
    assert any(isinstance(error, ConfigurationError) for error in _chain(raised.value)), (
        f"expected a ConfigurationError, got {raised.value!r}"
    )
    message = str(raised.value)
    assert re.search(r"\bANTHROPIC_API_KEY\b(?!_FILE)", message), message
    assert "ANTHROPIC_API_KEY_FILE" in message, message


def test_missing_file_variant_names_the_variable(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = clean_env / "no-such-file"
    monkeypatch.setenv("OPENAI_API_KEY_FILE", str(missing))
    with pytest.raises(Exception) as raised:  # pydantic may wrap it: checked below
        Settings()
    assert any(isinstance(error, ConfigurationError) for error in _chain(raised.value)), (
        f"expected a ConfigurationError, got {raised.value!r}"
    )
    assert "OPENAI_API_KEY_FILE" in str(raised.value)
    assert str(missing) in str(raised.value)


def test_read_from_dotenv_in_working_directory(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / ".env").write_text(
        "# a comment\nAUTOPACK_PORT=9321\nDATABASE_URL=sqlite:///from-dotenv.db\n"
        "SOMETHING_ELSE=ignored\n",
        encoding="utf-8",
    )
    settings = Settings()
    assert settings.port == 9321
    assert settings.database_url_value() == "sqlite:///from-dotenv.db"

    monkeypatch.setenv("AUTOPACK_PORT", "9322")
    assert Settings().port == 9322, "the environment must win over .env"


def test_file_variant_wins_over_dotenv(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text("OPENAI_API_KEY=from-dotenv\n", encoding="utf-8")
    secret_file = clean_env / "key"
    secret_file.write_text("from-file\n", encoding="utf-8")
    monkeypatch.setenv("OPENAI_API_KEY_FILE", str(secret_file))
    key = Settings().openai_api_key
    assert key is not None and key.get_secret_value() == "from-file"


@pytest.mark.parametrize("name", ALIASED_FIELDS)
def test_aliased_settings_are_read_only_under_their_documented_names(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    documented = env_names(name, FIELDS[name])
    undocumented = f"AUTOPACK_{name.upper()}"
    assert undocumented not in documented
    monkeypatch.setenv(undocumented, "sqlite:///undocumented.db")
    assert getattr(Settings(), name) is None, f"{undocumented} is read but not documented"


# --- nothing is read at import time ----------------------------------------------------------


def test_importing_settings_and_engine_reads_no_environment(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("AUTOPACK_DB_POOL_SIZE=alsonotanumber\n", encoding="utf-8")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in KNOWN_VARIABLES and not key.upper().startswith("AUTOPACK_")
    }
    env |= {
        "AUTOPACK_PORT": "notanumber",
        "DATABASE_URL_FILE": str(tmp_path / "does-not-exist"),
    }
    script = textwrap.dedent(
        """
        import autopack.settings
        import autopack.db.engine

        try:
            autopack.settings.Settings()
        except Exception as exc:
            print("built on demand:", type(exc).__name__)
        else:
            raise SystemExit("Settings() accepted the bogus environment")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (
        "importing autopack.settings / autopack.db.engine must not read the environment "
        f"(nothing is built at import time):\n{result.stdout}\n{result.stderr}"
    )
    assert "built on demand" in result.stdout
