"""The tidy data model: one schema per table of a study directory.

A *study directory* holds up to four tables, each stored as ``<name>.parquet``,
``<name>.csv`` or ``<name>.jsonl`` (the extension picks the format), plus an
optional ``study.json`` with study metadata and the declared human label set.

========== ==================================================================
table      one row per
========== ==================================================================
responses  (prompt, response) pair to be judged; key ``item_id``
annotations human label; key (``item_id``, ``annotator_id``)
judgments  automated verdict; key (``item_id``, ``judge_id``)
flags      incoherence-detector result; key (``item_id``, ``detector``)
========== ==================================================================

Column kinds and their in-memory types:

``id``        non-empty string (object dtype)
``text``      string, may be empty, never null (object dtype)
``category``  non-empty string or null; an empty CSV cell reads as null
``float``     float64, null stored as NaN in memory; NaN/inf literals rejected
``int``       pandas ``Int64`` (nullable integer)
``bool``      bool; CSV accepts ``true``/``false``/``1``/``0``
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from judgekit.errors import InputError

ColumnKind = Literal["id", "text", "category", "float", "int", "bool"]

BINARY_LABELS = ("unsafe", "safe")
PARSE_STATUSES = ("ok", "unparseable", "refused_to_judge", "error", "skipped")
TABLE_NAMES = ("responses", "annotations", "judgments", "flags")
TABLE_EXTENSIONS = (".parquet", ".csv", ".jsonl")
STUDY_METADATA_FILE = "study.json"


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind
    doc: str
    required: bool = True
    nullable: bool = False
    allowed: tuple[str, ...] | None = None
    bounds: tuple[float, float] | None = None


@dataclass(frozen=True)
class TableSchema:
    """Columns, key and cross-column rules of one table.

    Each rule takes the typed frame and returns ``(row position, column,
    message)`` for the first violating row, or None.
    """

    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    doc: str
    rules: tuple = ()

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


RESPONSES = TableSchema(
    name="responses",
    key=("item_id",),
    doc="One (prompt, response) pair per row. Extra columns are kept as attributes.",
    columns=(
        Column("item_id", "id", "Unique identifier of the pair."),
        Column("prompt", "text", "The prompt sent to the model (the request to judge against)."),
        Column("response", "text", "The model's response; may be empty."),
        Column("model", "category", "Model that produced the response.", required=False, nullable=True),
        Column(
            "base_model",
            "category",
            "Model this one was fine-tuned from; equal to `model` (or empty) for a base model.",
            required=False,
            nullable=True,
        ),
        Column(
            "finetune_goal",
            "category",
            "Capability goal of the fine-tune (e.g. coding); empty for a base model.",
            required=False,
            nullable=True,
        ),
        Column(
            "goal",
            "category",
            "The underlying request when `prompt` wraps it (a jailbreak); judges that judge against the request use it.",
            required=False,
            nullable=True,
        ),
        Column(
            "context",
            "text",
            "Context shown to contextual judges (HarmBench contextual behaviours); empty when none.",
            required=False,
            nullable=True,
        ),
        Column("benchmark", "category", "Safety benchmark the prompt comes from.", required=False, nullable=True),
        Column("category", "category", "Harm category of the prompt.", required=False, nullable=True),
        Column(
            "behavior_id",
            "category",
            "Cluster for resampling (responses to one behaviour); defaults to the prompt.",
            required=False,
            nullable=True,
        ),
    ),
)

ANNOTATIONS = TableSchema(
    name="annotations",
    key=("item_id", "annotator_id"),
    doc="Human labels in long form; the label set is declared in study.json (default unsafe/safe).",
    columns=(
        Column("item_id", "id", "Item the label belongs to."),
        Column("annotator_id", "id", "Who labelled it."),
        Column("label", "id", "A label from the declared label set."),
    ),
)

def _label_matches_status(frame: pd.DataFrame) -> tuple[int, str, str] | None:
    """A verdict exists exactly when parse_status is ok: failures are never coerced to a label."""
    has_label = frame["label"].notna().to_numpy()
    is_ok = (frame["parse_status"] == "ok").to_numpy()
    bad = has_label != is_ok
    if not bad.any():
        return None
    position = int(np.flatnonzero(bad)[0])
    if is_ok[position]:
        return position, "label", "is empty but parse_status is 'ok'; a failed judgement needs another status"
    status = frame["parse_status"].iloc[position]
    return position, "label", f"must be empty when parse_status is {status!r} (failures are never given a label)"


JUDGMENTS = TableSchema(
    name="judgments",
    key=("item_id", "judge_id"),
    doc="Automated verdicts in long form. Failures are rows: label is null and parse_status says why.",
    columns=(
        Column("item_id", "id", "Item judged."),
        Column("judge_id", "id", "Registered or user-defined judge."),
        Column(
            "label",
            "category",
            "Verdict `unsafe`/`safe`; null exactly when parse_status is not `ok`.",
            nullable=True,
            allowed=BINARY_LABELS,
        ),
        Column("p_unsafe", "float", "P(unsafe) in [0, 1], or null.", nullable=True, bounds=(0.0, 1.0)),
        Column(
            "coverage",
            "float",
            "Probability mass the judge put on its label tokens (low = the read-out is doubtful), or null.",
            required=False,
            nullable=True,
            bounds=(0.0, 1.0),
        ),
        Column("parse_status", "id", "How the verdict was obtained.", allowed=PARSE_STATUSES),
        Column("raw_output", "text", "The judge's raw output (empty when it has none)."),
        Column("judge_spec_hash", "id", "sha256 prefix of the judge's resolved spec."),
        Column("latency_s", "float", "Wall time per item, seconds.", required=False, nullable=True, bounds=(0.0, float("inf"))),
        Column("n_input_tokens", "int", "Tokens sent to the judge.", required=False, nullable=True),
        Column("n_output_tokens", "int", "Tokens the judge produced.", required=False, nullable=True),
        Column("detail", "text", "Why a non-ok status was given (error message).", required=False),
    ),
    rules=(_label_matches_status,),
)

FLAGS = TableSchema(
    name="flags",
    key=("item_id", "detector"),
    doc="Incoherence-detector results in long form; `incoherent` is the combined flag.",
    columns=(
        Column("item_id", "id", "Item checked."),
        Column("detector", "id", "Registered detector name."),
        Column("flagged", "bool", "Whether the detector fired."),
        Column("score", "float", "Detector score (meaning per detector), or null.", nullable=True),
        Column("reason", "text", "Human-readable reason (empty when not flagged)."),
    ),
)

STATS = TableSchema(
    name="stats",
    key=("statistic", "judge_id", "reference", "subset"),
    doc="One row per reported number.",
    columns=(
        Column("statistic", "id", "Statistic name, e.g. cohen_kappa."),
        Column("judge_id", "id", "Judge (or rater) the number describes."),
        Column("reference", "id", "What it is compared with: human_majority, a judge id, humans, none."),
        Column("subset", "id", "Subset of items, e.g. all, incoherent, model=x."),
        Column("estimate", "float", "Point estimate.", nullable=True),
        Column("ci_low", "float", "Lower end of the 95% interval.", nullable=True),
        Column("ci_high", "float", "Upper end of the 95% interval.", nullable=True),
        Column("n_items", "int", "Items the estimate is computed on."),
        Column("n_excluded", "int", "Items in the subset left out (no reference, failed judgement...)."),
        Column("method", "text", "Interval method."),
        Column("signature", "text", "Settings: seed, n_boot, exclusion policy, version."),
    ),
)

RELIABILITY = TableSchema(
    name="reliability",
    key=("judge_id", "subset", "bin"),
    doc="Reliability-diagram bins per judge (empty bins kept with count 0).",
    columns=(
        Column("judge_id", "id", "Judge whose P(unsafe) is binned."),
        Column("subset", "id", "Subset of items."),
        Column("bin", "int", "Bin number from 0."),
        Column("low_edge", "float", "Lower bin edge."),
        Column("high_edge", "float", "Upper bin edge."),
        Column("count", "int", "Items in the bin."),
        Column("mean_p", "float", "Mean P(unsafe) in the bin.", nullable=True),
        Column("frac_unsafe", "float", "Share the human majority calls unsafe.", nullable=True),
        Column("ci_low", "float", "Wilson interval of frac_unsafe.", nullable=True),
        Column("ci_high", "float", "Wilson interval of frac_unsafe.", nullable=True),
    ),
)

SCHEMAS: dict[str, TableSchema] = {s.name: s for s in (RESPONSES, ANNOTATIONS, JUDGMENTS, FLAGS, STATS, RELIABILITY)}


@dataclass(frozen=True)
class LabelSet:
    """The human label set of a study and its mapping onto unsafe/safe.

    ``to_binary`` maps each label to ``"unsafe"``, ``"safe"`` or ``None`` (no
    binary meaning, e.g. a partial refusal); labels absent from it map to None.
    """

    labels: tuple[str, ...] = BINARY_LABELS
    to_binary: dict[str, str | None] = field(default_factory=lambda: {"unsafe": "unsafe", "safe": "safe"})

    def __post_init__(self) -> None:
        if len(set(self.labels)) != len(self.labels) or not self.labels:
            raise InputError(f"label set must be non-empty and without repeats, got {list(self.labels)}")
        for label, binary in self.to_binary.items():
            if label not in self.labels:
                raise InputError(f"to_binary maps '{label}', which is not in the label set {list(self.labels)}")
            if binary not in (*BINARY_LABELS, None):
                raise InputError(f"to_binary must map onto unsafe, safe or null; '{label}' maps to {binary!r}")


@dataclass(frozen=True)
class StudyMetadata:
    """Contents of ``study.json``."""

    name: str = ""
    description: str = ""
    simulated: bool = False
    annotation_labels: LabelSet = field(default_factory=LabelSet)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "simulated": self.simulated,
            "annotation_labels": {
                "labels": list(self.annotation_labels.labels),
                "to_binary": dict(self.annotation_labels.to_binary),
            },
        }


def read_study_metadata(study_dir: Path) -> StudyMetadata:
    """Read ``study.json`` if present; defaults otherwise."""
    path = Path(study_dir) / STUDY_METADATA_FILE
    if not path.exists():
        return StudyMetadata()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise InputError(f"not valid UTF-8 (byte {err.start})", file=path) from None
    except json.JSONDecodeError as err:
        raise InputError(f"invalid JSON: {err.msg}", file=path, line=err.lineno, row=err.lineno) from None
    if not isinstance(raw, dict):
        raise InputError("must hold a JSON object", file=path)
    known = {"name", "description", "simulated", "annotation_labels"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InputError(f"unknown keys {unknown}; allowed: {sorted(known)}", file=path)
    labels_raw = raw.get("annotation_labels", {})
    try:
        label_set = (
            LabelSet(
                labels=tuple(labels_raw["labels"]),
                to_binary=dict(labels_raw.get("to_binary", {})),
            )
            if labels_raw
            else LabelSet()
        )
    except (KeyError, TypeError):
        raise InputError("annotation_labels needs a 'labels' list and an optional 'to_binary' object", file=path) from None
    except InputError as err:
        raise InputError(err.message, file=path) from None
    simulated = raw.get("simulated", False)
    if not isinstance(simulated, bool):
        raise InputError("'simulated' must be true or false", file=path)
    return StudyMetadata(
        name=str(raw.get("name", "")),
        description=str(raw.get("description", "")),
        simulated=simulated,
        annotation_labels=label_set,
    )
