"""Benchmark: context selection by the code index, on a repository's real history.

For each first-parent commit of a repository (default: this one) that modifies or deletes
between 1 and 5 *source files* (below), the parent commit is the code and the commit's full
message (subject and body) is the phase description: the parent is indexed
(``MemoryService.index_repository``, Qdrant local mode in a temp dir, incrementally from one
commit to the next), the message goes to ``rank_files`` (what the executor's context selection
asks of the index), and whole files are taken in rank order while they fit a token budget. The
figures are the recall of the files the commit touched and the tokens selected, as a share of
the whole repository (every indexed text file at the parent), at budgets that are fractions of
the whole repository and at fixed budgets; next to them, the same for files drawn at random
under the same budget, measured in the same run. The issue's target: at most 25% of the whole
repository's tokens at a recall of at least 90%. Figures are reported, never asserted: the exit
status is non-zero only when the benchmark cannot run.

    python bench/bench_memory_context.py
    python bench/bench_memory_context.py --repo ../other --max-commits 50 --budgets 0.05,0.25

*Source file*: a regular text file (UTF-8, no NUL byte) of at most 512 KiB that exists in the
parent commit, other than lock files, generated files (minified bundles, protobuf modules,
``src/frontend/api/openapi.json`` and ``schema.d.ts``) and ``*.jsonl`` cassettes. A file the
commit creates is not counted: nothing can retrieve it.

See ``bench/README.md`` for how to read the output. Per-commit rows are written as JSON to
``bench/results/memory_context.json`` (``--json`` to change it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from bench_get_run import git_commit, positive  # bench/ is the script's directory
from qdrant_client import QdrantClient

from autopack.executor.repomap import GENERATED_SUFFIXES, LOCK_FILES, approximate_tokens
from autopack.memory.retrieval import CHUNK_LIMIT, excerpt, rank_files
from autopack.memory.service import MAX_INDEXED_FILE_BYTES, MemoryService
from autopack.settings import Settings

try:  # how many retrieved files the executor offers its context, as excerpts
    from autopack.executor.recall import MAX_RETRIEVED_FILES as SNIPPET_FILES
except ImportError:  # pragma: no cover - the executor's retrieval moved or is not there yet
    SNIPPET_FILES = 8

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_JSON = BENCH_DIR / "results" / "memory_context.json"

PROJECT = "bench"
MAX_TOUCHED = 5
TARGET_SHARE = 0.25
TARGET_RECALL = 0.90
# Fixed budgets next to the fractions: a round 30k, and the executor's whole context budget
# (``context_token_budget``'s default), which also pays for the task, rules and the repo map.
CONTEXT_TOKEN_BUDGET = int(Settings.model_fields["context_token_budget"].default)
FIXED_BUDGETS = (30_000, CONTEXT_TOKEN_BUDGET)
GENERATED_PATHS = frozenset({"src/frontend/api/openapi.json", "src/frontend/api/schema.d.ts"})
REGULAR_MODES = (b"100644", b"100755")


class BenchError(RuntimeError):
    """The benchmark cannot run."""


# --------------------------------------------------------------------------------------------
# git


def git(repo: Path, *args: str, data: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], input=data, capture_output=True, check=True
        )
    except FileNotFoundError as exc:
        raise BenchError("git is not installed") from exc
    except subprocess.CalledProcessError as exc:
        message = exc.stderr.decode("utf-8", "replace").strip()
        raise BenchError(f"git {' '.join(args[:2])} failed in {repo}: {message}") from exc
    return done.stdout


def text_of(data: bytes) -> str | None:
    """The indexer's rule (``service._text_of``): no NUL in the first 8 KiB, valid UTF-8."""
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


