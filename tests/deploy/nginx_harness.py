"""The frontend image's nginx, run here: the repository's ``nginx.conf`` served by the real nginx
(Debian's package; ``scripts/test`` installs it) in front of a real uvicorn backend.

The image installs ``nginx.conf`` as ``/etc/nginx/conf.d/default.conf``, included by the image's
main configuration inside ``http {}``. Here a main configuration of our own (pid, logs and temp
files in a temporary directory, ``/etc/nginx/mime.types``) includes a copy of the file in which
exactly three things change, each asserted to occur exactly once, mapping the container's names
onto this machine:

- ``backend:8000`` (the compose service) -> ``127.0.0.1:<port of the uvicorn started here>``;
- ``listen 80;`` -> ``listen 127.0.0.1:<free port>;``;
- ``root /usr/share/nginx/html;`` -> the repository's ``dist/`` (built by ``npm run build`` when
  missing).

Everything else (headers, maps, locations, proxy settings) is the file as shipped.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.cli.test_cli_console_script import free_port, process_env

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "nginx.conf"
DIST = REPO / "dist"
CONTAINER_BACKEND = "backend:8000"
CONTAINER_LISTEN = "listen 80;"
CONTAINER_ROOT = "root /usr/share/nginx/html;"
MIME_TYPES = Path("/etc/nginx/mime.types")
STARTUP_SECONDS = 30
# The backend image's command (the guide's `uvicorn autopack.main:app`), in this environment.
UVICORN = [sys.executable, "-m", "uvicorn", "autopack.main:app"]


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found is None and Path("/usr/sbin/nginx").is_file():
        found = "/usr/sbin/nginx"
    return found


def require_nginx() -> str:
    """The nginx binary, or a skip saying how to get it."""
    binary = nginx_binary()
    if binary is None or not MIME_TYPES.is_file():
        pytest.skip("nginx is not installed (apt-get install nginx; scripts/test does as root)")
    return binary


def ensure_dist() -> Path:
    """The built dashboard: the repository's ``dist/`` (``scripts/test`` builds it before
    pytest), else built here once; a lock keeps parallel workers from building it together."""
    if (DIST / "index.html").is_file():
        return DIST
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("dist/ is not built and npm is missing: run `npm ci && npm run build`")
    with (Path(tempfile.gettempdir()) / "autopack-dist-build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (DIST / "index.html").is_file():
            if not (REPO / "node_modules").is_dir():
                npm_ci = [npm, "ci", "--no-audit", "--no-fund"]
                subprocess.run(npm_ci, cwd=REPO, check=True, timeout=600)
            subprocess.run([npm, "run", "build"], cwd=REPO, check=True, timeout=600)
    assert (DIST / "index.html").is_file()
    return DIST


def replace_once(text: str, old: str, new: str) -> str:
    count = text.count(old)
    assert count == 1, f"nginx.conf must contain {old!r} exactly once (found {count})"
    return text.replace(old, new)


def site_config(text: str, backend_port: int, listen_port: int, root: Path) -> str:
    """``nginx.conf`` with the container's names replaced by this machine's (the only changes)."""
    text = replace_once(text, CONTAINER_BACKEND, f"127.0.0.1:{backend_port}")
    text = replace_once(text, CONTAINER_LISTEN, f"listen 127.0.0.1:{listen_port};")
    return replace_once(text, CONTAINER_ROOT, f"root {root};")


def main_config(directory: Path, site: Path) -> str:
    """What the image's /etc/nginx/nginx.conf provides, with every path under ``directory``."""
    # Workers run as an unprivileged user by default and could not read pytest's private
    # temporary directories; a master running as root keeps them root (elsewhere ignored).
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}worker_processes 1;\n"
        f"pid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} notice;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"    include {MIME_TYPES};\n"
        "    default_type application/octet-stream;\n"
        "    sendfile on;\n"
        # nginx's own request id on each line: the one it sends when the caller sent none.
        "    log_format harness '$request_id $status \"$request\"';\n"
        f"    access_log {directory / 'access.log'} harness;\n"
        f"{temp}\n"
        f"    include {site};\n"
        "}\n"
    )


