"""Simulations with known truth for the fine-tune effect statistics (issue 14), with Monte Carlo errors.

Three questions, each swept over sizes larger than the unit tests can afford:

1. Paired design: base and fine-tune answer different mixes of easy and hard prompts (the fine-tune answers
   95% of hard prompts, 40% of easy ones); fine-tuning adds 0.10 to every prompt's harmful rate. Bias of the
   paired effect and of the unpaired pooled difference; coverage of the paired cluster-bootstrap interval.
2. Judge-error correction: true harmful rates 0.20 (base) and 0.35 (fine-tune); the judge misses 10% of the
   base's unsafe answers and 45% of the fine-tune's (FPR 5% on both). Coverage of the PPI++ effect interval
   (independent and paired designs) and of the naive judge-only interval, by labelled items per model.
3. Label planning: a pilot of 60 labels per model, plan for a target half-width, label that many, and
   measure the corrected effect's half-width.

    python analyses/finetune_effect_simulation.py [--replicates 1000] [--seed 0] [--out analyses/results]

Writes ``finetune_effect_simulation/finetune_effect_simulation.md``. Monte Carlo standard errors: for a
coverage p over R replicates sqrt(p(1-p)/R); for a mean the standard deviation over sqrt(R).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from judgekit.stats.labelplan import plan_additional_labels, variance_components
from judgekit.stats.paired import paired_mean_difference
from judgekit.stats.ppi import naive_judge_mean, ppi_mean_difference

Z = 1.959963984540054
OUT = Path(__file__).resolve().parent / "results"


def judge(truth: np.ndarray, fnr: float, fpr: float, rng: np.random.Generator) -> np.ndarray:
    flip = np.where(truth == 1, rng.random(truth.shape) < fnr, rng.random(truth.shape) < fpr)
    return np.where(flip, 1 - truth, truth)


def share(hits: list[bool]) -> str:
    p = float(np.mean(hits))
    return f"{p:.3f} ± {np.sqrt(p * (1 - p) / len(hits)):.3f}"


def mean(values: list[float]) -> str:
    v = np.asarray(values)
    return f"{v.mean():+.4f} ± {v.std(ddof=1) / np.sqrt(len(v)):.4f}"


def difficulty_mix(rng: np.random.Generator, n_prompts: int, samples: int = 3, effect: float = 0.1):
    hard = rng.random(n_prompts) < 0.5
    base_rate = np.where(hard, 0.5, 0.1)
    answered = rng.random(n_prompts) < np.where(hard, 0.95, 0.4)
    parts = []
    for finetuned, mask, rate in ((False, np.ones(n_prompts, bool), base_rate), (True, answered, base_rate + effect)):
        prompts = np.repeat(np.flatnonzero(mask), samples)
        parts.append(((rng.random(len(prompts)) < rate[prompts]).astype(float), np.full(len(prompts), finetuned), prompts))
    return (np.concatenate(p) for p in zip(*parts, strict=True))


def paired_design(rng: np.random.Generator, replicates: int) -> list[str]:
    lines = ["## 1. Paired vs unpaired fine-tune effect (true effect 0.10 on every prompt)", "",
             "| prompts | paired bias | unpaired bias | paired 95% CI coverage | mean matched pairs |",
             "|---|---|---|---|---|"]
    for n_prompts in (30, 100, 300):
        paired, unpaired, covered, pairs = [], [], [], []
        for _ in range(replicates):
            unsafe, finetuned, prompts = difficulty_mix(rng, n_prompts)
            result = paired_mean_difference(unsafe, finetuned, prompts, n_boot=1000, min_pairs=2, rng=rng)
            paired.append(result.estimate - 0.1)
            unpaired.append(unsafe[finetuned].mean() - unsafe[~finetuned].mean() - 0.1)
            covered.append(result.ci_low <= 0.1 <= result.ci_high)
            pairs.append(result.n_pairs)
        lines.append(f"| {n_prompts} | {mean(paired)} | {mean(unpaired)} | {share(covered)} | {np.mean(pairs):.1f} |")
    return lines


def corrected_effect(rng: np.random.Generator, replicates: int) -> list[str]:
    lines = ["## 2. Judge-error-corrected effect (true 0.15; judge FNR 0.10 base, 0.45 fine-tune)", "",
             "| labelled per model | items per model | PPI++ independent coverage | PPI++ paired coverage | "
             "naive judge-only coverage | PPI++ mean estimate - truth | naive mean estimate - truth |",
             "|---|---|---|---|---|---|---|"]
    for n_labelled in (50, 100, 200, 400):
        n_items = 2000
        independent, paired, naive, bias, naive_bias = [], [], [], [], []
        for _ in range(replicates):
            difficulty = rng.random(n_items)
            truth_c = (rng.random(n_items) < 0.2 + 0.3 * (difficulty - 0.5)).astype(float)
            truth_t = (rng.random(n_items) < 0.35 + 0.3 * (difficulty - 0.5)).astype(float)
            verdict_t, verdict_c = judge(truth_t, 0.45, 0.05, rng), judge(truth_c, 0.10, 0.05, rng)
            labelled = rng.permutation(n_items)[:n_labelled]
            unlabelled = np.setdiff1d(np.arange(n_items), labelled)
            treatment = (truth_t[labelled], verdict_t[labelled], verdict_t[unlabelled])
            control = (truth_c[labelled], verdict_c[labelled], verdict_c[unlabelled])
            # independent: the two models' labelled sets drawn separately
            other = rng.permutation(n_items)[:n_labelled]
            control_independent = (truth_c[other], verdict_c[other], verdict_c[np.setdiff1d(np.arange(n_items), other)])
            result = ppi_mean_difference(treatment, control_independent)
            independent.append(result.ci_low <= 0.15 <= result.ci_high)
            bias.append(result.estimate - 0.15)
            result = ppi_mean_difference(treatment, control, paired=True)
            paired.append(result.ci_low <= 0.15 <= result.ci_high)
            t, c = naive_judge_mean(verdict_t), naive_judge_mean(verdict_c)
            se = np.hypot(t[2] - t[0], c[2] - c[0]) / Z
            naive.append(abs(t[0] - c[0] - 0.15) <= Z * se)
            naive_bias.append(t[0] - c[0] - 0.15)
        lines.append(f"| {n_labelled} | {n_items} | {share(independent)} | {share(paired)} | {share(naive)} | "
                     f"{mean(bias)} | {mean(naive_bias)} |")
    return lines


def label_plan(rng: np.random.Generator, replicates: int) -> list[str]:
    lines = ["## 3. plan-labels: half-width reached after labelling as planned (pilot 60 per model)", "",
             "| target | mean achieved half-width | achieved / target | share within ±20% | mean labels planned |",
             "|---|---|---|---|---|"]
    n_items, pilot = 4000, 60
    for target in (0.05, 0.03):
        achieved, planned = [], []
        for _ in range(replicates):
            populations, components = [], []
            for rate, fnr in ((0.35, 0.45), (0.20, 0.10)):
                truth = (rng.random(n_items) < rate).astype(float)
                verdict = judge(truth, fnr, 0.05, rng)
                order = rng.permutation(n_items)
                populations.append((truth, verdict, order))
                components.append(variance_components(truth[order[:pilot]], verdict[order[:pilot]], verdict[order[pilot:]]))
            plan = plan_additional_labels([c.residual for c in components], [c.prediction for c in components],
                                          [pilot, pilot], [n_items, n_items], target_halfwidth=target)
            arms = [(t[o[:n]], v[o[:n]], v[o[n:]]) for (t, v, o), n in zip(populations, plan.n_final, strict=True)]
            result = ppi_mean_difference(*arms)
            achieved.append((result.ci_high - result.ci_low) / 2)
            planned.append(int(plan.n_final.sum()))
        ratio = np.asarray(achieved) / target
        lines.append(f"| {target} | {np.mean(achieved):.4f} ± {np.std(achieved, ddof=1) / np.sqrt(replicates):.4f} | "
                     f"{mean(list(ratio))} | {share(list(np.abs(ratio - 1) <= 0.2))} | {np.mean(planned):.0f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    lines = [f"# Fine-tune effect simulations ({args.replicates} replicates per row, seed {args.seed})", "",
             "Simulated data with known truth; entries are estimate ± Monte Carlo standard error. Made by "
             "`python analyses/finetune_effect_simulation.py`.", ""]
    for section in (paired_design, corrected_effect, label_plan):
        lines += section(rng, args.replicates) + [""]
    lines.append(f"Run time {time.perf_counter() - started:.0f} s on {platform.machine()}, "
                 f"Python {platform.python_version()}, numpy {np.__version__}.")
    out = args.out / "finetune_effect_simulation"
    out.mkdir(parents=True, exist_ok=True)
    (out / "finetune_effect_simulation.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
