"""Benchmark: code-index search latency in embedded mode (Qdrant local mode) at 10k and 100k chunks.

The collection is filled with the real chunks of this repository (its files at HEAD, chunked by
``chunk_file`` and indexed by ``MemoryService.index_repository``), replicated under distinct
``project`` names until the target count is reached: ``index_repository`` is called on the same
checkout once per replica (project ``replica-000``, ``replica-001``, ...), and the part of a
replica that would overshoot the target is upserted through the service's ``_upsert`` with the
same ids, payloads and path headers as ``index_repository`` gives them. Sizes are built one
after the other in the same collection (the 100k collection is the 10k one grown). Replicated
text keeps each project's term statistics realistic but duplicates content across projects.

Then ``search(autopack_code, query, limit=10)`` is timed over queries drawn from the
repository's commit subjects (and their clauses when there are not enough subjects), without a
project filter and with one (a replica's), alternating, after a warm-up: p50, p99 and mean,
next to the indexing time and the time to reopen the directory. Timings are reported, never
asserted: the exit status is non-zero only when the benchmark cannot run.

    python bench/bench_memory_latency.py                   # 10k, then 100k (long: see README)
    python bench/bench_memory_latency.py --sizes 10000 --queries 100 --dir /dev/shm

See ``bench/README.md`` for how to read the output. Results are also written as JSON to
``bench/results/memory_latency.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench_get_run import git_commit, percentile, positive  # bench/ is the script's directory
from qdrant_client import QdrantClient

from autopack.memory.chunks import Chunk, chunk_file
from autopack.memory.service import CODE, MAX_INDEXED_FILE_BYTES, MemoryService, point_id

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_JSON = BENCH_DIR / "results" / "memory_latency.json"
WARMUP_QUERIES = 3
LIMIT = 10


class BenchError(RuntimeError):
    """The benchmark cannot run."""


def git(*args: str, data: bytes | None = None) -> bytes:
    try:
        return subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args], input=data, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BenchError(f"git {' '.join(args[:2])} failed: {exc}") from exc


def head_chunks() -> tuple[str, list[tuple[str, str, list[Chunk]]]]:
    """HEAD, and (path, blob, chunks) of the text files ``index_repository`` indexes there."""
    head = git("rev-parse", "HEAD").decode().strip()
    entries: list[tuple[str, str]] = []
    for line in git("ls-tree", "-r", "-z", "--long", "HEAD").split(b"\0"):
        if not line:
            continue
        meta, _, raw_path = line.partition(b"\t")
        mode, kind, raw_blob, raw_size = meta.split()
        regular = kind == b"blob" and mode in (b"100644", b"100755")
        if regular and int(raw_size) <= MAX_INDEXED_FILE_BYTES:
            entries.append((raw_path.decode("utf-8", "surrogateescape"), raw_blob.decode()))
    out = git("cat-file", "--batch", data="".join(f"{blob}\n" for _, blob in entries).encode())
    files: list[tuple[str, str, list[Chunk]]] = []
    position = 0
    for path, blob in entries:
        header_end = out.index(b"\n", position)
        size = int(out[position:header_end].split()[2])
        start = header_end + 1
        data = out[start : start + size]
        position = start + size + 1
        if b"\0" in data[:8192]:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        files.append((path, blob, chunk_file(path, text)))
    return head, files


def queries(count: int) -> tuple[list[str], int]:
    """``count`` queries from the commit subjects, then their clauses (split at ``;`` and
    ``:``), cycled when there are still too few; and how many are distinct."""
    subjects = [s for s in git("log", "--format=%s").decode().splitlines() if s.strip()]
    clauses = [
        part.strip()
        for subject in subjects
        for part in re.split(r"[;:]\s", subject)
        if len(part.split()) >= 3 and part.strip() not in subjects
    ]
    distinct = list(dict.fromkeys(subjects + clauses))
    if not distinct:
        raise BenchError("the repository has no commit subjects to query with")
    chosen = [distinct[i % len(distinct)] for i in range(count)]
    return chosen, min(count, len(distinct))


def upsert_partial(
    memory: MemoryService,
    project: str,
    commit: str,
    files: Sequence[tuple[str, str, list[Chunk]]],
    count: int,
) -> int:
    """The first ``count`` chunks of a replica, as ``index_repository`` would store them."""
    chunks = [(blob, chunk) for _, blob, file_chunks in files for chunk in file_chunks][:count]
    items = [
        (
            point_id(CODE, project, c.path, c.start_line, c.end_line, c.content_hash),
            c.text,
            {
                "project": project,
                "path": c.path,
                "start_line": c.start_line,
                "end_line": c.end_line,
                "commit": commit,
                "content_hash": c.content_hash,
                "file_hash": blob,
            },
        )
        for blob, c in chunks
    ]
    return memory._upsert(CODE, items, headers=[c.path for _, c in chunks])


def stats_ms(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": percentile(ordered, 50) * 1000,
        "p99_ms": percentile(ordered, 99) * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def measure(
    memory: MemoryService, texts: Sequence[str], project: str, max_seconds: float
) -> dict[str, Any]:
    """Both variants, alternating query by query, after a warm-up; stops early (at the end of a
    pair) when ``max_seconds`` have been spent measuring."""
    variants: dict[str, str | None] = {"all projects": None, "one project": project}
    for text in texts[:WARMUP_QUERIES]:
        for scope in variants.values():
            memory.search(CODE, text, project=scope, limit=LIMIT)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    hits: dict[str, list[int]] = {name: [] for name in variants}
    started = time.perf_counter()
    for number, text in enumerate(texts):
        # Alternate which variant goes first, so that neither always runs on a warmer cache.
        order = list(variants.items()) if number % 2 == 0 else list(variants.items())[::-1]
        for name, scope in order:
            begin = time.perf_counter()
            found = memory.search(CODE, text, project=scope, limit=LIMIT)
            samples[name].append(time.perf_counter() - begin)
            hits[name].append(len(found))
        if time.perf_counter() - started > max_seconds:
            break
    return {
        name: {**stats_ms(samples[name]), "mean_hits": statistics.fmean(hits[name])}
        for name in variants
    }


def max_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(args: argparse.Namespace) -> dict[str, Any]:
    started_all = time.perf_counter()
    head, files = head_chunks()
    per_replica = sum(len(chunks) for _, _, chunks in files)
    if per_replica == 0:
        raise BenchError("the repository has no text to index")
    texts, distinct = queries(args.queries)
    print(
        f"{len(files)} files, {per_replica} chunks per replica; {len(texts)} queries "
        f"({distinct} distinct)",
        file=sys.stderr,
    )
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="autopack-bench-memory-", dir=args.dir) as tmp:
        location = str(Path(tmp) / "memory")
        memory = MemoryService(QdrantClient(path=location), mode="embedded", location=location)
        try:
            points = 0
            replicas = 0
            index_s = 0.0
            for size in sorted(args.sizes):
                build_started = time.perf_counter()
                while points < size:
                    project = f"replica-{replicas:03d}"
                    if size - points >= per_replica:
                        report = memory.index_repository(project, REPO_ROOT)
                        points += report.chunks_upserted
                    else:
                        points += upsert_partial(memory, project, head, files, size - points)
                    replicas += 1
                    print(
                        f"  {points:,} chunks, {time.perf_counter() - build_started:.0f} s",
                        file=sys.stderr,
                    )
                built_s = time.perf_counter() - build_started
                index_s += built_s
                stored = memory.count(CODE)
                print(f"size {size:,}: {stored:,} points; measuring", file=sys.stderr)
                latency = measure(memory, texts, "replica-000", args.max_seconds)
                # Reopening the directory loads every point into memory (local mode).
                memory.close()
                reopen_started = time.perf_counter()
                memory = MemoryService(
                    QdrantClient(path=location), mode="embedded", location=location
                )
                reopen_s = time.perf_counter() - reopen_started
                results.append(
                    {
                        "size": size,
                        "points": stored,
                        "projects": replicas,
                        "build_s": built_s,
                        "build_points_per_s": (size - (results[-1]["size"] if results else 0))
                        / built_s
                        if built_s
                        else None,
                        "index_s_total": index_s,
                        "reopen_s": reopen_s,
                        "max_rss_mib": max_rss_mib(),
                        "latency": latency,
                    }
                )
                print(render_size(results[-1]), file=sys.stderr)
        finally:
            memory.close()
    return {
        "environment": environment(),
        "repo_head": head,
        "files_per_replica": len(files),
        "chunks_per_replica": per_replica,
        "queries": len(texts),
        "distinct_queries": distinct,
        "limit": LIMIT,
        "max_seconds": args.max_seconds,
        "directory": str(args.dir or tempfile.gettempdir()),
        "sizes": results,
        "total_s": time.perf_counter() - started_all,
    }


def render_size(entry: dict[str, Any]) -> str:
    return (
        f"{entry['size']:,} chunks ({entry['projects']} projects): built in "
        f"{entry['build_s']:.0f} s, reopened in {entry['reopen_s']:.1f} s, "
        f"max RSS {entry['max_rss_mib']:.0f} MiB"
    )


def render(result: dict[str, Any]) -> str:
    lines = [
        f"search(autopack_code, limit={result['limit']}) in embedded (local) mode: chunks of "
        f"{result['files_per_replica']} files ({result['chunks_per_replica']:,} chunks) "
        f"replicated per project; {result['distinct_queries']} distinct queries from commit "
        "subjects",
        "",
        "| chunks | scope | queries | p50 ms | p99 ms | mean ms | max ms | build s | reopen s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in result["sizes"]:
        for scope, s in entry["latency"].items():
            lines.append(
                f"| {entry['size']:,} | {scope} | {s['n']} | {s['p50_ms']:.0f} | "
                f"{s['p99_ms']:.0f} | {s['mean_ms']:.0f} | {s['max_ms']:.0f} | "
                f"{entry['build_s']:.0f} | {entry['reopen_s']:.1f} |"
            )
    lines.append("")
    lines += [render_size(entry) for entry in result["sizes"]]
    lines.append(f"total {result['total_s']:.0f} s")
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "qdrant_client": metadata.version("qdrant-client"),
    }


def parse_sizes(value: str) -> list[int]:
    try:
        sizes = [int(part) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a list of sizes") from exc
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError("sizes are positive chunk counts, e.g. 10000,100000")
    return sizes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Code-index search latency in embedded (Qdrant local) mode at given sizes.",
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=[10_000, 100_000],
        help="collection sizes in chunks, built one after the other (default 10000,100000)",
    )
    parser.add_argument(
        "--queries", type=positive, default=200, help="measured queries per size (default 200)"
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=300.0,
        help="stop measuring a size after this long, whatever --queries says (default 300)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where the memory directory is made (default: the system's temp dir); local mode "
        "commits every point to SQLite, so the disk sets the indexing time",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        help=f"where to write the result ({DEFAULT_JSON})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Local mode warns once past 20,000 points that it is not meant for that many: that is what
    # this benchmark measures.
    warnings.filterwarnings("ignore", message="Local mode is not recommended")
    try:
        result = run(args)
    except BenchError as exc:
        print(f"benchmark could not run: {exc}", file=sys.stderr)
        return 1
    print(render(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"-> {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
