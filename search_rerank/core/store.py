"""The product store: full records by id, and each product's popularity percentile.

Both legs return ids only; results, reranker texts and the long-tail boost
need the records and popularity. SQLite keeps them on disk beside the indexes
with cheap random reads and incremental updates, and is safe to read from many
threads when each thread has its own connection.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from .longtail import popularity_percentiles
from .product import Product

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    sales INTEGER NOT NULL,
    review_count INTEGER NOT NULL,
    popularity REAL
)
"""


class Closeable(Protocol):
    def close(self) -> None: ...


class ProductStore:
    def __init__(self, path: str | Path, hold: Closeable | None = None):
        """``hold``: what keeps the file at ``path`` from being deleted while this store reads it (a served index
        version's hold), released by :meth:`close`: each thread opens the file again on its first read."""
        self.path = Path(path)
        self._hold = hold
        self._local = threading.local()
        # A version mounted read-only (an index built by a job, mounted into the serving machines): WAL mode needs
        # its -shm file beside the database, so opening one failed ("unable to open database file") and no worker
        # started. Nothing can change it there, which SQLite's immutable mode reads it as.
        self._read_only = self.path.is_file() and not os.access(self.path.parent, os.W_OK)
        if not self._read_only:
            self._conn().execute(SCHEMA)

    def close(self) -> None:
        """Let go of the file's hold (the connections threads opened close with their threads)."""
        if self._hold is not None:
            self._hold.close()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._read_only:
                conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?immutable=1", uri=True, check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    def add(self, products: Iterable[Product]) -> int:
        """Upsert records. Popularity goes stale until :meth:`refresh_popularity`."""
        rows = [(p.id, p.model_dump_json(), p.sales, p.review_count) for p in products]
        with self._conn() as conn:
            conn.executemany(
                "INSERT INTO products (id, record, sales, review_count) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET record=excluded.record, sales=excluded.sales, "
                "review_count=excluded.review_count",
                rows,
            )
        return len(rows)

    def delete(self, product_ids: Iterable[str]) -> int:
        with self._conn() as conn:
            cur = conn.executemany("DELETE FROM products WHERE id = ?", [(pid,) for pid in product_ids])
        return cur.rowcount

    def refresh_popularity(self) -> None:
        """Percentiles are relative to the whole catalog, so recompute them after any change."""
        conn = self._conn()
        rows = conn.execute("SELECT id, sales, review_count FROM products").fetchall()
        pct = popularity_percentiles([r[1] for r in rows], [r[2] for r in rows])
        with conn:
            conn.executemany(
                "UPDATE products SET popularity = ? WHERE id = ?", [(float(p), r[0]) for p, r in zip(pct, rows)]
            )
        # The last write of a build or an update: copied into the database file, so that a version copied or
        # mounted read-only is whole without its -wal file (read as immutable, that file is not read). Passive:
        # it never waits on the readers of a version updated while it is served.
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _by_ids(self, columns: str, where: str, product_ids: Sequence[str]) -> Iterator[tuple]:
        """Rows for many ids, in chunks below SQLite's bound-parameter limit."""
        conn = self._conn()
        for start in range(0, len(product_ids), 500):
            chunk = list(product_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            yield from conn.execute(f"SELECT {columns} FROM products WHERE {where} id IN ({marks})", chunk)

    def records(self, product_ids: Sequence[str]) -> dict[str, str]:
        """The stored JSON records, unparsed: for callers that cache what they derive from a record and only
        need to parse it when it changed."""
        return dict(self._by_ids("id, record", "", product_ids))

    def get(self, product_ids: Sequence[str]) -> dict[str, Product]:
        return {pid: Product.model_validate_json(rec) for pid, rec in self._by_ids("id, record", "", product_ids)}

    def popularity(self, product_ids: Sequence[str] | None = None) -> dict[str, float]:
        if product_ids is None:
            return dict(self._conn().execute("SELECT id, popularity FROM products WHERE popularity IS NOT NULL"))
        return dict(self._by_ids("id, popularity", "popularity IS NOT NULL AND", product_ids))

    def ids(self) -> frozenset[str]:
        """Every product's id (what a log's events are checked against: an id no product has is a typo or made
        up)."""
        return frozenset(pid for (pid,) in self._conn().execute("SELECT id FROM products"))

    def titles(self) -> Iterator[tuple[str, str, int]]:
        """Every product's id, title and sales, read without parsing whole records (the completion suggester
        lists them all)."""
        yield from self._conn().execute("SELECT id, COALESCE(json_extract(record, '$.title'), ''), sales FROM products")

    def attribute_names(self) -> list[str]:
        """The names of the attributes the products have, the most held first (ties by name), read without parsing
        whole records: facets over name/value pairs list the names a search's products hold, most first."""
        query = (
            "SELECT a.key FROM products, json_each(products.record, '$.attributes') AS a "
            "GROUP BY a.key ORDER BY COUNT(*) DESC, a.key"
        )
        return [name for (name,) in self._conn().execute(query)]

    def __iter__(self) -> Iterator[Product]:
        for (record,) in self._conn().execute("SELECT record FROM products ORDER BY id"):
            yield Product.model_validate_json(record)

    def count(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM products").fetchone()[0]
