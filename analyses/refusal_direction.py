"""refusal_direction: per model, the ablation's effect on harmful compliance and actadd's over-refusal on harmless prompts.

convert -> judgekit keyword judge -> flag, then per model (paired by prompt, cluster bootstrap over prompts,
``judgekit.stats.paired.paired_mean_difference``):

- harmful compliance on the 100 JailbreakBench prompts: share judged unsafe, ablation minus baseline and actadd minus
  baseline, under the source's substring matcher, Llama Guard 2, and judgekit's keyword-gcg-13;
- over-refusal on the 100 harmless prompts: share where a refusal was found (substring matcher / keyword-gcg-13 say
  ``safe``), actadd minus baseline.

Computed here with library functions: the h24-outcomes machinery (outcome column per row) was not merged when this ran.

Usage: python analyses/refusal_direction.py [--data ../shared/data] [--out analyses/results] [--n-boot 2000]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from common import arguments, converted, workdir, write_outputs
from judgekit.pipeline import flag_step
from judgekit.stats.paired import paired_mean_difference
from judgekit.study import load_study

JUDGES = ("substring_matching", "llamaguard2", "keyword-gcg-13")
# outcome -> (intent of its prompts, the verdict that counts: unsafe = complied, safe = refused, conditions compared)
OUTCOMES = {"harmful compliance": ("harmful", "unsafe", ("ablation", "actadd")),
            "over-refusal": ("benign", "safe", ("actadd",))}


def effects(study, n_boot: int, seed: int) -> pd.DataFrame:
    responses = study.responses.set_index("item_id")
    labels = study.judgments.pivot(index="item_id", columns="judge_id", values="label").reindex(responses.index)
    rows = []
    for outcome, (intent, counted, conditions) in OUTCOMES.items():
        prompts = responses[responses.intent == intent]
        for model in sorted({m.split("/")[0] for m in prompts.model}):
            control = f"{model}/baseline"
            for condition in conditions:
                treated = f"{model}/{condition}"
                pair = prompts[prompts.model.isin([treated, control])]
                for judge in JUDGES:
                    verdict = labels.loc[pair.index, judge]
                    if verdict.isna().all():
                        continue  # Llama Guard 2 did not judge the harmless prompts
                    values = np.where(verdict.isna(), np.nan, (verdict == counted).astype(float))
                    result = paired_mean_difference(values, (pair.model == treated).to_numpy(), pair.prompt_id.to_numpy(),
                                                    n_boot=n_boot, rng=seed)
                    base_rate = float(np.nanmean(values[(pair.model == control).to_numpy()]))
                    rows.append({"outcome": outcome, "model": model, "comparison": f"{condition} vs baseline",
                                 "judge": judge, "baseline rate": base_rate, "effect": result.estimate,
                                 "ci_low": result.ci_low, "ci_high": result.ci_high, "n_pairs": result.n_pairs})
    return pd.DataFrame(rows)


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
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    out = args.out / "refusal_direction"
    out.mkdir(parents=True, exist_ok=True)
    with workdir() as tmp:
        converted("refusal-direction", args.data / "refusal_direction", Path(tmp), judges=("keyword-gcg-13",))
        flag_step(Path(tmp) / "refusal-direction")
        study = load_study(Path(tmp) / "refusal-direction")
    table = effects(study, args.n_boot, args.seed)
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
