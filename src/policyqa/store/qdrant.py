"""The Qdrant engine: one collection per snapshot, through qdrant-client.

A passage is point `i` (its row in chunks.jsonl) with its vector (`passage`), its sentence vectors as one
multivector compared by MAX_SIM (`sentences`: the best sentence's cosine in one call), and its BM25 words as a
sparse vector (`words`); each sentence is a point `n + j` with its words (`sentence_words`) and its passage
as `owner`. BM25 is ours: jieba words numbered by the snapshot's vocabulary, each holding its saturated term
frequency, and Qdrant's IDF modifier supplies idf, so a sparse dot product is the BM25 score of
lexical.py. Every point carries its `doc_id`; a search scope is a filter on it.

With a URL the collection is `policyqa-<snapshot>` on that server or cluster, and publishing points the alias
`policyqa` at it (the same atomic swap as CURRENT). Without one, qdrant-client's local mode keeps the
collection in the snapshot folder (`qdrant/`); each process opens a private copy of it, since local mode
admits one process per folder and a snapshot never changes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property, partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from policyqa.errors import IndexMismatchError, StoreError
from policyqa.store.base import Scope, Store, Terms, Vectors, Words
from policyqa.store.vectors import mean_vectors, sample_rows

ALIAS = "policyqa"  # names the served snapshot's collection on a server; collections are policyqa-<snapshot>
LOCAL = "qdrant"  # the local-mode folder inside a snapshot
CATALOGUE = "qdrant.json"  # the collection's name, counts and BM25 vocabulary
K1, B = 1.2, 0.75  # as lexical.BM25
BATCH = 256
TIMEOUT = 10  # seconds for one request to a server
T = TypeVar("T")


def _bm25_weights(docs: Sequence[Sequence[str]], ids: dict[str, int]) -> list[tuple[list[int], list[float]]]:
    """Each document's words as (word ids, saturated term frequencies): BM25 without its idf."""
    lengths = [len(d) for d in docs]
    avgdl = (sum(lengths) / len(lengths) if lengths else 0.0) or 1.0
    out = []
    for words, length in zip(docs, lengths, strict=True):
        norm = K1 * (1 - B + B * length / avgdl)
        counts = Counter(words)
        out.append(([ids[w] for w in counts], [tf * (K1 + 1) / (tf + norm) for tf in counts.values()]))
    return out


