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
