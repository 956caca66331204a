"""The tidy data model: one schema per table of a study directory.

A *study directory* holds up to four tables, each stored as ``<name>.parquet``,
``<name>.csv`` or ``<name>.jsonl`` (the extension picks the format), plus an
optional ``study.json`` with study metadata and the declared human label set.

========== ==================================================================
table      one row per
========== ==================================================================
responses  (prompt, response) pair to be judged; key ``item_id``
annotations human label; key (``item_id``, ``annotator_id``)
judgments  automated verdict or graded score; key (``item_id``, ``judge_id``, ``dimension``)
flags      incoherence-detector result; key (``item_id``, ``detector``)
prompts    prompt of a prompt set without responses (input of ``generate``); key ``prompt_id``
models     optional: a model's lineage (base, goal, mitigation); key ``model``
capability optional: a capability score per item or per task; key (``model``, ``task``, ``item_id``)
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
REFUSAL_LABELS = ("refusal", "compliance")  # what `to_refusal` of a label set maps onto
INTENTS = ("harmful", "benign")
DEFAULT_DIMENSION = "safety"  # what a judgment without a `dimension` rates: the binary safety verdict
# judge_said_code / judge_said_refusal: a graded judge answered with one of its words instead of a score (Betley et
# al.'s aligned judge says CODE for code unrelated to the question, REFUSAL for a clear refusal): no score, no failure.
# judge_said_code_or_refusal: one of the two, where the source left the score empty without saying which.
PARSE_STATUSES = ("ok", "unparseable", "refused_to_judge", "error", "skipped", "judge_said_code", "judge_said_refusal",
                  "judge_said_code_or_refusal")
TABLE_NAMES = ("responses", "annotations", "judgments", "flags")
TABLE_EXTENSIONS = (".parquet", ".csv", ".jsonl")
# Tables stored as a folder of parquet files, one per value of this column (judgekit.store.partitioned): a judge's
# commit rewrites its own rows only. Such a table stored as one file (judgments.csv) is read as well.
PARTITION_COLUMNS = {"judgments": "judge_id"}
STUDY_METADATA_FILE = "study.json"
HUMAN_MAJORITY = "human_majority"  # the stats tables' name for the human reference label


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
    # Optional key columns and the value an absent or empty cell stands for (a judgment without a dimension rates safety).
    key_defaults: dict[str, str] = field(default_factory=dict)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


def _one_row_per_model_prompt_sample(frame: pd.DataFrame) -> tuple[int, str, str] | None:
    """With ``prompt_id`` given, (model, prompt_id, sample) names one response: a repeat would double a prompt's weight."""
    if "prompt_id" not in frame:
        return None
    key = [c for c in ("model", "prompt_id", "sample") if c in frame]
    repeated = (frame["prompt_id"].notna() & frame.duplicated(subset=key, keep="first")).to_numpy()
    if not repeated.any():
        return None
    position = int(np.flatnonzero(repeated)[0])
    named = ", ".join(f"{c}={frame[c].iloc[position]!r}" for c in key)
    return position, "prompt_id", f"({named}) already has a response in an earlier row"


# What a prompt carries from its prompt set into every response to it (`judgekit generate` copies them): one
# definition, so a prompts table and a responses table cannot disagree on a column's type.
PROMPT_ATTRIBUTES = (
    Column("goal", "category",
           "The underlying request when `prompt` wraps it (a jailbreak); judges that judge against the request use it.",
           required=False, nullable=True),
    Column("context", "text", "Context shown to contextual judges (HarmBench contextual behaviours); empty when none.",
           required=False, nullable=True),
    Column("benchmark", "category", "Safety benchmark the prompt comes from.", required=False, nullable=True),
    Column("category", "category", "Harm category of the prompt.", required=False, nullable=True),
    Column("behavior_id", "category", "Cluster for resampling (responses to one behaviour); defaults to the prompt.",
           required=False, nullable=True),
    Column("intent", "category", "What the prompt asks for: `harmful` (complying is harm) or `benign` (refusing is "
           "over-refusal); empty when unknown.", required=False, nullable=True, allowed=INTENTS),
)

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
        *PROMPT_ATTRIBUTES,
        Column("prompt_id", "category", "The prompt's id in its prompt set: matches responses across models.",
               required=False, nullable=True),
        Column("sample", "int", "Which of the K samples drawn for (model, prompt) this is, from 0.", required=False,
               nullable=True, bounds=(0.0, float("inf"))),
        Column("mitigation", "category", "Safety mitigation applied to the model (e.g. none, safety-data-mix).",
               required=False, nullable=True),
    ),
    rules=(_one_row_per_model_prompt_sample,),
)

