"""The vectorised variance-components bootstrap against the loop it replaced: refit each resample's rows.

The reference below is the loop ``bootstrap_variance_components`` ran until issue 31 (kept here, not in the
package): draw the clusters, copy their rows, relabel the levels of factors nested in the clusters per copy, and
refit with ``variance_design`` / ``variance_components`` (checked against statsmodels' REML in
``test_stats_inference.py``). The vectorised code must give the same replicates to 1e-12, NaN where the refit
keeps other factors, from the same seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from judgekit.stats.variance import FACTORS, INTERACTIONS, bootstrap_variance_components, variance_components, variance_design


def reference_replicates(frame: pd.DataFrame, *, cluster: str, n_resamples: int, seed: int,
                         factors=FACTORS, interactions=INTERACTIONS) -> np.ndarray:
    data = frame[frame["unsafe"].notna()].reset_index(drop=True)
    design = variance_design(data, factors=factors, interactions=interactions, cluster=cluster)
    present = [f for f in factors if f in data]
    nested = {f for f in present if (data.groupby(f, sort=False)[cluster].nunique() <= 1).all()}
    cluster_codes, cluster_names = pd.factorize(data[cluster].astype(str), sort=True)
    order = np.argsort(cluster_codes, kind="stable")
    members = np.split(order, np.cumsum(np.bincount(cluster_codes, minlength=len(cluster_names)))[:-1])
    codes = {f: pd.factorize(data[f].astype(str), sort=True, use_na_sentinel=False)[0].astype(np.int64)
             for f in present}
    generator = np.random.default_rng(seed)
    replicates = np.full((n_resamples, len(design.factors) + 1), np.nan)
    for b in range(n_resamples):
        drawn = generator.integers(0, len(members), size=len(members))
        rows = np.concatenate([members[c] for c in drawn])
        copy = np.repeat(np.arange(len(drawn)), [len(members[c]) for c in drawn])
        resample = pd.DataFrame({"unsafe": data["unsafe"].to_numpy()[rows], cluster: copy})
        for f in present:  # a nested level drawn in two copies of its cluster becomes two levels
            resample[f] = codes[f][rows] * len(drawn) + copy if f in nested else codes[f][rows]
        refit = variance_design(resample, factors=factors, interactions=interactions, cluster=cluster)
        if refit.factors == design.factors:
            replicates[b] = np.clip(variance_components(refit), 0, None)
    return replicates


def verdicts(seed: int, *, clusters: int = 24, per_cluster: int = 3, judges: int = 4, binary: bool = True,
             repeats: int = 1) -> pd.DataFrame:
    """Judges x prompts (prompts in clusters, a model and a benchmark per prompt), some verdicts missing."""
    rng = np.random.default_rng(seed)
    prompt = np.arange(clusters * per_cluster)
    model = rng.integers(0, 3, len(prompt))
    frames = []
    for judge in range(judges):
        for _ in range(repeats):
            mean = 0.3 + 0.05 * judge + 0.2 * (model == 1) + rng.normal(0, 0.1, len(prompt))
            y = (rng.random(len(prompt)) < mean).astype(float) if binary else mean + rng.normal(0, 1, len(prompt))
            y[rng.random(len(prompt)) < 0.1] = np.nan
            frames.append(pd.DataFrame({"unsafe": y, "judge_id": f"j{judge}", "prompt": [f"p{k}" for k in prompt],
                                        "model": model, "benchmark": np.where(prompt // per_cluster % 2, "a", "b"),
                                        "finetune_goal": np.where(model == 0, "base", "goal"),
                                        "cluster": prompt // per_cluster}))
    return pd.concat(frames, ignore_index=True).assign(row=lambda f: np.arange(len(f)))


CASES = {
    "binary verdicts, prompts nested in clusters": (verdicts(0), "cluster", {}),
    "numeric outcome, two verdicts per judge x prompt cell": (verdicts(1, binary=False, repeats=2), "cluster", {}),
    "one prompt per cluster (cluster labels 0..99 sort as text)": (verdicts(2, clusters=100, per_cluster=1), "cluster", {}),
    "few clusters: some resamples lose a benchmark": (verdicts(3, clusters=4, judges=2), "cluster", {}),
    "clusters crossing the prompts (by model)": (verdicts(4), "model", {}),
    "every row its own cluster, no interaction": (verdicts(5, clusters=8), "row", {"interactions": ()}),
    "a duplicate factor and crossed interactions": (
        verdicts(6, repeats=2).assign(goal2=lambda f: f["model"].map({0: "x", 1: "y", 2: "z"})), "cluster",
        {"factors": ("judge_id", "model", "goal2", "benchmark", "prompt"),
         "interactions": (("judge_id", "prompt"), ("judge_id", "model"), ("benchmark", "model"))}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_vectorised_bootstrap_equals_refitting_each_resample(case: str) -> None:
    frame, cluster, options = CASES[case]
    fit = bootstrap_variance_components(frame, cluster=cluster, n_resamples=40, rng=7, **options)
    expected = reference_replicates(frame, cluster=cluster, n_resamples=40, seed=7, **options)
    assert fit.replicates.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(fit.replicates), np.isnan(expected))
    np.testing.assert_allclose(fit.replicates, expected, rtol=0, atol=1e-12, equal_nan=True)
    valid = ~np.isnan(expected[:, 0])
    tail = np.nanpercentile(expected[valid], [2.5, 97.5], axis=0)
    shown = fit.resampled
    np.testing.assert_allclose(fit.low[shown], tail[0][shown], rtol=0, atol=1e-12)
    np.testing.assert_allclose(fit.high[shown], tail[1][shown], rtol=0, atol=1e-12)


def test_cases_reach_every_path_of_the_refit() -> None:
    """The cases above are only a test if they include resamples dropped for a lost level, crossed interactions,
    dropped duplicates and the judge x prompt interaction kept with copies."""
    few_levels = CASES["few clusters: some resamples lose a benchmark"]
    fit = bootstrap_variance_components(few_levels[0], cluster=few_levels[1], n_resamples=40, rng=7)
    assert 0 < np.isnan(fit.replicates[:, 0]).sum() < 40
    frame, cluster, options = CASES["a duplicate factor and crossed interactions"]
    fit = bootstrap_variance_components(frame, cluster=cluster, n_resamples=5, rng=7, **options)
    assert "judge_id:model" in fit.names and "benchmark:model" in fit.names and "judge_id:prompt" in fit.names
    assert any(d.startswith("goal2 (same partition") for d in fit.dropped)


def test_missing_factor_value_is_a_level_of_its_own() -> None:
    frame = verdicts(8)
    frame.loc[frame["model"] == 2, "finetune_goal"] = np.nan
    fit = bootstrap_variance_components(frame, cluster="cluster", n_resamples=20, rng=1)
    three_levels = bootstrap_variance_components(frame.fillna({"finetune_goal": "none"}), cluster="cluster",
                                                 n_resamples=20, rng=1)
    np.testing.assert_allclose(fit.estimate, three_levels.estimate, atol=1e-12)
    np.testing.assert_allclose(fit.replicates, three_levels.replicates, atol=1e-12, equal_nan=True)
