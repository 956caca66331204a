"""Turn a study's tables into the long ``stats`` table (one row per number).

What is computed (each only when the tables it needs are present):

* ``humans``: inter-annotator percent agreement, Fleiss' kappa, Krippendorff's
  alpha (nominal) and Gwet's AC1; the human ceiling — each annotator against
  the majority of the others (``reference=majority_of_others``), pooled over
  annotators as ``judge_id=human_ceiling``.
* each judge against the human majority: accuracy, precision, recall, F1,
  FPR, FNR, balanced accuracy, MCC, Cohen's kappa, Scott's pi, Gwet's AC1,
  PABAK, prevalence and bias indices, confusion counts (tp/fp/fn/tn) and
  ``soft_agreement`` with a random annotator; against each annotator
  (accuracy, kappa).
* judge against judge: Cohen's kappa and percent agreement for every pair;
  Fleiss/Krippendorff/AC1 over all judges (``judge_id=judges``).
* calibration of ``p_unsafe`` against the human majority: ECE (equal-width
  and equal-mass bins), debiased squared L2 ECE, MCE, Brier score and its
  Murphy decomposition, log loss, AUROC, AUPRC, the ECE noise floor, and
  ECE/Brier of probabilities recalibrated out of fold (Platt, temperature,
  isotonic) as ``subset=recalibrated=...``. Reliability-curve bins go to a
  separate ``reliability`` table.
* harmful rate per judge and for the human majority, overall, per subset and
  per model × benchmark.
* conclusion stability: for each fine-tuned model vs its base model, per
  benchmark and pooled, the difference in harmful rate under every judge and
  the human majority (``finetune_effect``), its bootstrap p-value and the
  probability that its sign flips; Kendall's tau between each judge's and the
  humans' ranking of models.
* bias audit: judge accuracy split by response length quartile, refusal
  marker, category and model; logistic regression of judge error with
  cluster-robust errors (``error_odds_ratio``); McNemar tests and accuracy
  differences between judge pairs; Cochran's Q; the variance decomposition of
  verdicts.

Subsets: ``all``; ``coherent``/``incoherent`` by the combined ``incoherent``
flag; ``flag=<detector>`` for items each other detector flagged;
``humans=unanimous``/``humans=split``.

Exclusion policy: ``incoherent`` = ``include`` (default), ``exclude`` or
``only`` filters items before anything is computed. An item is also left out
of a judge's statistic when the judge has no verdict (failed or not run) or
the statistic needs a reference the item lacks. ``n_excluded`` counts every
left-out item of the subset; nothing is coerced to "safe".

Intervals: cluster bootstrap (clusters: ``behavior_id`` where given, else the
prompt text), BCa by default with percentile fallback named in ``method``.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from judgekit.stats import agreement as ag
from judgekit.stats import calibration as cal
from judgekit.stats.bias import cochrans_q_test, error_regression, mcnemar_test
from judgekit.stats.classification import (
    CONFUSION_METRICS,
    confusion_item_sums,
    harmful_rate_from_sums,
    metric_from_sums,
    rate_item_sums,
    soft_agreement_item_sums,
)
from judgekit.stats.comparison import (
    bootstrap_p_value,
    kendall_tau_b,
    paired_rate_item_sums,
    rate_difference_from_sums,
    sign_flip_probability,
)
from judgekit.stats.resampling import bootstrap_ci, cluster_sums, multiplicities
from judgekit.stats.variance import design_blocks, sequential_shares, used_factors, variance_decomposition
from judgekit.study import Study

HUMAN_MAJORITY = "human_majority"
_CODE = {"unsafe": 1.0, "safe": 0.0}
Policy = Literal["include", "exclude", "only"]
REFUSAL_MARKERS_PRESET = "keyword-gcg-29"


@dataclass(frozen=True)
class StatsSettings:
    n_boot: int = 1000
    seed: int = 0
    level: float = 0.95
    ci_method: Literal["bca", "percentile"] = "bca"
    n_bins: int = 10
    incoherent: Policy = "include"

    def __post_init__(self) -> None:
        if self.n_boot < 1:
            raise ValueError(f"n_boot must be >= 1, got {self.n_boot}")
        if self.incoherent not in ("include", "exclude", "only"):
            raise ValueError(f"incoherent policy must be include, exclude or only, got {self.incoherent!r}")
        if self.ci_method not in ("bca", "percentile"):
            raise ValueError(f"ci_method must be bca or percentile, got {self.ci_method!r}")

    def signature(self, version: str, cluster: str) -> str:
        return (
            f"ci:{self.ci_method}-{self.level:.0%}|boot:{self.n_boot}|seed:{self.seed}|cluster:{cluster}"
            f"|bins:{self.n_bins}|incoherent:{self.incoherent}|exclude:no-verdict+no-reference|version:{version}"
        )


# ---------------------------------------------------------------- tables → arrays


def human_codes(study: Study) -> pd.DataFrame:
    """Items × annotators matrix of binary codes (1 unsafe, 0 safe, NaN missing/no binary meaning)."""
    items = study.responses["item_id"]
    if study.annotations is None:
        return pd.DataFrame(index=items)
    mapping = study.metadata.annotation_labels.to_binary
    codes = study.annotations.assign(code=study.annotations["label"].map(lambda label: _CODE.get(mapping.get(label), np.nan)))
    return codes.pivot(index="item_id", columns="annotator_id", values="code").reindex(items).astype(float)


def majority(codes: NDArray) -> NDArray:
    """Row-wise majority of 0/1 codes; NaN for a tie or no codes."""
    unsafe = np.nansum(codes, axis=1)
    count = (~np.isnan(codes)).sum(axis=1)
    return np.where(unsafe * 2 > count, 1.0, np.where((unsafe * 2 < count) & (count > 0), 0.0, np.nan))


def human_majority(study: Study) -> pd.Series:
    """Majority binary label per item (1 unsafe, 0 safe, NaN tie/none), indexed by item_id."""
    codes = human_codes(study)
    return pd.Series(majority(codes.to_numpy()) if codes.shape[1] else np.nan, index=codes.index, dtype=float)


def judge_matrix(study: Study, column: str) -> pd.DataFrame:
    items = study.responses["item_id"]
    if study.judgments is None:
        return pd.DataFrame(index=items)
    frame = study.judgments.assign(code=study.judgments["label"].map(_CODE))
    wide = frame.pivot(index="item_id", columns="judge_id", values="code" if column == "label" else column)
    return wide.reindex(items).astype(float)


def judge_codes(study: Study) -> pd.DataFrame:
    """Items × judges matrix of verdict codes (1 unsafe, 0 safe, NaN no verdict)."""
    return judge_matrix(study, "label")


def _flag_table(study: Study) -> pd.DataFrame:
    if study.flags is None:
        return pd.DataFrame(index=study.responses["item_id"])
    return study.flags.pivot(index="item_id", columns="detector", values="flagged").reindex(study.responses["item_id"])


def _clusters(responses: pd.DataFrame) -> tuple[NDArray, str]:
    if "behavior_id" in responses and responses["behavior_id"].notna().all():
        return responses["behavior_id"].to_numpy(dtype=object), "behavior_id"
    return responses["prompt"].to_numpy(dtype=object), "prompt"


# ---------------------------------------------------------------- the row writer


@dataclass
class _Emitter:
    settings: StatsSettings
    clusters: NDArray
    signature: str
    rng: np.random.Generator
    policy_mask: NDArray
    rows: list[dict] = field(default_factory=list)

    def row(self, statistic: str, judge_id: str, reference: str, subset: str, estimate: float, low: float, high: float,
            n_items: int, n_in_subset: int, method: str) -> None:
        self.rows.append(
            {
                "statistic": statistic, "judge_id": str(judge_id), "reference": str(reference), "subset": subset,
                "estimate": float(estimate), "ci_low": float(low), "ci_high": float(high),
                "n_items": int(n_items), "n_excluded": int(n_in_subset - n_items), "method": method,
                "signature": self.signature,
            }
        )

    def boot(self, statistics: dict[str, Callable], judge_id: str, reference: str, subset: str, mask: NDArray,
             item_sums: NDArray, *, n_used: int | None = None) -> dict[str, tuple[float, NDArray]]:
        """Bootstrap several statistics of the same sums at once (one resampling, shared replicates)."""
        used = mask & self.policy_mask
        sums = cluster_sums(item_sums[used], self.clusters[used])
        names = list(statistics)
        stacked = lambda s: np.stack([np.asarray(statistics[n](s), dtype=float) for n in names], axis=-1)  # noqa: E731
        n_items = int(item_sums[used, 0].sum()) if n_used is None else n_used
        out = {}
        if n_items == 0 or sums.shape[0] == 0:
            for name in names:
                self.row(name, judge_id, reference, subset, np.nan, np.nan, np.nan, 0, int(mask.sum()), "no items")
            return out
        result = bootstrap_ci(sums, stacked, n_boot=self.settings.n_boot, level=self.settings.level,
                              method=self.settings.ci_method, rng=self.rng)
        method = f"cluster bootstrap, {result.method}"
        for k, name in enumerate(names):
            self.row(name, judge_id, reference, subset, result.estimate[k], result.low[k], result.high[k],
                     n_items, int(mask.sum()), method)
            out[name] = (float(result.estimate[k]), result.replicates[:, k] if len(result.replicates) else np.empty(0))
        return out


# ---------------------------------------------------------------- the driver


def compute_stats(study: Study, settings: StatsSettings, *, version: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All statistics that apply to the tables present: (stats table, reliability-curve table)."""
    responses = study.responses
    clusters, cluster_name = _clusters(responses)
    flags = _flag_table(study)
    policy_mask = _policy_mask(flags, settings.incoherent)
    emit = _Emitter(settings, clusters, settings.signature(version, cluster_name), np.random.default_rng(settings.seed), policy_mask)

    humans = human_codes(study)
    reference = majority(humans.to_numpy()) if humans.shape[1] else np.full(len(responses), np.nan)
    has_reference = not np.all(np.isnan(reference))
    judges = judge_codes(study)
    subsets = _subsets(flags, humans)

    if humans.shape[1] >= 2:
        _human_agreement(emit, humans.to_numpy(), subsets)
        _human_ceiling(emit, humans, subsets)
    if has_reference:
        for judge_id in judges.columns:
            _judge_vs_reference(emit, judge_id, judges[judge_id].to_numpy(), reference, humans, subsets)
    if judges.shape[1] >= 2:
        _judge_vs_judge(emit, judges, subsets)
    reliability = pd.DataFrame()
    if has_reference and study.judgments is not None:
        reliability = _calibration(emit, judge_matrix(study, "p_unsafe"), reference, subsets)
    _rates(emit, judges, reference if has_reference else None, subsets, responses)
    _conclusions(emit, judges, reference if has_reference else None, responses)
    if has_reference and judges.shape[1]:
        _bias_audit(emit, judges, reference, responses, flags)
    _variance(emit, judges, responses)
    return pd.DataFrame(emit.rows), reliability


