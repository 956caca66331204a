"""The pipeline steps behind the CLI verbs; each reads files and writes files.

responses → judge → judgments → flag → flags → stats → figures → report
"""

from __future__ import annotations

import json

import shutil
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

import pandas as pd

from judgekit.errors import InputError, StepFailed
from judgekit.store.io import read_table, write_table, write_text_atomic
from judgekit.judges.build import JudgeOptions
from judgekit.registry import resolve_judge
from judgekit.store.layout import study_dir_to_update
from judgekit.store.locking import study_lock, work_locks
from judgekit.store.manifest import append_study_run, build_manifest, read_manifest, recorded_study_run, sha256_file
from judgekit.store.outdir import (FILES_KEY, check_output_dir, check_study_out, refuse_system_folder, staged_output_dir,
                                    verify_output_dir)
from judgekit.engine.progress import on_terminal, stage
from judgekit.engine.judge_runner import (JudgeRunSummary, check_model_paths, commit_under_study_lock, read_snapshot,
                                          record_judge_runs, run_judges)
from judgekit.store.schema import SCHEMAS
from judgekit.analysis import StatsSettings
from judgekit.store.study import Study, load_study, replace_study_files, table_path

DEMO_JUDGES = ("keyword-gcg-13", "keyword-gcg-29")
REPO_DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"


def judge_step(study_dir: Path, judge_names: list[str], *, replace: bool = False, progress: bool = True,
               options: JudgeOptions | None = None, devices: list[str] | None = None,
               ray_options=None) -> list[JudgeRunSummary]:
    """Run judges on a study and merge their verdicts into ``judgments``.

    The study is read as a snapshot; verdicts are computed into the verdict cache without the study
    lock, which is taken only to merge each judge's rows into the table as it is then (so judges run
    by other processes meanwhile keep theirs). The same judge in two processes at once: the second
    waits. With ``devices`` the judges (and shards of their items) run in one worker process per
    device (:mod:`judgekit.engine.placement`); with ``ray_options`` (:class:`judgekit.engine.ray_engine.RayOptions`) the model
    judges run as Ray Data actor pools (:mod:`judgekit.engine.ray_engine`).
    """
    if not judge_names:
        raise InputError("name at least one judge with --judge (see `judgekit list`)")
    if ray_options is not None:
        from judgekit.engine.ray_engine import judge_with_ray

        return judge_with_ray(study_dir_to_update(study_dir), judge_names, replace=replace, progress=progress,
                              options=options or JudgeOptions(), ray_options=ray_options)
    if devices:
        from judgekit.engine.placement import judge_on_devices

        return judge_on_devices(study_dir_to_update(study_dir), judge_names, devices, replace=replace,
                                progress=progress, options=options or JudgeOptions())
    judges = [resolve_judge(name, options) for name in judge_names]
    check_model_paths(judges, options)
    study_dir = study_dir_to_update(study_dir)
    with work_locks(study_dir, [f"judge {j.judge_id}" for j in judges], step="judge"):
        study, manifest = read_snapshot(study_dir, step="judge", arrow_text=True)
        with recorded_study_run(study_dir, manifest, lock=partial(study_lock, study_dir, step="judge")) as record:
            summaries = run_judges(study, judges, replace=replace, progress=progress,
                                   commit=partial(commit_under_study_lock, replace=replace))
            record_judge_runs(record, summaries)
    return summaries