def _positive_inclusion_probability(frame: pd.DataFrame) -> tuple[int, str, str] | None:
    """An inclusion probability of 0 would give its label an infinite weight: the bounds are (0, 1], not [0, 1]."""
    if "inclusion_probability" not in frame:
        return None
    zero = (frame["inclusion_probability"] == 0).to_numpy()
    if not zero.any():
        return None
    return int(np.flatnonzero(zero)[0]), "inclusion_probability", "value 0.0 is outside (0, 1]"


# Weakest last: an item labelled under several designs counts as its weakest. two-phase: a plan's prompt labelled only
# in part (import-labels --allow-partial), weighted by the prompt's probability times the share labelled.
LABEL_DESIGNS = ("plan", "two-phase", "random", "convenience")


def _known_label_design(frame: pd.DataFrame) -> tuple[int, str, str] | None:
    """A design the corrected rows know how to read (``judgekit data import-labels --design``)."""
    if "design" not in frame:
        return None
    unknown = (frame["design"].notna() & ~frame["design"].isin(LABEL_DESIGNS)).to_numpy()
    if not unknown.any():
        return None
    row = int(np.flatnonzero(unknown)[0])
    return row, "design", f"{frame['design'].iloc[row]!r} is not one of {list(LABEL_DESIGNS)}"


PROMPTS = TableSchema(
    name="prompts",
    key=("prompt_id",),
    doc="A prompt set without responses (input of `judgekit generate`). Extra columns are kept.",
    columns=(
        Column("prompt_id", "id", "Unique id of the prompt in its set."),
        Column("prompt", "text", "The text sent to the model as the user turn."),
        *PROMPT_ATTRIBUTES,
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
        Column("inclusion_probability", "float",
               "Optional: the probability, in (0, 1], with which the item was drawn for labelling (written by "
               "`plan-labels --strategy active`); the corrected rows weight such labels by its inverse.",
               required=False, nullable=True, bounds=(0.0, 1.0)),
        Column("design", "category",
               "Optional: how the label's item was chosen, as `import-labels --design` recorded it: plan (drawn by "
               "a plan-labels file, followed), two-phase (a plan's prompt labelled only in part, --allow-partial), "
               "random (a uniform random sample) or convenience (anything else); empty or absent = convenience.", required=False, nullable=True),
    ),
    rules=(_positive_inclusion_probability, _known_label_design),
)

MODELS = TableSchema(
    name="models",
    key=("model",),
    doc="Optional: one row per model with its lineage and purpose. Extra columns (size, data, seed...) are kept.",
    columns=(
        Column("model", "id", "Model name, as in the responses and capability tables."),
        Column("base_model", "category", "Model it was fine-tuned from; empty for a base model.", required=False,
               nullable=True),
        Column("finetune_goal", "category", "Capability the fine-tune aimed at (e.g. coding); empty for a base model.",
               required=False, nullable=True),
        Column("mitigation", "category", "Safety mitigation applied (none, safety-data-mix, lora-freeze...; free text).",
               required=False, nullable=True),
        Column("goal_task", "category", "Capability task (as in the capability table) that measures the goal.",
               required=False, nullable=True),
        Column("goal_target", "float", "Capability score on goal_task the fine-tune aimed to reach, in [0, 1].",
               required=False, nullable=True, bounds=(0.0, 1.0)),
        Column("compare_with", "category", "Other models this one is compared with, paired by prompt (\"A vs B\", "
               "no lineage implied), separated by `;` (`base;middle` compares this model with each); empty for none.",
               required=False, nullable=True),
        Column("checkpoint_of", "category", "The base model of the training run this model is a checkpoint of; each "
               "checkpoint is compared with it and a trend is tested across `step`.", required=False, nullable=True),
        Column("step", "float", "Training step (or epoch) of a checkpoint; needed with checkpoint_of.",
               required=False, nullable=True, bounds=(0.0, float("inf"))),
    ),
)