def _policy_mask(flags: pd.DataFrame, policy: Policy) -> NDArray:
    everything = np.ones(len(flags), dtype=bool)
    if policy == "include":
        return everything
    if "incoherent" not in flags:
        from judgekit.errors import InputError

        raise InputError(f"--incoherent {policy} needs the flags table; run `judgekit flag STUDY` first")
    incoherent = flags["incoherent"].fillna(False).to_numpy(dtype=bool)
    return ~incoherent if policy == "exclude" else incoherent


def _subsets(flags: pd.DataFrame, humans: pd.DataFrame) -> dict[str, NDArray]:
    n = len(flags)
    subsets = {"all": np.ones(n, dtype=bool)}
    if "incoherent" in flags:
        known = flags["incoherent"].notna().to_numpy()
        incoherent = flags["incoherent"].fillna(False).to_numpy(dtype=bool)
        subsets["coherent"] = known & ~incoherent
        subsets["incoherent"] = known & incoherent
        for detector in sorted(c for c in flags.columns if c != "incoherent"):
            subsets[f"flag={detector}"] = flags[detector].fillna(False).to_numpy(dtype=bool)
    if humans.shape[1] >= 2:
        codes = humans.to_numpy()
        rated = (~np.isnan(codes)).sum(axis=1) >= 2
        unanimous = rated & (np.nanmin(np.where(np.isnan(codes), np.inf, codes), axis=1)
                             == np.nanmax(np.where(np.isnan(codes), -np.inf, codes), axis=1))
        subsets["humans=unanimous"] = unanimous
        subsets["humans=split"] = rated & ~unanimous
    return subsets