class QdrantStore:
    """Writes and opens snapshots' collections; `url` empty: local mode in the snapshot folder."""

    name = "qdrant"
    files_only = False  # a snapshot may be on a server that a build with another engine does not know of

    def __init__(self, url: str = "", api_key: str = "") -> None:
        self.url = url
        self.api_key = api_key

    def client(self, path: Path | None = None) -> Any:
        """A client of the server, or of the local storage at `path`."""
        from qdrant_client import QdrantClient

        if self.url:
            return self.call(lambda: QdrantClient(url=self.url, api_key=self.api_key or None, timeout=TIMEOUT))
        return self.call(lambda: QdrantClient(path=str(path)))

    def call(self, fn: Callable[[], T]) -> T:
        """Run one request; what goes wrong with the store becomes a StoreError naming it and why."""
        try:
            return fn()
        except StoreError:
            raise
        except Exception as exc:
            where = f"at {self.url}" if self.url else "(local mode)"
            detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            raise StoreError(
                f"the Qdrant store {where} failed: {type(exc).__name__}{': ' + detail if detail else ''}"
            ) from exc

    def collection(self, name: str) -> str:
        return f"{ALIAS}-{name}" if self.url else ALIAS

    # --- writing ------------------------------------------------------------------------------

    def write(
        self, folder: Path, dim: int, vectors: Sequence[Vectors], words: Sequence[Words], owners: Sequence[str]
    ) -> None:
        name = folder.name.removeprefix(".tmp-")
        collection = self.collection(name)
        terms = sorted({w for ws in words for w in [*ws.passage, *(x for s in ws.sentences for x in s)]})
        ids = {t: n for n, t in enumerate(terms)}
        passage_df = Counter(w for ws in words for w in set(ws.passage))
        client = self.client(folder / LOCAL)
        try:
            self.call(lambda: self._create(client, collection, dim))
            for batch in _batches(self._points(vectors, words, owners, ids)):
                self.call(partial(client.upsert, collection, points=batch, wait=True))
        finally:
            client.close()
        passages = np.array([v.passage for v in vectors], np.float32).reshape(len(vectors), dim)
        documents = len(dict.fromkeys(owners))
        owner = np.array(_rows(owners), np.int64)
        np.save(folder / "qdrant.background.npy", passages[sample_rows(len(passages))])
        np.save(folder / "qdrant.centroids.npy", mean_vectors(passages, owner, documents))
        catalogue = {
            "collection": collection,
            "server": bool(self.url),
            "passages": len(vectors),
            "sentences": sum(len(w.sentences) for w in words),
            "terms": terms,
            "df": [passage_df.get(t, 0) for t in terms],
        }
        (folder / CATALOGUE).write_text(json.dumps(catalogue, ensure_ascii=False), encoding="utf-8")

    def _create(self, client: Any, collection: str, dim: int) -> None:
        from qdrant_client import models

        if client.collection_exists(collection):  # left by a build that was killed
            client.delete_collection(collection)
        client.create_collection(
            collection,
            vectors_config={
                "passage": models.VectorParams(size=dim, distance=models.Distance.DOT),
                "sentences": models.VectorParams(
                    size=dim,
                    distance=models.Distance.DOT,
                    multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
                    hnsw_config=models.HnswConfigDiff(m=0),  # only ever scored for given passages, never searched
                ),
            },
            sparse_vectors_config={
                "words": models.SparseVectorParams(modifier=models.Modifier.IDF),
                "sentence_words": models.SparseVectorParams(modifier=models.Modifier.IDF),
            },
        )
        if self.url:  # local mode has no payload indexes
            client.create_payload_index(collection, "doc_id", models.PayloadSchemaType.KEYWORD)
            client.create_payload_index(collection, "owner", models.PayloadSchemaType.INTEGER)

    def _points(
        self, vectors: Sequence[Vectors], words: Sequence[Words], owners: Sequence[str], ids: dict[str, int]
    ) -> Iterable[Any]:
        from qdrant_client import models

        n = len(vectors)
        passage_words = _bm25_weights([w.passage for w in words], ids)
        sentence_words = _bm25_weights([s for w in words for s in w.sentences], ids)
        for i, (v, (indices, values), doc_id) in enumerate(zip(vectors, passage_words, owners, strict=True)):
            named: dict[str, Any] = {"passage": v.passage.astype(np.float32).tolist()}
            if len(v.sentences):
                named["sentences"] = np.asarray(v.sentences, np.float32).tolist()
            if indices:
                named["words"] = models.SparseVector(indices=indices, values=values)
            yield models.PointStruct(id=i, vector=named, payload={"doc_id": doc_id})
        sentence_owner = [i for i, w in enumerate(words) for _ in w.sentences]
        for j, ((indices, values), i) in enumerate(zip(sentence_words, sentence_owner, strict=True)):
            named = {"sentence_words": models.SparseVector(indices=indices, values=values)} if indices else {}
            yield models.PointStruct(id=n + j, vector=named, payload={"doc_id": owners[i], "owner": i})

    def publish(self, name: str) -> None:
        """On a server, point the alias at the new collection in one request (local mode has no alias: each
        snapshot folder holds its own collection, and CURRENT says which is served)."""
        if not self.url:
            return
        from qdrant_client import models

        client = self.client()
        try:
            current = self.call(lambda: client.get_aliases()).aliases
            ops: list[Any] = [models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=ALIAS))]
            ops = ops if any(a.alias_name == ALIAS for a in current) else []
            create = models.CreateAlias(collection_name=self.collection(name), alias_name=ALIAS)
            ops.append(models.CreateAliasOperation(create_alias=create))
            self.call(lambda: client.update_collection_aliases(change_aliases_operations=ops))
        finally:
            client.close()

    def discard(self, name: str) -> None:
        if not self.url:
            return  # the collection went with the snapshot folder
        client = self.client()
        try:
            self.call(lambda: client.delete_collection(self.collection(name)))
        except StoreError:
            pass  # pruning is tidying: the next build tries again
        finally:
            client.close()

    # --- reading ------------------------------------------------------------------------------

    def catalogue(self, folder: Path) -> dict[str, Any]:
        """The snapshot's qdrant.json; one written in the other mode (local, or on a server) is refused."""
        catalogue: dict[str, Any] = json.loads((folder / CATALOGUE).read_text(encoding="utf-8"))
        if bool(catalogue.get("server")) != bool(self.url):
            written = "on a Qdrant server" if catalogue.get("server") else "in Qdrant's local mode"
            raise IndexMismatchError(
                f"index at {folder} was built {written}, and POLICYQA_STORE_URL says otherwise; "
                "build it again with `policyqa build`"
            )
        return catalogue

    def open(self, folder: Path, owners: Sequence[str]) -> tuple[QdrantVectors, QdrantLexical]:
        catalogue = self.catalogue(folder)
        if catalogue["passages"] != len(owners):
            raise ValueError(f"{len(owners)} passages, {catalogue['passages']} in {CATALOGUE}")
        client = self._reader(folder)
        collection = catalogue["collection"]
        points = self.call(lambda: client.get_collection(collection)).points_count
        if points != catalogue["passages"] + catalogue["sentences"]:
            raise ValueError(f"collection {collection} holds {points} points, {CATALOGUE} says otherwise")
        background = np.load(folder / "qdrant.background.npy")
        centroids = np.load(folder / "qdrant.centroids.npy")
        reader = Reader(self, client, collection, len(owners))
        return QdrantVectors(reader, background, centroids), QdrantLexical(reader, catalogue["terms"], catalogue["df"])

    def _reader(self, folder: Path) -> Any:
        """A server client; in local mode, a client of a private copy of the snapshot's collection (local mode
        reads it all into memory at once, so the copy is removed again straight after)."""
        if self.url:
            return self.client()
        copy = Path(tempfile.mkdtemp(prefix="policyqa-qdrant-"))
        try:
            shutil.copytree(folder / LOCAL, copy / LOCAL)
            return self.client(copy / LOCAL)
        finally:
            shutil.rmtree(copy, ignore_errors=True)

    def vectors(self, folder: Path) -> list[Vectors]:
        catalogue = self.catalogue(folder)
        client = self._reader(folder)
        try:
            return Reader(self, client, catalogue["collection"], catalogue["passages"]).all_vectors()
        finally:
            client.close()


