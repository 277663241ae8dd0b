"""The store of record: a Chroma database, embedded in the data home (``HOME/chroma``) or on a
server (``--chroma-url``). It reads and writes Chroma only and hands back plain rows
(:class:`~ddsearch.index.records.PaperRows`); the SQLite cache is ddsearch.index.store's.

Chroma holds everything, in three collections (layout 2):

* ``ddsearch_chunks_v2``: one row per chunk and commit, id ``CHUNKID@TOKEN``: the chunk's vector
  as its embedding (inner-product space, which keeps the vector bit for bit, so Chroma's own
  search works and a cache gets exact vectors back), and metadata: paper, token, write time,
  the text, and the chunk's ordinal, pages, section and sentences (JSON).
* ``ddsearch_sentences_v2``: a paper's sentence vectors (float16, in chunk and sentence order),
  packed two to a float32 lane into embeddings of :data:`LANES` lanes, id ``PAPER@TOKEN#N``.
  An embedding is the one place Chroma stores bytes as they are: a string is indexed again and
  a document is tokenised, which tripled them. A lane's bit 30 is flipped, so that every lane is
  a finite, normal float, as Chroma requires (a unit vector's float16 never sets that bit).
* ``ddsearch_papers_v2``: the manifest, one row per committed paper: its record (Paper, sha256,
  settings fingerprint, chunk count) and its reference list (each entry's label, text, pages,
  the paper it names and where its citing sentences stand; absent: never read) as JSON, and
  metadata: the commit's token, time, model, dimension and number of sentence records. The
  references commit with the paper's manifest row, so a paper's edges are replaced whole.

A paper is written as new rows under a fresh token, then committed by upserting its manifest
row (one atomic write), then its rows of older tokens are deleted. Readers take a paper's rows
only under the token its manifest row names, and only when all of them are there, so a paper
is visible whole or not at all, whatever happens to the writer or the server midway. Rows no
manifest token owns are orphans, invisible, deleted by the next ingest once they are old.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ddsearch.config import StoreSettings
from ddsearch.index.records import (
    SENTENCE_DTYPE,
    Commit,
    IndexError_,
    PaperRecord,
    PaperRows,
    references_from_json,
    references_json,
)
from ddsearch.models import Chunk, Sentence

if TYPE_CHECKING:  # numpy is imported where rows are packed or decoded: a reader of the
    import numpy as np  # cache alone (refs, cited-by, path) starts without it

LAYOUT = 2
CHUNKS = "ddsearch_chunks_v2"
SENTENCES = "ddsearch_sentences_v2"
PAPERS = "ddsearch_papers_v2"
LANES = 2048  # float32 lanes per sentence record: 8 KiB, about ten sentence vectors
_FLIP = 0x40000000  # as a numpy.uint32
_SEGMENT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# an HNSW graph over the sentence records is never searched: keep it small; persist it often,
# so Chroma's log (which it keeps until then) stays short
_CONFIG = {"hnsw": {"space": "ip", "max_neighbors": 4, "sync_threshold": 100, "batch_size": 100}}


class ServerError(IndexError_):
    """The Chroma server cannot be reached or refused a request."""


def pack(blob: bytes) -> np.ndarray:
    """Bytes of float16 unit-vector components as float32 lanes (rows of LANES), zero-padded."""
    import numpy as np

    blob += b"\0" * (-len(blob) % (LANES * 4))
    flipped = np.frombuffer(blob, dtype=np.uint32) ^ np.uint32(_FLIP)
    lanes = flipped.view(np.float32).reshape(-1, LANES)
    if not np.isfinite(lanes).all():  # a component >= 1.875: not a unit vector's
        raise ValueError("sentence vectors must be unit vectors")
    return lanes


def unpack(lanes: Iterable) -> bytes:
    import numpy as np

    arrays = [np.asarray(x, dtype=np.float32).reshape(-1) for x in lanes]
    if not arrays:
        return b""
    return (np.concatenate(arrays).view(np.uint32) ^ np.uint32(_FLIP)).tobytes()


class Chroma:
    """The collections of one Chroma database: a server's (``url``), or the embedded one in a
    data home (``path``). ``token`` is sent as Chroma's token auth (Bearer)."""

    def __init__(self, url: str | None = None, token: str | None = None, *,
                 path: Path | None = None, settings: StoreSettings = StoreSettings()):  # fmt: skip
        self.token = token or None
        self.path = path
        self.settings = settings
        self._client: Any = None
        self._collections: dict[str, Any] = {}
        if path is not None:  # embedded: no server, no token
            self.url, self.token = f"embedded in {path}", None
            return
        if not url:
            raise IndexError_("no Chroma server given", "pass --chroma-url http://HOST:PORT")
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise IndexError_(f"--chroma-url must look like http://HOST:PORT, not {url!r}")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self._host, self._ssl = parts.hostname, parts.scheme == "https"
        self._port = parts.port or (443 if self._ssl else 8000)

    @property
    def embedded(self) -> bool:
        return self.path is not None

    @property
    def where(self) -> str:
        return "Chroma" if self.embedded else "Chroma server"

    def call(self, what: str, fn: Callable, *args, **kwargs):
        """fn(*args), with any failure turned into one line that names the database."""
        try:
            return fn(*args, **kwargs)
        except ServerError:
            raise
        except Exception as e:
            line = (str(e).strip().splitlines() or [type(e).__name__])[0]
            if any(w in line for w in ("401", "403", "Unauthorized", "Forbidden")):
                said = "refused the token" if self.token else "requires a token"
                raise ServerError(
                    f"Chroma server {self.url} {said}",
                    "pass --chroma-token or set DDSEARCH_CHROMA_TOKEN",
                ) from None
            raise ServerError(f"{self.where} {self.url}: cannot {what}: {line}") from None

    @property
    def client(self):
        if self._client is None:
            import chromadb
            from chromadb.config import Settings

            if self.embedded:
                self._client = self.call("open", chromadb.PersistentClient, path=str(self.path),
                                         settings=Settings(anonymized_telemetry=False))  # fmt: skip
            else:
                auth: dict[str, Any] = {}
                if self.token:
                    auth = {"chroma_client_auth_provider":
                            "chromadb.auth.token_authn.TokenAuthClientProvider",
                            "chroma_client_auth_credentials": self.token}  # fmt: skip
                self._client = self.call(
                    "connect",
                    chromadb.HttpClient,
                    host=self._host,
                    port=self._port,
                    ssl=self._ssl,
                    settings=Settings(anonymized_telemetry=False, **auth),
                )
        return self._client

    def close(self) -> None:
        """Let go of the client: chromadb keeps one system per database in the process, and a
        system kept open would not see what another process wrote meanwhile (nor free its
        files); the next use opens it afresh."""
        client, self._client, self._collections = self._client, None, {}
        if client is not None and hasattr(client, "close"):
            with contextlib.suppress(Exception):
                client.close()

    def collection(self, name: str):
        if name not in self._collections:
            self._collections[name] = self.call(
                f"open the collection {name}", self.client.get_or_create_collection, name,
                embedding_function=None, configuration=_CONFIG)  # fmt: skip
        return self._collections[name]

    def collection_names(self) -> list[str]:
        found = self.call("list the collections", self.client.list_collections)
        return [getattr(c, "name", c) for c in found]

    def delete_collection(self, name: str) -> None:
        self._collections.pop(name, None)
        self.call(f"delete the collection {name}", self.client.delete_collection, name)

    @property
    def origin(self) -> str:
        """What a cache was built from: the database and its collections' identities."""
        ids = " ".join(str(self.collection(n).id) for n in (CHUNKS, SENTENCES, PAPERS))
        if self.embedded:  # the data home may move; the collections are what matter
            return f"embedded {ids}"
        return f"chroma {self.url} {ids}"

    def manifest(self) -> dict[str, Commit]:
        got = self.call("read the manifest", self.collection(PAPERS).get, include=["metadatas"])
        return {pid: Commit(pid, m["token"], m["committed_ns"], m["chunks"], m["model"],
                            m["dimension"], m.get("blocks", 0))
                for pid, m in zip(got["ids"], got["metadatas"])}  # fmt: skip

    # -- writing ----------------------------------------------------------------------------
    def write(self, rows: PaperRows) -> Commit:
        """Write the paper's rows under a fresh token, commit, delete its older rows."""
        import numpy as np

        paper, chunks, batch = rows.record.paper, rows.chunks, self.settings.batch
        token = uuid.uuid4().hex[:16]
        now = time.time_ns()
        owner = {"paper": paper.id, "token": token, "written_ns": now}
        metadatas = [{**owner, "text": c.text, "chunk": _chunk_json(c)} for c in chunks]
        vectors = np.asarray(rows.vectors, dtype=np.float32)
        for start in range(0, len(chunks), batch):
            end = start + batch
            self.call(f"store the chunks of {paper.id}", self.collection(CHUNKS).upsert,
                      ids=[f"{c.id}@{token}" for c in chunks[start:end]],
                      embeddings=vectors[start:end], metadatas=metadatas[start:end])  # fmt: skip
        blob = b"".join(
            np.asarray(v, dtype=SENTENCE_DTYPE).tobytes() for v in rows.sentence_vectors
        )
        lanes = pack(blob) if blob else np.zeros((0, LANES), dtype=np.float32)
        for start in range(0, len(lanes), batch):
            end = min(start + batch, len(lanes))
            self.call(f"store the sentence vectors of {paper.id}",
                      self.collection(SENTENCES).upsert,
                      ids=[f"{paper.id}@{token}#{i}" for i in range(start, end)],
                      embeddings=lanes[start:end], metadatas=[owner] * (end - start))  # fmt: skip
        commit = Commit(paper.id, token, time.time_ns(), len(chunks), rows.model,
                        rows.dimension, len(lanes))  # fmt: skip
        doc = rows.record.as_json()
        if rows.references is not None:
            doc["references"] = references_json(rows.references)
        self.call(  # the commit point: one row, written atomically
            f"commit {paper.id}", self.collection(PAPERS).upsert, ids=[paper.id],
            embeddings=[[1.0]], documents=[json.dumps(doc, ensure_ascii=False)],
            metadatas=[{"token": token, "committed_ns": commit.committed_ns,
                        "chunks": commit.chunks, "model": commit.model,
                        "dimension": commit.dimension, "blocks": commit.blocks}],
        )  # fmt: skip
        older = {"$and": [{"paper": paper.id}, {"token": {"$ne": token}}]}
        for name in (CHUNKS, SENTENCES):
            self.call(f"delete the old rows of {paper.id}", self.collection(name).delete,
                      where=older)  # fmt: skip
        return commit

    def remove(self, paper_id: str) -> None:
        self.call(f"remove {paper_id}", self.collection(PAPERS).delete, ids=[paper_id])
        for name in (CHUNKS, SENTENCES):
            self.call(f"delete the rows of {paper_id}", self.collection(name).delete,
                      where={"paper": paper_id})  # fmt: skip

    # -- reading ----------------------------------------------------------------------------
    def read(
        self, manifest: dict[str, Commit], pids: Iterable[str]
    ) -> list[tuple[Commit, PaperRows]]:
        """These committed papers' rows, in commit order; a paper whose rows are not all
        there (being replaced right now) is left out, to be read next time."""
        pids = sorted(pids, key=lambda p: (manifest[p].committed_ns, p))
        if not pids:
            return []
        got = self.call("read paper records", self.collection(PAPERS).get, ids=pids,
                        include=["documents"])  # fmt: skip
        docs = dict(zip(got["ids"], got["documents"]))
        out = []
        for pid in pids:
            commit = manifest[pid]
            mine = {"$and": [{"paper": pid}, {"token": commit.token}]}
            rows = self.call(f"read the chunks of {pid}", self.collection(CHUNKS).get,
                             where=mine, include=["embeddings", "metadatas"])  # fmt: skip
            blocks = self.call(f"read the sentence vectors of {pid}",
                               self.collection(SENTENCES).get, where=mine,
                               include=["embeddings"])  # fmt: skip
            if (pid not in docs or len(rows["ids"]) != commit.chunks
                    or len(blocks["ids"]) != commit.blocks):  # fmt: skip
                continue
            doc = json.loads(docs[pid])
            decoded = _decode(PaperRecord.from_json(doc), commit, rows, blocks)
            if doc.get("references") is not None:
                found = references_from_json(doc["references"], decoded.chunks)
                decoded = replace(decoded, references=found)
            out.append((commit, decoded))
        return out

    def orphans(self) -> list[tuple[str, str]]:
        """(collection, id) of rows no commit owns, too old to be a live writer's (an embedded
        database has one writer, under the data home's lock: all of them)."""
        tokens = [c.token for c in self.manifest().values()]
        age = 0 if self.embedded else int(self.settings.orphan_minutes * 60e9)
        where: dict = {"written_ns": {"$lt": time.time_ns() - age + 1}}
        if tokens:
            where = {"$and": [where, {"token": {"$nin": tokens}}]}
        found = []
        for name in (CHUNKS, SENTENCES):
            ids = self.call("list orphans", self.collection(name).get, where=where, include=[])
            found += [(name, i) for i in ids["ids"]]
        return found

    def reconcile(self) -> int:
        """Delete the orphans; return how many."""
        orphans = self.orphans()
        for name in (CHUNKS, SENTENCES):
            ids = [i for n, i in orphans if n == name]
            for start in range(0, len(ids), self.settings.batch):
                self.call("delete orphans", self.collection(name).delete,
                          ids=ids[start : start + self.settings.batch])  # fmt: skip
        return len(orphans)

    def compact(self) -> None:
        """Merge the embedded database's full-text index (Chroma indexes every document with
        FTS5, in its own SQLite file) into one segment. A server compacts itself; a Chroma
        release without that table is left alone."""
        if self.path is None:
            return
        table = "embedding_fulltext_search"
        with contextlib.closing(sqlite3.connect(self.path / "chroma.sqlite3", timeout=30)) as db:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE name=? AND sql LIKE '%fts5%'", (table,)
            ).fetchone()
            if found:
                with db:
                    db.execute(f"INSERT INTO {table}({table}) VALUES('optimize')")

    def vacuum(self) -> None:
        """Give the embedded database's space back to the disk after collections of an older
        layout are deleted (this process's handle on it is closed first): their entries in the
        full-text index, their free pages, the folders of their vector indexes."""
        if self.path is None:
            return
        from chromadb.api.client import SharedSystemClient

        self._client, self._collections = None, {}
        SharedSystemClient.clear_system_cache()
        self.compact()  # the deleted rows' entries in the full-text index go first
        with contextlib.closing(sqlite3.connect(self.path / "chroma.sqlite3", timeout=30)) as db:
            db.execute("VACUUM")
            kept = {row[0] for row in db.execute("SELECT id FROM segments")}
        # a deleted collection's vector index stays on disk as a folder named for its segment
        for folder in self.path.iterdir():
            if folder.is_dir() and _SEGMENT.fullmatch(folder.name) and folder.name not in kept:
                shutil.rmtree(folder, ignore_errors=True)


