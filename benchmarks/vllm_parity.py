"""P(unsafe) of the transformers and the vLLM guard backends on inspect-judge's six check pairs.

    python benchmarks/vllm_parity.py [--shape tiny|llama-3.2-1b] [--json FILE]

A random-weight Llama-Guard-3-shaped replica (:mod:`judgekit.testing.replicas`) is scored by both
backends through ``judgekit inspect-judge --compare-backends``; the largest |Δ P(unsafe)| is printed
(bf16 on a GPU: differences of a few 1e-3 are kernel rounding; a wrong position or BOS shows as ~0.1-1).
Without vLLM the script says so and exits 0, so ``gpu_check.sh`` runs everywhere.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
from pathlib import Path

from judgekit.engine.steps import inspect_judge_step
from judgekit.testing.replicas import LLAMA_GUARD_3_LIKE, Shape, build_causal_lm, train_tokenizer

SHAPES = {
    "tiny": (Shape(), None),
    "llama-3.2-1b": (Shape(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                           intermediate_size=8192, max_position_embeddings=8192), 128_256),
}
PRESET = "llama-guard-3-8b"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=SHAPES, default="tiny")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if importlib.util.find_spec("vllm") is None:
        result = {"shape": args.shape, "skipped": "vLLM is not installed"}
        print("vLLM parity: skipped (vLLM is not installed)")
    else:
        import torch

        shape, vocab = SHAPES[args.shape]
        with tempfile.TemporaryDirectory() as tmp:
            tokenizer = train_tokenizer(bos="<|begin_of_text|>", chat_template=LLAMA_GUARD_3_LIKE)
            extra = {"vocab_size": vocab} if vocab else {}
            build_causal_lm("LlamaForCausalLM", tokenizer, tmp, shape=shape, init_std=0.02, dtype=torch.bfloat16, **extra)
            report_path = Path(tmp) / "report.json"
            print(inspect_judge_step(PRESET, model_path=tmp, dtype="bfloat16", json_path=report_path,
                                     compare_backends=True))
            report = json.loads(report_path.read_text())
        result = {"shape": args.shape, "max_abs_diff_p_unsafe": report["max_abs_diff"], "p_unsafe": report["p_unsafe"]}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
