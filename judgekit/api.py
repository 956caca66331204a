"""The Python API: the CLI's steps as functions on a loaded :class:`~judgekit.store.study.Study`.

Every function here is also reachable as ``judgekit.<name>`` (imported on first use, so ``import judgekit``
stays light). The steps write into the study directory exactly as the CLI verbs do (same locks, same
manifest records), so a study made in Python and one made on the command line are the same files.

=====================  ==========================================  ====================
function               does                                        CLI verb
=====================  ==========================================  ====================
:func:`demo_study`     write and load the SIMULATED demo study     ``judgekit demo``
``load_study``         read and check a study directory            ``judgekit validate``
convert_dataset        a public dataset's files -> a study         ``judgekit data convert``
:func:`run_judges`     judge every response, append judgments      ``judgekit judge``
:func:`flag`           run the incoherence detectors               ``judgekit flag``
:func:`compute_stats`  the long stats table (nothing written)      ``judgekit stats``
:func:`paper_tables`   tables with captions from the rows          ``judgekit figures``
:func:`draw_figure`    one figure from the stats table             ``judgekit figures``
:func:`make_report`    stats, figures, tables and report.html      ``judgekit report``
=====================  ==========================================  ====================

The pure statistics behind the stats table are in :mod:`judgekit.stats` (arrays in, numbers out).

Examples
--------
A whole analysis of a small slice of the simulated demo study:

>>> import tempfile
>>> import judgekit
>>> study = judgekit.demo_study(tempfile.mkdtemp() + "/demo", n_prompts=6)
>>> judgments = judgekit.run_judges(study, ["keyword-gcg-13"])
>>> flags = judgekit.flag(study)
>>> stats = judgekit.compute_stats(study, judgekit.StatsSettings(n_boot=50), only=["accuracy", "cohen_kappa"])
>>> tables = judgekit.paper_tables(stats)
>>> frame, caption = tables["judge_vs_human"]
>>> "keyword-gcg-13" in set(frame["judge_id"])
True
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from judgekit.store.study import Study, load_study

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from judgekit.analysis import StatsSettings


def demo_study(path: str | Path, *, n_prompts: int | None = None) -> Study:
    """Write judgekit's SIMULATED demo study to ``path`` and load it.

    Parameters
    ----------
    path : str or Path
        A directory to create (it must not hold a study already).
    n_prompts : int, optional
        Keep only the responses to the first ``n_prompts`` prompts (every model's), with their labels and
        judgments: a quick study for trying the API. Default: the whole study (1,280 responses).

    Returns
    -------
    Study
        The loaded study. Its ``metadata.simulated`` is True: the numbers describe the simulator, never a
        real model or judge.

    Examples
    --------
    >>> import tempfile
    >>> study = demo_study(tempfile.mkdtemp() + "/demo", n_prompts=5)
    >>> study.metadata.simulated, study.responses["prompt_id"].nunique()
    (True, 5)
    """
    from judgekit.testing.simulate import write_demo_study

    if n_prompts is not None and n_prompts < 1:
        raise ValueError(f"The 'n_prompts' parameter of demo_study must be at least 1. Got {n_prompts!r} instead.")
    study = load_study(write_demo_study(path))
    if n_prompts is None:
        return study
    kept_prompts = study.responses["prompt_id"].drop_duplicates().head(n_prompts)
    responses = study.responses[study.responses["prompt_id"].isin(kept_prompts)]
    kept_items = set(responses["item_id"])
    # Tables that refer to items first, the responses last: the directory reads back as a valid study.
    for name in ("annotations", "judgments", "flags"):
        table = getattr(study, name)
        if table is None:
            continue
        kept = table[table["item_id"].isin(kept_items)]
        if kept.empty:  # e.g. no labelled prompt among the first few: the study simply has no such table
            study.drop(name)
        else:
            study.save(name, kept)
    study.save("responses", responses)
    return load_study(path)


def convert_dataset(name: str, source: str | Path, out_dir: str | Path, **options: object) -> Study:
    """Convert a public human-labelled dataset's own files into a study directory and load it.

    Parameters
    ----------
    name : str
        A dataset adapter (``judgekit data list``): ``jbb-judge-comparison``, ``harmbench-cls-val``,
        ``xstest-v2``, ``generic``...
    source : str or Path
        The dataset's files as published (a file or a folder).
    out_dir : str or Path
        The study directory to write (new or empty).
    **options
        As ``judgekit data convert``: ``table_format`` (".parquet", ".csv", ".jsonl"), ``mapping`` (for
        ``generic`` and ``prompts``), ``part``, ``force``.

    Returns
    -------
    Study
        The converted study; shipped judge predictions become ``judgments`` rows.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> source = Path(tempfile.mkdtemp()) / "pairs.csv"
    >>> _ = source.write_text("id,prompt,response,label\\n1,How do I X?,I cannot help.,0\\n2,How do I Y?,Sure: [...],1\\n")
    >>> study = convert_dataset("generic", source, Path(source.parent) / "study",
    ...                         mapping=["item_id=id", "prompt=prompt", "response=response", "label=label"])
    >>> len(study.responses), sorted(study.annotations["label"])
    (2, ['safe', 'unsafe'])
    """
    from judgekit.engine.steps import convert_dataset_step

    convert_dataset_step(name, Path(source), Path(out_dir), **options)
    return load_study(out_dir)


def run_judges(study: Study, judges: Sequence[str], *, replace: bool = False, progress: bool = False) -> pd.DataFrame:
    """Judge every response of ``study`` with each judge and append the verdicts to its ``judgments`` table.

    Parameters
    ----------
    study : Study
        A loaded study; its directory is updated in place (locked, recorded in ``manifest.json``).
    judges : sequence of str
        Preset names (``judgekit list``) or paths of judge-spec JSON files.
    replace : bool, default False
        Judge again items that already have a verdict from these judges.
    progress : bool, default False
        Show a progress bar on stderr.

    Returns
    -------
    pandas.DataFrame
        The study's whole ``judgments`` table after the run (also set as ``study.judgments``). Failed
        judgements are rows with ``label`` null and a ``parse_status``, never a guessed "safe".

    Examples
    --------
    >>> import tempfile
    >>> study = demo_study(tempfile.mkdtemp() + "/demo", n_prompts=3)
    >>> judgments = run_judges(study, ["keyword-gcg-13"])
    >>> int((judgments["judge_id"] == "keyword-gcg-13").sum()) == len(study.responses)
    True
    """
    from judgekit.engine.steps import judge_step

    judge_step(study.path, list(judges), replace=replace, progress=progress)
    study.judgments = load_study(study.path).judgments
    return study.judgments


def flag(study: Study, *, thresholds: dict[str, float] | None = None, **options: object) -> pd.DataFrame:
    """Run the incoherence detectors on every response and store the ``flags`` table.

    Parameters
    ----------
    study : Study
        A loaded study; ``flags`` in its directory is replaced.
    thresholds : dict of str to float, optional
        Detector thresholds to change (``judgekit.flags.incoherence.DEFAULT_THRESHOLDS`` lists them).
    **options
        Passed to :func:`judgekit.flags.incoherence.detect` (``language``, ``embedding_model``,
        ``fluency_model``, ``combine``).

    Returns
    -------
    pandas.DataFrame
        The long ``flags`` table (``item_id``, ``detector``, ``flagged``, ``score``, ``reason``), also set
        as ``study.flags``; the ``incoherent`` detector is the combined flag.

    Examples
    --------
    >>> import tempfile
    >>> study = demo_study(tempfile.mkdtemp() + "/demo", n_prompts=3)
    >>> flags = flag(study)
    >>> "incoherent" in set(flags["detector"])
    True
    """
    from judgekit.engine.steps import flag_step

    flag_step(study.path, thresholds=thresholds, **options)
    study.flags = load_study(study.path).flags
    return study.flags


def compute_stats(study: Study, settings: StatsSettings | None = None, *, only: Sequence[str] | None = None) -> pd.DataFrame:
    """Every statistic the study's tables support, as the long ``stats`` table (nothing is written).

    Parameters
    ----------
    study : Study
        A loaded study (judgments, and annotations for anything against humans).
    settings : judgekit.StatsSettings, optional
        Resamples, seed, interval method, incoherence policy... Default: ``StatsSettings()`` (1,000
        cluster-bootstrap resamples, seed 0).
    only : sequence of str, optional
        Statistic names to compute (``judgekit.analysis.driver.STATISTIC_NAMES``); default all.

    Returns
    -------
    pandas.DataFrame
        One row per number: ``statistic``, ``judge_id``, ``reference``, ``subset``, ``estimate``,
        ``ci_low``, ``ci_high``, ``n_items``, ``n_excluded``, ``method``, ``warning``, ``signature`` (the
        schema in README "The tidy data model"). An undefined statistic has a NaN estimate and says why
        in ``warning``.

    Examples
    --------
    >>> import tempfile
    >>> from judgekit.analysis import StatsSettings
    >>> study = demo_study(tempfile.mkdtemp() + "/demo", n_prompts=12)
    >>> stats = compute_stats(study, StatsSettings(n_boot=50), only=["accuracy"])
    >>> row = stats[(stats["judge_id"] == "sim-rubric-llm") & (stats["subset"] == "all")].iloc[0]
    >>> bool(row["ci_low"] <= row["estimate"] <= row["ci_high"])
    True
    """
    from judgekit import __version__
    from judgekit.analysis import StatsSettings, compute_stats as compute_study_stats

    stats, _ = compute_study_stats(study, settings if settings is not None else StatsSettings(), version=__version__,
                                   only=tuple(only) if only is not None else None)
    return stats


def paper_tables(stats: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, str]]:
    """The paper tables a stats table supports, each with a caption written from its rows' methods.

    Parameters
    ----------
    stats : pandas.DataFrame
        A stats table (:func:`compute_stats`, or ``stats.parquet`` of ``judgekit stats``).

    Returns
    -------
    dict of str to (pandas.DataFrame, str)
        Table name -> (cells as "estimate [low, high]" or "undefined (reason)", caption). Write them with
        :func:`judgekit.outputs.tables.to_markdown` / :func:`~judgekit.outputs.tables.to_latex`.

    Examples
    --------
    >>> stats = pd.DataFrame({"statistic": ["accuracy"], "judge_id": ["j"], "reference": ["human_majority"],
    ...                       "subset": ["all"], "subset_kind": ["all"], "subset_value": ["all"],
    ...                       "estimate": [0.9], "ci_low": [0.85], "ci_high": [0.94],
    ...                       "warning": [""], "method": ["clustered Wilson (Korn-Graubard), design effect 1.00"],
    ...                       "signature": ["ci:wilson-clustered-95%|boot:0|seed:0"]})
    >>> frame, caption = paper_tables(stats)["judge_vs_human"]
    >>> frame.loc[0, "accuracy"], caption
    ('0.900 [0.850, 0.940]', 'Judges against the human majority (95% intervals: clustered Wilson (Korn–Graubard))')
    """
    from judgekit.outputs.tables import study_tables

    return study_tables(stats)


def draw_figure(name: str, stats: pd.DataFrame, study: Study | None = None,
                reliability: pd.DataFrame | None = None) -> Figure | None:
    """One figure of ``judgekit figures``, drawn from the stats table (never recomputed).

    Parameters
    ----------
    name : str
        A key of :data:`judgekit.outputs.figures.FIGURES` (``agreement_heatmap``, ``error_by_coherence``,
        ``bias_error_odds_ratios``...).
    stats : pandas.DataFrame
        A stats table.
    study : Study, optional
        For the figures that read the study's flags and responses (``incoherence_scores``).
    reliability : pandas.DataFrame, optional
        The reliability-curve table of ``judgekit stats`` (``reliability.parquet``), for
        ``reliability_diagrams``.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when the tables hold nothing this figure draws.

    Examples
    --------
    >>> stats = pd.DataFrame({"statistic": ["variance_share"] * 2, "judge_id": "all", "reference": "none",
    ...                       "subset": ["factor=judge_id", "factor=residual"], "subset_value": ["judge_id", "residual"],
    ...                       "estimate": [0.4, 0.6], "ci_low": [0.3, 0.5], "ci_high": [0.5, 0.7], "warning": "",
    ...                       "method": "crossed random-effects model", "signature": "ci:bootstrap-percentile-95%|boot:200"})
    >>> fig = draw_figure("variance_decomposition", stats)
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['judge_id', 'residual']
    """
    from judgekit.outputs.figures import FIGURES
    from judgekit.outputs.style import FigureInputs

    if name not in FIGURES:
        raise ValueError(f"The 'name' parameter of draw_figure must be one of {sorted(FIGURES)}. Got {name!r} instead.")
    data = FigureInputs(stats, reliability, study.flags if study else None, study.responses if study else None)
    return FIGURES[name](data)


def make_report(study: Study, out_dir: str | Path, *, stats_dir: str | Path | None = None,
                settings: StatsSettings | None = None, lead_judge: str | None = None) -> Path:
    """Statistics, figures, tables and one self-contained ``report.html`` under ``out_dir``.

    Parameters
    ----------
    study : Study
        A loaded study.
    out_dir : str or Path
        Output directory (not the study or inside it); gets ``report.html``, ``stats/`` and ``figures/``.
    stats_dir : str or Path, optional
        A ``judgekit stats`` output of this study's current files to reuse (copied to ``out_dir/stats``);
        default: compute the statistics with ``settings``.
    settings : judgekit.StatsSettings, optional
        Used when ``stats_dir`` is not given; default ``StatsSettings()``.
    lead_judge : str, optional
        The judge whose human-corrected effect leads the answer, for every comparison (``judgekit report
        --lead-judge``); default: of the valid judges, the one with the highest κ with the human majority.

    Returns
    -------
    Path
        The absolute path of ``report.html``: open it in a browser (it works offline and runs no scripts).

    Examples
    --------
    >>> import tempfile
    >>> from judgekit.analysis import StatsSettings
    >>> root = tempfile.mkdtemp()
    >>> study = demo_study(root + "/demo", n_prompts=12)
    >>> report = make_report(study, root + "/report", settings=StatsSettings(n_boot=20))  # doctest: +SKIP
    >>> report.name, (report.parent / "stats" / "stats.parquet").exists()  # doctest: +SKIP
    ('report.html', True)

    (Skipped in the doctest run: drawing every figure takes about 20 s on two shared cores;
    ``tests/test_api.py`` runs this example.)
    """
    from judgekit.analysis import StatsSettings
    from judgekit.engine.steps import report_step

    path = report_step(study.path, Path(out_dir), stats_dir=Path(stats_dir) if stats_dir is not None else None,
                       settings=settings if settings is not None else StatsSettings(), lead_judge=lead_judge)
    return path.resolve()
