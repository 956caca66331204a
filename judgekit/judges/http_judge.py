"""Judges served over HTTP: vLLM, SGLang and OpenAI-compatible APIs.

Guard presets render exactly as in-process (:mod:`judgekit.judges.rendering`,
with the judge's own tokenizer loaded locally) and send **token ids**, so BOS
handling and tokenisation match; they ask for log-probabilities of the label
tokens only and turn them into P(unsafe) with the same code as the local
engine (:mod:`judgekit.judges.readout`):

``api="vllm"``
    ``POST /v1/completions`` with ``prompt`` = ids, ``max_tokens=1``,
    ``logprobs=k`` and ``return_tokens_as_token_ids`` (top-k per position;
    a label token outside the top-k counts as probability 0 and lowers coverage).
``api="sglang"``
    ``POST /generate`` with ``input_ids`` and ``token_ids_logprob`` = the label
    ids (exact log-probabilities of exactly those tokens).

When a server returns no usable log-probabilities the verdict is read from
the generated text and ``p_unsafe`` stays empty. Rubric judges
(``family="rubric"``) send chat messages to ``/v1/chat/completions`` (any
OpenAI-compatible API) and parse the answer (:mod:`judgekit.judges.parsing`).

Requests run concurrently (``asyncio`` + ``aiohttp``) under a semaphore, with a
per-request timeout and retries with exponential backoff and jitter on 429,
5xx, timeouts, connection errors and malformed JSON, honouring ``Retry-After``.
An item that still fails becomes an ``error`` row (retried on the next run),
never a verdict. The API key is read from an environment variable and is never
logged or written to a manifest.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from judgekit.errors import InputError
from judgekit.judges.base import JudgeItems, Verdict
from judgekit.judges.identity import PROBE_ITEMS, checkpoint_identity, token_ids_sha256
from judgekit.judges.parsing import check_parser, parse_output, read_weighted_score, token_label
from judgekit.judges.readout import verdict_detail
from judgekit.judges.rendering import TEMPLATE_MARKER, defuse_matches, fill_fields

APIS = ("vllm", "sglang", "openai")
RETRY_STATUSES = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class HttpSettings:
    """Where and how to send requests. ``api_key_env`` names the variable holding the key."""

    base_url: str
    api: str = "vllm"
    served_model: str | None = None
    api_key_env: str | None = None
    concurrency: int = 16
    timeout_s: float = 120.0
    max_retries: int = 8
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    top_logprobs: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.api not in APIS:
            raise InputError(f"--api must be one of {', '.join(APIS)}, got {self.api!r}")
        if not self.base_url.startswith(("http://", "https://")):
            raise InputError(f"--base-url must start with http:// or https://, got {self.base_url!r}")
        if self.api_key_env and not os.environ.get(self.api_key_env):
            raise InputError(f"environment variable {self.api_key_env} (the API key) is not set")

    def describe(self) -> dict[str, Any]:
        """For manifests: everything but the key."""
        return {"backend": "http", "base_url": self.base_url, "api": self.api, "served_model": self.served_model,
                "api_key_env": self.api_key_env, "concurrency": self.concurrency, "timeout_s": self.timeout_s,
                "max_retries": self.max_retries, "top_logprobs": self.top_logprobs}


class HttpFailure(Exception):
    """A request that failed for good (retries spent, or a client error)."""


class MalformedAnswer(Exception):
    """An HTTP 200 that carries no usable answer (bad JSON, an error body, no choices, a null log-probability)."""


def read_answer(raw: bytes, read: Callable[[Any], Any]) -> Any:
    """Decode a 200 response and hand it to ``read``; anything unusable becomes :class:`MalformedAnswer`."""
    try:
        answer = json.loads(raw)
    except ValueError:
        raise MalformedAnswer("malformed JSON in the response") from None
    if not isinstance(answer, dict):
        raise MalformedAnswer(f"the response is a JSON {type(answer).__name__}, not an object")
    if answer.get("error"):
        raise MalformedAnswer(f"HTTP 200 with an error body: {str(answer['error'])[:200]}")
    try:
        return read(answer)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
        raise MalformedAnswer(f"the response lacks what was asked for ({type(err).__name__}: {str(err)[:100]})") from None


def _logprob(value: Any) -> float:
    """A log-probability from a server: a number (``-inf`` allowed), never null or NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise MalformedAnswer(f"log-probability {value!r} is not a number")
    return float(value)


