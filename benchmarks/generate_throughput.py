"""Generation throughput of the transformers engine: per-item loop vs batches packed by a token budget.

    python benchmarks/generate_throughput.py                      # CPU: small Llama shape, 48 prompts
    python benchmarks/generate_throughput.py --n 256 --budgets 1 65536 262144 --shape qwen-0.5b   # GPU

A random-weight ``LlamaForCausalLM`` and a tokenizer trained on the fly (ChatML template)
answer N prompts (20-200 words) with ``max_new_tokens`` new tokens, greedily, through
:class:`judgekit.generate.transformers_backend.TransformersGenerator` — the code
``judgekit generate`` runs — side by side in one process:

* ``--budgets 1``: one request per ``generate`` call (the per-item loop of most scripts);
* larger budgets: length-sorted, left-padded batches with ``count × (prompt + max_new_tokens) ≤ budget``.

Every configuration answers the same requests; the script reports response tokens/s and
how many greedy responses equal the per-item loop's (padding changes floating-point
sums, which can flip near-ties of a random-weight model).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from judgekit.generate.spec import ChatRenderer, Decoding, ModelVariant, build_requests
from judgekit.generate.transformers_backend import TransformersGenerator
from judgekit.testing.replicas import QWEN3GUARD_LIKE, Shape, build_causal_lm, train_tokenizer

SHAPES = {
    "small": Shape(hidden_size=256, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2,
                   intermediate_size=768, max_position_embeddings=4096),
    "qwen-0.5b": Shape(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                       intermediate_size=4864, max_position_embeddings=8192),
}
WORDS = "the cat sat on a mat how do I make bread step one gather the flour water salt yeast and mix".split()


def run(generator: TransformersGenerator, requests, decoding: Decoding, budget: int) -> tuple[float, list[str], int]:
    generator.token_budget = budget
    answers = [None] * len(requests)
    started = time.perf_counter()
    for batch in generator.plan(requests, decoding):
        for k, answer in zip(batch, generator.generate(ModelVariant("m"), [requests[k] for k in batch], decoding), strict=True):
            answers[k] = answer
    wall = time.perf_counter() - started
    return wall, [a.text for a in answers], sum(a.n_response_tokens for a in answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--budgets", type=int, nargs="+", default=[1, 2048, 8192, 32768])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="small")
    parser.add_argument("--repeats", type=int, default=3, help="runs per budget, interleaved; the median is reported")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    prompts = [(f"p{k}", " ".join(rng.choice(WORDS, size=int(rng.integers(20, 201))))) for k in range(args.n)]
    decoding = Decoding(max_new_tokens=args.max_new_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = train_tokenizer(bos=None, eos="<|im_end|>", chat_template=QWEN3GUARD_LIKE)
        dtype = torch.bfloat16 if torch.cuda.is_available() else None
        model_dir = build_causal_lm("LlamaForCausalLM", tokenizer, Path(tmp) / "m", shape=SHAPES[args.shape],
                                    init_std=0.02, dtype=dtype)
        generator = TransformersGenerator(str(model_dir))
        requests = build_requests(prompts, ChatRenderer(generator.tokenizer, None, source="bench"), decoding)
        results = {b: [] for b in args.budgets}
        texts = {}
        for _ in range(args.repeats):
            for budget in args.budgets:
                wall, texts[budget], tokens = run(generator, requests, decoding, budget)
                results[budget].append((wall, tokens))
    reference = texts[min(args.budgets)]
    print(json.dumps({"machine": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
                      "device": generator.device, "dtype": generator.dtype, "shape": args.shape, "n": args.n,
                      "max_new_tokens": args.max_new_tokens,
                      "prompt_tokens_mean": float(np.mean([len(r.ids) for r in requests]))}))
    print("| token budget | batches | wall s (median) | wall s (min-max) | response tokens/s | responses/s | equal to per-item |")
    print("|---|---|---|---|---|---|---|")
    for budget in args.budgets:
        walls = [w for w, _ in results[budget]]
        wall = float(np.median(walls))
        tokens = results[budget][0][1]
        generator.token_budget = budget
        batches = len(generator.plan(requests, decoding))
        same = sum(a == b for a, b in zip(texts[budget], reference, strict=True))
        print(f"| {budget} | {batches} | {wall:.2f} | {min(walls):.2f}-{max(walls):.2f} | {tokens / wall:.0f} | "
              f"{args.n / wall:.1f} | {same}/{args.n} |")


if __name__ == "__main__":
    main()