def generate_step(prompt_sources: list[Path], out_dir: Path, *, model: str, variants: list, decoding, backend: str | None = None,
                  engine_options: dict | None = None, replace: bool = False, progress: bool = True) -> list:
    """Responses of each model variant to the prompt sets into ``out_dir`` (see :mod:`judgekit.generate`)."""
    from judgekit.datasets.prompt_sets import prompts_table_path, read_prompt_sets
    from judgekit.generate.run import generate_models, open_engine, prompts_to_store, write_prompts

    prompts = read_prompt_sets(prompt_sources)
    check_study_out(out_dir)
    new_prompts = prompts_to_store(out_dir, prompts)
    engine = open_engine(backend, model, variants, engine_options or {})
    new_study = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        lock = partial(study_lock, out_dir, step="generate")
        with work_locks(out_dir, [f"generate {v.name}" for v in variants], step="generate"):
            if new_prompts:
                with lock():
                    write_prompts(out_dir, prompts)
            inputs = [prompts_table_path(source) for source in prompt_sources]
            with recorded_study_run(out_dir, build_manifest(step="generate", inputs=inputs, seeds={"generation": decoding.seed}),
                                    lock=lock) as record:
                summaries, chat = generate_models(out_dir, prompts, engine, variants, decoding, replace=replace,
                                                  progress=progress, lock=lock)
                record["details"] = {
                    "decoding": decoding.describe(), "chat_template": chat, "engine": engine.describe(),
                    "models": [{**asdict(v), **asdict(s)} for v, s in zip(variants, summaries, strict=True)],
                }
    except BaseException:
        _remove_skeleton(out_dir, new_study)
        raise
    finally:
        engine.close()
    return summaries


def _remove_skeleton(study_dir: Path, new_study: bool) -> None:
    """A study this step created that holds no responses yet (prompts, manifest, lock, an empty cache) is removed
    when the step fails: nothing in it is worth resuming, and no half-made study is left behind."""
    from judgekit.store.study import table_path

    if new_study and study_dir.is_dir() and table_path(study_dir, "responses") is None:
        shutil.rmtree(study_dir, ignore_errors=True)