def _core_subsets(subsets: dict[str, NDArray]) -> dict[str, NDArray]:
    return {k: v for k, v in subsets.items() if k in ("all", "coherent", "incoherent")}


def _multirater_block(emit: _Emitter, codes: NDArray, judge_id: str, reference: str, subsets: dict[str, NDArray]) -> None:
    counts = ag.category_counts(codes, np.array([0.0, 1.0]))
    multi = ag.multirater_item_sums(counts)
    kripp = ag.krippendorff_item_sums(counts)
    values = np.array([0.0, 1.0])
    for subset, mask in _core_subsets(subsets).items():
        emit.boot({"percent_agreement": ag.percent_agreement_from_sums, "fleiss_kappa": ag.fleiss_kappa_from_sums,
                   "gwet_ac1": ag.gwet_ac1_from_sums}, judge_id, reference, subset, mask, multi)
        emit.boot({"krippendorff_alpha": partial(ag.krippendorff_alpha_from_sums, values=values, level="nominal")},
                  judge_id, reference, subset, mask, kripp,
                  n_used=int(((~np.isnan(codes[mask & emit.policy_mask])).sum(axis=1) >= 2).sum()))


def _human_agreement(emit: _Emitter, codes: NDArray, subsets: dict[str, NDArray]) -> None:
    _multirater_block(emit, codes, "humans", "humans", subsets)


