"""Padding-aware packing of judge batches (issue 31): a batch closes at a stated share of padded tokens.

The padded share is counted independently here (each batch padded to its longest item) and checked on the
demo study's token lengths (Llama 3 vocabulary, a Llama Guard 3-like template) at the CUDA default budget,
and on mixes drawn to stress the rule: bimodal, long-tailed, all equal, one item longer than the budget.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from judgekit.judges.transformers_judge import DEFAULT_TOKEN_BUDGET, pack_by_budget, padded_share

CUDA_BUDGET = DEFAULT_TOKEN_BUDGET["cuda"]


def padding_of(lengths: np.ndarray, batch: np.ndarray) -> float:
    return 1 - lengths[batch].sum() / (len(batch) * lengths[batch].max())


def check_plan(lengths: np.ndarray, batches: list[np.ndarray], *, budget: int, max_items: int, cap: float) -> None:
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= max_items
        assert len(batch) == 1 or lengths[batch].max() * len(batch) <= budget
        assert len(batch) == 1 or padding_of(lengths, batch) <= cap + 1e-12
    # Closed at the cap, not before: one more item (the next longest) would have passed it or the budget.
    order = np.concatenate(batches)
    start = 0
    for batch in batches[:-1]:
        start += len(batch)
        grown = np.append(batch, order[start])
        assert (padding_of(lengths, grown) > cap or len(grown) > max_items
                or lengths[grown].max() * len(grown) > budget)


@pytest.fixture(scope="module")
def demo_lengths() -> np.ndarray:
    pytest.importorskip("llama_models", reason="the Llama 3 vocabulary comes with llama-models (dev extra)")
    from judgekit.testing.replicas import LLAMA_GUARD_3_LIKE, real_vocab_tokenizer

    tokenizer = real_vocab_tokenizer("llama3", chat_template=LLAMA_GUARD_3_LIKE)
    responses = pd.read_csv(REPO / "data" / "demo" / "responses.csv")
    return np.array([len(tokenizer.apply_chat_template([{"role": "user", "content": prompt},
                                                        {"role": "assistant", "content": response}],
                                                       tokenize=True, return_dict=False))
                     for prompt, response in zip(responses["prompt"], responses["response"], strict=True)])


def test_demo_lengths_at_the_cuda_budget_pad_a_tenth_instead_of_two_fifths(demo_lengths) -> None:
    """By the budget alone the demo's 640 items take 2 passes, 40% of the computed tokens padding (115,906
    tokens computed); closing batches at 10% pads 9.8% in 7 passes (76,877 tokens computed)."""
    n = len(demo_lengths)
    by_budget = pack_by_budget(demo_lengths, budget=CUDA_BUDGET, max_items=n)
    assert len(by_budget) == 2 and padded_share(demo_lengths, by_budget) > 0.35
    capped = pack_by_budget(demo_lengths, budget=CUDA_BUDGET, max_items=n, max_padding=0.10)
    check_plan(demo_lengths, capped, budget=CUDA_BUDGET, max_items=n, cap=0.10)
    assert padded_share(demo_lengths, capped) <= 0.10
    assert len(capped) == 7
    computed = sum(len(b) * demo_lengths[b].max() for b in capped)
    assert computed < 0.7 * sum(len(b) * demo_lengths[b].max() for b in by_budget)


@pytest.mark.parametrize("mix", ["bimodal", "long tail", "all equal", "one over the budget", "tiny budget"])
@pytest.mark.parametrize("cap", [0.0, 0.05, 0.10, 0.30])
def test_every_batch_stays_under_the_cap_and_closes_only_there(mix: str, cap: float) -> None:
    rng = np.random.default_rng(len(mix))
    budget, max_items = CUDA_BUDGET, 256
    lengths = {
        "bimodal": np.concatenate([rng.integers(40, 60, 500), rng.integers(900, 1100, 60)]),
        "long tail": np.ceil(rng.lognormal(5, 1, 2000)).astype(int),
        "all equal": np.full(700, 333),
        "one over the budget": np.concatenate([[CUDA_BUDGET + 10], rng.integers(10, 400, 300)]),
        "tiny budget": rng.integers(1, 50, 300),
    }[mix]
    if mix == "tiny budget":
        budget = 64
    batches = pack_by_budget(lengths, budget=budget, max_items=max_items, max_padding=cap)
    check_plan(lengths, batches, budget=budget, max_items=max_items, cap=cap)
    if mix == "all equal":
        assert [len(b) for b in batches] == [196, 196, 196, 112]  # 65,536 // 333 = 196 per pass, no padding
    if mix == "one over the budget":
        assert batches[0].tolist() == [0]


def test_no_cap_packs_as_before_and_the_cap_is_validated() -> None:
    lengths = np.array([5, 100, 30, 30, 7, 64, 1, 99])
    plain = pack_by_budget(lengths, budget=128, max_items=3)
    for vacuous in (None, 1.0):
        assert [b.tolist() for b in pack_by_budget(lengths, budget=128, max_items=3, max_padding=vacuous)] == \
            [b.tolist() for b in plain]
    with pytest.raises(ValueError, match="max_padding"):
        pack_by_budget(lengths, budget=128, max_items=3, max_padding=1.5)


def test_max_padding_reaches_the_model_judge_from_the_command_line() -> None:
    from judgekit.cli import build_parser
    from judgekit.judges.build import JudgeOptions, judge_from_preset

    args = build_parser().parse_args(["judge", "study", "--judge", "llama-guard-3-8b", "--max-padding", "0.2"])
    assert args.max_padding == 0.2
    assert build_parser().parse_args(["judge", "study"]).max_padding is None  # JudgeOptions' default applies
    with pytest.raises(SystemExit):
        build_parser().parse_args(["judge", "study", "--max-padding", "2"])
    assert judge_from_preset("llama-guard-3-8b", JudgeOptions(max_padding=0.2)).max_padding == 0.2
    assert judge_from_preset("llama-guard-3-8b").max_padding == 0.10
