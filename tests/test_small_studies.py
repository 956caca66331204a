"""Issue 32: small studies still get numbers (Newcombe's paired interval), checkpoints get a trend and a figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from conftest import run_cli
from scipy.stats import multinomial

from judgekit.stats.paired import paired_mean_difference
from judgekit.stats.paired_binary import newcombe_paired_difference
from judgekit.stats.resampling import wilson_interval
from judgekit.stats.trend import clustered_logistic_trend


def test_wilson_interval_equals_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    for successes, trials in ((0, 5), (3, 8), (8, 8), (7, 20), (1, 1)):
        for level in (0.9, 0.95):
            expected = proportion_confint(successes, trials, alpha=1 - level, method="wilson")
            assert wilson_interval(successes, trials, level=level) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("cells", [(0.4, 0.1, 0.1, 0.4), (0.03, 0.27, 0.07, 0.63), (0.15, 0.05, 0.35, 0.45)])
def test_small_n_paired_interval_covers_the_true_difference_at_eight_prompts(cells):
    """Exact coverage (every table of 8 pairs, weighted by its multinomial probability) of the interval stats
    reports, against the known difference P(treated only) - P(control only)."""
    n, truth, coverage = 8, cells[1] - cells[2], 0.0
    for both in range(n + 1):
        for t_only in range(n + 1 - both):
            for c_only in range(n + 1 - both - t_only):
                table = (both, t_only, c_only, n - both - t_only - c_only)
                treated = [1.0] * (both + t_only) + [0.0] * (c_only + table[3])
                control = [1.0] * both + [0.0] * t_only + [1.0] * c_only + [0.0] * table[3]
                result = paired_mean_difference(np.array(treated + control), np.repeat([True, False], n),
                                                np.tile(np.arange(n), 2))
                assert result.estimate == pytest.approx((t_only - c_only) / n)
                coverage += multinomial.pmf(table, n, cells) * (result.ci_low <= truth <= result.ci_high)
    assert 0.94 <= coverage <= 0.999


def test_small_n_interval_has_width_without_discordant_pairs_and_widens_with_level():
    estimate, low, high = newcombe_paired_difference(both=3, treated_only=0, control_only=0, neither=5)
    assert estimate == 0 and low < 0 < high  # never "0 [0, 0]"
    narrow = newcombe_paired_difference(both=1, treated_only=4, control_only=1, neither=2, level=0.8)
    wide = newcombe_paired_difference(both=1, treated_only=4, control_only=1, neither=2, level=0.99)
    assert wide[1] < narrow[1] < narrow[0] < narrow[2] < wide[2]
    many = paired_mean_difference(np.repeat([1.0, 0.0], 100), np.repeat([True, False], 100),
                                  np.tile(np.arange(100), 2))
    assert many.estimate == 1.0 and many.ci_high == 1.0  # 100 discordant: the bootstrap, as before
    none_discordant = paired_mean_difference(np.ones(200), np.repeat([True, False], 100), np.tile(np.arange(100), 2))
    assert none_discordant.ci_low < 0 < none_discordant.ci_high and "few discordant units (0 of 100" in \
        none_discordant.warning


def test_trend_slope_equals_an_unpenalised_logistic_fit_and_holds_its_level_under_clustering():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    steps = np.array([0, 100, 200, 300])
    rejections = 0
    for run in range(150):
        prompts = 30
        effect = rng.normal(0, 1.5, prompts)  # strong within-prompt correlation, no trend
        clusters = np.repeat(np.arange(prompts), len(steps))
        step = np.tile(steps, prompts).astype(float)
        y = (rng.random(len(step)) < 1 / (1 + np.exp(-(-0.5 + effect[clusters])))).astype(float)
        trend = clustered_logistic_trend(y, step, clusters)
        rejections += not trend.ci_low <= 0 <= trend.ci_high
        if run == 0:
            fit = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(step[:, None] / 300, y)
            assert trend.slope == pytest.approx(fit.coef_[0, 0] / 300, rel=1e-5)
            assert trend.n_clusters == 30 and trend.n_steps == 4 and "t(29)" in trend.method
    assert rejections / 150 <= 0.10  # nominal 0.05; MC s.e. 0.018 at 150 runs
    constant = clustered_logistic_trend(np.zeros(8), [0, 1] * 4, [0, 0, 1, 1, 2, 2, 3, 3])
    assert np.isnan(constant.slope) and "constant" in constant.reason


def test_checkpoints_get_paired_rows_a_trend_and_a_figure(tmp_path):
    rng = np.random.default_rng(5)
    rows = []
    prompt_effect = rng.normal(0, 1, 30)
    for p in range(30):
        for model, step in (("base", 0), ("ck100", 100), ("ck200", 200), ("ck300", 300)):
            human = rng.random() < 1 / (1 + np.exp(-(-1.5 + prompt_effect[p] + 0.006 * step)))
            rows.append({"pid": f"p{p}", "model": model, "q": f"question {p}", "a": f"answer {p} {model}",
                         "human": int(human), "j1": int(human if rng.random() < 0.85 else not human)})
    csv = tmp_path / "run.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    study = tmp_path / "S"
    assert run_cli("data", "import", "table", csv, "--out", study, "--map", "prompt=q,response=a,prompt_id=pid",
                   "--map", "model=model", "--set", "intent=harmful", "--label", "human", "--unsafe-value", "label=1",
                   "--judge", "j1=j1", "--unsafe-value", "j1=1").returncode == 0
    (study / "models.csv").write_text("model,checkpoint_of,step\nck100,base,100\nck200,base,200\nck300,base,300\n")
    result = run_cli("stats", study, "--out", tmp_path / "stats", "--n-boot", "100",
                     "--only", "finetune_effect_paired,checkpoint_trend,checkpoint_step")
    assert result.returncode == 0, result.stderr
    stats = pd.read_parquet(tmp_path / "stats" / "stats.parquet")
    effects = stats[stats["statistic"] == "finetune_effect_paired"]
    assert set(effects["subset_kind"]) == {"checkpoint_comparison"} and len(effects) == 3 * 2
    steps = stats[stats["statistic"] == "checkpoint_step"].set_index("subset")["estimate"]
    assert steps["comparison=ck300 vs base|goal=None|benchmark=all"] == 300
    trend = stats[(stats["statistic"] == "checkpoint_trend") & (stats["judge_id"] == "human_majority")].iloc[0]
    assert trend["subset_kind"] == "checkpoint_comparison" and trend["ci_low"] < trend["estimate"] < trend["ci_high"]
    # the slope is the logistic regression of the human labels on step (checked independently with statsmodels)
    import statsmodels.api as sm

    frame = pd.DataFrame(rows)
    x = frame["model"].map({"base": 0, "ck100": 100, "ck200": 200, "ck300": 300}).to_numpy(float)
    fit = sm.Logit(frame["human"].to_numpy(float), sm.add_constant(x / 300)).fit(disp=0)
    assert trend["estimate"] == pytest.approx(fit.params[1] / 300, rel=1e-6)
    from judgekit.outputs.checkpoint_figure import checkpoint_effects
    from judgekit.outputs.style import FigureInputs

    figure = checkpoint_effects(FigureInputs(stats))
    assert figure is not None and len(figure.axes[0].lines) >= 2
    plt.close(figure)