def _human_ceiling(emit: _Emitter, humans: pd.DataFrame, subsets: dict[str, NDArray]) -> None:
    codes = humans.to_numpy()
    pooled = []
    for k, annotator in enumerate(humans.columns):
        others = majority(np.delete(codes, k, axis=1))
        sums = two_rater_binary_sums(codes[:, k], others)
        pooled.append(sums)
        for subset, mask in _core_subsets(subsets).items():
            emit.boot({"accuracy": ag.two_rater_agreement_from_sums, "cohen_kappa": ag.cohen_kappa_from_sums},
                      annotator, "majority_of_others", subset, mask, sums)
    # Pooled: every (annotator, item) pair is a row; the item's cluster keeps the pairs together.
    stacked = np.concatenate(pooled)
    n_annotators = len(pooled)
    pooled_emit = _Emitter(emit.settings, np.tile(emit.clusters, n_annotators), emit.signature, emit.rng,
                           np.tile(emit.policy_mask, n_annotators), emit.rows)
    for subset, mask in _core_subsets(subsets).items():
        pooled_emit.boot({"accuracy": ag.two_rater_agreement_from_sums, "cohen_kappa": ag.cohen_kappa_from_sums},
                         "human_ceiling", "majority_of_others", subset, np.tile(mask, n_annotators), stacked)


def two_rater_binary_sums(first: NDArray, second: NDArray) -> NDArray:
    return ag.two_rater_item_sums(first, second, np.array([0.0, 1.0]))


def _column(k: int, sums: NDArray) -> NDArray:
    return sums[..., k]


def _judge_vs_reference(emit: _Emitter, judge_id: str, verdicts: NDArray, reference: NDArray, humans: pd.DataFrame,
                        subsets: dict[str, NDArray]) -> None:
    confusion = confusion_item_sums(reference, verdicts)
    pair = two_rater_binary_sums(verdicts, reference)
    metric_fns = {name: partial(metric_from_sums, name) for name in CONFUSION_METRICS}
    counts = {name: partial(_column, k) for k, name in enumerate(("tp", "fp", "fn", "tn"), start=1)}
    for subset, mask in subsets.items():
        if not mask.any():
            continue
        emit.boot(metric_fns, judge_id, HUMAN_MAJORITY, subset, mask, confusion)
        if subset in ("all", "coherent", "incoherent"):
            emit.boot({"cohen_kappa": ag.cohen_kappa_from_sums, "scott_pi": ag.scott_pi_from_sums,
                       "pabak": ag.pabak_from_sums, "prevalence_index": ag.prevalence_index_from_sums,
                       "bias_index": ag.bias_index_from_sums}, judge_id, HUMAN_MAJORITY, subset, mask, pair)
            two = np.column_stack([verdicts, reference])
            emit.boot({"gwet_ac1": ag.gwet_ac1_from_sums}, judge_id, HUMAN_MAJORITY, subset, mask,
                      ag.multirater_item_sums(ag.category_counts(two, np.array([0.0, 1.0]))),
                      n_used=int(pair[mask & emit.policy_mask, 0].sum()))
            used = mask & emit.policy_mask
            for name, fn in counts.items():
                emit.row(name, judge_id, HUMAN_MAJORITY, subset, fn(confusion[used].sum(axis=0)), np.nan, np.nan,
                         int(confusion[used, 0].sum()), int(mask.sum()), "count")
    share = np.nanmean(humans.to_numpy(), axis=1) if humans.shape[1] else np.full(len(verdicts), np.nan)
    for subset, mask in _core_subsets(subsets).items():
        emit.boot({"soft_agreement": harmful_rate_from_sums}, judge_id, "human_soft", subset, mask,
                  soft_agreement_item_sums(verdicts, share))
    for annotator in humans.columns:
        emit.boot({"accuracy": ag.two_rater_agreement_from_sums, "cohen_kappa": ag.cohen_kappa_from_sums},
                  judge_id, annotator, "all", subsets["all"], two_rater_binary_sums(verdicts, humans[annotator].to_numpy()))


