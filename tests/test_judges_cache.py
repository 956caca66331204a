"""The verdict cache is keyed on what was actually run: weights, dtype, rendering, server model.

Two random-weight checkpoints of one architecture (same tokenizer, same shapes, different seeds)
stand for a base model and its fine-tune: their configs, tokenizer files and safetensors headers
are identical, only the weights differ.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

from judgekit.errors import InputError  # noqa: E402
from judgekit.judges.base import JudgeItems, judge_identity, judge_key  # noqa: E402
from judgekit.judges.build import JudgeOptions, judge_from_spec  # noqa: E402
from judgekit.registry import resolve_judge  # noqa: E402
from judgekit.judges.catalog import load_preset  # noqa: E402
from judgekit.judges.identity import directory_fingerprint, hub_commit  # noqa: E402
from judgekit.testing.replicas import LLAMA_GUARD_3_LIKE, QWEN3GUARD_LIKE, build_causal_lm, train_tokenizer  # noqa: E402
from judgekit.engine.judge_runner import run_judges  # noqa: E402
from judgekit.store.study import load_study  # noqa: E402

PRESET = "llama-guard-3-8b"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("checkpoints")
    tokenizer = train_tokenizer(bos="<|begin_of_text|>", chat_template=LLAMA_GUARD_3_LIKE)
    chat = train_tokenizer(bos=None, eos="<|im_end|>", chat_template=QWEN3GUARD_LIKE)
    built = {
        "base": build_causal_lm("LlamaForCausalLM", tokenizer, root / "base", seed=0),
        "finetune": build_causal_lm("LlamaForCausalLM", tokenizer, root / "finetune", seed=1),
        "chat_a": build_causal_lm("Qwen3ForCausalLM", chat, root / "chat_a", seed=0, head_dim=8),
        "chat_b": build_causal_lm("Qwen3ForCausalLM", chat, root / "chat_b", seed=1, head_dim=8),
    }
    built["base_copy"] = Path(shutil.copytree(built["base"], root / "elsewhere" / "base_copy"))
    return built


def _study(tmp_path: Path, n: int = 6) -> Path:
    study = tmp_path / "study"
    study.mkdir()
    pd.DataFrame({"item_id": [f"i{k}" for k in range(n)], "prompt": [f"Question {k}?" for k in range(n)],
                  "response": [f"Sure, step {k}: follow the instructions carefully." for k in range(n)]}).to_csv(
        study / "responses.csv", index=False)
    return study


def _items(study: Path) -> JudgeItems:
    frame = pd.read_csv(study / "responses.csv")
    return JudgeItems.of(frame["prompt"].tolist(), frame["response"].tolist())


def _guard(path: Path, **options):
    return judge_from_spec(load_preset(PRESET), JudgeOptions(model_paths={PRESET: str(path)}, **options))


def _run(study: Path, judge, *, replace: bool = False):
    [summary] = run_judges(load_study(study), [judge], replace=replace, progress=False)
    judgments = pd.read_parquet(study / "judgments").set_index("item_id")
    return summary, judgments.loc[[f"i{k}" for k in range(len(judgments))], "p_unsafe"].to_numpy()


def _safetensors_header(path: Path) -> bytes:
    data = (path / "model.safetensors").read_bytes()
    return data[8 : 8 + int.from_bytes(data[:8], "little")]


def test_fingerprint_tells_checkpoints_of_one_shape_apart(checkpoints):
    base, finetune = checkpoints["base"], checkpoints["finetune"]
    # Everything a header-and-index hash would read is identical: only the sampled weight bytes differ.
    assert _safetensors_header(base) == _safetensors_header(finetune)
    assert (base / "config.json").read_bytes() == (finetune / "config.json").read_bytes()
    assert directory_fingerprint(base) != directory_fingerprint(finetune)
    assert directory_fingerprint(base) == directory_fingerprint(checkpoints["base_copy"])  # the path does not matter


def test_fingerprint_sees_one_changed_tensor(checkpoints, tmp_path):
    changed = Path(shutil.copytree(checkpoints["base"], tmp_path / "changed"))
    header = json.loads(_safetensors_header(changed))
    name = sorted(k for k in header if k != "__metadata__")[len(header) // 2]
    begin, _ = header[name]["data_offsets"]
    weights = bytearray((changed / "model.safetensors").read_bytes())
    weights[8 + len(_safetensors_header(changed)) + begin] ^= 0xFF
    (changed / "model.safetensors").write_bytes(bytes(weights))
    assert directory_fingerprint(changed) != directory_fingerprint(checkpoints["base"])


def test_another_checkpoint_never_gets_the_old_verdicts(checkpoints, tmp_path):
    study = _study(tmp_path)
    items = _items(study)
    expected = {name: [v.p_unsafe for v in _guard(checkpoints[name]).judge(items)] for name in ("base", "finetune")}
    assert np.abs(np.subtract(expected["base"], expected["finetune"])).max() > 1e-3

    first, got = _run(study, _guard(checkpoints["base"]))
    np.testing.assert_allclose(got, expected["base"], atol=1e-6)
    # Same judge id, another checkpoint: the old judgments are stale, not reused.
    with pytest.raises(InputError, match="another spec or checkpoint"):
        _run(study, _guard(checkpoints["finetune"]))
    second, got = _run(study, _guard(checkpoints["finetune"]), replace=True)
    assert second.n_from_cache == 0 and second.spec_hash != first.spec_hash
    np.testing.assert_allclose(got, expected["finetune"], atol=1e-6)
    # A copy of the first checkpoint elsewhere is the same checkpoint: its verdicts come from the cache.
    third, got = _run(study, _guard(checkpoints["base_copy"]), replace=True)
    assert third.n_from_cache == len(items) and third.spec_hash == first.spec_hash
    np.testing.assert_allclose(got, expected["base"], atol=1e-6)


def test_manifest_records_the_resolved_identity(checkpoints, tmp_path):
    from judgekit.engine.steps import judge_step

    study = _study(tmp_path, n=2)
    judge_step(study, [PRESET], progress=False, options=JudgeOptions(model_paths={PRESET: str(checkpoints["base"])}))
    run = json.loads((study / "manifest.json").read_text())["runs"][-1]
    identity = run["details"]["runs"][0]["identity"]
    assert identity["weights"] == {"kind": "local", "fingerprint": directory_fingerprint(checkpoints["base"])}
    assert identity["dtype"] == "float32" and identity["label_token_ids"] and len(identity["rendered_probe_sha256"]) == 64
    assert run["judge_specs"][0]["spec_hash"] == pd.read_parquet(study / "judgments")["judge_spec_hash"].iloc[0]


def test_dtype_and_rendering_are_part_of_the_key(checkpoints):
    def key(judge) -> str:
        return judge_key(judge.spec, judge_identity(judge))

    fp32 = key(_guard(checkpoints["base"], dtype="float32"))
    assert fp32 == key(_guard(checkpoints["base"]))  # the CPU default
    assert fp32 != key(_guard(checkpoints["base"], dtype="bfloat16"))
    spec = load_preset(PRESET)
    spec["readout"] = dict(spec["readout"], forced_text="\n")
    other = judge_from_spec(spec, JudgeOptions(model_paths={PRESET: str(checkpoints["base"])}))
    assert judge_identity(other)["rendered_probe_sha256"] != judge_identity(_guard(checkpoints["base"]))["rendered_probe_sha256"]


def test_hub_snapshot_commit_is_the_identity(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--org--guard"
    for commit in ("a" * 40, "b" * 40):
        (repo / "snapshots" / commit).mkdir(parents=True)
        (repo / "snapshots" / commit / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    assert hub_commit("org/guard", None) == "a" * 40
    (repo / "refs" / "main").write_text("b" * 40)
    assert hub_commit("org/guard", "main") == "b" * 40
    assert hub_commit("org/guard", "c" * 40) == "c" * 40  # a pinned commit is its own identity
    assert hub_commit("org/absent", None) is None


def test_rubric_against_another_served_model_gets_no_old_verdicts(checkpoints, tmp_path):
    pytest.importorskip("aiohttp")
    from judgekit.judges.http_judge import HttpSettings
    from judgekit.testing.replica_server import ReplicaServer

    study = _study(tmp_path, n=4)

    def rubric(url: str):  # the same --served-model name on every server
        return resolve_judge("jbb-llama3-judge", JudgeOptions(http=HttpSettings(base_url=url, api="openai", served_model="judge")))

    with ReplicaServer(checkpoints["chat_a"], served_name="judge") as server:
        first, _ = _run(study, rubric(server.url))
    with ReplicaServer(checkpoints["chat_a"], served_name="judge") as server:  # restarted on another port
        again, _ = _run(study, rubric(server.url))
    assert again.spec_hash == first.spec_hash and again.n_skipped == 4
    with ReplicaServer(checkpoints["chat_b"], served_name="judge") as server:
        with pytest.raises(InputError, match="another spec or checkpoint"):
            _run(study, rubric(server.url))
        other, _ = _run(study, rubric(server.url), replace=True)
    assert other.n_from_cache == 0 and other.spec_hash != first.spec_hash
    assert other.identity["server_model"] == {"id": "judge", "root": str(checkpoints["chat_b"])}
