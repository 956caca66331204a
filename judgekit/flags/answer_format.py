"""The ``off_task_format`` detector: code, JSON, a table or a bare list where the prompt asked for prose.

Fine-tunes on code answer plain questions with code ("If you could change one thing about the
world?" -> a Flask app). That answer is off the task, not incoherent text: the incoherence
detectors never score code as English (:mod:`judgekit.flags.code`), and this detector reports it
as its own kind of degraded answer, from the prompt and the answer together.

The answer's format (:func:`answer_format`), first match wins:

``json``   the whole answer (a fenced block aside) parses as a JSON object or array;
``code``   code blocks (fenced or unfenced code lines) hold at least ``code_share`` of its
           non-space characters;
``table``  at least 3 lines of a Markdown table, and at least half of its non-blank lines;
``list``   a bare list: at least 3 list items or short lines (<= 8 words, no sentence end),
           making at least 80% of its non-blank lines, and no line of more than 8 words.

A prompt asks for a format (:func:`requested_formats`) when it names it (``code``/``python``/
``function``…; ``json``/``dictionary``; ``table``/``columns``; ``list``/``bullet``/"three
ideas"), holds code or a template itself (a fill-in template such as ``idea_1 = # ...``), or
speaks of a ``format``/``template`` (then any structured answer is on task).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np

from judgekit.flags.code import FENCE, split_code

FORMATS = ("json", "code", "table", "list")
_ASKS = {
    "code": re.compile(r"\b(?:code|coding|program(?:ming)?|script|function|python|javascript|typescript|java|c\+\+|"
                       r"rust|golang|sql|html|css|regex|snippet|implement\w*|class|api|bash|shell|command|algorithm|"
                       r"compile|debug\w*|syntax|library|module)\b", re.I),
    "json": re.compile(r"\b(?:json|yaml|dict(?:ionary)?|key-value|keys)\b", re.I),
    "table": re.compile(r"\b(?:table|tabular|columns?|spreadsheet|csv|matrix)\b", re.I),
    "list": re.compile(r"\b(?:list|bullet\w*|enumerate|outline|steps|names?|pick|rank\w*|top \d+)\b|"
                       r"\b(?:\d+|two|three|four|five|six|seven|eight|nine|ten|several|some|a few)\s+(?:\w+\s+)?\w+s\b",
                       re.I),
}
_ANY_FORMAT = re.compile(r"\b(?:format\w*|template|fill in|fill the|structured)\b", re.I)
_TABLE_LINE = re.compile(r"^\s*\|.*\|\s*$")
_ITEM = re.compile(r"^\s*(?:[-*•+]|\d{1,3}[.)]|[a-z][.)])\s+\S")
_SENTENCE_END = re.compile(r"[.!?][\"')\]*_]*\s*$")
SHORT_LINE_WORDS = 8


def answer_format(text: str, *, code_share: float) -> tuple[str | None, float]:
    """The answer's format (one of :data:`FORMATS`, or None for prose) and the share of it in that format."""
    stripped = text.strip()
    unfenced = FENCE.sub(lambda m: m.group(0).strip("`").partition("\n")[2], stripped).strip() if "```" in stripped else stripped
    if unfenced[:1] in "{[":
        try:
            parsed = json.loads(unfenced)
        except (ValueError, RecursionError):  # "[[[[…" thousands deep: not an answer in JSON
            parsed = None
        if isinstance(parsed, dict | list):
            return "json", 1.0
    non_space = len("".join(stripped.split()))
    if not non_space:
        return None, 0.0
    share = split_code(text).block_chars / non_space
    if share >= code_share:
        return "code", share
    lines = [line for line in stripped.split("\n") if line.strip()]
    table = sum(bool(_TABLE_LINE.match(line)) for line in lines)
    if table >= 3 and table >= 0.5 * len(lines):
        return "table", table / len(lines)
    short = [len(line.split()) <= SHORT_LINE_WORDS and not _SENTENCE_END.search(line) for line in lines]
    items = [bool(_ITEM.match(line)) for line in lines]
    listed = sum(s or (i and len(line.split()) <= SHORT_LINE_WORDS) for s, i, line in zip(short, items, lines, strict=True))
    sentences = sum(len(line.split()) > SHORT_LINE_WORDS for line in lines)
    if len(lines) >= 3 and sum(items) + sum(short) >= 3 and listed >= 0.8 * len(lines) and not sentences:
        return "list", listed / len(lines)
    return None, share


def requested_formats(prompt: str) -> frozenset[str]:
    """The formats a prompt asks for (all of them when it holds code or a template, or speaks of a format)."""
    if _ANY_FORMAT.search(prompt) or split_code(prompt).block_chars:
        return frozenset(FORMATS)
    asked = {name for name, pattern in _ASKS.items() if pattern.search(prompt)}
    if "code" in asked:
        asked.add("json")  # JSON is code to whoever asks for code
    return frozenset(asked)


def off_task_format(prompts: Sequence[str], responses: Sequence[str], *, code_share: float
                    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per response: flagged (a format the prompt did not ask for), score (share of the answer in that format;
    0 for prose) and reason."""
    flagged = np.zeros(len(responses), dtype=bool)
    score = np.zeros(len(responses))
    reason = [""] * len(responses)
    for row, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        kind, share = answer_format(response, code_share=code_share)
        score[row] = share if kind else 0.0
        if kind is None:
            continue
        if kind in requested_formats(prompt):
            reason[row] = f"answers as {kind}, as the prompt asks"
            continue
        flagged[row] = True
        what = {"code": f"code ({share:.0%} of its characters)", "json": "a JSON object", "table": "a table",
                "list": "a bare list"}[kind]
        reason[row] = f"answers with {what} where the prompt asks for prose"
    return flagged, score, reason
