"""``docker-compose.yml``: what Compose would do with it, checked without Docker.

The file is read as Compose reads it (YAML, then ``${...}`` interpolation from ``.env``), and held
to what the deployment guide and ARCHITECTURE.md §8 ask: pinned images; health checks that run
with what each image really contains (the original stack called curl in images without curl,
so nothing ever became healthy); dependencies that wait for health, or for the one-shot
migration to succeed; declared volumes; no secret but the documented development defaults; the
API key required. Where a health check's tool exists on this machine it is run for real, against
a stand-in server. ``docker compose config`` itself runs where Compose is installed.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autopack.db.engine import normalise_url
from autopack.settings import Settings, env_names, secret_env_names
from tests.deploy.support import (
    COMPOSE_FILE,
    DOCKERFILE,
    ENV_EXAMPLE,
    INIT_DB_SQL,
    REPO,
    InterpolationError,
    base_image,
    healthcheck_argv,
    interpolate,
    interpolate_all,
    interpolated_names,
    load_compose,
    parse_dockerfile,
    read_env_file,
    shell_command_words,
    stage_named,
)

SERVICES = {"db", "qdrant", "migrate", "backend", "worker", "frontend"}
LONG_RUNNING = SERVICES - {"migrate"}
ONE_SHOT = "migrate"
# Scaled out (`docker compose up --scale worker=4`); serves nothing a health check could ask, and
# nothing waits for it to be healthy.
WORKER = "worker"
HEALTH_CHECKED = LONG_RUNNING - {WORKER}
DEV_DEFAULT = "autopack"
# The seed guide's commands name these containers and this volume (project name `autopack`).
GUIDE_CONTAINERS = {"db": "autopack-db-1", "backend": "autopack-backend-1"}

# What each base image has on its PATH, for the health checks (and why we know).
IMAGE_TOOLS: list[tuple[re.Pattern[str], set[str], str]] = [
    (
        re.compile(r"postgres:15\.\d+-alpine"),
        {"pg_isready", "psql", "sh"},
        "the postgres image ships PostgreSQL's client tools; Alpine's sh is BusyBox",
    ),
    (
        re.compile(r"qdrant/qdrant:v1\.12\.\d+"),
        {"bash", "sh"},
        "Debian slim with the qdrant binary: bash (its entrypoint is a bash script), no curl, "
        "no wget (qdrant/qdrant#3491, #4250)",
    ),
    (
        re.compile(r"nginx:[0-9.]*-?alpine[0-9.]*"),
        {"wget", "sh", "nginx"},
        "Alpine: BusyBox provides sh and wget",
    ),
    (
        re.compile(r"python:3\.11\.\d+-slim-bookworm"),
        {"python", "python3", "sh", "bash", "pip", "uvicorn", "autopack", "git"},
        "Debian slim with Python; uvicorn from requirements.txt, autopack the Dockerfile's "
        "wrapper, git from apt; no curl, no wget",
    ),
]
SHELL_BUILTINS = {"exec", "printf", "read", "[[", "[", "test", "echo", "exit", "true", "false"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict)
    return found


def example_env(**extra: str) -> dict[str, str]:
    """What Compose would read from a .env copied from .env.example, plus ``extra``."""
    return {**read_env_file(ENV_EXAMPLE.read_text(encoding="utf-8")), **extra}


def service_image(name: str, service: dict[str, Any]) -> str:
    """The image a service runs: its ``image``, or the base of its Dockerfile's target stage."""
    if "image" in service and "build" not in service:
        return str(service["image"])
    build = service["build"]
    dockerfile = REPO / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
    if not dockerfile.is_file():
        pytest.fail(f"{name}: {dockerfile.name} is missing")
    stages = parse_dockerfile(dockerfile)
    target = stage_named(stages, build["target"]) if "target" in build else stages[-1]
    return base_image(stages, target)


def tools_of(image: str) -> set[str]:
    for pattern, tools, _why in IMAGE_TOOLS:
        if pattern.fullmatch(image):
            return tools
    raise AssertionError(f"no entry for {image} in IMAGE_TOOLS: say what that image contains")