def inspect_judge_step(name: str, *, model_path: str | None = None, device: str | None = None, dtype: str | None = None,
                       json_path: Path | None = None, compare_backends: bool = False) -> str:
    """Run :func:`judgekit.judges.inspection.inspect_judge` on a guard preset or spec; return the text report.

    With ``compare_backends`` the check pairs are scored by the transformers and the vLLM backend instead,
    and the report gives the largest |Δ P(unsafe)| between them.
    """
    import importlib.util

    from judgekit.judges import inspection
    from judgekit.judges.transformers_judge import TransformersJudge

    if compare_backends and importlib.util.find_spec("vllm") is None:
        from judgekit.judges.vllm_judge import MISSING_VLLM

        raise InputError(MISSING_VLLM)
    probe = resolve_judge(name)
    options = JudgeOptions(model_paths={probe.judge_id: model_path} if model_path else {}, device=device, dtype=dtype)
    judge = resolve_judge(name, options)
    if not isinstance(judge, TransformersJudge):
        raise InputError(f"{name} is not a guard model; inspect-judge checks the transformers read-out")
    if compare_backends:
        vllm_judge = resolve_judge(name, replace(options, backend="vllm"))
        report = inspection.compare_backends({"transformers": judge, "vllm": vllm_judge})
        text = inspection.format_comparison(report)
    else:
        report = inspection.inspect_judge(judge)
        text = inspection.format_report(report)
    if json_path is not None:
        write_text_atomic(Path(json_path), json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return text


def flag_step(study_dir: Path, *, thresholds: dict[str, float] | None = None, **options) -> pd.DataFrame:
    """Run the incoherence detectors (options as :func:`judgekit.flags.incoherence.detect`) into STUDY/flags."""
    from judgekit.flags.embedding import check_embedding_model
    from judgekit.flags.fluency import check_causal_lm
    from judgekit.flags.incoherence import DEFAULT_THRESHOLDS, combined_members, detect

    if options.get("fluency_model"):
        check_causal_lm(options["fluency_model"])  # before the study is locked or its manifest touched
    if options.get("embedding_model"):
        check_embedding_model(options["embedding_model"])
    details = {"thresholds": {**DEFAULT_THRESHOLDS, **(thresholds or {})},
               "combine": list(combined_members(options.get("combine"), fluency_model=options.get("fluency_model"))),
               **{k: v for k, v in options.items() if k != "combine"}}
    study_dir = study_dir_to_update(study_dir)
    lock = partial(study_lock, study_dir, step="flag")
    with work_locks(study_dir, ["flag"], step="flag"):
        study, manifest = read_snapshot(study_dir, step="flag", details=details)
        with recorded_study_run(study_dir, manifest, lock=lock):
            flags = detect(study.responses, thresholds=thresholds, **options)
            responses = table_path(study_dir, "responses")
            with lock():
                if sha256_file(responses) != manifest["inputs"].get(str(responses)):
                    raise StepFailed("the responses changed while the flags were computed (a `generate` committed); "
                                     "rerun `judgekit flag`")
                study.save("flags", flags)
    return flags


def stats_step(study_dir: Path, out_dir: Path, settings: StatsSettings, *, csv_formula_guard: bool = True,
               study: Study | None = None, only: tuple[str, ...] | None = None, force: bool = False) -> pd.DataFrame:
    """Statistics of a study into ``out_dir`` (one committed set: stats and reliability as parquet and CSV).

    The CSV copies are exports for spreadsheets: with ``csv_formula_guard`` text cells that a spreadsheet
    would evaluate (``=``, ``+``, ``-``, ``@`` first) are prefixed with an apostrophe; the parquet files
    keep every value as computed. ``study`` is the already loaded study of ``study_dir`` (read once per
    command); ``only`` limits the run to the named statistics. ``out_dir`` follows
    :func:`judgekit.store.outdir.check_output_dir` (``force`` merges into a foreign folder).
    """
    from judgekit import __version__
    from judgekit.analysis.driver import compute_stats

    check_output_dir(out_dir, kind="stats", studies=[study_dir], force=force)
    study = study if study is not None else load_study(study_dir)
    if study.judgments is None and study.annotations is None:
        raise InputError("has nothing to compare: no judgments (run `judgekit judge`) and no annotations",
                         file=study_dir)
    from judgekit.analysis.driver import BLOCKS

    # on a terminal compute_stats draws its own bar (one step per block); elsewhere this stage's line says it runs
    with stage("stats", total=len(BLOCKS), unit="block", enabled=settings.progress and not on_terminal()):
        stats, reliability = compute_stats(study, settings, version=__version__, only=only)
    if stats.empty:  # e.g. only graded scores on dimensions without a verdict (an Inspect scorer left unmapped)
        raise InputError("has nothing to compare: no judgment gives a verdict (graded scores need a declared "
                         "threshold: `data import --unsafe-value`) and there are no annotations"
                         + (f", or no statistic is named {', '.join(only)}" if only else ""), file=study_dir)
    manifest = build_manifest(
        step="stats",
        inputs=study.files(),
        seeds={"bootstrap": settings.seed},
        details={**asdict(settings), "study": str(study_dir), "simulated": study.metadata.simulated},
    )
    with staged_output_dir(out_dir, manifest) as staging:
        write_table(stats, staging / "stats.parquet", SCHEMAS["stats"])
        write_table(stats, staging / "stats.csv", SCHEMAS["stats"], neutralise_formulas=csv_formula_guard)
        if not reliability.empty:
            write_table(reliability, staging / "reliability.parquet", SCHEMAS["reliability"])
            write_table(reliability, staging / "reliability.csv", SCHEMAS["reliability"],
                        neutralise_formulas=csv_formula_guard)
    return stats


def read_stats(stats_dir: Path, *, study_files: list[Path] | None = None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The stats and reliability tables of one committed ``judgekit stats`` output set.

    With ``study_files``, a set computed from other inputs than those files (another study, or this
    one before it changed) is refused.
    """
    if not Path(stats_dir).is_dir():
        raise InputError("stats directory not found (run `judgekit stats` first)", file=stats_dir)
    manifest = verify_output_dir(stats_dir, required=["stats.parquet"])
    if study_files is not None and set(manifest.get("inputs", {}).values()) != {sha256_file(p) for p in study_files}:
        raise InputError("these statistics were computed from other inputs (another study, or this one before it "
                         "changed); rerun `judgekit stats` on this study", file=stats_dir)
    stats = read_table(stats_dir / "stats.parquet", SCHEMAS["stats"])
    reliability = (read_table(stats_dir / "reliability.parquet", SCHEMAS["reliability"])
                   if "reliability.parquet" in manifest["files"] else None)
    return stats, reliability


def figures_step(stats_dir: Path, out_dir: Path, *, study_dir: Path | None = None, study: Study | None = None,
                 force: bool = False, formats: tuple[str, ...] = ("pdf", "png"), dpi: int | None = None,
                 progress: bool = True, lead_judge: str | None = None) -> list[Path]:
    """Figures (``formats``: PDF and PNG by default) and paper tables (Markdown + LaTeX under ``tables/``) from a
    stats directory; PNGs at ``dpi`` (default 300); ``lead_judge`` as the report's answer names it."""
    from judgekit.outputs.figures import FIGURES, make_figures
    from judgekit.outputs.style import PNG_DPI
    from judgekit.outputs.style import FigureInputs
    from judgekit.outputs.tables import study_tables, to_latex, to_markdown

    if not (Path(stats_dir) / "stats.parquet").exists() and any(Path(stats_dir).glob("responses.*")):
        raise InputError("is a study, not a stats folder: run `judgekit stats STUDY --out STATS` first, then "
                         "`judgekit figures STATS --out FIGURES --study STUDY`", file=stats_dir)
    check_output_dir(out_dir, kind="figures", studies=[stats_dir] + ([study_dir] if study_dir is not None else []),
                     force=force)
    stats, reliability = read_stats(stats_dir)
    if study is None and study_dir is not None:
        study = load_study(study_dir)
    data = FigureInputs(stats, reliability, study.flags if study else None, study.responses if study else None,
                        lead_judge=lead_judge)
    inputs = [stats_dir / "stats.parquet"] + ([stats_dir / "reliability.parquet"] if reliability is not None else [])
    manifest = build_manifest(step="figures", inputs=inputs + (study.files() if study else []))
    with staged_output_dir(out_dir, manifest) as staging:
        with stage("figures", total=len(FIGURES), unit="figure", enabled=progress) as advance:
            written = make_figures(data, staging, formats=formats, dpi=dpi or PNG_DPI, progress=advance)
        for name, (table, caption) in study_tables(stats).items():
            written.append(write_text_atomic(staging / "tables" / f"{name}.md", to_markdown(table)))
            written.append(write_text_atomic(staging / "tables" / f"{name}.tex",
                                             to_latex(table, caption=caption, label=f"tab:{name}")))
        written = [out_dir / p.relative_to(staging) for p in written]
    return written


def report_step(study_dir: Path, out_dir: Path, *, stats_dir: Path | None, settings: StatsSettings,
                force: bool = False, lead_judge: str | None = None) -> Path:
    """Write ``report.html``; compute stats and figures under ``out_dir`` unless ``stats_dir`` is given.
    ``lead_judge`` names the judge whose corrected effect leads the answer (default: the report's stated rule)."""
    check_output_dir(out_dir, kind="report", studies=[study_dir], force=force)
    return _write_report(study_dir, out_dir, stats_dir=stats_dir, settings=settings, step="report",
                         lead_judge=lead_judge)


def check_lead_judge(study: Study, lead_judge: str | None) -> None:
    """Refuse a ``--lead-judge`` that is no judge of the study, naming the ones it has (before any work is done)."""
    known = sorted(study.judgments["judge_id"].unique()) if study.judgments is not None else []
    if lead_judge is not None and lead_judge not in known:
        raise InputError(f"--lead-judge {lead_judge!r} is not a judge of this study; its judges: "
                         f"{', '.join(known) or 'none (run `judgekit judge` first)'}", file=study.path)


def _write_report(study_dir: Path, out_dir: Path, *, stats_dir: Path | None, settings: StatsSettings, step: str,
                  lead_judge: str | None = None) -> Path:
    from judgekit.outputs.report import build_report

    study = load_study(study_dir)
    check_lead_judge(study, lead_judge)
    if stats_dir is None:
        stats_dir = out_dir / "stats"
        stats = stats_step(study_dir, stats_dir, settings, study=study)
    else:
        stats, _ = read_stats(stats_dir, study_files=study.files())
        stats_dir = copy_stats_set(stats_dir, out_dir / "stats")
    # the report embeds PNGs only: PDFs for papers come from `judgekit figures`
    from judgekit.outputs.style import REPORT_PNG_DPI

    figure_paths = figures_step(stats_dir, out_dir / "figures", study_dir=study_dir, study=study, formats=("png",),
                                dpi=REPORT_PNG_DPI, progress=settings.progress, lead_judge=lead_judge)
    manifest = build_manifest(
        step=step,
        inputs=study.files() + [stats_dir / "stats.parquet"],
        details={"stats_manifest": read_manifest(stats_dir / "manifest.json"), "study_manifest": read_manifest(study_dir / "manifest.json")},
    )
    with stage("report", total=1, unit="page", enabled=settings.progress) as advance:
        html_text = build_report(study, stats, figure_paths, manifest, lead_judge=lead_judge)
        advance()
    with staged_output_dir(out_dir, manifest) as staging:
        write_text_atomic(staging / "report.html", html_text)
    return out_dir / "report.html"


def copy_stats_set(stats_dir: Path, target: Path) -> Path:
    """Copy a verified stats set to ``target`` (``report --stats DIR`` writes ``OUT/stats`` like a fresh run); return ``target``.

    The copy is committed as its own set with the original manifest (inputs, settings, seeds), so it
    verifies and is refused on changed inputs exactly like the original.
    """
    if Path(stats_dir).resolve() == Path(target).resolve():
        return target
    manifest = read_manifest(stats_dir / "manifest.json")
    with staged_output_dir(target, {k: v for k, v in manifest.items() if k != FILES_KEY}) as staging:
        for name in manifest[FILES_KEY]:
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(stats_dir / name, staging / name)
    return target


def demo_step(out_dir: Path, settings: StatsSettings, *, progress: bool = True, force: bool = False) -> Path:
    """Run judge → flag → stats → figures → report on a fresh copy of the demo study under ``out_dir/study``."""
    from judgekit.testing.simulate import write_demo_study

    check_output_dir(out_dir, kind=("demo", "report"), studies=[REPO_DEMO_DIR], force=force)  # older demos: "report"
    study_dir = out_dir / "study"
    if study_dir.exists():
        shutil.rmtree(study_dir)
    if REPO_DEMO_DIR.is_dir():
        shutil.copytree(REPO_DEMO_DIR, study_dir)
    else:
        write_demo_study(study_dir)
    # The bundled demo keeps judgments.csv, one file readable in git; its copy starts in the current layout (one
    # parquet file per judge) so that the demo's judge step has no old layout to move and no notice to print.
    with study_lock(study_dir, step="demo"):
        replace_study_files(study_dir, {"judgments": load_study(study_dir).judgments}, table_format=".parquet",
                            texts={})
    judge_step(study_dir, list(DEMO_JUDGES), progress=progress)
    flag_step(study_dir)
    return _write_report(study_dir, out_dir, stats_dir=None, settings=settings, step="demo")


def describe_registries() -> str:
    from judgekit.registry import DATASETS, DETECTORS, JUDGES, STATISTICS

    lines = []
    for registry in (JUDGES, DETECTORS, STATISTICS, DATASETS):
        lines.append(f"{registry.kind}s:")
        lines.extend(f"  {e.name:<28} {e.summary}" for e in registry.entries())
    return "\n".join(lines)


def convert_dataset_step(name: str, source: Path, out_dir: Path, *, table_format: str = ".parquet",
                         mapping: list[str] | None = None, part: str | None = None, force: bool = False) -> list[str]:
    """Convert a public dataset's files into a study directory; returns notes for the user."""
    import json

    from judgekit.store.lineage import lineage_table_counts
    from judgekit.datasets.common import ConvertedStudy
    from judgekit.datasets.generic import parse_mapping
    from judgekit.registry import DATASETS

    try:
        entry = DATASETS.get(name)
    except KeyError as err:
        raise InputError(err.args[0]) from None
    if not source.exists():
        raise InputError("source not found", file=source)
    refuse_system_folder(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise InputError("output directory is not empty (pass --force to overwrite its tables)", file=out_dir)
    converter = entry.load()
    kwargs = {}
    if name == "generic":
        kwargs["mapping"] = parse_mapping(mapping or [])
    elif name == "prompts":
        from judgekit.datasets.prompt_sets import PROMPT_TARGETS

        kwargs["mapping"] = parse_mapping(mapping or [], targets=PROMPT_TARGETS)
    elif mapping:
        raise InputError("--map only applies to the generic and prompts converters")
    if part is not None:
        if name != "guardreasoner-eval":
            raise InputError("--part only applies to guardreasoner-eval")
        kwargs["part"] = part
    study: ConvertedStudy = converter(source, **kwargs)
    inputs = sorted(p for p in (source.rglob("*") if source.is_dir() else [source]) if p.is_file())
    if not isinstance(study, ConvertedStudy):  # a prompt set: no responses yet (input of `judgekit generate`)
        from judgekit.datasets.prompt_sets import write_prompt_set

        path = write_prompt_set(study, out_dir, table_format=table_format)
        append_study_run(out_dir, build_manifest(step="data convert", inputs=inputs, details={"dataset": name, "notes": study.notes}))
        return [f"wrote {path} (prompts only: generate responses with `judgekit generate {out_dir} --model ...`)", *study.notes]
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = {table: frame for table, frame in (("responses", study.responses), ("annotations", study.annotations),
                                                ("judgments", study.judgments), ("models", study.models),
                                                ("capability", study.capability)) if frame is not None and len(frame)}
    metadata_text = json.dumps(study.metadata.to_json(), indent=2, ensure_ascii=False) + "\n"
    # One set: a kill or a full disk leaves the old tables or the new ones, never some of each (judgekit.store.study).
    with study_lock(out_dir, step="data convert"), recorded_study_run(
            out_dir, build_manifest(step="data convert", inputs=inputs, judge_specs=study.judge_specs,
                                    details={"dataset": name, "notes": study.notes})):
        replace_study_files(out_dir, tables, table_format=table_format, texts={"study.json": metadata_text})
        load_study(out_dir)  # what was written must read back as a valid study
        lineage_table_counts(out_dir)
    counts = [f"{len(study.responses)} responses"]
    if study.annotations is not None:
        counts.append(f"{len(study.annotations)} annotations")
    for table in ("judgments", "models", "capability"):
        if getattr(study, table) is not None:
            counts.append(f"{len(getattr(study, table))} {table}")
    return [f"wrote {out_dir}: " + ", ".join(counts), *study.notes]


def fetch_dataset_step(name: str, *, to: Path | None, from_path: Path | None, allow_unpinned: bool) -> list[str]:
    from judgekit.datasets.fetch import fetch_dataset
    from judgekit.datasets.registry import sources

    if name not in sources():
        raise InputError(f"no download location is recorded for {name!r}; fetchable: {', '.join(sorted(sources()))}")
    fetched = fetch_dataset(name, sources()[name]["files"], to=to, from_path=from_path, allow_unpinned=allow_unpinned)
    return [f"{f.path}  sha256 {f.sha256}{'' if f.pinned else '  (NOT pinned: verify it yourself)'}" for f in fetched]


def list_datasets() -> str:
    from judgekit.datasets.registry import CONVERTERS, sources, summary

    lines = []
    for name in CONVERTERS:
        entry = sources().get(name)
        if entry is None:
            fetch = "convert only (your own files)"
        else:
            pinned = sum(f["sha256"] is not None for f in entry["files"])
            fetch = f"fetch: {pinned}/{len(entry['files'])} files pinned; licence: {entry['license']}"
        lines.append(f"{name:<22} {summary(name)}\n{'':<22} {fetch}")
    return "\n".join(lines)
