"""A small OpenAI-compatible server over a local causal LM, with fault injection.

For tests and benchmarks of the HTTP backend, not for production (use vLLM or
SGLang). It serves real log-probabilities from the model on three endpoints,
in the request and response shapes of the engines it stands in for:

* ``POST /v1/completions`` (vLLM): ``prompt`` as token ids, ``max_tokens``,
  ``logprobs: k``, ``return_tokens_as_token_ids``, and sampling with
  ``temperature``, ``top_p`` and a per-request ``seed`` (``judgekit generate``);
* ``POST /generate`` (SGLang native): ``input_ids``, ``sampling_params``,
  ``return_logprob``, ``token_ids_logprob``;
* ``POST /v1/chat/completions``: messages through the tokenizer's chat
  template, ``logprobs``/``top_logprobs``.

``GET /v1/models`` lists the one model served, as vLLM does (``id`` = the
served name, ``root`` = the model directory).

``scripted_first_token`` (a list of ``(token text, log-probability)``) makes every chat answer one
token with exactly those top log-probabilities (the most probable is the answer): a judge's read-out
can then be checked against a hand computation from given numbers, which a random-weight model's
vocabulary cannot supply (it has no "0"-"100" tokens to speak of). Chat requests are kept in
``chat_requests`` for inspection.

Decoding is greedy unless a completions request asks for a temperature. ``faults`` makes it misbehave: ``FaultPlan`` draws, per
request, one of 429 with ``Retry-After``, 500, a hang past the client's
timeout, malformed JSON, a reset connection, a slow answer, or an HTTP 200
that carries no answer: an error body (``{"error": "overloaded"}``), no
choices (``{"choices": []}``; SGLang: no ``meta_info``), or a null
log-probability where log-probabilities were asked for.

    python -m judgekit.testing.replica_server MODEL_DIR --port 8000 [--fault-rate 0.2]
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULT_KINDS = ("rate_limit", "server_error", "hang", "malformed", "reset", "slow", "error_body", "empty_choices", "null_logprob")


@dataclass
class FaultPlan:
    """Which requests fail and how: ``rate`` of them, kinds drawn uniformly, seeded."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    hang_s: float = 2.0
    slow_s: float = 0.05
    retry_after_s: float = 0.05
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def draw(self) -> str | None:
        with self._lock:
            kind = self._rng.choice(self.kinds) if self._rng.random() < self.rate else None
            key = kind or "none"
            self.counts[key] = self.counts.get(key, 0) + 1
            return kind


class ReplicaModel:
    """Greedy decoding and top-k log-probabilities from a local model, one request at a time."""

    def __init__(self, model_dir: str, served_name: str | None = None) -> None:
        import torch

        from judgekit.guards.model_gate import load_model, load_tokenizer

        self.torch = torch
        self.tokenizer = load_tokenizer(model_dir, option="replica")
        self.model = load_model("AutoModelForCausalLM", model_dir, option="replica", dtype=torch.float32).eval()
        self.lock = threading.Lock()
        self.root = model_dir
        self.name = served_name or model_dir
        self.scripted_first_token: list[tuple[str, float]] | None = None
        self.chat_requests: list[dict[str, Any]] = []

    def run(self, ids: list[int], max_tokens: int, choose=None) -> tuple[list[int], list[Any]]:
        """Continuation of ``ids`` (greedy, or ``choose(logits)`` picks each token) and the log-softmax row before
        each generated token."""
        torch = self.torch
        generated, rows = [], []
        with self.lock, torch.inference_mode():
            current = torch.tensor([ids])
            for _ in range(max(max_tokens, 1)):
                logits = self.model(input_ids=current, logits_to_keep=1, use_cache=False).logits[0, -1]
                row = torch.log_softmax(logits.double(), -1)
                token = int(row.argmax()) if choose is None else choose(logits)
                generated.append(token)
                rows.append(row)
                if token == self.tokenizer.eos_token_id:
                    break
                current = torch.cat([current, torch.tensor([[token]])], dim=1)
        return generated, rows


def _top(row, k: int) -> list[tuple[int, float]]:
    values, indices = row.topk(min(k, row.numel()))
    return list(zip(indices.tolist(), values.tolist(), strict=True))


