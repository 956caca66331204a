"""Tiny random-weight chat models for the documentation's reduced variants (no download, a few MB, CPU).

``python -m tests.doc_models DIR SEED [DIR SEED ...]`` writes, per pair, a LlamaForCausalLM checkpoint with a tokenizer trained on the fly
and a ChatML template; another seed gives other weights (a stand-in "fine-tune" of the same shape).
"""

from __future__ import annotations

import sys

from judgekit.testing.replicas import QWEN3GUARD_LIKE, build_causal_lm, train_tokenizer


def main(argv: list[str]) -> None:
    tokenizer = train_tokenizer(bos=None, eos="<|im_end|>", chat_template=QWEN3GUARD_LIKE)
    for directory, seed in zip(argv[::2], argv[1::2], strict=True):
        build_causal_lm("LlamaForCausalLM", tokenizer, directory, seed=int(seed))


if __name__ == "__main__":
    main(sys.argv[1:])