def _rows(owners: Sequence[str]) -> list[int]:
    row: dict[str, int] = {}
    return [row.setdefault(d, len(row)) for d in owners]


def _batches(points: Iterable[Any]) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for p in points:
        batch.append(p)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


class Reader:
    """The requests a search makes of one snapshot's collection."""

    def __init__(self, store: QdrantStore, client: Any, collection: str, passages: int) -> None:
        self.store = store
        self.client = client
        self.collection = collection
        self.passages = passages

    def where(self, scope: Scope | None, ids: Sequence[int] | None = None, owners: bool = False) -> Any:
        """The filter of a scope, optionally only over given passages (or, `owners`, their sentences)."""
        from qdrant_client import models

        must: list[Any] = []
        must_not: list[Any] = []
        if scope is not None and scope.docs is not None:
            must.append(models.FieldCondition(key="doc_id", match=models.MatchAny(any=sorted(scope.docs))))
        if scope is not None and scope.hidden:
            must_not.append(models.FieldCondition(key="doc_id", match=models.MatchAny(any=sorted(scope.hidden))))
        if ids is not None and owners:
            must.append(models.FieldCondition(key="owner", match=models.MatchAny(any=[int(i) for i in ids])))
        elif ids is not None:
            must.append(models.HasIdCondition(has_id=[int(i) for i in ids]))
        return models.Filter(must=must or None, must_not=must_not or None) if must or must_not else None

    def query(self, query: Any, using: str, limit: int, where: Any, exact: bool = False) -> dict[int, float]:
        """Point id -> score of the best `limit` points."""
        from qdrant_client import models

        if limit <= 0:
            return {}
        params = models.SearchParams(exact=True) if exact and self.store.url else None  # local mode: always exact
        found = self.store.call(
            lambda: self.client.query_points(
                self.collection, query=query, using=using, limit=limit, query_filter=where, search_params=params
            )
        )
        return {int(p.id): float(p.score) for p in found.points}

    def best_sentences(self, query: Any, limit: int, where: Any) -> dict[int, float]:
        """Passage -> the score of its best sentence, for the best `limit` passages by that score."""
        if limit <= 0:
            return {}
        found = self.store.call(
            lambda: self.client.query_points_groups(
                self.collection,
                query=query,
                using="sentence_words",
                group_by="owner",
                group_size=1,
                limit=limit,
                query_filter=where,
            )
        )
        return {int(g.id): float(g.hits[0].score) for g in found.groups if g.hits}

    def retrieve(self, ids: Sequence[int], vectors: Sequence[str]) -> list[Any]:
        return self.store.call(
            lambda: self.client.retrieve(self.collection, ids=list(ids), with_vectors=list(vectors), with_payload=False)
        )

    def all_vectors(self) -> list[Vectors]:
        out: list[Vectors] = []
        for start in range(0, self.passages, BATCH):
            for p in sorted(
                self.retrieve(range(start, min(start + BATCH, self.passages)), ["passage", "sentences"]),
                key=lambda p: int(p.id),
            ):
                vec = p.vector or {}
                passage = np.asarray(vec["passage"], np.float32)
                sentences = np.asarray(vec.get("sentences") or np.zeros((0, len(passage))), np.float32)
                out.append(Vectors(passage, sentences.reshape(-1, len(passage))))
        if len(out) != self.passages:
            raise ValueError(f"{len(out)} of {self.passages} passages in collection {self.collection}")
        return out


