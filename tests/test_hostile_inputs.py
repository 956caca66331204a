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
    bomb: bool = False  # run in a subprocess and measure its peak memory (at most PEAK_LIMIT_MB)
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
    "str.format attribute walk": "{{ '{0.__class__.__mro__[1].__subclasses__}'.format(messages) }}",
    "'x' * 10**8": "{{ 'x' * 10**8 }}{{ messages[0]['content'] }}",
    "deep recursion": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
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
                     "--max-new-tokens", "2", "--no-progress"], 2, stderr_has="chat template",
                    bomb=kind == "'x' * 10**8")
    build.needs_model = True  # type: ignore[attr-defined]
    return build



# -- issue #35: bombs, wide and deep files, random weights, folders that are not studies ----------------------------

HEADER = {"version": 2, "status": "success", "eval": {"task": "t", "model": "m", "dataset": {"sample_ids": [1]}}}


def deflated(head: bytes, filler: int, tail: bytes) -> tuple[bytes, int, int]:
    """(raw deflate stream, crc32, size) of ``head + b"x" * filler + tail``, made in well under a second: one
    fully flushed block of 1 MiB of x is self-contained, so the stream repeats its bytes instead of compressing
    hundreds of MB."""
    import zlib

    chunk = 1 << 20
    block_maker = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = block_maker.compress(b"x" * chunk) + block_maker.flush(zlib.Z_FULL_FLUSH)
    ends = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = [ends.compress(head) + ends.flush(zlib.Z_FULL_FLUSH), block * (filler // chunk)]
    rest = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream.append(rest.compress(b"x" * (filler % chunk) + tail) + rest.flush())
    crc = zlib.crc32(head)
    one_chunk = b"x" * chunk
    for _ in range(filler // chunk):
        crc = zlib.crc32(one_chunk, crc)
    crc = zlib.crc32(b"x" * (filler % chunk) + tail, crc)
    return b"".join(stream), crc, len(head) + filler + len(tail)


def sample(filler: int) -> tuple[bytes, int, int]:
    """A sample file whose completion is ``filler`` bytes of x."""
    return deflated(b'{"id": 1, "epoch": 1, "input": "hi", "scores": {}, "output": {"completion": "', filler, b'"}}')


def zstd_sample(filler: int) -> tuple[bytes, int, int]:
    """A sample file as Inspect writes it today: one zstandard member (zip method 93)."""
    import zlib

    import zstandard

    data = b'{"id": 1, "epoch": 1, "input": "hi", "scores": {}, "output": {"completion": "' + b"x" * filler + b'"}}'
    return zstandard.ZstdCompressor(level=1).compress(data), zlib.crc32(data), len(data)


def eval_zip(path: Path, members: dict[str, tuple[bytes, int, int] | bytes], *, aliases: int = 0,
             declare: dict[str, int] | None = None, method: int = 8) -> Path:
    """A deflated ``.eval`` written by hand: ``aliases`` more central-directory entries point at the last
    member's bytes (the audit's H1 trick); ``declare`` overwrites members' declared sizes (a member that lies)."""
    import struct
    import zlib

    local, directory = bytearray(), []
    for name, member in members.items():
        if isinstance(member, bytes):
            maker = zlib.compressobj(9, zlib.DEFLATED, -15)
            member = (maker.compress(member) + maker.flush(), zlib.crc32(member), len(member))
        data, crc, size = member
        size = (declare or {}).get(name, size)
        encoded = name.encode()
        fields = (0, method if name.startswith("samples/") else 8, 0, 0x21, crc, len(data), size, len(encoded))
        directory.append((fields, len(local)))
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, *fields, 0) + encoded + data
    (fields, offset) = directory[-1]
    directory += [((*fields[:-1], len(f"samples/{k + 2}_epoch_1.json")), offset) for k in range(aliases)]
    names = [*members, *(f"samples/{k + 2}_epoch_1.json" for k in range(aliases))]
    central = b"".join(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, *fields, 0, 0, 0, 0, 0, offset)
                       + name.encode() for (fields, offset), name in zip(directory, names, strict=True))
    path.write_bytes(bytes(local) + central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(names), len(names),
                                                          len(central), len(local), 0))
    return path


