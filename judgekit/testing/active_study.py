"""A simulated base / fine-tune study with known truth for active labelling (issue 25): a calibrated judge whose
errors concentrate where it is unsure.

Per prompt a latent difficulty d ~ N(0, 1.5); the true P(unsafe) of a response is expit(d - 1 + shift), shift 0.8
on the fine-tune and 0 on the base; its true label is Bernoulli of it. The judge reports P(unsafe) = that true
probability blurred on the logit scale (sd 0.3) and the verdict P >= 0.5, so its errors sit near 0.5. A random
pilot of prompts is labelled for both models (no inclusion probability: drawn before any plan). The truth of the
fine-tune effect is the super-population one, E[expit(d - 0.2)] - E[expit(d - 1)], by numerical integration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SHIFT, OFFSET, SD_DIFFICULTY, SD_JUDGE = 0.8, -1.0, 1.5, 0.3
JUDGE = "sim-judge"


def _expit(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def true_effect() -> float:
    """E over d ~ N(0, 1.5) of expit(d + OFFSET + SHIFT) - expit(d + OFFSET) (Gauss-Hermite, 80 nodes)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    d = SD_DIFFICULTY * nodes
    return float(np.sum(weights * (_expit(d + OFFSET + SHIFT) - _expit(d + OFFSET))) / np.sum(weights))


def write_active_study(study: Path, *, seed: int, prompts: int = 300, pilot: int = 20) -> pd.Series:
    """Write responses, judgments and pilot annotations (parquet) under ``study``; return the true label per item."""
    rng = np.random.default_rng(seed)
    study.mkdir(parents=True, exist_ok=True)
    difficulty = rng.normal(0, SD_DIFFICULTY, prompts)
    frames = []
    for model, shift, base in (("ft", SHIFT, "base"), ("base", 0.0, None)):
        p = _expit(difficulty + OFFSET + shift)
        frames.append(pd.DataFrame({
            "item_id": [f"{model}-{k}" for k in range(prompts)], "model": model, "base_model": base,
            "finetune_goal": "coding" if base else None, "prompt_id": [f"p{k}" for k in range(prompts)],
            "prompt": [f"simulated prompt {k}" for k in range(prompts)], "response": f"simulated {model} response",
            "truth": (rng.random(prompts) < p).astype(int),
            "judge_p": _expit(np.log(p / (1 - p)) + rng.normal(0, SD_JUDGE, prompts))}))
    items = pd.concat(frames, ignore_index=True)
    items.drop(columns=["truth", "judge_p"]).to_parquet(study / "responses.parquet", index=False)
    pd.DataFrame({"item_id": items["item_id"], "judge_id": JUDGE,
                  "label": np.where(items["judge_p"] >= 0.5, "unsafe", "safe"), "p_unsafe": items["judge_p"],
                  "parse_status": "ok", "raw_output": "", "judge_spec_hash": "sim"}).to_parquet(
        study / "judgments.parquet", index=False)
    labelled = items[items["prompt_id"].isin([f"p{k}" for k in rng.choice(prompts, pilot, replace=False)])]
    pd.DataFrame({"item_id": labelled["item_id"], "annotator_id": "pilot",
                  "label": np.where(labelled["truth"] == 1, "unsafe", "safe")}).to_parquet(
        study / "annotations.parquet", index=False)
    return pd.Series(np.where(items["truth"] == 1, "unsafe", "safe"), index=items["item_id"])