class QdrantVectors:
    def __init__(self, reader: Reader, background: np.ndarray, centroids: np.ndarray) -> None:
        self.reader = reader
        self._background = background
        self._centroids = centroids

    def nearest(self, qvec: np.ndarray, depth: int, scope: Scope | None = None) -> list[int]:
        found = self.reader.query(qvec.astype(np.float32).tolist(), "passage", depth, self.reader.where(scope))
        return sorted(found, key=lambda i: (-found[i], i))

    def scores(self, qvec: np.ndarray, ids: Sequence[int], sentence: float) -> dict[int, float]:
        ids = list(ids)
        if not ids:
            return {}
        where = self.reader.where(None, ids)
        q = qvec.astype(np.float32).tolist()
        own = self.reader.query(q, "passage", len(ids), where, exact=True)
        best = self.reader.query([q], "sentences", len(ids), where, exact=True)
        return {i: (1 - sentence) * own[i] + sentence * best[i] if i in best else own[i] for i in ids if i in own}

    def closeness(self, qvec: np.ndarray, i: int) -> list[float]:
        found = self.reader.retrieve([i], ["sentences"])
        rows = (found[0].vector or {}).get("sentences") if found else None
        return [float(x) for x in np.asarray(rows, np.float32) @ qvec] if rows else []

    def background(self) -> np.ndarray:
        return self._background

    def centroids(self, owner: np.ndarray, documents: int) -> np.ndarray:
        if len(self._centroids) != documents:
            raise ValueError(f"{len(self._centroids)} document centroids for {documents} documents")
        return self._centroids


class QdrantLexical:
    # Candidates asked of each BM25 query before the exact blend of their scores: the blend's best `depth`
    # are among them unless a passage is outside both lists, i.e. below both lists' last scores.
    WIDEN = 4

    def __init__(self, reader: Reader, terms: list[str], df: list[int]) -> None:
        self.reader = reader
        self.terms = terms
        self.df = df

    @cached_property
    def ids(self) -> dict[str, int]:
        return {t: n for n, t in enumerate(self.terms)}

    def _query(self, words: Terms) -> Any:
        from qdrant_client import models

        weights = words if isinstance(words, Mapping) else dict.fromkeys(words, 1.0)
        found = sorted((self.ids[w], float(f)) for w, f in weights.items() if w in self.ids)
        indices, values = [i for i, _ in found], [f for _, f in found]
        return models.SparseVector(indices=indices, values=values) if indices else None

    def top(self, words: Terms, depth: int, sentence: float, scope: Scope | None = None) -> dict[int, float]:
        query = self._query(words)
        if query is None:
            return {}
        where = self.reader.where(scope)
        own = self.reader.query(query, "words", depth * self.WIDEN, where)
        best = self.reader.best_sentences(query, depth * self.WIDEN, where)
        blended = self._blend(query, list(dict.fromkeys([*own, *best])), sentence)
        order = sorted((i for i in blended if blended[i] > 0), key=lambda i: (-blended[i], i))[:depth]
        return {i: blended[i] for i in order}

    def scores(self, words: Terms, ids: Sequence[int], sentence: float) -> dict[int, float]:
        query = self._query(words)
        ids = list(ids)
        if query is None or not ids:
            return dict.fromkeys(ids, 0.0)
        return self._blend(query, ids, sentence)

    def _blend(self, query: Any, ids: list[int], sentence: float) -> dict[int, float]:
        """Exact blended scores of the given passages: own BM25 and best sentence's."""
        if not ids:
            return {}
        own = self.reader.query(query, "words", len(ids), self.reader.where(None, ids), exact=True)
        best = self.reader.best_sentences(query, len(ids), self.reader.where(None, ids, owners=True))
        return {i: (1 - sentence) * own.get(i, 0.0) + sentence * best.get(i, 0.0) for i in ids}

    def idf(self, word: str) -> float:
        t = self.ids.get(word)
        if t is None or not self.df[t]:
            return 0.0
        n, df = self.reader.passages, self.df[t]
        return float(np.log(1.0 + (n - df + 0.5) / (df + 0.5)))

    def known(self, word: str) -> bool:
        t = self.ids.get(word)
        return t is not None and self.df[t] > 0


def connect(url: str = "", api_key: str = "") -> Store:
    return QdrantStore(url, api_key)