def _chunk_json(c: Chunk) -> str:
    return json.dumps({
        "id": c.id, "ordinal": c.ordinal, "pages": list(c.pages),
        "printed": list(c.printed_pages), "section": c.section,
        "sentences": [[s.start, s.end, list(s.pages), list(s.printed), s.caption]
                      for s in c.sentences],
    }, separators=(",", ":"), ensure_ascii=False)  # fmt: skip


def _decode(record: PaperRecord, commit: Commit, rows: dict, blocks: dict) -> PaperRows:
    """A paper's Chroma rows as plain rows: chunks in order, their vectors and sentence vectors."""
    import numpy as np

    pid = record.paper.id
    items = []
    for meta, vector in zip(rows["metadatas"], rows["embeddings"]):
        extra = json.loads(meta["chunk"])
        sentences = tuple(Sentence(a, b, tuple(pages), tuple(printed), bool(caption))
                          for a, b, pages, printed, caption in extra["sentences"])  # fmt: skip
        chunk = Chunk(extra["id"], pid, extra["ordinal"], meta["text"], tuple(extra["pages"]),
                      extra["section"], tuple(extra["printed"]), sentences)  # fmt: skip
        items.append((chunk, np.asarray(vector, dtype=np.float32)))
    items.sort(key=lambda item: item[0].ordinal)
    chunks = [c for c, _ in items]
    dim = commit.dimension
    vectors = np.stack([v for _, v in items]) if items else np.zeros((0, dim), np.float32)
    order = sorted(range(len(blocks["ids"])), key=lambda i: int(blocks["ids"][i].rsplit("#", 1)[1]))
    flat = np.frombuffer(unpack(blocks["embeddings"][i] for i in order), dtype=SENTENCE_DTYPE)
    sentence_vectors, at = [], 0
    for c in chunks:
        n = len(c.sentences) * dim
        sentence_vectors.append(flat[at : at + n].reshape(len(c.sentences), dim))
        at += n
    return PaperRows(record, chunks, vectors, sentence_vectors, commit.model)


def embedded_path(home: Path) -> Path:
    return Path(home) / "chroma"


def exists(home: Path) -> bool:
    """Whether the home has an embedded Chroma database."""
    return os.path.isdir(embedded_path(home))