@dataclass
class RequestLog:
    """Cost and latency of one judge's requests (written to the manifest)."""

    n_requests: int = 0
    n_attempts: int = 0
    n_failed: int = 0
    retries_by_cause: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latencies_s: list[float] = field(default_factory=list)
    overhead_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        lat = np.array(self.latencies_s)
        p50, p95 = (float(np.percentile(lat, 50)), float(np.percentile(lat, 95))) if lat.size else (None, None)
        return {
            "requests": self.n_requests, "attempts": self.n_attempts, "failed": self.n_failed,
            "retries_by_cause": dict(self.retries_by_cause), "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_p50_s": p50, "latency_p95_s": p95,
            "client_overhead_per_request_ms": 1000 * self.overhead_s / max(self.n_requests, 1),
        }


class HttpClient:
    """Retries and backoff around one ``aiohttp`` session (connection pool) per batch."""

    def __init__(self, settings: HttpSettings, log: RequestLog) -> None:
        self.settings = settings
        self.log = log
        self._rng = random.Random(settings.seed)
        self._headers = {"Content-Type": "application/json"}
        if settings.api_key_env:
            self._headers["Authorization"] = f"Bearer {os.environ[settings.api_key_env]}"

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return max(float(retry_after), 0.0)
            except ValueError:
                pass  # an HTTP date: fall back to backoff
        ceiling = min(self.settings.backoff_max_s, self.settings.backoff_s * 2**attempt)
        return ceiling * (0.5 + 0.5 * self._rng.random())

    async def post(self, session, path: str, payload: dict[str, Any], read: Callable[[Any], Any]) -> Any:
        """POST ``payload`` and return ``read(answer)``; an answer ``read`` rejects (:class:`MalformedAnswer`, or an
        HTTP 200 whose body is an error or lacks what was asked for) is retried like a 5xx."""
        import aiohttp

        url = self.settings.base_url.rstrip("/") + path
        body = json.dumps(payload).encode()
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        self.log.n_requests += 1
        last = "no attempt"
        for attempt in range(self.settings.max_retries + 1):
            self.log.n_attempts += 1
            retry_after = None
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=self._headers, timeout=timeout) as response:
                    raw = await response.read()
                    status = response.status
                    retry_after = response.headers.get("Retry-After")
            except TimeoutError:
                last, cause = f"timed out after {self.settings.timeout_s} s", "timeout"
            except aiohttp.ClientError as err:
                last, cause = f"connection error: {type(err).__name__}", "connection"
            else:
                self.log.latencies_s.append(time.perf_counter() - started)
                if status in RETRY_STATUSES:
                    last, cause = f"HTTP {status}", f"http_{status}"
                elif status >= 400:
                    raise HttpFailure(f"HTTP {status}: {raw[:200].decode('utf-8', 'replace')}")
                else:
                    try:
                        return read_answer(raw, read)
                    except MalformedAnswer as err:
                        last, cause, retry_after = str(err), "malformed", None
            if attempt == self.settings.max_retries:
                break
            self.log.retries_by_cause[cause] = self.log.retries_by_cause.get(cause, 0) + 1
            await asyncio.sleep(self._delay(attempt, retry_after if cause.startswith("http_") else None))
        raise HttpFailure(f"{last} (after {self.settings.max_retries + 1} attempts)")


MODEL_FIELDS = ("id", "root", "parent", "max_model_len")
NOT_SERVED = {404, 405, 501}