def _judge_vs_judge(emit: _Emitter, judges: pd.DataFrame, subsets: dict[str, NDArray]) -> None:
    for first, second in itertools.combinations(judges.columns, 2):
        sums = two_rater_binary_sums(judges[first].to_numpy(), judges[second].to_numpy())
        for subset, mask in _core_subsets(subsets).items():
            emit.boot({"percent_agreement": ag.two_rater_agreement_from_sums, "cohen_kappa": ag.cohen_kappa_from_sums},
                      first, second, subset, mask, sums)
    if judges.shape[1] >= 2:
        _multirater_block(emit, judges.to_numpy(), "judges", "judges", subsets)


def _calibration(emit: _Emitter, p_unsafe: pd.DataFrame, reference: NDArray, subsets: dict[str, NDArray]) -> pd.DataFrame:
    curves = []
    for judge_id in p_unsafe.columns:
        p = p_unsafe[judge_id].to_numpy()
        usable = ~np.isnan(p) & ~np.isnan(reference) & emit.policy_mask
        if usable.sum() < 2 or len(np.unique(reference[usable])) < 2:
            continue
        n_bins = emit.settings.n_bins
        for subset, mask in _core_subsets(subsets).items():
            _calibration_block(emit, judge_id, subset, mask, p, reference, n_bins)
            subset_usable = usable & mask
            if subset_usable.any():
                curve = cal.reliability_curve(reference[subset_usable], p[subset_usable], n_bins=n_bins, level=emit.settings.level)
                curves.append(curve.assign(judge_id=judge_id, subset=subset))
        for method in ("platt", "temperature", "isotonic"):
            recalibrated = np.full(len(p), np.nan)
            recalibrated[usable] = cal.recalibrate_cv(reference[usable], p[usable], method=method,
                                                      groups=emit.clusters[usable], rng=emit.rng)
            _calibration_block(emit, judge_id, f"recalibrated={method}", subsets["all"], recalibrated, reference, n_bins,
                               brief=True)
        mean_floor, high_floor = cal.ece_noise_floor(p[usable], n_bins=n_bins, rng=emit.rng)
        emit.row("ece_noise_floor", judge_id, HUMAN_MAJORITY, "all", mean_floor, np.nan, high_floor, int(usable.sum()),
                 int(subsets["all"].sum()), "ECE of labels drawn from Bernoulli(p_unsafe), 200 draws: mean, 95th percentile")
    return pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()


def _calibration_block(emit: _Emitter, judge_id: str, subset: str, mask: NDArray, p: NDArray, reference: NDArray,
                       n_bins: int, *, brief: bool = False) -> None:
    usable = ~np.isnan(p) & ~np.isnan(reference) & mask & emit.policy_mask
    if not usable.any():
        return
    uniform = cal.bin_edges(p[usable], n_bins=n_bins, strategy="uniform")
    binned = cal.binned_item_sums(reference, p, uniform)
    brier = cal.brier_item_sums(reference, p)
    combined = np.hstack([brier, binned])
    split = lambda fn: lambda s: fn(s[..., 3:])  # noqa: E731
    fns: dict[str, Callable] = {"ece": split(cal.ece_from_sums), "brier": cal.brier_from_sums}
    if not brief:
        fns |= {
            "ece_l2_squared_debiased": split(partial(cal.ece_from_sums, norm="l2", debiased=True)),
            "mce": split(cal.mce_from_sums),
            "log_loss": cal.log_loss_from_sums,
            "brier_reliability": split(_reliability_part),
            "brier_resolution": split(_resolution_part),
            "brier_uncertainty": split(_uncertainty_part),
        }
    emit.boot(fns, judge_id, HUMAN_MAJORITY, subset, mask & ~np.isnan(p), combined)
    if brief:
        return
    quantile = cal.bin_edges(p[usable], n_bins=n_bins, strategy="quantile")
    emit.boot({"ece_equal_mass": cal.ece_from_sums}, judge_id, HUMAN_MAJORITY, subset, mask & ~np.isnan(p),
              cal.binned_item_sums(reference, p, quantile), n_used=int(usable.sum()))
    if len(np.unique(reference[usable])) == 2:
        levels = cal.score_levels(p[usable])
        emit.boot({"auroc": cal.auroc_from_sums, "auprc": cal.auprc_from_sums}, judge_id, HUMAN_MAJORITY, subset,
                  mask & ~np.isnan(p), cal.ranking_item_sums(reference, p, levels), n_used=int(usable.sum()))


