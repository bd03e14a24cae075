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

Other selection policies under the same budgets, in the same table:

* *excerpts*: the same ranking, each file counted as its excerpt (``retrieval.excerpt``: the hit
  line ranges and a margin, cut from the parent), as the executor puts it in a prompt;
* *co-change*: the ranking with, right after each of its first k files, the files that most often
  changed together with it in the history up to the parent (``--cochange``), counted whole or
  as excerpts (a partner with no hit of its own: its first ``--head-lines`` lines);
* *excerpts + tail*: the excerpts, then the files that only a search returning every chunk
  (``--tail-chunk-limit``) ranks, in its order, each counted as its first ``--head-lines``
  lines.

    python bench/bench_memory_context.py
    python bench/bench_memory_context.py --repo ../other --max-commits 50 --budgets 0.05,0.25
    python bench/bench_memory_context.py --cochange 3:2:0.3:3,5:2:0.3:3 --head-lines 0

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
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from bench_get_run import git_commit, non_negative, positive  # bench/ is the script's directory
from qdrant_client import QdrantClient

from autopack.executor.repomap import GENERATED_SUFFIXES, LOCK_FILES, approximate_tokens
from autopack.memory.retrieval import (
    CHUNK_LIMIT,
    HEAD_LINES,
    TAIL_CHUNK_LIMIT,
    FileHit,
    excerpt,
    rank_files,
)
from autopack.memory.service import MAX_INDEXED_FILE_BYTES, MemoryService, indexable_text
from autopack.settings import Settings

# The executor's first policy, kept for comparison: excerpts of the first 8 ranked files. It now
# offers "excerpts + tail" (``autopack.memory.retrieval.select_context``) under its budget.
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
# Co-change: history commits touching more files than this are noise (bulk edits, formatting).
COCHANGE_MAX_FILES = 30
# A co-changed partner with no hit of its own, when files are counted as excerpts, and a file of
# the tail, is counted as its head of HEAD_LINES lines; the tail's ranking fetches
# TAIL_CHUNK_LIMIT chunks. Both are the executor's (``autopack.memory.retrieval``):
# "excerpts + tail" is the policy ``select_context`` implements.
DEFAULT_COCHANGE = "3:2:0.3:3,5:2:0.3:3,all:2:0.5:1"
RANKED = "retrieval"  # the selector names of the original table
RANDOM = "random"
EXCERPTS = "excerpts"
TAIL = "excerpts + tail (file heads)"


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
                text = indexable_text(out[start : start + size])
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


def first_parent_history(repo: Path, rev: str) -> list[tuple[str, str]]:
    """(commit, parent) along the first-parent history, oldest first; the root commit and merge
    commits are left out."""
    pairs: list[tuple[str, str]] = []
    out = git(repo, "rev-list", "--first-parent", "--reverse", "--parents", rev).decode()
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
# co-change


@dataclass(frozen=True)
class CoChangeSetting:
    """Right after each of the first ``top`` ranked files, its partners: files that changed
    with it in at least ``min_count`` history commits and in at least ``min_prob`` of the
    commits that changed it, most frequent first, at most ``max_partners`` of them."""

    top: int  # 0: every ranked file
    min_count: int
    min_prob: float
    max_partners: int

    @property
    def label(self) -> str:
        top = self.top or "all"
        return f"k={top} n>={self.min_count} P>={self.min_prob:g} max {self.max_partners}"


class CoChangeHistory:
    """How often files changed together, over the commits that are ancestors of one commit.

    Every commit's files are read once (``git log --name-only --no-renames``; merge commits list
    none); ``advance(parent)`` then adds the commits reachable from ``parent`` that were not
    added yet, so that the counts never include the commit under test nor anything after it.
    Commits touching more than ``max_files`` files are left out."""

    def __init__(self, repo: Path, rev: str, max_files: int) -> None:
        self.repo = repo
        self.max_files = max_files
        self.files_of: dict[str, tuple[str, ...]] = {}
        out = git(repo, "log", "-z", "--no-renames", "--name-only", "--format=%x01%H", rev)
        for record in out.split(b"\x01"):
            if not record:
                continue
            sha, *paths = record.split(b"\0")
            names = [raw.lstrip(b"\n").decode("utf-8", "surrogateescape") for raw in paths]
            self.files_of[sha.decode()] = tuple(sorted({name for name in names if name}))
        self.changes: Counter[str] = Counter()  # commits that changed each file
        self.together: dict[str, Counter[str]] = {}  # file -> partner -> commits with both
        self.tip: str | None = None
        self.commits = 0  # commits counted
        self.skipped = 0  # commits left out as too large

    def advance(self, commit: str) -> None:
        """Count every ancestor of ``commit`` (itself included) not counted yet."""
        spec = [commit] if self.tip is None else [commit, f"^{self.tip}"]
        for sha in git(self.repo, "rev-list", *spec).decode().split():
            self.add(self.files_of.get(sha, ()))
        self.tip = commit

    def add(self, files: Sequence[str]) -> None:
        if not files:
            return
        if len(files) > self.max_files:
            self.skipped += 1
            return
        self.commits += 1
        self.changes.update(files)
        for path in files:
            partners = self.together.setdefault(path, Counter())
            partners.update(other for other in files if other != path)

    def partners(self, path: str, setting: CoChangeSetting) -> list[str]:
        changed = self.changes.get(path, 0)
        if not changed:
            return []
        found = [
            (count, other)
            for other, count in self.together.get(path, Counter()).items()
            if count >= setting.min_count and count / changed >= setting.min_prob
        ]
        found.sort(key=lambda pair: (-pair[0], pair[1]))
        return [other for _, other in found]