def server_model(settings: HttpSettings, served_model: str) -> dict[str, Any] | None:
    """What ``GET /v1/models`` (vLLM, SGLang, OpenAI-compatible APIs) reports for ``served_model``: its id and,
    where given, ``root`` (the checkpoint path or hub id the engine loaded), ``parent`` and ``max_model_len``.

    None when the server does not offer the endpoint. Retried like a request; a server that cannot be
    reached, or refuses the key, is a one-line error before anything is judged.
    """
    import urllib.error
    import urllib.request

    url = settings.base_url.rstrip("/") + "/v1/models"
    headers = {"Authorization": f"Bearer {os.environ[settings.api_key_env]}"} if settings.api_key_env else {}
    last = ""
    for attempt in range(settings.max_retries + 1):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=settings.timeout_s) as answer:
                listed = json.loads(answer.read()).get("data") or []
            break
        except urllib.error.HTTPError as err:
            if err.code in NOT_SERVED:
                return None
            if err.code not in RETRY_STATUSES:
                raise InputError(f"GET {url}: HTTP {err.code}") from None
            last = f"HTTP {err.code}"
        except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError, AttributeError) as err:
            last = f"{type(err).__name__}: {getattr(err, 'reason', err)}"
        if attempt < settings.max_retries:
            time.sleep(min(settings.backoff_max_s, settings.backoff_s * 2**attempt))
    else:
        raise InputError(f"cannot reach the server: GET {url}: {last} (after {settings.max_retries + 1} attempts)")
    entry = next((m for m in listed if isinstance(m, dict) and m.get("id") == served_model), None)
    if entry is None:
        return {"id": served_model, "listed": False}
    return {key: entry[key] for key in MODEL_FIELDS if entry.get(key) is not None}


