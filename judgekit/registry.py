"""One registry class for judges, incoherence detectors and statistics.

Entries point at their implementation with a lazy ``"module:attr"`` string, so
listing what exists never imports torch or any judge backend.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entry:
    name: str
    target: str
    summary: str
    params: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        module_name, _, attr = self.target.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


class Registry:
    """Named entries of one kind; duplicate names are refused, unknown names get suggestions."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, target: str, summary: str, **params: Any) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered (target {self._entries[name].target})")
        self._entries[name] = Entry(name=name, target=target, summary=summary, params=params)

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise KeyError(f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(sorted(self._entries))}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]


JUDGES = Registry("judge")
DETECTORS = Registry("detector")
STATISTICS = Registry("statistic")


def _register_builtins() -> None:
    from judgekit.judges.catalog import preset_names, preset_summary

    for name in preset_names():
        JUDGES.register(name, "judgekit.judges.build:judge_from_preset", preset_summary(name), preset=name)

    for name, summary in (
        ("empty", "empty, whitespace-only or punctuation-only response"),
        ("repetition", "degenerate repetition: repeated word n-grams and zlib compression ratio"),
        ("gibberish", "token salad: share of letters, vowel-less words and mixed Unicode scripts"),
        ("incoherent", "combined flag: any of the detectors above fires"),
    ):
        DETECTORS.register(name, f"judgekit.incoherence:{name.upper()}", summary)

    for name, summary in (
        ("percent_agreement", "share of items where the judge and the reference give the same label"),
        ("cohen_kappa", "Cohen's kappa between the judge and the reference (chance-corrected agreement)"),
        ("harmful_rate", "share of responses judged unsafe (attack success rate)"),
    ):
        STATISTICS.register(name, f"judgekit.stats.agreement:{name}", summary)


_register_builtins()
