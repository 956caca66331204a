"""One registry class for judges, incoherence detectors and statistics.

Entries point at their implementation with a lazy ``"module:attr"`` string, so
listing what exists never imports torch or any judge backend.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgekit.errors import InputError

if TYPE_CHECKING:
    from judgekit.judges.base import Judge
    from judgekit.judges.build import JudgeOptions


@dataclass(frozen=True)
class Entry:
    name: str
    target: str
    summary: str
    params: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        module_name, _, attr = self.target.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


class Registry:
    """Named entries of one kind; duplicate names are refused, unknown names get suggestions."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, target: str, summary: str, **params: Any) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered (target {self._entries[name].target})")
        self._entries[name] = Entry(name=name, target=target, summary=summary, params=params)

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise KeyError(f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(sorted(self._entries))}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]


STATISTIC_ENTRIES = (
    ("agreement", "percent_agreement", "share of agreeing rater pairs"),
    ("agreement", "cohen_kappa", "Cohen's kappa, two raters"),
    ("agreement", "scott_pi", "Scott's pi, two raters"),
    ("agreement", "fleiss_kappa", "Fleiss' kappa, any number of raters, missing allowed"),
    ("agreement", "krippendorff_alpha", "Krippendorff's alpha, nominal/ordinal/interval, missing allowed"),
    ("agreement", "gwet_ac1", "Gwet's AC1, stable under skewed prevalence"),
    ("agreement", "pabak", "prevalence- and bias-adjusted kappa"),
    ("agreement", "prevalence_index", "Byrt's prevalence index"),
    ("agreement", "bias_index", "Byrt's bias index"),
    ("agreement", "krippendorff_alpha_interval", "Krippendorff's alpha on graded scores, interval level, any values"),
    ("agreement", "krippendorff_alpha_ordinal", "Krippendorff's alpha on graded scores, ordinal level, declared value domain"),
    ("agreement", "weighted_kappa_linear", "Cohen's weighted kappa, linear weights, two raters' graded scores"),
    ("agreement", "weighted_kappa_quadratic", "Cohen's weighted kappa, quadratic weights, two raters' graded scores"),
    ("agreement", "spearman_rho", "Spearman's rank correlation of two raters' graded scores"),
    ("classification", "classification_metrics", "accuracy, precision, recall, F1, FPR, FNR, balanced accuracy, MCC"),
    ("classification", "harmful_rate", "share of responses judged unsafe (attack success rate)"),
    ("classification", "soft_agreement", "expected agreement with a random annotator"),
    ("calibration", "expected_calibration_error", "binned ECE (L1/L2, equal-width/equal-mass, debiased L2)"),
    ("calibration", "maximum_calibration_error", "largest bin gap"),
    ("calibration", "brier_score", "Brier score"),
    ("calibration", "brier_decomposition", "Murphy decomposition of the Brier score"),
    ("calibration", "log_loss", "log loss"),
    ("calibration", "auroc", "area under the ROC curve of P(unsafe)"),
    ("calibration", "auprc", "average precision of P(unsafe)"),
    ("calibration", "reliability_curve", "reliability-diagram bins with Wilson intervals"),
    ("calibration", "recalibrate_cv", "out-of-fold Platt / temperature / isotonic recalibration"),
    ("comparison", "kendall_tau_b", "ranking agreement of models between judges"),
    ("bias", "mcnemar_test", "paired test of two judges' correctness"),
    ("bias", "cochrans_q_test", "test of several judges' correctness"),
    ("bias", "error_regression", "logistic regression of judge error, cluster-robust"),
    ("variance", "variance_components", "method-of-moments variance components of verdicts by judge, benchmark, goal, model, prompt"),
)

JUDGES = Registry("judge")
DETECTORS = Registry("detector")
STATISTICS = Registry("statistic")
DATASETS = Registry("dataset")


def _register_builtins() -> None:
    from judgekit.judges.catalog import preset_names, preset_summary

    for name in preset_names():
        JUDGES.register(name, "judgekit.judges.build:judge_from_preset", preset_summary(name), preset=name)

    for name, summary in (
        ("empty", "empty, whitespace-only or punctuation-only response"),
        ("repetition", "degenerate loops: repeated word 4-grams, a loop at the end, zlib ratio"),
        ("gibberish", "token salad: non-words (wordfreq list), symbol tokens, odd characters, salad index"),
        ("script_noise", "letters of different scripts inside words; replacement/control characters"),
        ("word_order", "shuffled English: determiner/function-word collisions, misplaced capitals and full stops"),
        ("word_sequence", "word pairs English does not make: bigram-model (Google Books) scores over the text and its worst window"),
        ("truncation", "ends mid-sentence at a length limit (finish_reason=length)"),
        ("language_mismatch", "prompt and response (or its end) in different languages (py3langid)"),
        ("off_task_format", "code, JSON, a table or a bare list where the prompt asked for prose (never incoherent)"),
        ("non_responsive", "fluent but unrelated to the prompt: prompt-answer relevance (--embedding-model, or model-free "
                           "word overlap with the prompt and the other answers to it)"),
        ("fluency", "windowed surprisal given the prompt under any HF causal LM, robust z against the study (--fluency-model)"),
        ("incoherent", "combined flag: empty, repetition, gibberish, script_noise, word_order or word_sequence fires "
                        "(+ fluency when a fluency model is given)"),
    ):
        DETECTORS.register(name, f"judgekit.flags.incoherence:{name.upper()}", summary)

    for module, name, summary in STATISTIC_ENTRIES:
        STATISTICS.register(name, f"judgekit.stats.{module}:{name}", summary)

    from judgekit.datasets.registry import CONVERTERS, summary as dataset_summary

    for name, (target, _) in CONVERTERS.items():
        DATASETS.register(name, target, dataset_summary(name))


_register_builtins()


def resolve_judge(name_or_path: str, options: JudgeOptions | None = None) -> Judge:
    """A registered judge name, or a path to a JSON judge spec."""
    from judgekit.judges.build import judge_from_spec  # judge backends load on first use
    from judgekit.judges.catalog import load_spec_file

    if name_or_path.endswith(".json"):
        return judge_from_spec(load_spec_file(Path(name_or_path)), options)
    try:
        entry = JUDGES.get(name_or_path)
    except KeyError as err:
        raise InputError(f"{err.args[0]} (or pass a path to a .json judge spec)") from None
    return entry.load()(**entry.params, options=options)
