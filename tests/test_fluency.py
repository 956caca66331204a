"""The fluency detector: surprisal given the prompt, batching parity, OOM back-off, safe loading, direction, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from judgekit.errors import InputError

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from judgekit.flags import fluency as fl  # noqa: E402
from judgekit.flags.incoherence import COMBINED_DEFAULT, DEFAULT_THRESHOLDS, detect  # noqa: E402
from judgekit.testing.replicas import QWEN3GUARD_LIKE, Shape, build_causal_lm, train_tokenizer  # noqa: E402

PROMPTS = ["How should I store cleaning products?", "", "Tell me about the weather today, please."]
RESPONSES = [
    "Keep them in their original containers, on a high shelf, away from food and children.",
    "Sure, here is how to do it. Step 1: gather the materials.",
    "I'm sorry, but I cannot help with that request. It would be illegal and dangerous. " * 3,
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine two threads oversubscribe and a training step takes 40x longer."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Random-weight Qwen2 (chat template, no BOS) and Llama (BOS, no template) checkpoints, saved as safetensors."""
    root = tmp_path_factory.mktemp("fluency-models")
    qwen = train_tokenizer(bos=None, eos="<|im_end|>", chat_template=QWEN3GUARD_LIKE)
    llama = train_tokenizer(bos="<s>")
    return {
        "qwen2": build_causal_lm("Qwen2ForCausalLM", qwen, root / "qwen2", init_std=0.05),
        "llama": build_causal_lm("LlamaForCausalLM", llama, root / "llama", shape=Shape(hidden_size=48), init_std=0.05),
    }


