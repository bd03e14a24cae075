"""The backend image (``Dockerfile``, stage ``backend``), built and run without Docker.

The image is rebuilt here as Docker would build it: the build context is the repository filtered
by ``.dockerignore`` (Docker's matching rules, ``tests/deploy/support.py``), the stage's COPY
lines lay it out under a temporary ``/app``, its RUN line that writes the ``autopack`` wrapper
is run (with the path moved into the temporary root), and its ``pip install -r
requirements.txt`` goes into a fresh virtualenv: nothing of the development environment, and no
install of the project itself. Then, in the image's environment (its ENV lines, its WORKDIR, its
PATH): against an empty PostgreSQL database the image's CMD must refuse to start, naming
``autopack db upgrade``; the wrapper's ``autopack db upgrade`` must migrate; the CMD must then
serve ``/health``, which the HEALTHCHECK command (as written in the Dockerfile) must accept, and
must reject once the server is gone.

Not covered without Docker: the base image itself (its Python is this machine's 3.11), apt's
git, and the non-root user (these tests may run as root).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from packaging.utils import canonicalize_name

from tests.conftest import create_pg_database, drop_pg_database
from tests.deploy.support import (
    DOCKERFILE,
    DOCKERIGNORE,
    FRONTEND_DOCKERFILE,
    REPO,
    DockerIgnore,
    Stage,
    context_files,
    copy_sources,
    parse_dockerfile,
    read_ignore_lines,
    stage_named,
)

STAGE = "backend"
WRAPPER = "/usr/local/bin/autopack"
# What `pip install -r requirements.txt` may take on the first run (pip's cache is cold).
INSTALL_TIMEOUT_SECONDS = 900
STARTUP_SECONDS = 60


def backend_stage() -> Stage:
    return stage_named(parse_dockerfile(DOCKERFILE), STAGE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the Dockerfile, as written ----------------------------------------------------------------


def test_base_image_is_a_pinned_python_311_slim() -> None:
    stage = backend_stage()
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", stage.base), (
        f"the backend stage starts FROM {stage.base}: pin a patch release of Python 3.11 on a "
        "named Debian release (python:3.11.N-slim-bookworm)"
    )


def test_environment_and_layout() -> None:
    stage = backend_stage()
    env = stage.env()
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert env.get("PYTHONPATH") == "/app/src"
    assert env.get("AUTOPACK_RUNS_DIR") == "/app/.autonomous_runs"
    workdir = stage.last("WORKDIR")
    assert workdir is not None and workdir.args == "/app"
    expose = stage.last("EXPOSE")
    assert expose is not None and expose.args == "8000"


def test_dependencies_are_installed_before_the_sources_are_copied() -> None:
    """Layer caching: the pip layer must not depend on the sources."""
    stage = backend_stage()
    keywords = [(item.keyword, item.args) for item in stage.instructions]
    pip_index = next(i for i, (kw, args) in enumerate(keywords) if "pip install" in args)
    copies = [(i, args) for i, (kw, args) in enumerate(keywords) if kw == "COPY"]
    assert copies, "no COPY in the backend stage"
    requirements = [i for i, args in copies if args.split()[0] == "requirements.txt"]
    sources = [i for i, args in copies if args.split()[0].startswith("src")]
    assert requirements and sources, copies
    assert requirements[0] < pip_index < sources[0], (
        "COPY requirements.txt, then pip install, then COPY the sources"
    )
    pip_args = keywords[pip_index][1]
    assert "--no-cache-dir" in pip_args
    assert "-r /app/requirements.txt" in pip_args or "-r requirements.txt" in pip_args
    assert not re.search(r"pip install[^&]*(\s-e\s|\s\.(\s|$))", pip_args), (
        "the image must not pip-install the project (README.md is not in the context)"
    )


def test_git_is_installed_without_recommends_and_apt_lists_are_cleaned() -> None:
    runs = [item.args for item in backend_stage().all("RUN")]
    apt = [args for args in runs if "apt-get install" in args]
    assert len(apt) == 1, runs
    assert re.search(r"apt-get install\b.*--no-install-recommends.*\bgit\b", apt[0]), apt[0]
    assert "apt-get update" in apt[0] and "rm -rf /var/lib/apt/lists/*" in apt[0], apt[0]


def test_runs_as_a_non_root_user_owning_the_runs_directory() -> None:
    stage = backend_stage()
    user = stage.last("USER")
    assert user is not None and user.args not in ("root", "0", "0:0"), "USER must not be root"
    name = user.args.split(":")[0]
    runs = " ".join(item.args for item in stage.all("RUN"))
    assert re.search(rf"useradd\b[^&]*\b{name}\b", runs), f"no useradd for {name}"
    assert re.search(rf"chown\b[^&]*\b{name}\b[^&]*/app/\.autonomous_runs", runs), (
        f"/app/.autonomous_runs must belong to {name}: the runs volume is mounted there"
    )
    # USER comes after every RUN: root installs, the user only runs.
    last_run = max(item.line for item in stage.all("RUN"))
    assert user.line > last_run


def test_healthcheck_and_command() -> None:
    stage = backend_stage()
    healthcheck = stage.last("HEALTHCHECK")
    assert healthcheck is not None
    flags, rest = healthcheck.flags_and_rest()
    assert {"interval", "timeout", "start-period", "retries"} <= set(flags), flags
    assert rest.startswith("CMD ")
    argv = json.loads(rest[len("CMD ") :])
    assert argv[0] == "python", "the slim image has no curl or wget: the check is Python"
    assert "curl" not in rest and "wget" not in rest
    assert "http://127.0.0.1:8000/health" in argv[-1]
    cmd = stage.last("CMD")
    assert cmd is not None
    assert cmd.exec_form() == [
        "uvicorn",
        "autopack.main:app",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]


# --- the build context ------------------------------------------------------------------------


def test_dockerignore_matcher_follows_dockers_rules() -> None:
    """A few of moby/patternmatcher's own cases, and the ways .dockerignore differs from
    .gitignore."""
    ignore = DockerIgnore.from_text(
        "# comment\n"
        "*.md\n"
        "docs/\n"
        "__pycache__/\n"
        "**/*.py[cod]\n"
        "  spaced.txt  \n"
        "/rooted\n"
        "a/**/z\n"
        "keep/**\n"
        "!keep/this.txt\n"
        "**/.env\n"
        "x?y\n"
        "#not-a-comment-only-at-start\n"
    )
    # Root-anchored: `*.md` and `__pycache__/` do not reach into subdirectories.
    assert ignore.excludes("README.md")
    assert not ignore.excludes("pkg/README.md")
    assert ignore.excludes("__pycache__/m.pyc")
    assert ignore.excludes("__pycache__/x.txt")
    assert not ignore.excludes("pkg/__pycache__/x.txt")
    # A directory pattern excludes everything below it.
    assert ignore.excludes("docs/guide/intro.txt")
    # `**` reaches every depth, `**/x` matches x at the root too.
    assert ignore.excludes("a.pyc") and ignore.excludes("pkg/sub/a.pyo")
    assert not ignore.excludes("pkg/a.py")
    assert ignore.excludes(".env") and ignore.excludes("deep/er/.env")
    assert ignore.excludes("a/z") and ignore.excludes("a/b/c/z")
    assert not ignore.excludes("b/z")
    # Leading and trailing spaces are trimmed; a leading slash is the context root.
    assert ignore.excludes("spaced.txt")
    assert ignore.excludes("rooted/file")
    # The last matching line wins: `!` re-includes.
    assert ignore.excludes("keep/other.txt")
    assert not ignore.excludes("keep/this.txt")
    # `?` is one character other than `/`.
    assert ignore.excludes("xzy") and not ignore.excludes("x/y")
    assert not ignore.excludes("other.txt")
    assert read_ignore_lines("\ufeff# bom comment\n!  spaced \n") == ["!spaced"]


def test_dockerignore_keeps_what_the_images_copy_and_drops_what_must_never_enter() -> None:
    ignore = DockerIgnore.from_file()
    must_leave_out = [
        ".env",
        ".env.local",
        "deploy/.env",
        ".venv/bin/python",
        "venv/bin/python",
        "node_modules/react/index.js",
        ".git/HEAD",
        "dist/index.html",
        "README.md",
        "docs/deployment.md",
        ".autonomous_runs/autopack.db",
        "server.log",
        "src/autopack/x.log",
        "src/autopack/__pycache__/main.cpython-311.pyc",
        "src/autopack/main.pyc",
        "src/autopack.egg-info/PKG-INFO",
        ".pytest_cache/v/cache",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/CACHEDIR.TAG",
        "test-results/x.png",
        "e2e-screenshots/runs.png",
        "bench/results/run.json",
        "Dockerfile",
        "docker-compose.yml",
        "tsconfig.tsbuildinfo",
    ]
    kept = [path for path in must_leave_out if not ignore.excludes(path)]
    assert not kept, f".dockerignore lets these into a build context: {kept}"
    # What the two Dockerfiles copy (and the package data the backend needs).
    must_keep = [
        "requirements.txt",
        "src/autopack/main.py",
        "src/autopack/db/migrations/env.py",
        "src/autopack/demo/project/README.md",
        "package.json",
        "package-lock.json",
        "index.html",
        "vite.config.ts",
        "tsconfig.json",
        "tsconfig.node.json",
        "public/favicon.svg",
        "src/frontend/main.tsx",
        "nginx.conf",
    ]
    dropped = [path for path in must_keep if ignore.excludes(path)]
    assert not dropped, f".dockerignore leaves out what an image needs: {dropped}"


@pytest.mark.parametrize(
    "dockerfile", [DOCKERFILE, FRONTEND_DOCKERFILE], ids=lambda path: path.name
)
def test_every_copy_source_is_in_the_build_context(dockerfile: Path) -> None:
    if not dockerfile.is_file():
        pytest.fail(f"{dockerfile.name} is missing (docker-compose.yml builds it)")
    context = context_files(REPO, DockerIgnore.from_file())
    missing = []
    for stage in parse_dockerfile(dockerfile):
        for source in copy_sources(stage):
            source = source.rstrip("/").removeprefix("./")
            if "*" in source or "?" in source:
                pattern = re.compile(re.escape(source).replace(r"\*", "[^/]*").replace(r"\?", "."))
                present = any(pattern.fullmatch(path) for path in context)
                # `COPY package-lock.json* ./`: a wildcard may match nothing on purpose.
                present = present or source.endswith("*")
            else:
                present = source in context or any(p.startswith(source + "/") for p in context)
            if not present:
                missing.append(source)
    assert not missing, (
        f"{dockerfile.name} copies {missing}, which the build context does not have "
        f"(excluded by {DOCKERIGNORE.name}, or missing)"
    )


# --- the image, emulated ----------------------------------------------------------------------


@dataclass
class EmulatedImage:
    root: Path  # stands for the image's /
    venv: Path  # the Python environment pip installed into
    env: dict[str, str]
    install_seconds: float

    @property
    def app(self) -> Path:
        return self.root / "app"

    def path_in_image(self, path: str) -> Path:
        assert path.startswith("/"), path
        return self.root / path.lstrip("/")


def _emulate_copy(stage: Stage, context: set[str], image_root: Path) -> list[str]:
    """Carry out the stage's COPY lines from the filtered context; returns the sources."""
    workdir = "/"
    done: list[str] = []
    for item in stage.instructions:
        if item.keyword == "WORKDIR":
            workdir = item.args if item.args.startswith("/") else f"{workdir}/{item.args}"
            continue
        if item.keyword == "ADD":
            pytest.fail(f"Dockerfile:{item.line}: ADD is not emulated here; use COPY")
        if item.keyword != "COPY":
            continue
        flags, rest = item.flags_and_rest()
        assert set(flags) <= {"chown", "chmod", "link"}, (
            f"Dockerfile:{item.line}: COPY flags {sorted(flags)} are not emulated here"
        )
        *sources, dest = json.loads(rest) if rest.startswith("[") else rest.split()
        assert len(sources) == 1, f"Dockerfile:{item.line}: one source per COPY, please"
        source = sources[0].rstrip("/").removeprefix("./")
        assert not any(ch in source for ch in "*?["), f"Dockerfile:{item.line}: no wildcards"
        target_path = dest if dest.startswith("/") else f"{workdir.rstrip('/')}/{dest}"
        target = image_root / target_path.lstrip("/")
        if source in context:  # a file
            if dest.endswith("/"):
                target = target / Path(source).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / source, target)
        else:  # a directory: its (filtered) contents go into the destination
            below = sorted(path for path in context if path.startswith(source + "/"))
            assert below, f"Dockerfile:{item.line}: COPY {source}: not in the build context"
            for path in below:
                destination = target / path[len(source) + 1 :]
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / path, destination, follow_symlinks=False)
        done.append(source)
    return done


