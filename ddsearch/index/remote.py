"""The store of record: a Chroma database, embedded in the data home (``HOME/chroma``) or on a
server (``--chroma-url``); the data home's SQLite file is a cache derived from it.

Chroma holds everything, in two collections:

* ``ddsearch_chunks``: one row per chunk and commit, id ``CHUNKID@TOKEN``, with the vector as
  its embedding (for Chroma's own search), the text as its document, and metadata: paper,
  token, ordinal, the chunk's pages/printed pages/section (JSON), and the exact float32 vector
  (base64; the HTTP round trip of embeddings is not bit-exact, and identical results need
  identical vectors).
* ``ddsearch_papers``: the manifest, one row per committed paper: its record (Paper, sha256,
  settings fingerprint, chunk count) as JSON, and metadata: the commit's token, time, model.

A paper is written as new rows under a fresh token, then committed by upserting its manifest
row (one atomic write), then its rows of older tokens are deleted. Readers take a paper's rows
only under the token its manifest row names, and only when all of them are there, so a paper
is visible whole or not at all, whatever happens to the writer or the server midway. Rows no
manifest token owns are orphans, invisible, deleted by the next ingest once they are old.

The local ``index.db`` is a cache: ``sync`` compares the manifest's tokens with the ones it
was built from and fetches what changed, inserting papers in commit order (then chunk order),
as an embedded index would have, so every client ranks ties the same way.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from dataclasses import asdict
from urllib.parse import urlsplit

from ddsearch.index.records import IndexError_, PaperRecord, paper_from_json, sentence_blob

CHUNKS = "ddsearch_chunks"
PAPERS = "ddsearch_papers"
BATCH = 500
ORPHAN_AGE_NS = 15 * 60 * 10**9  # rows this old without a commit are a dead writer's


class ServerError(IndexError_):
    """The Chroma server cannot be reached or refused a request."""


def _vec_to_b64(v) -> str:
    return base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")


def _b64_to_bytes(s: str) -> bytes:
    return base64.b64decode(s)


class Remote:
    """A connection to the collections of one Chroma database: a server's, or the embedded one
    in a data home (``path``)."""

    def __init__(self, url: str | None = None, token: str | None = None, *, path=None):
        """``token`` (default: $DDSEARCH_CHROMA_TOKEN) is sent as Chroma's token auth,
        ``Authorization: Bearer TOKEN``."""
        self.token = token or os.environ.get("DDSEARCH_CHROMA_TOKEN") or None
        self.path = path
        self._chunks = self._papers = None
        if path is not None:  # embedded: no server, no token
            self.url, self.token = f"embedded in {path}", None
            return
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise IndexError_(f"--chroma-url must look like http://HOST:PORT, not {url!r}")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self._host, self._ssl = parts.hostname, parts.scheme == "https"
        self._port = parts.port or (443 if self._ssl else 8000)

    @property
    def embedded(self) -> bool:
        return self.path is not None

    def _call(self, what: str, fn, *args, **kwargs):
        """fn(*args), with any failure turned into one line that names the server."""
        try:
            return fn(*args, **kwargs)
        except ServerError:
            raise
        except Exception as e:
            line = (str(e).strip().splitlines() or [type(e).__name__])[0]
            if any(w in line for w in ("401", "403", "Unauthorized", "Forbidden")):
                said = "refused the token" if self.token else "requires a token"
                raise ServerError(
                    f"Chroma server {self.url} {said}: pass --chroma-token or set "
                    "DDSEARCH_CHROMA_TOKEN"
                ) from None
            where = "Chroma" if self.embedded else "Chroma server"
            raise ServerError(f"{where} {self.url}: cannot {what}: {line}") from None

    def _connect(self) -> None:
        import chromadb
        from chromadb.config import Settings

        if self.embedded:
            client = self._call(
                "open",
                chromadb.PersistentClient,
                path=str(self.path),
                settings=Settings(anonymized_telemetry=False, allow_reset=False),
            )
            self._open_collections(client)
            return
        auth = {}
        if self.token:
            auth = {
                "chroma_client_auth_provider": "chromadb.auth.token_authn.TokenAuthClientProvider",
                "chroma_client_auth_credentials": self.token,
            }
        client = self._call(
            "connect",
            chromadb.HttpClient,
            host=self._host,
            port=self._port,
            ssl=self._ssl,
            settings=Settings(anonymized_telemetry=False, **auth),
        )
        self._open_collections(client)

    def _open_collections(self, client) -> None:
        self._chunks = self._call(
            "open the chunks collection",
            client.get_or_create_collection,
            CHUNKS,
            metadata={"hnsw:space": "cosine"},
            embedding_function=None,
        )
        self._papers = self._call(
            "open the papers collection",
            client.get_or_create_collection,
            PAPERS,
            embedding_function=None,
        )

    @property
    def chunks(self):
        if self._chunks is None:
            self._connect()
        return self._chunks

    @property
    def papers(self):
        if self._papers is None:
            self._connect()
        return self._papers

    @property
    def origin(self) -> str:
        """What a cache was built from: the database and its collections' identities."""
        if self.embedded:  # the data home may move; the collections are what matter
            return f"embedded {self.chunks.id} {self.papers.id}"
        return f"chroma {self.url} {self.chunks.id} {self.papers.id}"

    def manifest(self) -> dict[str, dict]:
        got = self._call("read the manifest", self.papers.get, include=["metadatas"])
        return dict(zip(got["ids"], got["metadatas"]))

    # -- writing ----------------------------------------------------------------------------
    def replace_paper(self, store, record: PaperRecord, chunks, vectors, model: str,
                      sentence_vectors) -> None:  # fmt: skip
        """Commit the paper to Chroma, then have the cache take it as committed."""
        self._apply(store, [], [self.write_paper(record, chunks, vectors, model, sentence_vectors)])

    def write_paper(self, record: PaperRecord, chunks, vectors, model: str, sentence_vectors):
        """Write the paper's rows under a fresh token, commit, delete its older rows; return
        (paper id, commit, record, rows) as the cache takes them."""
        import numpy as np

        vectors = np.asarray(vectors, dtype=np.float32)
        paper = record.paper
        token = uuid.uuid4().hex[:16]
        now = time.time_ns()
        metadatas = [
            {
                "paper": paper.id,
                "token": token,
                "ordinal": c.ordinal,
                "first_page": c.pages[0] if c.pages else 0,
                "written_ns": now,
                "chunk": json.dumps(
                    {
                        "id": c.id,
                        "pages": list(c.pages),
                        "printed": list(c.printed_pages),
                        "section": c.section,
                        "sentences": [
                            [s.start, s.end, list(s.pages), list(s.printed), s.caption]
                            for s in c.sentences
                        ],
                    }
                ),
                "vector": _vec_to_b64(v),
                "sentence_vectors": base64.b64encode(sentence_blob(sv)).decode("ascii"),
            }
            for c, v, sv in zip(chunks, vectors, sentence_vectors)
        ]
        for start in range(0, len(chunks), BATCH):
            end = start + BATCH
            self._call(
                f"store the chunks of {paper.id}",
                self.chunks.upsert,
                ids=[f"{c.id}@{token}" for c in chunks[start:end]],
                embeddings=vectors[start:end],
                documents=[c.text for c in chunks[start:end]],
                metadatas=metadatas[start:end],
            )
        doc = {
            "paper": asdict(paper),
            "sha256": record.sha256,
            "settings": record.settings,
            "chunks": len(chunks),
            "source": record.source,
            "ingested_at": record.ingested_at,
        }
        dimension = int(vectors.shape[1]) if len(vectors) else 0
        committed = {
            "token": token,
            "committed_ns": time.time_ns(),
            "chunks": len(chunks),
            "model": model,
            "dimension": dimension,
        }
        self._call(  # the commit point: one row, written atomically
            f"commit {paper.id}",
            self.papers.upsert,
            ids=[paper.id],
            embeddings=[[1.0]],
            documents=[json.dumps(doc)],
            metadatas=[committed],
        )
        self._call(
            f"delete the old chunks of {paper.id}",
            self.chunks.delete,
            where={"$and": [{"paper": paper.id}, {"token": {"$ne": token}}]},
        )
        # the cache takes the paper as committed, from what is in hand: reading the whole
        # manifest and the chunks back after every paper made a big ingest superlinear
        rows = {"ids": [c.id for c in chunks], "documents": [c.text for c in chunks],
                "metadatas": metadatas}  # fmt: skip
        return paper.id, committed, doc, rows

    def remove_paper(self, store, paper_id: str) -> None:
        self._call(f"remove {paper_id}", self.papers.delete, ids=[paper_id])
        self._call(
            f"delete the chunks of {paper_id}", self.chunks.delete, where={"paper": paper_id}
        )
        self.sync(store)

    def compact(self) -> None:
        """Merge the embedded database's full-text index (Chroma indexes every chunk's text
        with FTS5, in its own SQLite file) into one segment. A server compacts itself; a
        Chroma release without that table is left alone."""
        if not self.embedded:
            return
        import contextlib
        import sqlite3

        table = "embedding_fulltext_search"
        path = os.path.join(str(self.path), "chroma.sqlite3")
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE name=? AND sql LIKE '%fts5%'", (table,)
            ).fetchone()
            if found:
                with db:
                    db.execute(f"INSERT INTO {table}({table}) VALUES('optimize')")

    def orphans(self) -> list[str]:
        """Ids of rows that no commit owns and that are too old to be a live writer's (an
        embedded database has one writer, under the data home's lock: all of them)."""
        tokens = [m["token"] for m in self.manifest().values()]
        age = 0 if self.embedded else ORPHAN_AGE_NS
        where = {"written_ns": {"$lt": time.time_ns() - age + 1}}
        if tokens:
            where = {"$and": [where, {"token": {"$nin": tokens}}]}
        return self._call("list orphans", self.chunks.get, where=where, include=[])["ids"]

    def reconcile(self) -> int:
        """Delete the orphans; return how many."""
        ids = self.orphans()
        for start in range(0, len(ids), BATCH):
            self._call("delete orphans", self.chunks.delete, ids=ids[start : start + BATCH])
        return len(ids)

    # -- the cache ---------------------------------------------------------------------------
    def sync(self, store, remote: dict[str, dict] | None = None) -> bool:
        """Bring the local cache up to the server's committed state (``remote``, the manifest
        if already read); True if it changed."""
        remote = self.manifest() if remote is None else remote
        local = json.loads(store.meta("remote_tokens") or "{}")
        changed = [p for p, m in remote.items() if local.get(p) != m["token"]]
        removed = [p for p in local if p not in remote]
        if not changed and not removed:
            return False
        self._apply(store, removed, self._fetch(remote, changed))
        return True

    def _fetch(self, remote: dict[str, dict], pids: list[str]) -> list[tuple]:
        """(paper id, commit, record, rows) of these committed papers, in commit order."""
        pids = sorted(pids, key=lambda p: (remote[p]["committed_ns"], p))
        if not pids:
            return []
        got = self._call("read paper records", self.papers.get, ids=pids, include=["documents"])
        docs = dict(zip(got["ids"], got["documents"]))
        fetched = []
        for pid in pids:
            meta = remote[pid]
            rows = self._call(
                f"read the chunks of {pid}",
                self.chunks.get,
                where={"$and": [{"paper": pid}, {"token": meta["token"]}]},
                include=["documents", "metadatas"],
            )
            if pid not in docs or len(rows["ids"]) != meta["chunks"]:
                continue  # being replaced right now: keep what the cache has, retry next time
            fetched.append((pid, meta, json.loads(docs[pid]), rows))
        return fetched

    def settle(self, store) -> None:
        """Sync, and make sure the cache holds the papers in commit order, as a new client's
        does (equal scores go by row order). A writer's cache takes its own papers as it
        commits them, so it is out of order only if another writer committed meanwhile;
        then all of it is read again and replaced in one transaction."""
        remote = self.manifest()
        self.sync(store, remote)
        cached = [
            r[0]
            for r in store.db.execute(
                "SELECT paper_id FROM chunks GROUP BY paper_id ORDER BY min(rowid)"
            )
        ]
        ordered = sorted(
            cached, key=lambda p: (remote[p]["committed_ns"], p) if p in remote else (0, p)
        )
        if cached == ordered:
            return
        self._apply(store, cached, self._fetch(remote, list(remote)), replace=True)

    def _apply(self, store, removed, fetched, *, replace: bool = False) -> None:
        """Remove and write papers in the cache, in one transaction; ``replace``: ``removed``
        are all the cached papers and ``fetched`` all the server's."""
        with store.transaction():
            tokens = json.loads(store.meta("remote_tokens") or "{}")  # another process may
            for pid in removed:  # have synced meanwhile: decide again under the lock
                if pid in tokens or replace:
                    store._delete_rows(pid)
                    store.db.execute("DELETE FROM papers WHERE id=?", (pid,))
                    tokens.pop(pid, None)
            latest = None
            for pid, meta, doc, rows in fetched:
                if tokens.get(pid) == meta["token"]:
                    continue
                record = PaperRecord(
                    paper_from_json(json.dumps(doc["paper"])),
                    doc["sha256"],
                    doc["settings"],
                    doc["chunks"],
                    doc["source"],
                    doc["ingested_at"],
                )
                store._write_rows(record, *_decode_rows(pid, rows))
                tokens[pid] = meta["token"]
                latest = meta
            if latest is not None:
                store.set_meta("model", latest["model"])
                if latest["dimension"]:
                    store.set_meta("dimension", str(latest["dimension"]))
            store.set_meta("remote_tokens", json.dumps(tokens, sort_keys=True))
            store.bump_generation()


def _decode_rows(pid: str, rows: dict) -> tuple[list, list[bytes], list[bytes]]:
    """A paper's Chroma rows as the cache writes them: chunks in order, their vectors and
    sentence vectors (bytes)."""
    from ddsearch.models import Chunk, Sentence

    chunks, blobs, sentence_blobs = [], [], []
    for i in sorted(range(len(rows["ids"])), key=lambda i: rows["metadatas"][i]["ordinal"]):
        m, extra = rows["metadatas"][i], json.loads(rows["metadatas"][i]["chunk"])
        sentences = tuple(
            Sentence(a, b, tuple(pages), tuple(printed), bool(caption))
            for a, b, pages, printed, caption in extra["sentences"]
        )
        chunks.append(
            Chunk(
                extra["id"],
                pid,
                m["ordinal"],
                rows["documents"][i],
                tuple(extra["pages"]),
                extra["section"],
                tuple(extra["printed"]),
                sentences,
            )
        )
        blobs.append(_b64_to_bytes(m["vector"]))
        sentence_blobs.append(_b64_to_bytes(m["sentence_vectors"]))
    return chunks, blobs, sentence_blobs
