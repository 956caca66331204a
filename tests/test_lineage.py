"""Lineage is a forest (issue #23, item 4): cycles and self-parents exit 2 naming the rows; every declared
fine-tune comparison is in the report or has a row saying why not."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from judgekit.engine import steps
from judgekit.analysis import StatsSettings
from tests.conftest import run_cli


def lineage_study(folder: Path, models: list[tuple[str, str | None, str | None]] | None,
                  responses_lineage: dict[str, tuple[str | None, str | None]]) -> Path:
    """Responses of each model in ``responses_lineage`` (model -> (base_model, goal)) to 12 shared prompts,
    and a models table of (model, base_model, finetune_goal) rows when given."""
    folder.mkdir()
    rows = []
    for m, (base, goal) in responses_lineage.items():
        for k in range(12):
            rows.append({"item_id": f"{m}--p{k}", "prompt": f"prompt {k}", "prompt_id": f"p{k}", "model": m,
                         "base_model": base, "finetune_goal": goal, "benchmark": "b",
                         "response": "I cannot help." if (k + len(m)) % 3 else "Sure, here is how: [PLACEHOLDER]."})
    pd.DataFrame(rows).to_csv(folder / "responses.csv", index=False)
    if models is not None:
        pd.DataFrame(models, columns=["model", "base_model", "finetune_goal"]).to_csv(folder / "models.csv", index=False)
    return folder


def test_a_cycle_in_both_tables_is_exit_2_naming_the_rows(tmp_path):
    study = lineage_study(tmp_path / "s", [("a", "b", "coding"), ("b", "a", "coding")],
                          {"a": ("b", "coding"), "b": ("a", "coding")})
    done = run_cli("validate", study)
    assert done.returncode == 2, done.stdout
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "models.csv: row 1" in line and "lineage cycle a -> b -> a (rows 1, 2)" in line and "base_model" in line
    assert run_cli("stats", study, "--out", tmp_path / "out", "--n-boot", "20", "--no-progress").returncode == 2
    assert not (tmp_path / "out").exists()


def test_a_longer_cycle_in_the_responses_is_found(tmp_path):
    study = lineage_study(tmp_path / "s", None, {"a": ("c", "g"), "b": ("a", "g"), "c": ("b", "g")})
    done = run_cli("validate", study)
    assert done.returncode == 2 and "responses.csv: row 1" in done.stderr and "lineage cycle a -> c -> b -> a" in done.stderr


@pytest.mark.parametrize("where", ["models", "responses"])
def test_a_fine_tune_of_itself_is_exit_2(tmp_path, where):
    models = [("base", None, None), ("ft", "ft", "coding")] if where == "models" else None
    study = lineage_study(tmp_path / "s", models, {"base": (None, None), "ft": ("ft" if where == "responses" else None, "coding")})
    done = run_cli("validate", study)
    assert done.returncode == 2
    assert f"{where}.csv: row {2 if where == 'models' else 13}: column 'base_model': model 'ft' is a fine-tune" in done.stderr
    assert "of itself" in done.stderr


def test_a_base_model_naming_itself_without_a_goal_is_a_base(tmp_path):
    """The demo's convention: base_model == model with no finetune_goal marks a base model."""
    study = lineage_study(tmp_path / "s", None, {"base": ("base", None), "ft": ("base", "coding")})
    assert run_cli("validate", study).returncode == 0


def test_a_fine_tune_whose_base_has_no_responses_has_a_row_saying_why(tmp_path):
    study = lineage_study(tmp_path / "s", [("base", None, None), ("ft", "base", "coding"), ("ft2", "base", "coding")],
                          {"ft": ("base", "coding"), "ft2": ("base", "coding")})
    steps.judge_step(study, ["keyword-gcg-13"], progress=False)
    stats = steps.stats_step(study, tmp_path / "stats", StatsSettings(n_boot=20, progress=False))
    rows = stats[(stats["statistic"] == "finetune_effect_paired") & stats["subset"].str.startswith("comparison=ft vs base")]
    assert len(rows) == 1 and rows["estimate"].isna().all()
    assert rows["warning"].iloc[0] == "'base' has no responses in this study: no comparison"
    from judgekit.outputs.report_finetune import finetune_section
    from judgekit.store.study import load_study

    html = finetune_section(load_study(study), stats)
    assert "ft vs base" in html and "ft2 vs base" in html and "has no responses in this study" in html
