"""Variance components of the verdict: judge, benchmark, goal, model, prompt, judge × prompt, residual."""

from __future__ import annotations

import warnings

import numpy as np

from judgekit.analysis.inputs import StudyArrays
from judgekit.analysis.rows import RowWriter, row_generator
from judgekit.analysis.subsets import subset
from judgekit.stats.resampling import multiplicities
from judgekit.stats.variance import FACTORS, RESIDUAL, variance_components, variance_design

METHOD = ("crossed random-effects model, method of moments (Henderson I), negative estimates set to 0; "
          "cluster bootstrap by refitting, percentile")


def variance_decomposition(writer: RowWriter, data: StudyArrays) -> None:
    if data.judges.shape[1] == 0:
        return
    long = data.judges.assign(cluster=data.clusters)[data.policy_mask].reset_index(drop=True)
    attributes = data.responses[data.policy_mask].reset_index(drop=True)
    columns = {c: attributes[c] for c in FACTORS if c in attributes and c != "judge_id"}
    if "finetune_goal" in columns:
        columns["finetune_goal"] = columns["finetune_goal"].fillna("base")
    frame = long.assign(**columns).melt(id_vars=["cluster", *columns], var_name="judge_id", value_name="unsafe")
    frame = frame[frame["unsafe"].notna()]
    if frame.empty or frame["unsafe"].nunique() < 2:
        return
    design = variance_design(frame, cluster="cluster")
    if not design.factors:
        return
    estimate = np.clip(variance_components(design), 0, None)
    n_resamples = min(writer.settings.n_boot, writer.settings.variance_resamples)
    rng = row_generator(writer.settings.seed, "variance", *design.factors)
    replicates = np.array([variance_components(design, w.astype(float))
                           for w in multiplicities(rng, design.n_clusters, n_resamples)]).clip(0, None)
    tail = (1 - writer.settings.level) / 2 * 100
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        shares = replicates / replicates.sum(axis=1, keepdims=True)
        bounds = {"variance_component": np.nanpercentile(replicates, [tail, 100 - tail], axis=0),
                  "variance_share": np.nanpercentile(shares, [tail, 100 - tail], axis=0)}
    values = {"variance_component": estimate, "variance_share": estimate / estimate.sum()}
    dropped = f"; left out: {', '.join(design.dropped)}" if design.dropped else ""
    few = [f"few clusters (n={design.n_clusters})"] if design.n_clusters < writer.settings.min_clusters else []
    for k, factor in enumerate((*design.factors, RESIDUAL)):
        group = subset("factor", factor)
        for statistic in ("variance_component", "variance_share"):
            low, high = bounds[statistic][:, k]
            writer.add(statistic, "all", "none", group, values[statistic][k], low, high, n_items=len(frame),
                       n_in_subset=int(data.judges.size), method=METHOD + dropped, resamples=n_resamples,
                       warning="; ".join(few), interval="bootstrap-percentile")
