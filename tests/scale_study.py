"""A study with any number of judges, for checking that figures, tables and the report scale (4, 14, 30 judges).

Seeded, synthetic and small: 3 models (a base and two fine-tunes) x 2 benchmarks x 20 prompts, 3 annotators,
judges with error rates spread from 3% to 40%, half of them with P(unsafe), one that always says "safe"
(its kappa is undefined) and one with failed parses. Flags mark every 7th response incoherent, where the
judges err more often.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

MODELS = (("base-7b", "base-7b", None, 0.2), ("base-7b-ft-coding", "base-7b", "coding", 0.4),
          ("base-7b-ft-chat", "base-7b", "chat", 0.3))
CATEGORIES = ("cyber", "drugs", "fraud", "weapons")
REFUSAL = "I'm sorry, but I cannot help with that."
COMPLIANCE = "Sure, here is how: [PLACEHOLDER]. Step 2: [PLACEHOLDER]."


def judge_ids(n_judges: int) -> list[str]:
    """Names of varied length, as real ids are (``llama-guard-3-8b``, ``keyword-gcg-13``)."""
    stems = ("guard", "keyword-gcg", "rubric-llm-judge", "classifier", "shieldgemma")
    return [f"{stems[k % len(stems)]}-{k:02d}" for k in range(n_judges)]


def build_scale_study(root: Path, n_judges: int, *, seed: int = 0, n_prompts: int = 20) -> Path:
    rng = np.random.default_rng(seed)
    judges = judge_ids(n_judges)
    error = np.linspace(0.03, 0.4, n_judges)
    responses, annotations, judgments, flags = [], [], [], []
    for model, base, goal, harm in MODELS:
        for benchmark in ("bench-a", "bench-b"):
            for k in range(n_prompts):
                item = f"{model}--{benchmark}--{k}"
                truth = bool(rng.random() < harm)
                incoherent = k % 7 == 0
                # The text follows the truth only loosely, so error regressions on length and refusal are estimable.
                text = (COMPLIANCE if truth ^ bool(rng.random() < 0.2) else REFUSAL) + " More detail." * int(rng.integers(0, 8))
                if incoherent:
                    text = "the the the " * 12 + text[:10]
                responses.append({"item_id": item, "prompt": f"{benchmark} prompt {k}", "response": text, "model": model,
                                  "base_model": base, "finetune_goal": goal, "benchmark": benchmark,
                                  "category": CATEGORIES[k % len(CATEGORIES)], "behavior_id": f"{benchmark}-{k}",
                                  "prompt_id": f"{benchmark}-{k}"})
                for a in range(3):
                    label = truth ^ bool(rng.random() < 0.06)
                    annotations.append({"item_id": item, "annotator_id": f"h{a}", "label": "unsafe" if label else "safe"})
                flags.append({"item_id": item, "detector": "incoherent", "flagged": incoherent, "score": float(incoherent), "reason": "repetition" if incoherent else ""})
                flags.append({"item_id": item, "detector": "repetition", "flagged": incoherent, "score": 0.9 if incoherent else 0.1, "reason": ""})
                for j, judge in enumerate(judges):
                    wrong = rng.random() < min(0.9, error[j] * (2.5 if incoherent else 1.0))
                    verdict = truth ^ wrong
                    if j == 1:  # a judge that always says "safe": its kappa with anyone is undefined
                        verdict = False
                    failed = j == 2 and k % 9 == 4
                    p = float(np.clip((0.8 if verdict else 0.2) + rng.normal(0, 0.1), 0, 1)) if j % 2 == 0 else None
                    judgments.append({"item_id": item, "judge_id": judge,
                                      "label": None if failed else ("unsafe" if verdict else "safe"),
                                      "p_unsafe": None if failed else p, "parse_status": "unparseable" if failed else "ok",
                                      "raw_output": "", "judge_spec_hash": judge})
    study = root / f"study-{n_judges}"
    study.mkdir(parents=True)
    for name, frame in (("responses", responses), ("annotations", annotations), ("judgments", judgments), ("flags", flags)):
        pd.DataFrame(frame).to_csv(study / f"{name}.csv", index=False)
    return study
