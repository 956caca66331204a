"""Calibration of each judge's P(unsafe) against the human reference, and the reliability-curve table."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from judgekit.analysis.inputs import StudyArrays, core_subsets
from judgekit.analysis.rows import RowWriter, Statistic, row_generator
from judgekit.analysis.subsets import ALL, Subset, subset
from judgekit.store.schema import HUMAN_MAJORITY
from judgekit.stats import calibration as cal

NOISE_DRAWS = 200


# Row sums: the three Brier columns (observed, squared error, log loss), the two moments of the
# within-bin terms, then the binned sums.
MOMENTS_FROM, BINNED_FROM = 3, 5


def _binned(fn):
    """A statistic of the binned sums."""
    return lambda s: fn(s[..., BINNED_FROM:])


def _brier_term(k: int):
    """Term ``k`` of the Brier decomposition, from the moments and the binned sums."""
    return Statistic(lambda s: cal.brier_decomposition_from_sums(s[..., MOMENTS_FROM:])[..., k])


BRIEF = {"ece": Statistic(_binned(cal.ece_from_sums)), "brier": Statistic(cal.brier_from_sums)}
FULL = BRIEF | {
    "ece_l2_squared_debiased": Statistic(_binned(partial(cal.ece_from_sums, norm="l2", debiased=True))),
    "mce": Statistic(_binned(cal.mce_from_sums)),
    "log_loss": Statistic(cal.log_loss_from_sums),
} | {f"brier_{term}": _brier_term(k) for k, term in enumerate(cal.BRIER_TERMS)}

ONE_CLASS = "the reference has one class on these items"
RANKING = {"auroc": Statistic(cal.auroc_from_sums, gradient=cal.auroc_gradient, undefined=ONE_CLASS),
           "auprc": Statistic(cal.auprc_from_sums, gradient=cal.auprc_gradient, undefined=ONE_CLASS)}


def calibration_rows(writer: RowWriter, judge_id: str, group: Subset, mask: NDArray, p: NDArray, reference: NDArray,
                     *, brief: bool = False) -> None:
    n_bins = writer.settings.n_bins
    usable = ~np.isnan(p) & ~np.isnan(reference) & mask & writer.data.policy_mask
    if not usable.any():
        return
    uniform = cal.binned_item_sums(reference, p, cal.bin_edges(p[usable], n_bins=n_bins, strategy="uniform"))
    # The whole subset is the mask, so items without P(unsafe) or a reference count as excluded, as on accuracy rows.
    writer.block(BRIEF if brief else FULL, judge_id, HUMAN_MAJORITY, group, mask,
                 np.hstack([cal.brier_item_sums(reference, p), cal.brier_moment_item_sums(reference, p), uniform]))
    if brief:
        return
    quantile = cal.bin_edges(p[usable], n_bins=n_bins, strategy="quantile")
    writer.block({"ece_equal_mass": Statistic(cal.ece_from_sums)}, judge_id, HUMAN_MAJORITY, group, mask,
                 cal.binned_item_sums(reference, p, quantile), counted=usable)
    if len(np.unique(reference[usable])) == 2:
        levels = cal.score_levels(p[usable])
        writer.block(RANKING, judge_id, HUMAN_MAJORITY, group, mask, cal.ranking_item_sums(reference, p, levels),
                     counted=usable)


def calibration(writer: RowWriter, data: StudyArrays) -> pd.DataFrame:
    """Calibration rows per judge with probabilities; returns the reliability-curve table."""
    if not data.has_reference:
        return pd.DataFrame()
    curves = []
    settings = writer.settings
    everything = np.ones(data.n_items, dtype=bool)
    for judge_id in data.p_unsafe.columns:
        p = data.p_unsafe[judge_id].to_numpy()
        usable = ~np.isnan(p) & ~np.isnan(data.reference) & data.policy_mask
        if usable.sum() < 2 or len(np.unique(data.reference[usable])) < 2:
            continue
        for group, mask in core_subsets(data):
            calibration_rows(writer, judge_id, group, mask, p, data.reference)
            if (usable & mask).any():
                curve = cal.reliability_curve(data.reference[usable & mask], p[usable & mask], n_bins=settings.n_bins,
                                              level=settings.level)
                curves.append(curve.assign(judge_id=judge_id, subset=group.label))
        clusters_used = len(np.unique(np.asarray(data.clusters[usable]).astype(str)))
        for method in ("platt", "temperature", "isotonic"):
            if clusters_used < 2:  # cross-fitting needs another cluster to fit on
                writer.add("ece", judge_id, HUMAN_MAJORITY, subset("recalibrated", method), np.nan, np.nan, np.nan,
                           n_items=0, n_in_subset=data.n_items, method=f"{method} recalibration, cross-fitted by cluster",
                           excluded_reason=f"not computed: {clusters_used} cluster with labels and P(unsafe); "
                                           "held-out recalibration needs at least 2")
                continue
            recalibrated = np.full(len(p), np.nan)
            recalibrated[usable] = cal.recalibrate_cv(data.reference[usable], p[usable], method=method,
                                                      groups=data.clusters[usable],
                                                      rng=row_generator(settings.seed, "recalibrate", judge_id, method))
            calibration_rows(writer, judge_id, subset("recalibrated", method), everything, recalibrated, data.reference,
                             brief=True)
        _noise_floor(writer, judge_id, p[usable], n_in_subset=data.n_items)
    return pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()


def _noise_floor(writer: RowWriter, judge_id: str, p: NDArray, *, n_in_subset: int) -> None:
    """Mean and 95th percentile of the ECE of labels drawn from the judge's own probabilities: two point values."""
    draws = cal.ece_noise_floor_draws(p, n_bins=writer.settings.n_bins, n_sim=NOISE_DRAWS,
                                      rng=row_generator(writer.settings.seed, "ece_noise_floor", judge_id))
    method = f"ECE of labels drawn from Bernoulli(p_unsafe), {NOISE_DRAWS} draws"
    for name, value in (("ece_noise_floor", draws.mean()), ("ece_noise_floor_p95", np.quantile(draws, 0.95))):
        writer.add(name, judge_id, HUMAN_MAJORITY, ALL, value, np.nan, np.nan, n_items=len(p), n_in_subset=n_in_subset,
                   method=f"{method}: {'mean' if name == 'ece_noise_floor' else '95th percentile'}", resamples=NOISE_DRAWS,
                   interval="simulation")
