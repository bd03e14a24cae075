"""Benchmark: ``GET /api/runs/{id}`` for a run of 50 phases under 20 concurrent clients.

Autopack's API and a bare FastAPI app returning the same JSON body (``bench/bare_app.py``) are
both served by uvicorn in subprocesses and loaded alternately, in the same run, from the same
client. The figures are the latency percentiles of each and their ratio, autopack / bare; the
issue's target is a ratio of at most 3x. Timings are reported, never asserted: the exit status
is non-zero only when the benchmark itself cannot run (a server does not start, a request
fails while capturing the body).

    python bench/bench_get_run.py                      # sqlite, then postgresql
    python bench/bench_get_run.py --db sqlite --requests 4000

See ``bench/README.md`` for how to read the output. Results are also written as JSON to
``bench/results/get_run-<db>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from bare_app import BARE_MODES, BODY_FILE_VAR, MODE_VAR  # bench/ is the script's directory
from psycopg import sql

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

RUN_ID = "bench-run"
RUN_PATH = f"/api/runs/{RUN_ID}"
TIERS = 5
PHASES_PER_TIER = 10
TARGET_RATIO = 3.0
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
STARTUP_TIMEOUT_S = 60.0

Db = Literal["sqlite", "postgresql"]
DBS: tuple[Db, ...] = ("sqlite", "postgresql")
TargetName = Literal["bare", "autopack"]

# Variables that would change how Autopack starts; the servers get a clean copy of the
# environment without them, plus exactly what the benchmark sets.
_INHERITED_PREFIXES = ("AUTOPACK_",)
_INHERITED_NAMES = ("DATABASE_URL", "DATABASE_URL_FILE")


# --------------------------------------------------------------------------------------------
# the run that is read


_AREAS = (
    ("storage", "src/app/storage", "the storage layer"),
    ("api", "src/app/api", "the HTTP API"),
    ("auth", "src/app/auth", "authentication and API keys"),
    ("billing", "src/app/billing", "usage metering and invoices"),
    ("reports", "src/app/reports", "scheduled reports"),
)
_VERBS = (
    "Add",
    "Refactor",
    "Harden",
    "Document",
    "Test",
    "Extract",
    "Cache",
    "Validate",
    "Paginate",
    "Instrument",
)
_CATEGORIES = ("feature", "refactor", "tests", "docs", "bugfix")
_COMPLEXITIES = ("low", "medium", "high")


def make_plan(run_id: str = RUN_ID) -> dict[str, Any]:
    """A realistic plan of 5 tiers x 10 phases, as ``POST /api/runs`` takes it."""
    tiers: list[dict[str, Any]] = []
    phases: list[dict[str, Any]] = []
    for t, (area, root, what) in enumerate(_AREAS[:TIERS], start=1):
        tier_id = f"T{t}"
        tiers.append(
            {
                "tier_id": tier_id,
                "name": f"Tier {t}: {area}",
                "description": f"Everything that touches {what}, in dependency order.",
            }
        )
        for p in range(1, PHASES_PER_TIER + 1):
            n = (t - 1) * PHASES_PER_TIER + p
            verb = _VERBS[(p - 1) % len(_VERBS)]
            module = f"{root}/module_{p:02d}.py"
            phases.append(
                {
                    "phase_id": f"P{n:02d}",
                    "tier_id": tier_id,
                    "name": f"{verb} {area} module {p}",
                    "description": (
                        f"{verb} the code in {module} so that {what} behaves as the design "
                        "document says: inputs are validated at the boundary, errors carry a "
                        "precise message and a stable code, and the public functions are typed "
                        "and documented. Keep the change small and do not touch unrelated files."
                    ),
                    "task_category": _CATEGORIES[n % len(_CATEGORIES)],
                    "complexity": _COMPLEXITIES[n % len(_COMPLEXITIES)],
                    "scope": {
                        "paths": [module, f"tests/{area}/test_module_{p:02d}.py"],
                        "read_only_context": [f"{root}/__init__.py", "docs/design.md"],
                        "acceptance_criteria": [
                            f"tests/{area}/test_module_{p:02d}.py passes",
                            "no new failures in the full test suite",
                            "ruff and mypy report nothing new",
                        ],
                        "test_cmd": f"pytest -q tests/{area}",
                    },
                }
            )
    return {
        "run": {
            "run_id": run_id,
            "goal": "Bring the sample service to production quality, one module at a time.",
        },
        "tiers": tiers,
        "phases": phases,
    }


# --------------------------------------------------------------------------------------------
# servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_INHERITED_PREFIXES) and key not in _INHERITED_NAMES
    }
    env.update(extra)
    return env


class ServerError(RuntimeError):
    pass


class UvicornServer:
    """One uvicorn subprocess on a free loopback port; its output goes to a log file that is
    shown when it fails to start."""

    def __init__(
        self, name: str, app_args: Sequence[str], env: dict[str, str], workdir: Path
    ) -> None:
        self.name = name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{name}.log"
        self._command = [
            sys.executable,
            "-m",
            "uvicorn",
            *app_args,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        self._env = env
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self._command,
                env=self._env,
                cwd=self._workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        with httpx.Client(base_url=self.base_url, timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    raise ServerError(f"{self.name} server exited at start-up:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/health").status_code == 200:
                        return
                time.sleep(0.1)
        raise ServerError(
            f"{self.name} server not healthy after {STARTUP_TIMEOUT_S:g} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> UvicornServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def throwaway_postgres(admin_url: str) -> Iterator[str]:
    """Create an empty database next to ``admin_url``'s, yield its URL, drop it at the end."""
    name = f"autopack_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urlsplit(admin_url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# --------------------------------------------------------------------------------------------
