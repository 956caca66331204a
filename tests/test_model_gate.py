"""The one model-loading gate: no checkpoint code ever runs, no interactive prompt, safetensors only (issue #23, item 1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from judgekit.guards import model_gate
from judgekit.errors import InputError
from tests.conftest import REPO, run_cli

PROMPT = "Do you wish to run the custom code"


def poisoned_checkpoint(folder: Path) -> tuple[Path, Path]:
    """A folder that looks like a transformers model whose config and tokenizer config map to ``evil.py``,
    which writes a marker file when imported. Returns (folder, marker)."""
    from safetensors.numpy import save_file
    import numpy as np

    folder.mkdir(parents=True)
    marker = folder.parent / f"{folder.name}-EXECUTED"
    (folder / "evil.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('code from the checkpoint ran')\n"
        "from transformers import PretrainedConfig, PreTrainedTokenizerFast, PreTrainedModel\n"
        "class EvilConfig(PretrainedConfig):\n    model_type = 'judgekit_evil'\n"
        "class EvilTokenizer(PreTrainedTokenizerFast):\n    pass\n"
        "class EvilModel(PreTrainedModel):\n    config_class = EvilConfig\n",
        encoding="utf-8")
    auto_map = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel",
                "AutoModelForCausalLM": "evil.EvilModel", "AutoTokenizer": ["evil.EvilTokenizer", "evil.EvilTokenizer"],
                "AutoProcessor": "evil.EvilTokenizer"}
    (folder / "config.json").write_text(json.dumps({"model_type": "judgekit_evil", "architectures": ["EvilModel"],
                                                    "auto_map": auto_map}), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "EvilTokenizer", "auto_map": auto_map}),
                                                  encoding="utf-8")
    save_file({"weight": np.zeros(4, dtype=np.float32)}, str(folder / "model.safetensors"))
    return folder, marker


@pytest.fixture
def poisoned(tmp_path: Path) -> tuple[Path, Path]:
    return poisoned_checkpoint(tmp_path / "evil-model")


def test_fluency_model_with_custom_code_never_runs_it_even_when_the_user_answers_yes(small_study, poisoned):
    """The issue's reproduction: `flag --fluency-model DIR` with an auto_map; stdin answers "y" to any prompt."""
    folder, marker = poisoned
    done = subprocess.run([sys.executable, "-m", "judgekit.cli", "flag", str(small_study), "--fluency-model", str(folder)],
                          input="y\n" * 20, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert not marker.exists(), "code from the checkpoint ran"
    assert PROMPT not in done.stdout + done.stderr
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "custom code" in done.stderr and "config.json" in done.stderr
    assert not (small_study / "flags.parquet").exists() and not (small_study / "manifest.json").exists()


@pytest.mark.parametrize("loader", ["config", "tokenizer", "processor", "model"])
def test_every_gate_loader_refuses_checkpoint_code(poisoned, loader):
    folder, marker = poisoned
    calls = {"config": lambda: model_gate.load_config(str(folder), option="--x"),
             "tokenizer": lambda: model_gate.load_tokenizer(str(folder), option="--x"),
             "processor": lambda: model_gate.load_processor(str(folder), option="--x"),
             "model": lambda: model_gate.load_model("AutoModelForCausalLM", str(folder), option="--x")}
    with pytest.raises(InputError, match="custom code"):
        calls[loader]()
    assert not marker.exists()


@pytest.mark.parametrize("loader", ["config", "tokenizer", "model"])
def test_transformers_itself_refuses_when_the_folder_check_is_bypassed(poisoned, monkeypatch, loader):
    """Defence in depth (a hub checkpoint is not inspected before download): trust_remote_code=False on every
    call and the prompt's time-out at 0 make transformers refuse, with no prompt, even with stdin answering."""
    folder, marker = poisoned
    monkeypatch.setattr(model_gate, "refuse_custom_code", lambda *a, **k: None)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("y\n" * 20))
    calls = {"config": lambda: model_gate.load_config(str(folder), option="--x"),
             "tokenizer": lambda: model_gate.load_tokenizer(str(folder), option="--x"),
             "model": lambda: model_gate.load_model("AutoModelForCausalLM", str(folder), option="--x")}
    with pytest.raises(InputError):
        calls[loader]()
    assert not marker.exists()


def test_gate_cannot_be_asked_for_remote_code_or_pickles(tmp_path):
    with pytest.raises(ValueError):
        model_gate.load_model("AutoModel", str(tmp_path), option="--x", trust_remote_code=True)
    with pytest.raises(ValueError):
        model_gate.load_model("AutoModel", str(tmp_path), option="--x", use_safetensors=False)