class _HttpJudgeBase:
    """Shared batching: every item of a batch is one task under the concurrency semaphore."""

    spec: dict[str, Any]
    judge_id: str
    settings: HttpSettings

    def _init_http(self, settings: HttpSettings) -> None:
        self.settings = settings
        self.log = RequestLog()

    def plan(self, items: JudgeItems) -> list[np.ndarray]:
        size = max(4 * self.settings.concurrency, 64)
        return [np.arange(b, min(b + size, len(items))) for b in range(0, len(items), size)]

    def judge(self, items: JudgeItems) -> list[Verdict]:
        return asyncio.run(self._judge_all(items))

    async def _judge_all(self, items: JudgeItems) -> list[Verdict]:
        import aiohttp

        gate = asyncio.Semaphore(self.settings.concurrency)
        prepared = self._prepare(items)
        connector = aiohttp.TCPConnector(limit=self.settings.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            http = HttpClient(self.settings, self.log)

            async def one(k: int):
                async with gate:
                    try:
                        return await self._judge_one(http, session, prepared[k])
                    except HttpFailure as err:
                        self.log.n_failed += 1
                        return Verdict(None, None, "error", "", f"request failed: {err}")

            answers = await asyncio.gather(*(one(k) for k in range(len(items))))
        return self._timed(self._finish, list(answers))

    def _finish(self, answers: list[Any]) -> list[Verdict]:
        """Turn what the requests returned into verdicts (all at once, where that is cheaper)."""
        return answers

    def run_info(self) -> dict[str, Any]:
        return {**self.settings.describe(), **self.log.summary()}

    def _server_identity(self) -> dict[str, Any]:
        """The served model name and what the server reports serving under it (asked once per judge)."""
        if not hasattr(self, "_server_model"):
            self._server_model = server_model(self.settings, self.served_model)
        return {"backend": "http", "api": self.settings.api, "served_model": self.served_model,
                "server_model": self._server_model, "top_logprobs": self.settings.top_logprobs}

    def _count_usage(self, prompt_tokens: Any, completion_tokens: Any) -> None:
        self.log.prompt_tokens += int(prompt_tokens or 0)
        self.log.completion_tokens += int(completion_tokens or 0)

    def _timed(self, function, *args):
        started = time.perf_counter()
        try:
            return function(*args)
        finally:
            self.log.overhead_s += time.perf_counter() - started


class HttpGuardJudge(_HttpJudgeBase):
    """A guard preset served by vLLM or SGLang, scored from label-token log-probabilities."""

    def __init__(self, spec: dict[str, Any], settings: HttpSettings, *, model_path: str | None = None) -> None:
        from judgekit.judges.transformers_judge import load_renderer, refuse_checkpoint_code

        if settings.api == "openai":
            raise InputError(f"{spec['judge_id']}: guard presets need token-id input: use --api vllm or --api sglang")
        kind = (spec.get("readout") or {}).get("kind")
        if kind == "max_sigmoid":
            raise InputError(f"{spec['judge_id']}: a classification-head judge runs only with the transformers backend")
        model = spec.get("model") or {}
        refuse_checkpoint_code(spec)
        self.spec = spec
        self.judge_id = spec["judge_id"]
        self._init_http(settings)
        self.served_model = settings.served_model or model.get("id")
        self.tokenizer, self.renderer, self.readout = load_renderer(
            spec, model_path or model["id"], revision=None if model_path else model.get("revision"),
            loader=model.get("loader", "causal_lm"),
        )
        self.label_texts = self.readout.label_texts(self.tokenizer.decode) if self.readout is not None else {}
        self.tokenizer_source = (model_path or model["id"], None if model_path else model.get("revision"))

    def identity(self) -> dict[str, Any]:
        """What besides the spec decides a verdict: the server's model, the tokenizer that renders, the rendering as run."""
        return {
            **self._server_identity(),
            "tokenizer": checkpoint_identity(*self.tokenizer_source),
            "rendered_probe_sha256": token_ids_sha256(self.renderer.render(PROBE_ITEMS).ids),
            "label_token_ids": list(self.readout.ids) if self.readout is not None else None,
        }

    def _prepare(self, items: JudgeItems) -> list[tuple[list[int], int, str]]:
        rendered = self._timed(self.renderer.render, items)
        return list(zip(rendered.ids, rendered.n_clipped, rendered.skipped, strict=True))

    async def _complete(self, http: HttpClient, session, ids: list[int], max_tokens: int) -> tuple[str, list[int], dict[int, float]]:
        """Generated text, generated ids, and log-probabilities at the first generated position."""
        wanted = list(self.readout.ids) if self.readout is not None else []
        if self.settings.api == "sglang":
            payload = {"input_ids": ids, "sampling_params": {"max_new_tokens": max_tokens, "temperature": 0},
                       "return_logprob": True, "token_ids_logprob": wanted or None}
            return await http.post(session, "/generate", payload, lambda answer: self._timed(self._read_sglang, answer, bool(wanted)))
        payload = {"model": self.served_model, "prompt": ids, "max_tokens": max_tokens, "temperature": 0,
                   "logprobs": self.settings.top_logprobs, "return_tokens_as_token_ids": True}
        return await http.post(session, "/v1/completions", payload, lambda answer: self._timed(self._read_vllm, answer))

    def _read_vllm(self, answer: dict[str, Any]) -> tuple[str, list[int], dict[int, float]]:
        choice = answer["choices"][0]
        logprobs = choice["logprobs"]
        if not logprobs or not logprobs.get("top_logprobs"):
            raise MalformedAnswer("no log-probabilities in the answer")
        tokens = [_token_id(t) for t in logprobs.get("tokens") or []]
        top = {_token_id(k): _logprob(v) for k, v in logprobs["top_logprobs"][0].items()}
        text = choice.get("text") or ""
        usage = answer.get("usage") or {}
        self._count_usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
        return text, [t for t in tokens if t is not None], {k: v for k, v in top.items() if k is not None}

    def _read_sglang(self, answer: dict[str, Any], want_logprobs: bool) -> tuple[str, list[int], dict[int, float]]:
        meta = answer["meta_info"]
        ids = answer.get("output_ids") or [entry[1] for entry in meta.get("output_token_logprobs") or []]
        first = (meta.get("output_token_ids_logprobs") or [None])[0]
        if want_logprobs and not first:
            raise MalformedAnswer("no log-probabilities of the label tokens in the answer")
        logprobs = {int(entry[1]): _logprob(entry[0]) for entry in first or []}
        self._count_usage(meta.get("prompt_tokens"), meta.get("completion_tokens"))
        return answer["text"], list(ids), logprobs

    async def _judge_one(self, http: HttpClient, session, prepared: tuple[list[int], int, str]) -> Verdict:
        from judgekit.judges.transformers_judge import parse_generated, skipped_verdict, tokens_through

        ids, clipped, skipped = prepared
        if skipped:
            return skipped_verdict(skipped, len(ids))
        readout = self.spec["readout"]
        if readout["kind"] == "generate":
            text, out, _ = await self._complete(http, session, ids, int(readout.get("max_new_tokens", 32)))
            return parse_generated(self.spec, text, n_input_tokens=len(ids), n_output_tokens=len(out), clipped=clipped)
        prefix_note = ""
        rule = self.spec.get("prefix_generation")
        if rule:
            text, out, _ = await self._complete(http, session, ids, int(rule.get("max_new_tokens", 32)))
            cut = tokens_through(self.tokenizer, out, rule["until"])
            if cut is None:
                return Verdict(None, None, "unparseable", text, f"generated text lacks {rule['until']!r}", len(ids), len(out))
            ids = ids + out[:cut]
            prefix_note = f"read after greedy prefix {self.tokenizer.decode(out[:cut])!r}"
        text, _, logprobs = await self._complete(http, session, ids, 1)
        return _Scored(text, logprobs, len(ids), clipped, prefix_note)

    def _finish(self, answers: list[Any]) -> list[Verdict]:
        scored = [k for k, a in enumerate(answers) if isinstance(a, _Scored)]
        if not scored:
            return answers
        matrix = np.array([[answers[k].logprobs.get(i, -math.inf) for i in self.readout.ids] for k in scored])
        p, coverage = self.readout.p_unsafe(matrix)
        verdicts = list(answers)
        for row, k in enumerate(scored):
            verdicts[k] = self._verdict(answers[k], float(p[row]), float(coverage[row]))
        return verdicts

    def _verdict(self, scored: _Scored, p: float, coverage: float) -> Verdict:
        detail = verdict_detail(scored.clipped, scored.note)
        if np.isfinite(p):
            return Verdict(self.readout.label(p), p, "ok", scored.text, detail, scored.n_tokens, 1, min(coverage, 1.0))
        # No label token among the returned log-probabilities: read the generated token's text.
        label = self.label_texts.get(scored.text.strip())
        if label is None or self.readout.kind != "label_tokens":
            return Verdict(None, None, "unparseable", scored.text, "no label token in the log-probabilities or the text",
                           scored.n_tokens, 1)
        return Verdict(label, None, "ok", scored.text, verdict_detail(scored.clipped, scored.note, "label read from text: no log-probabilities"),
                       scored.n_tokens, 1)


@dataclass(frozen=True)
class _Scored:
    """A guard answer awaiting the (vectorised) log-probability read-out."""

    text: str
    logprobs: dict[int, float]
    n_tokens: int
    clipped: int
    note: str


class RubricJudge(_HttpJudgeBase):
    """An LLM-as-judge prompt sent as chat messages; the answer parsed by the preset's parser, and P(unsafe)
    read from the log-probabilities at the position of the verdict that parser read."""

    def __init__(self, spec: dict[str, Any], settings: HttpSettings) -> None:
        messages = spec.get("messages")
        if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and m.get("role") in ("system", "user") and isinstance(m.get("content"), str) for m in messages
        ):
            raise InputError(f"{spec['judge_id']}: messages must be a list of system/user messages with string content")
        if not any("{response}" in m["content"] for m in messages):
            raise InputError(f"{spec['judge_id']}: no message has a {{response}} field")
        check_parser(spec.get("parser"), judge_id=spec["judge_id"])
        self.spec = spec
        self.judge_id = spec["judge_id"]
        self._init_http(settings)
        self.served_model = settings.served_model or (spec.get("model") or {}).get("id")
        if not self.served_model:
            raise InputError(f"{self.judge_id}: name the served model with --served-model")
        self.read_logprobs = bool(spec.get("verdict_logprobs"))
        self.weighted = spec["parser"]["name"] == "weighted_score"
        if self.weighted and not self.read_logprobs:
            raise InputError(f"{self.judge_id}: a weighted_score parser reads log-probabilities: set verdict_logprobs")
        self.markers = rubric_markers(messages)

    def _prepare(self, items: JudgeItems) -> list[list[dict[str, str]]]:
        """Chat messages per item; user text is defused first, as in-process rendering does, so a response cannot
        close the rubric's own sections or forge a turn of the served model's chat template."""
        defused = [[defuse_matches(t, self.markers) for t in column]
                   for column in (items.prompts, items.responses, items.goals, items.contexts)]
        return [
            [{"role": m["role"], "content": fill_fields(m["content"], prompt=p, response=r, goal=g, context=c)}
             for m in self.spec["messages"]]
            for p, r, g, c in zip(*defused, strict=True)
        ]

    def identity(self) -> dict[str, Any]:
        """What besides the spec decides a verdict: the server's model, and the messages as rendered."""
        probe = json.dumps(self._prepare(PROBE_ITEMS), sort_keys=True, ensure_ascii=False)
        return {**self._server_identity(), "read_logprobs": self.read_logprobs,
                "rendered_probe_sha256": hashlib.sha256(probe.encode("utf-8")).hexdigest()}

    async def _judge_one(self, http: HttpClient, session, messages: list[dict[str, str]]) -> Verdict:
        payload: dict[str, Any] = {"model": self.served_model, "messages": messages, "temperature": 0,
                                   "max_tokens": int(self.spec.get("max_tokens", 512))}
        if self.read_logprobs:
            payload.update(logprobs=True, top_logprobs=self.settings.top_logprobs)
        return await http.post(session, "/v1/chat/completions", payload, lambda answer: self._timed(self._verdict, answer))

    def _verdict(self, answer: dict[str, Any]) -> Verdict:
        choice = answer["choices"][0]
        text = choice["message"]["content"]
        if not isinstance(text, str):
            raise MalformedAnswer("the answer has no text content")
        tokens = _chat_logprobs(choice.get("logprobs")) if self.read_logprobs else None
        usage = answer.get("usage") or {}
        self._count_usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
        n_in, n_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if self.weighted:  # the score is read from the first token's alternatives, as upstream does
            alternatives = tokens[0].alternatives if tokens else None
            parsed, coverage = read_weighted_score(text, alternatives, self.spec["parser"])
            return Verdict(None, None, parsed.status, text, parsed.detail, n_in, n_out, coverage, parsed.score)
        parsed = parse_output(text, self.spec["parser"])
        if parsed.status != "ok":
            return Verdict(None, None, parsed.status, text, parsed.detail, n_in, n_out)
        p, coverage, note = parsed.score, None, ""
        if p is None and tokens is not None:
            p, coverage, note = verdict_probability(tokens, text, parsed.position, self.spec["parser"])
        detail = "; ".join(part for part in (parsed.detail, note) if part)
        return Verdict(parsed.label, p, "ok", text, detail, n_in, n_out, coverage)


