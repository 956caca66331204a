"""Does the checkpoint trend test hold its level and cover a known slope? (``clustered_logistic_trend``)

Simulated training runs: P prompts answered by the base (step 0) and checkpoints at steps 100..400, one 0/1
verdict each, from ``logit P(unsafe) = a + u_prompt + b * step`` with a prompt effect ``u ~ N(0, sd^2)``
(responses to one prompt correlated across checkpoints, as in real runs).

* Null (b = 0): the rejection rate of "slope = 0" at 5%, with the cluster-robust interval and, for contrast,
  the naive model-based one (prompts treated as independent).
* Known slope: coverage of the population-averaged slope (what a marginal logistic regression estimates; with
  a prompt effect it is flatter than b). Its true value is computed once from 400,000 simulated prompts.

Run: ``python analyses/checkpoint_trend.py`` -> ``analyses/results/checkpoint_trend/trend.md``.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import statsmodels.api as sm

from judgekit.stats.trend import clustered_logistic_trend

STEPS = np.array([0, 100, 200, 300, 400])
REPLICATES = 1000
SCENARIOS = [  # (name, prompts, intercept, prompt sd, slope per step)
    ("null, 40 prompts, strong prompt effect (sd 1.5)", 40, -1.0, 1.5, 0.0),
    ("null, 15 prompts, strong prompt effect (sd 1.5)", 15, -1.0, 1.5, 0.0),
    ("null, 40 prompts, no prompt effect", 40, -1.0, 0.0, 0.0),
    ("slope 0.004/step, 40 prompts, no prompt effect", 40, -1.5, 0.0, 0.004),
    ("slope 0.004/step, 40 prompts, prompt sd 1.0", 40, -1.5, 1.0, 0.004),
    ("slope 0.004/step, 20 prompts, prompt sd 1.0", 20, -1.5, 1.0, 0.004),
]


def simulate(prompts: int, intercept: float, sd: float, slope: float, rng: np.random.Generator):
    effect = rng.normal(0.0, sd, prompts) if sd > 0 else np.zeros(prompts)
    clusters = np.repeat(np.arange(prompts), len(STEPS))
    step = np.tile(STEPS, prompts).astype(float)
    p = 1 / (1 + np.exp(-(intercept + effect[clusters] + slope * step)))
    return (rng.random(len(p)) < p).astype(float), step, clusters


def population_averaged_slope(intercept: float, sd: float, slope: float) -> float:
    """The marginal logistic slope, from one very large simulated run (Monte Carlo truth, s.e. ~1e-5)."""
    if sd == 0:
        return slope
    y, step, _ = simulate(400_000, intercept, sd, slope, np.random.default_rng(1))
    fit = sm.GLM(y, np.column_stack([np.ones(len(step)), step / 400]), family=sm.families.Binomial()).fit()
    return float(fit.params[1]) / 400


def naive_rejects(y: np.ndarray, step: np.ndarray) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.GLM(y, np.column_stack([np.ones(len(step)), step / 400]), family=sm.families.Binomial()).fit()
    return bool(fit.pvalues[1] < 0.05)


def main(out: Path) -> None:
    started = time.time()
    rng = np.random.default_rng(2026)
    lines = ["# Checkpoint trend test: level and coverage (clustered logistic slope)", "",
             f"Steps {STEPS.tolist()}, one verdict per prompt and checkpoint, {REPLICATES} simulated runs per row; "
             "Monte Carlo standard errors in brackets. Rejection = the 95% interval excludes 0; coverage = it "
             "contains the population-averaged slope.", "",
             "| scenario | true PA slope | cluster-robust: rejects 0 | covers truth | naive GLM: rejects 0 | "
             "undefined runs |", "|---|---|---|---|---|---|"]
    for name, prompts, intercept, sd, slope in SCENARIOS:
        truth = population_averaged_slope(intercept, sd, slope)
        rejected = covered = naive = undefined = 0
        for _ in range(REPLICATES):
            y, step, clusters = simulate(prompts, intercept, sd, slope, rng)
            trend = clustered_logistic_trend(y, step, clusters)
            if np.isnan(trend.slope):
                undefined += 1
                continue
            rejected += not trend.ci_low <= 0 <= trend.ci_high
            covered += trend.ci_low <= truth <= trend.ci_high
            naive += naive_rejects(y, step)
        done = REPLICATES - undefined

        def share(count: int) -> str:
            p = count / done
            return f"{p:.3f} [{np.sqrt(p * (1 - p) / done):.3f}]"

        lines.append(f"| {name} | {truth:.5f} | {share(rejected)} | {share(covered)} | {share(naive)} | {undefined} |")
    lines += ["", f"Ran in {time.time() - started:.0f} s on {sys.platform} (2 shared CPU cores)."]
    out.mkdir(parents=True, exist_ok=True)
    (out / "trend.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(__file__).parent / "results" / "checkpoint_trend")
