"""Subsets of items as data: a kind, a value and the columns they fix, never a string to parse back."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import NDArray

GROUP_COLUMNS = ("model", "base_model", "finetune_goal", "benchmark")


@dataclass(frozen=True)
class Subset:
    """``label`` is the readable key in the stats table's ``subset`` column."""

    label: str
    kind: str
    value: str | None = None
    columns: dict[str, str] = field(default_factory=dict)

    def fields(self) -> dict[str, str | None]:
        return {"subset": self.label, "subset_kind": self.kind, "subset_value": self.value,
                **{c: self.columns.get(c) for c in GROUP_COLUMNS}}


ALL = Subset("all", "all", "all")


def subset(kind: str, value: str, **columns: str) -> Subset:
    """A subset labelled ``kind=value`` (``coherent``/``incoherent`` and ``ceiling_items`` read as their value)."""
    label = value if kind in ("coherence", "ceiling_items") else f"{kind}={value}"
    return Subset(label, kind, value, dict(columns))


def group_subsets(responses: pd.DataFrame, columns: tuple[str, ...]) -> list[tuple[Subset, NDArray]]:
    """One subset per combination of the values of ``columns`` present (absent columns are skipped)."""
    keys = [c for c in columns if c in responses and responses[c].notna().any()]
    if not keys:
        return []
    out = []
    for values, index in responses.groupby(keys, dropna=False, sort=True).indices.items():
        values = values if isinstance(values, tuple) else (values,)
        mask = np.zeros(len(responses), dtype=bool)
        mask[index] = True
        pairs = {k: str(v) for k, v in zip(keys, values, strict=True)}
        label = "|".join(f"{k}={v}" for k, v in pairs.items())
        kind = "group" if set(keys) <= set(GROUP_COLUMNS) else "|".join(keys)
        out.append((Subset(label, kind, label, {k: v for k, v in pairs.items() if k in GROUP_COLUMNS}), mask))
    return out
