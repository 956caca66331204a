"""refusal_direction: per model, the ablation's effect on harmful compliance and actadd's over-refusal on harmless prompts.

convert -> judgekit keyword judge -> flag -> stats, then per model the ``finetune_effect_paired`` rows of
``judgekit stats`` (paired by prompt, cluster bootstrap over prompts), per outcome:

- harmful compliance on the 100 JailbreakBench prompts: share judged unsafe, ablation minus baseline and actadd minus
  baseline, under the source's substring matcher, Llama Guard 2, and judgekit's keyword-gcg-13;
- over-refusal on the 100 harmless prompts: share where a refusal was found (substring matcher / keyword-gcg-13 say
  ``safe``), actadd minus baseline.

The study declares ``substring_matching`` a refusal judge (``refusal_judges``), so stats measures over-refusal with
it; keyword-gcg-13 is a refusal detector as every keyword judge.

Usage: python analyses/refusal_direction.py [--data ../shared/data] [--out analyses/results] [--n-boot 2000]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from common import arguments, converted, save_figure, statistics, workdir, write_outputs
from judgekit.engine.steps import flag_step
from judgekit.store.study import load_study

JUDGES = ("substring_matching", "llamaguard2", "keyword-gcg-13")
# judgekit's outcome -> the words used in this analysis' tables and figure
OUTCOMES = {"harmful_compliance": "harmful compliance", "over_refusal": "over-refusal"}


def effects(stats: pd.DataFrame) -> pd.DataFrame:
    """The paired effects per model, comparison, outcome and judge, read from ``judgekit stats`` rows.

    ``finetune_effect_paired`` over every benchmark of the outcome's prompts, with the baseline's rate from the
    ``harmful_rate`` row of the same outcome and judge; comparisons that have no prompts of an outcome (ablation
    was not run on the harmless prompts) are rows saying so in the stats and left out here.
    """
    paired = stats[(stats.statistic == "finetune_effect_paired") & stats.subset.str.contains("|benchmark=all", regex=False)
                   & stats.outcome.isin(list(OUTCOMES)) & stats.judge_id.isin(JUDGES) & stats.estimate.notna()]
    rates = stats[stats.statistic == "harmful_rate"].dropna(subset=["model"])
    base_rate = rates.set_index(["model", "outcome", "judge_id"])["estimate"]
    rows = [{"outcome": OUTCOMES[r.outcome], "model": r.base_model.split("/")[0],
             "comparison": f"{r.model.split('/')[1]} vs baseline", "judge": r.judge_id,
             "baseline rate": float(base_rate.loc[(r.base_model, r.outcome, r.judge_id)]), "effect": r.estimate,
             "ci_low": r.ci_low, "ci_high": r.ci_high, "n_pairs": int(r.n_items)} for r in paired.itertuples()]
    table = pd.DataFrame(rows)
    order = table.judge.map({judge: k for k, judge in enumerate(JUDGES)}).rename("judge order")
    return table.assign(**{order.name: order}).sort_values(["outcome", "model", "comparison", order.name]).drop(
        columns=order.name).reset_index(drop=True)


def figure(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("harmful compliance", "ablation vs baseline"), ("harmful compliance", "actadd vs baseline"),
              ("over-refusal", "actadd vs baseline")]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.8), sharey=True)
    models = sorted(table.model.unique())
    for axis, (outcome, comparison) in zip(axes, panels, strict=True):
        part = table[(table.outcome == outcome) & (table.comparison == comparison)]
        judges = list(dict.fromkeys(part.judge))
        for k, judge in enumerate(judges):
            rows = part[part.judge == judge].set_index("model").reindex(models)
            y = np.arange(len(models)) + (k - (len(judges) - 1) / 2) * 0.2
            axis.errorbar(rows.effect, y, xerr=[rows.effect - rows.ci_low, rows.ci_high - rows.effect], fmt="o", ms=4,
                          capsize=2, label=judge)
        axis.axvline(0, color="grey", lw=0.8)
        axis.set_xlim(-0.2, 1.05)
        axis.set_title(f"{outcome}: {comparison}", fontsize=10)
        axis.set_xlabel("change in share (paired, 95% CI)")
        axis.legend(fontsize=7, loc="center left")
    axes[0].set_yticks(range(len(models)), models)
    save_figure(fig, path)


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    out = args.out / "refusal_direction"
    out.mkdir(parents=True, exist_ok=True)
    with workdir() as tmp:
        converted("refusal-direction", args.data / "refusal_direction", Path(tmp), judges=("keyword-gcg-13",))
        flag_step(Path(tmp) / "refusal-direction")
        study = load_study(Path(tmp) / "refusal-direction")
    table = effects(statistics(study, args))
    flags = study.flags[study.flags.detector == "incoherent"].merge(study.responses[["item_id", "model"]], on="item_id")
    incoherent = flags.groupby("model")["flagged"].mean().rename("incoherent share").reset_index()
    shown = table.assign(effect=table.apply(lambda r: f"{r.effect:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]", axis=1),
                         **{"baseline rate": table["baseline rate"].map("{:.2f}".format)})
    write_outputs(out, "effects", shown.drop(columns=["ci_low", "ci_high"]),
                  caption="Per model: ablation/actadd minus baseline, harmful compliance (harmful prompts) and "
                          "over-refusal (harmless prompts), per judge, paired by prompt")
    write_outputs(out, "incoherent_share", incoherent, caption="Share flagged incoherent by judgekit flag, per model")
    table.to_csv(out / "effects.csv", index=False)
    figure(table, out / "refusal_direction.png")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
