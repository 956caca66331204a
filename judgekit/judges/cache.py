"""Verdict cache: one SQLite file per study, keyed by (judge spec hash, item content hash).

Every batch is committed in one transaction (WAL journal, ``synchronous=FULL``),
so a run killed at any point keeps every finished batch and loses nothing
else; a rerun reads them back instead of recomputing. The key is the judged
content, not the item id, so identical pairs are judged once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from judgekit.judges.base import Verdict

CACHE_RELATIVE_PATH = Path("cache") / "judge_cache.sqlite"
_FIELDS = ("label", "p_unsafe", "coverage", "parse_status", "raw_output", "detail", "n_input_tokens", "n_output_tokens", "latency_s")


def connect_durable(path: Path) -> sqlite3.Connection:
    """A SQLite connection whose committed transactions survive a kill at any point (WAL, ``synchronous=FULL``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=60)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


class VerdictCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = connect_durable(self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS verdicts (spec_hash TEXT NOT NULL, item_hash TEXT NOT NULL, "
            + ", ".join(f"{f}" for f in _FIELDS)
            + ", PRIMARY KEY (spec_hash, item_hash)) WITHOUT ROWID"
        )
        self._db.commit()

    @classmethod
    def for_study(cls, study_dir: str | Path) -> VerdictCache:
        return cls(Path(study_dir) / CACHE_RELATIVE_PATH)

    def get(self, spec_hash: str, item_hashes: Iterable[str]) -> dict[str, tuple[Verdict, float | None]]:
        """Cached ``(verdict, latency_s)`` by item hash, for the hashes present."""
        wanted = sorted(set(item_hashes))
        found: dict[str, tuple[Verdict, float | None]] = {}
        for begin in range(0, len(wanted), 500):
            chunk = wanted[begin : begin + 500]
            rows = self._db.execute(
                f"SELECT item_hash, {', '.join(_FIELDS)} FROM verdicts WHERE spec_hash = ? AND item_hash IN ({','.join('?' * len(chunk))})",
                [spec_hash, *chunk],
            )
            for item_hash, label, p, coverage, status, raw, detail, n_in, n_out, latency in rows:
                found[item_hash] = (Verdict(label, p, status, raw, detail or "", n_in, n_out, coverage), latency)
        return found

    def put(self, spec_hash: str, item_hashes: Sequence[str], verdicts: Sequence[Verdict], latency_s: float) -> None:
        """Store one batch atomically; entries already present are kept."""
        rows = [
            (spec_hash, h, v.label, v.p_unsafe, v.coverage, v.parse_status, v.raw_output, v.detail, v.n_input_tokens,
             v.n_output_tokens, latency_s)
            for h, v in zip(item_hashes, verdicts, strict=True)
        ]
        with self._db:
            self._db.executemany(
                f"INSERT OR IGNORE INTO verdicts (spec_hash, item_hash, {', '.join(_FIELDS)}) VALUES ({','.join('?' * (len(_FIELDS) + 2))})",
                rows,
            )

    def count(self, spec_hash: str) -> int:
        return self._db.execute("SELECT COUNT(*) FROM verdicts WHERE spec_hash = ?", [spec_hash]).fetchone()[0]

    def close(self) -> None:
        self._db.close()