def may_partner(path: str) -> bool:
    """What the executor could offer as a co-changed file: not a lock or generated file (the
    rule the executor knows, ``repomap``'s; the benchmark's own generated paths are not in it)."""
    return PurePosixPath(path).name not in LOCK_FILES and not path.endswith(GENERATED_SUFFIXES)


def expand(
    ranked: Sequence[str],
    partners: dict[str, list[str]],
    setting: CoChangeSetting,
    present: dict[str, int],
) -> tuple[list[str], list[str]]:
    """The ranking with each of its first ``setting.top`` files followed by its partners that
    exist at the parent (``present``) and are not listed yet; the rest of the ranking follows,
    without the files already listed. Also returns the partners added."""
    order: list[str] = []
    listed: set[str] = set()
    added: list[str] = []
    for position, path in enumerate(ranked):
        if path in listed:
            continue
        order.append(path)
        listed.add(path)
        if setting.top and position >= setting.top:
            continue
        taken = 0
        for other in partners.get(path, []):
            if taken == setting.max_partners:
                break
            if other in listed or other not in present or not may_partner(other):
                continue
            order.append(other)
            listed.add(other)
            added.append(other)
            taken += 1
    return order, added


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
    # The other selection policies: policy -> budget label -> as ``retrieval``.
    policies: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # Per co-change setting: the partners inserted, and those of them the commit touched.
    cochange: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    history_commits: int = 0  # history commits the co-change counts are made of
    tail_files: int = 0  # files ranked only by the search for every chunk
    tail_rank_s: float = 0.0


def budget_label(fraction: float | None, tokens: int | None) -> str:
    return f"{fraction:.0%} of repo" if fraction is not None else f"{tokens:,} tokens"


def cochange_policy(setting: CoChangeSetting, counting: str) -> str:
    return f"co-change {setting.label}, {counting}"


def head_tokens(text: str, lines: int) -> int:
    """Tokens of a file's first ``lines`` lines, the rest marked as ``excerpt`` marks a gap."""
    all_lines = text.splitlines()
    shown = all_lines[:lines]
    if len(all_lines) > lines:
        shown.append(f"[… lines {lines + 1}-{len(all_lines)} not shown …]")
    return approximate_tokens("\n".join(shown))


def outcome(chosen: Selection, budget: int, touched: set[str]) -> dict[str, Any]:
    return {
        "budget": budget,
        "files": chosen.files,
        "tokens": chosen.tokens,
        "recall": chosen.recall(len(touched)),
        "found": chosen.found,
        "missed": sorted(touched - set(chosen.found)),
    }


