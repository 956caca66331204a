"""Agreement among judges on their native graded scales, per dimension: overall, per coherence group and per model.

Judges of one dimension are compared when they declare the same scale (min, max) in study.json ``judge_scales``;
scores on different scales are not comparable as numbers. Rows carry the dimension in their ``dimension`` column;
per-model rows name the model in their subset (kind ``model``). The binary verdicts cut from these scores are
analysed by the other blocks, each row's method naming the threshold.
"""

from __future__ import annotations

import itertools
from functools import partial

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from judgekit.analysis.inputs import StudyArrays, core_subsets
from judgekit.analysis.rows import JUDGE_SET, RowWriter, Statistic
from judgekit.analysis.subsets import Subset, subset
from judgekit.store.schema import JudgeScale
from judgekit.stats import agreement as ag

MULTIRATER = ("krippendorff_alpha_interval", "krippendorff_alpha_ordinal")
PAIRWISE = ("weighted_kappa_linear", "weighted_kappa_quadratic", "spearman_rho")
STATISTICS = (*MULTIRATER, *PAIRWISE)
MAX_ORDINAL_LEVELS = 32  # the ordinal coincidence matrix has levels^2 cells per item
MAX_INTEGER_DOMAIN = 1000  # a declared integer scale wider than this uses the observed values as its domain


def value_domain(scale: JudgeScale, scores: NDArray) -> NDArray:
    """The scale's value domain: its integer points when the scale and every score are integers, else the values seen."""
    observed = np.unique(scores[~np.isnan(scores)])
    integral = float(scale.min).is_integer() and float(scale.max).is_integer() and np.all(observed == np.round(observed))
    if integral and scale.max - scale.min <= MAX_INTEGER_DOMAIN:
        return np.arange(scale.min, scale.max + 1.0)
    return observed


def scale_groups(data: StudyArrays, dimension: str) -> list[tuple[JudgeScale, list[str]]]:
    """Judges scoring ``dimension``, grouped by their declared (min, max); the first judge's scale stands for the group."""
    groups: dict[tuple[float, float], tuple[JudgeScale, list[str]]] = {}
    for judge in data.scores[dimension].columns:
        scale = next(s for s in data.scales if s.judge_id == judge and s.dimension == dimension)
        groups.setdefault((scale.min, scale.max), (scale, []))[1].append(judge)
    return list(groups.values())


def _subsets(data: StudyArrays) -> list[tuple[Subset, NDArray]]:
    out = core_subsets(data)
    if "model" in data.responses:
        models = data.responses["model"]
        out += [(subset("model", str(m), model=str(m)), (models == m).to_numpy()) for m in sorted(models.dropna().unique())]
    return out


def _pair_statistics(domain: NDArray) -> dict[str, Statistic]:
    levels = len(domain)
    return {"weighted_kappa_linear": Statistic(partial(ag.weighted_kappa_from_sums, values=domain, power=1)),
            "weighted_kappa_quadratic": Statistic(partial(ag.weighted_kappa_from_sums, values=domain, power=2)),
            "spearman_rho": Statistic(partial(ag.spearman_rho_from_sums, n_first=levels, n_second=levels))}


def _not_computed(writer: RowWriter, names: tuple[str, ...], judge: str, reference: str, why: str, dimension: str) -> None:
    for name in names:
        writer.add(name, judge, reference, Subset("all", "all", "all"), np.nan, np.nan, np.nan, n_items=0,
                   n_in_subset=writer.data.n_items, method=f"not computed: {why}", dimension=dimension)


def graded_agreement(writer: RowWriter, data: StudyArrays) -> None:
    for dimension in sorted(data.scores):
        for scale, judges in scale_groups(data, dimension):
            scored = data.scores[dimension][judges].to_numpy()
            on_scale = f"{dimension} on {scale.min:g}-{scale.max:g}"
            if len(judges) < 2:
                _not_computed(writer, STATISTICS, judges[0], JUDGE_SET,
                              f"only one judge ({judges[0]}) scores {on_scale}", dimension)
                continue
            domain = value_domain(scale, scored)
            _multirater_rows(writer, data, scored, domain, dimension, on_scale)
            statistics = _pair_statistics(domain)
            for (i, first), (j, second) in itertools.combinations(enumerate(judges), 2):
                table = ag.pair_table_item_sums(scored[:, i], scored[:, j], domain, domain)
                sums = sparse.csr_array(table) if table.shape[1] > 256 else table
                both = ~np.isnan(scored[:, [i, j]]).any(axis=1)
                for group, mask in _subsets(data):
                    writer.block(statistics, first, second, group, mask, sums, counted=both, key="graded-pair",
                                 dimension=dimension)


def _multirater_rows(writer: RowWriter, data: StudyArrays, scored: NDArray, domain: NDArray, dimension: str,
                     on_scale: str) -> None:
    pairable = (~np.isnan(scored)).sum(axis=1) >= 2
    interval = {"krippendorff_alpha_interval": Statistic(ag.krippendorff_alpha_interval_from_sums)}
    interval_sums = ag.interval_alpha_item_sums(scored)
    ordinal = {"krippendorff_alpha_ordinal": Statistic(partial(ag.krippendorff_alpha_from_sums, values=domain,
                                                               level="ordinal"))}
    ordinal_sums = (ag.krippendorff_item_sums(ag.category_counts(scored, domain)) if len(domain) <= MAX_ORDINAL_LEVELS
                    else None)
    if ordinal_sums is None:
        _not_computed(writer, ("krippendorff_alpha_ordinal",), JUDGE_SET, JUDGE_SET,
                      f"{len(domain)} levels of {on_scale} (more than {MAX_ORDINAL_LEVELS}); read the interval alpha",
                      dimension)
    for group, mask in _subsets(data):
        writer.block(interval, JUDGE_SET, JUDGE_SET, group, mask, interval_sums, counted=pairable, dimension=dimension)
        if ordinal_sums is not None:
            writer.block(ordinal, JUDGE_SET, JUDGE_SET, group, mask, ordinal_sums, counted=pairable, dimension=dimension)