def healthcheck_commands(test: Any) -> list[str]:
    """Every program a health check runs: argv[0], and the commands of a shell script it hands
    to ``sh -c`` / ``bash -c`` (or CMD-SHELL)."""
    form, words = healthcheck_argv(test)
    if form == "CMD-SHELL":
        return ["sh", *shell_command_words(words[0])]
    commands = [words[0]]
    if words[0] in ("sh", "bash") and len(words) >= 3 and words[1] == "-c":
        commands += shell_command_words(words[2])
    return commands


# --- structure --------------------------------------------------------------------------------


def test_project_name_gives_the_guides_container_names(compose: dict[str, Any]) -> None:
    assert compose.get("name") == "autopack", (
        "top-level `name: autopack`: the guide runs `docker exec -it autopack-db-1 ...` and "
        "`docker volume inspect autopack_db_data` whatever the checkout's directory is called"
    )
    assert set(compose["services"]) == SERVICES
    assert "version" not in compose, "the Compose spec has no `version:` (Compose warns)"


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if "build" in service:
            assert "image" not in service, f"{name}: a built service needs no image tag"
            continue
        image = str(service["image"])
        assert ":" in image.rsplit("/", 1)[-1], f"{name}: {image} has no tag"
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest" and re.search(r"\d+\.\d+", tag), f"{name}: {image} is not pinned"
    assert re.fullmatch(r"postgres:15\.\d+-alpine", services["db"]["image"])
    assert services["qdrant"]["image"] == "qdrant/qdrant:v1.12.5"


