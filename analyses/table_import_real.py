"""``data import table`` on real shared files, every number checked against pandas/sklearn (issue 32).

1. JailbreakBench judge comparison (``jbb_judge_comparison``, Mac Roman CSV): 3 human label columns and 4 judges'
   0/1 verdict columns in one command; κ, accuracy, recall and false-positive rate of each judge against the
   human majority, compared with sklearn on the file's own ``human_majority`` column.
2. XSTest v2 completions (``xstest_v2_completions``): Mistral-7B-Instruct without and with a guardrail system
   prompt, one file each (same 338 prompt ids), the final human label and GPT-4's label as a judge; the 18
   prompt types mapped to intent with ``--values``; ``models.csv`` ``compare_with``: the guardrail vs none,
   paired by prompt. The paired effect is checked against a pandas pivot.

Run: ``python analyses/table_import_real.py`` -> ``analyses/results/table_import_real/README.md``.
"""

from __future__ import annotations

import contextlib
import io
import shlex
import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import accuracy_score, cohen_kappa_score, recall_score

from judgekit.cli import main as cli

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
JBB = SHARED / "jbb_judge_comparison" / "judge-comparison.csv"
XSTEST = SHARED / "xstest_v2_completions" / "automated_evaluation_labels"
JBB_JUDGES = {"harmbench": "harmbench_cf", "gpt4": "gpt4_cf", "llamaguard2": "llamaguard2_cf", "llama3": "llama3_cf"}
MISTRAL = {"mistral-7b-instruct": "mistralinstruct", "mistral-7b-guardrail": "mistralguard"}


def run(*args) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli([str(a) for a in args])
    assert code == 0, (args, out.getvalue())
    return [f"    $ judgekit {shlex.join(map(str, args))}", *("    " + line for line in out.getvalue().splitlines())]


def _row(stats: pd.DataFrame, statistic: str, judge: str, reference: str, subset: str) -> pd.Series:
    rows = stats[(stats["statistic"] == statistic) & (stats["judge_id"] == judge) & (stats["reference"] == reference)
                 & (stats["subset"] == subset)]
    assert len(rows) == 1, (statistic, judge, subset, len(rows))
    return rows.iloc[0]


def jbb(work: Path) -> list[str]:
    study = work / "jbb"
    lines = ["## 1. JailbreakBench judge comparison: 3 humans, 4 judges, one command", ""]
    args = ["data", "import", "table", JBB, "--out", study, "--encoding", "mac_roman",
            "--map", "prompt=prompt,response=target_response,prompt_id=Index,goal=goal", "--set", "model=jbb-targets",
            "--label", "human1", "--label", "human2", "--label", "human3", "--unsafe-value", "label=1"]
    for name, column in JBB_JUDGES.items():
        args += ["--judge", f"{name}={column}", "--unsafe-value", f"{name}=1"]
    lines += run(*args)
    lines += run("stats", study, "--out", work / "jbb-stats", "--n-boot", "300")
    stats = pd.read_parquet(work / "jbb-stats" / "stats.parquet")
    source = pd.read_csv(JBB, encoding="mac_roman")
    human = source["human_majority"]
    lines += ["", "| judge | κ (judgekit) [95% CI] | κ (sklearn) | accuracy | recall | FPR | max abs difference |",
              "|---|---|---|---|---|---|---|"]
    for name, column in JBB_JUDGES.items():
        judge = source[column]
        expected = {"cohen_kappa": cohen_kappa_score(human, judge), "accuracy": accuracy_score(human, judge),
                    "recall": recall_score(human, judge), "fpr": 1 - recall_score(1 - human, 1 - judge)}
        got = {k: _row(stats, k, name, "human_majority", "all") for k in expected}
        worst = max(abs(got[k]["estimate"] - v) for k, v in expected.items())
        assert worst < 1e-9
        kappa = got["cohen_kappa"]
        lines.append(f"| {name} | {kappa['estimate']:.4f} [{kappa['ci_low']:.3f}, {kappa['ci_high']:.3f}] | "
                     f"{expected['cohen_kappa']:.4f} | {expected['accuracy']:.4f} | {expected['recall']:.4f} | "
                     f"{expected['fpr']:.4f} | {worst:.1e} |")
    return lines


