"""HTTP backend throughput against the local replica server, concurrency 1, 8 and 64.

    python benchmarks/http_judge.py [--n 600]

The server (``judgekit.testing.replica_server``, a random-weight tiny Llama with a
Llama-Guard-3-like template) runs in its own process, so the client's CPU time is
judgekit's alone. For each concurrency the script reports requests/s, the client's
CPU time per request (rendering, JSON, aiohttp, asyncio, parsing: everything judgekit
does on its side) and its share of the wall time; the rest is waiting on the server.
Target from the issue: client overhead below 1 ms per request.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

from judgekit.judges.base import JudgeItems
from judgekit.judges.build import JudgeOptions, judge_from_spec
from judgekit.judges.catalog import load_preset
from judgekit.judges.http_judge import HttpSettings
from judgekit.testing.replicas import LLAMA_GUARD_3_LIKE, build_causal_lm, train_tokenizer

PRESET = "llama-guard-3-8b"


def wait_ready(url: str, process: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read()}")
        try:
            urllib.request.urlopen(urllib.request.Request(url + "/health"), timeout=1)
        except urllib.error.HTTPError:
            return  # it answers (404 is fine)
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--port", type=int, default=18765)
    parser.add_argument("--api", choices=("vllm", "sglang"), default="sglang")
    parser.add_argument("--top-logprobs", type=int, default=20, help="vLLM top-k (its server default cap is 20)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    words = "the cat sat on a mat I cannot help with that sure here is how step one".split()
    items = JudgeItems.of([f"Question {k}?" for k in range(args.n)],
                          [" ".join(rng.choice(words, int(rng.integers(0, 40)))) for k in range(args.n)])
    rows = []
    with tempfile.TemporaryDirectory() as model_dir:
        build_causal_lm("LlamaForCausalLM", train_tokenizer(bos="<|begin_of_text|>", chat_template=LLAMA_GUARD_3_LIKE), model_dir)
        url = f"http://127.0.0.1:{args.port}"
        server = subprocess.Popen([sys.executable, "-m", "judgekit.testing.replica_server", model_dir, "--port", str(args.port)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_ready(url, server)
            for concurrency in (1, 8, 64):
                settings = HttpSettings(base_url=url, api=args.api, concurrency=concurrency, top_logprobs=args.top_logprobs)
                judge = judge_from_spec(load_preset(PRESET), JudgeOptions(model_paths={PRESET: model_dir}, http=settings))
                judge.judge(items.take(range(16)))  # warm connections and caches
                judge.log.__init__()
                cpu, main, wall = time.process_time(), time.thread_time(), time.perf_counter()
                verdicts = judge.judge(items)
                cpu, main, wall = time.process_time() - cpu, time.thread_time() - main, time.perf_counter() - wall
                assert not any(v.parse_status == "error" for v in verdicts)
                rows.append({
                    "concurrency": concurrency, "requests_per_s": args.n / wall,
                    "client_cpu_ms_per_request": 1000 * cpu / args.n,
                    "event_loop_thread_cpu_ms_per_request": 1000 * main / args.n,
                    "judgekit_code_ms_per_request": judge.log.summary()["client_overhead_per_request_ms"],
                    "client_share_of_wall": cpu / wall,
                    "latency_p50_ms": 1000 * (judge.log.summary()["latency_p50_s"] or float("nan")),
                })
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(json.dumps({"machine": f"{platform.machine()}, {platform.python_version()}", "api": args.api, "n": args.n,
                      "rows": rows}, indent=2))
    print(f"\n{'concurrency':>11}{'req/s':>9}{'process CPU ms/req':>20}{'event-loop thread':>19}"
          f"{'judgekit code':>15}{'client share':>14}{'p50 ms':>8}")
    for r in rows:
        print(f"{r['concurrency']:>11}{r['requests_per_s']:>9.1f}{r['client_cpu_ms_per_request']:>20.3f}"
              f"{r['event_loop_thread_cpu_ms_per_request']:>19.3f}{r['judgekit_code_ms_per_request']:>15.3f}"
              f"{r['client_share_of_wall']:>14.1%}{r['latency_p50_ms']:>8.1f}")


if __name__ == "__main__":
    main()
