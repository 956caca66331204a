"""Judge stress tests: seeded, linked perturbed copies; hand-checked flip counts; the cluster bootstrap against references."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from judgekit.errors import InputError
from judgekit.engine.stress import StressDesign, cluster_bootstrap_ratio, pair_verdicts, perturbed_responses, stress_step

REFUSAL = "I'm sorry, but I cannot help with that request because it could hurt people."
COMPLIANCE = ("Sure, here is a plan. First gather the materials, then follow the steps in order, and finally check the "
              "result carefully before you use it anywhere else.")


def write_study(path: Path, n: int = 12) -> Path:
    path.mkdir()
    responses = pd.DataFrame({"item_id": [f"i{k}" for k in range(n)],
                              "prompt": [f"How do I do task {k // 2}?" for k in range(n)],
                              "response": [REFUSAL if k % 2 else COMPLIANCE for k in range(n)]})
    responses.to_csv(path / "responses.csv", index=False)
    (path / "study.json").write_text(json.dumps({"name": "tiny", "simulated": True}))
    return path


def test_copies_are_seeded_linked_and_independent_of_the_design() -> None:
    frame = pd.DataFrame({"item_id": ["a", "b"], "prompt": ["p", "q"], "response": [COMPLIANCE, REFUSAL]})
    one = perturbed_responses(frame, StressDesign(("shuffle",), ("severe",), seed=3))
    again = perturbed_responses(frame, StressDesign(("shuffle",), ("severe",), seed=3))
    more = perturbed_responses(frame, StressDesign(("loop", "shuffle"), ("mild", "severe"), seed=3))
    pd.testing.assert_frame_equal(one, again)
    copy = one[one["perturbation"] == "shuffle"].set_index("item_id")["response"]
    assert copy.to_dict() == more[more["perturbation"] == "shuffle"].query("severity == 'severe'").set_index("item_id")["response"].to_dict()
    assert set(one["original_item_id"]) == {"a", "b"} and len(one) == 4
    assert sorted(copy["a~shuffle~severe"].split()) == sorted(COMPLIANCE.split()) and copy["a~shuffle~severe"] != COMPLIANCE
    other_seed = perturbed_responses(frame, StressDesign(("shuffle",), ("severe",), seed=4))
    assert other_seed["response"].tolist() != one["response"].tolist()


def test_bad_designs_are_input_errors() -> None:
    with pytest.raises(InputError, match="--perturb"):
        StressDesign(("melt",), ("mild",))
    with pytest.raises(InputError, match="--severity"):
        StressDesign(("loop",), ("extreme",))
    with pytest.raises(InputError, match="--n"):
        StressDesign(("loop",), ("mild",), n=0)


def test_cluster_bootstrap_matches_scipy_for_singleton_clusters() -> None:
    """Clusters of one unit: the percentile interval of a mean is scipy's (up to Monte Carlo error)."""
    from scipy.stats import bootstrap

    rng = np.random.default_rng(0)
    values = (rng.random(300) < 0.3).astype(float)
    estimate, low, high = cluster_bootstrap_ratio(values, np.ones(300), np.arange(300), n_boot=20000, rng=rng)
    reference = bootstrap((values,), np.mean, method="percentile", n_resamples=20000, random_state=1).confidence_interval
    assert estimate == pytest.approx(values.mean())
    assert low == pytest.approx(reference.low, abs=0.006) and high == pytest.approx(reference.high, abs=0.006)


def test_cluster_bootstrap_resamples_whole_clusters() -> None:
    """Perfectly correlated clusters: the interval must be as wide as with one unit per cluster, not sqrt(size) narrower."""
    rng = np.random.default_rng(1)
    cluster_values = (rng.random(60) < 0.5).astype(float)
    units = np.repeat(cluster_values, 10)
    clustered = cluster_bootstrap_ratio(units, np.ones(600), np.repeat(np.arange(60), 10), n_boot=4000, rng=rng)
    per_cluster = cluster_bootstrap_ratio(cluster_values, np.ones(60), np.arange(60), n_boot=4000, rng=rng)
    naive = cluster_bootstrap_ratio(units, np.ones(600), np.arange(600), n_boot=4000, rng=rng)
    assert clustered[2] - clustered[1] == pytest.approx(per_cluster[2] - per_cluster[1], rel=0.15)
    assert naive[2] - naive[1] < 0.5 * (clustered[2] - clustered[1])


def test_cluster_bootstrap_coverage_in_simulation() -> None:
    """Known truth 0.3, 40 clusters of 5 with a shared cluster effect: 95% intervals cover near 95%."""
    rng = np.random.default_rng(2)
    hits, reps = 0, 300
    for _ in range(reps):
        p = np.clip(0.3 + rng.normal(0, 0.15, 40), 0, 1)  # mean 0.3 (clipping is symmetric enough here)
        units = (rng.random((40, 5)) < p[:, None]).astype(float).ravel()
        _, low, high = cluster_bootstrap_ratio(units, np.ones(200), np.repeat(np.arange(40), 5), n_boot=400, rng=rng)
        hits += low <= 0.3 <= high
    coverage = hits / reps
    assert abs(coverage - 0.95) < 3 * np.sqrt(0.95 * 0.05 / reps) + 0.02, coverage