def test_judge_embedding_and_generation_refuse_checkpoint_code(small_study, poisoned, tmp_path):
    folder, marker = poisoned
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "prompts.csv").write_text("prompt_id,prompt\np1,Say hi\n", encoding="utf-8")
    runs = [
        run_cli("judge", small_study, "--judge", "llama-guard-3-8b", "--model-path", f"llama-guard-3-8b={folder}"),
        run_cli("flag", small_study, "--embedding-model", folder),
        run_cli("generate", prompts, "--model", folder, "--backend", "transformers", "--out", tmp_path / "gen"),
        run_cli("inspect-judge", "llama-guard-3-8b", "--model-path", folder),
    ]
    for done in runs:
        assert done.returncode == 2, (done.args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "custom code" in done.stderr, done.stderr
    assert not marker.exists()
    assert not (tmp_path / "gen").exists()


def test_adapter_folders_need_safetensors_and_no_code(tmp_path):
    adapter = tmp_path / "lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    (adapter / "adapter_model.bin").write_bytes(b"pickle")
    with pytest.raises(InputError, match="safetensors only"):
        model_gate.check_adapter_dir(str(adapter), option="--adapter")
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    (adapter / "adapter_config.json").write_text(json.dumps({"auto_map": {"AutoModel": "x.Y"}}), encoding="utf-8")
    with pytest.raises(InputError, match="custom code"):
        model_gate.check_adapter_dir(str(adapter), option="--adapter")


def test_no_loader_outside_the_gate():
    """Every from_pretrained of a tokenizer, config, processor or weights goes through judgekit.guards.model_gate."""
    offenders = []
    for path in (REPO / "judgekit").rglob("*.py"):
        if path.name == "model_gate.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if ".from_pretrained(" in line and "PeftModel" not in line:
                offenders.append(f"{path.relative_to(REPO)}:{number}")
    assert offenders == []


# -- loaded means loaded (issue #35) -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Real transformers architectures with random weights, built here: untied Qwen2, tied Llama."""
    from judgekit.testing.replicas import Shape, build_causal_lm, train_tokenizer

    tokenizer = train_tokenizer(bos=None, eos="<|im_end|>", chat_template="{{ messages[0]['content'] }}", vocab_size=300)
    shape = Shape(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, intermediate_size=16)
    root = tmp_path_factory.mktemp("tiny")
    return {"untied": build_causal_lm("Qwen2ForCausalLM", tokenizer, root / "qwen2", shape=shape),
            "tied": build_causal_lm("LlamaForCausalLM", tokenizer, root / "llama", shape=shape, tie_word_embeddings=True)}


def edited_copy(model: Path, target: Path, edit) -> Path:
    """``model`` copied with its safetensors tensors passed through ``edit`` (a dict -> dict function)."""
    import shutil

    from safetensors.numpy import load_file, save_file

    shutil.copytree(model, target)
    tensors = edit(load_file(str(target / "model.safetensors")))
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    return target


def test_a_complete_checkpoint_loads_and_tied_embeddings_are_allowed(tiny_models):
    from safetensors import safe_open

    with safe_open(str(tiny_models["tied"] / "model.safetensors"), "np") as stored:
        assert "lm_head.weight" not in stored.keys()  # tied: the head is the embedding, not stored twice
    for model in tiny_models.values():
        model_gate.load_model("AutoModelForCausalLM", str(model), option="--x")
    # an embedding model loaded with AutoModel from a causal LM: the unused lm_head is another task's head
    model_gate.load_model("AutoModel", str(tiny_models["untied"]), option="--x")


@pytest.mark.parametrize("tensor", ["model.norm.weight", "model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight"])
def test_a_missing_tensor_is_refused_naming_folder_and_tensor(tiny_models, tmp_path, tensor):
    folder = edited_copy(tiny_models["untied"], tmp_path / "m", lambda t: {k: v for k, v in t.items() if k != tensor})
    with pytest.raises(InputError) as caught:
        model_gate.load_model("AutoModelForCausalLM", str(folder), option="--x")
    assert str(folder) in str(caught.value) and tensor in str(caught.value)


def test_a_stray_tensor_in_the_model_namespace_is_refused(tiny_models, tmp_path):
    folder = edited_copy(tiny_models["untied"], tmp_path / "m",
                         lambda t: {**t, "model.layers.7.mlp.up_proj.weight": t["model.layers.0.mlp.up_proj.weight"]})
    with pytest.raises(InputError, match="model.layers.7.mlp.up_proj.weight"):
        model_gate.load_model("AutoModelForCausalLM", str(folder), option="--x")


def test_links_inside_the_folder_and_hub_snapshots_are_fine_links_out_are_not(tiny_models, tmp_path):
    import shutil

    snapshot = tmp_path / "models--org--m" / "snapshots" / "abc"
    blobs = tmp_path / "models--org--m" / "blobs"
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for file in tiny_models["untied"].iterdir():
        shutil.copy(file, blobs / file.name)
        (snapshot / file.name).symlink_to(Path("../../blobs") / file.name)
    model_gate.check_model_source(str(snapshot), option="--x")
    outside = tmp_path / "other"
    shutil.copytree(tiny_models["untied"], outside)
    (outside / "model.safetensors").unlink()
    (outside / "model.safetensors").symlink_to(tiny_models["untied"] / "model.safetensors")
    with pytest.raises(InputError, match="outside the model folder"):
        model_gate.check_model_source(str(outside), option="--x")


def test_safetensors_headers_are_checked_against_the_file(tmp_path):
    import struct

    (tmp_path / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(InputError, match="header"):
        model_gate.check_model_source(str(tmp_path), option="--x")
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    weights.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)  # 8 of the 16 bytes
    with pytest.raises(InputError, match="outside the file"):
        model_gate.check_model_source(str(tmp_path), option="--x")
    weights.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    model_gate.check_model_source(str(tmp_path), option="--x")
