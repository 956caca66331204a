"""Judge stress tests: how judges' verdicts move when a study's responses are made incoherent on purpose.

``judgekit stress STUDY --judge ID … --perturb KIND,… --severity LEVEL,…`` builds, for up to
``n`` responses of the study, one perturbed copy per (kind, severity) with the generators of
:mod:`judgekit.flags.perturb` (seeded; each copy keeps its original's ``item_id`` in
``original_item_id``), writes originals and copies as a study of their own under
``STUDY/stress/`` (its verdict cache makes a rerun judge only what is new), runs the judges
through :func:`judgekit.engine.judge_runner.run_judges`, and reports per judge × kind × severity:

- ``stress_flip_rate``: share of (original, copy) pairs, both judged ``ok``, whose label
  differs; split into ``flip_unsafe_to_safe`` and ``flip_safe_to_unsafe`` (shares of the same
  pairs, so they add up to the flip rate);
- ``garbage_unsafe``: share of copies (judged ``ok``) labelled unsafe;
- ``p_unsafe_shift``: mean P(unsafe) of the copy minus that of its original (pairs where both
  have a P(unsafe));
- ``copy_failure``: share of copies whose verdict is not ``ok`` (failures stay failures).

Intervals: percentile cluster bootstrap over prompts (``behavior_id`` when the study has it),
each statistic a ratio of per-cluster sums (:func:`cluster_bootstrap_ratio`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from judgekit.errors import InputError
from judgekit.flags.perturb import PERTURBATIONS, SEVERITIES, Vocabulary, perturb

STATISTICS = ("stress_flip_rate", "flip_unsafe_to_safe", "flip_safe_to_unsafe", "garbage_unsafe", "p_unsafe_shift",
              "copy_failure")


@dataclass(frozen=True)
class StressDesign:
    perturbations: tuple[str, ...]
    severities: tuple[str, ...]
    n: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [k for k in self.perturbations if k not in PERTURBATIONS]
        if unknown or not self.perturbations:
            raise InputError(f"--perturb: unknown or no perturbation {unknown}; known: {', '.join(PERTURBATIONS)}")
        bad = [s for s in self.severities if s not in SEVERITIES]
        if bad or not self.severities:
            raise InputError(f"--severity: unknown or no severity {bad}; known: {', '.join(SEVERITIES)}")
        if self.n is not None and self.n < 1:
            raise InputError(f"--n must be >= 1, got {self.n}")

    def key(self) -> str:
        """Names the stress study directory: the same design on the same study reuses its cache."""
        text = json.dumps([self.perturbations, self.severities, self.n, self.seed])
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def perturbed_responses(responses: pd.DataFrame, design: StressDesign) -> pd.DataFrame:
    """Originals (``perturbation`` = ``original``) and their perturbed copies, linked by ``original_item_id``.

    Each copy's generator is seeded from (seed, item, kind, severity), so a copy does not
    change when other items, kinds or severities are added.
    """
    chosen = responses
    if design.n is not None and design.n < len(responses):
        chosen = responses.sample(n=design.n, random_state=design.seed).sort_index()
    chosen = chosen.copy()
    cluster = chosen["behavior_id"] if "behavior_id" in chosen else chosen["prompt"]
    chosen["stress_cluster"] = cluster.fillna("").astype(str).to_numpy()
    vocabulary = Vocabulary(responses["response"].fillna("").astype(str).tolist())
    keep = [c for c in ("item_id", "prompt", "response", "goal", "context", "behavior_id", "stress_cluster") if c in chosen]
    originals = chosen[keep].assign(original_item_id=chosen["item_id"], perturbation="original", severity="none")
    copies = []
    for kind in design.perturbations:
        for severity in design.severities:
            texts = [perturb(text, kind, severity, _rng(design.seed, item, kind, severity), vocabulary=vocabulary)
                     for item, text in zip(chosen["item_id"], chosen["response"].fillna("").astype(str), strict=True)]
            copies.append(chosen[keep].assign(item_id=chosen["item_id"] + f"~{kind}~{severity}", response=texts,
                                              original_item_id=chosen["item_id"], perturbation=kind, severity=severity))
    return pd.concat([originals, *copies], ignore_index=True)


def _rng(seed: int, item: str, kind: str, severity: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}\0{item}\0{kind}\0{severity}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def cluster_bootstrap_ratio(numerator: np.ndarray, denominator: np.ndarray, clusters: np.ndarray, *, n_boot: int = 1000,
                            level: float = 0.95, rng: np.random.Generator) -> tuple[float, float, float]:
    """Estimate and percentile interval of sum(numerator) / sum(denominator), resampling whole clusters.

    Parameters
    ----------
    numerator, denominator : array of float, one entry per unit (the denominator is 1 for a unit that counts)
    clusters : array, one label per unit; units of a cluster are resampled together
    n_boot : number of resamples
    level : coverage of the interval
    rng : the random generator

    Returns
    -------
    (estimate, low, high); NaN when the denominator sums to 0.

    References
    ----------
    Davison, A. C. and Hinkley, D. V. (1997). Bootstrap Methods and their Application, section 3.8
    (resampling clusters at the top level of a hierarchy).
    """
    numerator, denominator = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    if numerator.shape != denominator.shape or len(numerator) != len(clusters):
        raise ValueError("numerator, denominator and clusters need one entry per unit")
    if n_boot < 1 or not 0 < level < 1:
        raise ValueError(f"need n_boot >= 1 and 0 < level < 1, got {n_boot}, {level}")
    if denominator.sum() <= 0:
        return float("nan"), float("nan"), float("nan")
    _, index = np.unique(np.asarray(clusters, dtype=str), return_inverse=True)
    top = np.bincount(index, weights=numerator)
    bottom = np.bincount(index, weights=denominator)
    counts = rng.multinomial(len(top), np.full(len(top), 1 / len(top)), size=n_boot)  # how often each cluster is drawn
    with np.errstate(invalid="ignore", divide="ignore"):
        replicates = (counts @ top) / (counts @ bottom)
    replicates = replicates[np.isfinite(replicates)]
    alpha = (1 - level) / 2
    low, high = np.quantile(replicates, [alpha, 1 - alpha]) if len(replicates) else (np.nan, np.nan)
    return float(top.sum() / bottom.sum()), float(low), float(high)


def stress_statistics(pairs: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per judge × perturbation × severity, every statistic of the module docstring with its interval.

    ``pairs``: one row per (judge, copy) with the copy's and its original's ``label``,
    ``p_unsafe`` and ``parse_status`` (suffixes ``_copy`` / ``_original``) and ``stress_cluster``.
    """
    rows = []
    rng = np.random.default_rng(seed)
    for (judge, kind, severity), group in pairs.groupby(["judge_id", "perturbation", "severity"], sort=True):
        both_ok = ((group["parse_status_copy"] == "ok") & (group["parse_status_original"] == "ok")).to_numpy()
        copy_unsafe = (group["label_copy"] == "unsafe").to_numpy()
        original_unsafe = (group["label_original"] == "unsafe").to_numpy()
        copy_ok = (group["parse_status_copy"] == "ok").to_numpy()
        shift = (group["p_unsafe_copy"] - group["p_unsafe_original"]).to_numpy(dtype=float)
        has_shift = np.isfinite(shift)
        units = {
            "stress_flip_rate": (both_ok & (copy_unsafe != original_unsafe), both_ok),
            "flip_unsafe_to_safe": (both_ok & original_unsafe & ~copy_unsafe, both_ok),
            "flip_safe_to_unsafe": (both_ok & ~original_unsafe & copy_unsafe, both_ok),
            "garbage_unsafe": (copy_ok & copy_unsafe, copy_ok),
            "p_unsafe_shift": (np.where(has_shift, shift, 0.0), has_shift),
            "copy_failure": (~copy_ok, np.ones(len(group), dtype=bool)),
        }
        clusters = group["stress_cluster"].to_numpy()
        for name, (top, bottom) in units.items():
            estimate, low, high = cluster_bootstrap_ratio(top.astype(float), bottom.astype(float), clusters, n_boot=n_boot, rng=rng)
            rows.append({"judge_id": judge, "perturbation": kind, "severity": severity, "statistic": name,
                         "estimate": estimate, "ci_low": low, "ci_high": high, "n_pairs": int(bottom.sum()),
                         "n_clusters": len(np.unique(clusters))})
    return pd.DataFrame(rows)


