"""Prompt-only sets: safety benchmarks' prompts without responses, the input of ``judgekit generate``.

Each converter reads a benchmark's own file(s) and returns a ``prompts`` table
(:data:`judgekit.store.schema.PROMPTS`: ``prompt_id``, ``prompt``, ``benchmark``,
``category``, ``goal``, ``context``, ``behavior_id`` and the benchmark's own
extra columns). A *prompt study* is a directory holding that table and a
``study.json``; ``judgekit generate`` reads it (or a bare prompts table file).

Where a benchmark wraps its request (HarmBench contextual behaviours), the
prompt is built exactly as the benchmark's own direct-request baseline does;
the request itself stays in ``goal`` for judges that judge against it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from judgekit.datasets.common import metadata, read_csv_records, read_jsonl
from judgekit.errors import InputError
from judgekit.store.schema import SCHEMAS, TABLE_EXTENSIONS, StudyMetadata

PROMPT_TARGETS = ("prompt_id", "prompt", "benchmark", "category", "goal", "context", "behavior_id")
# HarmBench, baselines/direct_request/direct_request.py (centerforaisafety/HarmBench): context, a rule, the behaviour.
HARMBENCH_CONTEXT_FORMAT = "{context}\n\n---\n\n{behavior}"


@dataclass
class ConvertedPrompts:
    prompts: pd.DataFrame
    metadata: StudyMetadata
    notes: list[str] = field(default_factory=list)


def _file_in(source: Path, name: str) -> Path:
    """``source`` itself when it is a file, else ``source/name``."""
    return source / name if source.is_dir() else source


def _prompt_set(rows: list[dict[str, Any]], name: str, description: str, notes: list[str] | None = None) -> ConvertedPrompts:
    return ConvertedPrompts(pd.DataFrame(rows), metadata(name, description), [f"{len(rows)} prompts", *(notes or [])])


def convert_harmbench(source: Path) -> ConvertedPrompts:
    """``harmbench_behaviors_text_all.csv``: standard and contextual behaviours (copyright ones are left out:
    they are scored by hashing against the book text, not by a safety judge)."""
    path = _file_in(source, "harmbench_behaviors_text_all.csv")
    records = read_csv_records(path, ["Behavior", "FunctionalCategory", "SemanticCategory", "ContextString", "BehaviorID"])
    rows, skipped = [], 0
    for record in records:
        if record["FunctionalCategory"] == "copyright":
            skipped += 1
            continue
        context = record["ContextString"] or ""
        behaviour = record["Behavior"]
        rows.append({
            "prompt_id": record["BehaviorID"],
            "prompt": HARMBENCH_CONTEXT_FORMAT.format(context=context, behavior=behaviour) if context else behaviour,
            "benchmark": "harmbench", "category": record["SemanticCategory"], "goal": behaviour, "context": context,
            "behavior_id": record["BehaviorID"], "functional_category": record["FunctionalCategory"],
        })
    return _prompt_set(rows, "HarmBench text behaviours (prompts)",
                       "HarmBench (Mazeika et al., 2024) text behaviours, standard and contextual, as direct requests "
                       "(contextual: context, '---', behaviour). MIT.",
                       [f"{skipped} copyright behaviours left out (scored by hash matching, not by a safety judge)"])


def convert_xstest(source: Path) -> ConvertedPrompts:
    """``xstest_prompts.csv``: 250 safe prompts that look unsafe and 200 unsafe contrasts (``prompt_label``)."""
    path = _file_in(source, "xstest_prompts.csv")
    rows = [
        {"prompt_id": f"xstest-{r['id']}", "prompt": r["prompt"], "benchmark": "xstest", "category": r["type"],
         "goal": None, "prompt_label": r["label"], "focus": r.get("focus"), "note": r.get("note")}
        for r in read_csv_records(path, ["id", "prompt", "type", "label"])
    ]
    return _prompt_set(rows, "XSTest prompts", "XSTest (Röttger et al., 2024): safe prompts and unsafe contrast "
                       "prompts (prompt_label safe/unsafe); compliance on safe prompts is the wanted behaviour. CC-BY-4.0.")


def convert_advbench(source: Path) -> ConvertedPrompts:
    """``harmful_behaviors.csv`` (goal, target) of llm-attacks."""
    path = _file_in(source, "harmful_behaviors.csv")
    rows = [
        {"prompt_id": f"advbench-{n:03d}", "prompt": r["goal"], "benchmark": "advbench", "category": None,
         "goal": r["goal"], "target": r["target"]}
        for n, r in enumerate(read_csv_records(path, ["goal", "target"]))
    ]
    return _prompt_set(rows, "AdvBench harmful behaviours", "AdvBench (Zou et al., 2023) harmful behaviours. MIT.")


def convert_strongreject(source: Path) -> ConvertedPrompts:
    """``strongreject_dataset.csv`` (category, source, forbidden_prompt)."""
    path = _file_in(source, "strongreject_dataset.csv")
    rows = [
        {"prompt_id": f"strongreject-{n:03d}", "prompt": r["forbidden_prompt"], "benchmark": "strongreject",
         "category": r["category"], "goal": r["forbidden_prompt"], "source": r["source"]}
        for n, r in enumerate(read_csv_records(path, ["category", "source", "forbidden_prompt"]))
    ]
    return _prompt_set(rows, "StrongREJECT prompts", "StrongREJECT (Souly et al., 2024) forbidden prompts. MIT.")


def convert_sorry_bench(source: Path) -> ConvertedPrompts:
    """SORRY-Bench ``question.jsonl`` (question_id, category, turns, prompt_style): the base prompts."""
    path = _file_in(source, "question.jsonl")
    rows, other_styles = [], 0
    for number, record in enumerate(read_jsonl(path), start=1):
        for key in ("question_id", "category", "turns"):
            if key not in record:
                raise InputError("missing field", file=path, row=number, column=key)
        turns = record["turns"]
        if not isinstance(turns, list) or len(turns) != 1 or not isinstance(turns[0], str):
            raise InputError("expected a list holding one prompt string", file=path, row=number, column="turns")
        if record.get("prompt_style", "base") != "base":
            other_styles += 1
            continue
        rows.append({"prompt_id": f"sorry-bench-{record['question_id']}", "prompt": turns[0], "benchmark": "sorry-bench",
                     "category": str(record["category"]), "goal": turns[0]})
    if not rows:
        raise InputError("no base-style prompts (prompt_style 'base')", file=path)
    return _prompt_set(rows, "SORRY-Bench base prompts", "SORRY-Bench (Xie et al., 2024) base prompts, one per "
                       "question_id; linguistic mutations are left out. Gated on Hugging Face: see its terms.",
                       [f"{other_styles} prompts in other styles left out"] if other_styles else [])


JBB_PARTS = {"harmful": "harmful-behaviors.csv", "benign": "benign-behaviors.csv"}


def convert_jbb_behaviors(source: Path) -> ConvertedPrompts:
    """JBB-Behaviors ``harmful-behaviors.csv`` and/or ``benign-behaviors.csv`` (Index, Goal, Target, Behavior,
    Category, Source); ``prompt_label`` says which."""
    files = {part: source / name for part, name in JBB_PARTS.items()} if source.is_dir() else {
        next((p for p, n in JBB_PARTS.items() if n == source.name), "harmful"): source}
    present = {part: path for part, path in files.items() if path.exists()}
    if not present:
        raise InputError(f"expected {' or '.join(JBB_PARTS.values())}", file=source)
    rows = [
        {"prompt_id": f"jbb-{part}-{r['Index']}", "prompt": r["Goal"], "benchmark": "jailbreakbench",
         "category": r["Category"], "goal": r["Goal"], "behavior_id": f"jbb-{part}-{r['Behavior']}",
         "prompt_label": part, "target": r["Target"], "source": r["Source"]}
        for part, path in present.items()
        for r in read_csv_records(path, ["Index", "Goal", "Target", "Behavior", "Category", "Source"])
    ]
    return _prompt_set(rows, "JailbreakBench behaviours", "JBB-Behaviors (Chao et al., 2024): "
                       f"{' and '.join(present)} behaviours (prompt_label). MIT.")


def convert_user_prompts(source: Path, mapping: dict[str, str]) -> ConvertedPrompts:
    """Any CSV/JSONL with ``--map prompt=COL[,prompt_id=COL,...]``; unmapped columns are kept as they are."""
    mapping.setdefault("prompt", "prompt")
    suffix = source.suffix.lower()
    if suffix == ".csv":
        records: list[dict[str, Any]] = read_csv_records(source, list(mapping.values()))
    elif suffix in (".jsonl", ".json"):
        records = read_jsonl(source)
    else:
        raise InputError("a prompts file is .csv or .jsonl", file=source)
    renamed = {column: target for target, column in mapping.items()}
    rows = []
    for number, record in enumerate(records, start=1):
        missing = [column for column in mapping.values() if column not in record]
        if missing:
            raise InputError("missing field", file=source, row=number, column=missing[0])
        row = {renamed.get(key, key): value for key, value in record.items()}
        row.setdefault("prompt_id", f"{source.stem}-{number:06d}")
        row["prompt_id"] = str(row["prompt_id"])
        rows.append(row)
    return _prompt_set(rows, source.stem, f"Prompts from {source.name} with mapping {mapping}.")


def write_prompt_set(converted: ConvertedPrompts, out_dir: Path, *, table_format: str = ".parquet") -> Path:
    """Write the prompts table (validated first) and ``study.json`` into ``out_dir``; return the table's path."""
    from judgekit.store.io import conform_frame, write_table, write_text_atomic

    path = out_dir / f"prompts{table_format}"
    frame = conform_frame(converted.prompts, SCHEMAS["prompts"], path)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(frame, path, SCHEMAS["prompts"])
    write_text_atomic(out_dir / "study.json", json.dumps(converted.metadata.to_json(), indent=2, ensure_ascii=False) + "\n")
    return path


def prompts_table_path(source: str | Path) -> Path:
    """The prompts table of a prompt study directory, or ``source`` itself when it is a table file."""
    from judgekit.store.study import table_path

    source = Path(source)
    if source.is_file():
        return source
    if not source.is_dir():
        raise InputError("prompt set not found (expected a prompt study directory or a prompts table)", file=source)
    path = table_path(source, "prompts")
    if path is None:
        raise InputError(f"no prompts table (expected prompts{'|'.join(TABLE_EXTENSIONS)}); make one with "
                         "`judgekit data convert`", file=source)
    return path


def read_prompt_sets(sources: list[Path]) -> pd.DataFrame:
    """Read and validate one or more prompt sets into one table; a prompt_id in two sets is an error."""
    from judgekit.store.io import read_table

    frames, seen = [], {}
    for source in sources:
        path = prompts_table_path(source)
        frame = read_table(path, SCHEMAS["prompts"])
        for position, prompt_id in enumerate(frame["prompt_id"]):
            if prompt_id in seen:
                raise InputError(f"prompt_id {prompt_id!r} is also in {seen[prompt_id]}; prompt ids must be unique "
                                 "across the prompt sets of one study", file=path, row=position + 1, column="prompt_id")
            seen[prompt_id] = path
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