def eval_overlapping_entries(tmp: Path) -> Case:
    pytest.importorskip("zstandard")
    log = eval_zip(tmp / "h1.eval", {"header.json": json.dumps(HEADER).encode(),
                                     "samples/1_epoch_1.json": zstd_sample(100_000_000)}, aliases=20, method=93)
    return Case(["data", "import", "inspect", log, "--out", tmp / "s"], 2, stderr_has="overlaps", bomb=True)


def eval_members_over_limit(tmp: Path) -> Case:
    member = sample(300_000_000)
    members = {"header.json": json.dumps(HEADER).encode(), **{f"samples/{k}_epoch_1.json": member for k in (1, 2, 3)}}
    log = eval_zip(tmp / "h2.eval", members)
    return Case(["data", "import", "inspect", log, "--out", tmp / "s"], 2, stderr_has="JUDGEKIT_MAX_MEMBER_MB", bomb=True)


def eval_member_lies_about_size(tmp: Path) -> Case:
    log = eval_zip(tmp / "lie.eval", {"header.json": json.dumps(HEADER).encode(),
                                      "samples/1_epoch_1.json": sample(300_000_000)},
                   declare={"samples/1_epoch_1.json": 1000})
    # zipfile stops at the declared size and then finds the CRC wrong: the bytes beyond are never expanded
    return Case(["data", "import", "inspect", log, "--out", tmp / "s"], 2, stderr_has="samples/1_epoch_1.json", bomb=True)


def eval_total_over_limit(tmp: Path) -> Case:
    os.environ["JUDGEKIT_MAX_EXPANDED_MB"] = "1"  # the test restores the environment
    member = sample(400_000)
    members = {"header.json": json.dumps(HEADER).encode(), **{f"samples/{k}_epoch_1.json": member for k in (1, 2, 3)}}
    log = eval_zip(tmp / "total.eval", members)
    return Case(["data", "import", "inspect", log, "--out", tmp / "s"], 2, stderr_has="over the limit of 1 MiB")


def parquet_dictionary_bomb(tmp: Path) -> Case:
    """One 2 MB value repeated by 1,000 dictionary indices: 2 GB decoded from a file of a few KB."""
    s = tmp / "s"
    s.mkdir()
    rows = 1000
    r = pa.table({"item_id": pa.array([f"i{k}" for k in range(rows)]), "prompt": pa.array(["p"] * rows),
                  "response": pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array(["y" * 2_000_000])),
                  "model": pa.array(["m"] * rows)})
    pq.write_table(r, s / "responses.parquet", compression="zstd")
    return Case(["validate", s], 2, stderr_has="dictionary-encoded", bomb=True)


def parquet_deep_nesting(tmp: Path) -> Case:
    """Structs 80 deep (Arrow itself reads up to 100 schema levels; a list takes two, a struct one)."""
    s = tmp / "s"
    s.mkdir()
    deep = pa.array([1])
    for _ in range(80):
        deep = pa.StructArray.from_arrays([deep], ["x"])
    r = small_responses().iloc[:1]
    table = pa.Table.from_pandas(r, preserve_index=False).append_column("deep", deep)
    pq.write_table(table, s / "responses.parquet")
    return Case(["validate", s], 2, stderr_has="more than 64 deep")


def csv_million_columns(tmp: Path) -> Case:
    s = tmp / "s"
    s.mkdir()
    header = "item_id,prompt,response,model," + ",".join(f"c{k}" for k in range(1_000_000))
    (s / "responses.csv").write_text(header + "\n" + "i,p,r,m" + "," * 1_000_000 + "\n", encoding="utf-8")
    return Case(["validate", s], 2, stderr_has="1000004 columns, over the limit of 10000", bomb=True)


def jsonl_long_line(tmp: Path) -> Case:
    os.environ["JUDGEKIT_MAX_LINE_MB"] = "1"
    s = study(tmp / "s", annotations=False)
    (s / "responses.csv").unlink()
    lines = [json.dumps(row) for row in small_responses().to_dict("records")]
    lines[2] = json.dumps({**json.loads(lines[2]), "response": "z" * 2_000_000})
    (s / "responses.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Case(["validate", s], 2, stderr_has="line 3 is")


def empty_weights(tmp: Path) -> Case:
    from safetensors.numpy import save_file

    model = tmp / "lm"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "qwen2"}', encoding="utf-8")
    save_file({}, str(model / "model.safetensors"))
    return Case(["flag", study(tmp / "s"), "--fluency-model", model], 2, stderr_has="holds no tensors")