# Special-token text of the common chat families, which a server's chat template would read as structure:
# <|eot_id|>, <|im_end|>, <|end_of_text|>..., DeepSeek's <｜...｜>, <s>, </s>, <bos>, Gemma's turn markers,
# Llama-2/Mistral [INST] … [/INST], <<SYS>> and Mistral's control tokens.
CHAT_CONTROL_TEXT = (
    r"<\|[^|<>\s]{1,40}\|>|<｜[^｜<>\s]{1,40}｜>|</?s>|<(?:bos|eos|pad|unk)>|</?(?:start|end)_of_turn>|\[/?INST\]|<</?SYS>>"
    r"|\[/?(?:SYSTEM_PROMPT|AVAILABLE_TOOLS|TOOL_CALLS|TOOL_RESULTS)\]"
)


def rubric_markers(messages: list[dict[str, str]]) -> re.Pattern[str]:
    """What to defuse in user text sent to a rubric: the chat families' special-token text and the rubric's own
    section markers (``<BEGIN RESPONSE>``, ``[GENERATION]``, ``</response>``...)."""
    source = "\n".join(m["content"] for m in messages)
    own = set(TEMPLATE_MARKER.findall(source)) | set(re.findall(r"</?[A-Za-z_]+>", source))
    literal = "|".join(re.escape(m) for m in sorted(own, key=len, reverse=True))
    return re.compile(f"{literal}|{CHAT_CONTROL_TEXT}" if literal else CHAT_CONTROL_TEXT)