def tail(path: Path, offset: int = 0) -> str:
    if not path.is_file():
        return ""
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode("utf-8", "replace")


def size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def wait_until_answering(
    url: str, process: subprocess.Popen[bytes], logs: Callable[[], str]
) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url}: the process exited ({process.returncode})\n{logs()}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    stop(process)
    pytest.fail(f"{url} did not answer within {STARTUP_SECONDS} s\n{logs()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung shutdown
            process.kill()
            process.wait()


@dataclass
class Backend:
    """``uvicorn autopack.main:app`` (the backend image's command) on an embedded database."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.directory / "backend.log"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        env = process_env(
            AUTOPACK_RUNS_DIR=str(self.directory / "runs"),
            AUTOPACK_EXECUTOR_THREADS="0",
            # One JSON object a line: the access log's fields (client, request_id) are read.
            AUTOPACK_LOG_FORMAT="json",
        )
        env.pop("DATABASE_URL", None)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*UVICORN, "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=self.directory,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until_answering(
            f"http://127.0.0.1:{self.port}/health", self.process, lambda: tail(self.log)
        )

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


@dataclass
class Nginx:
    """nginx running the repository's ``nginx.conf`` (as rewritten by ``site_config``)."""

    directory: Path
    backend_port: int
    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def error_log(self) -> Path:
        return self.directory / "error.log"

    @property
    def access_log(self) -> Path:
        return self.directory / "access.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = require_nginx()
        self.directory.mkdir(parents=True, exist_ok=True)
        site = self.directory / "default.conf"
        site.write_text(
            site_config(NGINX_CONF.read_text(), self.backend_port, self.port, self.root)
        )
        main = self.directory / "nginx.conf"
        main.write_text(main_config(self.directory, site))
        # -e: the error log before the configuration is read (else the compiled-in path).
        base = [binary, "-e", str(self.error_log), "-c", str(main)]
        checked = subprocess.run([*base, "-t"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, f"nginx -t failed:\n{checked.stderr}"
        self.process = subprocess.Popen(
            [*base, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until_answering(f"{self.url}/", self.process, self.logs)

    def logs(self) -> str:
        return f"--- nginx error log ---\n{tail(self.error_log)}"

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


@dataclass
class Site:
    """nginx in front of a backend: what a browser reaches at the frontend's port."""

    nginx: Nginx
    backend: Backend | None

    @property
    def url(self) -> str:
        return self.nginx.url

    def client(self, transport: httpx.BaseTransport | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, transport=transport)

    def log_offsets(self) -> tuple[int, int]:
        backend = size(self.backend.log) if self.backend is not None else 0
        return size(self.nginx.error_log), backend

    def logs_since(self, offsets: tuple[int, int]) -> str:
        text = f"--- nginx error log ---\n{tail(self.nginx.error_log, offsets[0])}"
        if self.backend is not None:
            text += f"\n--- backend log ---\n{tail(self.backend.log, offsets[1])}"
        return text

    def backend_log(self) -> str:
        assert self.backend is not None
        return tail(self.backend.log)


def start_site(directory: Path) -> Site:
    """A backend, then nginx in front of it; stop with ``stop_site``."""
    require_nginx()
    root = ensure_dist()
    backend = Backend(directory / "backend")
    backend.start()
    nginx = Nginx(directory / "nginx", backend.port, root)
    try:
        nginx.start()
    except BaseException:
        backend.stop()
        raise
    return Site(nginx, backend)


def start_site_without_backend(directory: Path) -> Site:
    """nginx whose upstream is a port nothing listens on: every proxied request is a 502."""
    require_nginx()
    nginx = Nginx(directory / "nginx", free_port(), ensure_dist())
    nginx.start()
    return Site(nginx, None)


def stop_site(site: Site) -> None:
    site.nginx.stop()
    if site.backend is not None:
        site.backend.stop()
