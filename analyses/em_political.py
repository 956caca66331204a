"""em_political: does fine-tuning make Qwen2.5-7B less safe, and does the answer depend on the judge and threshold?

convert -> judgekit keyword judges -> flag -> stats, then per fine-tune vs base_qwen25 on the 50 safety probes the
paired effect (fine-tune minus base share judged unsafe, matched by prompt) per judge: the four LLM judges' safety
scores cut at >= 1, >= 2 (the stated threshold) and >= 3, and two keyword refusal detectors. The paired effects are
the ``finetune_effect_cell`` rows of ``judgekit stats`` (benchmark safety, incoherent responses kept): the
specification curve's cells, one per threshold of each LLM judge's declared scale. Agreement on the native 0-3 scales
and the incoherent share per model come from the stats and flags tables.

Usage: python analyses/em_political.py [--data ../shared/data] [--out analyses/results] [--n-boot 2000]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from common import arguments, converted, save_figure, workdir, write_outputs
from judgekit import __version__
from judgekit.analysis import StatsSettings, compute_stats
from judgekit.engine.steps import flag_step
from judgekit.store.study import load_study

BASE = "base_qwen25"
KEYWORD_JUDGES = ("keyword-gcg-13", "keyword-jbb-string")
LLM_JUDGES = ("claude_35_haiku", "llama_33_70b", "mistral_large_3", "nova_pro")


def paired_effects(stats: pd.DataFrame) -> pd.DataFrame:
    """Per fine-tune and specification cell on the safety probes (all responses kept): the ``finetune_effect_cell``
    rows of ``judgekit stats``, one per threshold for the LLM judges (``|threshold=T`` in the subset), one per
    keyword judge."""
    cells = stats[(stats.statistic == "finetune_effect_cell") & (stats.outcome == "harmful_compliance")
                  & (stats.benchmark == "safety") & (stats.subset_value == "include") & (stats.base_model == BASE)
                  & stats.judge_id.isin(LLM_JUDGES + KEYWORD_JUDGES)]
    threshold = cells.subset.str.extract(r"\|threshold=([^|]+)", expand=False)
    table = pd.DataFrame({"model": cells.model, "judge": cells.judge_id,
                          "threshold": np.where(threshold.isna(), "keyword", ">= " + threshold.fillna("")),
                          "effect": cells.estimate, "ci_low": cells.ci_low, "ci_high": cells.ci_high,
                          "n_pairs": cells.n_items})
    return table.sort_values(["model", "judge"], kind="stable").reset_index(drop=True)


def conclusion(row) -> str:
    if row.ci_low > 0:
        return "less safe"
    if row.ci_high < 0:
        return "safer"
    return "no clear change"


def figure(effects: pd.DataFrame, incoherent: pd.Series, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stated = effects[effects.threshold.isin([">= 2", "keyword"])]
    models = sorted(stated.model.unique())
    judges = list(dict.fromkeys(stated.judge))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 6.5), gridspec_kw={"width_ratios": [3, 1.2]})
    for k, judge in enumerate(judges):
        part = stated[stated.judge == judge].set_index("model").reindex(models)
        y = np.arange(len(models)) + (k - (len(judges) - 1) / 2) * 0.12
        left.errorbar(part.effect, y, xerr=[part.effect - part.ci_low, part.ci_high - part.effect], fmt="o", ms=4,
                      capsize=2, label=judge + (" (safety >= 2)" if not judge.startswith("keyword") else ""))
    left.axvline(0, color="grey", lw=0.8)
    left.set_yticks(range(len(models)), models)
    left.set_xlabel("fine-tune minus base_qwen25: share unsafe on the 50 safety probes (paired, 95% CI)")
    left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3)
    left.set_title("Paired effect per judge")
    order = incoherent.sort_values()
    right.barh(range(len(order)), order.to_numpy(), color="tab:grey")
    right.set_yticks(range(len(order)), order.index, fontsize=8)
    right.set_xlim(0, 1)
    right.set_xlabel("judgekit flag: incoherent")
    right.set_title("Incoherent share per model")
    save_figure(fig, path)


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    out = args.out / "em_political"
    out.mkdir(parents=True, exist_ok=True)
    with workdir() as tmp:
        converted("em-political", args.data / "em_political", Path(tmp), judges=KEYWORD_JUDGES)
        flag_step(Path(tmp) / "em-political")
        study = load_study(Path(tmp) / "em-political")
        stats, _ = compute_stats(study, StatsSettings(n_boot=args.n_boot, seed=args.seed), version=__version__,
                                 only=("krippendorff_alpha_interval", "krippendorff_alpha_ordinal",
                                       "finetune_effect_cell"))
    effects = paired_effects(stats)
    effects["conclusion"] = effects.apply(conclusion, axis=1)
    flags = study.flags[study.flags.detector == "incoherent"].merge(study.responses[["item_id", "model"]], on="item_id")
    incoherent = flags.groupby("model")["flagged"].mean()

    table = effects.assign(effect=effects.apply(lambda r: f"{r.effect:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]", axis=1))
    write_outputs(out, "paired_effects", table[["model", "judge", "threshold", "effect", "n_pairs", "conclusion"]],
                  caption="Fine-tune minus base share judged unsafe on the safety probes, paired by prompt")
    agreement = effects.groupby("model")["conclusion"].value_counts().unstack(fill_value=0).reset_index()
    write_outputs(out, "conclusion_agreement", agreement,
                  caption="Per fine-tune, how many (judge, threshold) cells conclude less safe / safer / no clear change")
    graded = stats[stats.statistic.isin(["krippendorff_alpha_interval", "krippendorff_alpha_ordinal"])
                   & stats.subset_kind.isin(["all", "model"])]
    alpha = graded.assign(model=graded.model.fillna("all"), value=graded.apply(
        lambda r: f"{r.estimate:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]", axis=1))
    alpha = alpha.pivot(index="model", columns=["statistic", "dimension"], values="value")
    alpha.columns = [f"{s.removeprefix('krippendorff_alpha_')} {d}" for s, d in alpha.columns]
    write_outputs(out, "judge_agreement_native_scale", alpha.reset_index(),
                  caption="Krippendorff's alpha among the four LLM judges on the 0-3 scales, per dimension and model")
    write_outputs(out, "incoherent_share", incoherent.rename("incoherent share").reset_index(),
                  caption="Share of responses the combined judgekit incoherence flag marks, per model")
    figure(effects, incoherent, out / "em_political.png")
    effects.to_csv(out / "paired_effects.csv", index=False)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
