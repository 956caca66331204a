"""Guard-model scoring throughput: peers' generate() loops vs judgekit's packed prefill.

    python benchmarks/judge_throughput.py                  # CPU: small Llama shape
    python benchmarks/judge_throughput.py --shape llama-3.1-8b --n 500    # GPU: Llama Guard 3 8B shape (~16 GB of bf16 weights written to a temp dir)
    python benchmarks/judge_throughput.py --shape llama-3.2-1b --n 500    # GPU: Llama Guard 3 1B shape

A random-weight ``LlamaForCausalLM`` with the chosen shape and a tokenizer trained on
the fly (Llama-Guard-3-like chat template) score N items with a realistic length mix
(prompts 20-400 tokens, responses 0-1,500), side by side in one run:

(a) the per-item loop peers use: ``generate(max_new_tokens=1, output_scores=True)`` on one
    item at a time (judgezoo / GuardBench style);
(b) common scripts' fixed batch size: the same ``generate`` call on batches of 8 items in
    input order, left-padded;
(c) judgekit: length-sorted batches packed by a token budget, one prefill-only forward
    pass with ``logits_to_keep=1``.

All three score the same items. The script checks that (a), (b) and (c) agree on
P(unsafe) before printing. On CUDA it also prints model-FLOPs utilisation (2 × parameters ×
tokens per second) against the card's dense bf16 peak.
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

from judgekit.judges.base import JudgeItems
from judgekit.judges.build import JudgeOptions, judge_from_spec
from judgekit.judges.catalog import load_preset
from judgekit.testing.replicas import LLAMA_GUARD_3_LIKE, Shape, build_causal_lm, train_tokenizer

SHAPES = {
    # tiny: the 1B stand-in of gpu_check.sh --cpu-dry-run (small is its 8B stand-in)
    "tiny": (Shape(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                   intermediate_size=128, max_position_embeddings=4096), 8_000),
    "small": (Shape(hidden_size=256, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2,
                    intermediate_size=768, max_position_embeddings=4096), 32_000),
    "llama-3.2-1b": (Shape(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                           intermediate_size=8192, max_position_embeddings=8192), 128_256),
    "llama-3.1-8b": (Shape(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                           intermediate_size=14336, max_position_embeddings=8192), 128_256),
}
# Dense bf16 peak (no sparsity), from the vendors' data sheets.
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}
WORDS = ("the cat sat on a mat and I cannot help with that request sure here is how step one gather "
         "materials follow instructions carefully quick brown fox jumps over lazy dog").split()


def make_items(n: int, rng: np.random.Generator, *, longest_response: int = 1500) -> JudgeItems:
    prompt_len = rng.integers(20, 401, n)
    response_len = np.where(rng.random(n) < 0.1, 0, rng.integers(1, longest_response + 1, n))
    word = lambda k: " ".join(rng.choice(WORDS, size=int(k)))  # noqa: E731
    return JudgeItems.of([word(k) for k in prompt_len], [word(k) for k in response_len])


def peer_generate(model, tokenizer, rows: list[list[int]], batch_size: int, label_ids: list[int], device) -> np.ndarray:
    """P(unsafe) the way peers get it: generate one token with scores, left-padded batches in input order."""
    out = []
    for begin in range(0, len(rows), batch_size):
        batch = rows[begin : begin + batch_size]
        longest = max(map(len, batch))
        ids = torch.full((len(batch), longest), tokenizer.pad_token_id)
        mask = torch.zeros_like(ids)
        for b, row in enumerate(batch):
            ids[b, longest - len(row):] = torch.tensor(row)
            mask[b, longest - len(row):] = 1
        with torch.inference_mode():
            generated = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=1,
                                       do_sample=False, output_logits=True, return_dict_in_generate=True,
                                       pad_token_id=tokenizer.pad_token_id)
        two = torch.log_softmax(generated.logits[0].float(), -1)[:, label_ids]
        out.append(torch.softmax(two, -1)[:, 0].cpu().numpy())
    return np.concatenate(out)


def cuda_peak() -> float | None:
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=SHAPES, default="small")
    parser.add_argument("--n", type=int, default=48, help="items each method scores")
    parser.add_argument("--token-budget", type=int, default=None, help="judgekit's padded tokens per pass (default: its own)")
    parser.add_argument("--longest-response", type=int, default=1500, help="words of the longest response (default 1500)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    shape, vocab = SHAPES[args.shape]
    rng = np.random.default_rng(0)
    items = make_items(args.n, rng, longest_response=args.longest_response)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = train_tokenizer(bos="<|begin_of_text|>", chat_template=LLAMA_GUARD_3_LIKE)
        build_causal_lm("LlamaForCausalLM", tokenizer, tmp, shape=shape, vocab_size=vocab, init_std=0.02,
                        dtype=torch.bfloat16 if device == "cuda" else None)
        spec = load_preset("llama-guard-3-8b")
        judge = judge_from_spec(spec, JudgeOptions(model_paths={spec["judge_id"]: tmp}, token_budget=args.token_budget))
        judge.plan(items.take(range(4)))
        judge._load_model()
        rows = judge._renderer.render(items).ids
        n_tokens = sum(map(len, rows))
        model = judge._model
        n_params = sum(p.numel() for p in model.parameters())
        label_ids = [judge._readout.ids[c] for c in (*judge._readout.unsafe_cols, *judge._readout.safe_cols)]

        judge.judge(items.take(range(min(8, len(items)))))  # warm-up (kernels, allocator)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        sync()
        started = time.perf_counter()
        batches = judge.plan(items)
        verdicts = [None] * len(items)
        for batch in batches:
            for i, verdict in zip(batch, judge.judge(items.take(batch)), strict=True):
                verdicts[i] = verdict
        sync()
        ours_s = time.perf_counter() - started
        ours_p = np.array([v.p_unsafe for v in verdicts])

        subset = rows
        timings = {}
        for name, batch_size in (("per-item generate()", 1), ("generate(), batch 8", 8)):
            peer_generate(model, judge._tokenizer, subset[:2], batch_size, label_ids, judge.device)
            sync()
            started = time.perf_counter()
            peer_p = peer_generate(model, judge._tokenizer, subset, batch_size, label_ids, judge.device)
            sync()
            timings[name] = time.perf_counter() - started
            np.testing.assert_allclose(peer_p, ours_p, atol=2e-2 if device == "cuda" else 1e-4)

    results = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
                   + (torch.cuda.get_device_name() if device == "cuda" else "CPU only"),
        "shape": args.shape, "params": n_params, "dtype": judge.dtype, "attention": judge.attention,
        "items": args.n, "tokens": n_tokens, "token_budget": judge.token_budget,
        "rows": [],
    }
    timings["judgekit packed prefill"] = ours_s
    for name, seconds in timings.items():
        row = {"method": name, "seconds": seconds, "items_per_s": args.n / seconds, "tokens_per_s": n_tokens / seconds,
               "speedup_vs_per_item": timings["per-item generate()"] / seconds}
        if device == "cuda" and cuda_peak():
            row["mfu"] = 2 * n_params * n_tokens / seconds / (cuda_peak() * 1e12)
        results["rows"].append(row)
    print(json.dumps(results, indent=2))
    print(f"\n{'method':<28}{'items/s':>10}{'tokens/s':>12}{'× per-item':>12}" + ("{:>8}".format("MFU") if device == "cuda" else ""))
    for row in results["rows"]:
        line = f"{row['method']:<28}{row['items_per_s']:>10.1f}{row['tokens_per_s']:>12.0f}{row['speedup_vs_per_item']:>12.1f}"
        print(line + (f"{row.get('mfu', float('nan')):>8.1%}" if device == "cuda" else ""))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
