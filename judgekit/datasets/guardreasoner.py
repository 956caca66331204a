"""GuardReasoner evaluation sets: gold response labels plus GuardReasoner 1B/3B/8B predictions.

``part="harm"`` (default) converts the response-harmfulness sets
(HarmBench-response, XSTest-Response harmful, SafeRLHF, BeaverTails);
``part="refusal"`` converts XSTest-Response refusal, where "unsafe" reads
*complied* and "safe" *refused*. Predictions are parsed from the final
``Answers:`` block of the reasoning text; one without a parsable answer is an
``unparseable`` judgment, never a guess.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pandas as pd

from judgekit.datasets.common import ConvertedStudy, judgment_row, metadata, read_json, read_jsonl
from judgekit.errors import InputError
from judgekit.store.schema import LabelSet

HARM_SETS = {
    "0_5_harmbench_response.json": ("harmbench-response", "HarmBenchResponse"),
    "0_6_xstest_response_harmful.json": ("xstest-response-harmful", "XSTestReponseHarmful"),
    "0_9_safe_rlhf.json": ("safe-rlhf", None),
    "0_A_beaver_tails.json": ("beavertails", None),
}
REFUSAL_SETS = {"0_7_xstest_response_refusal.json": ("xstest-response-refusal", "XSTestResponseRefusal")}
SIZES = ("1B", "3B", "8B")
_INPUT = re.compile(r"\AHuman user:\n(?P<prompt>.*?)\n\nAI assistant:\n(?P<response>.*)\Z", re.S)
_RESPONSE = re.compile(r"Response:\s*(harmful|unharmful)", re.I)
_COMPLETION = re.compile(r"Completion:\s*(refusal|compliance)", re.I)
GOLD = {"harmful": "unsafe", "unharmful": "safe", "compliance": "unsafe", "refusal": "safe"}


def _gold(output: str, part: str) -> str | None:
    text = output.strip().lower()
    if text in GOLD:
        return GOLD[text]
    found = (_RESPONSE if part == "harm" else _COMPLETION).findall(output)
    return GOLD.get(found[-1].lower()) if found else None


def _prediction(text: str, part: str) -> str | None:
    answers = text.rsplit("Answers:", 1)
    if len(answers) < 2:
        return None
    found = (_RESPONSE if part == "harm" else _COMPLETION).findall(answers[1])
    return GOLD.get(found[-1].lower()) if found else None


def convert(source: Path, *, part: Literal["harm", "refusal"] = "harm") -> ConvertedStudy:
    if part not in ("harm", "refusal"):
        raise InputError(f"part must be 'harm' or 'refusal', got {part!r}")
    sets = HARM_SETS if part == "harm" else REFUSAL_SETS
    responses, annotations, judgments = [], [], []
    for filename, (benchmark, prediction_dir) in sets.items():
        path = source / "benchmark" / filename
        if not path.exists():
            continue
        records = read_json(path)
        if not isinstance(records, list):
            raise InputError("expected a JSON list", file=path)
        ids = []
        for number, record in enumerate(records, start=1):
            match = _INPUT.match(str(record.get("input", "")).rstrip("\n") + "\n") if isinstance(record, dict) else None
            if match is None:
                raise InputError("input is not 'Human user:\\n…\\n\\nAI assistant:\\n…'", file=path, row=number, column="input")
            gold = _gold(str(record.get("output", "")), part)
            if gold is None:
                raise InputError(f"unknown gold label {record.get('output')!r}", file=path, row=number, column="output")
            item_id = f"{benchmark}-{number:05d}"
            ids.append((item_id, match["response"].rstrip("\n")))
            responses.append({"item_id": item_id, "prompt": match["prompt"], "response": match["response"].rstrip("\n"),
                              "benchmark": benchmark, "behavior_id": f"{benchmark}:{' '.join(match['prompt'].lower().split())[:200]}"})
            annotations.append({"item_id": item_id, "annotator_id": f"{benchmark}-gold", "label": gold})
        if prediction_dir is None:
            continue
        for size in SIZES:
            predictions_path = source / "test" / size / prediction_dir / "generated_predictions.jsonl"
            if not predictions_path.exists():
                continue
            predictions = read_jsonl(predictions_path)
            if len(predictions) != len(ids):
                raise InputError(f"{len(predictions)} predictions for {len(ids)} items", file=predictions_path)
            for number, ((item_id, response), prediction) in enumerate(zip(ids, predictions, strict=True), start=1):
                if response.strip()[:200] not in str(prediction.get("prompt", "")):
                    raise InputError("prediction does not belong to the item in the same position", file=predictions_path, row=number)
                text = str(prediction.get("predict", ""))
                judgments.append(judgment_row(item_id, f"guardreasoner-{size.lower()}", _prediction(text, part), text,
                                              spec=f"shipped:guardreasoner-{size}", detail="no parsable final 'Answers:' block"))
    if not responses:
        raise InputError("no GuardReasoner benchmark files found under benchmark/", file=source)
    label_note = "'unsafe' = harmful response" if part == "harm" else "'unsafe' = the model COMPLIED, 'safe' = it refused"
    return ConvertedStudy(
        pd.DataFrame(responses), pd.DataFrame(annotations), pd.DataFrame(judgments) if judgments else None,
        metadata(f"GuardReasoner evaluation sets ({part})",
                 f"Gold response labels of public benchmarks as shipped by GuardReasoner (Liu et al., 2025), with "
                 f"GuardReasoner 1B/3B/8B predictions parsed from their 'Answers:' block; {label_note}. Research use only.",
                 labels=LabelSet()),
    )
