"""Benchmark: how `autopack worker` scales with the number of worker processes (issue 9).

N runs (default 200) of a one-phase plan are submitted at once to a PostgreSQL queue served by
1, 2 and 4 `autopack worker` processes (each ``--concurrency 1`` by default, so that the worker
count is the number of runs executed in parallel). Two workloads, which differ only in the
phase's test command:

* ``cpu``: ``python -m pytest -q``, the project's real pytest: CPU-bound (interpreter start-up
  and collection), so on a machine with few cores more workers compete for the same cores;
* ``sleep``: ``sleep 1``: the test command waits instead of computing, so what limits the
  throughput is the queue and Autopack's own work per run (git, the database), not the test.

The test command runs twice per run: once for the phase's baseline (on a checkout of the base
commit) and once after the builder's edit, which the gate judges against the baseline
(``sleep 1`` exits 0, and a command without per-test results is judged by its exit code).

Each configuration (workload, worker count) gets a throwaway database (created and dropped next
to ``--pg-url``), a fresh project and runs directory, and its own cassette: the plan is executed
once in this process with a scripted reply, recorded (exactly as ``tests/workers`` does), and
the workers replay it. The workers are started with a clean ``AUTOPACK_*`` environment and the
default heartbeat and stale times. After they have registered with the queue, a warm-up of one
run per slot is executed and waited for (unmeasured), then the N runs are submitted one after
the other (one transaction each, which defers the run's job, as the API does) and waited for.

Figures, per configuration:

* ``wall``: from just before the first submit to the last run's ``finished_at``;
* ``phases/min``: successful phases ÷ wall;
* ``scaling``: phases/min ÷ the phases/min of the first worker count (1 by default) of the same
  workload, measured in the same invocation;
* ``queue p50/p99``: per job, procrastinate's ``started`` event minus its ``deferred`` event
  (``procrastinate_events.at``). With N runs submitted at once this is mostly the backlog: the
  last job waits for almost all the others;
* ``run p50``: per job, ``started`` to ``succeeded``/``failed`` (the execution time of a run,
  which grows when workers share cores);
* ``handoff p50/p99``: per worker (only with ``--concurrency 1``), the time between the end of
  one job and the start of its next: what the queue costs a busy worker between runs.

Timings are reported, never asserted: the exit status is non-zero only when the benchmark cannot
run (a worker exits, the runs do not end in time). Runs that do not end DONE_SUCCESS are counted
and listed.

    python bench/bench_workers.py                                   # long: see bench/README.md
    python bench/bench_workers.py --runs 8 --workers 1 2 --workload sleep

Results are also written as JSON to ``bench/results/workers.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from bench_get_run import (  # bench/ is the script's directory
    DEFAULT_PG_URL,
    git_commit,
    percentile,
    positive,
)

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
# The worker harness of the tests (tests/workers/support.py) is imported from the repository root.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(1, str(REPO_ROOT))

from sqlalchemy import select, text  # noqa: E402

import tests.conftest as test_conftest  # noqa: E402
from autopack.db import migrate  # noqa: E402
from autopack.db.engine import create_db_engine  # noqa: E402
from autopack.plans.models import Plan  # noqa: E402
from autopack.runs.models import Run  # noqa: E402
from autopack.runs.states import RunState  # noqa: E402
from tests.conftest import create_pg_database, drop_pg_database, make_settings  # noqa: E402
from tests.executor.support import (  # noqa: E402
    GOOD_REPLY,
    TEST_CMD,
    make_plan,
    make_project,
    phase_spec,
)
from tests.workers.support import WorkerFarm, record_cassette  # noqa: E402

DEFAULT_JSON = BENCH_DIR / "results" / "workers.json"
VENV_BIN = Path(sys.executable).parent
WORKLOADS: dict[str, str] = {"cpu": TEST_CMD, "sleep": "sleep 1"}
REGISTER_TIMEOUT_S = 120.0


class BenchError(RuntimeError):
    """The benchmark cannot run."""


def one_phase_plan(test_cmd: str) -> Plan:
    return make_plan(phase_spec("p1", scope={"test_cmd": test_cmd}))


class BenchFarm(WorkerFarm):
    """The tests' worker farm with the default heartbeat and stale times (the tests shorten them
    to provoke takeovers; on a loaded machine short ones could cause spurious ones)."""

    def worker_env(self) -> dict[str, str]:
        env = super().worker_env()
        env.pop("AUTOPACK_HEARTBEAT_INTERVAL_SECONDS", None)
        env.pop("AUTOPACK_STALE_HEARTBEAT_SECONDS", None)
        env["AUTOPACK_LOG_LEVEL"] = "warning"
        return env

    def registered_workers(self) -> int:
        with self.sessions() as session:
            return int(session.scalar(text("SELECT count(*) FROM procrastinate_workers")) or 0)

    def stop(self, grace_seconds: float = 20) -> None:
        super().stop(grace_seconds)


@dataclass
class Result:
    workload: str
    test_cmd: str
    workers: int
    concurrency: int
    runs: int
    phases_per_run: int
    succeeded: int = 0
    failures: list[str] = field(default_factory=list)
    submit_s: float = 0.0
    wall_s: float = 0.0
    phases_per_min: float = 0.0
    scaling: float | None = None
    queue_p50_s: float = 0.0
    queue_p99_s: float = 0.0
    run_p50_s: float = 0.0
    run_p99_s: float = 0.0
    handoff_p50_ms: float | None = None
    handoff_p99_ms: float | None = None
    jobs: int = 0
    jobs_per_worker: list[int] = field(default_factory=list)


def job_times(farm: BenchFarm, run_ids: set[str]) -> list[tuple[int | None, float, float, float]]:
    """(worker id, deferred, started, ended) in epoch seconds, per job of the measured runs."""
    query = text(
        """
        SELECT j.args->>'run_id' AS run_id, j.worker_id,
               extract(epoch FROM min(e.at) FILTER (WHERE e.type = 'deferred')),
               extract(epoch FROM min(e.at) FILTER (WHERE e.type = 'started')),
               extract(epoch FROM max(e.at)
                   FILTER (WHERE e.type IN ('succeeded', 'failed', 'aborted')))
        FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id
        WHERE j.queue_name = 'runs'
        GROUP BY j.id
        """
    )
    with farm.sessions() as session:
        rows = session.execute(query).all()
    return [
        (worker, float(deferred), float(started), float(ended))
        for run_id, worker, deferred, started, ended in rows
        if run_id in run_ids and started is not None and ended is not None
    ]


def measure(
    workload: str, workers: int, concurrency: int, runs: int, timeout_s: float, keep: bool
) -> Result:
    test_cmd = WORKLOADS[workload]
    plan = one_phase_plan(test_cmd)
    result = Result(workload, test_cmd, workers, concurrency, runs, len(plan.phases))
    url = create_pg_database("autopack_bench_workers")
    tmp = tempfile.TemporaryDirectory(prefix="autopack-bench-workers-")
    root = Path(tmp.name)
    farm: BenchFarm | None = None
    try:
        make_project(root / "project")
        cassette = root / "cassette.jsonl"
        record_cassette(root, plan, cassette, replies=(GOOD_REPLY,))
        engine = create_db_engine(make_settings(url, root / "runs"))
        migrate.upgrade(engine)
        engine.dispose()
        farm = BenchFarm(root, url, plan, cassette)
        for _ in range(workers):
            farm.start_worker(concurrency=concurrency)
        farm.wait_until(
            lambda: farm is not None and farm.registered_workers() >= workers,
            REGISTER_TIMEOUT_S,
            "the workers to register",
        )
        # Warm-up, unmeasured: one run per slot (imports, first connections, git caches).
        farm.submit(workers * concurrency)
        farm.wait_all_ended(timeout=timeout_s)
        warmed = _run_ids(farm)

        start = time.time()
        run_ids = set(farm.submit(runs))
        result.submit_s = time.time() - start
        farm.wait_all_ended(timeout=timeout_s)
        if _run_ids(farm) - warmed != run_ids:
            raise BenchError("unexpected runs in the database")

        with farm.sessions() as session:
            rows = session.execute(
                select(Run.run_id, Run.state, Run.finished_at, Run.failure_reason)
            ).all()
        measured = [row for row in rows if row.run_id in run_ids]
        result.succeeded = sum(row.state is RunState.DONE_SUCCESS for row in measured)
        result.failures = [
            f"{row.run_id}: {row.state.value} {row.failure_reason or ''}".strip()
            for row in measured
            if row.state is not RunState.DONE_SUCCESS
        ]
        last = max(row.finished_at.timestamp() for row in measured if row.finished_at)
        result.wall_s = last - start
        result.phases_per_min = result.succeeded * len(plan.phases) / result.wall_s * 60

        jobs = job_times(farm, run_ids)  # before the workers stop: stopping clears worker_id
        result.jobs = len(jobs)
        queue = sorted(started - deferred for _, deferred, started, _ in jobs)
        execution = sorted(ended - started for _, _, started, ended in jobs)
        result.queue_p50_s = percentile(queue, 50)
        result.queue_p99_s = percentile(queue, 99)
        result.run_p50_s = percentile(execution, 50)
        result.run_p99_s = percentile(execution, 99)
        per_worker: dict[int | None, list[tuple[float, float]]] = {}
        for worker, _, started, ended in jobs:
            per_worker.setdefault(worker, []).append((started, ended))
        result.jobs_per_worker = sorted((len(v) for v in per_worker.values()), reverse=True)
        if concurrency == 1 and None not in per_worker:
            gaps = sorted(
                (later[0] - earlier[1]) * 1000
                for spans in per_worker.values()
                for earlier, later in zip(sorted(spans), sorted(spans)[1:], strict=False)
            )
            if gaps:
                result.handoff_p50_ms = percentile(gaps, 50)
                result.handoff_p99_ms = percentile(gaps, 99)
        return result
    except AssertionError as exc:  # the harness's wait_until: a worker died, or a timeout
        raise BenchError(str(exc)[:4000]) from None
    finally:
        if farm is not None:
            farm.stop()
        try:
            drop_pg_database(url)
        except psycopg.OperationalError as exc:
            print(f"  could not drop {url}: {exc}", file=sys.stderr)
        if keep:
            print(f"  (kept {root})", file=sys.stderr)
        else:
            tmp.cleanup()


def _run_ids(farm: BenchFarm) -> set[str]:
    with farm.sessions() as session:
        return set(session.scalars(select(Run.run_id)).all())


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(results: Sequence[Result]) -> str:
    lines = [
        "| workload | workers x conc. | runs | ok | wall s | phases/min | scaling "
        "| queue p50 s | queue p99 s | run p50 s | run p99 s | handoff p50 ms | handoff p99 ms "
        "| jobs per worker |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.workload} | {r.workers} x {r.concurrency} | {r.runs} | {r.succeeded} "
            f"| {r.wall_s:.1f} | {r.phases_per_min:.1f} | "
            f"{'-' if r.scaling is None else f'{r.scaling:.2f}x'} "
            f"| {r.queue_p50_s:.1f} | {r.queue_p99_s:.1f} | {r.run_p50_s:.2f} | {r.run_p99_s:.2f} "
            f"| {fmt(r.handoff_p50_ms)} | {fmt(r.handoff_p99_ms)} "
            f"| {'/'.join(map(str, r.jobs_per_worker))} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs", type=positive, default=200, help="measured runs per configuration"
    )
    parser.add_argument(
        "--runs-cpu", type=positive, help="measured runs for the cpu workload (default: --runs)"
    )
    parser.add_argument(
        "--runs-sleep", type=positive, help="measured runs for the sleep workload (default: --runs)"
    )
    parser.add_argument(
        "--workers", type=positive, nargs="+", default=[1, 2, 4], help="worker counts to compare"
    )
    parser.add_argument(
        "--concurrency", type=positive, default=1, help="`autopack worker --concurrency` of each"
    )
    parser.add_argument(
        "--workload", choices=sorted(WORKLOADS), nargs="+", default=["cpu", "sleep"]
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds a configuration's runs may take"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="admin URL (CREATE DATABASE)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--keep", action="store_true", help="keep the temp dirs (worker logs)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    test_conftest.PG_ADMIN_URL = args.pg_url  # read by create_pg_database / drop_pg_database
    # The plan's test command says `python`: this venv's, which has pytest (the workers get the
    # same PATH from the harness; this is for the recording run in this process).
    os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}"
    cores = os.cpu_count()
    print(
        f"autopack worker scaling: {cores} cores, workers {args.workers} x --concurrency "
        f"{args.concurrency}, one-phase plan, replayed model"
    )
    results: list[Result] = []
    started = time.monotonic()
    for workload in args.workload:
        runs = getattr(args, f"runs_{workload}") or args.runs
        base: Result | None = None
        for workers in args.workers:
            t0 = time.monotonic()
            try:
                result = measure(workload, workers, args.concurrency, runs, args.timeout, args.keep)
            except BenchError as exc:
                print(f"benchmark failed ({workload}, {workers} workers): {exc}", file=sys.stderr)
                return 1
            base = base or result
            result.scaling = result.phases_per_min / base.phases_per_min
            results.append(result)
            print(
                f"  {workload:5} {workers} x {args.concurrency}: {runs} runs, "
                f"{result.succeeded} ok, wall {result.wall_s:.1f} s, "
                f"{result.phases_per_min:.1f} phases/min, scaling {result.scaling:.2f}x "
                f"(configuration took {time.monotonic() - t0:.0f} s)",
                flush=True,
            )
            for failure in result.failures[:10]:
                print(f"    failed: {failure}")
    print()
    print(table(results))
    print(
        f"\n(total {time.monotonic() - started:.0f} s; scaling = phases/min ÷ that of "
        f"{args.workers[0]} worker(s), same workload, same invocation)"
    )

    document: dict[str, Any] = {
        "benchmark": "workers",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "machine": {
            "cores": cores,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "procrastinate": metadata.version("procrastinate"),
        },
        "options": {
            "workers": args.workers,
            "concurrency": args.concurrency,
            "workloads": {w: WORKLOADS[w] for w in args.workload},
        },
        "results": [asdict(r) for r in results],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"-> {args.json}")
    failed = sum(len(r.failures) for r in results)
    if failed:
        print(f"{failed} runs did not end DONE_SUCCESS (listed above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
