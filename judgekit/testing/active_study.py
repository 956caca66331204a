"""A simulated base / fine-tune study with known truth for active labelling (issue 25): a calibrated judge whose
errors concentrate where it is unsure.

Per prompt a latent logit d: clear-cut with probability 0.7 (d = -6 or +5, equally likely), else ambiguous,
d ~ N(0, 0.5). The true P(unsafe) of a response is expit(d + shift), shift 0.8 on the fine-tune and 0 on the
base; its true label is Bernoulli of it. The judge reports P(unsafe) = that true probability blurred on the logit
scale (sd 0.3) and the verdict P >= 0.5, so its errors sit on the ambiguous prompts, where P is near 0.5. A
random pilot of prompts is labelled for both models (design random, no inclusion probability: drawn before any
plan). The truth
of the fine-tune effect is the super-population one, E[expit(d + 0.8)] - E[expit(d)], by numerical integration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SHIFT, CLEAR_SHARE, CLEAR_LOGITS, SD_AMBIGUOUS, SD_JUDGE = 0.8, 0.7, (-6.0, 5.0), 0.5, 0.3
JUDGE = "sim-judge"


def _expit(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def true_effect() -> float:
    """E over the latent logit d of expit(d + SHIFT) - expit(d) (the ambiguous part by Gauss-Hermite, 80 nodes)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    d = SD_AMBIGUOUS * nodes
    ambiguous = np.sum(weights * (_expit(d + SHIFT) - _expit(d))) / np.sum(weights)
    clear = np.mean([_expit(np.float64(c) + SHIFT) - _expit(np.float64(c)) for c in CLEAR_LOGITS])
    return float(CLEAR_SHARE * clear + (1 - CLEAR_SHARE) * ambiguous)


def true_rate(shift: float) -> float:
    """E over the latent logit d of expit(d + shift): a model's super-population harmful rate."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    ambiguous = np.sum(weights * _expit(SD_AMBIGUOUS * nodes + shift)) / np.sum(weights)
    clear = np.mean([_expit(np.float64(c) + shift) for c in CLEAR_LOGITS])
    return float(CLEAR_SHARE * clear + (1 - CLEAR_SHARE) * ambiguous)


def write_active_study(study: Path, *, seed: int, prompts: int = 300, pilot: int = 20, samples: int = 1,
                       fine_tune_misses: float = 0.0) -> pd.Series:
    """Write responses, judgments and pilot annotations (parquet) under ``study``; return the true label per item.

    ``samples`` responses per prompt and model (item ids ``model-k`` for one, ``model-k-s`` for several);
    ``fine_tune_misses``: share of the fine-tune's truly unsafe responses the judge calls safe besides its own
    errors (a judge that errs differently on the fine-tune)."""
    rng = np.random.default_rng(seed)
    study.mkdir(parents=True, exist_ok=True)
    difficulty = np.where(rng.random(prompts) < CLEAR_SHARE, rng.choice(CLEAR_LOGITS, prompts),
                          rng.normal(0, SD_AMBIGUOUS, prompts))
    frames = []
    for model, shift, base in (("ft", SHIFT, "base"), ("base", 0.0, None)):
        for sample in range(samples):
            p = _expit(difficulty + shift)
            suffix = "" if samples == 1 else f"-{sample}"
            frames.append(pd.DataFrame({
                "item_id": [f"{model}-{k}{suffix}" for k in range(prompts)], "model": model, "base_model": base,
                "finetune_goal": "coding" if base else None, "prompt_id": [f"p{k}" for k in range(prompts)],
                "prompt": [f"simulated prompt {k}" for k in range(prompts)], "response": f"simulated {model} response",
                **({"sample": sample} if samples > 1 else {}),
                "truth": (rng.random(prompts) < p).astype(int),
                "judge_p": _expit(np.log(p / (1 - p)) + rng.normal(0, SD_JUDGE, prompts))}))
    items = pd.concat(frames, ignore_index=True)
    if fine_tune_misses:
        missed = (items["model"] == "ft") & (items["truth"] == 1) & (rng.random(len(items)) < fine_tune_misses)
        items.loc[missed, "judge_p"] = np.minimum(items.loc[missed, "judge_p"], 0.2)
    items.drop(columns=["truth", "judge_p"]).to_parquet(study / "responses.parquet", index=False)
    pd.DataFrame({"item_id": items["item_id"], "judge_id": JUDGE,
                  "label": np.where(items["judge_p"] >= 0.5, "unsafe", "safe"), "p_unsafe": items["judge_p"],
                  "parse_status": "ok", "raw_output": "", "judge_spec_hash": "sim"}).to_parquet(
        study / "judgments.parquet", index=False)
    labelled = items[items["prompt_id"].isin([f"p{k}" for k in rng.choice(prompts, pilot, replace=False)])]
    if labelled.empty:
        return truth_of(items)
    pd.DataFrame({"item_id": labelled["item_id"], "annotator_id": "pilot",
                  "label": np.where(labelled["truth"] == 1, "unsafe", "safe"), "design": "random"}).to_parquet(
        study / "annotations.parquet", index=False)
    return truth_of(items)


def truth_of(items: pd.DataFrame) -> pd.Series:
    return pd.Series(np.where(items["truth"] == 1, "unsafe", "safe"), index=items["item_id"])
