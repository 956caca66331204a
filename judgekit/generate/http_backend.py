"""Generation on OpenAI-compatible servers (vLLM / SGLang ``serve``), one or several replicas.

Prompts are rendered locally with the model's own chat template (the tokenizer
from ``--model``) and sent as **token ids** to ``/v1/completions``, so the
rendering is the one recorded in the manifest and identical to the in-process
engines. Each request carries its own ``seed``. Retries, backoff, ``Retry-After``,
timeouts and answers without a usable choice are the HTTP judges' client (:class:`judgekit.judges.http_judge.HttpClient`);
on top of it each request goes to the replica with the fewest requests in
flight and fails over to the next replica when one gives up. A request that
fails on every replica is an error (never a response row; the rerun retries it).
A LoRA adapter is the model name the server gives it (vLLM ``--lora-modules NAME=DIR``).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import numpy as np

from judgekit.errors import InputError
from judgekit.generate.spec import Decoding, Generation, GenerationRequest, ModelVariant
from judgekit.judges.http_judge import HttpClient, HttpFailure, HttpSettings, RequestLog


class HttpGenerator:
    backend = "http"

    def __init__(self, tokenizer_source: str, base_urls: list[str], settings: HttpSettings) -> None:
        from judgekit.guards.model_gate import load_tokenizer

        if not base_urls:
            raise InputError("--backend http needs at least one --base-url")
        self.replicas = [replace(settings, base_url=url) for url in base_urls]  # each validated by HttpSettings
        self.settings = settings
        self.log = RequestLog()
        self.tokenizer = load_tokenizer(tokenizer_source, option="--model")  # renders the chat template
        self.model_source = tokenizer_source  # the checkpoint the servers are expected to serve

    def describe(self) -> dict[str, Any]:
        return {**self.settings.describe(), "backend": self.backend, "base_urls": [r.base_url for r in self.replicas],
                "tokenizer": self.model_source, "endpoint": "/v1/completions (token ids)", **self.log.summary()}

    def plan(self, requests: list[GenerationRequest], decoding: Decoding) -> list[np.ndarray]:
        size = max(4 * self.settings.concurrency * len(self.replicas), 64)
        return [np.arange(b, min(b + size, len(requests))) for b in range(0, len(requests), size)]

    def payload(self, variant: ModelVariant, request: GenerationRequest, decoding: Decoding) -> dict[str, Any]:
        return {"model": variant.served_model or variant.name, "prompt": list(request.ids),
                "max_tokens": decoding.max_new_tokens, "temperature": decoding.temperature, "top_p": decoding.top_p,
                "seed": request.seed, "n": 1}

    def generate(self, variant: ModelVariant, requests: list[GenerationRequest], decoding: Decoding) -> list[Generation]:
        return asyncio.run(self._generate_all(variant, requests, decoding))

    async def _generate_all(self, variant: ModelVariant, requests: list[GenerationRequest], decoding: Decoding) -> list[Generation]:
        import aiohttp

        gate = asyncio.Semaphore(self.settings.concurrency * len(self.replicas))
        in_flight = [0] * len(self.replicas)
        connector = aiohttp.TCPConnector(limit=self.settings.concurrency * len(self.replicas))
        async with aiohttp.ClientSession(connector=connector) as session:
            clients = [HttpClient(settings, self.log) for settings in self.replicas]

            async def one(request: GenerationRequest) -> Generation:
                body = self.payload(variant, request, decoding)
                failures = []
                async with gate:
                    # Least loaded replica first; the others, in turn, if it gives up.
                    for k in sorted(range(len(clients)), key=lambda k: (in_flight[k], k)):
                        in_flight[k] += 1
                        try:
                            return await clients[k].post(session, "/v1/completions", body,
                                                         lambda answer: _read_completion(answer, len(request.ids)))
                        except HttpFailure as err:
                            failures.append(f"{self.replicas[k].base_url}: {err}")
                        finally:
                            in_flight[k] -= 1
                self.log.n_failed += 1
                return Generation("", "error", len(request.ids), 0, error="; ".join(failures))

            return list(await asyncio.gather(*(one(r) for r in requests)))

    def close(self) -> None:
        pass


def _read_completion(answer: dict[str, Any], n_prompt: int) -> Generation:
    """The first choice; an answer without one (or without text) raises, and the client retries it."""
    choice = answer["choices"][0]
    text = choice["text"]
    if not isinstance(text, str):
        raise TypeError(f"text is {type(text).__name__}")
    usage = answer.get("usage") or {}
    n_response = usage.get("completion_tokens")
    return Generation(text=text, finish_reason=choice.get("finish_reason") or "unknown",
                      n_prompt_tokens=int(usage.get("prompt_tokens") or n_prompt),
                      n_response_tokens=int(n_response) if n_response is not None else 0)
