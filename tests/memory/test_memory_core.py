"""The memory's parts against real Qdrant local mode in temporary directories and real git."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autopack.memory import lexical
from autopack.memory.chunks import chunk_file
from autopack.memory.service import CODE, MemoryService
from tests.conftest import make_settings


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "billing.py").write_text(
        textwrap.dedent(
            '''
            """Invoices."""

            TAX = 0.2


            def compute_invoice_total(lines):
                return sum(line.amount for line in lines) * (1 + TAX)


            class RefundLedger:
                def reconcile_refunds(self, entries):
                    return [e for e in entries if e.refunded]
            '''
        ).lstrip()
    )
    (repo / "shipping.py").write_text("def schedule_parcel_pickup(depot):\n    return depot\n")
    (repo / "README.md").write_text("# Shop\n\nSells parcels and invoices.\n")
    (repo / "logo.png").write_bytes(b"\x89PNG\0\0binary")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    return repo


@pytest.fixture
def memory(tmp_path: Path) -> MemoryService:
    settings = make_settings("sqlite://", tmp_path / "runs")
    service = MemoryService.from_settings(settings)
    yield service  # type: ignore[misc]
    service.close()


def test_tokenizer_splits_identifiers() -> None:
    terms = lexical.tokenize("def parseHTTPConfig(max_retry_count): return a")
    assert {"parse", "http", "config", "parsehttpconfig", "max", "retry", "count"} <= set(terms)
    assert "max_retry_count" in terms
    assert "def" not in terms and "a" not in terms


def test_term_ids_are_stable_across_processes() -> None:
    words = ["invoice", "reconcile_refunds", "Überweisung"]
    here = [lexical.term_id(word) for word in words]
    code = f"from autopack.memory import lexical; print([lexical.term_id(w) for w in {words!r}])"
    other = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin"},
    ).stdout
    assert other.strip() == str(here)
    assert all(0 <= i < 2**31 for i in here)


def test_document_vector_saturates_term_frequency() -> None:
    once = lexical.document_vector("invoice")
    many = lexical.document_vector("invoice " * 50)
    assert once.indices == many.indices
    assert once.values[0] < many.values[0] < lexical.K1 + 1


def test_python_is_chunked_at_definitions() -> None:
    source = textwrap.dedent(
        """\
        import os

        X = 1


        @decorator
        def first():
            return 1


        class Second:
            def method(self):
                return 2
        """
    )
    chunks = chunk_file("mod.py", source)
    spans = [(c.start_line, c.end_line, c.text.splitlines()[0]) for c in chunks]
    assert spans == [
        (1, 3, "import os"),
        (6, 8, "@decorator"),
        (11, 13, "class Second:"),
    ]
    assert chunks[1].content_hash != chunks[2].content_hash


def test_long_definitions_and_text_are_windowed() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(300))
    chunks = chunk_file("big.py", f"def big():\n{body}\n")
    assert [c.start_line for c in chunks] == [1, 61, 121, 181, 241, 301]
    assert chunks[-1].end_line == 301
    text = "\n\n".join(f"para {i}\nline" for i in range(100))
    text_chunks = chunk_file("notes.md", text)
    assert all(c.end_line - c.start_line < 60 for c in text_chunks)
    assert text_chunks[0].start_line == 1 and text_chunks[-1].end_line == 299


def test_index_and_search_then_incremental_reindex(repo: Path, memory: MemoryService) -> None:
    first = memory.index_repository("shop", repo)
    assert first.full
    assert sorted(first.files_indexed) == ["README.md", "billing.py", "shipping.py"]
    assert first.files_skipped == ["logo.png"]
    hits = memory.search("code", "reconcile_refunds", project="shop")
    assert hits[0].payload["path"] == "billing.py"
    assert hits[0].payload["start_line"] == 10
    assert "def reconcile_refunds" in hits[0].payload["text"]
    assert memory.search("code", "parcel pickup")[0].payload["path"] == "shipping.py"
    assert memory.search("code", "reconcile_refunds", project="other") == []

    # Idempotent: the same commit again changes nothing.
    again = memory.index_repository("shop", repo)
    assert not again.full and again.files_indexed == [] and again.files_deleted == []
    before = memory.count("code", project="shop")

    (repo / "billing.py").write_text("def settle_chargeback_dispute():\n    return None\n")
    (repo / "shipping.py").unlink()
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "second")
    head = git(repo, "rev-parse", "HEAD")
    second = memory.index_repository("shop", repo)
    assert not second.full
    assert second.files_indexed == ["billing.py"]
    assert second.files_deleted == ["shipping.py"]
    assert second.chunks_upserted == 1
    assert memory.indexed_commit("shop") == head
    assert memory.search("code", "schedule_parcel_pickup") == []
    assert memory.search("code", "reconcile_refunds") == []
    top = memory.search("code", "chargeback dispute")[0]
    assert top.payload["path"] == "billing.py" and top.payload["commit"] == head
    # README's chunk kept its first commit: it was not touched.
    readme = memory.search("code", "sells parcels invoices")[0]
    assert readme.payload["path"] == "README.md" and readme.payload["commit"] != head
    assert memory.count("code", project="shop") == before - 4 + 1


def test_summaries_fixes_and_stats(memory: MemoryService) -> None:
    memory.add_summary("shop", "run-1", "p1", "Added refund reconciliation to the ledger")
    memory.add_fix("shop", "run-1", "p1", "ImportError: cannot import name Ledger", "export Ledger")
    memory.add_fix("shop", "run-1", "p1", "ImportError: cannot import name Ledger", "export Ledger")
    hit = memory.search("fixes", "cannot import Ledger")[0]
    assert hit.payload["fix"] == "export Ledger"
    stats = memory.stats()
    assert stats.mode == "embedded" and stats.status == "ok"
    assert stats.collections == {
        "autopack_code": 0,
        "autopack_summaries": 1,
        "autopack_fixes": 1,
        "autopack_rules": 0,
    }
    assert memory.search(CODE, "anything") == []


def test_the_memory_directory_is_persistent(repo: Path, tmp_path: Path) -> None:
    settings = make_settings("sqlite://", tmp_path / "runs2")
    service = MemoryService.from_settings(settings)
    service.index_repository("shop", repo)
    service.close()
    assert (tmp_path / "runs2" / "memory").is_dir()
    reopened = MemoryService.from_settings(settings)
    try:
        assert reopened.search("code", "compute_invoice_total")[0].payload["path"] == "billing.py"
    finally:
        reopened.close()


def test_a_changed_file_embeds_again_only_the_chunks_that_changed(
    repo: Path, memory: MemoryService
) -> None:
    memory.index_repository("shop", repo)
    before = memory.count("code", project="shop")
    text = (repo / "billing.py").read_text()
    # The last definition's body changes; the chunks above it keep their text and lines.
    (repo / "billing.py").write_text(text.replace("e.refunded", "e.refunded and e.settled"))
    git(repo, "commit", "-q", "-am", "settled refunds only")
    head = git(repo, "rev-parse", "HEAD")
    report = memory.index_repository("shop", repo)
    assert report.files_indexed == ["billing.py"]
    assert report.chunks_upserted == 1
    assert memory.count("code", project="shop") == before  # the old version's chunk is gone
    changed = memory.search("code", "settled refunds", project="shop")[0]
    assert "e.settled" in changed.payload["text"] and changed.payload["commit"] == head
    # The unchanged chunk of the file now says it belongs to the new commit too.
    total = memory.search("code", "compute_invoice_total", project="shop")[0]
    assert total.payload["path"] == "billing.py" and total.payload["commit"] == head
    assert total.payload["file_hash"] == changed.payload["file_hash"]
    # A full comparison (as after a lost bookmark) finds nothing left to do.
    memory.client.delete_collection("autopack_index_state")
    assert memory.index_repository("shop", repo).files_indexed == []