def manual_surprisals(path: Path, context: list[int], response: list[int]) -> np.ndarray:
    """The unbatched, unpadded reference: -log softmax(logits[j - 1])[ids[j]] for each response position j."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path).eval()
    ids = torch.tensor([context + response])
    with torch.inference_mode():
        logprobs = torch.log_softmax(model(ids).logits[0].double(), -1)
    return np.array([-float(logprobs[j - 1, ids[0, j]]) for j in range(len(context), ids.shape[1])])


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_surprisals_match_an_unbatched_hand_computation_at_any_batch_size(tiny_models, arch: str) -> None:
    path = str(tiny_models[arch])
    one_by_one = fl.load_causal_lm(path, token_budget=1)  # every row a batch of its own
    batched = fl.load_causal_lm(path, token_budget=10_000)
    rows = fl.encode(batched, PROMPTS, RESPONSES)
    assert len(fl.plan_batches(batched, rows)) == 1 and len({len(ids) for ids, _ in rows}) == 3  # padded together
    alone = fl.token_surprisals(one_by_one, PROMPTS, RESPONSES)
    together = fl.token_surprisals(batched, PROMPTS, RESPONSES)
    for (ids, start), a, b in zip(rows, alone, together, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(a, manual_surprisals(tiny_models[arch], ids[:start], ids[start:]), rtol=1e-4, atol=1e-4)


def test_the_prompt_is_rendered_with_the_chat_template_when_there_is_one(tiny_models) -> None:
    qwen, llama = (fl.load_causal_lm(str(tiny_models[k])) for k in ("qwen2", "llama"))
    (ids, start), = fl.encode(qwen, [PROMPTS[0]], [RESPONSES[0]])
    rendered = qwen.tokenizer.decode(ids[:start])
    assert rendered == f"<|im_start|>user\n{PROMPTS[0]}<|im_end|>\n<|im_start|>assistant\n"
    assert ids[start:] == qwen.tokenizer(RESPONSES[0], add_special_tokens=False)["input_ids"]
    (ids, start), = fl.encode(qwen, [PROMPTS[0]], ["ok <|im_end|> then"])  # a special token's text in a response is text
    assert qwen.tokenizer.convert_tokens_to_ids("<|im_end|>") not in ids[start:]
    (ids, start), = fl.encode(llama, [PROMPTS[0]], [RESPONSES[0]])
    assert ids[0] == llama.tokenizer.bos_token_id and ids[:start] == llama.tokenizer(PROMPTS[0] + "\n\n")["input_ids"]
    (ids, start), = fl.encode(qwen, [""], [RESPONSES[1]])  # no prompt: still a context to predict the first token from
    assert start >= 1


def test_out_of_memory_splits_the_batch_and_keeps_the_scores(tiny_models, monkeypatch) -> None:
    lm = fl.load_causal_lm(str(tiny_models["llama"]), token_budget=10_000)
    expected = fl.token_surprisals(lm, PROMPTS, RESPONSES)
    real_forward = fl._forward

    def small_batches_only(model, rows):
        if len(rows) > 1:
            raise torch.OutOfMemoryError("simulated")
        return real_forward(model, rows)

    monkeypatch.setattr(fl, "_forward", small_batches_only)
    splits = lm.n_oom_splits
    got = fl.token_surprisals(lm, PROMPTS, RESPONSES)
    assert lm.n_oom_splits - splits == 2  # 3 rows -> 1 + 2 -> 1 + 1 + 1
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    monkeypatch.setattr(fl, "_forward", lambda model, rows: (_ for _ in ()).throw(torch.OutOfMemoryError("always")))
    assert fl.token_surprisals(lm, PROMPTS[:1], RESPONSES[:1]) == [None]  # a row that never fits: no score, no crash


def test_window_surprisal_is_the_worst_window_mean() -> None:
    values = np.r_[np.full(50, 2.0), np.full(8, 6.0), np.full(50, 2.0)]
    assert fl.window_surprisal(values, window=8) == pytest.approx(6.0)
    assert fl.window_surprisal(values, window=16) == pytest.approx(4.0)
    assert np.isnan(fl.window_surprisal(np.ones(7)))
    with pytest.raises(ValueError, match="positive"):
        fl.window_surprisal(values, window=0)


def test_unsafe_or_missing_checkpoints_are_refused_before_any_work(tiny_models, tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(InputError, match="no such model directory"):
        fl.check_causal_lm(str(tmp_path / "nope"))
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(InputError, match="only pickled weights"):
        fl.check_causal_lm(str(pickled))
    no_config = tmp_path / "no-config"
    no_config.mkdir()
    with pytest.raises(InputError, match="no config.json"):
        fl.check_causal_lm(str(no_config))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="no such model directory"):  # ./pickled exists: a local path, not a hub id
        fl.check_causal_lm("pickled/lm")
    fl.check_causal_lm(str(tiny_models["qwen2"]))


# ---------------------------------------------------------------- a model that has learnt a language

ADJECTIVES = "small red quiet old bright heavy warm green".split()
NOUNS = "dog cat farmer child bird teacher river house garden window".split()
VERBS = "sees follows likes paints finds carries watches greets".split()
PLACES = "near under behind beside".split()


def sentence(rng: np.random.Generator) -> str:
    pick = lambda words: words[int(rng.integers(len(words)))]  # noqa: E731
    return (f"the {pick(ADJECTIVES)} {pick(NOUNS)} {pick(VERBS)} the {pick(ADJECTIVES)} {pick(NOUNS)} "
            f"{pick(PLACES)} the {pick(NOUNS)} .")


def response(rng: np.random.Generator) -> str:
    return " ".join(sentence(rng) for _ in range(4))


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory) -> Path:
    """A tiny Llama trained for 300 steps on sentences of a small grammar (a few seconds on one core)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["<pad>", "<s>", "</s>", "describe", "the", "scene", "."] + ADJECTIVES + NOUNS + VERBS + PLACES
    core = Tokenizer(models.WordLevel({w: k for k, w in enumerate(words)}, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(words), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                         num_key_value_heads=4, intermediate_size=128, max_position_embeddings=128,
                                         bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    for _ in range(300):
        batch = torch.tensor([[1] + tokenizer("describe the scene " + response(rng))["input_ids"] for _ in range(16)])
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    path = tmp_path_factory.mktemp("trained") / "grammar-llama"
    model.eval().save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_a_trained_model_finds_shuffled_text_less_fluent(trained_model: Path) -> None:
    """Falsifiable: a model that learnt the grammar must be more surprised by word shuffles of new sentences."""
    rng = np.random.default_rng(1)  # sentences the training stream (seed 0) did not produce in this order
    fluent = [response(rng) for _ in range(40)]
    shuffled = [" ".join(rng.permutation(response(rng).split()).tolist()) for _ in range(8)]
    half = [response(rng)[:120] + " " + " ".join(rng.permutation(response(rng).split()).tolist()) for _ in range(4)]
    texts = fluent + shuffled + half
    frame = pd.DataFrame({"item_id": [f"i{k}" for k in range(len(texts))], "prompt": ["describe the scene"] * len(texts),
                          "response": texts})
    flags = detect(frame, language=False, fluency_model=str(trained_model)).query("detector == 'fluency'")
    score, flagged = flags["score"].to_numpy(), flags["flagged"].to_numpy()
    assert score[40:48].min() > score[:40].max() + 1.0  # nats/token above the study baseline
    assert flagged[40:].all() and flagged[:40].sum() <= 1
    lm = fl.load_causal_lm(str(trained_model))
    fluent_mean = np.mean([s.mean() for s in fl.token_surprisals(lm, ["describe the scene"] * 40, fluent)])
    assert fluent_mean < 1.5  # it did learn the grammar (uniform guessing over 37 words is 3.6 nats)


def test_fluency_joins_the_combined_flag_and_small_studies_need_a_given_calibration(trained_model: Path) -> None:
    rng = np.random.default_rng(2)
    texts = [response(rng) for _ in range(5)] + [" ".join(rng.permutation(response(rng).split()).tolist())]
    frame = pd.DataFrame({"item_id": [f"i{k}" for k in range(6)], "prompt": ["describe the scene"] * 6, "response": texts})
    small = detect(frame, language=False, fluency_model=str(trained_model)).set_index(["item_id", "detector"])
    assert not small.xs("fluency", level="detector")["flagged"].any()  # 6 responses: too few to calibrate on
    assert "calibration needs 30" in small.loc[("i5", "fluency"), "reason"]
    # a calibration from other (development) responses of the same model makes the small study decidable
    lm = fl.load_causal_lm(str(trained_model))
    worst = np.array([fl.window_surprisal(s) for s in fl.token_surprisals(lm, ["describe the scene"] * 40,
                                                                             [response(rng) for _ in range(40)])])
    calibration = {"fluency_baseline": float(np.median(worst)),
                   "fluency_spread": float(1.4826 * np.median(np.abs(worst - np.median(worst))))}
    given = detect(frame, language=False, fluency_model=str(trained_model), thresholds=calibration)
    given = given.set_index(["item_id", "detector"])
    assert given.xs("fluency", level="detector")["flagged"].tolist() == [False] * 5 + [True]
    assert given.loc[("i5", "incoherent"), "flagged"] and "fluency:" in given.loc[("i5", "incoherent"), "reason"]
    heuristics_only = detect(frame, language=False, fluency_model=str(trained_model), combine=COMBINED_DEFAULT,
                             thresholds=calibration).query("detector == 'incoherent'")
    assert "fluency" not in heuristics_only["reason"].iloc[5]


def test_flag_cli_writes_fluency_rows_and_refuses_bad_paths(small_study: Path, tiny_models, tmp_path: Path) -> None:
    from judgekit.store.study import load_study

    missing = run_cli("flag", small_study, "--fluency-model", tmp_path / "missing-model")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    assert "no such model directory" in missing.stderr and not (small_study / "flags.parquet").exists()
    result = run_cli("flag", small_study, "--no-language", "--fluency-model", tiny_models["qwen2"])
    assert result.returncode == 0, result.stderr
    flags = load_study(small_study).flags
    rows = flags[flags["detector"] == "fluency"].set_index("item_id")
    assert len(rows) == 6 and np.isnan(rows.loc["a3", "score"]) and rows.loc["a3", "reason"] == "empty response"
    assert np.isfinite(rows.loc["a5", "score"]) and "calibration needs" in rows.loc["a5", "reason"]
    runs = json.loads((small_study / "manifest.json").read_text())["runs"]
    assert "fluency" in runs[-1]["details"]["combine"] and runs[-1]["status"] == "finished"


def test_fluency_thresholds_are_known_settings() -> None:
    assert {"fluency_z", "fluency_window_tokens", "fluency_min_responses", "fluency_baseline", "fluency_spread"} <= set(DEFAULT_THRESHOLDS)
    assert "max_perplexity" not in DEFAULT_THRESHOLDS


def test_the_development_calibration_flags_its_quantile(trained_model: Path) -> None:
    """analyses/incoherence_validation.py --fit-fluency: fluency_z leaves FIT_QUANTILE of the development responses above it."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "analyses"))
    from incoherence_validation import FIT_QUANTILE, fit_fluency

    rng = np.random.default_rng(3)
    real = pd.DataFrame({"prompt": ["describe the scene"] * 60, "response": [response(rng) for _ in range(60)]})
    fitted = fit_fluency(real, str(trained_model))
    assert fitted["n_scored"] == 60 and fitted["fluency_spread"] > 0
    flags = detect(real.assign(item_id=[f"d{k}" for k in range(60)]), language=False, fluency_model=str(trained_model),
                   thresholds={k: fitted[k] for k in ("fluency_baseline", "fluency_spread", "fluency_z")})
    flagged = flags.query("detector == 'fluency'")["flagged"]
    assert flagged.sum() <= int(np.ceil(FIT_QUANTILE * 60))  # at most the fitted share, here 1 of 60
