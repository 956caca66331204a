"""Verdict cache: one SQLite file per study, keyed by (judge spec hash, item content hash).

Verdicts are committed in transactions of whole batches (:class:`judgekit.store.durable_store.DurableStore`: WAL
journal, ``synchronous=FULL``); the judge runner commits about once a second
(:data:`judgekit.engine.judge_runner.CACHE_COMMIT_S`), so a run killed at any point keeps every batch
committed before the last second or so; a rerun reads them back instead of recomputing. The key is the judged content, not
the item id, so identical pairs are judged once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from judgekit.store.durable_store import DurableStore
from judgekit.judges.base import Verdict

CACHE_RELATIVE_PATH = Path("cache") / "judge_cache.sqlite"
_FIELDS = ("label", "p_unsafe", "coverage", "parse_status", "raw_output", "detail", "n_input_tokens", "n_output_tokens", "latency_s",
           "score")


class VerdictCache:
    def __init__(self, path: str | Path) -> None:
        self._store = DurableStore(path, table="verdicts", key_column="item_hash", fields=_FIELDS)
        self.path = self._store.path

    @classmethod
    def for_study(cls, study_dir: str | Path) -> VerdictCache:
        return cls(Path(study_dir) / CACHE_RELATIVE_PATH)

    def get(self, spec_hash: str, item_hashes: Iterable[str]) -> dict[str, tuple[Verdict, float | None]]:
        """Cached ``(verdict, latency_s)`` by item hash, for the hashes present."""
        return {item_hash: (Verdict(label, p, status, raw, detail or "", n_in, n_out, coverage, score), latency)
                for item_hash, label, p, coverage, status, raw, detail, n_in, n_out, latency, score
                in self._store.rows(spec_hash, item_hashes)}

    def put(self, spec_hash: str, item_hashes: Sequence[str], verdicts: Sequence[Verdict],
            latency_s: float | Sequence[float]) -> None:
        """Store verdicts in one transaction (one latency for all, or one each); entries already present are kept."""
        latencies = latency_s if isinstance(latency_s, Sequence) else [latency_s] * len(item_hashes)
        self._store.insert([
            (spec_hash, h, v.label, v.p_unsafe, v.coverage, v.parse_status, v.raw_output, v.detail, v.n_input_tokens,
             v.n_output_tokens, latency, v.score)
            for h, v, latency in zip(item_hashes, verdicts, latencies, strict=True)
        ])

    def count(self, spec_hash: str) -> int:
        return self._store.count(spec_hash)

    def close(self) -> None:
        self._store.close()
