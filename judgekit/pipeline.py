"""The pipeline steps behind the CLI verbs; each reads files and writes files.

responses → judge → judgments → flag → flags → stats → figures → report
"""

from __future__ import annotations

import json

import shutil
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from judgekit.errors import InputError
from judgekit.figures import make_figures
from judgekit.incoherence import detect
from judgekit.io import read_table, write_table, write_text_atomic
from judgekit.judges.build import JudgeOptions, resolve_judge
from judgekit.manifest import append_study_run, build_manifest, read_manifest, write_manifest
from judgekit.report import build_report
from judgekit.run import JudgeRunSummary, run_judges
from judgekit.schema import SCHEMAS
from judgekit.stats.study import StatsSettings, compute_stats
from judgekit.study import load_study

DEMO_JUDGES = ("keyword-gcg-13", "keyword-gcg-29")
REPO_DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"


def judge_step(study_dir: Path, judge_names: list[str], *, replace: bool = False, progress: bool = True,
               options: JudgeOptions | None = None) -> list[JudgeRunSummary]:
    if not judge_names:
        raise InputError("name at least one judge with --judge (see `judgekit list`)")
    judges = [resolve_judge(name, options) for name in judge_names]
    unknown = sorted(set(options.model_paths if options else {}) - {j.judge_id for j in judges})
    if unknown:
        raise InputError(f"--model-path names {unknown[0]!r}, which is not among the judges run")
    study = load_study(study_dir)
    inputs = study.files()
    summaries = run_judges(study, judges, replace=replace, progress=progress)
    append_study_run(
        study_dir,
        build_manifest(
            step="judge",
            inputs=inputs,
            judge_specs=[{"judge_id": s.judge_id, "spec_hash": s.spec_hash, "spec": s.spec} for s in summaries],
            details={"runs": [{k: v for k, v in asdict(s).items() if k != "spec"} for s in summaries]},
        ),
    )
    return summaries