def test_built_images_start_from_pinned_bases(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if "build" not in service:
            continue
        build = service["build"]
        dockerfile = REPO / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
        if not dockerfile.is_file():
            pytest.fail(f"{name}: {dockerfile.name} is missing")
        stages = parse_dockerfile(dockerfile)
        names = {stage.name for stage in stages}
        for stage in stages:
            if stage.base in names:
                continue
            assert ":" in stage.base and not stage.base.endswith(":latest"), (
                f"{name}: {dockerfile.name} starts FROM {stage.base}: pin a version"
            )
            assert re.search(r":[^:]*\d", stage.base), f"{dockerfile.name}: FROM {stage.base}"


def test_backend_and_migrate_are_the_same_build(services: dict[str, dict[str, Any]]) -> None:
    backend, migrate = services["backend"]["build"], services["migrate"]["build"]
    assert backend == migrate
    assert backend == {"context": ".", "dockerfile": "Dockerfile", "target": "backend"}
    stage_named(parse_dockerfile(DOCKERFILE), backend["target"])
    frontend = services["frontend"]["build"]
    assert frontend.get("context", ".") == "." and frontend["dockerfile"] == "Dockerfile.frontend"


def test_migrate_is_a_one_shot_upgrade(services: dict[str, dict[str, Any]]) -> None:
    migrate = services[ONE_SHOT]
    assert migrate["command"] == ["autopack", "db", "upgrade"]
    assert migrate["restart"] == "no", 'a quoted "no": YAML reads a bare no as false'
    assert migrate.get("healthcheck") == {"disable": True}
    assert "ports" not in migrate


def test_restart_policies(services: dict[str, dict[str, Any]]) -> None:
    for name in LONG_RUNNING:
        assert services[name].get("restart") == "unless-stopped", name


def test_ports_as_the_guide_curls_them(services: dict[str, dict[str, Any]]) -> None:
    assert services["backend"]["ports"] == ["8000:8000"]  # curl http://localhost:8000/health
    assert services["frontend"]["ports"] == ["80:80"]  # curl http://localhost:80
    # Development conveniences, on the host's loopback only.
    assert services["db"]["ports"] == ["127.0.0.1:5432:5432"]
    assert services["qdrant"]["ports"] == ["127.0.0.1:6333:6333"]


def test_resource_limits_on_every_service(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert {"cpus", "memory"} <= set(limits), f"{name}: deploy.resources.limits"
        assert float(limits["cpus"]) > 0
        assert re.fullmatch(r"\d+[MG]", str(limits["memory"])), limits["memory"]


def test_named_volumes_are_declared_and_used(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    for service in services.values():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if not source.startswith((".", "/", "~")):
                used.add(source)
    assert used == declared == {"db_data", "qdrant_data", "runs"}
    assert "db_data:/var/lib/postgresql/data" in services["db"]["volumes"]
    assert "qdrant_data:/qdrant/storage" in services["qdrant"]["volumes"]
    assert "runs:/app/.autonomous_runs" in services["backend"]["volumes"]


def test_init_script_is_mounted_into_the_entrypoint_directory(
    services: dict[str, dict[str, Any]],
) -> None:
    mounts = [str(volume) for volume in services["db"]["volumes"]]
    init = [m for m in mounts if ":/docker-entrypoint-initdb.d/" in m]
    assert init == ["./scripts/init-db.sql:/docker-entrypoint-initdb.d/init-db.sql:ro"], mounts
    assert INIT_DB_SQL.is_file()


# --- health checks and start order ------------------------------------------------------------


def test_every_long_running_service_has_a_health_check(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in HEALTH_CHECKED:
        healthcheck = services[name].get("healthcheck")
        assert healthcheck and "test" in healthcheck, f"{name} has no health check"
        assert {"interval", "timeout", "retries"} <= set(healthcheck), name


def test_health_checks_use_only_what_each_image_has(services: dict[str, dict[str, Any]]) -> None:
    for name in HEALTH_CHECKED:
        image = service_image(name, services[name])
        tools = tools_of(image)
        for command in healthcheck_commands(services[name]["healthcheck"]["test"]):
            assert command != "curl", f"{name}: curl is in none of these images"
            assert command in tools or command in SHELL_BUILTINS, (
                f"{name}: its health check runs {command!r}, which {image} does not have "
                f"(it has {sorted(tools)})"
            )


def test_no_curl_in_any_command(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        words: list[str] = []
        if "healthcheck" in service and "test" in service["healthcheck"]:
            words += healthcheck_argv(service["healthcheck"]["test"])[1]
        command = service.get("command", [])
        words += command if isinstance(command, list) else [command]
        assert not any(re.search(r"\b(curl|wget --spider)\b", w) for w in words), name
    dockerfile_commands = [
        item.args
        for stage in parse_dockerfile(DOCKERFILE)
        for item in stage.instructions
        if item.keyword in ("RUN", "HEALTHCHECK", "CMD")
    ]
    assert not any(re.search(r"\bcurl\b", args) for args in dockerfile_commands)


def test_backend_health_check_is_the_dockerfiles(services: dict[str, dict[str, Any]]) -> None:
    healthcheck = stage_named(parse_dockerfile(DOCKERFILE), "backend").last("HEALTHCHECK")
    assert healthcheck is not None
    _flags, rest = healthcheck.flags_and_rest()
    assert services["backend"]["healthcheck"]["test"] == ["CMD", *json.loads(rest[4:])]


def test_dependencies_wait_for_health_or_completion(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions (long form)"
        for target, spec in depends.items():
            condition = spec.get("condition")
            if target == ONE_SHOT:
                assert condition == "service_completed_successfully", (name, target)
                continue
            assert condition == "service_healthy", (name, target, condition)
            healthcheck = services[target].get("healthcheck", {})
            assert "test" in healthcheck and not healthcheck.get("disable"), (
                f"{name} waits for {target} to be healthy, but {target} has no health check"
            )
    assert set(services["backend"]["depends_on"]) == {"db", "migrate", "qdrant"}
    assert set(services[WORKER]["depends_on"]) == {"db", "migrate", "qdrant"}
    assert not any(WORKER in service.get("depends_on", {}) for service in services.values()), (
        "nothing may wait for the worker: it has no health check, and may be scaled to 0"
    )
    assert set(services["migrate"]["depends_on"]) == {"db"}
    assert set(services["frontend"]["depends_on"]) == {"backend"}
    # nginx resolves `backend` once, at start: it must restart with a recreated backend.
    assert services["frontend"]["depends_on"]["backend"].get("restart") is True


class _StandIn(http.server.BaseHTTPRequestHandler):
    """Answers GET with the status in the class attribute (200 by default)."""

    status = 200

    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(type(self).status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stand_in() -> Iterator[tuple[int, type[_StandIn]]]:
    handler = type("Handler", (_StandIn,), {"status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _runnable(test: Any, container_address: str, local_address: str) -> list[str]:
    """A health check's argv as Docker would exec it (after Compose's `$$` -> `$`), with the
    container's address replaced by one on this machine (asserted to occur)."""
    form, words = healthcheck_argv(interpolate_all(test, example_env()))
    assert form == "CMD", test
    assert any(container_address in word for word in words), (container_address, words)
    return [word.replace(container_address, local_address) for word in words]


def test_qdrant_health_check_runs_in_bash(
    services: dict[str, dict[str, Any]], stand_in: tuple[int, type[_StandIn]]
) -> None:
    """The bash /dev/tcp check, run by bash against a stand-in for Qdrant's /readyz."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed here")
    port, handler = stand_in
    test = services["qdrant"]["healthcheck"]["test"]
    assert "/readyz" in test[-1] and "$$status_line" in test[-1]
    argv = _runnable(test, "/dev/tcp/127.0.0.1/6333", f"/dev/tcp/127.0.0.1/{port}")
    assert argv[0] == "bash" and f"/dev/tcp/127.0.0.1/{port}" in argv[2]
    assert subprocess.run(argv, capture_output=True, timeout=10).returncode == 0
    handler.status = 503
    assert subprocess.run(argv, capture_output=True, timeout=10).returncode != 0
    closed = _runnable(test, "/dev/tcp/127.0.0.1/6333", f"/dev/tcp/127.0.0.1/{_unused_port()}")
    assert subprocess.run(closed, capture_output=True, timeout=10).returncode != 0


def test_frontend_health_check_runs_with_wget(
    services: dict[str, dict[str, Any]], stand_in: tuple[int, type[_StandIn]]
) -> None:
    """The frontend's wget check (BusyBox's in the image; GNU wget takes the same options)."""
    busybox = shutil.which("busybox")
    wget = shutil.which("wget")
    if busybox is None and wget is None:
        pytest.skip("neither busybox nor wget is installed here")
    port, handler = stand_in
    test = services["frontend"]["healthcheck"]["test"]
    argv = _runnable(test, "http://127.0.0.1/", f"http://127.0.0.1:{port}/")
    prefix = [busybox] if busybox else []
    assert subprocess.run([*prefix, *argv], capture_output=True, timeout=10).returncode == 0
    handler.status = 404
    assert subprocess.run([*prefix, *argv], capture_output=True, timeout=10).returncode != 0


def test_db_health_check_runs_with_pg_isready(services: dict[str, dict[str, Any]]) -> None:
    """pg_isready as the check runs it, against this machine's PostgreSQL (up) and a closed
    port (down)."""
    if shutil.which("pg_isready") is None:
        pytest.skip("pg_isready is not installed here")
    test = interpolate_all(services["db"]["healthcheck"]["test"], example_env())
    form, argv = healthcheck_argv(test)
    assert form == "CMD" and argv[0] == "pg_isready"
    assert argv[argv.index("-h") + 1] == "127.0.0.1", "over TCP, not the init-time socket"
    up = subprocess.run(argv, capture_output=True, text=True, timeout=15)
    assert up.returncode == 0, up.stdout + up.stderr
    down = list(argv)
    down[down.index("-p") + 1] = str(_unused_port())
    assert subprocess.run(down, capture_output=True, timeout=15).returncode != 0


# --- configuration and secrets ----------------------------------------------------------------


def test_env_file_is_required(services: dict[str, dict[str, Any]]) -> None:
    for name in ("backend", "migrate", WORKER):
        assert services[name].get("env_file") in (".env", [".env"]), name
    gitignore = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in gitignore, ".env holds secrets: it must be git-ignored"


def test_api_key_is_required(services: dict[str, dict[str, Any]]) -> None:
    value = services["backend"]["environment"]["AUTOPACK_API_KEY"]
    assert re.fullmatch(r"\$\{AUTOPACK_API_KEY:\?[^}]+\}", value), value
    with pytest.raises(InterpolationError, match=r"set AUTOPACK_API_KEY in \.env"):
        interpolate(value, example_env())
    with pytest.raises(InterpolationError):
        interpolate(value, example_env(AUTOPACK_API_KEY=""))
    assert interpolate(value, example_env(AUTOPACK_API_KEY="k")) == "k"


def test_database_url(services: dict[str, dict[str, Any]]) -> None:
    backend_url = services["backend"]["environment"]["DATABASE_URL"]
    assert services["migrate"]["environment"]["DATABASE_URL"] == backend_url
    assert services[WORKER]["environment"]["DATABASE_URL"] == backend_url
    assert backend_url.startswith("postgresql://"), "plain postgresql:// is psycopg 3 (engine.py)"
    url = normalise_url(interpolate(backend_url, example_env()))
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "autopack",
        "autopack",
        "db",
        5432,
        "autopack",
    )
    custom = example_env(POSTGRES_USER="u", POSTGRES_PASSWORD="p4ss", POSTGRES_DB="d")
    custom_url = normalise_url(interpolate(backend_url, custom))
    assert (custom_url.username, custom_url.password, custom_url.database) == ("u", "p4ss", "d")
    db_env = interpolate_all(services["db"]["environment"], custom)
    assert db_env == {"POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p4ss", "POSTGRES_DB": "d"}


def test_no_secret_inline(compose: dict[str, Any]) -> None:
    """Secrets come from .env; the only defaults are the documented development ones."""
    secret_names = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|DATABASE_URL", re.IGNORECASE)
    key_shapes = re.compile(r"\b(sk-[A-Za-z0-9]|sk-ant-|apk_[A-Za-z0-9]|ghp_|AKIA[0-9A-Z]{8})")

    def walk(node: Any, path: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, f"{path}[{i}]")
        elif isinstance(node, str):
            yield path, node

    for path, value in walk(compose, ""):
        assert not key_shapes.search(value), f"{path}: looks like a key"
        key = path.rsplit(".", 1)[-1]
        if key.endswith("DATABASE_URL"):
            # The URL's password must come from a variable.
            shape = re.sub(r"\$\{[^}]*\}", "VARIABLE", value)
            parts = re.match(r"^[a-z+]+://(?P<user>[^:@/]*)(?::(?P<password>[^@]*))?@", shape)
            assert parts, f"{path}: {value!r}"
            assert parts["password"] in (None, "VARIABLE"), (
                f"{path}: the password in {value!r} is a literal; take it from .env"
            )
        elif secret_names.search(key):
            assert re.fullmatch(r"\$\{[^}]*\}", value), (
                f"{path}: {value!r} holds a literal; take it from .env"
            )
        for match in re.finditer(r"\$\{([A-Z_]+):?-([^}]*)\}", value):
            name, default = match.groups()
            if secret_names.search(name):
                assert default == DEV_DEFAULT, f"{path}: default {default!r} for {name}"


def test_env_example_documents_the_compose_variables(compose: dict[str, Any]) -> None:
    """.env.example's last section lists exactly what Compose reads that Settings does not, with
    the compose file's defaults; every other interpolated variable is a documented setting."""
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    marker = re.search(r"^# --- docker compose only -*$", text, flags=re.MULTILINE)
    assert marker, ".env.example has no `# --- docker compose only ---` section"
    compose_section = read_env_file(text[marker.start() :])
    settings_names = {
        env for name, field in Settings.model_fields.items() for env in env_names(name, field)
    } | set(secret_env_names())
    interpolated = interpolated_names(compose)
    compose_only = {name for name in interpolated if name not in settings_names}
    assert set(compose_section) == compose_only, (set(compose_section), compose_only)
    for name, value in compose_section.items():
        assert interpolated[name] == {value}, (name, interpolated[name], value)
    settings_part = text[: marker.start()]
    for name in set(interpolated) - compose_only:
        assert re.search(rf"^#? ?{name}=", settings_part, flags=re.MULTILINE), name
    assert "AUTOPACK_API_KEY" in text[marker.start() :], "say that compose requires the key"


def test_compose_section_of_env_example_changes_no_setting() -> None:
    """Copied to .env, the compose variables are ignored by Settings (it reads .env too)."""
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    marker = text.index("# --- docker compose only")
    for name in read_env_file(text[marker:]):
        assert not name.startswith("AUTOPACK_") and name not in secret_env_names(), name


def test_docker_compose_config(tmp_path: Path) -> None:
    """`docker compose config -q` with a .env made from .env.example (Compose's own check)."""
    docker = shutil.which("docker")
    version = (
        subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if docker
        else None
    )
    if version is None or version.returncode != 0:
        pytest.skip("docker compose is not installed here")
    assert docker is not None
    shutil.copy(COMPOSE_FILE, tmp_path / "docker-compose.yml")
    env = ENV_EXAMPLE.read_text(encoding="utf-8") + "\nAUTOPACK_API_KEY=compose-config-test\n"
    (tmp_path / ".env").write_text(env, encoding="utf-8")
    result = subprocess.run(
        [docker, "compose", "config", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (tmp_path / ".env").write_text(ENV_EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    missing_key = subprocess.run(
        [docker, "compose", "config", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing_key.returncode != 0
    assert "AUTOPACK_API_KEY" in missing_key.stderr


def test_guide_container_names(compose: dict[str, Any]) -> None:
    for service, container in GUIDE_CONTAINERS.items():
        assert f"{compose['name']}-{service}-1" == container
        assert "container_name" not in compose["services"][service]


def test_worker_scales_out_beside_the_backend(services: dict[str, dict[str, Any]]) -> None:
    """`docker compose up --scale worker=N` (docs/workers.md): the backend's image running
    `autopack worker`, with nothing that two replicas could not both have, sharing the runs
    volume with the backend; both set the workers backend, so the API enqueues and only the
    workers execute."""
    worker, backend = services[WORKER], services["backend"]
    assert worker["build"] == backend["build"], "the backend's image (x-backend-build)"
    assert worker["command"] == ["autopack", "worker"]
    # A fixed container name or a published host port would make a second replica fail.
    assert "container_name" not in worker
    assert "ports" not in worker and "expose" not in worker
    assert "replicas" not in worker.get("deploy", {}), "scaled with --scale, not pinned"
    # Runs move between workers: each finds a run's workspace where the others left it, and the
    # API reads the artifacts from the same place.
    assert "runs:/app/.autonomous_runs" in worker["volumes"]
    assert "runs:/app/.autonomous_runs" in backend["volumes"]
    for name in ("backend", WORKER):
        environment = services[name]["environment"]
        assert environment["AUTOPACK_RUNS_DIR"] == "/app/.autonomous_runs", name
        assert environment["AUTOPACK_EXECUTOR_BACKEND"] == "workers", name
        assert Settings(executor_backend=environment["AUTOPACK_EXECUTOR_BACKEND"]).uses_workers
    # Qdrant's local mode lets one process at a time open the memory: the workers need the server.
    assert worker["environment"]["AUTOPACK_QDRANT_HOST"] == "qdrant"
    assert worker.get("init") is True, "reaps the test commands' processes, forwards SIGTERM"
    assert worker.get("restart") == "unless-stopped"
    # The image's HEALTHCHECK asks the API on port 8000, which a worker does not serve.
    assert worker.get("healthcheck") == {"disable": True}


def test_worker_gets_its_shutdown_grace(services: dict[str, dict[str, Any]]) -> None:
    """Docker kills a container 10 s after SIGTERM unless told otherwise; a worker first waits
    up to AUTOPACK_WORKER_SHUTDOWN_SECONDS for the phases in flight."""
    grace = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(services[WORKER].get("stop_grace_period")))
    assert grace and any(grace.groups()), services[WORKER].get("stop_grace_period")
    seconds = int(grace[1] or 0) * 60 + int(grace[2] or 0)
    shutdown = Settings.model_fields["worker_shutdown_seconds"].default
    assert seconds > shutdown + 5, (seconds, shutdown)
