"""A comparison's label plan on exactly the items its corrected effect uses (shared by ``stats`` and ``plan-labels``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from judgekit.analysis.inputs import recorded_inclusion
from judgekit.stats.labelplan import UnitPlan, plan_unit_labels


NOTHING_TO_PLAN = "fewer than 2 prompts answered by both models and rated by this judge on both: nothing to plan"


def comparison_plan(reference: np.ndarray, verdict: np.ndarray, keys: np.ndarray, clusters: np.ndarray,
                    treated: np.ndarray, control: np.ndarray, *, target_halfwidth: float, level: float = 0.95,
                    budget: int | None = None, inclusion: np.ndarray | None = None,
                    p_unsafe: np.ndarray | None = None, strategy: str = "random",
                    uncertainty: np.ndarray | None = None) -> tuple[np.ndarray, UnitPlan] | None:
    """The items of a fine-tune comparison's corrected effect (judged responses of both models to the prompts both
    answered, as ``stats`` takes them) and its plan in prompts; None when the judge rates fewer than 2 prompts of both
    models (:data:`NOTHING_TO_PLAN`).
    ``inclusion``: per item its recorded inclusion probability (NaN none), weighted as ``stats`` weighs it;
    ``p_unsafe`` (the judge's P(unsafe), NaN none), ``strategy`` and ``uncertainty`` (per item, for an active draw):
    as for :func:`judgekit.stats.labelplan.plan_unit_labels`."""
    in_pair = treated | control
    answered = pd.DataFrame({"key": keys[in_pair], "treated": treated[in_pair]}).groupby("key")["treated"].nunique()
    shared = pd.Series(keys).isin(answered.index[answered == 2]).to_numpy()
    items = in_pair & shared & ~np.isnan(verdict)
    # a judge rating one model only (or failing on one side) leaves no prompt judged in both arms: nothing to plan
    rated = pd.DataFrame({"key": keys[items], "treated": treated[items]}).groupby("key")["treated"].nunique()
    if (rated == 2).sum() < 2:
        return None
    plan = plan_unit_labels(reference[items], verdict[items], keys[items], clusters[items],
                            treated=treated[items], target_halfwidth=target_halfwidth, level=level, budget=budget,
                            inclusion=recorded_inclusion(inclusion, reference, items)[0],
                            p_unsafe=None if p_unsafe is None else p_unsafe[items], strategy=strategy,
                            uncertainty=None if uncertainty is None else uncertainty[items])
    return items, plan
