"""From chunks to files: ranking a project's files for a query, cutting excerpts from the file
as it is now, and finding known fixes by their exact failure signature (Qdrant local mode)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autopack.memory.retrieval import FileHit, excerpt, rank_files, select_context
from autopack.memory.service import MemoryService
from tests.conftest import make_settings
from tests.memory.test_memory_core import git


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[MemoryService]:
    service = MemoryService.from_settings(make_settings("sqlite://", tmp_path / "runs"))
    yield service
    service.close()


def make_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "files")
    return path


def test_files_are_ranked_by_their_best_chunk_and_named_once(
    memory: MemoryService, tmp_path: Path
) -> None:
    ledger = "\n\n".join(
        f"def reconcile_refund_batch_{i}(entries):\n    return [e for e in entries if e.refunded]"
        for i in range(3)
    )
    repo = make_repo(
        tmp_path / "repo",
        {
            "shop/ledger.py": ledger + "\n",
            "shop/shipping.py": "def schedule_parcel_pickup(depot):\n    return depot\n",
            "docs/refunds.md": "# Refunds\n\nHow refunds are reconciled each night.\n",
        },
    )
    memory.index_repository("shop", repo)
    ranked = rank_files(memory, "shop", "reconcile refunded entries in the ledger")
    paths = [hit.path for hit in ranked]
    assert paths[0] == "shop/ledger.py"
    assert len(paths) == len(set(paths))  # one entry per file, however many chunks matched
    assert "shop/shipping.py" not in paths
    assert ranked == sorted(ranked, key=lambda hit: -hit.score)
    # Another project's files are never ranked.
    assert rank_files(memory, "other", "reconcile refunded entries") == []


def test_path_words_find_a_file_whose_text_does_not_say_them(
    memory: MemoryService, tmp_path: Path
) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {"billing/invoices.py": "def total(lines):\n    return sum(lines)\n", "misc.py": "X = 1\n"},
    )
    memory.index_repository("shop", repo)
    assert [hit.path for hit in rank_files(memory, "shop", "invoices")] == ["billing/invoices.py"]


def test_an_excerpt_is_cut_from_the_file_as_it_is_now_with_gaps_marked() -> None:
    text = "\n".join(f"line {n}" for n in range(1, 31))
    hit = FileHit("a.py", 1.0, ((10, 11), (20, 20)))
    cut = excerpt(hit, lambda path: text if path == "a.py" else None)
    assert cut is not None
    lines = cut.splitlines()
    assert lines[0] == "[… lines 1-7 not shown …]"
    assert lines[1:7] == [f"line {n}" for n in range(8, 14)]
    assert "[… lines 14-17 not shown …]" in lines
    assert lines[-1] == "[… lines 23-30 not shown …]"
    # Ranges past the end of a file that has shrunk are dropped; a deleted file gives nothing.
    assert excerpt(FileHit("a.py", 1.0, ((40, 50),)), lambda _: text) is None
    assert excerpt(FileHit("gone.py", 1.0, ((1, 2),)), lambda _: None) is None


def test_known_fixes_are_found_by_their_exact_signature_in_their_project(
    memory: MemoryService,
) -> None:
    memory.add_fix("shop", "run-1", "p1", "9c1d", "test_total failed", "+return sum(x)")
    memory.add_fix("shop", "run-2", "p1", "9c1d", "test_total failed", "+return sum(x)")
    memory.add_fix("shop", "run-3", "p2", "0000", "another failure", "+pass")
    memory.add_fix("else", "run-4", "p1", "9c1d", "same signature, other project", "+x")
    hits = memory.find_fixes("shop", "9c1d")
    # The same fix twice is one point, naming the latest run.
    assert [(hit.payload["run_id"], hit.payload["diff"]) for hit in hits] == [
        ("run-2", "+return sum(x)")
    ]
    assert memory.find_fixes("shop", "ffff") == []


def test_select_context_offers_excerpts_of_ranked_files_then_heads_of_the_other_matches(
    memory: MemoryService, tmp_path: Path
) -> None:
    # 130 small files that say "ledger" once push the weak match below the first 120 chunks.
    files = {f"pad/p{i:03}.py": f"LEDGER_{i} = 'ledger ledger'\n" for i in range(130)}
    weak = "\n".join([f"value_{n} = {n}" for n in range(80)] + ["# mentions the ledger once"])
    files.update(
        {"shop/weak.py": weak + "\n", "shop/cart.py": "def ledger_total():\n    return 0\n"}
    )
    repo = make_repo(tmp_path / "repo", files)
    memory.index_repository("shop", repo)

    def read(path: str) -> str | None:
        target = repo / path
        return target.read_text() if target.is_file() else None

    chosen = select_context(memory, "shop", "ledger", read, exclude={"shop/cart.py"})
    paths = [item.path for item in chosen]
    assert "shop/cart.py" not in paths  # shown whole by the caller already
    assert len(paths) == len(set(paths))
    kinds = [item.kind for item in chosen]
    assert kinds == sorted(kinds, key=lambda kind: kind != "excerpt")  # excerpts first
    tail = next(item for item in chosen if item.path == "shop/weak.py")
    assert tail.kind == "head"
    assert tail.text.splitlines()[:60] == weak.splitlines()[:60]
    assert tail.text.splitlines()[-1] == "[… lines 61-81 not shown …]"