_CAPABILITY_SUMMARY_COLUMNS = ("estimate", "ci_low", "ci_high", "n")


def _capability_row_shape(frame: pd.DataFrame) -> tuple[int, str, str] | None:
    """Each row is per item (item_id and score) or aggregate (empty item_id; estimate, ci_low, ci_high, n)."""
    per_item = frame["item_id"].notna().to_numpy()
    for position in range(len(frame)):
        present = {c: c in frame and pd.notna(frame[c].iloc[position]) for c in ("score", *_CAPABILITY_SUMMARY_COLUMNS)}
        if per_item[position]:
            if not present["score"]:
                return position, "score", "is empty; a per-item row (item_id given) needs a score in [0, 1]"
            extra = next((c for c in _CAPABILITY_SUMMARY_COLUMNS if present[c]), None)
            if extra:
                return position, extra, "must be empty on a per-item row (item_id given); aggregates leave item_id empty"
            continue
        if present["score"]:
            return position, "item_id", "is empty but score is given; a per-item score needs its item_id"
        missing = next((c for c in _CAPABILITY_SUMMARY_COLUMNS if not present[c]), None)
        if missing:
            return position, missing, "is empty; an aggregate row (empty item_id) needs estimate, ci_low, ci_high and n"
        low, estimate, high = (frame[c].iloc[position] for c in ("ci_low", "estimate", "ci_high"))
        if frame["n"].iloc[position] < 1:
            return position, "n", f"must be at least 1, got {frame['n'].iloc[position]}"
        if not low <= estimate <= high:
            return position, "estimate", f"{estimate!r} is not inside [ci_low, ci_high] = [{low!r}, {high!r}]"
    keys = frame[["model", "task"]].astype(str).agg("\x1f".join, axis=1)
    mixed = keys.isin(set(keys[per_item])) & ~per_item
    if mixed.any():
        position = int(np.flatnonzero(mixed.to_numpy())[0])
        return position, "item_id", "is empty, but this model and task also have per-item rows; keep one shape per task"
    return None


CAPABILITY = TableSchema(
    name="capability",
    key=("model", "task", "item_id"),
    doc="Optional: capability scores per item (item_id, score) or aggregate per task (empty item_id; estimate, "
        "ci_low, ci_high, n).",
    columns=(
        Column("model", "id", "Model evaluated."),
        Column("task", "id", "Capability task (e.g. gsm8k, humaneval)."),
        Column("item_id", "category", "Task item; empty on an aggregate row.", nullable=True),
        Column("score", "float", "Item score in [0, 1] (accuracy 0/1, partial credit).", required=False,
               nullable=True, bounds=(0.0, 1.0)),
        Column("estimate", "float", "Aggregate score in [0, 1].", required=False, nullable=True, bounds=(0.0, 1.0)),
        Column("ci_low", "float", "Lower end of the aggregate's 95% interval.", required=False, nullable=True,
               bounds=(0.0, 1.0)),
        Column("ci_high", "float", "Upper end of the aggregate's 95% interval.", required=False, nullable=True,
               bounds=(0.0, 1.0)),
        Column("n", "int", "Items behind the aggregate.", required=False, nullable=True, bounds=(1.0, float("inf"))),
    ),
    rules=(_capability_row_shape,),
)

def _verdict_matches_status(frame: pd.DataFrame) -> tuple[int, str, str] | None:
    """A verdict (label or score) exists exactly when parse_status is ok: failures are never coerced to a label."""
    has_label = frame["label"].notna().to_numpy()
    has_score = frame["score"].notna().to_numpy() if "score" in frame else np.zeros(len(frame), dtype=bool)
    is_ok = (frame["parse_status"] == "ok").to_numpy()
    bad = (has_label | has_score) != is_ok
    if not bad.any():
        return None
    position = int(np.flatnonzero(bad)[0])
    if is_ok[position]:
        return position, "label", "is empty but parse_status is 'ok'; a failed judgement needs another status"
    status = frame["parse_status"].iloc[position]
    column = "label" if has_label[position] else "score"
    return position, column, f"must be empty when parse_status is {status!r} (failures are never given a verdict)"