def measure_commit(
    memory: MemoryService,
    worktree: Path,
    commit: Commit,
    tokens: dict[str, int],
    budgets: Sequence[tuple[str, int | None, float | None]],
    seed: int,
    draws: int,
    chunk_limit: int,
    history: CoChangeHistory,
    settings: Sequence[CoChangeSetting],
    head_lines: int,
    tail_chunk_limit: int,
) -> Row:
    git(worktree, "checkout", "-q", "--detach", commit.parent)
    history.advance(commit.parent)
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
    row.history_commits = history.commits
    excerpt_tokens = excerpt_costs(hits, worktree)
    snippet_tokens = 0
    snippet_found: list[str] = []
    for hit in hits[:SNIPPET_FILES]:
        if hit.path in excerpt_tokens:
            snippet_tokens += excerpt_tokens[hit.path]
            if hit.path in touched:
                snippet_found.append(hit.path)
    row.snippets = {
        "files": min(len(hits), SNIPPET_FILES),
        "tokens": snippet_tokens,
        "found": snippet_found,
        "recall": len(snippet_found) / len(touched),
    }
    # The policies: an order of files and what each file costs.
    policies: dict[str, tuple[Sequence[str], dict[str, int]]] = {EXCERPTS: (ranked, excerpt_tokens)}
    # The tail: files only a search for every chunk ranks, in its order, each counted as its head.
    tail: list[str] | None = None
    heads: dict[str, int] = {}
    if tail_chunk_limit > chunk_limit:
        started = time.perf_counter()
        every = rank_files(memory, PROJECT, commit.message, chunk_limit=tail_chunk_limit)
        row.tail_rank_s = time.perf_counter() - started
        listed = set(ranked)
        tail = [hit.path for hit in every if hit.path not in listed and hit.path in tokens]
        for path in tail:
            if (cost := head_cost(worktree, path, tokens[path], head_lines)) is not None:
                heads[path] = cost
        row.tail_files = len(tail)
        policies[TAIL] = ([*ranked, *tail], excerpt_tokens | heads)
    for setting in settings:
        partners = {path: history.partners(path, setting) for path in ranked[: setting.top or None]}
        order, added = expand(ranked, partners, setting, tokens)
        row.cochange[setting.label] = {
            "added": added,
            "added_touched": [path for path in added if path in touched],
        }
        partner_costs = dict(excerpt_tokens)
        for path in added:
            if path not in partner_costs:
                cost = head_cost(worktree, path, tokens[path], head_lines)
                if cost is not None:
                    partner_costs[path] = cost
        policies[cochange_policy(setting, "whole files")] = (order, tokens)
        policies[cochange_policy(setting, "excerpts")] = (order, partner_costs)
        if tail is not None:
            listed = set(order)
            rest = [path for path in tail if path not in listed]
            policies[cochange_policy(setting, TAIL)] = ([*order, *rest], heads | partner_costs)
    paths = sorted(tokens)
    for label, absolute, fraction in budgets:
        budget = absolute if absolute is not None else int(whole * (fraction or 0.0))
        row.retrieval[label] = outcome(select(ranked, tokens, budget, touched), budget, touched)
        for name, (policy_order, policy_costs) in policies.items():
            chosen = select(policy_order, policy_costs, budget, touched)
            row.policies.setdefault(name, {})[label] = outcome(chosen, budget, touched)
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


def excerpt_costs(hits: Iterable[FileHit], worktree: Path) -> dict[str, int]:
    """Tokens of each hit's excerpt, cut from the checked-out parent as the executor cuts it
    (a hit whose excerpt is empty is left out, as the executor leaves it out)."""
    costs: dict[str, int] = {}
    for hit in hits:
        text = excerpt(hit, lambda path: read_text(worktree / path))
        if text is not None and text.strip():
            costs[hit.path] = approximate_tokens(text)
    return costs


def head_cost(worktree: Path, path: str, whole: int, lines: int) -> int | None:
    """A co-changed partner with no hit, or a file of the tail, counted as excerpts: its head,
    or whole (``lines`` 0); None for an empty file (nothing to show, as ``excerpt``)."""
    text = read_text(worktree / path)
    if text is None or not text.strip():
        return None
    return whole if lines == 0 else head_tokens(text, lines)


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


def result_of(row: Row, selector: str, label: str) -> dict[str, Any]:
    if selector == RANKED:
        return row.retrieval[label]
    if selector == RANDOM:
        return row.random[label]
    return row.policies[selector][label]


def by_group(rows: Sequence[Row], selector: str, label: str) -> dict[str, dict[str, Any]]:
    """A selector's micro recall by kind of touched file and by size of commit."""
    groups: dict[str, list[int]] = {}
    for row in rows:
        found = result_of(row, selector, label)["found"]
        size = len(row.touched)
        size_group = (
            f"commits of {size} file{'s' if size > 1 else ''}"
            if size < 3
            else (f"commits of 3-{MAX_TOUCHED} files")
        )
        for path in row.touched:
            hit = int(path in found)
            for group in (kind_of(path), size_group):
                groups.setdefault(group, [0, 0])
                groups[group][0] += hit
                groups[group][1] += 1
    return {
        group: {"found": hits, "touched": total, "recall": hits / total}
        for group, (hits, total) in groups.items()
    }


