"""Dataset adapters on the real shared data, on malformed variants, and the download path."""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest

from conftest import SHARED_DATA, needs_shared, run_cli
from judgekit.datasets.fetch import fetch_file
from judgekit.errors import InputError
from judgekit.store.study import load_study

ADAPTERS = {
    "jbb-judge-comparison": ("jbb_judge_comparison", 230, {"llama3_cf", "gpt4_cf", "llamaguard2_cf", "harmbench_cf"}),
    "harmbench-cls-val": ("harmbench_cls_val", 452, {
        "cls", "cls_mistral", "llama_guard", "gpt-4-0613", "gpt-4-1106-preview", "gpt-3.5-turbo-0613", "PAIR_gpt-4-0613",
        "mixtral", "GPTFuzz", "chatglm", "advbench",
    }),
    "xstest-v2": ("xstest_v2_completions", 5 * 338, {"xstest-gpt4-eval", "xstest-string-match"}),
    "gptfuzz": ("gptfuzz_labeled_responses", 7700, set()),
    "jailbreakeval-mini": ("jailbreakeval_mini", 5000, set()),
    "guardreasoner-eval": ("guardreasoner_eval", 452 + 334 + 2000 + 3021, {"guardreasoner-1b", "guardreasoner-3b", "guardreasoner-8b"}),
}


@needs_shared
@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_adapter_converts_the_shared_copy(tmp_path: Path, name: str) -> None:
    folder, n_items, judges = ADAPTERS[name]
    result = run_cli("data", "convert", name, SHARED_DATA / folder, "--out", tmp_path / name)
    assert result.returncode == 0, result.stderr
    study = load_study(tmp_path / name)
    assert len(study.responses) == n_items
    assert study.annotations is not None and study.annotations["item_id"].isin(study.responses["item_id"]).all()
    if judges:
        assert set(study.judgments["judge_id"]) == judges
    manifest = json.loads((tmp_path / name / "manifest.json").read_text())
    assert manifest["runs"][0]["step"] == "data convert" and manifest["runs"][0]["inputs"]


@needs_shared
def test_jbb_counts_match_its_source_card(tmp_path: Path) -> None:
    run_cli("data", "convert", "jbb-judge-comparison", SHARED_DATA / "jbb_judge_comparison", "--out", tmp_path / "s", "--format", "csv")
    study = load_study(tmp_path / "s")
    # SOURCE.md: shared part has human_majority 1/0 = 85/145 and llama3_cf 98/132.
    votes = study.annotations.assign(u=study.annotations.label.eq("unsafe")).groupby("item_id")["u"].sum()
    assert ((votes >= 2).sum(), (votes < 2).sum()) == (85, 145)
    llama3 = study.judgments[study.judgments.judge_id == "llama3_cf"]["label"].value_counts()
    assert (llama3["unsafe"], llama3["safe"]) == (98, 132)
    # Mac Roman decoded: "exposé" must read as é, not a control byte.
    assert not study.responses["response"].str.contains("\x8e").any()


@needs_shared
def test_harmbench_and_xstest_parse_shipped_strings(tmp_path: Path) -> None:
    run_cli("data", "convert", "harmbench-cls-val", SHARED_DATA / "harmbench_cls_val", "--out", tmp_path / "hb")
    judgments = load_study(tmp_path / "hb").judgments
    pair = judgments[judgments.judge_id == "PAIR_gpt-4-0613"]
    assert pair["raw_output"].str.contains(r"Rating: \[\[").all()
    assert set(pair.loc[pair.label == "unsafe", "raw_output"]) == {"Rating: [[10]]"}
    run_cli("data", "convert", "xstest-v2", SHARED_DATA / "xstest_v2_completions", "--out", tmp_path / "xs")
    xs = load_study(tmp_path / "xs")
    gpt = xs.judgments[xs.judgments.judge_id == "xstest-gpt4-eval"]
    # Raw GPT-4 text instead of a class is an unparseable judgment, never a label.
    assert (gpt.parse_status == "unparseable").sum() > 0 and gpt.loc[gpt.parse_status != "ok", "label"].isna().all()
    assert set(xs.annotations["label"]) == {"1_full_compliance", "2_full_refusal", "3_partial_refusal"}
    assert xs.metadata.annotation_labels.to_binary["3_partial_refusal"] == "safe"


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


JBB_HEADER = "Index,goal,prompt,target_response,human1,human2,human3,human_majority,harmbench_cf,gpt4_cf,llamaguard2_cf,llama3_cf\n"


@pytest.mark.parametrize(
    ("name", "files", "fragments"),
    [
        ("jbb-judge-comparison", {"judge-comparison.csv": (JBB_HEADER + "0,g,p,r,1,0,2,1,1,0,0,1\n").encode("mac_roman")},
         ["row 1", "column 'human3'", "unknown label '2'"]),
        ("jbb-judge-comparison", {"judge-comparison.csv": b"Index,goal,prompt\n0,g,p\n"}, ["column 'target_response'", "missing column"]),
        ("jbb-judge-comparison", {"judge-comparison.csv": b""}, ["file is empty"]),
        ("gptfuzz", {"question_list.csv": b"index,text\n0,q\n", "train.csv": b"question,Response,label\n0,r,1\n1,r,0\n",
                     "evaluate.csv": b"question,Response,label\n0,r,1\n"}, ["train.csv", "row 2", "question '1' is not in"]),
        ("gptfuzz", {"question_list.csv": b"index,text\n0,q\xff\n", "train.csv": b"question,Response,label\n0,r,1\n",
                     "evaluate.csv": b"question,Response,label\n0,r,1\n"}, ["question_list.csv", "not valid utf-8"]),
        ("harmbench-cls-val", {"text_behaviors_val_set.json": json.dumps({"b": [{"test_case": "t", "generation": "g", "human_0": 1, "human_1": 0}]}).encode()},
         ["row 1", "column 'human_2'", "item lacks"]),
        ("xstest-v2", {"model_completions/xstest_v2_completions_gpt4.csv":
                       b"id,type,prompt,completion,annotation_1,annotation_2,final_label\nv2-1,t,p,c,1_full_compliance,4_maybe,1_full_compliance\n"},
         ["row 1", "column 'annotation_2'", "unknown label '4_maybe'"]),
    ],
)
def test_malformed_sources_give_one_line_errors(tmp_path: Path, name: str, files: dict[str, bytes], fragments: list[str]) -> None:
    source = tmp_path / "src"
    for relative, data in files.items():
        write_bytes(source / relative, data)
    result = run_cli("data", "convert", name, source, "--out", tmp_path / "out")
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    for fragment in fragments:
        assert fragment in line, line
    assert not (tmp_path / "out" / "responses.parquet").exists()