JUDGMENTS = TableSchema(
    name="judgments",
    key=("item_id", "judge_id", "dimension"),
    key_defaults={"dimension": DEFAULT_DIMENSION},
    doc="Automated verdicts and graded scores in long form, one row per item, judge and dimension. Failures are rows: "
        "label and score are null and parse_status says why. Stored as the folder judgments/, one parquet file per "
        "judge (docs/concepts/study-files.md); a judgments.csv/.parquet/.jsonl file is read as well.",
    columns=(
        Column("item_id", "id", "Item judged."),
        Column("judge_id", "id", "Registered or user-defined judge."),
        Column(
            "label",
            "category",
            "Verdict `unsafe`/`safe`; null when parse_status is not `ok`, and on an ok row that gives a score only.",
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
        Column("dimension", "category", "What the row rates (safety, refusal, persona, drift, aligned, coherent...); "
               f"empty means `{DEFAULT_DIMENSION}`.", required=False, nullable=True),
        Column("score", "float", "Graded score on the judge's declared scale for this dimension (study.json "
               "`judge_scales`), or null.", required=False, nullable=True),
        Column("parse_status", "id", "How the verdict was obtained.", allowed=PARSE_STATUSES),
        Column("raw_output", "text", "The judge's raw output (empty when it has none)."),
        Column("judge_spec_hash", "id", "sha256 prefix of the judge's resolved spec."),
        Column("latency_s", "float", "Wall time per item, seconds.", required=False, nullable=True, bounds=(0.0, float("inf"))),
        Column("n_input_tokens", "int", "Tokens sent to the judge.", required=False, nullable=True),
        Column("n_output_tokens", "int", "Tokens the judge produced.", required=False, nullable=True),
        Column("detail", "text", "Why a non-ok status was given (error message).", required=False),
    ),
    rules=(_verdict_matches_status,),
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
    key=("statistic", "judge_id", "reference", "subset", "dimension"),
    key_defaults={"dimension": DEFAULT_DIMENSION},
    doc="One row per reported number (the subset label names the outcome when it is not harmful_compliance).",
    columns=(
        Column("statistic", "id", "Statistic name, e.g. cohen_kappa."),
        Column("judge_id", "id", "Judge (or rater) the number describes."),
        Column("reference", "id", "What it is compared with: human_majority, a judge id, humans, none."),
        Column("subset", "id", "Readable label of the subset, e.g. all, incoherent, model=x|benchmark=y."),
        Column("subset_kind", "id", "What kind of subset: all, coherence, coherence_gap (accuracy_gap: coherent minus "
               "incoherent), flag, humans, ceiling_items, group, length, refusal_marker, category, finetune_comparison, "
               "mitigation_comparison, model_comparison (models.csv compare_with), checkpoint_comparison (checkpoint_of), "
               "models, recalibrated, term, factor."),
        Column("subset_value", "category", "The subset's value within its kind (coherent, a detector, Q1, a term...).",
               nullable=True),
        Column("model", "category", "Model the subset is restricted to (the fine-tuned one for a comparison).", nullable=True),
        Column("base_model", "category", "Base model of a fine-tuning comparison.", nullable=True),
        Column("finetune_goal", "category", "Fine-tuning goal of a comparison.", nullable=True),
        Column("benchmark", "category", "Benchmark the subset is restricted to.", nullable=True),
        Column("outcome", "category", "What a rate or effect counts (judgekit.analysis.outcomes): "
               "`harmful_compliance` (unsafe verdicts on harmful-intent prompts; on every prompt when the study has "
               "no `intent`), `over_refusal` (refusals on benign prompts) or `incoherent` (incoherent responses); "
               "empty for statistics about the judges themselves (agreement, calibration...).", required=False,
               nullable=True, allowed=("harmful_compliance", "over_refusal", "incoherent")),
        Column("dimension", "category", "What the judges' graded scores rate (agreement on a native scale); empty: "
               f"the binary `{DEFAULT_DIMENSION}` verdicts.", required=False, nullable=True),
        Column("estimate", "float", "Point estimate.", nullable=True),
        Column("ci_low", "float", "Lower end of the 95% interval.", nullable=True),
        Column("ci_high", "float", "Upper end of the 95% interval.", nullable=True),
        Column("n_items", "int", "Items the estimate is computed on."),
        Column("n_excluded", "int", "Items in the subset left out (no reference, failed judgement...)."),
        Column("excluded_reason", "text", "Why items were left out, with counts (e.g. 'human-majority tie: 4')."),
        Column("method", "text", "Interval method."),
        Column("warning", "text", "Why the interval's coverage cannot be trusted (few clusters, few positives, "
               "BCa undefined...); empty when nothing is known against it."),
        Column("signature", "text", "Settings: interval, resamples actually used, seed, exclusion policy, version."),
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

SCHEMAS: dict[str, TableSchema] = {s.name: s for s in (RESPONSES, ANNOTATIONS, JUDGMENTS, FLAGS, STATS, RELIABILITY, PROMPTS,
                                                        MODELS, CAPABILITY)}


@dataclass(frozen=True)
class LabelSet:
    """The human label set of a study and its mapping onto unsafe/safe.

    ``to_binary`` maps each label to ``"unsafe"``, ``"safe"`` or ``None`` (no
    binary meaning, e.g. a partial refusal); labels absent from it map to None.
    ``to_refusal`` maps labels that say whether the model refused onto
    ``"refusal"``, ``"compliance"`` or ``None``: the human reference of the
    ``over_refusal`` outcome (XSTest: full and partial refusal -> refusal).
    Empty: the labels say nothing about refusal.
    """

    labels: tuple[str, ...] = BINARY_LABELS
    to_binary: dict[str, str | None] = field(default_factory=lambda: {"unsafe": "unsafe", "safe": "safe"})
    to_refusal: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(set(self.labels)) != len(self.labels) or not self.labels:
            raise InputError(f"label set must be non-empty and without repeats, got {list(self.labels)}")
        for label, binary in self.to_binary.items():
            if label not in self.labels:
                raise InputError(f"to_binary maps '{label}', which is not in the label set {list(self.labels)}")
            if binary not in (*BINARY_LABELS, None):
                raise InputError(f"to_binary must map onto unsafe, safe or null; '{label}' maps to {binary!r}")
        for label, refusal in self.to_refusal.items():
            if label not in self.labels:
                raise InputError(f"to_refusal maps '{label}', which is not in the label set {list(self.labels)}")
            if refusal not in (*REFUSAL_LABELS, None):
                raise InputError(f"to_refusal must map onto refusal, compliance or null; '{label}' maps to {refusal!r}")


SCALE_LEVELS = ("ordinal", "interval")


@dataclass(frozen=True)
class JudgeScale:
    """The scale a judge scores one dimension on, and the threshold that turns a score into a binary verdict.

    ``worse`` says which end is degraded (unsafe for a safety-like dimension, incoherent for a coherence one);
    a score at or beyond ``threshold`` on that side is the degraded verdict. ``thresholds`` are alternative
    thresholds a study may want to see (one more axis of the specification curve).
    """

    judge_id: str
    dimension: str
    min: float
    max: float
    level: str
    worse: str
    threshold: float
    thresholds: tuple[float, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        where = f"judge_scales entry ({self.judge_id!r}, {self.dimension!r})"
        if self.level not in SCALE_LEVELS:
            raise InputError(f"{where}: level must be one of {list(SCALE_LEVELS)}, got {self.level!r}")
        if self.worse not in ("high", "low"):
            raise InputError(f"{where}: worse must be 'high' or 'low', got {self.worse!r}")
        if not self.min < self.max:
            raise InputError(f"{where}: min {self.min!r} must be below max {self.max!r}")
        for value in (self.threshold, *self.thresholds):
            if not self.min <= value <= self.max:
                raise InputError(f"{where}: threshold {value!r} is outside [{self.min!r}, {self.max!r}]")

    @property
    def all_thresholds(self) -> tuple[float, ...]:
        """The stated threshold first, then the alternatives (without repeats)."""
        return tuple(dict.fromkeys((self.threshold, *self.thresholds)))

    def describe(self, threshold: float | None = None) -> str:
        """How a verdict is derived, for a row's ``method``: e.g. ``safety >= 2 on 0-3 (ordinal)``."""
        cut = self.threshold if threshold is None else threshold
        sign = ">=" if self.worse == "high" else "<="
        return f"{self.dimension} {sign} {cut:g} on {self.min:g}-{self.max:g} ({self.level})"

    def to_json(self) -> dict:
        out = {"judge_id": self.judge_id, "dimension": self.dimension, "min": self.min, "max": self.max,
               "level": self.level, "worse": self.worse, "threshold": self.threshold}
        if self.thresholds:
            out["thresholds"] = list(self.thresholds)
        if self.source:
            out["source"] = self.source
        return out

    @classmethod
    def from_json(cls, raw: object) -> JudgeScale:
        shape = ("each judge_scales entry needs judge_id, dimension (strings), min, max, threshold (numbers), level "
                 "(ordinal|interval), worse (high|low), optional thresholds (list of numbers) and source (string)")
        if not isinstance(raw, dict):
            raise InputError(f"{shape}; got {raw!r}")
        known = {"judge_id", "dimension", "min", "max", "level", "worse", "threshold", "thresholds", "source"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InputError(f"{shape}; unknown keys {unknown}")
        if not all(isinstance(raw.get(k), str) and raw[k].strip() for k in ("judge_id", "dimension", "level", "worse")):
            raise InputError(f"{shape}; got {raw!r}")
        numbers = [raw.get(k) for k in ("min", "max", "threshold")] + list(raw.get("thresholds", []))
        if not isinstance(raw.get("thresholds", []), list) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v) for v in numbers):
            raise InputError(f"{shape}; got {raw!r}")
        return cls(judge_id=raw["judge_id"], dimension=raw["dimension"], min=float(raw["min"]), max=float(raw["max"]),
                   level=raw["level"], worse=raw["worse"], threshold=float(raw["threshold"]),
                   thresholds=tuple(float(v) for v in raw.get("thresholds", [])), source=str(raw.get("source", "")))


def derive_verdict(scores: np.ndarray | pd.Series, scale: JudgeScale, *, threshold: float | None = None) -> np.ndarray:
    """Binary codes from graded scores: 1.0 degraded (unsafe / incoherent...), 0.0 not, NaN where no score.

    Parameters
    ----------
    scores
        Scores on ``scale`` (NaN for none).
    scale
        The judge's declared scale for the dimension.
    threshold
        Overrides the scale's stated threshold (one of its alternatives, for a specification curve).
    """
    values = np.asarray(scores, dtype=float)
    cut = scale.threshold if threshold is None else float(threshold)
    degraded = values >= cut if scale.worse == "high" else values <= cut
    return np.where(np.isnan(values), np.nan, degraded.astype(float))


@dataclass(frozen=True)
class StudyMetadata:
    """Contents of ``study.json``."""

    name: str = ""
    description: str = ""
    simulated: bool = False
    annotation_labels: LabelSet = field(default_factory=LabelSet)
    # An annotator id whose labels are adjudicated (e.g. XSTest's `final`): the reference where
    # present, never a rater in inter-annotator statistics.
    adjudicator: str | None = None
    # Judges whose binary verdict is a refusal detector's ("safe" = the response refuses), such as imported
    # refusal classifiers; with the keyword presets they measure the over_refusal outcome on benign prompts.
    refusal_judges: tuple[str, ...] = ()
    judge_scales: tuple[JudgeScale, ...] = ()

    def scale_for(self, judge_id: str, dimension: str) -> JudgeScale | None:
        """The declared scale of ``judge_id``'s scores on ``dimension``, or None."""
        return next((s for s in self.judge_scales if s.judge_id == judge_id and s.dimension == dimension), None)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "simulated": self.simulated,
            "annotation_labels": {
                "labels": list(self.annotation_labels.labels),
                "to_binary": dict(self.annotation_labels.to_binary),
                **({"to_refusal": dict(self.annotation_labels.to_refusal)} if self.annotation_labels.to_refusal else {}),
            },
            **({"adjudicator": self.adjudicator} if self.adjudicator else {}),
            **({"refusal_judges": list(self.refusal_judges)} if self.refusal_judges else {}),
            **({"judge_scales": [s.to_json() for s in self.judge_scales]} if self.judge_scales else {}),
        }


def _label_set(raw: object) -> LabelSet:
    """``annotation_labels`` of study.json: a list of label strings and optional string → unsafe/safe/null and
    string → refusal/compliance/null maps."""
    if not raw:
        return LabelSet()
    shape = "annotation_labels needs a 'labels' list of strings and an optional 'to_binary' object"
    if not isinstance(raw, dict) or not isinstance(raw.get("labels"), list):
        # A bare string would otherwise become a label per character.
        raise InputError(f"{shape}; got {raw!r}")
    labels, to_binary, to_refusal = raw["labels"], raw.get("to_binary", {}), raw.get("to_refusal", {})
    bad = [label for label in labels if not isinstance(label, str) or not label.strip()]
    if bad:
        raise InputError(f"{shape}; labels must be non-empty strings, got {bad[0]!r}")
    if not isinstance(to_binary, dict):
        raise InputError(f"{shape}; got to_binary {to_binary!r}")
    if not isinstance(to_refusal, dict):
        raise InputError(f"{shape}; got to_refusal {to_refusal!r}")
    return LabelSet(labels=tuple(labels), to_binary=dict(to_binary), to_refusal=dict(to_refusal))


def _judge_scales(raw: object, path: Path) -> tuple[JudgeScale, ...]:
    if not isinstance(raw, list):
        raise InputError(f"'judge_scales' must be a list of scale objects, got {raw!r}", file=path)
    try:
        scales = tuple(JudgeScale.from_json(entry) for entry in raw)
    except InputError as err:
        raise InputError(err.message, file=path) from None
    seen = set()
    for scale in scales:
        if (scale.judge_id, scale.dimension) in seen:
            raise InputError(f"judge_scales declares ({scale.judge_id!r}, {scale.dimension!r}) twice", file=path)
        seen.add((scale.judge_id, scale.dimension))
    return scales


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
    except RecursionError:
        raise InputError("is nested too deeply to read", file=path) from None
    if not isinstance(raw, dict):
        raise InputError("must hold a JSON object", file=path)
    known = {"name", "description", "simulated", "annotation_labels", "adjudicator", "judge_scales",
             "refusal_judges"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InputError(f"unknown keys {unknown}; allowed: {sorted(known)}", file=path)
    try:
        label_set = _label_set(raw.get("annotation_labels", {}))
    except InputError as err:
        raise InputError(err.message, file=path) from None
    simulated = raw.get("simulated", False)
    if not isinstance(simulated, bool):
        raise InputError("'simulated' must be true or false", file=path)
    adjudicator = raw.get("adjudicator")
    if adjudicator is not None and (not isinstance(adjudicator, str) or not adjudicator.strip()):
        raise InputError("'adjudicator' must be an annotator id (a non-empty string)", file=path)
    refusal_judges = raw.get("refusal_judges", [])
    if not isinstance(refusal_judges, list) or not all(isinstance(j, str) and j.strip() for j in refusal_judges):
        raise InputError("'refusal_judges' must be a list of judge ids (non-empty strings)", file=path)
    return StudyMetadata(
        judge_scales=_judge_scales(raw.get("judge_scales", []), path),
        name=str(raw.get("name", "")),
        description=str(raw.get("description", "")),
        simulated=simulated,
        annotation_labels=label_set,
        adjudicator=adjudicator,
        refusal_judges=tuple(refusal_judges),
    )
