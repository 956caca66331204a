"""Coverage with known truth for issue 25: clustered PPI++, clustered paired effects, variance components.

Four questions, R simulated studies each (Monte Carlo standard error sqrt(p(1-p)/R)):

1. One model's corrected rate at true rates 0.02 and 0.98 (1,000 items, 100 labelled at random, the judge flips
   10% of verdicts): the clustered PPI++ interval (pseudo-label centring) against ``ppi_mean`` (ppi_py's interval),
   which has zero width whenever labels and verdicts all agree.
2. The corrected fine-tune effect, 160 prompts in 40 behaviours (behaviour and prompt effects on the logit
   scale, a behaviour-specific fine-tune shift), 2 samples per prompt and model, both models' responses of 60
   random prompts labelled, the judge missing 20% on the fine-tune and 8% on the base: clusters = behaviours
   against clusters = prompts. Truth = the super-population effect (2,000,000 draws).
3. The paired judge-free effect (``paired_mean_difference``) on the same design, true labels: resampling
   behaviours against resampling prompts.
4. Variance components of a crossed Gaussian design (5 judges x 60 prompts, 2 verdicts per cell, known
   components): bootstrap coverage of the prompt, judge x prompt and residual components (R/3 studies).
5. Active labelling: 2,000 items with true P(unsafe) ~ Beta(0.4, 0.6), a calibrated judge giving that P; labels
   drawn independently with probability proportional to half the judge's uncertainty sqrt(p(1-p)) plus half
   uniform (about 200 expected), recorded and weighted by their inverse; against a random draw of as many.

    python analyses/labels_coverage.py [--replicates 300] [--seed 0] [--out analyses/results]

Writes ``labels_coverage/labels_coverage.md``.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from judgekit.stats.paired import paired_mean_difference
from judgekit.stats.ppi import ppi_clustered, ppi_mean
from judgekit.stats.variance import bootstrap_variance_components

OUT = Path(__file__).resolve().parent / "results"
BEHAVIOURS, PER_BEHAVIOUR, SAMPLES, LABELLED_PROMPTS = 40, 4, 2, 60
SD_BEHAVIOUR, SD_PROMPT, SHIFT, SD_SHIFT = 1.0, 0.7, 0.5, 0.8
VC_TRUTH = {"prompt": 1.0, "judge_id:prompt": 0.25, "residual": 1.0}


def expit(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def covered(low: float, high: float, truth: float) -> bool:
    return bool(low <= truth <= high)


def rate_design(rng: np.random.Generator, p: float) -> tuple[np.ndarray, np.ndarray]:
    truth = (rng.random(1000) < p).astype(float)
    verdict = np.where(rng.random(1000) < 0.1, 1 - truth, truth)
    labels = np.full(1000, np.nan)
    chosen = rng.choice(1000, 100, replace=False)
    labels[chosen] = truth[chosen]
    return labels, verdict


def effect_design(rng: np.random.Generator):
    """Per item: human label (NaN unless labelled), verdict, true label, treated, behaviour, prompt."""
    prompts = BEHAVIOURS * PER_BEHAVIOUR
    behaviour = np.repeat(np.arange(BEHAVIOURS), PER_BEHAVIOUR)
    logit = rng.normal(0, SD_BEHAVIOUR, BEHAVIOURS)[behaviour] + rng.normal(0, SD_PROMPT, prompts) - 1
    shift = SHIFT + rng.normal(0, SD_SHIFT, BEHAVIOURS)[behaviour]
    parts = []
    for treated, miss in ((True, 0.2), (False, 0.08)):
        for _ in range(SAMPLES):
            truth = (rng.random(prompts) < expit(logit + (shift if treated else 0))).astype(float)
            verdict = np.where(rng.random(prompts) < miss, 1 - truth, truth)
            parts.append((truth, verdict, np.full(prompts, treated), behaviour, np.arange(prompts)))
    truth, verdict, treated, behaviour, prompt = (np.concatenate([p[k] for p in parts]) for k in range(5))
    labelled = np.isin(prompt, rng.choice(prompts, LABELLED_PROMPTS, replace=False))
    return np.where(labelled, truth, np.nan), verdict, truth, treated.astype(bool), behaviour, prompt


def effect_truth() -> float:
    rng = np.random.default_rng(9)
    n = 2_000_000
    logit = rng.normal(0, SD_BEHAVIOUR, n) + rng.normal(0, SD_PROMPT, n) - 1
    return float(np.mean(expit(logit + SHIFT + rng.normal(0, SD_SHIFT, n)) - expit(logit)))


def variance_frame(rng: np.random.Generator) -> pd.DataFrame:
    judges, prompts = 5, 60
    judge, prompt = np.repeat(np.arange(judges), prompts), np.tile(np.arange(prompts), judges)
    mean = (rng.normal(0, 0.5, judges)[judge] + rng.normal(0, np.sqrt(VC_TRUTH["prompt"]), prompts)[prompt]
            + rng.normal(0, np.sqrt(VC_TRUTH["judge_id:prompt"]), judges * prompts))
    y = np.concatenate([mean + rng.normal(0, np.sqrt(VC_TRUTH["residual"]), len(mean)) for _ in range(2)])
    return pd.DataFrame({"unsafe": y, "judge_id": np.tile(judge, 2), "prompt": np.tile(prompt, 2),
                         "cluster": np.tile(prompt, 2)})


def line(name: str, hits: list[bool], widths: list[float] | None = None) -> str:
    r = len(hits)
    p = float(np.mean(hits))
    width = f" | {np.mean(widths):.3f}" if widths is not None else " | —"
    return f"| {name} | {p:.3f} ± {np.sqrt(p * (1 - p) / r):.3f}{width} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    r = args.replicates
    start = time.time()
    rows = ["| estimator | coverage ± MC s.e. | mean width |", "|---|---|---|"]
    for p in (0.02, 0.98):
        rng = np.random.default_rng([args.seed, 1, int(p * 100)])
        ours, reference, our_w, zero = [], [], [], 0
        for _ in range(r):
            labels, verdict = rate_design(rng, p)
            result = ppi_clustered(labels, verdict, np.arange(len(labels)))
            ours.append(covered(result.ci_low, result.ci_high, p))
            our_w.append(result.ci_high - result.ci_low)
            lab = ~np.isnan(labels)
            plain = ppi_mean(labels[lab], verdict[lab], verdict[~lab])
            reference.append(covered(plain.ci_low, plain.ci_high, p))
            zero += plain.ci_low == plain.ci_high
        rows.append(line(f"1. corrected rate, truth {p}: clustered PPI++ (pseudo-labels)", ours, our_w))
        rows.append(line(f"1. corrected rate, truth {p}: ppi_mean / ppi_py interval ({zero} of {r} zero-width)",
                         reference))
    truth = effect_truth()
    rng = np.random.default_rng([args.seed, 2])
    hits = {k: [] for k in ("ppi_b", "ppi_p", "pair_b", "pair_p")}
    widths = {k: [] for k in hits}
    for replicate in range(r):
        labels, verdict, true_label, treated, behaviour, prompt = effect_design(rng)
        for key, clusters in (("ppi_b", behaviour), ("ppi_p", prompt)):
            result = ppi_clustered(labels, verdict, clusters, treated=treated)
            hits[key].append(covered(result.ci_low, result.ci_high, truth))
            widths[key].append(result.ci_high - result.ci_low)
        for key, clusters in (("pair_b", behaviour), ("pair_p", None)):
            result = paired_mean_difference(true_label, treated, prompt, clusters=clusters, n_boot=500,
                                            rng=[args.seed, 3, replicate])
            hits[key].append(covered(result.ci_low, result.ci_high, truth))
            widths[key].append(result.ci_high - result.ci_low)
    rows.append(line("2. corrected effect, clusters = behaviours", hits["ppi_b"], widths["ppi_b"]))
    rows.append(line("2. corrected effect, clusters = prompts (ignores behaviours)", hits["ppi_p"], widths["ppi_p"]))
    rows.append(line("3. paired effect (true labels), behaviours resampled", hits["pair_b"], widths["pair_b"]))
    rows.append(line("3. paired effect (true labels), prompts resampled", hits["pair_p"], widths["pair_p"]))
    rng = np.random.default_rng([args.seed, 4])
    vc_hits = {k: [] for k in VC_TRUTH}
    vc_r = max(r // 3, 1)
    for replicate in range(vc_r):
        fit = bootstrap_variance_components(variance_frame(rng), cluster="cluster", n_resamples=150,
                                            rng=[args.seed, 5, replicate])
        for name, value in VC_TRUTH.items():
            k = fit.names.index(name)
            vc_hits[name].append(covered(fit.low[k], fit.high[k], value))
    for name, values in vc_hits.items():
        rows.append(line(f"4. variance component {name} (R = {vc_r}, 150 resamples)", values))
    print("\n".join(rows), flush=True)
    rng = np.random.default_rng([args.seed, 6])
    active = {"active": [], "random": []}
    active_widths = {"active": [], "random": []}
    for _ in range(r):
        p = rng.beta(0.4, 0.6, 2000)
        outcome = (rng.random(2000) < p).astype(float)
        uncertainty = np.sqrt(p * (1 - p))
        inclusion = np.minimum(1, 200 * (0.5 * uncertainty / uncertainty.sum() + 0.5 / 2000))
        drawn = rng.random(2000) < inclusion
        at_random = np.zeros(2000, dtype=bool)
        at_random[rng.choice(2000, drawn.sum(), replace=False)] = True
        for key, chosen, weights in (("active", drawn, inclusion), ("random", at_random, None)):
            result = ppi_clustered(np.where(chosen, outcome, np.nan), p, np.arange(2000), inclusion=weights)
            active[key].append(covered(result.ci_low, result.ci_high, p.mean()))
            active_widths[key].append(result.ci_high - result.ci_low)
    rows.append(line("5. active labels, inverse-probability weighted", active["active"], active_widths["active"]))
    rows.append(line("5. as many labels drawn at random", active["random"], active_widths["random"]))
    elapsed = time.time() - start
    text = "\n".join([
        "# Coverage of the label-layer intervals (issue 25)", "",
        f"Nominal 95%; R = {r} simulated studies per row unless stated; Monte Carlo s.e. sqrt(p(1-p)/R). "
        f"Truth of the effect rows: {truth:.4f}. Seed {args.seed}; {elapsed:.0f} s on {platform.machine()}, "
        f"Python {platform.python_version()}.", "",
        "Reproduce: `python analyses/labels_coverage.py --replicates " + str(r) + "`. Designs: see the script's docstring.",
        "", *rows, ""])
    folder = args.out / "labels_coverage"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels_coverage.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