def test_keyword_judges_flip_counts_by_hand(tmp_path) -> None:
    """language_switch severe replaces the whole text: every refusal loses its marker and turns 'unsafe' (no refusal found)."""
    study = write_study(tmp_path / "study")
    stats, paths = stress_step(study, ["keyword-gcg-7"], StressDesign(("language_switch", "truncate"), ("severe", "mild")),
                               n_boot=200, progress=False)
    cell = stats.set_index(["perturbation", "severity", "statistic"])["estimate"]
    assert cell[("language_switch", "severe", "stress_flip_rate")] == pytest.approx(0.5)  # the 6 refusals of 12
    assert cell[("language_switch", "severe", "flip_safe_to_unsafe")] == pytest.approx(0.5)
    assert cell[("language_switch", "severe", "flip_unsafe_to_safe")] == 0
    assert cell[("language_switch", "severe", "garbage_unsafe")] == 1
    assert cell[("truncate", "mild", "stress_flip_rate")] == 0  # 90% of the text keeps "I'm sorry"
    assert cell[("truncate", "mild", "p_unsafe_shift")] != cell[("truncate", "mild", "p_unsafe_shift")]  # NaN: no P(unsafe)
    assert {p.name for p in paths} >= {"stress.csv", "stress_stress_flip_rate.png", "manifest.json"}
    again, _ = stress_step(study, ["keyword-gcg-7"], StressDesign(("language_switch", "truncate"), ("severe", "mild")),
                           n_boot=200, progress=False)
    pd.testing.assert_frame_equal(stats, again)


def test_unknown_judge_writes_nothing(tmp_path) -> None:
    study = write_study(tmp_path / "study")
    with pytest.raises(InputError):
        stress_step(study, ["no-such-judge"], StressDesign(("loop",), ("mild",)), progress=False)
    assert not (study / "stress").exists()


def test_pairs_keep_failures_as_failures() -> None:
    responses = pd.DataFrame({"item_id": ["a", "a~loop~mild"], "original_item_id": ["a", "a"],
                              "perturbation": ["original", "loop"], "severity": ["none", "mild"], "stress_cluster": ["p", "p"]})
    judgments = pd.DataFrame({"item_id": ["a", "a~loop~mild"], "judge_id": ["j", "j"], "label": ["safe", None],
                              "p_unsafe": [0.1, None], "parse_status": ["ok", "unparseable"]})
    paired = pair_verdicts(responses, judgments)
    assert paired["parse_status_copy"].tolist() == ["unparseable"] and paired["label_copy"].isna().all()


@pytest.mark.parametrize("family", ["guard", "rubric-http"])
def test_model_judges_run_through_stress(tmp_path, family) -> None:
    """A tiny random-weight Llama Guard 3 replica in-process, and a rubric judge over HTTP to the replica server."""
    pytest.importorskip("torch")
    from judgekit.judges.build import JudgeOptions
    from judgekit.judges.http_judge import HttpSettings
    from judgekit.testing.replica_server import ReplicaServer
    from judgekit.testing.replicas import LLAMA_GUARD_3_LIKE, QWEN3GUARD_LIKE, build_causal_lm, train_tokenizer

    study = write_study(tmp_path / "study", n=4)
    design = StressDesign(("word_salad",), ("moderate",))
    if family == "guard":
        model = build_causal_lm("LlamaForCausalLM", train_tokenizer(bos="<|begin_of_text|>", chat_template=LLAMA_GUARD_3_LIKE),
                                tmp_path / "lg3")
        stats, _ = stress_step(study, ["llama-guard-3-8b"], design, options=JudgeOptions(model_paths={"llama-guard-3-8b": str(model)}),
                               n_boot=100, progress=False)
        shift = stats.set_index("statistic").loc["p_unsafe_shift"]
        assert shift["n_pairs"] == 4 and np.isfinite(shift["estimate"])
    else:
        model = build_causal_lm("Qwen3ForCausalLM", train_tokenizer(bos=None, eos="<|im_end|>", chat_template=QWEN3GUARD_LIKE),
                                tmp_path / "chat", head_dim=8)
        with ReplicaServer(model) as server:
            options = JudgeOptions(http=HttpSettings(base_url=server.url, api="openai", served_model="replica", concurrency=2))
            stats, _ = stress_step(study, ["jbb-llama3-judge"], design, options=options, n_boot=100, progress=False)
        failures = stats.set_index("statistic").loc["copy_failure"]
        assert failures["n_pairs"] == 4  # every copy judged; random weights may garble answers: those are failures, not "safe"
    assert set(stats["statistic"]) >= {"stress_flip_rate", "garbage_unsafe", "p_unsafe_shift"}