def _image_env(stage: Stage, root: Path, venv: Path, home: Path) -> dict[str, str]:
    """The container's environment: the stage's ENV (paths under /app moved into ``root``), the
    image's PATH order (/usr/local/bin first), and nothing of this process's Autopack settings."""
    env = {
        "PATH": os.pathsep.join([str(root / "usr/local/bin"), str(venv / "bin"), "/usr/bin:/bin"]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }
    for key, value in stage.env().items():
        env[key] = str(root) + value if value.startswith("/app") else value
    # The machine's pip configuration (its package index) for the install step.
    for key, value in os.environ.items():
        if key.startswith("PIP_"):
            env[key] = value
    return env


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedImage]:
    stage = backend_stage()
    base = tmp_path_factory.mktemp("backend-image")
    root = base / "root"
    root.mkdir()
    context = context_files(REPO, DockerIgnore.from_file())
    copied = _emulate_copy(stage, context, root)
    assert copied == ["requirements.txt", "src/autopack"], (
        f"the backend stage copies {copied}; this test emulates requirements.txt and "
        "src/autopack: update it with the Dockerfile"
    )

    # The runs directory (the Dockerfile's RUN line with useradd creates it; not run here).
    (root / "app" / ".autonomous_runs").mkdir(parents=True)

    # The RUN line that writes the wrapper, run as written but inside the temporary root.
    wrapper_runs = [item for item in stage.all("RUN") if WRAPPER in item.args]
    assert len(wrapper_runs) == 1, f"one RUN line must write {WRAPPER}"
    (root / "usr/local/bin").mkdir(parents=True)
    script = wrapper_runs[0].args.replace(WRAPPER, str(root / WRAPPER.lstrip("/")))
    subprocess.run(["sh", "-c", script], check=True, timeout=30)

    # A fresh virtualenv from the base interpreter (not this one's packages), and the stage's
    # pip install of requirements.txt, cache allowed (the image's --no-cache-dir only keeps the
    # cache out of the layer).
    venv = base / "venv"
    home = base / "home"
    home.mkdir()
    env = _image_env(stage, root, venv, home)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    started = time.monotonic()
    installed = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(root / "app" / "requirements.txt"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_SECONDS,
        check=False,
    )
    install_seconds = time.monotonic() - started
    assert installed.returncode == 0, f"pip install -r requirements.txt failed:\n{installed.stderr}"
    print(f"\nfresh virtualenv: pip install -r requirements.txt took {install_seconds:.1f} s")
    yield EmulatedImage(root=root, venv=venv, env=env, install_seconds=install_seconds)


