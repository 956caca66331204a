"""Throughput of the fluency detector's scoring (surprisal given the prompt) on CPU.

    python benchmarks/fluency.py [--n-tiny 256] [--n-small 16] [--threads 1]

Two random-weight checkpoints of real architecture classes, built locally
(:mod:`judgekit.testing.replicas`, no download), each scored **batched** (token budget
``--budget`` padded tokens per pass, longest first, right padding) and **one by one**
(token budget 1, the CPU default: every response a forward pass of its own, no padding),
side by side in one run, interleaved:

- ``tiny``: Qwen2ForCausalLM, hidden 32, 2 layers (the test models);
- ``smollm2-135m-shape``: LlamaForCausalLM with SmolLM2-135M's shape (hidden 576,
  30 layers, 9 heads / 3 KV heads, MLP 1536, vocabulary 49,152, tied embeddings:
  135M parameters). Random weights cost exactly what trained ones cost.

Responses are English prose of ~150-300 tokens under a 600-token BPE tokenizer, with a
one-line prompt. Reported: responses/s and response tokens/s (scored tokens only; the
prompt is context, not counted), median of ``--repeats`` timings.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from incoherence import SENTENCES  # the detector benchmark's prose (benchmarks/ is on sys.path when run)



def texts(n: int, rng: np.random.Generator) -> list[str]:
    return [" ".join(SENTENCES[int(i)] for i in rng.integers(0, len(SENTENCES), int(rng.integers(4, 9)))) for _ in range(n)]


def build(kind: str, folder: Path) -> Path:
    import torch

    from judgekit.testing.replicas import QWEN3GUARD_LIKE, Shape, build_causal_lm, train_tokenizer

    if kind == "tiny":
        tokenizer = train_tokenizer(bos=None, eos="<|im_end|>", chat_template=QWEN3GUARD_LIKE)
        return build_causal_lm("Qwen2ForCausalLM", tokenizer, folder / kind, init_std=0.05)
    tokenizer = train_tokenizer(bos="<s>")
    shape = Shape(hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, intermediate_size=1536,
                  max_position_embeddings=2048)
    return build_causal_lm("LlamaForCausalLM", tokenizer, folder / kind, shape=shape, init_std=0.02, dtype=torch.bfloat16,
                           vocab_size=49_152, tie_word_embeddings=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-tiny", type=int, default=256)
    parser.add_argument("--n-small", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budget", type=int, default=4096, help="padded tokens per batched forward pass")
    parser.add_argument("--models", default="tiny,smollm2-135m-shape", help="which of the two checkpoints (comma-separated)")
    args = parser.parse_args()
    import torch

    from judgekit.flags.fluency import encode, load_causal_lm, token_surprisals

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'}, python {platform.python_version()}, torch {torch.__version__}, "
          f"{args.threads} torch thread(s)")
    print(f"  {'model':20s} {'params':>7s} {'mode':10s} {'responses/s':>12s} {'tokens/s':>10s}")
    with tempfile.TemporaryDirectory() as tmp:
        wanted = set(args.models.split(","))
        for kind, n in [(k, n) for k, n in (("tiny", args.n_tiny), ("smollm2-135m-shape", args.n_small)) if k in wanted]:
            path = str(build(kind, Path(tmp)))
            batch = texts(n, rng)
            prompts = ["How do I store cleaning products safely?"] * n
            modes = {"batched": load_causal_lm(path, token_budget=args.budget), "one-by-one": load_causal_lm(path, token_budget=1)}
            scored = sum(len(ids) - start for ids, start in encode(modes["batched"], prompts, batch))
            params = sum(p.numel() for p in modes["batched"].model.parameters()) / 1e6
            token_surprisals(modes["batched"], prompts[:2], batch[:2])  # warm-up
            seconds: dict[str, list[float]] = {mode: [] for mode in modes}
            for _ in range(args.repeats):
                for mode, lm in modes.items():
                    started = time.perf_counter()
                    token_surprisals(lm, prompts, batch)
                    seconds[mode].append(time.perf_counter() - started)
            for mode, times in seconds.items():
                median = statistics.median(times)
                print(f"  {kind:20s} {params:6.1f}M {mode:10s} {n / median:12.1f} {scored / median:10.0f}")
            print(f"  ({n} responses, {scored / n:.0f} scored tokens each on average, batched: "
                  f"{modes['batched'].token_budget} padded tokens per pass, {args.repeats} repeats)")
            load_causal_lm.cache_clear()


if __name__ == "__main__":
    main()
