"""Paired comparisons of two models on matched units: the fine-tune effect and capability gain.

A fine-tuned model and its base are compared on the prompts **both** answered:
each prompt's harmful rate (several samples averaged within the prompt) is
differenced within the prompt, and the prompts are resampled as clusters. An
unpaired difference of pooled rates mixes the effect of fine-tuning with the
difference between the prompt sets the two models happened to answer
(easier or harder prompts); the paired difference does not.

The same machinery gives the capability gain from per-item scores matched by
item id, and :func:`summary_difference` gives it from two aggregate scores
with intervals when no per-item scores exist.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtri

from judgekit.stats.intervals import linearized_interval
from judgekit.stats.paired_binary import newcombe_paired_difference, paired_rates_difference
from judgekit.stats.resampling import cluster_sums

# Bootstrap weights are drawn in chunks so memory stays near this many floats whatever the number of units.
_CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class PairedDifference:
    """A within-unit paired difference (treatment minus control) with its interval.

    ``estimate`` is NaN and ``reason`` says why when too few units are
    matched; ``warning`` is non-empty when the estimate is reported but its
    interval or its population should not be trusted without reading it.
    """

    estimate: float
    ci_low: float
    ci_high: float
    n_pairs: int
    matched_share_treatment: float
    matched_share_control: float
    n_units_treatment: int
    n_units_control: int
    warning: str
    reason: str
    method: str
    n_boot: int


@dataclass(frozen=True)
class _MatchedUnits:
    """Per matched unit the mean of each value column in each arm, and the matching counts."""

    treatment: NDArray  # (n_pairs, k) means
    control: NDArray  # (n_pairs, k)
    treatment_counts: NDArray  # (n_pairs, k) observations behind each mean
    control_counts: NDArray
    n_units_treatment: int
    n_units_control: int
    first_rows: NDArray  # (n_pairs,) an observation of each matched unit, to look up its cluster


def _validate_common(n_boot: int, level: float, min_matched_share: float, min_pairs: int) -> None:
    if not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"The 'n_boot' parameter must be a positive integer. Got {n_boot!r} instead.")
    if not 0 < level < 1:
        raise ValueError(f"The 'level' parameter must be in (0, 1). Got {level!r} instead.")
    if not 0 <= min_matched_share <= 1:
        raise ValueError(f"The 'min_matched_share' parameter must be in [0, 1]. Got {min_matched_share!r} instead.")
    if not isinstance(min_pairs, int | np.integer) or min_pairs < 2:
        raise ValueError(f"The 'min_pairs' parameter must be an integer >= 2. Got {min_pairs!r} instead.")


def _match_units(values: NDArray, in_treatment: NDArray, unit: NDArray) -> _MatchedUnits:
    """Average each column of ``values`` (n, k; NaN = missing) within (arm, unit); keep units seen in both arms."""
    keys, first, inverse = np.unique(unit, return_index=True, return_inverse=True)
    n_units = len(keys)
    observed = ~np.isnan(values)
    filled = np.where(observed, values, 0.0)
    arms = []
    for arm in (in_treatment, ~in_treatment):
        sums = np.zeros((n_units, values.shape[1]))
        counts = np.zeros((n_units, values.shape[1]))
        np.add.at(sums, inverse[arm], filled[arm])
        np.add.at(counts, inverse[arm], observed[arm])
        arms.append((sums, counts))
    (t_sums, t_counts), (c_sums, c_counts) = arms
    # A unit counts for an arm when its first column (the outcome) was observed there.
    in_t, in_c = t_counts[:, 0] > 0, c_counts[:, 0] > 0
    both = in_t & in_c
    with np.errstate(invalid="ignore", divide="ignore"):
        t_means = np.where(t_counts > 0, t_sums / np.where(t_counts > 0, t_counts, 1), np.nan)
        c_means = np.where(c_counts > 0, c_sums / np.where(c_counts > 0, c_counts, 1), np.nan)
    return _MatchedUnits(t_means[both], c_means[both], t_counts[both], c_counts[both], int(in_t.sum()), int(in_c.sum()),
                         first[both])


def bootstrap_unit_weights(n_units: int, *, n_boot: int, rng: np.random.Generator):
    """Yield chunks of multinomial resampling counts, shape (chunk, n_units), summing to ``n_units`` per row.

    Resampling ``n_units`` units with replacement is the same as drawing these
    counts; chunking keeps memory bounded for any number of units.
    """
    chunk = max(1, _CHUNK_CELLS // max(n_units, 1))
    probabilities = np.full(n_units, 1.0 / n_units)
    done = 0
    while done < n_boot:
        size = min(chunk, n_boot - done)
        yield rng.multinomial(n_units, probabilities, size=size).astype(float)
        done += size


def _percentile_ends(replicates: NDArray, level: float) -> tuple[float, float]:
    finite = replicates[np.isfinite(replicates)]
    if len(finite) < len(replicates) / 2:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def _unit_intervals(unit_sums: NDArray, from_sums, *, n_boot: int, level: float, max_bootstrap_units: int | None,
                    rng) -> tuple[NDArray, NDArray, NDArray, str, int]:
    """Estimates and intervals of smooth statistics of per-unit sums ``(P, k)`` -> ``(m,)``, units resampled.

    Up to ``max_bootstrap_units`` units: percentile cluster bootstrap. Above
    it the bootstrap is slow and no longer needed: Taylor linearization with
    a t quantile (the cluster-robust sandwich with one row per unit).
    """
    n_units = unit_sums.shape[0]
    estimate = np.asarray(from_sums(unit_sums.sum(axis=0)), dtype=float)
    if max_bootstrap_units is not None and n_units > max_bootstrap_units:
        _, low, high = linearized_interval(unit_sums, from_sums, level=level)
        return estimate, low, high, f"Taylor linearization over units, t({n_units - 1})", 0
    generator = np.random.default_rng(rng)
    with np.errstate(invalid="ignore", divide="ignore"):
        replicates = np.concatenate([np.asarray(from_sums(weights @ unit_sums), dtype=float)
                                     for weights in bootstrap_unit_weights(n_units, n_boot=n_boot, rng=generator)])
    ends = np.array([_percentile_ends(replicates[:, k], level) for k in range(replicates.shape[1])])
    return estimate, ends[:, 0], ends[:, 1], f"cluster bootstrap over units, percentile ({n_boot} resamples)", n_boot


def _coerce_inputs(values: ArrayLike, in_treatment: ArrayLike, unit: ArrayLike) -> tuple[NDArray, NDArray, NDArray]:
    y = np.asarray(values, dtype=float)
    if y.ndim == 1:
        y = y[:, None]
    treated = np.asarray(in_treatment)
    keys = np.asarray(unit)
    if y.ndim != 2 or treated.shape != (y.shape[0],) or keys.shape != (y.shape[0],):
        raise ValueError(
            f"values, in_treatment and unit must have one row per observation. Got shapes {y.shape}, "
            f"{treated.shape} and {keys.shape} instead."
        )
    if treated.dtype != bool:
        raise ValueError(f"The 'in_treatment' parameter must be boolean. Got dtype {treated.dtype} instead.")
    if np.isinf(y).any():
        raise ValueError("values must be finite or NaN (missing).")
    if keys.dtype == object and any(k is None or (isinstance(k, float) and np.isnan(k)) for k in keys):
        raise ValueError("unit keys must not be missing; give every observation a unit (prompt id or text).")
    return y, treated, keys.astype(str)


def _not_reported(matched: _MatchedUnits, n_pairs: int, reason: str, method: str) -> PairedDifference:
    nan = float("nan")
    return PairedDifference(nan, nan, nan, n_pairs, _share(n_pairs, matched.n_units_treatment),
                            _share(n_pairs, matched.n_units_control), matched.n_units_treatment,
                            matched.n_units_control, "", reason, method, 0)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else float("nan")


def _matching_warning(n_pairs: int, share_t: float, share_c: float, *, min_matched_share: float,
                      few_pairs: int) -> str:
    warnings = []
    low = [f"{name} {share:.0%}" for name, share in (("treatment", share_t), ("control", share_c))
           if share < min_matched_share]
    if low:
        warnings.append(f"only part of each model's units matched ({', '.join(low)} < {min_matched_share:.0%}): "
                        "the effect describes the shared units only")
    if n_pairs < few_pairs:
        warnings.append(f"few matched units (n={n_pairs}): percentile-bootstrap coverage may fall below nominal")
    return "; ".join(warnings)


def _t_interval(differences: NDArray, level: float) -> tuple[float, float, float]:
    from scipy.stats import t as student_t

    n = len(differences)
    mean = float(differences.mean())
    half = float(student_t.ppf(1 - (1 - level) / 2, n - 1) * differences.std(ddof=1) / np.sqrt(n))
    return mean, max(-1.0, mean - half), min(1.0, mean + half)


def _small_table(matched: _MatchedUnits, *, level: float, min_pairs: int, few_discordant: int,
                 min_matched_share: float, few_pairs: int) -> PairedDifference:
    """The paired 2x2 table's difference with Newcombe's interval (warned when few units or few discordant ones)."""
    t, c = matched.treatment[:, 0].astype(bool), matched.control[:, 0].astype(bool)
    n_pairs = len(t)
    table = {"both": int((t & c).sum()), "treated_only": int((t & ~c).sum()), "control_only": int((~t & c).sum()),
             "neither": int((~t & ~c).sum())}
    estimate, low, high = newcombe_paired_difference(**table, level=level)
    discordant = table["treated_only"] + table["control_only"]
    why = (f"small n ({n_pairs} matched units, under {min_pairs})" if n_pairs < min_pairs else
           f"few discordant units ({discordant} of {n_pairs}, under {few_discordant})" if discordant < few_discordant
           else "")
    share_t, share_c = _share(n_pairs, matched.n_units_treatment), _share(n_pairs, matched.n_units_control)
    matching = _matching_warning(n_pairs, share_t, share_c, min_matched_share=min_matched_share, few_pairs=0)
    warning = "; ".join(filter(None, [f"{why}: Newcombe's small-sample score interval" if why else "", matching]))
    return PairedDifference(estimate, low, high, n_pairs, share_t, share_c, matched.n_units_treatment,
                            matched.n_units_control, warning, "",
                            f"paired difference of proportions over matched units, Newcombe square-and-add "
                            f"score interval (method 10); table {table['both']}/{table['treated_only']}/"
                            f"{table['control_only']}/{table['neither']} (both/treated only/control only/neither)", 0)


def paired_mean_difference(
    values: ArrayLike,
    in_treatment: ArrayLike,
    unit: ArrayLike,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    min_matched_share: float = 0.8,
    min_pairs: int = 10,
    few_pairs: int = 30,
    few_discordant: int = 10,
    max_bootstrap_units: int | None = None,
    clusters: ArrayLike | None = None,
    rng: np.random.Generator | int | None = None,
) -> PairedDifference:
    """Treatment minus control mean on matched units: Newcombe's paired score interval for independent 0/1 pairs,
    the t interval of the unit differences for other independent units, a cluster bootstrap for clustered units.

    With one 0/1 outcome per unit and arm and independent units, the interval is Newcombe's paired score interval
    (:func:`judgekit.stats.paired_binary.newcombe_paired_difference`) at every n: valid at small n, never of zero
    width when no unit is discordant, and at tens of units closer to nominal than the percentile bootstrap
    (``analyses/results/paired_small_n/coverage.md``); fewer than ``min_pairs`` matched units or fewer than
    ``few_discordant`` discordant ones add a warning. Units grouped by ``clusters`` are bootstrapped by cluster,
    except with few units or few discordant ones, where Newcombe's interval is given with a warning that it treats
    them as independent. Outcomes averaged over samples (or scores) of independent units get the t interval of the
    unit differences (closer to nominal than the percentile bootstrap at 20-70 units), except that rates in [0, 1]
    with fewer than ``few_discordant`` units whose arms differ get the arms' Wilson intervals combined by
    square-and-add (:func:`judgekit.stats.paired_binary.paired_rates_difference`), never of zero width either.

    Parameters
    ----------
    values : array-like of shape (n,)
        One outcome per observation (a 0/1 unsafe verdict, a capability score
        in [0, 1]); NaN = missing (a failed verdict), left out.
    in_treatment : array-like of bool, shape (n,)
        True for the fine-tuned model's observations, False for the base's.
    unit : array-like of shape (n,)
        The matching key: ``prompt_id`` (or the prompt text when there is no
        id) for safety prompts, ``item_id`` for capability items. Several
        observations of one unit in one arm (samples) are averaged first.
    n_boot : int, default=1000
        Bootstrap resamples of the clusters (with ``clusters``).
    level : float, default=0.95
    min_matched_share : float, default=0.8
        Below this share of either arm's units being matched, the result
        carries a warning: it describes the shared units only.
    min_pairs : int, default=10
        With fewer matched units a 0/1 outcome gets the small-n interval; any other outcome is not reported
        (``reason`` says why).
    few_discordant : int, default=10
        With fewer discordant units a 0/1 outcome gets the small-n interval (a bootstrap of few discordant
        units is too narrow, of none zero-width).
    few_pairs : int, default=30
        Below this many clusters the bootstrap interval is flagged as
        possibly under-covering.
    max_bootstrap_units : int or None, default=None
        Above this many clusters the interval is the t interval of the
        mean difference (Taylor linearization) instead of the bootstrap.
    clusters : array-like of shape (n,), optional
        The cluster of each observation's unit (``behavior_id``): units are
        then resampled by cluster, as the data were generated (prompts of a
        behaviour are not independent). A unit takes the cluster of its
        first observation. Default: each unit is its own cluster.
    rng : numpy Generator, int or None
        Source of the bootstrap's randomness.

    Returns
    -------
    PairedDifference
        ``estimate`` = mean over matched units of (treatment mean - control
        mean); percentile interval of the resampled means.

    Notes
    -----
    With unit means :math:`\\bar y_{u1}, \\bar y_{u0}` over the :math:`P`
    matched units, :math:`\\hat\\Delta = P^{-1} \\sum_u (\\bar y_{u1} - \\bar y_{u0})`.
    Every unit gets equal weight whatever its number of samples, so the
    estimand is the mean effect over the shared prompts. Resampling units
    (not responses) keeps each unit's samples and its pairing together.

    References
    ----------
    .. [1] Field, C. A., & Welsh, A. H. (2007). Bootstrapping clustered data.
       JRSS B, 69(3), 369-390. doi:10.1111/j.1467-9868.2007.00593.x
    .. [2] Davison, A. C., & Hinkley, D. V. (1997). Bootstrap Methods and their
       Application, section 3.8. Cambridge University Press.
       doi:10.1017/CBO9780511802843
    .. [3] Newcombe, R. G. (1998). Improved confidence intervals for the difference between binomial
       proportions based on paired data. Statistics in Medicine, 17(22), 2635-2650.

    Examples
    --------
    >>> r = paired_mean_difference([1, 0, 1, 1] * 5, [True, False] * 10, [0, 0, 1, 1] * 5, min_pairs=2, rng=0)
    >>> r.estimate, r.n_pairs
    (0.5, 2)
    """
    _validate_common(n_boot, level, min_matched_share, min_pairs)
    y, treated, keys = _coerce_inputs(values, in_treatment, unit)
    if y.shape[1] != 1:
        raise ValueError(f"The 'values' parameter must be 1-d. Got shape {y.shape} instead.")
    if clusters is not None and np.shape(clusters) != (len(y),):
        raise ValueError(f"The 'clusters' parameter must have one value per observation. Got shape "
                         f"{np.shape(clusters)} for {len(y)} observations.")
    matched = _match_units(y, treated, keys)
    differences = (matched.treatment - matched.control)[:, 0]
    n_pairs = len(differences)
    binary = bool(np.isin(matched.treatment[:, 0], (0.0, 1.0)).all() and np.isin(matched.control[:, 0], (0.0, 1.0)).all())
    independent_units = clusters is None or len(np.unique(np.asarray(clusters).astype(str)[matched.first_rows])) == n_pairs
    few = n_pairs < min_pairs or np.count_nonzero(differences) < few_discordant
    if n_pairs >= 1 and binary and (independent_units or few):
        # independent 0/1 pairs: Newcombe's score interval at every n (at 30-150 pairs of the label-design study's
        # table the percentile bootstrap covered 0.905-0.942 where it covered 0.945-0.959, analyses/paired_small_n.py)
        table = _small_table(matched, level=level, min_pairs=min_pairs, few_discordant=few_discordant,
                             min_matched_share=min_matched_share, few_pairs=few_pairs)
        if independent_units:
            return table
        # never a zero-width bootstrap; but units sharing a cluster are not the independent pairs it assumes
        return dataclasses.replace(table, warning=table.warning + "; units share clusters (behaviours), which this "
                                   "interval does not account for: it may be too narrow")
    in_unit_range = bool(n_pairs and ((matched.treatment >= 0) & (matched.treatment <= 1) & (matched.control >= 0)
                                      & (matched.control <= 1)).all())
    if n_pairs >= 1 and in_unit_range and np.count_nonzero(differences) < few_discordant:
        # rates over several samples (or scores in [0, 1]) with few differing units: a bootstrap of the differences
        # is too narrow, of none zero-width; the arms' score intervals are not
        estimate, low, high = paired_rates_difference(matched.treatment[:, 0], matched.control[:, 0], level=level)
        share_t, share_c = _share(n_pairs, matched.n_units_treatment), _share(n_pairs, matched.n_units_control)
        why = (f"few units whose rates differ between the arms ({np.count_nonzero(differences)} of {n_pairs}, under "
               f"{few_discordant}): score interval of the two arms' mean rates (Wilson, square-and-add, the arms "
               "taken as uncorrelated: conservative), not the bootstrap")
        clustered = "" if independent_units else ("units share clusters (behaviours), which this interval does not "
                                                  "account for: it may be too narrow")
        return PairedDifference(estimate, low, high, n_pairs, share_t, share_c, matched.n_units_treatment,
                                matched.n_units_control, "; ".join(filter(None, [why, _matching_warning(
                                    n_pairs, share_t, share_c, min_matched_share=min_matched_share, few_pairs=0),
                                    clustered])), "",
                                "paired difference of mean rates over matched units, Wilson score intervals of the "
                                "arms combined by square-and-add (MOVER)", 0)
    if n_pairs < min_pairs and (n_pairs < 2 or not independent_units):
        return _not_reported(matched, n_pairs, f"only {n_pairs} units answered by both models "
                             f"(need {min_pairs}, or 2 independent units for the small-n interval; units with a "
                             f"response: {matched.n_units_treatment} treated, {matched.n_units_control} control)"
                             "; no paired effect", "paired difference over matched units")
    if independent_units:
        # means over samples (or scores) of independent units: the t interval of the unit differences, which covered
        # 0.952-0.956 where the percentile bootstrap covered 0.942 +- 0.005 (20 and 67 pairs of 3-sample rates,
        # the design of analyses/finetune_effect_simulation.py section 1, 2000 studies each)
        estimate, low, high = _t_interval(differences, level)
        share_t, share_c = _share(n_pairs, matched.n_units_treatment), _share(n_pairs, matched.n_units_control)
        small = (f"small n ({n_pairs} matched units, under {min_pairs}): t interval of the unit differences "
                 "(outcomes averaged over samples), approximate" if n_pairs < min_pairs else "")
        matching = _matching_warning(n_pairs, share_t, share_c, min_matched_share=min_matched_share, few_pairs=0)
        return PairedDifference(estimate, low, high, n_pairs, share_t, share_c, matched.n_units_treatment,
                                matched.n_units_control, "; ".join(filter(None, [small, matching])), "",
                                f"paired difference over matched units, t({n_pairs - 1}) interval of the unit "
                                "differences", 0)
    unit_sums = np.column_stack([np.ones(n_pairs), differences])
    n_clusters = n_pairs
    if clusters is not None:  # prompts within behaviours: resample the behaviours
        unit_sums = cluster_sums(unit_sums, np.asarray(clusters).astype(str)[matched.first_rows])
        n_clusters = unit_sums.shape[0]
    estimate, low, high, how, resamples = _unit_intervals(
        unit_sums, lambda s: s[..., 1:] / s[..., :1], n_boot=n_boot, level=level,
        max_bootstrap_units=max_bootstrap_units, rng=rng)
    few_clusters = ""
    if clusters is not None:
        how = how.replace("over units", f"over {n_clusters} clusters of units")
        few_clusters = f"few clusters of units (n={n_clusters})" if n_clusters < few_pairs else ""
    share_t, share_c = _share(n_pairs, matched.n_units_treatment), _share(n_pairs, matched.n_units_control)
    return PairedDifference(float(estimate[0]), float(low[0]), float(high[0]), n_pairs, share_t, share_c,
                            matched.n_units_treatment, matched.n_units_control,
                            "; ".join(filter(None, [_matching_warning(n_pairs, share_t, share_c,
                                                                      min_matched_share=min_matched_share,
                                                                      few_pairs=few_pairs), few_clusters])),
                            "", f"paired difference over matched units, {how}", resamples)


@dataclass(frozen=True)
class EffectDecomposition:
    """The paired effect split by incoherence: coherent-only effect, and the share incoherent responses carry.

    ``total`` is the paired effect on all responses; ``incoherent_part`` the
    part contributed by unsafe incoherent responses (so
    ``total = coherent_part + incoherent_part`` exactly);
    ``incoherent_share = incoherent_part / total``; ``coherent_only`` the
    paired effect computed on coherent responses alone (rates among each
    prompt's coherent responses). Intervals are percentile intervals from the
    same resampled prompts.
    """

    total: tuple[float, float, float]
    incoherent_part: tuple[float, float, float]
    incoherent_share: tuple[float, float, float]
    coherent_only: tuple[float, float, float]
    n_pairs: int
    n_pairs_coherent: int
    warning: str
    reason: str
    method: str


def incoherence_decomposition(
    unsafe: ArrayLike,
    incoherent: ArrayLike,
    in_treatment: ArrayLike,
    unit: ArrayLike,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    min_pairs: int = 10,
    max_bootstrap_units: int | None = None,
    rng: np.random.Generator | int | None = None,
) -> EffectDecomposition:
    """How much of a paired fine-tune effect is carried by incoherent responses.

    Parameters
    ----------
    unsafe : array-like of shape (n,)
        0/1 verdicts, NaN = missing.
    incoherent : array-like of bool, shape (n,)
        The combined incoherence flag of each response.
    in_treatment, unit
        As in :func:`paired_mean_difference`.
    n_boot, level, min_pairs, max_bootstrap_units, rng
        As in :func:`paired_mean_difference`.

    Returns
    -------
    EffectDecomposition

    Notes
    -----
    Per prompt and arm the harmful rate splits additively,
    :math:`\\bar y = \\overline{y\\,c} + \\overline{y\\,(1-c)}` with
    :math:`c` the incoherence flag, so the paired effect splits into a
    coherent and an incoherent part. The share is the incoherent part over
    the total; it is undefined (NaN) when the total is 0 and unstable when
    the total's interval covers 0 (then a warning says so). The
    coherent-only effect re-matches prompts with at least one coherent
    response in each arm.

    References
    ----------
    .. [1] Field, C. A., & Welsh, A. H. (2007). Bootstrapping clustered data.
       JRSS B, 69(3), 369-390. doi:10.1111/j.1467-9868.2007.00593.x
    """
    _validate_common(n_boot, level, 0.0, min_pairs)
    y, treated, keys = _coerce_inputs(unsafe, in_treatment, unit)
    flags = np.asarray(incoherent)
    if flags.dtype != bool or flags.shape != (y.shape[0],):
        raise ValueError(f"The 'incoherent' parameter must be boolean with one entry per observation. "
                         f"Got dtype {flags.dtype}, shape {flags.shape} instead.")
    outcome = y[:, 0]
    observed = ~np.isnan(outcome)
    incoherent_unsafe = np.where(observed, outcome * flags, np.nan)
    coherent_unsafe = np.where(observed & ~flags, outcome, np.nan)
    columns = np.column_stack([outcome, incoherent_unsafe, coherent_unsafe])
    matched = _match_units(columns, treated, keys)
    nan3 = (float("nan"),) * 3
    n_pairs = matched.treatment.shape[0]
    if n_pairs < min_pairs:
        return EffectDecomposition(nan3, nan3, nan3, nan3, n_pairs, 0, "",
                                   f"only {n_pairs} prompts answered by both models (need {min_pairs})",
                                   "paired difference over matched prompts")
    diff = matched.treatment - matched.control  # (P, 3); column 2 is NaN where an arm has no coherent response
    coherent_pairs = ~np.isnan(diff[:, 2])
    # per prompt: [1, total difference, incoherent part, has a coherent pair, coherent difference]
    unit_sums = np.column_stack([np.ones(n_pairs), diff[:, 0], diff[:, 1], coherent_pairs,
                                 np.where(coherent_pairs, diff[:, 2], 0.0)])
    estimate, low, high, how, _ = _unit_intervals(unit_sums, _decomposition_from_sums, n_boot=n_boot, level=level,
                                                  max_bootstrap_units=max_bootstrap_units, rng=rng)
    rows = [(float(e), float(lo), float(hi)) for e, lo, hi in zip(estimate, low, high, strict=True)]
    n_coherent = int(coherent_pairs.sum())
    warning = ("the total effect's interval covers 0, so the share carried by incoherent responses is unstable"
               if rows[0][1] <= 0 <= rows[0][2] else "")
    return EffectDecomposition(rows[0], rows[1], rows[2], rows[3] if n_coherent >= min_pairs else nan3,
                               n_pairs, n_coherent, warning, "", f"paired difference over matched prompts, {how}")


def _decomposition_from_sums(s: NDArray) -> NDArray:
    """[total effect, incoherent part, incoherent share, coherent-only effect] from summed per-prompt columns."""
    with np.errstate(invalid="ignore", divide="ignore"):
        total, part = s[..., 1] / s[..., 0], s[..., 2] / s[..., 0]
        return np.stack([total, part, np.where(total != 0, part / total, np.nan), s[..., 4] / s[..., 3]], axis=-1)


def summary_difference(
    treatment: tuple[float, float, float], control: tuple[float, float, float], *, level: float = 0.95
) -> tuple[float, float, float]:
    """Difference of two independent estimates given as ``(estimate, ci_low, ci_high)``, normal approximation.

    Each interval is read as symmetric ``estimate ± z se`` at ``level`` (its
    half-width over z gives the standard error); the difference's interval is
    ``Δ ± z sqrt(se_t² + se_c²)``. Use it only when per-item scores are not
    available (an aggregate capability score); a paired per-item comparison
    is sharper when the items are shared.

    References
    ----------
    .. [1] Altman, D. G., & Bland, J. M. (2003). Interaction revisited: the
       difference between two estimates. BMJ, 326(7382), 219.
       doi:10.1136/bmj.326.7382.219

    Examples
    --------
    >>> tuple(round(v, 4) for v in summary_difference((0.6, 0.5, 0.7), (0.5, 0.4, 0.6)))
    (0.1, -0.0414, 0.2414)
    """
    if not 0 < level < 1:
        raise ValueError(f"The 'level' parameter must be in (0, 1). Got {level!r} instead.")
    for name, (estimate, low, high) in (("treatment", treatment), ("control", control)):
        if not low <= estimate <= high:
            raise ValueError(f"The {name!r} interval must contain its estimate. Got {(estimate, low, high)!r} instead.")
    z = ndtri(1 - (1 - level) / 2)
    se_t = (treatment[2] - treatment[1]) / (2 * z)
    se_c = (control[2] - control[1]) / (2 * z)
    difference = treatment[0] - control[0]
    half = z * float(np.hypot(se_t, se_c))
    return float(difference), float(difference - half), float(difference + half)