def missing_tensor(command: str) -> Callable:
    """A complete tiny model with one tensor taken out: refused by every command that loads weights."""
    def build(tmp: Path, *, model_dir: Path) -> Case:
        from safetensors.numpy import load_file, save_file

        model = tmp / "model"
        shutil.copytree(model_dir, model)
        tensors = load_file(str(model / "model.safetensors"))
        del tensors["model.norm.weight"]
        save_file(tensors, str(model / "model.safetensors"), metadata={"format": "pt"})
        s = study(tmp / "s")
        (tmp / "prompts").mkdir()
        (tmp / "prompts" / "prompts.csv").write_text("prompt_id,prompt\np1,hi\n", encoding="utf-8")
        argv = {"fluency": ["flag", s, "--fluency-model", model],
                "embedding": ["flag", s, "--embedding-model", model],
                "generate": ["generate", tmp / "prompts", "--model", model, "--backend", "transformers",
                             "--out", tmp / "gen", "--max-new-tokens", "2", "--no-progress"],
                "judge": ["judge", s, "--judge", "llama-guard-3-8b", "--model-path", f"llama-guard-3-8b={model}",
                          "--no-progress"]}[command]
        return Case(argv, 2, stderr_has="norm.weight")
    build.needs_model = True  # type: ignore[attr-defined]
    return build


def weights_link_to_urandom(tmp: Path) -> Case:
    model = tmp / "lm"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "qwen2"}', encoding="utf-8")
    (model / "model.safetensors").symlink_to("/dev/urandom")
    return Case(["flag", study(tmp / "s"), "--fluency-model", model], 2, stderr_has="outside the model folder")


def weights_header_2_62(tmp: Path) -> Case:
    import struct

    model = tmp / "lm"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "qwen2"}', encoding="utf-8")
    header = json.dumps({"w": {"dtype": "F32", "shape": [1 << 60], "data_offsets": [0, 1 << 62]}}).encode()
    (model / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    return Case(["flag", study(tmp / "s"), "--fluency-model", model], 2, stderr_has="outside the file")


def judge_not_a_study(tmp: Path) -> Case:
    photos = tmp / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"\xff\xd8\xff")
    (tmp / "link").symlink_to(photos)

    def no_lock() -> None:
        assert sorted(p.name for p in photos.iterdir()) == ["cat.jpg"]

    return Case(["judge", tmp / "link", "--judge", "keyword-gcg-13", "--no-progress"], 2, stderr_has="not a study",
                after=no_lock)


def judge_root(tmp: Path) -> Case:
    existed = Path("/", LOCK_NAME).exists()

    def no_lock_at_root() -> None:
        assert Path("/", LOCK_NAME).exists() == existed

    return Case(["judge", "/", "--judge", "keyword-gcg-13", "--no-progress"], 2, stderr_has="file-system root",
                after=no_lock_at_root)


def flag_proc_self(tmp: Path) -> Case:
    return Case(["flag", "/proc/self"], 2, stderr_has="/proc/self")


def datasets_folder(tmp: Path) -> Path:
    import datasets

    datasets.disable_progress_bars()
    folder = tmp / "ds"
    datasets.Dataset.from_dict({"p": ["a", "b"], "r": ["x", "y"]}).save_to_disk(str(folder))
    return folder


def hf_import(folder: Path, tmp: Path) -> list:
    return ["data", "import", "hf", folder, "--map", "prompt=p,response=r", "--model", "m", "--out", tmp / "s"]


def truncated_arrow(tmp: Path) -> Case:
    folder = datasets_folder(tmp)
    arrow = next(folder.glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:200])
    return Case(hf_import(folder, tmp), 2, stderr_has=str(folder))


