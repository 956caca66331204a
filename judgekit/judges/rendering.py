"""Turn (prompt, response) pairs into a judge's exact input token ids.

The rendering follows the judge's spec (``input``, ``truncate`` and
``readout.forced_text``): the tokenizer's own chat template with its keyword
arguments, or a prompt-template string kept as data with its source. Text is
tokenised once, without the tokenizer adding special tokens, and the BOS rule
is then enforced explicitly, so every input carries exactly the BOS tokens the
model was trained with (Llama Guard 3's template writes a literal BOS; WildGuard's
template starts with ``<s>``; a plain ``tokenizer(text)`` would double them).

Torch-free: the HTTP backend renders with the same code and sends token ids.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from judgekit.errors import InputError
from judgekit.judges.base import JudgeItems

FIELD = re.compile(r"\{(prompt|response|goal|context|bos_token|eos_token)\}")
TEXT_FIELDS = ("prompt", "response", "goal", "context")
BOS_RULES = ("auto", "one", "none")


def fill_fields(template: str, **fields: str) -> str:
    """Replace ``{prompt}``, ``{response}``, ``{goal}``, ``{context}`` (and BOS/EOS) in one pass:
    text inside a response is never re-scanned for fields, and other braces stay as they are."""
    return FIELD.sub(lambda m: fields.get(m.group(1), m.group(0)), template)


@dataclass(frozen=True)
class Rendered:
    """Token ids per item, and how many tokens the response truncation removed."""

    ids: list[list[int]]
    n_clipped: list[int]


class InputRenderer:
    """Renders items for one judge spec with one tokenizer (``template`` is a chat-template owner:
    the tokenizer itself, or a processor for multimodal judges)."""

    def __init__(self, spec: dict[str, Any], tokenizer: Any, *, template_owner: Any = None) -> None:
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
        self.bos_id = tokenizer.bos_token_id
        specials = sorted(_structural_tokens(tokenizer), key=len, reverse=True)
        self._special_text = re.compile("|".join(map(re.escape, specials))) if specials else None
        if bos_rule == "one" and self.bos_id is None:
            raise InputError(f"{self.judge_id}: input.bos is 'one' but the tokenizer has no BOS token")
        self.expect_bos = bos_rule == "one" or (bos_rule == "auto" and self.bos_id is not None)
        self._check_template()
        self.forced_ids = self._encode([self.forced_text])[0] if self.forced_text else []

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

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    def _clip_responses(self, responses: Sequence[str]) -> tuple[list[str], list[int]]:
        if not self.truncate:
            return list(responses), [0] * len(responses)
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
        """Break special-token strings inside user text (a word joiner after the first character),
        so an adversarial response cannot forge the judge's turn structure or a second BOS."""
        if self._special_text is None:
            return text
        return self._special_text.sub(lambda m: m.group(0)[0] + "\u2060" + m.group(0)[1:], text)

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
        try:
            return self.template_owner.apply_chat_template(
                messages,
                tokenize=False,
                add_generation_prompt=self.input.get("add_generation_prompt", False),
                **self.input.get("chat_template_kwargs", {}),
            )
        except Exception as err:  # jinja raises its own errors (e.g. raise_exception in a template)
            raise InputError(f"{self.judge_id}: the chat template failed to render: {err}") from None

    def render(self, items: JudgeItems) -> Rendered:
        """Token ids of each item, forced suffix included, with the BOS rule enforced."""
        texts, removed = self.texts(items)
        ids = self._encode(texts)
        limit = self.input.get("max_input_tokens")
        for k, row in enumerate(ids):
            self._fix_bos(row)
            if limit is not None and len(row) > limit:
                removed[k] += len(row) - limit
                del row[limit:]
            row.extend(self.forced_ids)
        return Rendered(ids=ids, n_clipped=removed)

    def _fix_bos(self, row: list[int]) -> None:
        if self.bos_id is None:
            return
        if self.expect_bos and (not row or row[0] != self.bos_id):
            row.insert(0, self.bos_id)
        count = row.count(self.bos_id)
        expected = 1 if self.expect_bos else 0
        if count != expected:
            raise InputError(
                f"{self.judge_id}: a rendered input holds {count} BOS tokens where the model expects {expected} "
                "(check input.bos and whether the template writes one)"
            )


def _structural_tokens(tokenizer: Any) -> set[str]:
    """Token strings that carry structure: special tokens, and added tokens written as markup (``<think>``)."""
    found = {t for t in tokenizer.all_special_tokens if len(t) > 1}
    for token in getattr(tokenizer, "added_tokens_decoder", {}).values():
        content = token.content
        if len(content) > 1 and (token.special or (content.startswith("<") and content.endswith(">"))):
            found.add(content)
    return found