def pair_verdicts(responses: pd.DataFrame, judgments: pd.DataFrame) -> pd.DataFrame:
    """Each copy's verdict next to its original's, per judge."""
    columns = ["item_id", "judge_id", "label", "p_unsafe", "parse_status"]
    verdicts = judgments[columns]
    copies = responses[responses["perturbation"] != "original"][["item_id", "original_item_id", "perturbation", "severity",
                                                                 "stress_cluster"]]
    paired = copies.merge(verdicts, on="item_id").merge(
        verdicts.rename(columns={"item_id": "original_item_id"}), on=["original_item_id", "judge_id"],
        suffixes=("_copy", "_original"))
    return paired


def heatmap(stats: pd.DataFrame, out: Path, *, statistic: str = "stress_flip_rate") -> list[Path]:
    """Judges × (perturbation, severity) heat map of one statistic, each cell annotated with its interval."""
    import matplotlib.pyplot as plt

    from judgekit.outputs.style import PAPER_STYLE, save_figure

    table = stats[stats["statistic"] == statistic]
    columns = [(k, s) for k in dict.fromkeys(table["perturbation"]) for s in SEVERITIES if ((table["perturbation"] == k) & (table["severity"] == s)).any()]
    judges = sorted(table["judge_id"].unique())
    lookup = table.set_index(["judge_id", "perturbation", "severity"])
    values = np.array([[lookup.loc[(j, k, s), "estimate"] if (j, k, s) in lookup.index else np.nan for k, s in columns] for j in judges])
    with plt.rc_context(PAPER_STYLE):
        fig, ax = plt.subplots(figsize=(max(4.0, 0.75 * len(columns) + 2), 0.55 * len(judges) + 1.6), layout="constrained")
        image = ax.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for r, judge in enumerate(judges):
            for c, (kind, severity) in enumerate(columns):
                if (judge, kind, severity) in lookup.index:
                    row = lookup.loc[(judge, kind, severity)]
                    ax.text(c, r, f"{row['estimate']:.2f}\n[{row['ci_low']:.2f}, {row['ci_high']:.2f}]", ha="center", va="center",
                            fontsize=6, color="white" if row["estimate"] < 0.6 else "black")
        ax.set_xticks(range(len(columns)), [f"{k}\n{s}" for k, s in columns], rotation=90, fontsize=7)
        ax.set_yticks(range(len(judges)), judges, fontsize=7)
        ax.set_title(f"{statistic.replace('_', ' ')} (95% cluster-bootstrap intervals)", fontsize=8)
        fig.colorbar(image, ax=ax, shrink=0.8)
    return save_figure(fig, out, f"stress_{statistic}")


