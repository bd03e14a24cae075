"""``MemoryService``: Autopack's vector memory over qdrant-client.

One code path for both deployments: Qdrant local mode (``QdrantClient(path=memory_dir)``, on
disk, no server; one process at a time may open the directory) unless a Qdrant server is
configured (``AUTOPACK_QDRANT_HOST`` or ``AUTOPACK_QDRANT_URL``).

Collections: ``autopack_code`` (chunks of a project's files), ``autopack_summaries`` (phase
summaries), ``autopack_fixes`` (failure signature -> fix), ``autopack_rules``. Each point has the
sparse vector ``lexical`` (BM25, see ``lexical``) and, with an embeddings server configured,
the dense vector ``dense``, whose size is taken from the first embedding when the collection is
created. Changing the embedding model therefore needs a fresh index: remove the collections
(or ``AUTOPACK_MEMORY_DIR``) and index again.

The last commit indexed for each project is kept in Qdrant itself (the vector-less collection
``autopack_index_state``), next to the points it describes: a server shared by several machines,
or a memory directory copied elsewhere, never disagrees with its own bookmark.
"""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from qdrant_client import QdrantClient, models

from autopack.errors import ConfigurationError, InvalidInputError, MemoryUnavailableError
from autopack.memory import lexical
from autopack.memory.chunks import Chunk, chunk_file
from autopack.memory.embedders import Embedder, OpenAICompatibleEmbedder
from autopack.settings import Settings

CODE = "autopack_code"
SUMMARIES = "autopack_summaries"
FIXES = "autopack_fixes"
RULES = "autopack_rules"
COLLECTIONS = (CODE, SUMMARIES, FIXES, RULES)
STATE = "autopack_index_state"
SHORT_NAMES = {name.removeprefix("autopack_"): name for name in COLLECTIONS}

LEXICAL = "lexical"
DENSE = "dense"
# Files larger than this, and files with a NUL byte or that are not UTF-8, are not indexed.
MAX_INDEXED_FILE_BYTES = 512 * 1024
UPSERT_BATCH = 256
# Candidates each retriever brings to the fusion.
PREFETCH_FACTOR = 4
SERVER_TIMEOUT_SECONDS = 5
# Point ids are uuid5 names in this namespace: the same chunk always gets the same id.
NAMESPACE = uuid.UUID("6f1d3a52-8c1e-4c5b-9a55-0d7c1b2e9f41")

Mode = Literal["embedded", "server"]


@dataclass(frozen=True)
class MemoryHit:
    id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class MemoryStats:
    mode: Mode
    status: Literal["ok", "unreachable"]
    location: str
    embedder: str | None
    collections: dict[str, int]
    error: str | None = None


@dataclass
class IndexReport:
    project: str
    commit: str
    previous_commit: str | None
    full: bool
    files_indexed: list[str] = field(default_factory=list)
    files_deleted: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    chunks_upserted: int = 0


def resolve_collection(name: str) -> str:
    """``code`` or ``autopack_code`` -> ``autopack_code``; anything else is invalid input."""
    full = SHORT_NAMES.get(name, name)
    if full not in COLLECTIONS:
        raise InvalidInputError(
            f"unknown memory collection {name!r}; one of: {', '.join(SHORT_NAMES)}"
        )
    return full


def point_id(*parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, "\0".join(str(part) for part in parts)))


def _must(**values: object) -> list[models.Condition]:
    return [
        models.FieldCondition(key=key, match=models.MatchValue(value=value))
        for key, value in values.items()
        if value is not None
    ]