def inspect_judge_step(name: str, *, model_path: str | None = None, device: str | None = None, dtype: str | None = None,
                       json_path: Path | None = None) -> str:
    """Run :func:`judgekit.judges.inspection.inspect_judge` on a guard preset or spec; return the text report."""
    from judgekit.judges.inspection import format_report, inspect_judge
    from judgekit.judges.transformers_judge import TransformersJudge

    probe = resolve_judge(name)
    options = JudgeOptions(model_paths={probe.judge_id: model_path} if model_path else {}, device=device, dtype=dtype)
    judge = resolve_judge(name, options)
    if not isinstance(judge, TransformersJudge):
        raise InputError(f"{name} is not a guard model; inspect-judge checks the transformers read-out")
    report = inspect_judge(judge)
    if json_path is not None:
        write_text_atomic(Path(json_path), json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return format_report(report)


def flag_step(study_dir: Path, *, thresholds: dict[str, float] | None = None, **options) -> pd.DataFrame:
    """Run the incoherence detectors (options as :func:`judgekit.incoherence.detect`) into STUDY/flags."""
    from judgekit.incoherence import COMBINED_DEFAULT, DEFAULT_THRESHOLDS

    study = load_study(study_dir)
    inputs = study.files()
    flags = detect(study.responses, thresholds=thresholds, **options)
    study.save("flags", flags)
    details = {"thresholds": {**DEFAULT_THRESHOLDS, **(thresholds or {})},
               "combine": list(options.get("combine", COMBINED_DEFAULT)),
               **{k: v for k, v in options.items() if k != "combine"}}
    append_study_run(study_dir, build_manifest(step="flag", inputs=inputs, details=details))
    return flags


def stats_step(study_dir: Path, out_dir: Path, settings: StatsSettings) -> pd.DataFrame:
    from judgekit import __version__

    study = load_study(study_dir)
    stats, reliability = compute_stats(study, settings, version=__version__)
    write_table(stats, out_dir / "stats.parquet", SCHEMAS["stats"])
    write_table(stats, out_dir / "stats.csv", SCHEMAS["stats"])
    if not reliability.empty:
        write_table(reliability, out_dir / "reliability.parquet", SCHEMAS["reliability"])
        write_table(reliability, out_dir / "reliability.csv", SCHEMAS["reliability"])
    write_manifest(
        out_dir,
        build_manifest(
            step="stats",
            inputs=study.files(),
            seeds={"bootstrap": settings.seed},
            details={**asdict(settings), "study": str(study_dir), "simulated": study.metadata.simulated},
        ),
    )
    return stats


def read_stats(stats_dir: Path) -> pd.DataFrame:
    for name in ("stats.parquet", "stats.csv"):
        if (stats_dir / name).exists():
            return read_table(stats_dir / name, SCHEMAS["stats"])
    raise InputError("no stats.parquet or stats.csv (run `judgekit stats` first)", file=stats_dir)


def figures_step(stats_dir: Path, out_dir: Path, *, study_dir: Path | None = None) -> list[Path]:
    """Figures (PDF + PNG) and paper tables (Markdown + LaTeX under ``tables/``) from a stats directory."""
    from judgekit.figures import FigureInputs
    from judgekit.tables import study_tables, to_latex, to_markdown

    stats = read_stats(stats_dir)
    reliability_path = stats_dir / "reliability.parquet"
    reliability = read_table(reliability_path, SCHEMAS["reliability"]) if reliability_path.exists() else None
    study = load_study(study_dir) if study_dir is not None else None
    data = FigureInputs(stats, reliability, study.flags if study else None, study.responses if study else None)
    written = make_figures(data, out_dir)
    for name, (table, caption) in study_tables(stats).items():
        written.append(write_text_atomic(out_dir / "tables" / f"{name}.md", to_markdown(table)))
        written.append(write_text_atomic(out_dir / "tables" / f"{name}.tex", to_latex(table, caption=caption, label=f"tab:{name}")))
    inputs = [p for p in (stats_dir / "stats.parquet", reliability_path) if p.exists()] + (study.files() if study else [])
    write_manifest(out_dir, build_manifest(step="figures", inputs=inputs, details={"files": [str(p.relative_to(out_dir)) for p in written]}))
    return written


def report_step(study_dir: Path, out_dir: Path, *, stats_dir: Path | None, settings: StatsSettings) -> Path:
    """Write ``report.html``; compute stats and figures under ``out_dir`` unless ``stats_dir`` is given."""
    study = load_study(study_dir)
    if stats_dir is None:
        stats_dir = out_dir / "stats"
        stats_step(study_dir, stats_dir, settings)
    stats = read_stats(stats_dir)
    figure_paths = figures_step(stats_dir, out_dir / "figures", study_dir=study_dir)
    manifest = build_manifest(
        step="report",
        inputs=study.files() + [p for p in (stats_dir / "stats.parquet",) if p.exists()],
        details={"stats_manifest": read_manifest(stats_dir / "manifest.json"), "study_manifest": read_manifest(study_dir / "manifest.json")},
    )
    html_text = build_report(study, stats, figure_paths, manifest)
    path = write_text_atomic(out_dir / "report.html", html_text)
    write_manifest(out_dir, manifest)
    return path


def demo_step(out_dir: Path, settings: StatsSettings, *, progress: bool = True) -> Path:
    """Run judge → flag → stats → figures → report on a fresh copy of the demo study."""
    from judgekit.simulate import write_demo_study

    study_dir = out_dir / "study"
    if study_dir.exists():
        shutil.rmtree(study_dir)
    if REPO_DEMO_DIR.is_dir():
        shutil.copytree(REPO_DEMO_DIR, study_dir)
    else:
        write_demo_study(study_dir)
    judge_step(study_dir, list(DEMO_JUDGES), progress=progress)
    flag_step(study_dir)
    return report_step(study_dir, out_dir, stats_dir=None, settings=settings)


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

    from judgekit.datasets.common import ConvertedStudy
    from judgekit.datasets.generic import parse_mapping
    from judgekit.registry import DATASETS

    try:
        entry = DATASETS.get(name)
    except KeyError as err:
        raise InputError(err.args[0]) from None
    if not source.exists():
        raise InputError("source not found", file=source)
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise InputError("output directory is not empty (pass --force to overwrite its tables)", file=out_dir)
    converter = entry.load()
    kwargs = {}
    if name == "generic":
        kwargs["mapping"] = parse_mapping(mapping or [])
    elif mapping:
        raise InputError("--map only applies to the generic converter")
    if part is not None:
        if name != "guardreasoner-eval":
            raise InputError("--part only applies to guardreasoner-eval")
        kwargs["part"] = part
    study: ConvertedStudy = converter(source, **kwargs)
    out_dir.mkdir(parents=True, exist_ok=True)
    for table, frame in (("responses", study.responses), ("annotations", study.annotations), ("judgments", study.judgments)):
        if frame is not None and len(frame):
            write_table(frame, out_dir / f"{table}{table_format}", SCHEMAS[table])
    write_text_atomic(out_dir / "study.json", json.dumps(study.metadata.to_json(), indent=2, ensure_ascii=False) + "\n")
    inputs = sorted(p for p in (source.rglob("*") if source.is_dir() else [source]) if p.is_file())
    append_study_run(out_dir, build_manifest(step="data convert", inputs=inputs, details={"dataset": name, "notes": study.notes}))
    load_study(out_dir)  # what was written must read back as a valid study
    counts = [f"{len(study.responses)} responses"]
    if study.annotations is not None:
        counts.append(f"{len(study.annotations)} annotations")
    if study.judgments is not None:
        counts.append(f"{len(study.judgments)} judgments")
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