class TokenCache:
    """Tokens of the indexed text files of a commit, by path; blobs are measured once."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.by_blob: dict[str, int | None] = {}  # None: not text, or too large

    def files(self, commit: str) -> dict[str, int]:
        """Path -> tokens of each file the indexer indexes at ``commit``: regular files (no
        symlinks or submodules) of at most ``MAX_INDEXED_FILE_BYTES`` that are text."""
        blobs: dict[str, str] = {}
        for line in git(self.repo, "ls-tree", "-r", "-z", "--long", commit).split(b"\0"):
            if not line:
                continue
            meta, _, raw_path = line.partition(b"\t")
            mode, kind, raw_sha, raw_size = meta.split()
            if kind != b"blob" or mode not in REGULAR_MODES:
                continue
            blob = raw_sha.decode()
            blobs[raw_path.decode("utf-8", "surrogateescape")] = blob
            if int(raw_size) > MAX_INDEXED_FILE_BYTES:
                self.by_blob[blob] = None
        wanted = sorted(set(blobs.values()) - set(self.by_blob))
        if wanted:
            request = "".join(f"{blob}\n" for blob in wanted).encode()
            out = git(self.repo, "cat-file", "--batch", data=request)
            position = 0
            for blob in wanted:
                header_end = out.index(b"\n", position)
                size = int(out[position:header_end].split()[2])
                start = header_end + 1
                text = text_of(out[start : start + size])
                self.by_blob[blob] = None if text is None else approximate_tokens(text)
                position = start + size + 1
        return {
            path: tokens
            for path, blob in blobs.items()
            if (tokens := self.by_blob[blob]) is not None
        }


def is_source(path: str) -> bool:
    name = PurePosixPath(path).name
    return not (
        name in LOCK_FILES
        or path in GENERATED_PATHS
        or path.endswith(GENERATED_SUFFIXES)
        or path.endswith(".jsonl")
    )


@dataclass(frozen=True)
class Commit:
    sha: str
    parent: str
    message: str
    touched: tuple[str, ...]  # source files of the parent that the commit modified or deleted
    added: int  # files the commit created (not retrievable, not counted)
    other: int  # files touched that are not source files (lock, generated, binary, huge)

    @property
    def subject(self) -> str:
        return self.message.splitlines()[0] if self.message else ""


def first_parent_history(repo: Path) -> list[tuple[str, str]]:
    """(commit, parent) along the first-parent history, oldest first; the root commit and merge
    commits are left out."""
    pairs: list[tuple[str, str]] = []
    out = git(repo, "rev-list", "--first-parent", "--reverse", "--parents", "HEAD").decode()
    for line in out.splitlines():
        shas = line.split()
        if len(shas) == 2:
            pairs.append((shas[0], shas[1]))
    return pairs


def describe(repo: Path, sha: str, parent: str, parent_files: dict[str, int]) -> Commit:
    message = git(repo, "log", "-1", "--format=%B", sha).decode("utf-8", "replace").strip()
    out = git(repo, "diff", "--no-renames", "--name-status", "-z", parent, sha).split(b"\0")
    touched: list[str] = []
    added = other = 0
    for status, raw_path in zip(out[0::2], out[1::2], strict=False):
        path = raw_path.decode("utf-8", "surrogateescape")
        if status.startswith(b"A"):
            added += 1
        elif path in parent_files and is_source(path):
            touched.append(path)
        else:
            other += 1
    return Commit(sha, parent, message, tuple(sorted(touched)), added, other)


# --------------------------------------------------------------------------------------------
# selection


def kind_of(path: str) -> str:
    """A touched file's kind, to see what retrieval misses."""
    pure = PurePosixPath(path)
    name = pure.name
    if (
        path.startswith("tests/")
        or "/test/" in path
        or "/tests/" in path
        or name.startswith("test_")
        or ".test." in name
        or ".spec." in name
    ):
        return "tests"
    if pure.suffix in (".md", ".rst") or (pure.suffix == ".txt" and "requirements" not in name):
        return "docs"
    if pure.suffix in CODE_SUFFIXES:
        return "code"
    return "config, scripts"