def names_file_feature(tmp: Path) -> Case:
    folder = datasets_folder(tmp)
    (tmp / "secret.txt").write_text("a\nb\n", encoding="utf-8")
    info = json.loads((folder / "dataset_info.json").read_text(encoding="utf-8"))
    info["features"]["r"] = {"_type": "ClassLabel", "names_file": str(tmp / "secret.txt")}
    (folder / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return Case(hf_import(folder, tmp), 2, stderr_has="names_file")


def state_json_outside(tmp: Path) -> Case:
    folder = datasets_folder(tmp)
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    arrow = next(folder.glob("*.arrow"))
    shutil.copy(arrow, elsewhere / arrow.name)
    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    state["_data_files"] = [{"filename": f"../elsewhere/{arrow.name}"}]
    (folder / "state.json").write_text(json.dumps(state), encoding="utf-8")
    return Case(hf_import(folder, tmp), 2, stderr_has="outside the datasets folder")


def auto_map_in_text_config(tmp: Path) -> Case:
    model = tmp / "lm"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "llava", "text_config": {
        "model_type": "llama", "auto_map": {"AutoConfig": "evil.Config"}}}), encoding="utf-8")
    return Case(["flag", study(tmp / "s"), "--fluency-model", model], 2, stderr_has="text_config.auto_map")


def stress_no_words(tmp: Path) -> Case:
    r = small_responses()
    r["response"] = ["123", "!!!", "42 42", "?", "", "..."]
    s = study(tmp / "s", r, annotations=False)
    return Case(["stress", s, "--judge", "keyword-gcg-13", "--out", tmp / "out", "--no-progress"], 2,
                stderr_has="alphabetic word")


def toml_pointing_at(target: str) -> Callable[[Path], Case]:
    """A run file whose study, report or prompts point into a foreign folder, a file or /proc."""
    def build(tmp: Path) -> Case:
        foreign = tmp / "papers"
        foreign.mkdir()
        (foreign / "draft.tex").write_text("mine", encoding="utf-8")
        config = run_config(tmp, "")
        text = config.read_text(encoding="utf-8")
        text = {"out foreign": text.replace('out = "s"', f'out = "{foreign}"'),
                "out file": text.replace('out = "s"', f'out = "{foreign / "draft.tex"}"'),
                "out /proc": text.replace('out = "s"', 'out = "/proc/judgekit-study"'),
                "report foreign": text.replace('report = "r"', f'report = "{foreign}"'),
                "prompts /proc": text.replace('prompts = ["prompts"]', 'prompts = ["/proc/self/status"]')}[target]
        config.write_text(text, encoding="utf-8")
        expected = {"out foreign": "neither a study nor empty", "out file": "not a directory",
                    "out /proc": "not writable", "report foreign": "not a judgekit output",
                    "prompts /proc": "/proc/self/status"}[target]
        return Case(["run", config], 2, stderr_has=expected)
    return build


