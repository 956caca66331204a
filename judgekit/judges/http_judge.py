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
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from judgekit.errors import InputError
from judgekit.judges.base import JudgeItems, Verdict
from judgekit.judges.parsing import check_parser, parse_output
from judgekit.judges.readout import verdict_detail
from judgekit.judges.rendering import fill_fields

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

    async def post(self, session, path: str, payload: dict[str, Any]) -> dict[str, Any]:
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
                        return json.loads(raw)
                    except ValueError:
                        last, cause, retry_after = "malformed JSON in the response", "malformed", None
            if attempt == self.settings.max_retries:
                break
            self.log.retries_by_cause[cause] = self.log.retries_by_cause.get(cause, 0) + 1
            await asyncio.sleep(self._delay(attempt, retry_after if cause.startswith("http_") else None))
        raise HttpFailure(f"{last} (after {self.settings.max_retries + 1} attempts)")


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

    def __init__(self, spec: dict[str, Any], settings: HttpSettings, *, model_path: str | None = None,
                 trust_remote_code: bool = False) -> None:
        from judgekit.judges.transformers_judge import load_renderer

        if settings.api == "openai":
            raise InputError(f"{spec['judge_id']}: guard presets need token-id input: use --api vllm or --api sglang")
        kind = (spec.get("readout") or {}).get("kind")
        if kind == "max_sigmoid":
            raise InputError(f"{spec['judge_id']}: a classification-head judge runs only with the transformers backend")
        model = spec.get("model") or {}
        if model.get("trust_remote_code") and not trust_remote_code:
            raise InputError(f"{spec['judge_id']}: the tokenizer runs code from its checkpoint; pass --trust-remote-code")
        self.spec = spec
        self.judge_id = spec["judge_id"]
        self._init_http(settings)
        self.served_model = settings.served_model or model.get("id")
        self.tokenizer, self.renderer, self.readout = load_renderer(
            spec, model_path or model["id"], revision=None if model_path else model.get("revision"),
            loader=model.get("loader", "causal_lm"), trust_remote_code=trust_remote_code and bool(model.get("trust_remote_code")),
        )
        self.label_texts = self.readout.label_texts(self.tokenizer.decode) if self.readout is not None else {}

    def _prepare(self, items: JudgeItems) -> list[tuple[list[int], int]]:
        rendered = self._timed(self.renderer.render, items)
        return list(zip(rendered.ids, rendered.n_clipped, strict=True))

    async def _complete(self, http: HttpClient, session, ids: list[int], max_tokens: int) -> tuple[str, list[int], dict[int, float]]:
        """Generated text, generated ids, and log-probabilities at the first generated position."""
        wanted = list(self.readout.ids) if self.readout is not None else []
        if self.settings.api == "sglang":
            payload = {"input_ids": ids, "sampling_params": {"max_new_tokens": max_tokens, "temperature": 0},
                       "return_logprob": True, "token_ids_logprob": wanted or None}
            answer = await http.post(session, "/generate", payload)
            return self._timed(self._read_sglang, answer)
        payload = {"model": self.served_model, "prompt": ids, "max_tokens": max_tokens, "temperature": 0,
                   "logprobs": self.settings.top_logprobs, "return_tokens_as_token_ids": True}
        answer = await http.post(session, "/v1/completions", payload)
        return self._timed(self._read_vllm, answer)

    def _read_vllm(self, answer: dict[str, Any]) -> tuple[str, list[int], dict[int, float]]:
        choice = answer["choices"][0]
        usage = answer.get("usage") or {}
        self._count_usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
        logprobs = choice.get("logprobs") or {}
        tokens = [_token_id(t) for t in logprobs.get("tokens") or []]
        top = (logprobs.get("top_logprobs") or [{}])[0] or {}
        return choice.get("text") or "", [t for t in tokens if t is not None], {
            _token_id(k): v for k, v in top.items() if _token_id(k) is not None
        }

    def _read_sglang(self, answer: dict[str, Any]) -> tuple[str, list[int], dict[int, float]]:
        meta = answer.get("meta_info") or {}
        self._count_usage(meta.get("prompt_tokens"), meta.get("completion_tokens"))
        ids = answer.get("output_ids") or [entry[1] for entry in meta.get("output_token_logprobs") or []]
        first = (meta.get("output_token_ids_logprobs") or [[]])[0] or []
        return answer.get("text") or "", list(ids), {int(entry[1]): float(entry[0]) for entry in first}

    async def _judge_one(self, http: HttpClient, session, prepared: tuple[list[int], int]) -> Verdict:
        from judgekit.judges.transformers_judge import parse_generated, tokens_through

        ids, clipped = prepared
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
    """An LLM-as-judge prompt sent as chat messages; the answer parsed by a named parser."""

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
        first = spec.get("verdict_logprobs") or {}
        self.first_token_words = {w.lower(): label for label in ("unsafe", "safe") for w in first.get(label, [])}

    def _prepare(self, items: JudgeItems) -> list[list[dict[str, str]]]:
        return [
            [{"role": m["role"], "content": fill_fields(m["content"], prompt=p, response=r, goal=g, context=c)}
             for m in self.spec["messages"]]
            for p, r, g, c in zip(items.prompts, items.responses, items.goals, items.contexts, strict=True)
        ]

    async def _judge_one(self, http: HttpClient, session, messages: list[dict[str, str]]) -> Verdict:
        payload: dict[str, Any] = {"model": self.served_model, "messages": messages, "temperature": 0,
                                   "max_tokens": int(self.spec.get("max_tokens", 512))}
        if self.first_token_words:
            payload.update(logprobs=True, top_logprobs=self.settings.top_logprobs)
        answer = await http.post(session, "/v1/chat/completions", payload)
        return self._timed(self._verdict, answer)

    def _verdict(self, answer: dict[str, Any]) -> Verdict:
        choice = answer["choices"][0]
        usage = answer.get("usage") or {}
        self._count_usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
        text = (choice.get("message") or {}).get("content") or ""
        n_in, n_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
        parsed = parse_output(text, self.spec["parser"])
        if parsed.status != "ok":
            return Verdict(None, None, parsed.status, text, parsed.detail, n_in, n_out)
        p, coverage = parsed.score, None
        if p is None and self.first_token_words:
            p, coverage = self._first_token_p(choice.get("logprobs"))
        return Verdict(parsed.label, p, "ok", text, parsed.detail, n_in, n_out, coverage)

    def _first_token_p(self, logprobs: dict[str, Any] | None) -> tuple[float | None, float | None]:
        content = (logprobs or {}).get("content") or []
        if not content:
            return None, None
        mass = {"unsafe": 0.0, "safe": 0.0}
        for entry in content[0].get("top_logprobs") or []:
            label = self.first_token_words.get(entry["token"].strip().lower())
            if label is not None:
                mass[label] += math.exp(entry["logprob"])
        total = mass["unsafe"] + mass["safe"]
        return (mass["unsafe"] / total, min(total, 1.0)) if total > 0 else (None, 0.0)


def _token_id(name: Any) -> int | None:
    """vLLM's ``token_id:123`` form (``return_tokens_as_token_ids``)."""
    if isinstance(name, str) and name.startswith("token_id:"):
        try:
            return int(name[len("token_id:"):])
        except ValueError:
            return None
    return None

