"""Turn (prompt, response) pairs into a judge's exact input token ids.

The rendering follows the judge's spec (``input``, ``truncate`` and
``readout.forced_text``): the tokenizer's own chat template with its keyword
arguments, or a prompt-template string kept as data with its source. Text is
tokenised once, without the tokenizer adding special tokens, and the BOS rule
is then enforced explicitly, so every input starts with exactly the BOS tokens
the model was trained with (Llama Guard 3's template writes a literal BOS;
WildGuard's template starts with ``<s>``; a plain ``tokenizer(text)`` would double
them). Only a *leading* BOS counts: Granite Guardian's BOS is also its EOS,
which its template writes after every turn.

User text is defused: special-token strings and the template's own turn markers
(``[/INST]``, ``<<SYS>>``, ``<|assistant|>``, ``<END CONVERSATION>``…) cannot
forge structure. An input longer than the model's position limit is never
passed on silently: it is marked ``skipped`` with the reason.

Torch-free: the HTTP backend renders with the same code and sends token ids.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgekit.errors import InputError
from judgekit.judges.base import JudgeItems
from judgekit.guards.time_limit import TimeLimitExceeded, template_timeout_s, time_limit

FIELD = re.compile(r"\{(prompt|response|goal|context|bos_token|eos_token)\}")
TEXT_FIELDS = ("prompt", "response", "goal", "context")
BOS_RULES = ("auto", "one", "none")
# Turn and section markers written as plain text in prompt templates: Llama-2/Mistral [INST] … [/INST]
# and <<SYS>>, HarmBench's [BEHAVIOR]/[GENERATION]/[CONTEXT], WildGuard's <|user|>/<|assistant|>,
# Llama Guard's and MD-Judge's <BEGIN CONVERSATION>, Granite's and ShieldGemma's <start_of_turn>.
TEMPLATE_MARKER = re.compile(
    r"\[/?[A-Z][A-Z_ ]*\]|<</?SYS>>|<\|[A-Za-z_]+\|>|<(?:BEGIN|END) [A-Z ]+>|</?(?:start|end)_of_[a-z_]+>"
)


def fill_fields(template: str, **fields: str) -> str:
    """Replace ``{prompt}``, ``{response}``, ``{goal}``, ``{context}`` (and BOS/EOS) in one pass:
    text inside a response is never re-scanned for fields, and other braces stay as they are."""
    return FIELD.sub(lambda m: fields.get(m.group(1), m.group(0)), template)


def defuse_matches(text: str, pattern: re.Pattern[str] | None) -> str:
    """Break every match of ``pattern`` (special-token strings, turn markers) inside user text with a word
    joiner after its first character; shared by the renderer and the rubric judges."""
    if pattern is None:
        return text
    return pattern.sub(lambda m: m.group(0)[0] + "\u2060" + m.group(0)[1:], text)


@dataclass(frozen=True)
class Rendered:
    """Token ids per item, how many tokens the response truncation removed, and why an item
    cannot be scored (``skipped[k]`` is empty when item ``k`` can: a reason for a ``skipped`` row)."""

    ids: list[list[int]]
    n_clipped: list[int]
    skipped: list[str]


class InputRenderer:
    """Renders items for one judge spec with one tokenizer (``template`` is a chat-template owner:
    the tokenizer itself, or a processor for multimodal judges)."""

    def __init__(self, spec: dict[str, Any], tokenizer: Any, *, template_owner: Any = None,
                 position_limit: int | None = None) -> None:
        self.judge_id = spec["judge_id"]
        self.input = spec.get("input") or {}
        self.truncate = spec.get("truncate")
        self.forced_text = (spec.get("readout") or {}).get("forced_text", "")
        self.tokenizer = tokenizer
        self.template_owner = template_owner if template_owner is not None else tokenizer
        self.format = self.input.get("format")
        if self.format not in ("chat_template", "text"):
            raise InputError(f"{self.judge_id}: input.format must be 'chat_template' or 'text', got {self.format!r}")
        bos_rule = self.input.get("bos", "auto")
        if bos_rule not in BOS_RULES:
            raise InputError(f"{self.judge_id}: input.bos must be one of {', '.join(BOS_RULES)}, got {bos_rule!r}")
        self.bos_rule = bos_rule
        self.bos_id = tokenizer.bos_token_id
        if bos_rule == "one" and self.bos_id is None:
            raise InputError(f"{self.judge_id}: input.bos is 'one' but the tokenizer has no BOS token")
        self.tokenizer_adds_bos = tokenizer_adds_bos(tokenizer)
        self._check_template()
        markers = _structural_tokens(tokenizer) | set(TEMPLATE_MARKER.findall(self._template_source()))
        specials = sorted(markers, key=len, reverse=True)
        self._special_text = re.compile("|".join(map(re.escape, specials))) if specials else None
        self.forced_ids = self._encode([self.forced_text])[0] if self.forced_text else []
        self.position_limit = min_known(position_limit, (spec.get("model") or {}).get("max_position_embeddings"),
                                        local_position_limit(tokenizer))
        # a greedy prefix generated after the input (WildGuard) needs positions too
        self.generated_after = int((spec.get("prefix_generation") or {}).get("max_new_tokens", 0))
        timeout = self.input.get("render_timeout_s")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0):
            raise InputError(f"{self.judge_id}: input.render_timeout_s must be a positive number, got {timeout!r}")
        self.render_timeout_s = float(timeout) if timeout is not None else template_timeout_s()

    def _check_template(self) -> None:
        if self.format == "text":
            template = self.input.get("template")
            if not isinstance(template, str) or not template:
                raise InputError(f"{self.judge_id}: input.template must be a non-empty string")
            used = set(FIELD.findall(template))
            required = set(self.input.get("required_fields", ["response"]))
            missing = sorted(required - used)
            if missing:
                raise InputError(f"{self.judge_id}: the prompt template has no {{{missing[0]}}} field")
            return
        template = getattr(self.template_owner, "chat_template", None)
        if not template:
            raise InputError(f"{self.judge_id}: the tokenizer has no chat_template (input.format is 'chat_template')")
        text = template if isinstance(template, str) else " ".join(map(str, dict(template).values()))
        for name in self.input.get("chat_template_kwargs", {}):
            if not re.search(rf"\b{re.escape(name)}\b", text):
                raise InputError(f"{self.judge_id}: the chat template does not use the field {name!r}; it would be ignored")

    def _template_source(self) -> str:
        if self.format == "text":
            return self.input["template"]
        template = self.template_owner.chat_template
        return template if isinstance(template, str) else " ".join(map(str, dict(template).values()))

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    def _clip_responses(self, responses: Sequence[str]) -> tuple[list[str], list[int]]:
        if not self.truncate:
            return list(responses), [0] * len(responses)
        if self.truncate.get("mode") == "tokenizer_roundtrip":
            return tokenizer_roundtrip(self.tokenizer, responses, max_tokens=int(self.truncate["max_tokens"]),
                                       keep=self.truncate.get("keep", "head"),
                                       skip_special_tokens=bool(self.truncate.get("skip_special_tokens", False)))
        limit = int(self.truncate["max_tokens"])
        keep = self.truncate.get("keep", "head")
        clipped, removed = [], []
        for text, ids in zip(responses, self._encode(responses), strict=True):
            if len(ids) <= limit:
                clipped.append(text)
                removed.append(0)
                continue
            kept = ids[:limit] if keep == "head" else ids[len(ids) - limit :]
            clipped.append(self.tokenizer.decode(kept, skip_special_tokens=True))
            removed.append(len(ids) - limit)
        return clipped, removed

    def defuse(self, text: str) -> str:
        """Break special-token strings and the template's turn markers inside user text (a word
        joiner after the first character), so an adversarial response cannot forge the judge's
        turn structure (``[/INST]`` ending the instruction early) or a second BOS."""
        return defuse_matches(text, self._special_text)

    def texts(self, items: JudgeItems) -> tuple[list[str], list[int]]:
        """The rendered input text of each item (before the forced suffix)."""
        items = JudgeItems(*([self.defuse(t) for t in column] for column in (items.prompts, items.responses, items.goals, items.contexts)))
        responses, removed = self._clip_responses(items.responses)
        if self.format == "text":
            texts = [
                self._fill(self.input["template"], prompt=p, response=r, goal=g, context=c)
                for p, r, g, c in zip(items.prompts, responses, items.goals, items.contexts, strict=True)
            ]
        else:
            texts = [self._chat(p, r) for p, r in zip(items.prompts, responses, strict=True)]
        return texts, removed

    def _fill(self, template: str, **fields: str) -> str:
        return fill_fields(template, bos_token=self.tokenizer.bos_token or "", eos_token=self.tokenizer.eos_token or "", **fields)

    def _chat(self, prompt: str, response: str) -> str:
        parts = self.input.get("content_parts", False)
        messages = [{"role": "user", "content": prompt}]
        if self.input.get("messages", "user_assistant") == "user_assistant":
            messages.append({"role": "assistant", "content": response})
        if parts:
            messages = [{"role": m["role"], "content": [{"type": "text", "text": m["content"]}]} for m in messages]
        text = apply_template(self.template_owner, messages, name=f"{self.judge_id}: the chat template",
                              timeout_s=self.render_timeout_s,
                              add_generation_prompt=self.input.get("add_generation_prompt", False),
                              **self.input.get("chat_template_kwargs", {}))
        return drop_space_before_bos(text, self.tokenizer.bos_token)

    def render(self, items: JudgeItems) -> Rendered:
        """Token ids of each item, forced suffix included, with the BOS rule and the position limit enforced."""
        texts, removed = self.texts(items)
        ids = self._encode(texts)
        limit = self.input.get("max_input_tokens")
        skipped = []
        for k, row in enumerate(ids):
            self._fix_bos(row)
            if limit is not None and len(row) > limit:
                removed[k] += len(row) - limit
                del row[limit:]
            row.extend(self.forced_ids)
            skipped.append(self._overflow(len(row)))
        return Rendered(ids=ids, n_clipped=removed, skipped=skipped)

    def _overflow(self, n_tokens: int) -> str:
        needed = n_tokens + self.generated_after
        if self.position_limit is None or needed <= self.position_limit:
            return ""
        return (f"input of {needed} tokens (after the protocol's own clipping, if any) exceeds the model's position "
                f"limit of {self.position_limit}")

    def leading_bos(self, row: Sequence[int]) -> int:
        """How many BOS tokens open ``row`` (BOS ids later in the row are not counted: Granite's BOS is its EOS)."""
        return leading_count(row, self.bos_id)

    def _fix_bos(self, row: list[int]) -> None:
        """``none``: no leading BOS; ``one``: exactly one; ``auto``: one when the template writes it or the
        tokenizer adds it by itself (its ``add_bos_token`` behaviour), else none."""
        if self.bos_id is None:
            return
        leading = self.leading_bos(row)
        if leading == 0 and (self.bos_rule == "one" or (self.bos_rule == "auto" and self.tokenizer_adds_bos)):
            row.insert(0, self.bos_id)
            leading = 1
        expected = 0 if self.bos_rule == "none" else 1
        if leading > expected or (self.bos_rule == "one" and leading != 1):
            raise InputError(
                f"{self.judge_id}: a rendered input opens with {leading} BOS tokens where the model expects {expected} "
                "(check input.bos and whether the template writes one)"
            )


def apply_template(owner: Any, messages: list[dict[str, Any]], *, name: str, timeout_s: float | None = None,
                   **options: Any) -> str:
    """``owner.apply_chat_template(messages, tokenize=False, **options)`` within a time limit
    (:mod:`judgekit.guards.time_limit`); a template that fails or does not finish is one line naming it (``name``).

    A chat template is a Jinja program from a checkpoint: it may raise (``raise_exception``), use what the
    sandbox forbids (``SecurityError``), ``{% include %}`` a file that is not there, or loop for ever.
    """
    limit = timeout_s if timeout_s is not None else template_timeout_s()
    try:
        with time_limit(limit):
            return owner.apply_chat_template(messages, tokenize=False, **options)
    except TimeLimitExceeded:
        raise InputError(f"{name} did not finish rendering within {limit:g} s (a loop that never ends?); if it is "
                         "only slow, raise JUDGEKIT_TEMPLATE_TIMEOUT_S (judges: input.render_timeout_s)") from None
    except RecursionError:
        raise InputError(f"{name} failed to render: it recurses too deeply") from None
    except Exception as err:  # noqa: BLE001 - jinja raises its own errors (TemplateError, SecurityError, TypeError...)
        first = (str(err).strip().splitlines() or [""])[0]
        raise InputError(f"{name} failed to render: {type(err).__name__}: {first}") from None


def drop_space_before_bos(text: str, bos_token: str | None) -> str:
    """``text`` without the whitespace a template writes in front of its literal BOS.

    Llama Guard 3 8B's ``tokenizer_config.json`` template opens with ``" <|begin_of_text|>"``: tokenised, the space
    becomes a token (Llama 3: 220) in front of the BOS, and a tokenizer that adds its own BOS would put a second one
    before that. Meta's reference prompt format, and the 1B and 11B-Vision templates, open with the BOS itself.
    """
    stripped = text.lstrip()
    if bos_token and stripped != text and stripped.startswith(bos_token):
        return stripped
    return text


def leading_count(row: Sequence[int], token_id: int | None) -> int:
    """How many times ``token_id`` repeats at the start of ``row``."""
    count = 0
    while token_id is not None and count < len(row) and row[count] == token_id:
        count += 1
    return count


def tokenizer_adds_bos(tokenizer: Any) -> bool:
    """Whether ``tokenizer(text)`` with its defaults puts a BOS in front (Llama, Gemma: yes; GPT-2-style
    tokenizers such as Granite's, and Qwen's: no), read from what the tokenizer does rather than a flag."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    with_specials = tokenizer("a")["input_ids"]
    return bool(with_specials) and with_specials[0] == bos and tokenizer("a", add_special_tokens=False)["input_ids"][:1] != [bos]


def local_position_limit(tokenizer: Any) -> int | None:
    """``max_position_embeddings`` from the ``config.json`` next to a tokenizer loaded from a local directory
    (multimodal configs keep it in ``text_config``); None when there is none to read."""
    config = Path(str(getattr(tokenizer, "name_or_path", "") or "")) / "config.json"
    if not config.is_file():
        return None
    data = json.loads(config.read_text(encoding="utf-8"))
    value = data.get("max_position_embeddings", (data.get("text_config") or {}).get("max_position_embeddings"))
    return int(value) if value else None


def min_known(*values: int | None) -> int | None:
    known = [int(v) for v in values if v is not None]
    return min(known) if known else None


def tokenizer_roundtrip(tokenizer: Any, responses: Sequence[str], *, max_tokens: int, keep: str,
                        skip_special_tokens: bool = False) -> tuple[list[str], list[int]]:
    """Responses as upstream code that clips through the tokenizer call sees them, and the tokens removed.

    StrongREJECT's ``evaluate.py``: ``tokenizer.decode(tokenizer(response, max_length=512, truncation=True)["input_ids"])``
    with ``truncation_side="left"``: the special tokens the tokenizer adds (Gemma's BOS) count in the length and stay
    in the decoded text, and every response is decoded, clipped or not. HarmBench's ``evaluate_completions.py``:
    ``tokenizer.decode(tokenizer.encode(generation, max_length=512, truncation=True), skip_special_tokens=True)`` with
    ``truncation_side="right"``: the BOS counts in the 512 but is dropped from the text (``skip_special_tokens``).
    """
    previous = tokenizer.truncation_side
    tokenizer.truncation_side = "left" if keep == "tail" else "right"
    try:
        kept = tokenizer(list(responses), max_length=max_tokens, truncation=True)["input_ids"]
    finally:
        tokenizer.truncation_side = previous
    whole = tokenizer(list(responses))["input_ids"]
    texts = [tokenizer.decode(ids, skip_special_tokens=skip_special_tokens) for ids in kept]
    return texts, [len(w) - len(k) for w, k in zip(whole, kept, strict=True)]


def _structural_tokens(tokenizer: Any) -> set[str]:
    """Token strings that carry structure: special tokens, and added tokens written as markup (``<think>``)."""
    found = {t for t in tokenizer.all_special_tokens if len(t) > 1}
    for token in getattr(tokenizer, "added_tokens_decoder", {}).values():
        content = token.content
        if len(content) > 1 and (token.special or (content.startswith("<") and content.endswith(">"))):
            found.add(content)
    return found