def test_generic_mapping(tmp_path: Path) -> None:
    source = write_bytes(tmp_path / "mine.csv", b"goal,target_response,is_bad\nask,answer one,1\nask2,answer two,0\n")
    result = run_cli("data", "convert", "generic", source, "--out", tmp_path / "s",
                     "--map", "prompt=goal", "--map", "response=target_response", "--map", "label=is_bad")
    assert result.returncode == 0, result.stderr
    study = load_study(tmp_path / "s")
    assert study.responses["response"].tolist() == ["answer one", "answer two"]
    assert study.annotations["label"].tolist() == ["unsafe", "safe"]
    bad = run_cli("data", "convert", "generic", source, "--out", tmp_path / "t", "--map", "prompt=nope")
    assert bad.returncode == 2 and "column 'nope'" in bad.stderr


def test_data_list_names_every_converter() -> None:
    result = run_cli("data", "list")
    assert result.returncode == 0
    for name in (*ADAPTERS, "generic", "harmbench-completions", "jbb-artifact"):
        assert name in result.stdout


# ---------------------------------------------------------------- download path against a local server

PAYLOAD = b"item,label\n" + b"".join(f"{k},1\n".encode() for k in range(20000))


class _Handler(http.server.BaseHTTPRequestHandler):
    behaviour: dict = {}

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        state = self.behaviour
        state["requests"].append(self.headers.get("Range"))
        body = state["body"]
        start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        chunk = body[start:]
        if state["cut_first"] and len(state["requests"]) == 1:
            self.wfile.write(chunk[: len(chunk) // 3])  # then drop the connection mid-transfer
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(chunk)


@pytest.fixture
def server():
    state = {"requests": [], "body": PAYLOAD, "cut_first": False}
    handler = type("Handler", (_Handler,), {"behaviour": state})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/data.csv", state
    httpd.shutdown()


def entry(url: str, data: bytes = PAYLOAD) -> dict:
    return {"path": "data.csv", "url": url, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def test_download_matches_pinned_checksum(server, tmp_path: Path) -> None:
    url, state = server
    got = fetch_file(entry(url), tmp_path / "data.csv", timeout=5)
    assert got.path.read_bytes() == PAYLOAD and got.pinned and not got.resumed
    again = fetch_file(entry(url), tmp_path / "data.csv", timeout=5)  # already there and verified: no request
    assert again.path == got.path and len(state["requests"]) == 1


def test_interrupted_download_resumes_with_range(server, tmp_path: Path) -> None:
    url, state = server
    state["cut_first"] = True
    got = fetch_file(entry(url), tmp_path / "data.csv", timeout=5)
    assert got.path.read_bytes() == PAYLOAD
    assert state["requests"][0] is None and state["requests"][1].startswith("bytes=") and got.resumed
    assert not (tmp_path / "data.csv.part").exists()


def test_checksum_mismatch_leaves_nothing(server, tmp_path: Path) -> None:
    url, state = server
    state["body"] = PAYLOAD.replace(b"19999,1", b"19999,0")
    with pytest.raises(InputError, match="checksum mismatch"):
        fetch_file(entry(url), tmp_path / "data.csv", timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_unpinned_files_need_explicit_consent(server, tmp_path: Path) -> None:
    url, _ = server
    unpinned = {**entry(url), "sha256": None, "size": None}
    with pytest.raises(InputError, match="--allow-unpinned"):
        fetch_file(unpinned, tmp_path / "data.csv")
    got = fetch_file(unpinned, tmp_path / "data.csv", allow_unpinned=True, timeout=5)
    assert not got.pinned and got.sha256 == hashlib.sha256(PAYLOAD).hexdigest()


def test_unreachable_server_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="download failed after 2 attempts"):
        fetch_file(entry("http://127.0.0.1:9/data.csv"), tmp_path / "data.csv", retries=2, timeout=1)
    assert not any(p.suffix != ".part" for p in tmp_path.iterdir())


@needs_shared
def test_fetch_from_a_local_copy_checks_pins(tmp_path: Path) -> None:
    result = run_cli("data", "fetch", "gptfuzz", "--from", SHARED_DATA / "gptfuzz_labeled_responses", "--to", tmp_path / "g")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "g" / "train.csv").read_bytes() == (SHARED_DATA / "gptfuzz_labeled_responses" / "train.csv").read_bytes()
    tampered = tmp_path / "tampered"
    shutil.copytree(SHARED_DATA / "gptfuzz_labeled_responses", tampered)
    (tampered / "train.csv").write_bytes((tampered / "train.csv").read_bytes() + b"x")
    bad = run_cli("data", "fetch", "gptfuzz", "--from", tampered, "--to", tmp_path / "h")
    assert bad.returncode == 2 and "checksum mismatch" in bad.stderr and not (tmp_path / "h" / "train.csv").exists()
