"""A durable keyed SQLite table: the storage under the verdict cache and the generation cache.

Rows are keyed by (spec hash, content hash). Every batch is committed in one transaction with a WAL
journal and ``synchronous=FULL``, so a run killed at any point keeps every finished batch and loses
nothing else; ``INSERT OR IGNORE`` keeps entries already present (a rerun never overwrites).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

# SQLite's default limit on host parameters is 999 (older builds): lookups go in chunks below it.
_CHUNK = 500


def connect_durable(path: Path) -> sqlite3.Connection:
    """A SQLite connection whose committed transactions survive a kill at any point (WAL, ``synchronous=FULL``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=60)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


class DurableStore:
    """Table ``table`` of ``path`` with key columns ``(spec_hash, key_column)`` and value columns ``fields``."""

    def __init__(self, path: str | Path, *, table: str, key_column: str, fields: Sequence[str]) -> None:
        self.path = Path(path)
        self._table, self._key, self._fields = table, key_column, tuple(fields)
        self._db = connect_durable(self.path)
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (spec_hash TEXT NOT NULL, {key_column} TEXT NOT NULL, "
            f"{', '.join(self._fields)}, PRIMARY KEY (spec_hash, {key_column})) WITHOUT ROWID"
        )
        # A store written before a field was added gains it, empty (its rows predate what the field holds).
        present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
        for name in self._fields:
            if name not in present:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name}")
        self._db.commit()

    def rows(self, spec_hash: str, keys: Iterable[str]) -> Iterator[tuple]:
        """``(key, *fields)`` for each of ``keys`` stored under ``spec_hash``."""
        wanted = sorted(set(keys))
        for begin in range(0, len(wanted), _CHUNK):
            chunk = wanted[begin : begin + _CHUNK]
            yield from self._db.execute(
                f"SELECT {self._key}, {', '.join(self._fields)} FROM {self._table} "
                f"WHERE spec_hash = ? AND {self._key} IN ({','.join('?' * len(chunk))})",
                [spec_hash, *chunk],
            )

    def insert(self, rows: Sequence[tuple]) -> None:
        """Store ``(spec_hash, key, *fields)`` rows in one transaction; rows already present are kept."""
        with self._db:
            self._db.executemany(
                f"INSERT OR IGNORE INTO {self._table} (spec_hash, {self._key}, {', '.join(self._fields)}) "
                f"VALUES ({','.join('?' * (len(self._fields) + 2))})",
                rows,
            )

    def count(self, spec_hash: str) -> int:
        return self._db.execute(f"SELECT COUNT(*) FROM {self._table} WHERE spec_hash = ?", [spec_hash]).fetchone()[0]

    def close(self) -> None:
        self._db.close()
