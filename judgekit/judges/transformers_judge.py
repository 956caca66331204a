"""Open-weight guard models run in-process with ``transformers``.

One prefill-only forward pass per item when the verdict position is fixed: the
judge's input (:mod:`judgekit.judges.rendering`) plus any forced tokens that
precede the verdict (Llama Guard 3's ``"\\n\\n"``, Qwen3Guard's ``Safety:``), and
the label-token log-probabilities read at the last position only — the model is
asked for one row of logits per item (``logits_to_keep``), never the
``[batch, seq, vocab]`` tensor. Readouts (``spec["readout"]["kind"]``):

``label_tokens`` / ``score_tokens``
    P(unsafe) from the full softmax at the verdict position
    (:mod:`judgekit.judges.readout`).
``max_sigmoid``
    a sequence-classification head (BeaverDam): ``max_k sigmoid(logit_k)``.
``generate``
    bounded greedy generation and a regular expression over the text
    (judges whose verdict has no fixed position); ``p_unsafe`` stays empty.

``prefix_generation`` (WildGuard) first generates greedily up to an anchor
string ("Harmful response:") and then reads the label tokens after it: a
probability conditional on the greedy prefix.

Items are sorted by length and packed into batches by a token budget; a batch that
runs out of CUDA memory is split and retried after the exception is handled (so its
tensors are freed first), down to one item, which becomes an ``error`` row.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from judgekit.errors import InputError
from judgekit.judges.base import DEFAULT_MAX_PADDING, JudgeItems, Verdict
from judgekit.judges.identity import PROBE_ITEMS, checkpoint_identity, token_ids_sha256
from judgekit.judges.readout import DEFAULT_THRESHOLD, TokenReadout, resolve_token_readout, verdict_detail, vocab_lookup
from judgekit.judges.rendering import InputRenderer
from judgekit.guards.model_gate import load_model, load_processor, load_tokenizer
from judgekit.guards.time_limit import TimeLimitExceeded, parse_timeout_s, time_limit

log = logging.getLogger(__name__)

LOADERS = {
    "causal_lm": "AutoModelForCausalLM",
    "sequence_classification": "AutoModelForSequenceClassification",
    "image_text_to_text": "AutoModelForImageTextToText",
}
# On CPU, attention with a padding mask leaves the fused causal kernel and costs more than
# batching saves (benchmarks/judge_throughput.py), so CPU batches hold one item by default.
DEFAULT_TOKEN_BUDGET = {"cuda": 65536, "cpu": 1}
DEFAULT_MAX_BATCH_ITEMS = 256


class TransformersJudge:
    """A guard model loaded lazily from a local directory or hub id; freed by :meth:`close`.

    Parameters
    ----------
    spec : dict
        A ``causal_lm`` judge spec (see the presets).
    model_path : str, optional
        Local directory (or hub id) overriding ``spec["model"]["id"]``.
    device : str, optional
        ``cuda``, ``cpu``...; default CUDA when available.
    dtype : str, optional
        ``bfloat16`` (default on CUDA) or ``float32`` (default on CPU).
    token_budget : int, optional
        Padded tokens per forward pass.
    padding_side : {"left", "right"}
        Batches pad on this side; position ids follow the attention mask either way.
    device_map : str, optional
        Passed to ``from_pretrained`` to spread a judge larger than one GPU.
    max_padding : float or None, default=0.10
        A planned batch closes before this share of its tokens is padding
        (:func:`pack_by_budget`); None (or 1) packs by the token budget alone.
    """

    def __init__(
        self,
        spec: dict[str, Any],
        *,
        model_path: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        token_budget: int | None = None,
        max_batch_items: int = DEFAULT_MAX_BATCH_ITEMS,
        padding_side: str = "left",
        device_map: str | None = None,
        max_padding: float | None = DEFAULT_MAX_PADDING,
    ) -> None:
        self.spec = spec
        self.judge_id: str = spec["judge_id"]
        model = spec.get("model") or {}
        self.model_source = model_path or model.get("id")
        if not self.model_source:
            raise InputError(f"{self.judge_id}: no model: set model.id in the spec or pass --model-path {self.judge_id}=DIR")
        self.loader = model.get("loader", "causal_lm")
        if self.loader not in LOADERS:
            raise InputError(f"{self.judge_id}: model.loader must be one of {', '.join(LOADERS)}")
        refuse_checkpoint_code(spec)
        if padding_side not in ("left", "right"):
            raise InputError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        if max_padding is not None and not 0 <= max_padding <= 1:
            raise InputError(f"max_padding must be in [0, 1] (a share of a batch's tokens), got {max_padding!r}")
        self.max_padding = max_padding
        self.revision = None if model_path else model.get("revision")
        self.readout_kind = (spec.get("readout") or {}).get("kind")
        self.padding_side = padding_side
        self.device_request = device
        self.dtype_request = dtype
        self.device_map = device_map
        self.token_budget_request = token_budget
        self.max_batch_items = max_batch_items
        self._tokenizer = None
        self._renderer: InputRenderer | None = None
        self._readout: TokenReadout | None = None
        self._model = None
        self._prepared: dict[tuple[str, ...], tuple[list[int], int]] = {}
        self.n_oom_retries = 0

    # -- loading -----------------------------------------------------------------------------
    def _load_tokenizer(self) -> None:
        if self._renderer is not None:
            return
        self._tokenizer, self._renderer, self._readout = load_renderer(
            self.spec, self.model_source, revision=self.revision, loader=self.loader
        )

    def _load_model(self) -> None:
        if self._model is not None:
            return
        self._load_tokenizer()
        import torch

        device, dtype_name = self._device_and_dtype()
        options: dict[str, Any] = {"revision": self.revision, "dtype": getattr(torch, dtype_name)}
        # Otherwise transformers picks SDPA where the architecture supports it (not Gemma 2's soft-capping).
        if device.startswith("cuda") and importlib.util.find_spec("flash_attn"):
            options["attn_implementation"] = "flash_attention_2"
        if self.device_map:
            options["device_map"] = self.device_map
        model = load_model(LOADERS[self.loader], self.model_source, option=self.judge_id, **options)
        if not self.device_map:
            model = model.to(device)
        model.eval()
        self._model = model
        self.device = model.get_input_embeddings().weight.device
        self.dtype = dtype_name
        self.attention = getattr(model.config, "_attn_implementation", None)
        self.token_budget = self._planned_budget()

    def _device_and_dtype(self) -> tuple[str, str]:
        device = self.device_request or ("cuda" if _cuda_available() else "cpu")
        return device, self.dtype_request or ("bfloat16" if device.startswith("cuda") else "float32")

    def identity(self) -> dict[str, Any]:
        """What besides the spec decides a verdict: the weights (hub commit or local fingerprint), the dtype,
        the rendering as run and the resolved label tokens (:mod:`judgekit.judges.identity`)."""
        self._load_tokenizer()
        return {
            "backend": "transformers",
            "weights": checkpoint_identity(self.model_source, self.revision),
            "dtype": self._device_and_dtype()[1],
            "rendered_probe_sha256": token_ids_sha256(self._renderer.render(PROBE_ITEMS).ids),
            "label_token_ids": list(self._readout.ids) if self._readout is not None else None,
        }

    def close(self) -> None:
        """Free the model (and GPU memory) before the next judge loads."""
        if self._model is None:
            return
        import gc

        import torch

        self._model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def run_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"backend": "transformers", "model": str(self.model_source), "padding_side": self.padding_side}
        if self._model is not None or hasattr(self, "device"):
            info.update(device=str(self.device), dtype=self.dtype, attention=self.attention, token_budget=self.token_budget,
                        max_padding=self.max_padding)
        if self._readout is not None:
            info["label_tokens"] = dict(zip(self._readout.tokens, self._readout.ids, strict=True))
        info["oom_retries"] = self.n_oom_retries
        return info

    # -- planning ------------------------------------------------------------------------------
    def _encode(self, items: JudgeItems, *, consume: bool) -> tuple[list[list[int]], list[int], list[str]]:
        """Token ids rendered by :meth:`plan` (or now), tokens clipped, and why an item cannot be scored
        (empty when it can); ``consume`` drops them once they are scored."""
        keys = list(zip(items.prompts, items.responses, items.goals, items.contexts, strict=True))
        missing = [i for i, k in enumerate(keys) if k not in self._prepared]
        if missing:
            rendered = self._renderer.render(items.take(missing))
            for i, ids, clipped, skipped in zip(missing, rendered.ids, rendered.n_clipped, rendered.skipped, strict=True):
                self._prepared[keys[i]] = (ids, clipped, skipped)
        rows = [self._prepared[k] for k in keys]
        if consume:
            for key in keys:
                self._prepared.pop(key, None)
        return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]

    def plan(self, items: JudgeItems) -> list[np.ndarray]:
        """Batches of item indices: longest first, packed so that ``len(batch) × longest ≤ budget`` and at most
        ``max_padding`` of a batch's tokens are padding."""
        self._load_tokenizer()
        ids, _, _ = self._encode(items, consume=False)
        lengths = np.array([len(row) for row in ids])
        return pack_by_budget(lengths, budget=self._planned_budget(), max_items=self.max_batch_items,
                              max_padding=self.max_padding)

    def _planned_budget(self) -> int:
        if self.token_budget_request:
            return int(self.token_budget_request)
        device = self.device_request or ("cuda" if _cuda_available() else "cpu")
        return DEFAULT_TOKEN_BUDGET["cuda" if device.startswith("cuda") else "cpu"]

    # -- inspection (judgekit inspect-judge) ----------------------------------------------------
    @property
    def tokenizer(self):
        self._load_tokenizer()
        return self._tokenizer

    @property
    def readout(self) -> TokenReadout | None:
        self._load_tokenizer()
        return self._readout

    @property
    def forced_ids(self) -> list[int]:
        self._load_tokenizer()
        return list(self._renderer.forced_ids)

    def rendered_ids(self, items: JudgeItems) -> list[list[int]]:
        """The exact input ids each item is scored from (forced suffix included)."""
        self._load_tokenizer()
        return self._renderer.render(items).ids

    def top_next_tokens(self, ids: list[int], k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` most probable next tokens after ``ids`` (one unpadded forward pass)."""
        import torch

        self._load_model()
        with torch.inference_mode():
            logits = self._model(input_ids=torch.tensor([ids], device=self.device), logits_to_keep=1, use_cache=False).logits[0, -1]
            values, indices = torch.softmax(logits.float(), -1).topk(k)
        return [(self._tokenizer.decode([i]), float(v)) for i, v in zip(indices.tolist(), values.tolist(), strict=True)]

    def greedy_text(self, ids: list[int], max_new_tokens: int) -> str:
        self._load_model()
        tokens = self._generate([ids], max_new_tokens)["tokens"][0]
        return self._tokenizer.decode(tokens, skip_special_tokens=False)

    # -- scoring -------------------------------------------------------------------------------
    def judge(self, items: JudgeItems) -> list[Verdict]:
        self._load_model()
        ids, clipped, skipped = self._encode(items, consume=True)
        runnable = [i for i, reason in enumerate(skipped) if not reason]
        verdicts = [skipped_verdict(reason, len(row)) if reason else None for reason, row in zip(skipped, ids, strict=True)]
        if runnable:
            for i, verdict in zip(runnable, self._judge_rows([ids[i] for i in runnable], [clipped[i] for i in runnable]),
                                  strict=True):
                verdicts[i] = verdict
        return verdicts

    def _judge_rows(self, ids: list[list[int]], clipped: list[int]) -> list[Verdict]:
        if self.readout_kind == "generate":
            return self._judge_by_generation(ids, clipped)
        prefix_info = [""] * len(ids)
        failed: dict[int, Verdict] = {}
        if self.spec.get("prefix_generation"):
            ids, prefix_info, failed = self._generate_prefixes(ids)
        order = [i for i in range(len(ids)) if i not in failed]
        scored = self._with_backoff(self._score_rows, [ids[i] for i in order]) if order else []
        verdicts: list[Verdict | None] = [failed.get(i) for i in range(len(ids))]
        for position, i in enumerate(order):
            item = scored[position]
            verdicts[i] = (_out_of_memory(len(ids[i])) if item is None
                           else self._verdict_from_scores(item, len(ids[i]), clipped[i], prefix_info[i]))
        return verdicts

    def _verdict_from_scores(self, item: dict[str, Any], n_tokens: int, clipped: int, prefix: str) -> Verdict:
        detail = verdict_detail(clipped, prefix)
        p = float(item["p_unsafe"])
        if self.readout_kind == "max_sigmoid":
            label = "unsafe" if p >= float(self.spec["readout"].get("threshold", DEFAULT_THRESHOLD)) else "safe"
            return Verdict(label, p, "ok", item["raw"], detail, n_tokens, 0, None)
        coverage = float(item["coverage"])
        if not np.isfinite(p):
            return Verdict(None, None, "error", item["raw"], "no probability on any label token", n_tokens, 0, coverage)
        return Verdict(self._readout.label(p), p, "ok", item["raw"], detail, n_tokens, 0, min(coverage, 1.0))

    def _with_backoff(self, function, rows: list[list[int]]) -> list[dict[str, Any] | None]:
        """Per-item results of ``function`` over ``rows`` (in their order), run in sub-batches under the token budget.

        A sub-batch that runs out of memory is split in pieces (the budget halved at least to half
        its padded size) and retried **after** the exception has been handled, so the failed
        attempt's frames and tensors are released first; one item that still does not fit gives None.
        """
        results: list[dict[str, Any] | None] = [None] * len(rows)
        pending = _split_by_budget([len(r) for r in rows], self.token_budget)
        while pending:
            piece = pending.pop(0)
            batch = [rows[i] for i in piece]
            scores = self._attempt(function, batch)
            if scores is not None:
                for position, i in enumerate(piece):
                    results[i] = {key: value[position] for key, value in scores.items()}
                continue
            self._release_cache()
            longest = max(len(r) for r in batch)
            if len(batch) == 1:
                log.warning("%s: out of memory on one item of %d tokens; it becomes an error row", self.judge_id, longest)
                continue
            self.token_budget = max(longest, min(self.token_budget // 2, len(batch) * longest // 2))
            self.n_oom_retries += 1
            log.warning("%s: out of memory on %d items; token budget now %d", self.judge_id, len(batch), self.token_budget)
            pending[:0] = [piece[part] for part in _split_by_budget([len(r) for r in batch], self.token_budget)]
        return results

    @staticmethod
    def _attempt(function, batch: list[list[int]]) -> dict[str, Any] | None:
        """``function(batch)``, or None when it runs out of memory; the caller retries outside this handler."""
        import torch

        try:
            return function(batch)
        except torch.OutOfMemoryError:
            return None

    def _release_cache(self) -> None:
        if self.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()

    def _pad_id(self) -> int:
        """The tokenizer's pad token, else EOS, else 0 (padding is masked out either way)."""
        for candidate in (self._tokenizer.pad_token_id, self._tokenizer.eos_token_id):
            if candidate is not None:
                return candidate
        return 0

    def _batch_tensors(self, rows: list[list[int]], side: str | None = None):
        """Padded ids on ``side`` (default: the judge's padding side); mask and positions are None without padding."""
        import torch

        side = side or self.padding_side

        pad = self._pad_id()
        longest = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), longest), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for b, row in enumerate(rows):
            span = slice(longest - len(row), longest) if side == "left" else slice(0, len(row))
            input_ids[b, span] = torch.tensor(row, dtype=torch.long)
            mask[b, span] = 1
        if bool(mask.all()):
            # No padding: let the model take its unmasked causal path (a faster attention kernel on CPU).
            return input_ids.to(self.device), None, None
        positions = (mask.cumsum(-1) - 1).clamp_min(0)
        return input_ids.to(self.device), mask.to(self.device), positions.to(self.device)

    def _score_rows(self, rows: list[list[int]]) -> dict[str, Any]:
        import torch

        input_ids, mask, positions = self._batch_tensors(rows)
        with torch.inference_mode():
            if self.readout_kind == "max_sigmoid":
                logits = self._model(input_ids=input_ids, attention_mask=mask, position_ids=positions).logits.float()
                probs = torch.sigmoid(logits)
                best = probs.max(-1)
                labels = self._model.config.id2label
                raw = [f"{labels.get(int(k), k)}={float(v):.4f}" for k, v in zip(best.indices.tolist(), best.values.tolist(), strict=True)]
                return {"p_unsafe": best.values.cpu().numpy(), "raw": raw}
            logits = self._last_logits(input_ids, mask, positions)
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            label_logprobs = logprobs[:, list(self._readout.ids)].cpu().numpy()
            top = logprobs.argmax(-1).tolist()
        p, coverage = self._readout.p_unsafe(label_logprobs)
        raw = self._tokenizer.batch_decode([[t] for t in top])
        return {"p_unsafe": p, "coverage": coverage, "raw": raw}

    def _last_logits(self, input_ids, mask, positions):
        """Logits at each row's last real token only (one vocab row per item)."""
        import torch

        if self.padding_side == "left" or mask is None:
            out = self._model(input_ids=input_ids, attention_mask=mask, position_ids=positions, logits_to_keep=1, use_cache=False)
            return out.logits[:, -1]
        last = mask.sum(-1) - 1
        kept = torch.unique(last)
        out = self._model(input_ids=input_ids, attention_mask=mask, position_ids=positions, logits_to_keep=kept, use_cache=False)
        column = torch.searchsorted(kept, last)
        return out.logits[torch.arange(len(last), device=last.device), column]

    # -- generation ----------------------------------------------------------------------------
    def _generate(self, rows: list[list[int]], max_new_tokens: int) -> dict[str, Any]:
        import torch

        input_ids, mask, _ = self._batch_tensors(rows, side="left")  # generation appends on the right
        if mask is None:
            mask = torch.ones_like(input_ids)
        pad = self._pad_id()
        with torch.inference_mode():
            out = self._model.generate(
                input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                pad_token_id=pad, eos_token_id=self._tokenizer.eos_token_id,
            )
        new = out[:, input_ids.shape[1] :].tolist()
        eos = self._tokenizer.eos_token_id
        return {"tokens": [row[: row.index(eos) + 1] if eos in row else row for row in new]}

    def _judge_by_generation(self, ids: list[list[int]], clipped: list[int]) -> list[Verdict]:
        readout = self.spec["readout"]
        generated = self._with_backoff(lambda rows: self._generate(rows, int(readout.get("max_new_tokens", 32))), ids)
        return [
            _out_of_memory(len(row)) if item is None else parse_generated(
                self.spec, self._tokenizer.decode(item["tokens"], skip_special_tokens=True), n_input_tokens=len(row),
                n_output_tokens=len(item["tokens"]), clipped=n)
            for item, row, n in zip(generated, ids, clipped, strict=True)
        ]

    def _generate_prefixes(self, ids: list[list[int]]):
        """Greedy-generate up to the anchor; items whose output lacks it fail as ``unparseable``."""
        rule = self.spec["prefix_generation"]
        anchor = rule["until"]
        generated = self._with_backoff(lambda rows: self._generate(rows, int(rule.get("max_new_tokens", 32))), ids)
        extended, info, failed = [], [], {}
        for i, (row, item) in enumerate(zip(ids, generated, strict=True)):
            if item is None:
                failed[i] = _out_of_memory(len(row))
                extended.append(row)
                info.append("")
                continue
            tokens = item["tokens"]
            cut = tokens_through(self._tokenizer, tokens, anchor)
            text = self._tokenizer.decode(tokens, skip_special_tokens=True)
            if cut is None:
                failed[i] = Verdict(None, None, "unparseable", text, f"generated text lacks {anchor!r}", len(row), len(tokens))
                extended.append(row)
                info.append("")
                continue
            extended.append(row + tokens[:cut])
            info.append(f"read after greedy prefix {self._tokenizer.decode(tokens[:cut])!r}")
        return extended, info, failed


def refuse_checkpoint_code(spec: dict[str, Any]) -> None:
    """A spec asking for ``model.trust_remote_code`` is refused: judgekit never runs code from a checkpoint."""
    if (spec.get("model") or {}).get("trust_remote_code"):
        raise InputError(f"{spec['judge_id']}: model.trust_remote_code is set, but judgekit never runs code from a "
                         "checkpoint (use a model that transformers supports natively)")


def load_renderer(spec: dict[str, Any], source: str, *, revision: str | None, loader: str):
    """``(tokenizer, renderer, token readout or None)`` for a guard spec; shared with the HTTP backend."""
    judge_id = spec["judge_id"]
    looks_local = str(source).startswith((".", "/", "~")) or Path(source).exists() or str(source).count("/") > 1
    if looks_local and not Path(source).expanduser().is_dir():
        raise InputError(f"{judge_id}: model directory not found: {source}")
    if loader == "image_text_to_text":
        owner = load_processor(source, option=judge_id, revision=revision)
        tokenizer = owner.tokenizer
    else:
        tokenizer = owner = load_tokenizer(source, option=judge_id, revision=revision)
    renderer = InputRenderer(spec, tokenizer, template_owner=owner)
    kind = (spec.get("readout") or {}).get("kind")
    if kind in ("label_tokens", "score_tokens"):
        return tokenizer, renderer, resolve_token_readout(spec, vocab_lookup(tokenizer))
    if kind not in ("max_sigmoid", "generate"):
        raise InputError(f"{judge_id}: unknown readout.kind {kind!r}")
    return tokenizer, renderer, None


def parse_generated(spec: dict[str, Any], text: str, *, n_input_tokens: int | None, n_output_tokens: int | None, clipped: int = 0) -> Verdict:
    """Verdict from generated text: the **last** match of ``readout.pattern`` (group ``verdict``),
    mapped through ``readout.labels``; no match is ``unparseable``, never a guess."""
    readout = spec["readout"]
    limit = parse_timeout_s()
    try:
        with time_limit(limit):
            matches = list(re.finditer(readout["pattern"], text))
    except TimeLimitExceeded:
        return Verdict(None, None, "error", text, f"readout.pattern exceeded {limit:g} s on this output "
                       "(JUDGEKIT_PARSE_TIMEOUT_S)", n_input_tokens, n_output_tokens)
    detail = verdict_detail(clipped)
    if not matches:
        return Verdict(None, None, "unparseable", text, "no verdict in the output", n_input_tokens, n_output_tokens)
    word = matches[-1].group("verdict")
    label = readout["labels"].get(word.lower() if readout.get("ignore_case") else word)
    if label is None:
        return Verdict(None, None, "unparseable", text, f"verdict {word!r} is not a known label", n_input_tokens, n_output_tokens)
    return Verdict(label, None, "ok", text, detail, n_input_tokens, n_output_tokens)


def pack_by_budget(lengths: np.ndarray, *, budget: int, max_items: int,
                   max_padding: float | None = None) -> list[np.ndarray]:
    """Sort items longest first and cut batches where ``count × longest`` would pass ``budget``, or, with
    ``max_padding``, where the batch's padded tokens would pass that share of ``count × longest``.

    An item longer than the budget gets a batch of its own. Deterministic in ``lengths``. Items come longest
    first, so each item added to a batch is the shortest yet and the padded share only grows: a batch ends at
    the first item that would take it over ``max_padding`` (masked attention computes the padded tokens too).
    """
    if max_padding is not None and not 0 <= max_padding <= 1:
        raise ValueError(f"The 'max_padding' parameter must be in [0, 1]. Got {max_padding!r} instead.")
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    ordered = lengths[order].astype(np.int64)
    batches, begin = [], 0
    while begin < len(order):
        longest = max(int(ordered[begin]), 1)
        size = int(min(max(budget // longest, 1), max_items, len(order) - begin))
        if max_padding is not None and size > 1:
            filled = np.cumsum(ordered[begin : begin + size])  # real tokens of the first k items, k = 1..size
            within = filled >= (1 - max_padding) * longest * np.arange(1, size + 1)
            size = size if within.all() else max(int(np.argmin(within)), 1)
        batches.append(order[begin : begin + size])
        begin += size
    return batches


def padded_share(lengths: np.ndarray, batches: list[np.ndarray]) -> float:
    """Share of the padded tokens among all tokens the batches compute (each batch padded to its longest item)."""
    lengths = np.asarray(lengths)
    computed = sum(len(batch) * int(lengths[batch].max()) for batch in batches)
    return 1 - float(lengths.sum()) / computed if computed else 0.0


def _split_by_budget(lengths: list[int], budget: int) -> list[np.ndarray]:
    lengths = np.asarray(lengths)
    if lengths.max(initial=0) * len(lengths) <= budget:
        return [np.arange(len(lengths))]
    return pack_by_budget(lengths, budget=budget, max_items=len(lengths))


def skipped_verdict(reason: str, n_tokens: int) -> Verdict:
    """An item the renderer marked as not scorable (over the model's position limit): a ``skipped`` row."""
    return Verdict(None, None, "skipped", "", reason, n_tokens, None)


def _out_of_memory(n_tokens: int) -> Verdict:
    return Verdict(None, None, "error", "", f"out of memory on this item alone ({n_tokens} tokens); lower --token-budget "
                   "or use a larger device", n_tokens, None)


def tokens_through(tokenizer, tokens: list[int], anchor: str) -> int | None:
    """Smallest prefix length of ``tokens`` whose text contains ``anchor``."""
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    if anchor not in text:
        return None
    for k in range(1, len(tokens) + 1):
        if anchor in tokenizer.decode(tokens[:k], skip_special_tokens=True):
            return k
    return None


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