CODE_SUFFIXES = frozenset(
    {".py", ".pyi", ".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".go", ".rs", ".java", ".sh"}
    | {".css", ".html", ".sql", ".mako"}
)
KINDS = ("code", "tests", "docs", "config, scripts")


@dataclass
class Selection:
    files: int
    tokens: int
    found: list[str]  # touched files among the selected

    def recall(self, touched: int) -> float:
        return len(self.found) / touched


def select(
    ranked: Sequence[str], tokens: dict[str, int], budget: int, touched: set[str]
) -> Selection:
    """Whole files in order while they fit: a file that does not fit is passed over and the
    next ones are tried (as the executor's context fills a group)."""
    used = files = 0
    found: list[str] = []
    for path in ranked:
        cost = tokens.get(path)
        if cost is None or used + cost > budget:
            continue
        used += cost
        files += 1
        if path in touched:
            found.append(path)
    return Selection(files, used, found)


@dataclass
class Row:
    sha: str
    subject: str
    touched: list[str]
    added: int
    other: int
    files: int  # indexed text files at the parent
    whole_tokens: int
    # Of which lock files, generated files and cassettes (indexed, but never "source files").
    not_source_tokens: int
    index_s: float
    files_reindexed: int
    rank_s: float
    ranked: int  # files rank_files returned
    ranks: dict[str, int | None]  # 1-based rank of each touched file (None: not returned)
    # Tokens of the ranked files up to the last touched one (None: one was not returned): a
    # budget at which the greedy selection is sure to find them all.
    tokens_to_full_recall: int | None
    unknown_ranked: int  # ranked paths without a measured text file (should be 0)
    # As the executor uses the index: excerpts of the first SNIPPET_FILES ranked files.
    snippets: dict[str, Any] = field(default_factory=dict)
    retrieval: dict[str, dict[str, Any]] = field(default_factory=dict)
    random: dict[str, dict[str, float]] = field(default_factory=dict)


def budget_label(fraction: float | None, tokens: int | None) -> str:
    return f"{fraction:.0%} of repo" if fraction is not None else f"{tokens:,} tokens"


def measure_commit(
    memory: MemoryService,
    worktree: Path,
    commit: Commit,
    tokens: dict[str, int],
    budgets: Sequence[tuple[str, int | None, float | None]],
    seed: int,
    draws: int,
    chunk_limit: int,
) -> Row:
    git(worktree, "checkout", "-q", "--detach", commit.parent)
    started = time.perf_counter()
    report = memory.index_repository(PROJECT, worktree)
    index_s = time.perf_counter() - started
    started = time.perf_counter()
    hits = rank_files(memory, PROJECT, commit.message, chunk_limit=chunk_limit)
    rank_s = time.perf_counter() - started
    ranked = [hit.path for hit in hits]
    whole = sum(tokens.values())
    touched = set(commit.touched)
    position = {path: i for i, path in enumerate(ranked)}
    ranks = {path: position[path] + 1 if path in position else None for path in commit.touched}
    found_ranks = [r for r in ranks.values() if r is not None]
    full: int | None = None
    if len(found_ranks) == len(ranks):
        full = sum(tokens.get(path, 0) for path in ranked[: max(found_ranks)])
    row = Row(
        sha=commit.sha,
        subject=commit.subject,
        touched=list(commit.touched),
        added=commit.added,
        other=commit.other,
        files=len(tokens),
        whole_tokens=whole,
        not_source_tokens=sum(n for path, n in tokens.items() if not is_source(path)),
        index_s=index_s,
        files_reindexed=len(report.files_indexed),
        rank_s=rank_s,
        ranked=len(ranked),
        ranks=ranks,
        tokens_to_full_recall=full,
        unknown_ranked=sum(path not in tokens for path in ranked),
    )
    snippet_tokens = 0
    snippet_found: list[str] = []
    for hit in hits[:SNIPPET_FILES]:
        text = excerpt(hit, lambda path: read_text(worktree / path))
        if text is not None and text.strip():
            snippet_tokens += approximate_tokens(text)
            if hit.path in touched:
                snippet_found.append(hit.path)
    row.snippets = {
        "files": min(len(hits), SNIPPET_FILES),
        "tokens": snippet_tokens,
        "found": snippet_found,
        "recall": len(snippet_found) / len(touched),
    }
    paths = sorted(tokens)
    for label, absolute, fraction in budgets:
        budget = absolute if absolute is not None else int(whole * (fraction or 0.0))
        chosen = select(ranked, tokens, budget, touched)
        row.retrieval[label] = {
            "budget": budget,
            "files": chosen.files,
            "tokens": chosen.tokens,
            "recall": chosen.recall(len(touched)),
            "found": chosen.found,
            "missed": sorted(touched - set(chosen.found)),
        }
        # The random baseline: several seeded shuffles of every indexed file, averaged.
        rng = random.Random(f"{seed}:{commit.sha}:{label}")
        samples = []
        for _ in range(draws):
            order = paths[:]
            rng.shuffle(order)
            samples.append(select(order, tokens, budget, touched))
        row.random[label] = {
            "budget": budget,
            "files": statistics.fmean(s.files for s in samples),
            "tokens": statistics.fmean(s.tokens for s in samples),
            "recall": statistics.fmean(s.recall(len(touched)) for s in samples),
            "found": statistics.fmean(len(s.found) for s in samples),
            "full": statistics.fmean(len(s.found) == len(touched) for s in samples),
        }
    return row


# --------------------------------------------------------------------------------------------
# summary


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def count_found(result: dict[str, Any]) -> float:
    found = result["found"]
    return float(len(found)) if isinstance(found, list) else float(found)


def summarise(rows: Sequence[Row], labels: Sequence[str]) -> dict[str, Any]:
    touched_total = sum(len(row.touched) for row in rows)
    summary: dict[str, Any] = {}
    for label in labels:
        entry: dict[str, Any] = {}
        for selector in ("retrieval", "random"):
            results = [getattr(row, selector)[label] for row in rows]
            entry[selector] = {
                "micro_recall": sum(count_found(r) for r in results) / touched_total,
                "macro_recall": statistics.fmean(r["recall"] for r in results),
                # For random, the share of draws that found everything, averaged over commits.
                "full_recall_share": statistics.fmean(
                    r["full"] if "full" in r else float(not r["missed"]) for r in results
                ),
                "mean_files": statistics.fmean(r["files"] for r in results),
                "mean_tokens": statistics.fmean(r["tokens"] for r in results),
                "mean_share": statistics.fmean(
                    r["tokens"] / row.whole_tokens for r, row in zip(results, rows, strict=True)
                ),
                "mean_budget_share": statistics.fmean(
                    r["budget"] / row.whole_tokens for r, row in zip(results, rows, strict=True)
                ),
            }
        random_recall = entry["random"]["micro_recall"]
        entry["recall_ratio"] = (
            entry["retrieval"]["micro_recall"] / random_recall if random_recall else None
        )
        entry["target_met"] = (
            entry["retrieval"]["micro_recall"] >= TARGET_RECALL
            and entry["retrieval"]["mean_share"] <= TARGET_SHARE
        )
        # Retrieval's micro recall by kind of touched file and by size of commit.
        groups: dict[str, list[int]] = {}
        for row, result in zip(rows, (row.retrieval[label] for row in rows), strict=True):
            size = len(row.touched)
            size_group = (
                f"commits of {size} file{'s' if size > 1 else ''}"
                if size < 3
                else (f"commits of 3-{MAX_TOUCHED} files")
            )
            for path in row.touched:
                hit = int(path in result["found"])
                for group in (kind_of(path), size_group):
                    groups.setdefault(group, [0, 0])
                    groups[group][0] += hit
                    groups[group][1] += 1
        entry["by_group"] = {
            group: {"found": found, "touched": total, "recall": found / total}
            for group, (found, total) in groups.items()
        }
        summary[label] = entry
    summary["snippets"] = {
        "files": SNIPPET_FILES,
        "micro_recall": sum(len(row.snippets["found"]) for row in rows) / touched_total,
        "macro_recall": statistics.fmean(row.snippets["recall"] for row in rows),
        "mean_tokens": statistics.fmean(row.snippets["tokens"] for row in rows),
        "mean_share": statistics.fmean(row.snippets["tokens"] / row.whole_tokens for row in rows),
    }
    shares = sorted(
        row.tokens_to_full_recall / row.whole_tokens
        for row in rows
        if row.tokens_to_full_recall is not None
    )
    every_rank = [r for row in rows for r in row.ranks.values()]
    summary["full_recall_share_of_repo"] = {
        "commits_all_ranked": len(shares),
        "median": statistics.median(shares) if shares else None,
        "within_target_share": sum(s <= TARGET_SHARE for s in shares) / len(rows),
    }
    summary["ranked_list"] = {
        "touched_never_ranked": sum(r is None for r in every_rank) / len(every_rank),
        "median_rank": statistics.median([r for r in every_rank if r is not None] or [0]),
        "mean_files_ranked": statistics.fmean(row.ranked for row in rows),
    }
    return summary


def render(result: dict[str, Any]) -> str:
    summary = result["summary"]
    labels: list[str] = result["labels"]
    lines = [
        f"Context selection on {result['repo']}: {result['commits_measured']} of "
        f"{result['commits_considered']} first-parent commits touch 1-{MAX_TOUCHED} source "
        f"files ({result['touched_total']} touched files in all); whole repository "
        f"{result['mean_whole_tokens']:,.0f} tokens in {result['mean_files']:.0f} files on "
        f"average ({result['mean_not_source_share']:.0%} of it lock and generated files); "
        f"random = mean of {result['random_draws']} seeded draws (seed {result['seed']})",
        "",
        "| budget | selector | tokens (share of repo) | files | micro recall | macro recall "
        "| full recall | recall vs random |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label in labels:
        entry = summary[label]
        ratio = entry["recall_ratio"]
        for selector in ("retrieval", "random"):
            s = entry[selector]
            versus = ""
            if selector == "retrieval":
                versus = f"{ratio:.2f}x" if ratio is not None else "n/a"
            lines.append(
                f"| {label} | {selector} | {s['mean_tokens']:,.0f} ({s['mean_share']:.1%}) | "
                f"{s['mean_files']:.1f} | {s['micro_recall']:.1%} | {s['macro_recall']:.1%} | "
                f"{s['full_recall_share']:.1%} | {versus} |"
            )
    snippets = summary["snippets"]
    lines.append(
        f"| first {snippets['files']} ranked files | excerpts, as the executor | "
        f"{snippets['mean_tokens']:,.0f} ({snippets['mean_share']:.1%}) | {snippets['files']} | "
        f"{snippets['micro_recall']:.1%} | {snippets['macro_recall']:.1%} | | |"
    )
    groups = summary[labels[0]]["by_group"]
    order = [kind for kind in KINDS if kind in groups]
    order += sorted(group for group in groups if group not in KINDS)
    lines += [
        "",
        "Retrieval's micro recall by kind of touched file and by size of commit:",
        "",
        "| touched files | n | " + " | ".join(labels) + " |",
        "|---|---|" + "---|" * len(labels),
    ]
    for group in order:
        cells = " | ".join(f"{summary[label]['by_group'][group]['recall']:.1%}" for label in labels)
        lines.append(f"| {group} | {groups[group]['touched']} | {cells} |")
    met = [label for label in labels if summary[label]["target_met"]]
    full = summary["full_recall_share_of_repo"]
    median = "n/a" if full["median"] is None else f"{full['median']:.1%}"
    ranked = summary["ranked_list"]
    lines += [
        "",
        f"target (<= {TARGET_SHARE:.0%} of the repository's tokens at >= {TARGET_RECALL:.0%} "
        f"micro recall): {'met at ' + ', '.join(met) if met else 'NOT met at any budget'}",
        f"rank_files (chunk_limit {result['chunk_limit']}) returned "
        f"{ranked['mean_files_ranked']:.1f} files on average; "
        f"{ranked['touched_never_ranked']:.1%} of touched files were never returned; median rank "
        f"of the others {ranked['median_rank']}",
        f"tokens of the ranked files down to the last touched one: median {median} of the "
        f"repository over the {full['commits_all_ranked']} commits whose touched files were all "
        f"returned; commits within {TARGET_SHARE:.0%}: {full['within_target_share']:.1%} of all",
        f"time: indexing {result['index_s']:.1f} s in all, rank_files median "
        f"{result['rank_median_ms']:.0f} ms; total {result['total_s']:.0f} s",
    ]
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


# --------------------------------------------------------------------------------------------
# CLI


def parse_budgets(value: str) -> list[float]:
    try:
        fractions = [float(part) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a list of fractions") from exc
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise argparse.ArgumentTypeError("budgets are fractions in (0, 1], e.g. 0.05,0.25")
    return fractions


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Recall and tokens of the code index's context selection on a "
        "repository's history, against the whole repository and a random selection.",
    )
    parser.add_argument(
        "--repo", type=Path, default=REPO_ROOT, help="git repository (default: this one)"
    )
    parser.add_argument(
        "--max-commits",
        type=positive,
        default=None,
        help="measure only the most recent N eligible commits (default: all)",
    )
    parser.add_argument(
        "--budgets",
        type=parse_budgets,
        default=[0.05, 0.10, 0.25],
        help="budgets as fractions of the whole repository's tokens (default 0.05,0.10,0.25)",
    )
    parser.add_argument(
        "--chunk-limit",
        type=positive,
        default=CHUNK_LIMIT,
        help=f"chunks rank_files fetches per query (default {CHUNK_LIMIT}, the executor's)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    parser.add_argument(
        "--random-draws",
        type=positive,
        default=20,
        help="random selections per commit and budget, averaged (default 20)",
    )
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"where to write the rows ({DEFAULT_JSON})"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    started_all = time.perf_counter()
    repo = Path(git(args.repo, "rev-parse", "--show-toplevel").decode().strip())
    budgets: list[tuple[str, int | None, float | None]] = [
        (budget_label(f, None), None, f) for f in args.budgets
    ] + [(budget_label(None, t), t, None) for t in FIXED_BUDGETS]
    cache = TokenCache(repo)
    history = first_parent_history(repo)
    eligible: list[tuple[Commit, dict[str, int]]] = []
    for sha, parent in history:
        files = cache.files(parent)
        commit = describe(repo, sha, parent, files)
        if 1 <= len(commit.touched) <= MAX_TOUCHED:
            eligible.append((commit, files))
    if args.max_commits is not None:
        eligible = eligible[-args.max_commits :]
    if not eligible:
        raise BenchError(f"no commit of {repo} touches 1-{MAX_TOUCHED} source files")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="autopack-bench-memory-") as tmp:
        worktree = Path(tmp) / "worktree"
        git(repo, "worktree", "add", "-q", "--detach", str(worktree), eligible[0][0].parent)
        memory = MemoryService(
            QdrantClient(path=str(Path(tmp) / "memory")), mode="embedded", location=tmp
        )
        try:
            for number, (commit, files) in enumerate(eligible, start=1):
                row = measure_commit(
                    memory,
                    worktree,
                    commit,
                    files,
                    budgets,
                    args.seed,
                    args.random_draws,
                    args.chunk_limit,
                )
                rows.append(row)
                found = sum(r is not None for r in row.ranks.values())
                print(
                    f"[{number}/{len(eligible)}] {commit.sha[:8]} {len(commit.touched)} touched, "
                    f"{found} ranked; index {row.index_s:.1f} s ({row.files_reindexed} files), "
                    f"rank {row.rank_s * 1000:.0f} ms  {commit.subject[:60]}",
                    file=sys.stderr,
                )
        finally:
            memory.close()
            subprocess.run(
                ["git", "-C", str(repo), "worktree", "remove", "--force", str(worktree)],
                capture_output=True,
                check=False,
            )
            subprocess.run(
                ["git", "-C", str(repo), "worktree", "prune"], capture_output=True, check=False
            )
    labels = [label for label, _, _ in budgets]
    return {
        "repo": str(repo),
        "environment": environment(),
        "commits_considered": len(history),
        "commits_measured": len(rows),
        "touched_total": sum(len(row.touched) for row in rows),
        "mean_whole_tokens": statistics.fmean(row.whole_tokens for row in rows),
        "mean_files": statistics.fmean(row.files for row in rows),
        "mean_not_source_share": statistics.fmean(
            row.not_source_tokens / row.whole_tokens for row in rows
        ),
        "seed": args.seed,
        "random_draws": args.random_draws,
        "chunk_limit": args.chunk_limit,
        "snippet_files": SNIPPET_FILES,
        "labels": labels,
        "index_s": sum(row.index_s for row in rows),
        "rank_median_ms": statistics.median(row.rank_s for row in rows) * 1000,
        "total_s": time.perf_counter() - started_all,
        "summary": summarise(rows, labels),
        "rows": [asdict(row) for row in rows],
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
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