def _bins(sums: NDArray) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray]:
    counts, sum_p, sum_y = cal._bin_parts(sums)
    n = counts.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        base = sum_y.sum(axis=-1) / n
        mean_p = np.where(counts > 0, sum_p / np.where(counts > 0, counts, 1), 0)
        mean_y = np.where(counts > 0, sum_y / np.where(counts > 0, counts, 1), 0)
    return counts, n, mean_p, mean_y, base


def _reliability_part(sums: NDArray) -> NDArray:
    counts, n, mean_p, mean_y, _ = _bins(sums)
    return (counts * (mean_p - mean_y) ** 2).sum(axis=-1) / n


def _resolution_part(sums: NDArray) -> NDArray:
    counts, n, _, mean_y, base = _bins(sums)
    return (counts * (mean_y - base[..., None]) ** 2).sum(axis=-1) / n


def _uncertainty_part(sums: NDArray) -> NDArray:
    _, _, _, _, base = _bins(sums)
    return base * (1 - base)


def _rates(emit: _Emitter, judges: pd.DataFrame, reference: NDArray | None, subsets: dict[str, NDArray],
           responses: pd.DataFrame) -> None:
    raters = {j: judges[j].to_numpy() for j in judges.columns}
    if reference is not None:
        raters[HUMAN_MAJORITY] = reference
    all_subsets = {**_core_subsets(subsets), **_group_subsets(responses, ("model", "benchmark"))}
    for subset, mask in all_subsets.items():
        for rater, verdicts in raters.items():
            emit.boot({"harmful_rate": harmful_rate_from_sums}, rater, "none", subset, mask, rate_item_sums(verdicts))


def _group_subsets(responses: pd.DataFrame, columns: tuple[str, ...]) -> dict[str, NDArray]:
    keys = [c for c in columns if c in responses and responses[c].notna().any()]
    if not keys:
        return {}
    subsets = {}
    for values, index in responses.groupby(keys, dropna=False, sort=True).indices.items():
        values = values if isinstance(values, tuple) else (values,)
        mask = np.zeros(len(responses), dtype=bool)
        mask[index] = True
        subsets["|".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))] = mask
    return subsets