# load


@dataclass
class Stats:
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    throughput_rps: float
    wall_s: float
    rounds_p50_ms: list[float] = field(default_factory=list)


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of sorted values, interpolated linearly between ranks."""
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Batch:
    latencies_ns: list[int]
    errors: int
    wall_s: float


class Target:
    """One server under load, with one keep-alive ``httpx.Client`` per concurrent client."""

    def __init__(self, name: TargetName, base_url: str, concurrency: int) -> None:
        self.name = name
        self.clients = [
            httpx.Client(
                base_url=base_url,
                timeout=30.0,
                trust_env=False,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )
            for _ in range(concurrency)
        ]
        self.expected_size = -1
        self.batches: list[Batch] = []

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def load(self, pool: ThreadPoolExecutor, requests: int) -> Batch:
        """``requests`` GETs spread over the clients, each client issuing its next request as
        soon as the previous one returns (closed loop) until the total is reached."""
        counter = itertools.count()
        lock = threading.Lock()
        start = threading.Barrier(len(self.clients) + 1)

        def client_loop(client: httpx.Client) -> tuple[list[int], int]:
            latencies: list[int] = []
            errors = 0
            start.wait()
            while True:
                with lock:
                    if next(counter) >= requests:
                        break
                began = time.perf_counter_ns()
                try:
                    response = client.get(RUN_PATH)
                    ok = response.status_code == 200 and len(response.content) == (
                        self.expected_size
                    )
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter_ns() - began)
                errors += not ok
            return latencies, errors

        futures = [pool.submit(client_loop, client) for client in self.clients]
        start.wait()
        began = time.perf_counter()
        outcomes = [future.result() for future in futures]
        wall_s = time.perf_counter() - began
        return Batch(
            latencies_ns=[ns for latencies, _ in outcomes for ns in latencies],
            errors=sum(errors for _, errors in outcomes),
            wall_s=wall_s,
        )

    def stats(self) -> Stats:
        ordered = sorted(ns / 1e6 for batch in self.batches for ns in batch.latencies_ns)
        wall_s = sum(batch.wall_s for batch in self.batches)
        return Stats(
            requests=len(ordered),
            errors=sum(batch.errors for batch in self.batches),
            p50_ms=percentile(ordered, 50),
            p99_ms=percentile(ordered, 99),
            mean_ms=statistics.fmean(ordered) if ordered else math.nan,
            min_ms=ordered[0] if ordered else math.nan,
            max_ms=ordered[-1] if ordered else math.nan,
            throughput_rps=len(ordered) / wall_s if wall_s else math.nan,
            wall_s=wall_s,
            rounds_p50_ms=[
                percentile(sorted(ns / 1e6 for ns in batch.latencies_ns), 50)
                for batch in self.batches
            ],
        )


def split(total: int, parts: int) -> list[int]:
    base, rest = divmod(total, parts)
    return [base + (1 if i < rest else 0) for i in range(parts)]


# --------------------------------------------------------------------------------------------
# one database


@dataclass
class Options:
    requests: int
    concurrency: int
    warmup: int
    rounds: int
    bare_mode: str
    pg_url: str


def capture_body(base_url: str) -> bytes:
    """Create the 50-phase run and read it once: the body every later GET must return."""
    with httpx.Client(base_url=base_url, timeout=30.0, trust_env=False) as client:
        created = client.post("/api/runs", json=make_plan())
        if created.status_code != 201:
            raise ServerError(f"POST /api/runs: {created.status_code} {created.text[:500]}")
        response = client.get(RUN_PATH)
        if response.status_code != 200:
            raise ServerError(f"GET {RUN_PATH}: {response.status_code} {response.text[:500]}")
    phases = sum(len(tier["phases"]) for tier in response.json()["tiers"])
    if phases != TIERS * PHASES_PER_TIER:
        raise ServerError(f"the run has {phases} phases, expected {TIERS * PHASES_PER_TIER}")
    return response.content


def first_body(base_url: str) -> bytes:
    with httpx.Client(base_url=base_url, timeout=30.0, trust_env=False) as client:
        response = client.get(RUN_PATH)
        response.raise_for_status()
        return response.content


def bench_db(db: Db, options: Options, workdir: Path) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        if db == "postgresql":
            database_url = stack.enter_context(throwaway_postgres(options.pg_url))
            autopack_env = clean_env({"DATABASE_URL": database_url})
        else:
            autopack_env = clean_env({"AUTOPACK_RUNS_DIR": str(workdir / "runs")})
        autopack_env["AUTOPACK_DB_BOOTSTRAP"] = "1"

        autopack_server = stack.enter_context(
            UvicornServer("autopack", ["autopack.main:app"], autopack_env, workdir)
        )
        body = capture_body(autopack_server.base_url)
        body_file = workdir / "body.json"
        body_file.write_bytes(body)

        bare_env = clean_env({BODY_FILE_VAR: str(body_file), MODE_VAR: options.bare_mode})
        bare_server = stack.enter_context(
            UvicornServer(
                "bare",
                ["--factory", "bare_app:app_from_env", "--app-dir", str(BENCH_DIR)],
                bare_env,
                workdir,
            )
        )
        bare_body = first_body(bare_server.base_url)
        if json.loads(bare_body) != json.loads(body):
            raise ServerError("the bare app does not return the same document as Autopack")

        bare = Target("bare", bare_server.base_url, options.concurrency)
        stack.callback(bare.close)
        autopack = Target("autopack", autopack_server.base_url, options.concurrency)
        stack.callback(autopack.close)
        bare.expected_size = len(bare_body)
        autopack.expected_size = len(body)

        pool = stack.enter_context(
            ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="client")
        )
        for target in (bare, autopack):
            if options.warmup:
                target.load(pool, options.warmup)
        # ABBA order: bare, autopack, autopack, bare, ... so that slow drift (CPU frequency,
        # caches, the database's own state) weighs on both targets alike.
        for index, requests in enumerate(split(options.requests, options.rounds)):
            order = (bare, autopack) if index % 2 == 0 else (autopack, bare)
            for target in order:
                target.batches.append(target.load(pool, requests))

        bare_stats = bare.stats()
        autopack_stats = autopack.stats()
    ratio_p50 = autopack_stats.p50_ms / bare_stats.p50_ms
    ratio_p99 = autopack_stats.p99_ms / bare_stats.p99_ms
    return {
        "benchmark": "get_run",
        "db": db,
        "endpoint": "GET /api/runs/{id}",
        "phases": TIERS * PHASES_PER_TIER,
        "tiers": TIERS,
        "concurrency": options.concurrency,
        "requests_per_target": options.requests,
        "warmup_per_target": options.warmup,
        "rounds": options.rounds,
        "bare_mode": options.bare_mode,
        "body_bytes": {"autopack": len(body), "bare": len(bare_body)},
        "bare": asdict(bare_stats),
        "autopack": asdict(autopack_stats),
        "ratio": {"p50": ratio_p50, "p99": ratio_p99},
        "target_ratio": TARGET_RATIO,
        "target_met": ratio_p50 <= TARGET_RATIO and ratio_p99 <= TARGET_RATIO,
        "environment": environment(),
    }


# --------------------------------------------------------------------------------------------
# reporting


def environment() -> dict[str, Any]:
    versions: dict[str, str] = {}
    for package in ("autopack", "fastapi", "starlette", "pydantic", "sqlalchemy", "uvicorn"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    versions["httpx"] = httpx.__version__
    versions["psycopg"] = psycopg.__version__
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "packages": versions,
    }


def git_commit() -> str | None:
    """HEAD, with ``+dirty`` when tracked files differ from it (the figures are then of the
    working tree, not of that commit)."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        head = subprocess.run(
            [git, "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        changes = subprocess.run(
            [git, "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head}+dirty" if head and changes else head or None


def render(result: dict[str, Any]) -> str:
    sizes = result["body_bytes"]
    lines = [
        f"GET /api/runs/{{id}}  db={result['db']}  {result['phases']} phases  "
        f"{result['concurrency']} clients  {result['requests_per_target']} requests/target "
        f"({result['rounds']} rounds, {result['warmup_per_target']} warm-up)  "
        f"body {sizes['autopack']:,} B (bare {sizes['bare']:,} B, {result['bare_mode']})",
        f"  {'target':<9} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'max ms':>8} "
        f"{'req/s':>8} {'errors':>6}",
    ]
    for name in ("bare", "autopack"):
        s = result[name]
        lines.append(
            f"  {name:<9} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} {s['mean_ms']:>8.2f} "
            f"{s['max_ms']:>8.2f} {s['throughput_rps']:>8.0f} {s['errors']:>6}"
        )
    ratio = result["ratio"]
    verdict = "met" if result["target_met"] else "NOT met"
    lines.append(
        f"  ratio autopack/bare: p50 {ratio['p50']:.2f}x  p99 {ratio['p99']:.2f}x  "
        f"(target <= {result['target_ratio']:g}x: {verdict})"
    )
    return "\n".join(lines)


def write_result(result: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"get_run-{result['db']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# CLI


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return number


def non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return number


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="GET /api/runs/{id} (50 phases) under concurrent load, against a bare "
        "FastAPI endpoint returning the same JSON, both behind uvicorn.",
    )
    parser.add_argument(
        "--db",
        choices=[*DBS, "both"],
        default="both",
        help="database behind Autopack (default: both, one after the other)",
    )
    parser.add_argument(
        "--requests", type=positive, default=2000, help="measured requests per target"
    )
    parser.add_argument("--concurrency", type=positive, default=20, help="concurrent clients")
    parser.add_argument(
        "--warmup", type=non_negative, default=200, help="unmeasured requests per target first"
    )
    parser.add_argument(
        "--rounds",
        type=positive,
        default=4,
        help="alternating rounds the measured requests are split into",
    )
    parser.add_argument(
        "--bare-mode",
        choices=BARE_MODES,
        default="jsonresponse",
        help="how the baseline returns the body (see bench/bare_app.py)",
    )
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help="admin URL of a PostgreSQL server; a throwaway database is created next to it",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = Options(
        requests=args.requests,
        concurrency=args.concurrency,
        warmup=args.warmup,
        rounds=min(args.rounds, args.requests),
        bare_mode=args.bare_mode,
        pg_url=args.pg_url,
    )
    dbs: tuple[Db, ...] = DBS if args.db == "both" else (cast(Db, args.db),)
    failed = False
    for db in dbs:
        with tempfile.TemporaryDirectory(prefix=f"autopack-bench-{db}-") as tmp:
            try:
                result = bench_db(db, options, Path(tmp))
            except (ServerError, psycopg.Error, httpx.HTTPError) as exc:
                print(f"db={db}: benchmark could not run: {exc}", file=sys.stderr)
                failed = True
                continue
        print(render(result))
        print(f"  -> {write_result(result).relative_to(REPO_ROOT)}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
