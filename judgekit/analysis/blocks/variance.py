"""Variance components of the verdict: judge, benchmark, goal, model, prompt, judge × prompt, residual."""

from __future__ import annotations

from judgekit.analysis.inputs import StudyArrays
from judgekit.analysis.rows import RowWriter, row_generator
from judgekit.analysis.subsets import subset
from judgekit.stats.variance import FACTORS, bootstrap_variance_components

METHOD = ("crossed random-effects model, method of moments (Henderson I), negative estimates set to 0; "
          "cluster bootstrap by refitting (a cluster drawn k times brings k new levels of what it nests), percentile")
FIXED_NOTE = ("levels cross the resampled clusters (few levels, not resampled): a fixed spread of these levels, "
              "no interval")


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
    n_resamples = min(writer.settings.n_boot, writer.settings.variance_resamples)
    rng = row_generator(writer.settings.seed, "variance")
    fit = bootstrap_variance_components(frame, cluster="cluster", n_resamples=n_resamples, level=writer.settings.level,
                                        rng=rng)
    if len(fit.names) < 2:
        return
    dropped = f"; left out: {', '.join(fit.dropped)}" if fit.dropped else ""
    few = [f"few clusters (n={fit.n_clusters})"] if fit.n_clusters < writer.settings.min_clusters else []
    for k, factor in enumerate(fit.names):
        group = subset("factor", factor)
        fixed = [] if fit.resampled[k] else [FIXED_NOTE]
        for statistic, value, low, high in (("variance_component", fit.estimate, fit.low, fit.high),
                                            ("variance_share", fit.share, fit.share_low, fit.share_high)):
            writer.add(statistic, "all", "none", group, value[k], low[k], high[k], n_items=len(frame),
                       n_in_subset=int(data.judges.size), method=METHOD + dropped, resamples=n_resamples,
                       warning="; ".join(few + fixed), interval="bootstrap-percentile" if fit.resampled[k] else "none")