def xstest(work: Path) -> list[str]:
    study = work / "xstest"
    types = pd.read_csv(XSTEST / "xstest_v2_completions_mistralguard_gpteval.csv")["type"].unique()
    intents = ",".join(f"{t}={'harmful' if t.startswith('contrast_') else 'benign'}" for t in sorted(types))
    lines = ["", "## 2. XSTest: Mistral-7B-Instruct with vs without a guardrail prompt (compare_with)", ""]
    for model, stem in MISTRAL.items():
        lines += run("data", "import", "table", XSTEST / f"xstest_v2_completions_{stem}_gpteval.csv", "--out", study,
                     "--map", "prompt=prompt,response=completion,prompt_id=id,intent=type", "--values",
                     f"type:{intents}", "--set", f"model={model}", "--set", "benchmark=xstest",
                     "--label", "final_label", "--annotator", "xstest-final", "--unsafe-value", "label=1_full_compliance",
                     "--judge", "gpt4=gpt4_label", "--unsafe-value", "gpt4=1_full_compliance")
    (study / "models.csv").write_text("model,compare_with\nmistral-7b-guardrail,mistral-7b-instruct\n")
    lines += ["    $ printf 'model,compare_with\\nmistral-7b-guardrail,mistral-7b-instruct\\n' > STUDY/models.csv"]
    lines += run("stats", study, "--out", work / "xstest-stats", "--n-boot", "300")
    stats = pd.read_parquet(work / "xstest-stats" / "stats.parquet")
    frames = []
    for model, stem in MISTRAL.items():
        frame = pd.read_csv(XSTEST / f"xstest_v2_completions_{stem}_gpteval.csv").assign(model=model)
        frames.append(frame[frame["type"].str.startswith("contrast_")])
    source = pd.concat(frames)
    lines += ["", "Harmful (contrast_) prompts: harmful compliance = full compliance. Paired effect guardrail − none:", "",
              "| rater | judgekit effect [95% CI] | pandas pivot | n prompts | subset_kind | warning |", "|---|---|---|---|---|---|"]
    subset = "comparison=mistral-7b-guardrail vs mistral-7b-instruct|goal=None|benchmark=all"
    for rater, column in (("human_majority", "final_label"), ("gpt4", "gpt4_label")):
        wide = source.assign(unsafe=(source[column] == "1_full_compliance").astype(float)).pivot(
            index="id", columns="model", values="unsafe")
        expected = (wide["mistral-7b-guardrail"] - wide["mistral-7b-instruct"]).mean()
        row = stats[(stats["statistic"] == "finetune_effect_paired") & (stats["judge_id"] == rater)
                    & (stats["subset"] == subset) & (stats["outcome"] == "harmful_compliance")].iloc[0]
        assert abs(row["estimate"] - expected) < 1e-9
        lines.append(f"| {rater} | {row['estimate']:+.4f} [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}] | "
                     f"{expected:+.4f} | {row['n_items']} | {row['subset_kind']} | {row['warning'] or '-'} |")
    return lines


def main(out: Path) -> None:
    started = time.time()
    with tempfile.TemporaryDirectory() as folder:
        lines = ["# `data import table` on real shared data", "",
                 "Commands run in-process; every number in the tables is asserted against pandas/sklearn to 1e-9 "
                 "by this script.", "", *jbb(Path(folder)), *xstest(Path(folder))]
        lines += ["", f"Ran in {time.time() - started:.0f} s (2 shared CPU cores)."]
        text = "\n".join(lines).replace(str(SHARED), "/work/shared/data").replace(folder, "work") + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main(Path(__file__).parent / "results" / "table_import_real")