def kill_during_merge(tmp: Path) -> Case:
    """A judge killed (SIGKILL) at some point of its run, then a judge and a flag at once: both finish, the study
    reads back, and the killed run's temporaries are gone."""
    import signal
    import time

    s = study(tmp / "s")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    victim = subprocess.Popen([sys.executable, "-m", "judgekit.cli", "judge", str(s), "--judge", "keyword-gcg-13",
                               "--no-progress"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and victim.poll() is None and not any(s.glob(".*.tmp")) \
            and not (s / "manifest.json").exists():
        time.sleep(0.005)
    if victim.poll() is None:
        victim.send_signal(signal.SIGKILL)
    victim.wait()
    other = subprocess.Popen([sys.executable, "-m", "judgekit.cli", "flag", str(s)], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def both_committed() -> None:
        _, err = other.communicate(timeout=120)
        assert other.returncode == 0, err
        from judgekit.store.study import load_study

        loaded = load_study(s)
        assert loaded.judgments is not None and loaded.flags is not None
        assert not list(s.glob(".*.tmp"))

    return Case(["judge", s, "--judge", "keyword-gcg-13", "--judge", "keyword-gcg-29", "--no-progress"], 0,
                may_change=[s], after=both_committed)

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
    "H1 .eval entries sharing one member": eval_overlapping_entries,
    "H2 .eval members of 300 MB": eval_members_over_limit,
    ".eval member larger than declared": eval_member_lies_about_size,
    ".eval total over JUDGEKIT_MAX_EXPANDED_MB": eval_total_over_limit,
    "parquet dictionary bomb": parquet_dictionary_bomb,
    "parquet nested 100 deep": parquet_deep_nesting,
    "H3 CSV of 10^6 columns": csv_million_columns,
    "JSONL line over JUDGEKIT_MAX_LINE_MB": jsonl_long_line,
    "H4 safetensors without tensors": empty_weights,
    **{f"H4 missing tensor: {command}": missing_tensor(command) for command in ("fluency", "embedding", "generate", "judge")},
    "L1 judge on a link to a photos folder": judge_not_a_study,
    "L1 judge /": judge_root,
    "L2 flag /proc/self": flag_proc_self,
    "L3 truncated .arrow": truncated_arrow,
    "L4 ClassLabel names_file": names_file_feature,
    "L5 auto_map in text_config": auto_map_in_text_config,
    "L6 safetensors header of 2^62 bytes": weights_header_2_62,
    "L7 stress without alphabetic words": stress_no_words,
    "L8 model.safetensors -> /dev/urandom": weights_link_to_urandom,
    "L9 state.json naming ../elsewhere": state_json_outside,
    **{f"run TOML {target}": toml_pointing_at(target) for target in ("out foreign", "out file", "out /proc",
                                                                    "report foreign", "prompts /proc")},
    "judge + flag after a kill -9": kill_during_merge,
}


PEAK_LIMIT_MB = 1024
# One warm process (judgekit, pandas and pyarrow imported) forks a child per bomb and reports the child's own peak
# resident memory (os.wait4's ru_maxrss, KiB on Linux): a measurement per case without an interpreter start per case.
FORK_SERVER = """
import json, os, resource, sys
import pandas, pyarrow, pyarrow.parquet
from judgekit.cli import main

cap = int(sys.argv[1])  # address-space cap of each child (0: none), so that a bomb of older code cannot take the machine

for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        if cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        os.environ.clear()
        os.environ.update(request["env"])
        os.dup2(os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        sys.argv = ["judgekit", *request["argv"]]
        try:
            code = main(request["argv"])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 0
        sys.stderr.flush()
        os._exit(code)
    _, status, usage = os.wait4(pid, 0)
    print(json.dumps({"code": os.waitstatus_to_exitcode(status), "peak_kib": usage.ru_maxrss}), flush=True)
"""


class ForkServer:
    """The judgekit of ``root`` in a warm process; :meth:`run` runs one command in a fresh fork of it."""

    def __init__(self, root: Path = REPO, *, address_cap_bytes: int = 0) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", FORK_SERVER, str(address_cap_bytes)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root,
                                        env={**os.environ, "PYTHONPATH": str(root)})

    def run(self, argv: list, stderr_file: Path) -> tuple[subprocess.CompletedProcess, float]:
        request = {"argv": list(map(str, argv)), "env": dict(os.environ), "stderr": str(stderr_file)}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        stderr = stderr_file.read_text(encoding="utf-8")
        stderr_file.unlink()
        return subprocess.CompletedProcess(argv, answer["code"], "", stderr), answer["peak_kib"] / 1024

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def fork_server():
    server = ForkServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def tiny_chat_model(tmp_path_factory) -> Path:
    from judgekit.testing.replicas import Shape, build_causal_lm, train_tokenizer

    tokenizer = train_tokenizer(bos=None, eos="<|im_end|>", chat_template="{{ messages[0]['content'] }}", vocab_size=300)
    shape = Shape(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, intermediate_size=16)
    return build_causal_lm("Qwen2ForCausalLM", tokenizer, tmp_path_factory.mktemp("chat") / "model", shape=shape)


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input(name: str, tmp_path: Path, monkeypatch, request) -> None:
    monkeypatch.setenv("JUDGEKIT_TEMPLATE_TIMEOUT_S", "0.5")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a model name that is no folder fails at once, not after retries
    for variable in ("JUDGEKIT_MAX_EXPANDED_MB", "JUDGEKIT_MAX_LINE_MB"):  # cases set them; undone after each
        # set first, so that monkeypatch records the variable's prior state (absent) and restores it: a bare
        # delenv of an absent variable records nothing, and a case's 1 MiB limit leaked into later tests
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)
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
    if case.bomb:
        done, peak_mb = request.getfixturevalue("fork_server").run(case.argv, tmp_path / "stderr.txt")
        print(f"{name}: peak {peak_mb:.0f} MB, exit {done.returncode}: {done.stderr.strip()[-150:]}")
        assert peak_mb <= PEAK_LIMIT_MB, f"{name} peaked at {peak_mb:.0f} MB"
    elif case.in_process:
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
