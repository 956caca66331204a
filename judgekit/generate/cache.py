"""Generation cache: one SQLite file per study, keyed by (generation spec hash, request content hash).

The same durability protocol as the verdict cache (:func:`judgekit.judges.cache.connect_durable`:
WAL, ``synchronous=FULL``, one transaction per batch): a run killed with SIGKILL
keeps every finished batch, and the rerun reads them back instead of generating
them again. Failed requests are never stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from judgekit.generate.spec import Generation
from judgekit.judges.cache import connect_durable

CACHE_RELATIVE_PATH = Path("cache") / "generation_cache.sqlite"
_FIELDS = ("text", "finish_reason", "n_prompt_tokens", "n_response_tokens", "latency_s")
_CHUNK = 500


class GenerationCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = connect_durable(self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS generations (spec_hash TEXT NOT NULL, request_hash TEXT NOT NULL, "
            + ", ".join(_FIELDS) + ", PRIMARY KEY (spec_hash, request_hash)) WITHOUT ROWID"
        )
        self._db.commit()

    @classmethod
    def for_study(cls, study_dir: str | Path) -> GenerationCache:
        return cls(Path(study_dir) / CACHE_RELATIVE_PATH)

    def get(self, spec_hash: str, request_hashes: Iterable[str]) -> dict[str, tuple[Generation, float]]:
        """Cached ``(generation, latency_s per request)`` by request hash, for the hashes present."""
        wanted = sorted(set(request_hashes))
        found: dict[str, tuple[Generation, float]] = {}
        for begin in range(0, len(wanted), _CHUNK):
            chunk = wanted[begin : begin + _CHUNK]
            rows = self._db.execute(
                f"SELECT request_hash, {', '.join(_FIELDS)} FROM generations "
                f"WHERE spec_hash = ? AND request_hash IN ({','.join('?' * len(chunk))})",
                [spec_hash, *chunk],
            )
            for request_hash, text, finish, n_prompt, n_response, latency in rows:
                found[request_hash] = (Generation(text, finish, n_prompt, n_response), latency)
        return found

    def put(self, spec_hash: str, request_hashes: Sequence[str], generations: Sequence[Generation], latency_s: float) -> None:
        """Store one batch in one transaction; failed generations are skipped, entries already present kept."""
        rows = [
            (spec_hash, h, g.text, g.finish_reason, g.n_prompt_tokens, g.n_response_tokens, latency_s)
            for h, g in zip(request_hashes, generations, strict=True)
            if g.error is None
        ]
        with self._db:
            self._db.executemany(
                f"INSERT OR IGNORE INTO generations (spec_hash, request_hash, {', '.join(_FIELDS)}) "
                f"VALUES ({','.join('?' * (len(_FIELDS) + 2))})",
                rows,
            )

    def count(self, spec_hash: str) -> int:
        return self._db.execute("SELECT COUNT(*) FROM generations WHERE spec_hash = ?", [spec_hash]).fetchone()[0]

    def close(self) -> None:
        self._db.close()