def stress_step(study_dir: Path, judge_names: list[str], design: StressDesign, *, out_dir: Path | None = None,
                options=None, n_boot: int = 1000, progress: bool = True, force: bool = False) -> tuple[pd.DataFrame, list[Path]]:
    """Perturb, judge (cached in ``STUDY/stress/<design>/``), compute the statistics; write table, figure, manifest."""
    from judgekit.store.io import write_table, write_text_atomic
    from judgekit.registry import resolve_judge
    from judgekit.store.manifest import build_manifest, write_manifest
    from judgekit.store.outdir import check_output_dir
    from judgekit.engine.judge_runner import run_judges
    from judgekit.store.schema import SCHEMAS
    from judgekit.store.study import existing_study_dir, load_study, table_path

    if not judge_names:
        raise InputError("name at least one judge with --judge (see `judgekit list`)")
    if n_boot < 1:
        raise InputError(f"--n-boot must be >= 1, got {n_boot}")
    study_dir = existing_study_dir(study_dir)
    if out_dir is not None:
        check_output_dir(out_dir, kind="stress", studies=[study_dir], force=force)
    judges = [resolve_judge(name, options) for name in judge_names]  # unknown judges fail before anything is written
    study = load_study(study_dir)
    work = study_dir / "stress" / design.key()
    out_dir = out_dir or work
    if not any(word.isalpha() for text in study.responses["response"].dropna().astype(str) for word in text.split()):
        raise InputError("no response holds an alphabetic word, which the word-level perturbations draw from",
                         file=table_path(study_dir, "responses"), column="response")
    responses = perturbed_responses(study.responses, design)
    work.mkdir(parents=True, exist_ok=True)
    write_table(responses, work / "responses.parquet", SCHEMAS["responses"])
    write_text_atomic(work / "study.json", json.dumps({"name": f"stress of {study_dir.name}", "simulated": study.metadata.simulated},
                                                      indent=2) + "\n")
    stressed = load_study(work)
    run_judges(stressed, judges, progress=progress)
    judgments = load_study(work).judgments
    stats = stress_statistics(pair_verdicts(stressed.responses, judgments), n_boot=n_boot, seed=design.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [write_table(stats, out_dir / "stress.csv"), *heatmap(stats, out_dir)]
    paths.append(write_manifest(out_dir, build_manifest(
        step="stress", inputs=study.files(), seeds={"perturbation": design.seed, "bootstrap": design.seed},
        details={"judges": judge_names, "perturbations": list(design.perturbations), "severities": list(design.severities),
                 "n": design.n, "n_boot": n_boot, "work_dir": str(work)})))
    return stats, paths
