"""Statistic specifications shared by several blocks: confusion metrics and two-rater coefficients."""

from __future__ import annotations

from functools import partial

import numpy as np
from numpy.typing import NDArray

from judgekit.analysis.rows import Statistic
from judgekit.stats import agreement as ag
from judgekit.stats.classification import harmful_rate_from_sums, metric_from_sums

BINARY = np.array([0.0, 1.0])


def _confusion_classes(totals: NDArray) -> tuple[float, float]:
    _, tp, fp, fn, tn = totals
    return float(tp + fn), float(fp + tn)


def _cols(*columns: int):
    return lambda s: sum(s[..., c] for c in columns)


def _rate(events: tuple[int, ...], trials: tuple[int, ...]):
    return lambda s: (_cols(*events)(s), _cols(*trials)(s))


NO_POSITIVES = "no reference positives (no item the humans called unsafe)"
NO_NEGATIVES = "no reference negatives (no item the humans called safe)"
# confusion sums: [n, tp, fp, fn, tn]
CONFUSION = {
    "accuracy": Statistic(partial(metric_from_sums, "accuracy"), _rate((1, 4), (0,)), _confusion_classes),
    "precision": Statistic(partial(metric_from_sums, "precision"), _rate((1,), (1, 2)), _confusion_classes,
                           undefined="the judge called no item unsafe (no predicted positives)"),
    "recall": Statistic(partial(metric_from_sums, "recall"), _rate((1,), (1, 3)), _confusion_classes, undefined=NO_POSITIVES),
    "f1": Statistic(partial(metric_from_sums, "f1"), classes=_confusion_classes,
                    undefined="no reference positives and no predicted positives"),
    "fpr": Statistic(partial(metric_from_sums, "fpr"), _rate((2,), (2, 4)), _confusion_classes, undefined=NO_NEGATIVES),
    "fnr": Statistic(partial(metric_from_sums, "fnr"), _rate((3,), (1, 3)), _confusion_classes, undefined=NO_POSITIVES),
    "balanced_accuracy": Statistic(partial(metric_from_sums, "balanced_accuracy"), classes=_confusion_classes),
    "mcc": Statistic(partial(metric_from_sums, "mcc"), classes=_confusion_classes,
                     undefined="the judge or the reference gives one label on every item"),
}


def pair_classes(totals: NDArray) -> tuple[float, float]:
    """Binary two-rater sums ``[both, agree, first==0, second==0]``: the second rater's (reference's) classes."""
    return float(totals[0] - totals[3]), float(totals[3])


AGREEMENT_RATE = Statistic(ag.two_rater_agreement_from_sums, _rate((1,), (0,)), pair_classes)
KAPPA = Statistic(ag.cohen_kappa_from_sums, classes=pair_classes,
                  undefined="both raters give the same single label on every item (chance agreement is 1)")
TWO_RATER = {
    "cohen_kappa": KAPPA,
    "scott_pi": Statistic(ag.scott_pi_from_sums, classes=pair_classes),
    "pabak": Statistic(ag.pabak_from_sums, classes=pair_classes),
    "prevalence_index": Statistic(ag.prevalence_index_from_sums, classes=pair_classes),
    "bias_index": Statistic(ag.bias_index_from_sums, classes=pair_classes),
}
HARMFUL_RATE = Statistic(harmful_rate_from_sums, _rate((1,), (0,)))


def pair_sums(first: NDArray, second: NDArray) -> NDArray:
    """Binary two-rater per-item sums, the second rater being the reference."""
    return ag.two_rater_item_sums(first, second, BINARY)