@dataclass(frozen=True)
class TokenLogprobs:
    """One generated token and the alternatives the server reported at its position."""

    token: str
    alternatives: list[tuple[str, float]]


def _chat_logprobs(logprobs: Any) -> list[TokenLogprobs] | None:
    """The OpenAI chat ``logprobs.content`` list, checked; None when the server sent none."""
    if logprobs is None or logprobs.get("content") is None:
        return None
    checked = []
    for entry in logprobs["content"]:
        _logprob(entry["logprob"])  # a null here is a broken answer, not a missing feature
        alternatives = [(str(alt["token"]), _logprob(alt["logprob"])) for alt in entry["top_logprobs"] or []]
        checked.append(TokenLogprobs(str(entry["token"]), alternatives))
    return checked


def verdict_probability(tokens: list[TokenLogprobs], text: str, position: int | None,
                        parser: dict[str, Any]) -> tuple[float | None, float | None, str]:
    """P(unsafe) and coverage at the generated token where the parsed verdict begins.

    Every alternative token at that position is labelled by the same parser that read the
    verdict (:func:`judgekit.judges.parsing.token_label`), so the label and P(unsafe) come from
    one position and one rule. Returns ``(None, None, why)`` when the position cannot be read.
    """
    if position is None:
        return None, None, ""
    k, why = token_at(tokens, text, position)
    if k is None:
        return None, None, why
    p, coverage = label_mass(tokens[k].alternatives, parser)
    return p, coverage, f"P(unsafe) read at output token {k}" if k else ""