def _sampler(body: dict[str, Any]):
    """vLLM's per-request sampling (``temperature``, ``top_p``, ``seed``) with judgekit's own sampler; None = greedy."""
    temperature = float(body.get("temperature") or 0)
    if temperature == 0:
        return None
    import torch

    from judgekit.generate.transformers_backend import sample_next

    generator = torch.Generator().manual_seed(int(body.get("seed") or 0))
    top_p = float(body.get("top_p") or 1.0)
    return lambda logits: sample_next(logits, temperature=temperature, top_p=top_p, generator=generator)


def completions(replica: ReplicaModel, body: dict[str, Any]) -> dict[str, Any]:
    prompt = body["prompt"]
    ids = prompt if isinstance(prompt, list) else replica.tokenizer.encode(prompt)
    tokens, rows = replica.run(ids, int(body.get("max_tokens", 16)), _sampler(body))
    tok = replica.tokenizer
    name = (lambda t: f"token_id:{t}") if body.get("return_tokens_as_token_ids") else (lambda t: tok.decode([t]))
    logprobs = None
    if body.get("logprobs") is not None:
        k = int(body["logprobs"])
        logprobs = {
            "tokens": [name(t) for t in tokens],
            "token_logprobs": [float(r[t]) for t, r in zip(tokens, rows, strict=True)],
            "top_logprobs": [{name(i): v for i, v in _top(r, k)} for r in rows],
        }
    return {
        "id": "cmpl-replica", "object": "text_completion", "model": body.get("model", replica.name),
        "choices": [{"index": 0, "text": tok.decode(tokens, skip_special_tokens=True), "logprobs": logprobs,
                     "finish_reason": "stop" if tokens[-1] == tok.eos_token_id else "length"}],
        "usage": {"prompt_tokens": len(ids), "completion_tokens": len(tokens), "total_tokens": len(ids) + len(tokens)},
    }


def sglang_generate(replica: ReplicaModel, body: dict[str, Any]) -> dict[str, Any]:
    ids = body["input_ids"]
    params = body.get("sampling_params", {})
    tokens, rows = replica.run(ids, int(params.get("max_new_tokens", 16)))
    tok = replica.tokenizer
    meta: dict[str, Any] = {"prompt_tokens": len(ids), "completion_tokens": len(tokens)}
    if body.get("return_logprob"):
        meta["output_token_logprobs"] = [[float(r[t]), t, None] for t, r in zip(tokens, rows, strict=True)]
        wanted = body.get("token_ids_logprob")
        if wanted:
            meta["output_token_ids_logprobs"] = [[[float(r[i]), i, None] for i in wanted] for r in rows]
    return {"text": tok.decode(tokens, skip_special_tokens=True), "output_ids": tokens, "meta_info": meta}


def chat_completions(replica: ReplicaModel, body: dict[str, Any]) -> dict[str, Any]:
    tok = replica.tokenizer
    rendered = tok.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
    ids = tok.encode(rendered, add_special_tokens=False)
    replica.chat_requests.append(body)
    if replica.scripted_first_token is not None:
        return _scripted_chat(replica.scripted_first_token, body, len(ids))
    tokens, rows = replica.run(ids, int(body.get("max_tokens") or 16))
    content = [t for t in tokens if t != tok.eos_token_id]
    logprobs = None
    if body.get("logprobs"):
        k = int(body.get("top_logprobs") or 0)
        logprobs = {"content": [
            {"token": tok.decode([t]), "logprob": float(r[t]),
             "top_logprobs": [{"token": tok.decode([i]), "logprob": v} for i, v in _top(r, k)]}
            for t, r in zip(content, rows, strict=False)
        ]}
    return {
        "id": "chatcmpl-replica", "object": "chat.completion", "model": body.get("model", replica.name),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": tok.decode(content, skip_special_tokens=True)},
                     "logprobs": logprobs, "finish_reason": "stop" if tokens[-1] == tok.eos_token_id else "length"}],
        "usage": {"prompt_tokens": len(ids), "completion_tokens": len(tokens), "total_tokens": len(ids) + len(tokens)},
    }