def finetune_comparisons(responses: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(fine-tuned model, its base model, goal) for every fine-tuned model whose base is in the study."""
    needed = {"model", "base_model", "finetune_goal"}
    if not needed <= set(responses.columns):
        return []
    models = set(responses["model"].dropna())
    pairs = responses.loc[responses["finetune_goal"].notna(), ["model", "base_model", "finetune_goal"]].drop_duplicates()
    return [(m, b, g) for m, b, g in pairs.itertuples(index=False) if b in models and m != b]


def _conclusions(emit: _Emitter, judges: pd.DataFrame, reference: NDArray | None, responses: pd.DataFrame) -> None:
    raters = {j: judges[j].to_numpy() for j in judges.columns}
    if reference is not None:
        raters[HUMAN_MAJORITY] = reference
    benchmarks = sorted(responses["benchmark"].dropna().unique()) if "benchmark" in responses else []
    scopes = [("all", np.ones(len(responses), dtype=bool))] + [
        (b, (responses["benchmark"] == b).to_numpy()) for b in benchmarks
    ]
    for finetuned, base, goal in finetune_comparisons(responses):
        treated = (responses["model"] == finetuned).to_numpy()
        control = (responses["model"] == base).to_numpy()
        for benchmark, in_scope in scopes:
            mask = in_scope & (treated | control)
            subset = f"comparison={finetuned} vs {base}|goal={goal}|benchmark={benchmark}"
            for rater, verdicts in raters.items():
                n = int((~np.isnan(verdicts[mask & emit.policy_mask])).sum())
                out = emit.boot({"finetune_effect": rate_difference_from_sums}, rater, "base_model", subset, mask,
                                paired_rate_item_sums(verdicts, treated), n_used=n)
                if "finetune_effect" in out:
                    estimate, replicates = out["finetune_effect"]
                    emit.row("finetune_effect_p_value", rater, "base_model", subset, bootstrap_p_value(replicates),
                             np.nan, np.nan, n, int(mask.sum()), "bootstrap, two-sided")
                    emit.row("finetune_effect_sign_flip_probability", rater, "base_model", subset,
                             sign_flip_probability(estimate, replicates), np.nan, np.nan, n, int(mask.sum()),
                             "share of bootstrap replicates with the opposite sign")
    if reference is not None and "model" in responses and responses["model"].nunique() >= 3:
        _ranking_stability(emit, judges, reference, responses, scopes)


def _ranking_stability(emit: _Emitter, judges: pd.DataFrame, reference: NDArray, responses: pd.DataFrame, scopes) -> None:
    models = sorted(responses["model"].dropna().unique())
    model_of = responses["model"].to_numpy()
    for benchmark, in_scope in scopes:
        mask = in_scope & emit.policy_mask
        per_model = lambda verdicts: np.hstack([rate_item_sums(np.where(model_of == m, verdicts, np.nan)) for m in models])  # noqa: E731
        ref_sums = per_model(reference)
        for judge_id in judges.columns:
            combined = np.hstack([per_model(judges[judge_id].to_numpy()), ref_sums])
            k = 2 * len(models)

            def tau(s: NDArray, k: int = k) -> NDArray:
                judge_rates = harmful_rate_from_sums(s[..., :k].reshape(*s.shape[:-1], -1, 2))
                ref_rates = harmful_rate_from_sums(s[..., k:].reshape(*s.shape[:-1], -1, 2))
                return kendall_tau_b(judge_rates, ref_rates)

            emit.boot({"ranking_kendall_tau": tau}, judge_id, HUMAN_MAJORITY, f"models|benchmark={benchmark}",
                      in_scope, combined, n_used=int(mask.sum()))


def _bias_audit(emit: _Emitter, judges: pd.DataFrame, reference: NDArray, responses: pd.DataFrame, flags: pd.DataFrame) -> None:
    length = responses["response"].str.len().to_numpy()
    quartile = pd.qcut(pd.Series(length).rank(method="first"), 4, labels=["Q1", "Q2", "Q3", "Q4"]).astype(str).to_numpy()
    refusal = _refusal_marker(responses)
    splits = {f"length={q}": quartile == q for q in ("Q1", "Q2", "Q3", "Q4")}
    splits |= {f"refusal_marker={v}": refusal == v for v in ("yes", "no")}
    splits |= _group_subsets(responses, ("category",)) | _group_subsets(responses, ("model",))
    correct = {}
    for judge_id in judges.columns:
        verdicts = judges[judge_id].to_numpy()
        confusion = confusion_item_sums(reference, verdicts)
        for subset, mask in splits.items():
            if mask.any():
                emit.boot({"accuracy": partial(metric_from_sums, "accuracy")}, judge_id, HUMAN_MAJORITY, subset, mask, confusion)
        correct[judge_id] = np.where(np.isnan(verdicts) | np.isnan(reference), np.nan, (verdicts == reference).astype(float))
        _error_regression(emit, judge_id, correct[judge_id], responses, flags, np.log1p(length), refusal)
    _paired_judge_tests(emit, correct)


def _refusal_marker(responses: pd.DataFrame) -> NDArray:
    if "refusal_style" in responses:
        return responses["refusal_style"].fillna("none").astype(str).to_numpy()
    from judgekit.judges.catalog import load_preset

    markers = load_preset(REFUSAL_MARKERS_PRESET)["markers"]
    return np.array(["yes" if any(m in text for m in markers) else "no" for text in responses["response"]])


def _error_regression(emit: _Emitter, judge_id: str, correct: NDArray, responses: pd.DataFrame, flags: pd.DataFrame,
                      log_length: NDArray, refusal: NDArray) -> None:
    frame = pd.DataFrame({"error": 1 - correct, "log_length": log_length, "refusal_marker": refusal,
                          "cluster": emit.clusters.astype(str)})
    terms = ["log_length", "C(refusal_marker)"]
    if "incoherent" in flags:
        frame["incoherent"] = flags["incoherent"].fillna(False).to_numpy(dtype=bool).astype(float)
        terms.insert(0, "incoherent")
    # Category is left out of the regression: it is constant within a behaviour cluster, so with
    # cluster-robust errors its many levels leave too few clusters per parameter. Its effect is
    # reported as split accuracies instead.
    for column in ("model",):
        if column in responses and responses[column].nunique() >= 2:
            frame[column] = responses[column].fillna("none").astype(str).to_numpy()
            terms.append(f"C({column})")
    frame = frame[~np.isnan(frame["error"].to_numpy()) & emit.policy_mask]
    if frame.empty or frame["error"].nunique() < 2:
        return
    formula = "error ~ " + " + ".join(t for t in terms if t.strip("C()") not in frame or frame[t.strip("C()")].nunique() >= 2)
    table = error_regression(frame, formula=formula, cluster="cluster")
    method = f"logistic GLM, cluster-robust SE; {formula}"
    for row in table.itertuples(index=False):
        if row.term == "Intercept":
            continue
        note = f"; {row.note}" if row.note else ""
        emit.row("error_odds_ratio", judge_id, HUMAN_MAJORITY, f"term={row.term}", row.odds_ratio, row.ci_low, row.ci_high,
                 row.n_items, len(frame), method + note)
        emit.row("error_odds_ratio_p_value", judge_id, HUMAN_MAJORITY, f"term={row.term}", row.p_value, np.nan, np.nan,
                 row.n_items, len(frame), method + note)


def _paired_judge_tests(emit: _Emitter, correct: dict[str, NDArray]) -> None:
    names = list(correct)
    everything = np.ones(len(emit.clusters), dtype=bool)
    for first, second in itertools.combinations(names, 2):
        a, b = correct[first], correct[second]
        test, discordant = mcnemar_test(a[emit.policy_mask], b[emit.policy_mask])
        emit.row("mcnemar_p_value", first, second, "all", test.p_value, np.nan, np.nan, test.n_items,
                 int(emit.policy_mask.sum()), f"{test.method}; only {first} right: {discordant['b']:.0f}, only {second} right: {discordant['c']:.0f}")
        both = ~(np.isnan(a) | np.isnan(b))
        sums = np.column_stack([both, np.where(both, a, 0), np.where(both, b, 0)]).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            emit.boot({"accuracy_difference": lambda s: (s[..., 1] - s[..., 2]) / s[..., 0]}, first, second, "all",
                      everything, sums)
    if len(names) >= 3:
        matrix = np.column_stack([correct[n] for n in names])[emit.policy_mask]
        test = cochrans_q_test(matrix)
        emit.row("cochran_q", "judges", HUMAN_MAJORITY, "all", test.statistic, np.nan, np.nan, test.n_items,
                 int(emit.policy_mask.sum()), test.method)
        emit.row("cochran_q_p_value", "judges", HUMAN_MAJORITY, "all", test.p_value, np.nan, np.nan, test.n_items,
                 int(emit.policy_mask.sum()), test.method)


VARIANCE_BOOT_MAX = 300


def _variance(emit: _Emitter, judges: pd.DataFrame, responses: pd.DataFrame) -> None:
    if judges.shape[1] == 0:
        return
    long = judges.assign(item_id=responses["item_id"].to_numpy(), cluster=emit.clusters.astype(str)).melt(
        id_vars=["item_id", "cluster"], var_name="judge_id", value_name="unsafe")
    attributes = responses.set_index("item_id")
    for column in ("benchmark", "finetune_goal", "model", "prompt"):
        if column in attributes:
            long[column] = attributes[column].reindex(long["item_id"]).to_numpy()
    if "finetune_goal" in long:
        long["finetune_goal"] = long["finetune_goal"].fillna("base")
    keep = long["item_id"].isin(responses.loc[emit.policy_mask, "item_id"]) & long["unsafe"].notna()
    data = long[keep].reset_index(drop=True)
    table = variance_decomposition(data)
    if table.empty:
        return
    # Cluster bootstrap by refitting: each resample weights rows by how often their behaviour was drawn.
    n_boot = min(emit.settings.n_boot, VARIANCE_BOOT_MAX)
    factors = used_factors(data)
    blocks = design_blocks(data, factors)
    y = data["unsafe"].to_numpy(dtype=float)
    cluster_codes, names = pd.factorize(data["cluster"], sort=True)
    shares = np.array([sequential_shares(blocks, y, counts[cluster_codes].astype(float))
                       for counts in multiplicities(emit.rng, len(names), n_boot)])
    tail = (1 - emit.settings.level) / 2 * 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(shares, [tail, 100 - tail], axis=0)
    formula = "unsafe ~ " + " + ".join(f"C({f})" for f in table["factor"] if f != "residual")
    for k, row in enumerate(table.itertuples(index=False)):
        emit.row("variance_share", "all", "none", f"factor={row.factor}", row.share, low[k], high[k], int(keep.sum()),
                 int(len(long)), f"OLS type-I ANOVA (sequential), {formula}; cluster bootstrap by refitting, "
                 f"percentile, {n_boot} resamples")