def summarise(
    rows: Sequence[Row], labels: Sequence[str], selectors: Sequence[str]
) -> dict[str, Any]:
    """``selectors``: RANKED, RANDOM, then the other policies, in the table's order."""
    touched_total = sum(len(row.touched) for row in rows)
    summary: dict[str, Any] = {}
    for label in labels:
        entry: dict[str, Any] = {}
        for selector in selectors:
            results = [result_of(row, selector, label) for row in rows]
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
        random_recall = entry[RANDOM]["micro_recall"]
        for selector in selectors:
            if selector == RANDOM:
                continue
            s = entry[selector]
            s["recall_ratio"] = s["micro_recall"] / random_recall if random_recall else None
            s["target_met"] = s["micro_recall"] >= TARGET_RECALL and s["mean_share"] <= TARGET_SHARE
            s["by_group"] = by_group(rows, selector, label)
        # The original keys, for retrieval (whole files in rank order).
        entry["recall_ratio"] = entry[RANKED]["recall_ratio"]
        entry["target_met"] = entry[RANKED]["target_met"]
        entry["by_group"] = entry[RANKED]["by_group"]
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
    # Per co-change setting: partners inserted, how many the commits touched, and how many
    # touched files were found only that way (never ranked by retrieval).
    cochange: dict[str, Any] = {}
    for setting in rows[0].cochange if rows else {}:
        added = [path for row in rows for path in row.cochange[setting]["added"]]
        useful = [path for row in rows for path in row.cochange[setting]["added_touched"]]
        unranked = [
            path
            for row in rows
            for path in row.cochange[setting]["added_touched"]
            if row.ranks.get(path) is None
        ]
        cochange[setting] = {
            "mean_added": len(added) / len(rows),
            "added_touched": len(useful),
            "precision": len(useful) / len(added) if added else None,
            "touched_never_ranked_reached": len(unranked),
        }
    summary["cochange"] = cochange
    return summary


