"""The one Settings class. Nothing else in Autopack reads the process environment.

Every setting is an ``AUTOPACK_*`` variable, except the three the deployment guide names as they are
(``DATABASE_URL``, ``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``). Every secret also has a ``*_FILE``
variant holding the path of a file with the value (Docker secrets, Kubernetes secret volumes).
Settings are built on demand (``Settings()``), never at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from autopack.errors import ConfigurationError

EMBEDDED_DB_FILENAME = "autopack.db"


class FileSecretsSource(PydanticBaseSettingsSource):
    """Reads ``NAME_FILE`` for every secret setting ``NAME`` (the value is the file's content)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ does the work

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            if not _is_secret(field):
                continue
            env_name = env_names(name, field)[0]
            file_var = f"{env_name}_FILE"
            path = os.environ.get(file_var)
            if not path:
                continue
            if os.environ.get(env_name):
                raise ConfigurationError(
                    f"both {env_name} and {file_var} are set; set only one of them"
                )
            try:
                # Keyed like the environment source keys it (the alias of an aliased setting,
                # else the field's name), so that precedence is decided by source order
                # (environment > *_FILE > .env), not by which key pydantic sees first.
                key = env_name if field.validation_alias is not None else name
                values[key] = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigurationError(
                    f"{file_var} points to {path!r}, which cannot be read: {exc.strerror}"
                ) from exc
        return values


def _is_secret(field: FieldInfo) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and extra.get("secret") is True


def env_names(name: str, field: FieldInfo) -> list[str]:
    """The environment variable names a setting is read from, preferred first."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    if isinstance(alias, str):
        return [alias]
    return [f"AUTOPACK_{name.upper()}"]


def secret_env_names() -> list[str]:
    """Every environment variable that can carry a secret (with its ``_FILE`` twin)."""
    names: list[str] = []
    for name, field in Settings.model_fields.items():
        if _is_secret(field):
            for env in env_names(name, field):
                names += [env, f"{env}_FILE"]
    return names


def _secret(description: str, env: str | None = None) -> Any:
    return Field(
        default=None,
        description=description,
        validation_alias=env,
        json_schema_extra={"secret": True},
    )


class Settings(BaseSettings):
    """Autopack's configuration. Documented, one line each, in ``.env.example``."""

    model_config = SettingsConfigDict(
        env_prefix="AUTOPACK_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    # --- storage -----------------------------------------------------------------------------
    database_url: SecretStr | None = _secret(
        "SQLAlchemy URL of the database; unset means the embedded SQLite file under runs_dir",
        env="DATABASE_URL",
    )
    runs_dir: Path = Field(
        default=Path(".autonomous_runs"),
        description="Directory for the embedded database, workspaces and run artifacts",
    )
    db_bootstrap: bool = Field(
        default=False,
        description="Run the migrations at start-up instead of refusing a missing or old schema",
    )
    db_pool_size: int = Field(default=5, ge=1, description="PostgreSQL connection pool size")
    db_max_overflow: int = Field(default=10, ge=0, description="Connections beyond the pool size")
    db_pool_recycle_seconds: int = Field(
        default=1800, ge=-1, description="Reconnect pooled connections older than this"
    )
    db_pool_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Wait at most this long for a pooled connection"
    )
    db_connect_timeout_seconds: int = Field(
        default=5, ge=1, description="Give up on one PostgreSQL connection attempt after this long"
    )
    db_startup_timeout_seconds: float = Field(
        default=30.0,
        ge=0,
        description="At start-up, keep retrying an unreachable database for this long",
    )
    sqlite_busy_timeout_ms: int = Field(
        default=5000, ge=0, description="How long SQLite waits on a locked database"
    )

    # --- HTTP --------------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Address `autopack serve` binds")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `autopack serve` binds")
    max_request_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Larger request bodies are refused with 413"
    )
    http_threads: int = Field(
        default=4,
        ge=1,
        le=256,
        description="Threads running the blocking part of HTTP requests (database work); more "
        "mostly adds lock contention",
    )
    sse_poll_interval_seconds: float = Field(
        default=0.5, gt=0, description="How often an event stream looks for new events"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level of the server"
    )
    dashboard_dir: Path | None = Field(
        default=None,
        description="Directory of the built dashboard the server serves at / (index.html, "
        "assets/); unset means dist/ of the repository (/app/dist in the Docker image)",
    )

    # --- security ----------------------------------------------------------------------------
    api_key: SecretStr | None = _secret(
        "Admin API key for deployments (never stored); when set, every /api request needs a key"
    )
    cors_origins: str | None = Field(
        default=None,
        description="Comma-separated origins a browser may call the API from (CORS); unset: none",
    )
    rate_limit_per_minute: int = Field(
        default=120,
        ge=0,
        description="Mutating API requests per minute per API key (or per client address when "
        "authentication is off); 0: no limit",
    )

    # --- executor ----------------------------------------------------------------------------
    executor_threads: int = Field(
        default=1, ge=0, le=64, description="Runs `autopack serve` executes at once (0: none)"
    )
    executor_backend: Literal["threads", "workers"] = Field(
        default="threads",
        description="threads: runs execute in `autopack serve`'s threads; workers: in "
        "`autopack worker` processes, fed by jobs in PostgreSQL (procrastinate)",
    )
    worker_concurrency: int = Field(
        default=2, ge=1, le=64, description="Runs one `autopack worker` executes at once"
    )
    worker_shutdown_seconds: float = Field(
        default=30.0,
        ge=0,
        description="On SIGTERM a worker waits this long for the runs it is executing, then "
        "exits; what is unfinished resumes on another worker",
    )
    max_attempts: int = Field(
        default=3, ge=1, le=20, description="Builder attempts per phase unless the plan says"
    )
    test_timeout_seconds: float = Field(
        default=600.0, gt=0, description="A test command running longer is killed"
    )
    test_output_limit_bytes: int = Field(
        default=200_000, ge=1024, description="Test output kept per run (head and tail)"
    )
    test_sandbox: Literal["off", "bwrap"] = Field(
        default="off",
        description="bwrap: test commands run with no network, only the workspace writable",
    )
    heartbeat_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often an executor proves it is alive"
    )
    stale_heartbeat_seconds: float = Field(
        default=60.0, gt=0, description="A phase whose heartbeat is older is taken over"
    )
    context_token_budget: int = Field(
        default=60_000, ge=1000, description="Most tokens of context given to the builder"
    )
    max_files_per_attempt: int = Field(
        default=50, ge=1, description="Most files one builder attempt may change"
    )
    max_file_bytes: int = Field(
        default=1_000_000, ge=1, description="Largest file a builder attempt may write"
    )
    approval_timeout_seconds: int = Field(
        default=86_400,
        ge=0,
        description="A pending approval expires after this long (0: never)",
    )
    approval_timeout_action: Literal["reject", "approve"] = Field(
        default="reject", description="What an expired approval is decided as: reject or approve"
    )
    routing_file: Path | None = Field(
        default=None,
        description="Model routing and prices (YAML); the routing profile's shipped file if unset",
    )
    routing_profile: Literal["default", "openai", "local"] = Field(
        default="default",
        description="Shipped routing when no routing file is set: default, openai or local",
    )
    replay_cassette: Path | None = Field(
        default=None,
        description="Serve every model call from this recorded cassette (offline, deterministic)",
    )
    record_cassette: Path | None = Field(
        default=None,
        description="Append every live model call's request and reply to this cassette",
    )

    # --- model providers ---------------------------------------------------------------------
    anthropic_api_key: SecretStr | None = _secret("Anthropic API key", env="ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(
        default=None, description="Anthropic API address (a gateway or proxy); Anthropic's if unset"
    )
    openai_api_key: SecretStr | None = _secret("OpenAI API key", env="OPENAI_API_KEY")
    openai_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible server, e.g. http://localhost:11434/v1; OpenAI's if unset",
    )
    llm_connect_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Most seconds to open a connection to a model API"
    )
    llm_stall_timeout_seconds: float = Field(
        default=120.0, gt=0, description="A model reply silent this long (streaming) is a timeout"
    )
    llm_call_deadline_seconds: float = Field(
        default=600.0, gt=0, description="Most seconds one model call may take, retries included"
    )
    llm_max_retries: int = Field(
        default=4, ge=0, le=20, description="Retries of a model call on 429, 5xx and timeouts"
    )
    llm_backoff_max_seconds: float = Field(
        default=30.0, gt=0, description="Longest wait between two tries of a model call"
    )

    # --- memory ------------------------------------------------------------------------------
    memory_enabled: bool = Field(
        default=True,
        description="Runs use the vector memory: index the workspace, add retrieved code and "
        "known fixes to the builder's prompt, store phase summaries and fixes",
    )
    qdrant_host: str | None = Field(
        default=None,
        description="Qdrant server host for vector memory; unset (and no URL): Qdrant local mode "
        "on disk under memory_dir",
    )
    qdrant_port: int = Field(
        default=6333, ge=1, le=65535, description="Qdrant server HTTP port (with the host)"
    )
    qdrant_url: str | None = Field(
        default=None,
        description="Qdrant server URL, e.g. https://qdrant.example:6333 (instead of the host "
        "and port)",
    )
    qdrant_api_key: SecretStr | None = _secret("Qdrant server API key")
    memory_dir: Path | None = Field(
        default=None,
        description="Directory of the embedded (local mode) vector memory; unset means memory/ "
        "under runs_dir. One process at a time may open it",
    )
    embeddings_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible embeddings server, e.g. http://localhost:11434/v1; unset: "
        "lexical (sparse) retrieval only",
    )
    embeddings_model: str | None = Field(
        default=None,
        description="Embedding model at that server; changing it needs a fresh memory index",
    )
    embeddings_api_key: SecretStr | None = _secret("API key of the embeddings server")

    # --- learned rules -----------------------------------------------------------------------
    rules_activate_after_confirmations: int = Field(
        default=0,
        ge=0,
        le=100,
        description="A candidate rule becomes active by itself after this many more runs fixed "
        "its failure again; 0: only when approved",
    )
    rules_retire_after_misses: int = Field(
        default=3,
        ge=0,
        le=100,
        description="An active rule is retired after this many phases in a row had it in their "
        "prompt and still met its failure; 0: never by itself",
    )

    # --- observability -----------------------------------------------------------------------
    log_format: Literal["console", "json"] = Field(
        default="console",
        description="Log line format: console (readable) or json (one JSON object a line)",
    )
    metrics_public: bool = Field(
        default=False,
        description="Serve /metrics to any client; when false, to loopback or a valid API key",
    )

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower_log_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, FileSecretsSource(settings_cls), dotenv_settings)

    @property
    def uses_embedded_database(self) -> bool:
        """True when no DATABASE_URL is given: the zero set-up SQLite file."""
        return self.database_url is None

    @property
    def cors_origin_list(self) -> list[str]:
        """The CORS allow-list: ``AUTOPACK_CORS_ORIGINS`` split at commas, blanks dropped."""
        if not self.cors_origins:
            return []
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def embedded_database_path(self) -> Path:
        return self.runs_dir / EMBEDDED_DB_FILENAME

    @property
    def memory_path(self) -> Path:
        """Where the embedded vector memory lives: ``AUTOPACK_MEMORY_DIR``, else under runs_dir."""
        return self.memory_dir if self.memory_dir is not None else self.runs_dir / "memory"

    @property
    def uses_memory_server(self) -> bool:
        """True when a Qdrant server is configured (host or URL); else Qdrant local mode."""
        return bool(self.qdrant_url or self.qdrant_host)

    @property
    def uses_workers(self) -> bool:
        """True when runs are executed by `autopack worker` processes (PostgreSQL jobs)."""
        return self.executor_backend == "workers"

    def database_url_value(self) -> str:
        """The database URL to connect with (the embedded SQLite file when none is set)."""
        if self.database_url is None:
            return f"sqlite:///{self.embedded_database_path}"
        return self.database_url.get_secret_value()


def process_environment() -> dict[str, str]:
    """The environment this process was started with: the base for the environment of child
    processes (a project's test command), which the caller scrubs of secrets."""
    return dict(os.environ)