def _scripted_chat(alternatives: list[tuple[str, float]], body: dict[str, Any], n_prompt: int) -> dict[str, Any]:
    """A one-token chat answer whose top log-probabilities are ``alternatives`` (see the module)."""
    token, logprob = max(alternatives, key=lambda pair: pair[1])
    logprobs = None
    if body.get("logprobs"):
        top = sorted(alternatives, key=lambda pair: -pair[1])[: int(body.get("top_logprobs") or 0)]
        logprobs = {"content": [{"token": token, "logprob": logprob,
                                 "top_logprobs": [{"token": t, "logprob": v} for t, v in top]}]}
    return {"id": "chatcmpl-replica", "object": "chat.completion", "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": token}, "logprobs": logprobs,
                         "finish_reason": "length"}],
            "usage": {"prompt_tokens": n_prompt, "completion_tokens": 1, "total_tokens": n_prompt + 1}}


ROUTES = {"/v1/completions": completions, "/generate": sglang_generate, "/v1/chat/completions": chat_completions}


def list_models(replica: ReplicaModel) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": replica.name, "object": "model", "owned_by": "judgekit-replica",
                                        "root": replica.root, "parent": None}]}


def broken_answer(kind: str, answer: dict[str, Any]) -> dict[str, Any]:
    """An HTTP 200 body without a usable answer: an error, no choices, or a null log-probability."""
    if kind == "error_body":
        return {"error": "overloaded"}
    if kind == "empty_choices":
        return {"choices": []} if "choices" in answer else {"text": answer.get("text", "")}
    choice = (answer.get("choices") or [{}])[0]
    logprobs = choice.get("logprobs") or {}
    if logprobs.get("content"):  # chat
        logprobs["content"][0]["logprob"] = None
    elif logprobs.get("top_logprobs"):  # vLLM completions
        first = logprobs["top_logprobs"][0]
        first[next(iter(first))] = None
    elif (answer.get("meta_info") or {}).get("output_token_ids_logprobs"):  # SGLang
        answer["meta_info"]["output_token_ids_logprobs"][0][0][0] = None
    else:  # no log-probabilities were asked for: an error body instead
        return {"error": "overloaded"}
    return answer


def make_handler(replica: ReplicaModel, faults: FaultPlan, api_key: str | None):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path != "/v1/models":
                return self._send(404, b'{"error": "not found"}')
            if api_key is not None and self.headers.get("Authorization") != f"Bearer {api_key}":
                return self._send(401, b'{"error": "bad api key"}')
            return self._send(200, json.dumps(list_models(replica)).encode())

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            route = ROUTES.get(self.path)
            if route is None:
                return self._send(404, b'{"error": "not found"}')
            if api_key is not None and self.headers.get("Authorization") != f"Bearer {api_key}":
                return self._send(401, b'{"error": "bad api key"}')
            fault = faults.draw()
            if fault == "rate_limit":
                return self._send(429, b'{"error": "rate limited"}', {"Retry-After": f"{faults.retry_after_s}"})
            if fault == "server_error":
                return self._send(500, b'{"error": "internal"}')
            if fault == "reset":
                # SO_LINGER 0: close with RST, as a crashed worker or proxy would.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return None
            if fault == "hang":
                time.sleep(faults.hang_s)
            if fault == "slow":
                time.sleep(faults.slow_s)
            started = time.perf_counter()
            answer = route(replica, json.loads(body))
            if fault in ("error_body", "empty_choices", "null_logprob"):
                answer = broken_answer(fault, answer)
            payload = json.dumps(answer).encode()
            if fault == "malformed":
                payload = payload[: len(payload) // 2]
            return self._send(200, payload, {"X-Process-Time": f"{time.perf_counter() - started:.6f}"})

    return Handler


class ReplicaServer:
    """Serve ``model_dir`` on 127.0.0.1 in a background thread; use as a context manager."""

    def __init__(self, model_dir: str, *, port: int = 0, faults: FaultPlan | None = None, api_key: str | None = None,
                 served_name: str | None = None) -> None:
        self.replica = ReplicaModel(str(model_dir), served_name)
        self.faults = faults or FaultPlan()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), make_handler(self.replica, self.faults, api_key))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ReplicaServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    server = ReplicaServer(args.model_dir, port=args.port, faults=FaultPlan(rate=args.fault_rate, seed=args.seed))
    print(f"serving {args.model_dir} at {server.url}", flush=True)
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