def render(result: dict[str, Any]) -> str:
    summary = result["summary"]
    labels: list[str] = result["labels"]
    selectors: list[str] = result["selectors"]
    lines = [
        f"Context selection on {result['repo']} at {result['rev'][:12]}: "
        f"{result['commits_measured']} of "
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
        for selector in selectors:
            s = entry[selector]
            versus = ""
            if selector != RANDOM:
                ratio = s["recall_ratio"]
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
    lines += [
        "",
        "Micro recall per policy and budget (tokens selected as a mean share of the repository):",
        "",
        "| policy | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for selector in selectors:
        cells = " | ".join(
            f"{summary[label][selector]['micro_recall']:.1%} "
            f"({summary[label][selector]['mean_share']:.1%})"
            for label in labels
        )
        lines.append(f"| {selector} | {cells} |")
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
    policies = [selector for selector in selectors if selector != RANDOM]
    first = labels[0]
    widest = max(
        (label for label in labels if label.endswith("of repo")),
        key=lambda label: summary[label][RANKED]["mean_budget_share"],
        default=first,
    )
    lines += [
        "",
        f"Micro recall by kind of touched file and by size of commit, at {widest}, per policy:",
        "",
        "| policy | "
        + " | ".join(f"{group} ({groups[group]['touched']})" for group in order)
        + " |",
        "|---|" + "---|" * len(order),
    ]
    for selector in policies:
        cells = " | ".join(
            f"{summary[widest][selector]['by_group'][group]['recall']:.1%}" for group in order
        )
        lines.append(f"| {selector} | {cells} |")
    if summary["cochange"]:
        lines += [
            "",
            f"Co-change (history up to each parent; commits of more than "
            f"{result['cochange_max_files']} files left out; {result['history_commits_last']} "
            f"history commits counted for the last parent; a partner without a hit counted as "
            + (
                f"its first {result['head_lines']} lines"
                if result["head_lines"]
                else "its whole file"
            )
            + " under excerpt counting):",
            "",
            "| setting | partners inserted per commit | of them touched | precision "
            "| touched files reached that retrieval never ranked |",
            "|---|---|---|---|---|",
        ]
        for setting, c in summary["cochange"].items():
            precision = "n/a" if c["precision"] is None else f"{c['precision']:.1%}"
            lines.append(
                f"| {setting} | {c['mean_added']:.1f} | {c['added_touched']} | {precision} | "
                f"{c['touched_never_ranked_reached']} |"
            )
    met = []
    for selector in policies:
        at = [label for label in labels if summary[label][selector]["target_met"]]
        if at:
            met.append(f"{selector} at {', '.join(at)}")
    full = summary["full_recall_share_of_repo"]
    median = "n/a" if full["median"] is None else f"{full['median']:.1%}"
    ranked = summary["ranked_list"]
    lines += [
        "",
        f"target (<= {TARGET_SHARE:.0%} of the repository's tokens at >= {TARGET_RECALL:.0%} "
        f"micro recall): {'met by ' + '; '.join(met) if met else 'NOT met by any policy'}",
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
    if TAIL in selectors:
        lines.insert(
            -1,
            f"tail: rank_files with chunk_limit {result['tail_chunk_limit']:,} added "
            f"{result['mean_tail_files']:.1f} files on average, each counted as "
            + (f"its first {result['head_lines']} lines" if result["head_lines"] else "a whole")
            + f" (median {result['tail_rank_median_ms']:.0f} ms)",
        )
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


def parse_cochange(value: str) -> list[CoChangeSetting]:
    settings: list[CoChangeSetting] = []
    for part in value.split(","):
        if not part.strip():
            continue
        try:
            top, count, prob, most = part.strip().split(":")
            every = top == "all"
            setting = CoChangeSetting(0 if every else int(top), int(count), float(prob), int(most))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(
                f"{part!r} is not k:min_count:min_prob:max_partners, e.g. 5:2:0.3:3"
            ) from exc
        if (setting.top < 1 and not every) or setting.min_count < 1 or setting.max_partners < 1:
            raise argparse.ArgumentTypeError(
                f"{part!r}: k ('all' or a number), min_count and max_partners are >= 1"
            )
        if not 0 <= setting.min_prob <= 1:
            raise argparse.ArgumentTypeError(f"{part!r}: min_prob is in [0, 1]")
        settings.append(setting)
    return settings


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Recall and tokens of the code index's context selection on a "
        "repository's history, against the whole repository and a random selection.",
    )
    parser.add_argument(
        "--repo", type=Path, default=REPO_ROOT, help="git repository (default: this one)"
    )
    parser.add_argument(
        "--rev",
        default="HEAD",
        help="walk the first-parent history ending at this commit (default HEAD)",
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
        "--cochange",
        type=parse_cochange,
        default=DEFAULT_COCHANGE,
        help="co-change settings, k:min_count:min_prob:max_partners, comma-separated (k: the "
        "ranked files whose partners are inserted, 'all' for every one); empty for none "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--cochange-max-files",
        type=positive,
        default=COCHANGE_MAX_FILES,
        help="history commits touching more files are left out of the co-change counts "
        f"(default {COCHANGE_MAX_FILES})",
    )
    parser.add_argument(
        "--head-lines",
        type=non_negative,
        default=HEAD_LINES,
        help="under excerpt counting, a co-changed file with no hit, and a file of the tail, "
        f"costs its first N lines; 0: the whole file (default {HEAD_LINES})",
    )
    parser.add_argument(
        "--tail-chunk-limit",
        type=non_negative,
        default=TAIL_CHUNK_LIMIT,
        help="chunks of the second search whose extra files follow the excerpts in the "
        f"'{TAIL}' policy; 0 (or not above --chunk-limit): no such policy "
        f"(default {TAIL_CHUNK_LIMIT:,})",
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
    rev = git(repo, "rev-parse", "--verify", f"{args.rev}^{{commit}}").decode().strip()
    history = first_parent_history(repo, rev)
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
    history_log = CoChangeHistory(repo, rev, args.cochange_max_files)
    settings: list[CoChangeSetting] = args.cochange
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
                    history_log,
                    settings,
                    args.head_lines,
                    args.tail_chunk_limit,
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
    selectors = [RANKED, RANDOM, EXCERPTS]
    tailed = args.tail_chunk_limit > args.chunk_limit
    if tailed:
        selectors.append(TAIL)
    for setting in settings:
        selectors += [cochange_policy(setting, "whole files"), cochange_policy(setting, "excerpts")]
        if tailed:
            selectors.append(cochange_policy(setting, TAIL))
    return {
        "repo": str(repo),
        "rev": rev,
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
        "cochange_settings": [asdict(setting) for setting in settings],
        "cochange_max_files": args.cochange_max_files,
        "head_lines": args.head_lines,
        "tail_chunk_limit": args.tail_chunk_limit,
        "mean_tail_files": statistics.fmean(row.tail_files for row in rows),
        "tail_rank_median_ms": statistics.median(row.tail_rank_s for row in rows) * 1000,
        "history_commits_last": rows[-1].history_commits,
        "labels": labels,
        "selectors": selectors,
        "index_s": sum(row.index_s for row in rows),
        "rank_median_ms": statistics.median(row.rank_s for row in rows) * 1000,
        "total_s": time.perf_counter() - started_all,
        "summary": summarise(rows, labels, selectors),
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
