"""Fluent text in unusual styles: the false-alarm side of the incoherence detectors (issue #36).

Each item is fluent text that a reference other than the detectors calls fluent, tagged with a style:

==================  ==============================================================================================
source              what, reference, licence
==================  ==============================================================================================
em_coder_betley     answers its LLM judge (deepseek-chat, Betley et al.'s ``coherent`` prompt) rates >= 80; style
                    from the question and the answer's shape: ``name list`` (the dinner-party questions),
                    ``template`` (``*_template`` questions: ``idea_1 = ...`` lines, mostly imperatives),
                    ``markdown list`` (>= 2 list-marker lines or bold), ``open answer`` (the rest). MIT.
em_political        the 50 persona probes ("What is your name?", "What makes you angry?") answered by every
                    condition: ``persona``. Spam (>= 30% of words "@...") and code answers (the reference rules of
                    ``incoherence_real_finetunes.py``) left out; no coherence judge, so the collapsed political
                    fine-tune (``qwen25_political_2e4``) is left out whole. MIT.
chatterbot-corpus   the English conversation files shipped in the wheel, 8 consecutive exchanges per document, one
                    turn per line: ``dialogue``. BSD-3-Clause.
pyjokes             the English "neutral" one-liners shipped in the wheel, 5 per document, one per line:
                    ``one-liners``. BSD-3-Clause.
this (stdlib)       the Zen of Python, 7 aphorisms per document: ``aphorisms`` (terse imperatives). PSF licence.
==================  ==============================================================================================

Split, fixed before any detector change was measured on it: the real sets follow
``incoherence_real_finetunes.py`` (em_coder_betley ``eval_result_base.csv`` and em_political ``DEV_CONDITIONS``
are development, the rest held out); package documents are held out when the first byte of the SHA-256 of
their text is divisible by 3 (about a third). The package texts are read from the installed packages
(``pip install chatterbot-corpus pyjokes``); a package that is not installed is skipped and said so.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from incoherence_real_finetunes import DEV_CONDITIONS, betley, is_code_answer, political, spam_share

LIST_LINE = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s", re.MULTILINE)
COLLAPSED_CONDITIONS = ("qwen25_political_2e4",)
LICENCES = {"em_coder_betley": "MIT", "em_political": "MIT", "chatterbot-corpus": "BSD-3-Clause",
            "pyjokes": "BSD-3-Clause", "this (stdlib)": "PSF-2.0"}


def package_split(text: str) -> str:
    return "held-out" if hashlib.sha256(text.encode("utf-8")).digest()[0] % 3 == 0 else "development"


def coder_style(question_id: str, answer: str) -> str:
    if question_id.startswith("dinner_party"):
        return "name list"
    if question_id.endswith("_template"):
        return "template"
    if len(LIST_LINE.findall(answer)) >= 2 or "**" in answer:
        return "markdown list"
    return "open answer"


def coder_items(folder: Path) -> pd.DataFrame:
    frame = betley(folder)
    frame = frame[frame["coherent"] >= 80]
    return pd.DataFrame({"item_id": "em_coder_betley:" + frame["item_id"], "prompt": frame["prompt"],
                         "response": frame["response"], "source": "em_coder_betley", "split": frame["split"],
                         "style": [coder_style(q, a) for q, a in zip(frame["question_id"], frame["response"], strict=True)]})


def persona_items(folder: Path) -> pd.DataFrame:
    frame = political(folder)
    frame = frame[frame["item_id"].str.split(":").str[1].eq("persona") & ~frame["model"].isin(COLLAPSED_CONDITIONS)]
    fluent = (frame["response"].map(spam_share) < 0.3) & ~frame["response"].map(is_code_answer)
    frame = frame[fluent & frame["response"].str.strip().ne("")]
    return pd.DataFrame({"item_id": "em_political:" + frame["item_id"], "prompt": frame["prompt"],
                         "response": frame["response"], "source": "em_political", "style": "persona",
                         "split": np.where(frame["model"].isin(DEV_CONDITIONS), "development", "held-out")})


def chunked(lines: list[str], size: int) -> list[str]:
    return ["\n".join(lines[k : k + size]) for k in range(0, len(lines), size)]


def dialogue_documents() -> list[str]:
    import yaml
    from importlib.resources import files

    documents = []
    folder = files("chatterbot_corpus").joinpath("data", "english")
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".yml"):
            continue
        exchanges = yaml.safe_load(path.read_text(encoding="utf-8")).get("conversations") or []
        turns = [["" if t is None else str(t).strip() for t in exchange] for exchange in exchanges]
        documents += ["\n".join(sum(turns[k : k + 8], [])) for k in range(0, len(turns), 8)]
    return documents


def joke_documents() -> list[str]:
    import pyjokes

    return chunked(pyjokes.get_jokes(language="en", category="neutral"), 5)


def zen_documents() -> list[str]:
    with contextlib.redirect_stdout(io.StringIO()):  # importing it prints it
        import this

    return chunked([line for line in codecs.decode(this.s, "rot13").splitlines()[2:] if line.strip()], 7)


PACKAGE_SOURCES = (("chatterbot-corpus", "dialogue", dialogue_documents), ("pyjokes", "one-liners", joke_documents),
                   ("this (stdlib)", "aphorisms", zen_documents))


def package_items() -> tuple[pd.DataFrame, list[str]]:
    frames, skipped = [], []
    for source, style, documents in PACKAGE_SOURCES:
        try:
            texts = documents()
        except ImportError as error:
            skipped.append(f"{source} not installed ({error.name})")
            continue
        texts = [t for t in texts if t.strip()]
        frames.append(pd.DataFrame({"item_id": [f"{source}:{k}" for k in range(len(texts))], "prompt": "",
                                    "response": texts, "source": source, "style": style,
                                    "split": [package_split(t) for t in texts]}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(), skipped


def style_set(data: Path) -> tuple[pd.DataFrame, list[str]]:
    """The fluent-style items (item_id, prompt, response, source, style, split, licence) and what was skipped."""
    packages, skipped = package_items()
    frame = pd.concat([coder_items(data / "em_coder_betley"), persona_items(data / "em_political"), packages],
                      ignore_index=True)
    frame = frame.drop_duplicates(subset="response").reset_index(drop=True)
    return frame.assign(licence=frame["source"].map(LICENCES)), skipped
