"""What an evaluation framework's per-sample score means for safety: the user says it, judgekit never guesses.

An Inspect scorer's ``C``/``I`` (correct/incorrect) or an lm-eval metric's 1/0 say whether the output matched
the task's target. Whether a match is *unsafe* depends on the task: on a refusal grader ``C`` may mean "refused"
(safe), on a harm grader "complied" (unsafe). So scores are imported as graded scores on Inspect's own numeric
reading (``value_to_float``: C 1, P 0.5, I and N 0, numbers as they are) with a declared scale, and a binary
``unsafe``/``safe`` verdict is given only where the user states which values are unsafe:

``--unsafe-value [SCORER=]SPEC`` with SPEC one of ``C`` (score >= 1), ``I`` (score <= 0: I and N),
``>=X`` or ``<=X``. A stated scorer becomes a judge of the ``safety`` dimension (label and score); an unstated
one a score on a dimension named after it, with ``worse: low`` (Inspect's metrics read higher as better) and no
label.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from judgekit.errors import InputError
from judgekit.store.schema import DEFAULT_DIMENSION, JudgeScale, derive_verdict

_SPEC = re.compile(r"^(?P<op>>=|<=)\s*(?P<x>[-+0-9.eE]+)$")
VALUE_READING = "Inspect value_to_float: C=1, P=0.5, I=0, N=0, numbers as they are"


@dataclass(frozen=True)
class UnsafeRule:
    """Scores on the ``worse`` side of ``threshold`` are unsafe; ``spec`` is what the user wrote.

    A table column's rule may instead name one ``value`` (``--unsafe-value gpt4=True``): that value is unsafe,
    any other non-empty value safe (``worse`` and ``threshold`` are then unused).
    """

    worse: str
    threshold: float
    spec: str
    value: str | None = None


def parse_unsafe_values(texts: list[str], *, literal_values: bool = False) -> dict[str | None, UnsafeRule]:
    """``["C", "refusal=I", "harm=>=0.5"]`` -> {None: C rule, "refusal": I rule, "harm": >=0.5 rule}.

    With ``literal_values`` (a table's columns) every rule names its column (``NAME=SPEC``) and a SPEC other
    than ``>=X``/``<=X`` is the one value that means unsafe (``gpt4=True``, ``label=1``, ``verdict=C``).
    """
    rules: dict[str | None, UnsafeRule] = {}
    for text in texts:
        bare = text.strip()
        if not literal_values and (bare in ("C", "I") or bare.startswith((">=", "<="))):
            scorer, spec = None, bare
        else:
            name, _, spec = bare.partition("=")
            scorer, spec = name.strip() or None, spec.strip()
        if literal_values and (scorer is None or not spec):
            raise InputError(f"--unsafe-value takes NAME=VALUE, NAME=>=X or NAME=<=X, got {text!r}")
        if scorer in rules:
            raise InputError(f"--unsafe-value given twice for {scorer or 'every scorer'!r}")
        literal = literal_values and not spec.startswith((">=", "<="))
        rules[scorer] = UnsafeRule("high", math.nan, spec, value=spec) if literal else _rule(spec, text)
    return rules


def _rule(spec: str, text: str) -> UnsafeRule:
    if spec == "C":
        return UnsafeRule("high", 1.0, spec)
    if spec == "I":
        return UnsafeRule("low", 0.0, spec)
    match = _SPEC.match(spec)
    try:
        threshold = float(match["x"]) if match else math.nan
    except ValueError:
        threshold = math.nan
    if match is None or not math.isfinite(threshold):
        raise InputError(f"--unsafe-value takes [SCORER=]C, I, >=X or <=X, got {text!r}")
    return UnsafeRule("high" if match["op"] == ">=" else "low", threshold, spec)


def scorer_scale(judge_id: str, values: np.ndarray, rule: UnsafeRule | None, *, categorical: bool,
                 source: str) -> JudgeScale:
    """The declared scale of one scorer's imported scores (range [0, 1] widened to the values seen)."""
    finite = values[np.isfinite(values)]
    low = min(0.0, float(finite.min())) if finite.size else 0.0
    high = max(1.0, float(finite.max())) if finite.size else 1.0
    level = "ordinal" if categorical else "interval"
    if rule is None:
        return JudgeScale(judge_id=judge_id, dimension=judge_id, min=low, max=high, level=level, worse="low",
                          threshold=low, source=f"{source}; {VALUE_READING}; no safety verdict was stated "
                          "(pass --unsafe-value to give one)")
    if not low <= rule.threshold <= high:
        raise InputError(f"--unsafe-value {rule.spec} for {judge_id!r}: threshold outside the scores' range "
                         f"[{low:g}, {high:g}]")
    return JudgeScale(judge_id=judge_id, dimension=DEFAULT_DIMENSION, min=low, max=high, level=level,
                      worse=rule.worse, threshold=rule.threshold,
                      source=f"{source}; {VALUE_READING}; unsafe = {rule.spec} (--unsafe-value)")


def verdict_labels(scores: np.ndarray, scale: JudgeScale) -> list[str | None]:
    """unsafe/safe per score on a safety scale; None where there is no score or the scale is not safety."""
    if scale.dimension != DEFAULT_DIMENSION:
        return [None] * len(scores)
    codes = derive_verdict(scores, scale)
    return [None if np.isnan(c) else ("unsafe" if c == 1 else "safe") for c in codes]


def unstated_notes(scales: list[JudgeScale]) -> list[str]:
    """One note per judge imported without a safety verdict (safety statistics need one)."""
    return [f"{s.judge_id}: imported as a graded score with no safety verdict (which value is unsafe depends on the "
            f"task); pass --unsafe-value {s.judge_id}=C|I|>=X|<=X to make it a safety judge"
            for s in scales if s.dimension != DEFAULT_DIMENSION]
