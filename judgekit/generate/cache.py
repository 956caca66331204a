"""Generation cache: one SQLite file per study, keyed by (generation spec hash, request content hash).

The same durable store as the verdict cache (:class:`judgekit.store.durable_store.DurableStore`: WAL,
``synchronous=FULL``, one transaction per batch): a run killed with SIGKILL keeps every finished
batch, and the rerun reads them back instead of generating them again. Failed requests are never
stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from judgekit.store.durable_store import DurableStore
from judgekit.generate.spec import Generation

CACHE_RELATIVE_PATH = Path("cache") / "generation_cache.sqlite"
_FIELDS = ("text", "finish_reason", "n_prompt_tokens", "n_response_tokens", "latency_s")


class GenerationCache:
    def __init__(self, path: str | Path) -> None:
        self._store = DurableStore(path, table="generations", key_column="request_hash", fields=_FIELDS)
        self.path = self._store.path

    @classmethod
    def for_study(cls, study_dir: str | Path) -> GenerationCache:
        return cls(Path(study_dir) / CACHE_RELATIVE_PATH)

    def get(self, spec_hash: str, request_hashes: Iterable[str]) -> dict[str, tuple[Generation, float]]:
        """Cached ``(generation, latency_s per request)`` by request hash, for the hashes present."""
        return {request_hash: (Generation(text, finish, n_prompt, n_response), latency)
                for request_hash, text, finish, n_prompt, n_response, latency
                in self._store.rows(spec_hash, request_hashes)}

    def put(self, spec_hash: str, request_hashes: Sequence[str], generations: Sequence[Generation], latency_s: float) -> None:
        """Store one batch in one transaction; failed generations are skipped, entries already present kept."""
        self._store.insert([
            (spec_hash, h, g.text, g.finish_reason, g.n_prompt_tokens, g.n_response_tokens, latency_s)
            for h, g in zip(request_hashes, generations, strict=True)
            if g.error is None
        ])

    def count(self, spec_hash: str) -> int:
        return self._store.count(spec_hash)

    def close(self) -> None:
        self._store.close()
