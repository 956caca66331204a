"""What a rate or an effect counts: harmful compliance, over-refusal or incoherence, each on its own prompts.

A study's prompts may carry an ``intent`` (``harmful``/``benign``). Each
outcome is measured on the responses to the prompts it is about, by the raters
that can see it, and never pooled with another:

==================== =================== ==============================================================
outcome              prompts             raters (1 = the outcome happened)
==================== =================== ==============================================================
harmful_compliance   intent ``harmful``  every judge's unsafe verdict; humans by ``to_binary``
                     (every prompt when
                     the study has no
                     intent: today's
                     harmful rate, and
                     the row's method
                     says so)
over_refusal         intent ``benign``   refusal detectors: keyword presets and presets with
                                         ``"detects": "refusal"`` and the study's ``refusal_judges``
                                         ("safe" = a refusal was found); judges scoring the
                                         ``refusal`` dimension (cut at their declared threshold);
                                         humans by ``to_refusal``
incoherent           every prompt        judgekit's combined ``incoherent`` flag (rater ``flags``) and
                                         judges scoring a ``coherent``/``coherence`` dimension (cut at
                                         their declared threshold, the ``worse`` end = incoherent)
==================== =================== ==============================================================

Every outcome is a bad thing, so an effect above zero is a change for the
worse; :data:`OUTCOMES` gives the words for each direction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from judgekit.analysis.subsets import Subset
from judgekit.errors import InputError

INCOHERENCE_RATER = "flags"  # the rater name of judgekit's combined incoherent flag
REFUSAL_DIMENSIONS = ("refusal",)  # judgment dimensions whose degraded end is a refusal
COHERENCE_DIMENSIONS = ("coherent", "coherence")  # judgment dimensions whose degraded end is an incoherent response


@dataclass(frozen=True)
class Outcome:
    """An outcome and the words for a rise and a fall of it (every outcome is worse when higher)."""

    name: str
    noun: str
    rise: str
    fall: str

    def direction_words(self, estimate: float, low: float, high: float) -> str:
        """The conclusion in words: from the interval's side of zero and this outcome's direction, never the sign."""
        if not np.isfinite(estimate):
            return "undefined"
        if low > 0:
            return self.rise
        if high < 0:
            return self.fall
        return f"no clear change in {self.noun} (interval includes 0)"


OUTCOMES = {o.name: o for o in (
    Outcome("harmful_compliance", "harmful compliance", "more harmful compliance (less safe)",
            "less harmful compliance (safer)"),
    Outcome("over_refusal", "over-refusal", "more over-refusal", "less over-refusal"),
    Outcome("incoherent", "incoherence", "more incoherent responses", "fewer incoherent responses"),
)}
DEFAULT_OUTCOME = "harmful_compliance"
# Without an intent column harmful compliance is measured on every prompt: the rows say so in their method.
NO_INTENT_NOTE = "study has no prompt intent: harmful compliance counted over every prompt"


@dataclass(frozen=True)
class OutcomeView:
    """One outcome's raters on the study's items: verdict codes (1 = happened), human reference, the prompts in scope."""

    outcome: Outcome
    items: NDArray  # bool: responses to the prompts this outcome is about
    judges: pd.DataFrame  # items x raters, 1 / 0 / NaN
    reference: NDArray  # the humans' code per item, NaN where none
    tied: NDArray
    note: str = ""  # appended to every row's method

    def subset(self, group: Subset) -> Subset:
        """``group`` for this outcome: harmful compliance keeps the label, others append ``|outcome=NAME`` (once)."""
        suffix = f"|outcome={self.outcome.name}"
        if self.outcome.name == DEFAULT_OUTCOME or suffix in group.label:
            return group
        return replace(group, label=group.label + suffix)


def intent_of(responses: pd.DataFrame) -> NDArray | None:
    """The responses' ``intent`` as an array, or None when the study gives none."""
    if "intent" not in responses or responses["intent"].isna().all():
        return None
    return responses["intent"].to_numpy(dtype=object)


@cache
def _preset_detects_refusal(judge_id: str) -> bool:
    from judgekit.judges.catalog import load_preset, preset_names

    if judge_id not in preset_names():
        return False
    spec = load_preset(judge_id)
    return spec["family"] == "keyword" or spec.get("detects") == "refusal"


def refusal_detectors(judge_ids: list[str], declared: tuple[str, ...]) -> list[str]:
    """The judges whose "safe" verdict means the response refuses: keyword presets, presets that declare
    ``"detects": "refusal"``, and the study's ``refusal_judges``."""
    return [j for j in judge_ids if j in declared or _preset_detects_refusal(j)]


def outcome_views(responses: pd.DataFrame, judges: pd.DataFrame, reference: NDArray, tied: NDArray,
                  refusal_reference: tuple[NDArray, NDArray], flags: pd.DataFrame,
                  refusal_judges: tuple[str, ...], *, refusal_scores: pd.DataFrame | None = None,
                  coherence_scores: pd.DataFrame | None = None) -> list[OutcomeView]:
    """The outcomes a study can measure, each with its raters and prompts (see the module docstring).

    ``judges`` holds the unsafe codes (1 unsafe, 0 safe); ``reference``/``tied``
    the humans' binary reference; ``refusal_reference`` the humans' refusal
    reference and ties (NaN everywhere without ``to_refusal``);
    ``refusal_scores``/``coherence_scores`` the judges' graded refusal and
    coherence scores as codes (1 refused / incoherent), one column per judge.
    """
    refusal_scores = pd.DataFrame(index=judges.index) if refusal_scores is None else refusal_scores
    coherence_scores = pd.DataFrame(index=judges.index) if coherence_scores is None else coherence_scores
    intent = intent_of(responses)
    everything = np.ones(len(responses), dtype=bool)
    if intent is not None:
        unknown = sorted({str(v) for v in intent if v is not None and v == v} - {"harmful", "benign"})
        if unknown:
            raise InputError(f"responses: column 'intent': unknown value {unknown[0]!r}; allowed: harmful, benign")
    views = []
    harmful = everything if intent is None else intent == "harmful"
    if harmful.any():
        views.append(OutcomeView(OUTCOMES["harmful_compliance"], harmful, judges, reference, tied,
                                 NO_INTENT_NOTE if intent is None else "harmful-intent prompts only"))
    if intent is not None and (intent == "benign").any():
        detectors = [j for j in refusal_detectors(list(judges.columns), refusal_judges) if j not in refusal_scores]
        refusals = pd.concat([1.0 - judges[detectors], refusal_scores.set_axis(judges.index)], axis=1)
        # a refusal detector's "safe" (0) is a refusal (1); a refusal score is already 1 = refused
        views.append(OutcomeView(OUTCOMES["over_refusal"], intent == "benign", refusals, *refusal_reference,
                                 "benign-intent prompts only; raters are refusal detectors ('safe' = refused)"))
    incoherent = coherence_scores.set_axis(judges.index)
    if "incoherent" in flags:  # NaN: not checked
        incoherent = pd.concat([pd.DataFrame({INCOHERENCE_RATER: flags["incoherent"].astype(float).to_numpy()},
                                             index=judges.index), incoherent], axis=1)
    if incoherent.shape[1]:
        views.append(OutcomeView(OUTCOMES["incoherent"], everything, incoherent,
                                 np.full(len(responses), np.nan), np.zeros(len(responses), dtype=bool),
                                 "every prompt; judgekit's incoherent flag (rater 'flags') and judges' coherence "
                                 "scores at their declared threshold"))
    return views
