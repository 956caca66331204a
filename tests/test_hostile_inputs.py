"""A corpus of hostile and accidental inputs (issue #23): every case exits 0 or 2, a failure is exactly one
line on stderr, nothing is half-written, nothing outside --out is touched, and no checkpoint code runs.

Each case builds its own little world under ``tmp_path`` and names the command to run and the paths it may
change. Most run the CLI in this process (fast); a few run it as a user would, in a subprocess with stdin
answering "y" to any question, to check what only a process shows (exit code, the whole of stderr, prompts).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from judgekit.store.locking import LOCK_NAME, WORK_LOCK_PREFIX
from tests.conftest import REPO, run_cli, small_annotations, small_responses

# Lock files hold nothing: the study lock, and the work locks a step takes while it computes without the study lock.
IGNORED = {LOCK_NAME}


@dataclass
class Case:
    argv: list[str]
    expect: int | None = None  # 0 or 2; None: either
    may_change: list[Path] = field(default_factory=list)  # paths (folders or files) a success may write
    in_process: bool = True
    stderr_has: str = ""
    after: Callable[[], None] | None = None  # further checks


def study(folder: Path, responses: pd.DataFrame | None = None, *, annotations: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (responses if responses is not None else small_responses()).to_csv(folder / "responses.csv", index=False)
    if annotations:
        small_annotations().to_csv(folder / "annotations.csv", index=False)
    return folder


def snapshot(root: Path) -> dict[str, str]:
    state = {}
    for path in sorted(root.rglob("*")):
        if path.name in IGNORED or path.name.startswith(WORK_LOCK_PREFIX) or any(part.startswith(".") and "staging" in part for part in path.parts):
            continue
        key = str(path.relative_to(root))
        if path.is_symlink():
            state[key] = "link:" + os.readlink(path)
        elif path.is_file():
            state[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            state[key] = "dir"
    return state


def recorded_failure(root: Path, key: str, before: dict[str, str]) -> bool:
    """A study manifest whose only change is a run recorded as failed (the step's provenance, not a half-write)."""
    path = root / key
    if path.name != "manifest.json" or not path.is_file():
        return False
    runs = json.loads(path.read_text(encoding="utf-8")).get("runs", [])
    return bool(runs) and runs[-1].get("status") == "failed"


# -- the cases ---------------------------------------------------------------------------------------------------

def parquet_list_cell(tmp: Path) -> Case:
    s = study(tmp / "s", annotations=False)
    a = small_annotations()
    table = pa.Table.from_pandas(a, preserve_index=False)
    table = table.drop(["label"]).append_column("label", pa.array([["safe"]] * len(a)))
    pq.write_table(table, s / "annotations.parquet")
    return Case(["validate", s], 2, stderr_has="column 'label'")


def parquet_struct_cell(tmp: Path) -> Case:
    s = tmp / "s"
    s.mkdir()
    r = small_responses()
    table = pa.Table.from_pandas(r, preserve_index=False).drop(["prompt"])
    pq.write_table(table.append_column("prompt", pa.array([{"text": "hi"}] * len(r))), s / "responses.parquet")
    return Case(["judge", s, "--judge", "keyword-gcg-13", "--no-progress"], 2, stderr_has="column 'prompt'")


def deep_json_raw_output(tmp: Path) -> Case:
    s = study(tmp / "s")
    deep = "[" * 100_000 + "]" * 100_000
    lines = [f'{{"item_id": "{i}", "judge_id": "j", "label": "safe", "parse_status": "ok", "raw_output": {deep}, '
             f'"judge_spec_hash": "h"}}' for i in small_responses()["item_id"]]
    (s / "judgments.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Case(["validate", s], 2, stderr_has="judgments.jsonl: row 1")


def deep_study_json(tmp: Path) -> Case:
    s = study(tmp / "s")
    (s / "study.json").write_text('{"name": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    return Case(["stats", s, "--out", tmp / "out", "--n-boot", "20", "--no-progress"], 2, stderr_has="study.json")


def nul_in_cells(tmp: Path) -> Case:
    r = small_responses()
    r.loc[1, "response"] = "Sure\x00, here is how: [PLACEHOLDER]."
    r.loc[2, "prompt"] = "\x00"
    s = study(tmp / "s", r)
    return Case(["judge", s, "--judge", "keyword-gcg-13", "--no-progress"], may_change=[s])


def nfc_nfd_ids(tmp: Path) -> Case:
    r = small_responses()
    r.loc[0, "item_id"] = unicodedata.normalize("NFC", "café")
    r.loc[1, "item_id"] = unicodedata.normalize("NFD", "café")
    s = study(tmp / "s", r, annotations=False)
    return Case(["judge", s, "--judge", "keyword-gcg-13", "--no-progress"], may_change=[s])


def symlinked_table(tmp: Path) -> Case:
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    small_responses().to_csv(elsewhere / "real.csv", index=False)
    s = tmp / "s"
    s.mkdir()
    (s / "responses.csv").symlink_to(elsewhere / "real.csv")

    def still_a_link() -> None:
        assert (s / "responses.csv").is_symlink()

    return Case(["judge", s, "--judge", "keyword-gcg-13", "--no-progress"], 0, may_change=[s], after=still_a_link)


def huge_cell(tmp: Path) -> Case:
    r = small_responses()
    r.loc[0, "response"] = "I cannot help with that. " * 80_000  # 2 MB in one cell
    s = study(tmp / "s", r)
    return Case(["judge", s, "--judge", "keyword-gcg-13", "--no-progress"], 0, may_change=[s])


def run_config(tmp: Path, body: str) -> Path:
    (tmp / "prompts").mkdir()
    (tmp / "prompts" / "prompts.csv").write_text("prompt_id,prompt\np1,hi\n", encoding="utf-8")
    config = tmp / "c.toml"
    config.write_text('[study]\nout = "s"\nreport = "r"\nprompts = ["prompts"]\n[[models]]\nmodel = "m"\n'
                      '[judge]\njudges = ["keyword-gcg-13"]\n' + body, encoding="utf-8")
    return config


def toml_samples_text(tmp: Path) -> Case:
    return Case(["run", run_config(tmp, '[generation]\nsamples = "two"\n')], 2, stderr_has="samples must be an integer")


def toml_negative_n_boot(tmp: Path) -> Case:
    return Case(["run", run_config(tmp, "[stats]\nn_boot = -5\n")], 2, stderr_has="n_boot must be >= 1")


def toml_out_far_above(tmp: Path) -> Case:
    config = run_config(tmp, "")
    config.write_text(config.read_text(encoding="utf-8").replace('out = "s"', 'out = "' + "../" * 30 + '"'),
                      encoding="utf-8")
    return Case(["run", config], 2, stderr_has="[study] out")


def judged(tmp: Path) -> Path:
    s = study(tmp / "s")
    assert run_cli("judge", s, "--judge", "keyword-gcg-13", "--no-progress").returncode == 0
    return s


def out_root(tmp: Path) -> Case:
    s = judged(tmp)
    listing = sorted(os.listdir("/"))

    def root_untouched() -> None:
        assert sorted(os.listdir("/")) == listing

    return Case(["stats", s, "--out", "/", "--n-boot", "20", "--no-progress"], 2, in_process=False,
                stderr_has="file-system root", after=root_untouched)


def out_home(tmp: Path) -> Case:
    s = judged(tmp)
    return Case(["stats", s, "--out", Path.home(), "--n-boot", "20", "--no-progress", "--force"], 2,
                stderr_has="home folder")


def out_study_parent(tmp: Path) -> Case:
    s = judged(tmp)
    return Case(["stats", s, "--out", tmp, "--n-boot", "20", "--no-progress", "--force"], 2, stderr_has="--out")


def out_foreign_folder(tmp: Path) -> Case:
    s = judged(tmp)
    (tmp / "papers").mkdir()
    (tmp / "papers" / "draft.tex").write_text("mine", encoding="utf-8")
    return Case(["report", s, "--out", tmp / "papers", "--n-boot", "20"], 2, stderr_has="not a judgekit output")


def out_unwritable(tmp: Path) -> Case:
    s = judged(tmp)
    return Case(["stats", s, "--out", "/proc/judgekit-out", "--n-boot", "20", "--no-progress"], 2, stderr_has="--out")


def lineage_cycle(tmp: Path) -> Case:
    r = small_responses().assign(base_model=["ft", "ft", "ft", "base", "base", "base"], finetune_goal="coding",
                                 model=["base"] * 3 + ["ft"] * 3)
    s = study(tmp / "s", r)
    return Case(["stats", s, "--out", tmp / "out", "--n-boot", "20", "--no-progress"], 2, stderr_has="lineage cycle")


def finetune_of_itself(tmp: Path) -> Case:
    r = small_responses().assign(base_model=["base"] * 3 + ["ft"] * 3, finetune_goal=[None] * 3 + ["coding"] * 3)
    s = study(tmp / "s", r)
    return Case(["validate", s], 2, stderr_has="of itself")


def semicolon_labels(tmp: Path) -> Case:
    s = study(tmp / "s")
    (tmp / "labels.csv").write_text("item_id;annotator_id;label\na1;h9;safe\na2;h9;unsafe, I think\n", encoding="utf-8")
    return Case(["data", "import-labels", s, tmp / "labels.csv"], 2, stderr_has="separated by semicolons")


def map_with_commas(tmp: Path) -> Case:
    (tmp / "mine.csv").write_text("id,text\n1,hello\n2,\"hi, you\"\n", encoding="utf-8")
    return Case(["data", "convert", "prompts", tmp / "mine.csv", "--map", "prompt=text,prompt_id=id", "--out",
                 tmp / "p"], 0, may_change=[tmp / "p"])


def spec_asking_for_remote_code(tmp: Path) -> Case:
    from judgekit.judges.catalog import load_preset

    spec = load_preset("llama-guard-3-8b")
    spec["model"]["trust_remote_code"] = True
    (tmp / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    s = study(tmp / "s")
    return Case(["judge", s, "--judge", tmp / "spec.json", "--no-progress"], 2, stderr_has="never runs code")


def pickled_fluency_model(tmp: Path) -> Case:
    model = tmp / "lm"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    (model / "pytorch_model.bin").write_bytes(b"\x80\x04 not a real pickle")
    s = study(tmp / "s")
    return Case(["flag", s, "--fluency-model", model], 2, stderr_has="safetensors only")


def auto_map_fluency_model(tmp: Path) -> Case:
    from tests.test_model_gate import poisoned_checkpoint

    folder, marker = poisoned_checkpoint(tmp / "evil")
    s = study(tmp / "s")

    def no_code_ran() -> None:
        assert not marker.exists()

    return Case(["flag", s, "--fluency-model", folder], 2, in_process=False, stderr_has="custom code", after=no_code_ran)


TEMPLATES = {
    "include": "{% include 'other.jinja' %}{{ messages[0]['content'] }}",
    "sandbox": "{{ [].append(1) }}{{ messages[0]['content'] }}",
    "hang": ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
             "{{ messages[0]['content'] }}"),
    "raise": "{{ raise_exception('no') }}",
}


def template_case(kind: str) -> Callable[[Path], Case]:
    def build(tmp: Path, *, model_dir: Path) -> Case:
        from judgekit.guards.model_gate import load_tokenizer

        model = tmp / "model"
        shutil.copytree(model_dir, model)
        tokenizer = load_tokenizer(str(model), option="test")
        tokenizer.chat_template = TEMPLATES[kind]
        tokenizer.save_pretrained(model)
        (tmp / "prompts").mkdir()
        (tmp / "prompts" / "prompts.csv").write_text("prompt_id,prompt\np1,hi\n", encoding="utf-8")
        return Case(["generate", tmp / "prompts", "--model", model, "--backend", "transformers", "--out", tmp / "ft",
                     "--max-new-tokens", "2", "--no-progress"], 2, stderr_has="chat template")
    build.needs_model = True  # type: ignore[attr-defined]
    return build


CASES: dict[str, Callable] = {
    "parquet list cell": parquet_list_cell,
    "parquet struct cell": parquet_struct_cell,
    "100k-deep JSON raw_output": deep_json_raw_output,
    "100k-deep study.json": deep_study_json,
    "NUL in cells": nul_in_cells,
    "NFC and NFD ids": nfc_nfd_ids,
    "symlinked table": symlinked_table,
    "2 MB cell": huge_cell,
    "TOML samples = \"two\"": toml_samples_text,
    "TOML n_boot = -5": toml_negative_n_boot,
    "TOML out = ../../..": toml_out_far_above,
    "--out /": out_root,
    "--out home (--force)": out_home,
    "--out study parent (--force)": out_study_parent,
    "--out foreign folder": out_foreign_folder,
    "--out unwritable": out_unwritable,
    "lineage cycle": lineage_cycle,
    "fine-tune of itself": finetune_of_itself,
    "semicolon label file": semicolon_labels,
    "--map a=b,c=d": map_with_commas,
    "spec asking for remote code": spec_asking_for_remote_code,
    "pickled fluency model": pickled_fluency_model,
    "auto_map fluency model": auto_map_fluency_model,
    **{f"template {kind}": template_case(kind) for kind in TEMPLATES},
}


@pytest.fixture(scope="module")
def tiny_chat_model(tmp_path_factory) -> Path:
    from judgekit.testing.replicas import Shape, build_causal_lm, train_tokenizer

    tokenizer = train_tokenizer(bos=None, eos="<|im_end|>", chat_template="{{ messages[0]['content'] }}", vocab_size=300)
    shape = Shape(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, intermediate_size=16)
    return build_causal_lm("Qwen2ForCausalLM", tokenizer, tmp_path_factory.mktemp("chat") / "model", shape=shape)


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input(name: str, tmp_path: Path, monkeypatch, request) -> None:
    monkeypatch.setenv("JUDGEKIT_TEMPLATE_TIMEOUT_S", "0.5")
    process_env = {**os.environ, "PYTHONPATH": str(REPO)}
    import matplotlib

    matplotlib.get_cachedir()  # matplotlib's own font cache goes to the real home folder, before HOME moves
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine", encoding="utf-8")
    monkeypatch.setenv("HOME", str(home))  # in this process: a home folder to protect
    build = CASES[name]
    world = tmp_path / "world"
    world.mkdir()
    case = (build(world, model_dir=request.getfixturevalue("tiny_chat_model")) if getattr(build, "needs_model", False)
            else build(world))
    before = snapshot(tmp_path)
    if case.in_process:
        done = run_cli(*case.argv)
    else:
        done = subprocess.run([sys.executable, "-m", "judgekit.cli", *map(str, case.argv)], input="y\n" * 20,
                              capture_output=True, text=True, timeout=120, cwd=REPO, env=process_env)
        assert "Do you wish to run the custom code" not in done.stdout + done.stderr
    assert done.returncode in (0, 2), done.stderr
    if case.expect is not None:
        assert done.returncode == case.expect, done.stderr
    if done.returncode == 2:
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("judgekit: error: "), done.stderr
        assert case.stderr_has in done.stderr, done.stderr
    after = snapshot(tmp_path)
    allowed = [str(p.relative_to(tmp_path)) for p in case.may_change] if done.returncode == 0 else []
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    unexpected = sorted(k for k in changed if not any(k == a or k.startswith(a + os.sep) for a in allowed)
                        and not recorded_failure(tmp_path, k, before))
    assert unexpected == [], f"touched outside what {name!r} may write: {unexpected[:5]}"
    if case.after is not None:
        case.after()