def _pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def _run(image: EmulatedImage, argv: list[str], **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=image.app,
        env={**image.env, **extra},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _healthcheck_argv(port: int) -> list[str]:
    healthcheck = backend_stage().last("HEALTHCHECK")
    assert healthcheck is not None
    _flags, rest = healthcheck.flags_and_rest()
    argv: list[str] = json.loads(rest[len("CMD ") :])
    assert any("127.0.0.1:8000" in word for word in argv)
    return [word.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for word in argv]


def _server_argv(port: int) -> list[str]:
    cmd = backend_stage().last("CMD")
    assert cmd is not None
    argv = cmd.exec_form()
    assert argv is not None
    # Loopback here rather than every interface, and a free port.
    argv = [word.replace("0.0.0.0", "127.0.0.1") for word in argv]
    argv[argv.index("--port") + 1] = str(port)
    return argv


@pytest.mark.postgres
def test_the_image_runs_as_the_guide_says(image: EmulatedImage) -> None:
    """Files, packages, then the guardrail -> `autopack db upgrade` -> serve -> HEALTHCHECK."""
    # --- what is in the image: the COPY lines' output, nothing else ---
    files = sorted(
        path.relative_to(image.app).as_posix() for path in image.app.rglob("*") if path.is_file()
    )
    assert "requirements.txt" in files and "src/autopack/main.py" in files
    assert "src/autopack/db/migrations/env.py" in files, "the migrations are package data"
    assert "src/autopack/demo/project/README.md" in files, "the demo project is package data"
    strays = [path for path in files if path != "requirements.txt" and not path.startswith("src/")]
    assert not strays, f"files outside the COPY lines: {strays}"
    forbidden = re.compile(
        r"(^|/)(\.env(\..*)?|\.venv|venv|node_modules|\.git|docs|__pycache__|dist)(/|$)"
        r"|\.py[cod]$|\.log$|\.egg-info(/|$)|^[^/]*\.md$"
    )
    found = [path for path in files if forbidden.search(path)]
    assert not found, f"the image holds what .dockerignore must keep out: {found}"
    assert not any(path.startswith("src/frontend/") for path in files), "frontend sources"
    wrapper = image.path_in_image(WRAPPER)
    assert os.access(wrapper, os.X_OK), f"{WRAPPER} is not executable"
    assert wrapper.read_text().startswith("#!/bin/sh\n")

    # --- the packages: exactly the runtime pins, no development tool ---
    listed = _run(image, ["python", "-m", "pip", "list", "--format=json"])
    assert listed.returncode == 0, listed.stderr
    installed = {
        canonicalize_name(item["name"]): item["version"] for item in json.loads(listed.stdout)
    }
    installed = {
        name: version
        for name, version in installed.items()
        if name not in ("pip", "setuptools", "wheel")
    }
    pins = _pins(REPO / "requirements.txt")
    assert installed == pins, (
        "the fresh install differs from requirements.txt: "
        f"unpinned {sorted(set(installed) - set(pins))}, "
        f"missing {sorted(set(pins) - set(installed))}, "
        f"other versions {sorted(n for n in pins if n in installed and installed[n] != pins[n])}"
    )
    dev_only = set(_pins(REPO / "requirements-dev.txt")) - set(pins)
    assert {"mypy", "ruff", "schemathesis", "pytest-xdist", "uv"} <= dev_only
    assert not dev_only & set(installed), "development tools in the image"
    probe = _run(
        image,
        [
            "python",
            "-c",
            "import importlib.util, autopack; print(autopack.__file__); "
            "print([m for m in ('mypy', 'ruff', 'schemathesis', 'xdist') "
            "if importlib.util.find_spec(m)])",
        ],
    )
    assert probe.returncode == 0, probe.stderr
    module_file, dev_modules = probe.stdout.splitlines()
    assert Path(module_file) == image.app / "src" / "autopack" / "__init__.py", (
        "autopack must be imported from /app/src (PYTHONPATH), not from an installed copy"
    )
    assert dev_modules == "[]", dev_modules

    # --- an empty database: the CMD refuses to start, naming the fix ---
    url = create_pg_database(prefix="autopack_image")
    server: subprocess.Popen[str] | None = None
    try:
        port = free_port()
        argv = _server_argv(port)
        found = shutil.which(argv[0], path=image.env["PATH"])
        assert found is not None and Path(found).parent == image.venv / "bin", found
        started = time.monotonic()
        refused = _run(image, argv, DATABASE_URL=url)
        elapsed = time.monotonic() - started
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0, f"the API started on an empty database:\n{output}"
        assert elapsed < 30, f"the refusal took {elapsed:.1f} s"
        assert "the database has no Autopack schema" in output, output
        assert "autopack db upgrade" in output, output

        # --- the wrapper: `autopack db upgrade`, as the migrate service runs it ---
        upgraded = _run(image, ["autopack", "db", "upgrade"], DATABASE_URL=url)
        assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
        assert "created the schema" in upgraded.stdout, upgraded.stdout
        again = _run(image, ["autopack", "db", "upgrade"], DATABASE_URL=url)
        assert again.returncode == 0 and "already at revision" in again.stdout, again.stdout

        # --- the CMD serves, with the API key compose requires ---
        api_key = "image-test-key-0123456789abcdef"
        server = subprocess.Popen(
            argv,
            cwd=image.app,
            env={**image.env, "DATABASE_URL": url, "AUTOPACK_API_KEY": api_key},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        health = None
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline and server.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert server.poll() is None, server.communicate()[0]
        assert health is not None, f"no answer on /health within {STARTUP_SECONDS} s"
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "healthy"
        assert health.json()["database"]["dialect"] == "postgresql"
        assert httpx.get(f"http://127.0.0.1:{port}/api/runs", timeout=5).status_code == 401
        authorised = httpx.get(
            f"http://127.0.0.1:{port}/api/runs",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=5,
        )
        assert authorised.status_code == 200, authorised.text

        # --- the HEALTHCHECK, as written, accepts it; and rejects it once it is gone ---
        check = _healthcheck_argv(port)
        healthy = _run(image, check)
        assert healthy.returncode == 0, healthy.stderr

        server.send_signal(signal.SIGTERM)
        output_after, _ = server.communicate(timeout=30)
        # A clean shutdown: uvicorn exits 0, or (recent versions) re-raises the SIGTERM it
        # handled once the app has shut down.
        assert server.returncode in (0, -signal.SIGTERM), output_after
        assert "Application shutdown complete" in output_after, output_after
        assert "Traceback" not in output_after, output_after
        server = None
        gone = _run(image, check)
        assert gone.returncode != 0, "the HEALTHCHECK passed with no server"
    finally:
        if server is not None and server.poll() is None:
            server.kill()
            server.communicate()
        drop_pg_database(url)