class MemoryService:
    """Index and search Autopack's memory. Thread-safe: calls are serialised (local mode is
    not safe for concurrent use)."""

    def __init__(
        self,
        client: QdrantClient,
        *,
        mode: Mode,
        location: str,
        embedder: Embedder | None = None,
    ) -> None:
        self.client = client
        self.mode: Mode = mode
        self.location = location
        self.embedder = embedder
        self._lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: Settings) -> MemoryService:
        """The memory the settings describe. Local mode opens (and locks) the directory now; a
        server is not contacted until the first call."""
        embedder = OpenAICompatibleEmbedder.from_settings(settings)
        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        if settings.uses_memory_server:
            # No version check at construction: it would contact the server, and a server that
            # is down must not stop Autopack from starting.
            if settings.qdrant_url:
                client = QdrantClient(
                    url=settings.qdrant_url,
                    api_key=api_key,
                    timeout=SERVER_TIMEOUT_SECONDS,
                    check_compatibility=False,
                )
                location = settings.qdrant_url
            else:
                client = QdrantClient(
                    host=settings.qdrant_host,
                    port=settings.qdrant_port,
                    api_key=api_key,
                    timeout=SERVER_TIMEOUT_SECONDS,
                    check_compatibility=False,
                )
                location = f"{settings.qdrant_host}:{settings.qdrant_port}"
            return cls(client, mode="server", location=location, embedder=embedder)
        path = settings.memory_path
        try:
            path.mkdir(parents=True, exist_ok=True)
            client = QdrantClient(path=str(path))
        except (RuntimeError, OSError) as exc:
            # RuntimeError: another process (say, `autopack serve`) has the directory open.
            raise MemoryUnavailableError(
                f"the memory directory {path} cannot be opened: {exc}"
            ) from exc
        return cls(client, mode="embedded", location=str(path), embedder=embedder)

    def close(self) -> None:
        with self._lock:
            self.client.close()
            close = getattr(self.embedder, "close", None)
            if callable(close):
                close()

    # --- collections ----------------------------------------------------------------------

    def _collection_exists(self, name: str) -> bool:
        try:
            return self.client.collection_exists(name)
        except Exception as exc:  # a server that is down or refuses us
            raise MemoryUnavailableError(
                f"the Qdrant server at {self.location} cannot be reached: {type(exc).__name__}"
            ) from exc

    def _ensure_collection(self, name: str, dense_size: int | None) -> None:
        if not self._collection_exists(name):
            vectors = (
                {DENSE: models.VectorParams(size=dense_size, distance=models.Distance.COSINE)}
                if dense_size is not None
                else {}
            )
            self.client.create_collection(
                name,
                vectors_config=vectors,
                sparse_vectors_config={
                    LEXICAL: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
            )
            if self.mode == "server":  # local mode has no payload indexes (and warns)
                for key in ("project", "path"):
                    self.client.create_payload_index(name, key, models.PayloadSchemaType.KEYWORD)
            return
        existing = self._dense_size(name)
        if dense_size is not None and existing != dense_size:
            raise ConfigurationError(
                f"the memory collection {name} was built "
                + (f"with {existing}-dimensional embeddings" if existing else "without embeddings")
                + f", but the embedder gives {dense_size}: remove the collection (or the memory "
                "directory) and index again"
            )

    def _dense_size(self, name: str) -> int | None:
        vectors = self.client.get_collection(name).config.params.vectors
        if isinstance(vectors, dict) and DENSE in vectors:
            return vectors[DENSE].size
        return None

    def _vectors(self, texts: Sequence[str]) -> tuple[list[dict[str, Any]], int | None]:
        """Each text's named vectors, and the dense size (None without an embedder)."""
        sparse = [lexical.document_vector(text) for text in texts]
        named: list[dict[str, Any]] = [
            {LEXICAL: models.SparseVector(indices=s.indices, values=s.values)} for s in sparse
        ]
        if self.embedder is None or not texts:
            return named, None
        dense = self.embedder.embed(texts)
        for vectors, vector in zip(named, dense, strict=True):
            vectors[DENSE] = vector
        return named, len(dense[0])

    def _upsert(
        self,
        collection: str,
        items: list[tuple[str, str, dict[str, Any]]],
        *,
        headers: Sequence[str] | None = None,
    ) -> int:
        """Upsert ``(id, text, payload)`` items; the text is embedded and kept in the payload.
        ``headers`` (one per item) are embedded in front of their text but not stored with it:
        a chunk's path, so that a query naming a module finds its files."""
        for start in range(0, len(items), UPSERT_BATCH):
            batch = items[start : start + UPSERT_BATCH]
            heads = headers[start : start + UPSERT_BATCH] if headers else [""] * len(batch)
            vectors, dense_size = self._vectors(
                [
                    f"{head}\n{text}" if head else text
                    for (_, text, _), head in zip(batch, heads, strict=True)
                ]
            )
            self._ensure_collection(collection, dense_size)
            self.client.upsert(
                collection,
                points=[
                    models.PointStruct(id=pid, vector=vector, payload={**payload, "text": text})
                    for (pid, text, payload), vector in zip(batch, vectors, strict=True)
                ],
            )
        return len(items)

    # --- writing ----------------------------------------------------------------------------

    def add_summary(self, project: str, run_id: str, phase_id: str, summary: str) -> str:
        """A phase's summary (what it changed and why); one point per run and phase."""
        pid = point_id(SUMMARIES, project, run_id, phase_id)
        payload = {"project": project, "run_id": run_id, "phase_id": phase_id}
        with self._lock:
            self._upsert(SUMMARIES, [(pid, summary, payload)])
        return pid

    def add_fix(
        self,
        project: str,
        run_id: str,
        phase_id: str,
        signature: str,
        fix: str,
        diff: str | None = None,
    ) -> str:
        """A failure signature and the fix that made it pass. Searched by the signature and the
        fix's description (not the diff). The same fix of the same failure is one point, however
        many runs made it (the latest run is named)."""
        pid = point_id(FIXES, project, signature, fix, diff or "")
        payload = {
            "project": project,
            "run_id": run_id,
            "phase_id": phase_id,
            "signature": signature,
            "fix": fix,
            "diff": diff,
            "stored_at": datetime.now(UTC).isoformat(),
        }
        with self._lock:
            self._upsert(FIXES, [(pid, f"{signature}\n{fix}", payload)])
        return pid

    def add_rule(self, project: str | None, rule_id: int, text: str) -> str:
        """A learned rule's text (``project`` None: a rule of every project)."""
        pid = point_id(RULES, rule_id)
        with self._lock:
            self._upsert(RULES, [(pid, text, {"project": project, "rule_id": rule_id})])
        return pid

    def index_repository(self, project: str, repo_path: Path) -> IndexReport:
        """Index the files of ``repo_path`` at HEAD into ``autopack_code``, incrementally: after
        the first time, only the files changed since the last indexed commit are chunked again,
        and deleted files' chunks are removed. Within a changed file, only chunks whose text or
        place changed are embedded again."""
        repo = _GitTree(repo_path)
        head = repo.head()
        with self._lock:
            previous = self._indexed_commit(project)
            tree = repo.files()
            changed: set[str] | None = None
            if previous is not None and repo.has_commit(previous):
                changed = repo.changed_files(previous, head)
            report = IndexReport(project, head, previous, full=changed is None)
            if changed is None:
                # First index (or the bookmark's commit is gone): compare content hashes with
                # what is stored, and drop paths no longer in the tree.
                stored = self._stored(project)
                candidates = {p for p in tree if p not in stored or stored[p].sha != tree[p].sha}
                gone = set(stored) - set(tree)
            else:
                # One read of what is stored for the changed paths (deleting or reading by a
                # filter scans the whole collection in local mode: once, not once per file).
                stored = self._stored(project, changed) if changed else {}
                candidates = {p for p in changed if p in tree}
                gone = {p for p in changed if p not in tree and p in stored}
            stale: set[str] = set()
            for path in sorted(gone):
                stale |= stored[path].ids
                report.files_deleted.append(path)
            blobs = repo.read_blobs([tree[p] for p in sorted(candidates)])
            for entry, data in blobs:
                before = stored.get(entry.path, _StoredFile("", set())).ids
                text = indexable_text(data)
                if text is None or entry.size > MAX_INDEXED_FILE_BYTES:
                    stale |= before
                    report.files_skipped.append(entry.path)
                    continue
                upserted, kept = self._index_file(
                    project, head, entry, chunk_file(entry.path, text), before
                )
                stale |= before - kept
                report.chunks_upserted += upserted
                report.files_indexed.append(entry.path)
            if stale:
                self.client.delete(CODE, points_selector=models.PointIdsList(points=sorted(stale)))
            self._remember(project, head)
        return report

    def _index_file(
        self,
        project: str,
        commit: str,
        entry: _TreeEntry,
        chunks: list[Chunk],
        before: set[str],
    ) -> tuple[int, set[str]]:
        """Upsert the chunks of one file that are not stored yet (``before``: the ids stored for
        its path); the ones stored already get the new commit and file hash. Returns how many
        were upserted and the ids the file has now."""
        payloads = {
            point_id(
                CODE, project, chunk.path, chunk.start_line, chunk.end_line, chunk.content_hash
            ): (
                chunk,
                {
                    "project": project,
                    "path": chunk.path,
                    "start_line": chunk.start_line,
                    "end_line": chunk.end_line,
                    "commit": commit,
                    "content_hash": chunk.content_hash,
                    "file_hash": entry.sha,
                },
            )
            for chunk in chunks
        }
        fresh = [
            (pid, chunk, payload) for pid, (chunk, payload) in payloads.items() if pid not in before
        ]
        upserted = self._upsert(
            CODE,
            [(pid, chunk.text, payload) for pid, chunk, payload in fresh],
            headers=[chunk.path for _, chunk, _ in fresh],
        )
        unchanged = sorted(set(payloads) & before)
        if unchanged:
            self.client.set_payload(
                CODE,
                payload={"commit": commit, "file_hash": entry.sha},
                points=models.PointIdsList(points=list(unchanged)),
            )
        return upserted, set(payloads)

    def _stored(self, project: str, paths: set[str] | None = None) -> dict[str, _StoredFile]:
        """What is indexed for ``project`` (only ``paths``, when given): each path's file hash
        and point ids."""
        if not self._collection_exists(CODE):
            return {}
        must = _must(project=project)
        if paths is not None:
            must.append(models.FieldCondition(key="path", match=models.MatchAny(any=sorted(paths))))
        files: dict[str, _StoredFile] = {}
        offset: Any = None
        while True:
            records, offset = self.client.scroll(
                CODE,
                scroll_filter=models.Filter(must=must),
                with_payload=["path", "file_hash"],
                limit=1000,
                offset=offset,
            )
            for record in records:
                payload = record.payload or {}
                stored = files.setdefault(
                    str(payload.get("path")), _StoredFile(str(payload.get("file_hash")), set())
                )
                stored.ids.add(str(record.id))
            if offset is None:
                return files

    def _indexed_commit(self, project: str) -> str | None:
        if not self._collection_exists(STATE):
            return None
        records = self.client.retrieve(STATE, [point_id(STATE, project)], with_payload=True)
        if not records or not records[0].payload:
            return None
        commit = records[0].payload.get("commit")
        return str(commit) if commit else None

    def indexed_commit(self, project: str) -> str | None:
        """The commit ``project`` was last indexed at (None: never)."""
        with self._lock:
            return self._indexed_commit(project)

    def _remember(self, project: str, commit: str) -> None:
        if not self._collection_exists(STATE):
            self.client.create_collection(STATE, vectors_config={})
        self.client.upsert(
            STATE,
            points=[
                models.PointStruct(
                    id=point_id(STATE, project),
                    vector={},
                    payload={
                        "project": project,
                        "commit": commit,
                        "indexed_at": datetime.now(UTC).isoformat(),
                    },
                )
            ],
        )

    # --- reading ----------------------------------------------------------------------------

    def search(
        self, collection: str, query: str, project: str | None = None, limit: int = 10
    ) -> list[MemoryHit]:
        """The best ``limit`` points for ``query``: lexical alone, or lexical and dense fused by
        reciprocal rank fusion when the collection has dense vectors and an embedder is set."""
        name = resolve_collection(collection)
        sparse = lexical.query_vector(query)
        with self._lock:
            if not sparse.indices or not self._collection_exists(name):
                return []
            flt = models.Filter(must=_must(project=project)) if project else None
            lexical_query = models.SparseVector(indices=sparse.indices, values=sparse.values)
            use_dense = self.embedder is not None and self._dense_size(name) is not None
            if not use_dense:
                result = self.client.query_points(
                    name,
                    query=lexical_query,
                    using=LEXICAL,
                    query_filter=flt,
                    limit=limit,
                    with_payload=True,
                )
            else:
                assert self.embedder is not None
                dense = self.embedder.embed([query])[0]
                depth = limit * PREFETCH_FACTOR
                result = self.client.query_points(
                    name,
                    prefetch=[
                        models.Prefetch(query=lexical_query, using=LEXICAL, limit=depth),
                        models.Prefetch(query=dense, using=DENSE, limit=depth),
                    ],
                    query=models.FusionQuery(fusion=models.Fusion.RRF),
                    query_filter=flt,
                    limit=limit,
                    with_payload=True,
                )
        return [
            MemoryHit(id=str(point.id), score=point.score, payload=dict(point.payload or {}))
            for point in result.points
        ]

    def find_fixes(self, project: str, signature: str, limit: int = 3) -> list[MemoryHit]:
        """The fixes stored for exactly this failure signature in ``project``, newest first (no
        ranking: a signature either matches or it does not)."""
        with self._lock:
            if not self._collection_exists(FIXES):
                return []
            records, _ = self.client.scroll(
                FIXES,
                scroll_filter=models.Filter(must=_must(project=project, signature=signature)),
                with_payload=True,
                limit=100,
            )
        hits = [
            MemoryHit(id=str(record.id), score=1.0, payload=dict(record.payload or {}))
            for record in records
        ]
        hits.sort(key=lambda hit: str(hit.payload.get("stored_at", "")), reverse=True)
        return hits[:limit]

    def count(self, collection: str, project: str | None = None) -> int:
        name = resolve_collection(collection)
        with self._lock:
            if not self._collection_exists(name):
                return 0
            flt = models.Filter(must=_must(project=project)) if project else None
            return self.client.count(name, count_filter=flt, exact=True).count

    def stats(self) -> MemoryStats:
        """Mode, whether the store answers, and the points in each collection."""
        embedder = self.embedder.name if self.embedder else None
        try:
            with self._lock:
                sizes = {
                    name: self.client.count(name, exact=True).count
                    if self.client.collection_exists(name)
                    else 0
                    for name in COLLECTIONS
                }
        except Exception as exc:  # a server that is down, refuses the key, times out
            return MemoryStats(
                self.mode, "unreachable", self.location, embedder, {}, type(exc).__name__
            )
        return MemoryStats(self.mode, "ok", self.location, embedder, sizes)


# --- git ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _StoredFile:
    sha: str
    ids: set[str]


@dataclass(frozen=True)
class _TreeEntry:
    path: str
    sha: str
    size: int


def indexable_text(data: bytes) -> str | None:
    """A file's text if the index takes it: no NUL in the first 8 KiB, valid UTF-8."""
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


class _GitTree:
    """The committed files of a repository at HEAD, read with git (never the working tree)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _git(self, *args: str) -> bytes:
        try:
            done = subprocess.run(
                ["git", "-C", str(self.path), *args], capture_output=True, check=True, timeout=300
            )
        except FileNotFoundError as exc:
            raise ConfigurationError("git is not installed") from exc
        except subprocess.CalledProcessError as exc:
            message = exc.stderr.decode("utf-8", "replace").strip()
            raise InvalidInputError(
                f"git {' '.join(args[:2])} failed in {self.path}: {message}"
            ) from exc
        return done.stdout

    def head(self) -> str:
        return self._git("rev-parse", "HEAD").decode().strip()

    def has_commit(self, commit: str) -> bool:
        try:
            self._git("cat-file", "-e", f"{commit}^{{commit}}")
        except InvalidInputError:
            return False
        return True

    def files(self) -> dict[str, _TreeEntry]:
        """Regular files at HEAD (submodules and symlinks left out), by path."""
        entries: dict[str, _TreeEntry] = {}
        for line in self._git("ls-tree", "-r", "-z", "--long", "HEAD").split(b"\0"):
            if not line:
                continue
            meta, _, path = line.partition(b"\t")
            mode, kind, sha, size = meta.split()
            if kind != b"blob" or mode not in (b"100644", b"100755"):
                continue
            name = path.decode("utf-8", "surrogateescape")
            entries[name] = _TreeEntry(name, sha.decode(), int(size))
        return entries

    def changed_files(self, old: str, new: str) -> set[str]:
        out = self._git("diff", "--name-only", "--no-renames", "-z", old, new)
        return {p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p}

    def read_blobs(self, entries: Sequence[_TreeEntry]) -> Iterator[tuple[_TreeEntry, bytes]]:
        """Each entry's content (huge ones as empty bytes: they are skipped anyway)."""
        small = [e for e in entries if e.size <= MAX_INDEXED_FILE_BYTES]
        for entry in entries:
            if entry.size > MAX_INDEXED_FILE_BYTES:
                yield entry, b""
        if not small:
            return
        request = b"".join(f"{e.sha}\n".encode() for e in small)
        out = subprocess.run(
            ["git", "-C", str(self.path), "cat-file", "--batch"],
            input=request,
            capture_output=True,
            check=True,
            timeout=300,
        ).stdout
        position = 0
        for entry in small:
            header_end = out.index(b"\n", position)
            size = int(out[position:header_end].split()[2])
            start = header_end + 1
            yield entry, out[start : start + size]
            position = start + size + 1