def token_at(tokens: list[TokenLogprobs], text: str, position: int) -> tuple[int | None, str]:
    """Index of the generated token whose text starts the verdict at ``position`` of ``text``.

    Tokens are laid along the text; one that is not there (a special token the server left out of
    the text) takes no room. The verdict must begin the token (after its leading whitespace).
    """
    offset = 0
    for k, entry in enumerate(tokens):
        if not text.startswith(entry.token, offset) or not entry.token:
            continue
        end = offset + len(entry.token)
        if end > position:
            if entry.token[: position - offset].strip():
                return None, "the verdict starts inside a token; P(unsafe) not read"
            return k, ""
        offset = end
    return None, "the log-probabilities do not reach the verdict; P(unsafe) not read"


def label_mass(alternatives: list[tuple[str, float]], parser: dict[str, Any]) -> tuple[float | None, float]:
    """P(unsafe) among the alternatives the parser labels, and their total probability (coverage)."""
    mass = {"unsafe": 0.0, "safe": 0.0}
    for alternative, logprob in alternatives:
        label = token_label(alternative, parser)
        if label is not None:
            mass[label] += math.exp(logprob)
    total = mass["unsafe"] + mass["safe"]
    return (mass["unsafe"] / total if total > 0 else None), min(total, 1.0)


def _token_id(name: Any) -> int | None:
    """vLLM's ``token_id:123`` form (``return_tokens_as_token_ids``)."""
    if isinstance(name, str) and name.startswith("token_id:"):
        try:
            return int(name[len("token_id:"):])
        except ValueError:
            return None
    return None

